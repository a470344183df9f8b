//! Tests: schema consistency, golden bodies captured from kubectl, round trips of every
//! kind, and malformed input.

use serde_json::{Value, json};

use super::schema::{self, Ty};
use super::*;

/// Checks that `obj` survives encode -> decode unchanged, and that the encoding is stable.
fn check(name: &str, obj: &Value) {
    let body = encode(obj).unwrap_or_else(|err| panic!("{name}: encode: {err}"));
    let decoded = decode(&body).unwrap_or_else(|err| panic!("{name}: decode: {err}"));
    if let Some(path) = first_difference(&decoded, obj, String::new()) {
        panic!(
            "{name}: round trip changed {path}: {:?} became {:?}",
            obj.pointer(&path),
            decoded.pointer(&path)
        );
    }
    assert_eq!(
        encode(&decoded).unwrap(),
        body,
        "{name}: second encoding differs"
    );
}

/// The JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => first_difference(va, vb, format!("{path}/{k}")),
                    _ => Some(format!("{path}/{k}")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, format!("{path}/{i}"))),
        _ => (a != b).then_some(path),
    }
}

#[test]
fn schema_references_resolve_and_kinds_exist() {
    let messages = schema::messages();
    for msg in messages.values() {
        for field in &msg.fields {
            if let Ty::Message(name) = field.ty {
                assert!(
                    messages.contains_key(name),
                    "{}.{} refers to unknown message {name}",
                    msg.name,
                    field.name
                );
            }
        }
    }
    for (api_version, kind, _) in KINDS {
        message_for(api_version, kind).unwrap();
    }
}

#[test]
fn schema_is_not_recursive() {
    // Decoding recursion is bounded only because no message contains itself.
    fn visit(name: &'static str, path: &mut Vec<&'static str>) {
        assert!(
            !path.contains(&name),
            "recursive schema: {path:?} -> {name}"
        );
        let Some(msg) = schema::messages().get(name) else {
            return;
        };
        path.push(name);
        for field in &msg.fields {
            if let Ty::Message(sub) = field.ty {
                visit(sub, path);
            }
        }
        path.pop();
    }
    for (_, _, name) in KINDS {
        visit(name, &mut Vec::new());
    }
}

/// Bodies captured from kubectl v1.33 (`-v=10` request dumps) against a Bosun server, and
/// the same commands' `--dry-run=client -o json` output.
const GOLDEN: &[(&str, &[u8], &str)] = &[
    (
        "namespace",
        include_bytes!("../../testdata/protobuf/namespace.pb"),
        include_str!("../../testdata/protobuf/namespace.json"),
    ),
    (
        "configmap",
        include_bytes!("../../testdata/protobuf/configmap.pb"),
        include_str!("../../testdata/protobuf/configmap.json"),
    ),
    (
        "secret",
        include_bytes!("../../testdata/protobuf/secret.pb"),
        include_str!("../../testdata/protobuf/secret.json"),
    ),
    (
        "deployment",
        include_bytes!("../../testdata/protobuf/deployment.pb"),
        include_str!("../../testdata/protobuf/deployment.json"),
    ),
    (
        "service",
        include_bytes!("../../testdata/protobuf/service.pb"),
        include_str!("../../testdata/protobuf/service.json"),
    ),
    (
        "priorityclass",
        include_bytes!("../../testdata/protobuf/priorityclass.pb"),
        include_str!("../../testdata/protobuf/priorityclass.json"),
    ),
];

#[test]
fn golden_kubectl_bodies_decode_to_kubectl_json() {
    for (name, body, json_text) in GOLDEN {
        let expected: Value = serde_json::from_str(json_text).unwrap();
        let decoded = decode(body).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(decoded, expected, "{name}");
        check(name, &decoded);
    }
}

#[test]
fn golden_namespace_encodes_to_kubectl_bytes() {
    // Every field of this namespace is one upstream writes, so the bytes match exactly.
    let (_, body, _) = GOLDEN[0];
    let mut obj = decode(body).unwrap();
    let meta = obj["metadata"].as_object_mut().unwrap();
    for key in [
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
    ] {
        meta.insert(key.to_string(), json!(""));
    }
    meta.insert("generation".to_string(), json!(0));
    obj["status"]["phase"] = json!("");
    assert_eq!(encode(&obj).unwrap(), body);
}

#[test]
fn every_truncation_of_a_golden_body_is_an_error() {
    for (name, body, _) in GOLDEN {
        for len in 0..body.len() {
            // Cutting the envelope's trailing empty contentEncoding and contentType fields
            // (2 bytes each) at a field boundary leaves a complete body.
            let trailing_ok = len == body.len() - 4 || len == body.len() - 2;
            let result = decode(&body[..len]);
            assert!(
                result.is_err() || trailing_ok,
                "{name}: prefix of {len} bytes decoded"
            );
        }
    }
}

/// A malformed body and a predicate on the error it must produce.
type Case = (&'static str, Vec<u8>, fn(&ProtoError) -> bool);

#[test]
fn malformed_bodies_are_errors() {
    fn body(envelope: &[u8]) -> Vec<u8> {
        [MAGIC.as_slice(), envelope].concat()
    }
    let namespace_type_meta: &[u8] = b"\x0a\x0f\x0a\x02v1\x12\x09Namespace";
    let cases: Vec<Case> = vec![
        ("empty", vec![], |e| matches!(e, ProtoError::MissingMagic)),
        ("wrong magic", b"k9s\0\x0a\x00".to_vec(), |e| {
            matches!(e, ProtoError::MissingMagic)
        }),
        ("json body", b"{\"kind\":\"Pod\"}".to_vec(), |e| {
            matches!(e, ProtoError::MissingMagic)
        }),
        ("truncated varint", body(&[0x0a, 0x80]), |e| {
            matches!(e, ProtoError::Truncated { .. })
        }),
        ("length past the end", body(&[0x0a, 0x05, 0x0a]), |e| {
            matches!(e, ProtoError::Truncated { .. })
        }),
        ("field number zero", body(&[0x02, 0x00]), |e| {
            matches!(e, ProtoError::Malformed { .. })
        }),
        ("group wire type", body(&[0x0b]), |e| {
            matches!(e, ProtoError::Malformed { .. })
        }),
        (
            "overlong varint",
            body(&[
                0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
            |e| matches!(e, ProtoError::Malformed { .. }),
        ),
        (
            "unknown kind",
            body(b"\x0a\x0c\x0a\x02v1\x12\x06Widget"),
            |e| matches!(e, ProtoError::UnknownKind { .. }),
        ),
        ("no type meta", body(b"\x12\x00"), |e| {
            matches!(e, ProtoError::UnknownKind { .. })
        }),
        (
            "gzip content",
            body(&[namespace_type_meta, b"\x1a\x04gzip"].concat()),
            |e| matches!(e, ProtoError::Envelope { .. }),
        ),
        (
            "raw as varint",
            body(&[namespace_type_meta, b"\x10\x01"].concat()),
            |e| matches!(e, ProtoError::Envelope { .. }),
        ),
        // Namespace.metadata (field 1) sent as a varint.
        (
            "wrong wire type",
            body(&[namespace_type_meta, b"\x12\x02\x08\x01"].concat()),
            |e| matches!(e, ProtoError::InvalidValue { .. }),
        ),
        // ObjectMeta.name holding invalid UTF-8.
        (
            "invalid utf-8",
            body(&[namespace_type_meta, b"\x12\x05\x0a\x03\x0a\x01\xff"].concat()),
            |e| matches!(e, ProtoError::InvalidValue { .. }),
        ),
        // ObjectMeta.creationTimestamp with nanos out of range.
        (
            "bad nanos",
            body(
                &[
                    namespace_type_meta,
                    b"\x12\x0c\x0a\x0a\x42\x08\x08\x01\x10\x80\x94\xeb\xdc\x03",
                ]
                .concat(),
            ),
            |e| matches!(e, ProtoError::InvalidValue { .. }),
        ),
    ];
    for (name, bytes, expected) in cases {
        match decode(&bytes) {
            Err(err) => assert!(expected(&err), "{name}: unexpected error {err:?}"),
            Ok(value) => panic!("{name}: decoded to {value}"),
        }
    }
}

#[test]
fn unknown_field_numbers_are_skipped() {
    // Namespace with ObjectMeta.name plus unknown fields 99 (varint), 100 (bytes), 101 (fixed32).
    let mut raw = b"\x0a\x06\x0a\x04team".to_vec();
    raw.extend_from_slice(&[
        0x98, 0x06, 0x07, 0xa2, 0x06, 0x01, 0x00, 0xad, 0x06, 1, 2, 3, 4,
    ]);
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(b"\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12");
    body.push(raw.len() as u8);
    body.extend_from_slice(&raw);
    let expected = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(decode(&body).unwrap(), expected);
}

#[test]
fn packed_repeated_numbers_decode() {
    // PodSecurityContext.supplementalGroups (field 4) packed: [1, 300].
    let psc = schema::messages().get("PodSecurityContext").unwrap();
    let mut out = serde_json::Map::new();
    codec::decode_message(psc, &[0x22, 0x03, 0x01, 0xac, 0x02], &mut out).unwrap();
    assert_eq!(Value::Object(out), json!({"supplementalGroups": [1, 300]}));
}

#[test]
fn encoding_rejects_what_it_cannot_carry() {
    let cases = [
        (
            "unknown field",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"nmae": "x"}}),
        ),
        (
            "unknown kind",
            json!({"apiVersion": "v1", "kind": "Widget"}),
        ),
        ("no kind", json!({"apiVersion": "v1", "metadata": {}})),
        ("not an object", json!(["v1"])),
        (
            "bad base64",
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}}),
        ),
        (
            "int32 overflow",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 4_000_000_000u64}}),
        ),
        (
            "bad time",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}}),
        ),
        (
            "string for int",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "3"}}),
        ),
        (
            "object for list",
            json!({"apiVersion": "v1", "kind": "Namespace", "spec": {"finalizers": {"a": 1}}}),
        ),
    ];
    for (name, obj) in cases {
        assert!(encode(&obj).is_err(), "{name}: encoded");
    }
}

#[test]
fn delete_options_accept_any_group_version_and_drop_type_meta() {
    let eviction = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "web-1", "namespace": "default"},
        "deleteOptions": {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    });
    let decoded = decode(&encode(&eviction).unwrap()).unwrap();
    assert_eq!(decoded["deleteOptions"], json!({"gracePeriodSeconds": 0}));
    check(
        "apps/v1 DeleteOptions",
        &json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}),
    );
}

#[test]
fn round_trips_of_every_kind() {
    for (name, obj) in objects() {
        check(name, &obj);
    }
    let kinds: Vec<(String, String)> = objects()
        .iter()
        .map(|(_, o)| (o["apiVersion"].to_string(), o["kind"].to_string()))
        .collect();
    for (api_version, kind, _) in KINDS {
        assert!(
            kinds.contains(&(format!("{api_version:?}"), format!("{kind:?}"))),
            "no round trip for {kind}"
        );
    }
}

fn objects() -> Vec<(&'static str, Value)> {
    vec![
        ("rich pod", rich_pod()),
        ("pod with every volume source", volume_pod()),
        ("node", node()),
        (
            "service",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {
                    "ports": [
                        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                        {"name": "metrics", "protocol": "TCP", "appProtocol": "http", "port": 9090, "targetPort": 9091}
                    ],
                    "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "type": "NodePort", "externalIPs": ["192.0.2.1"], "sessionAffinity": "ClientIP",
                    "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "publishNotReadyAddresses": true,
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                    "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": false,
                    "internalTrafficPolicy": "Cluster", "trafficDistribution": "PreferClose"
                },
                "status": {
                    "loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP", "error": "Pending"}]}]},
                    "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2, "lastTransitionTime": "2026-01-01T00:00:05Z", "reason": "Ok", "message": ""}]
                }
            }),
        ),
        (
            "endpoints",
            json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "default"},
                "subsets": [{
                    "addresses": [{"ip": "10.0.0.5", "hostname": "web-0", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-1", "resourceVersion": "7"}}],
                    "notReadyAddresses": [{"ip": "10.0.0.6"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
                }]
            }),
        ),
        (
            "configmap",
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "b"}, "annotations": {"note": ""}},
                "immutable": false, "data": {"empty": "", "mode": "prod"}, "binaryData": {"blob": "AAEC/w=="}
            }),
        ),
        (
            "secret with binary data",
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "tls", "namespace": "default"},
                "immutable": true, "type": "kubernetes.io/tls",
                "data": {"tls.key": "AP8QgICAgA==", "empty": "", "ca.crt": "LS0tLS1CRUdJTg=="},
                "stringData": {"note": "plain text"}
            }),
        ),
        (
            "core event",
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "web.1", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u-1", "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
                "reason": "Pulled", "message": "pulled image", "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z", "count": 3, "type": "Normal",
                "eventTime": "2026-01-01T00:00:00.123456Z", "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000001Z"},
                "action": "Pull", "related": {"kind": "Node", "name": "n1"}, "reportingComponent": "", "reportingInstance": ""
            }),
        ),
        (
            "binding",
            json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
                "target": {"kind": "Node", "apiVersion": "v1", "name": "n1"}
            }),
        ),
        (
            "deployment as kubectl create deployment makes it, plus strategy",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null, "labels": {"app": "web"}, "generation": 4},
                "spec": {
                    "replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
                    "minReadySeconds": 5, "revisionHistoryLimit": 0, "paused": true, "progressDeadlineSeconds": 600
                },
                "status": {
                    "observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                    "unavailableReplicas": 1, "terminatingReplicas": 0, "collisionCount": 0,
                    "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "MinimumReplicasAvailable", "message": "ok"}]
                }
            }),
        ),
        (
            "replicaset",
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "web-5d4f", "namespace": "default",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-2", "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"replicas": 3, "minReadySeconds": 1, "selector": {"matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "Exists"}]},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
                "status": {"replicas": 0, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 2,
                    "conditions": [{"type": "ReplicaFailure", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
            }),
        ),
        (
            "endpointslice",
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
                    "hostname": "web-0", "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"},
                    "nodeName": "n1", "zone": "z1", "hints": {"forZones": [{"name": "z1"}], "forNodes": [{"name": "n1"}]}}],
                "ports": [{"name": "", "protocol": "TCP", "port": 8080, "appProtocol": "http"}]
            }),
        ),
        (
            "events.k8s.io event",
            json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "web.2", "namespace": "default"},
                "eventTime": "2026-01-01T00:00:00.000100Z", "series": {"count": 0, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
                "reportingController": "bosun.dev/scheduler", "reportingInstance": "sched-1", "action": "Binding", "reason": "Scheduled",
                "regarding": {"kind": "Pod", "name": "web"}, "related": {"kind": "Node", "name": "n1"}, "note": "assigned", "type": "Normal",
                "deprecatedSource": {"component": "scheduler"}, "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
                "deprecatedLastTimestamp": null, "deprecatedCount": 1
            }),
        ),
        (
            "lease",
            json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "acquireTime": "2026-01-01T00:00:00.000000Z",
                    "renewTime": "2026-01-01T00:00:30.250000Z", "leaseTransitions": 0, "strategy": "OldestEmulationVersion", "preferredHolder": "n2"}
            }),
        ),
        (
            "priorityclass",
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "zero"}, "value": 0, "globalDefault": true, "description": "d", "preemptionPolicy": "Never"
            }),
        ),
        (
            "deleteoptions",
            json!({
                "apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions",
                "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1", "resourceVersion": "12"}, "orphanDependents": false,
                "propagationPolicy": "Foreground", "dryRun": ["All"], "ignoreStoreReadErrorWithClusterBreakingPotential": false
            }),
        ),
        (
            "eviction",
            json!({
                "apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "web-0", "namespace": "default"},
                "deleteOptions": {"gracePeriodSeconds": 30, "preconditions": {"uid": "u-3"}}
            }),
        ),
        (
            "scale",
            json!({
                "apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": "web", "namespace": "default", "resourceVersion": "9"},
                "spec": {"replicas": 0}, "status": {"replicas": 2, "selector": "app=web"}
            }),
        ),
        (
            "namespace",
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team", "uid": "8a4c", "deletionTimestamp": "2026-01-02T03:04:05Z", "deletionGracePeriodSeconds": 0, "finalizers": ["x/y"]},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Terminating", "conditions": [{"type": "NamespaceDeletionContentFailure", "status": "False",
                    "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "ContentDeleted", "message": "done"}]}
            }),
        ),
    ]
}

fn rich_pod() -> Value {
    let container = json!({
        "name": "web", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"], "workingDir": "/srv",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "hostPort": 9090, "hostIP": "0.0.0.0"}],
        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg", "optional": true}}, {"secretRef": {"name": "sec"}}],
        "env": [
            {"name": "PLAIN", "value": "1"},
            {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "web", "resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode", "optional": false}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {"name": "FILE", "valueFrom": {"fileKeyRef": {"volumeName": "cfg", "path": "env", "key": "K", "optional": true}}}
        ],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
            "claims": [{"name": "gpu", "request": "one"}]},
        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
        "volumeMounts": [{"name": "cfg", "readOnly": true, "mountPath": "/etc/cfg", "subPath": "a", "mountPropagation": "None", "recursiveReadOnly": "Disabled"}],
        "volumeDevices": [{"name": "raw", "devicePath": "/dev/xvda"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP", "httpHeaders": [{"name": "X-Probe", "value": ""}]},
            "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
        "readinessProbe": {"tcpSocket": {"port": 8080, "host": "localhost"}},
        "startupProbe": {"grpc": {"port": 9090, "service": ""}, "failureThreshold": 30},
        "lifecycle": {"postStart": {"exec": {"command": ["touch", "/tmp/started"]}}, "preStop": {"sleep": {"seconds": 5}}, "stopSignal": "SIGTERM"},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
        "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}, "privileged": false,
            "runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": true, "readOnlyRootFilesystem": false, "allowPrivilegeEscalation": false,
            "procMount": "Default", "seccompProfile": {"type": "RuntimeDefault"}, "appArmorProfile": {"type": "Localhost", "localhostProfile": "p"},
            "seLinuxOptions": {"level": "s0:c1"}, "windowsOptions": {"hostProcess": false}},
        "stdin": true, "stdinOnce": true, "tty": true
    });
    let affinity = json!({
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}],
                "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
        },
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
            "namespaces": ["db"], "namespaceSelector": {}, "matchLabelKeys": ["pod-template-hash"]}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, "topologyKey": "kubernetes.io/hostname"}}]}
    });
    let spec_rest = json!({
        "hostname": "web-0", "subdomain": "web",
        "affinity": affinity,
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}, {"operator": "Exists"}],
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local"]}],
        "priorityClassName": "high", "priority": 0,
        "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc.local"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
        "readinessGates": [{"conditionType": "bosun.dev/ready"}], "runtimeClassName": "runc", "enableServiceLinks": false,
        "preemptionPolicy": "PreemptLowerPriority", "overhead": {"cpu": "10m"},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2, "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore", "matchLabelKeys": ["rev"]}],
        "setHostnameAsFQDN": false, "os": {"name": "linux"}, "hostUsers": false, "schedulingGates": [{"name": "wait"}],
        "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpu-template"}],
        "resources": {"limits": {"cpu": "2"}}
    });
    let status = json!({
        "observedGeneration": 2, "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:10Z"}],
        "message": "m", "reason": "r", "nominatedNodeName": "n2", "hostIP": "192.0.2.1", "hostIPs": [{"ip": "192.0.2.1"}],
        "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}], "startTime": "2026-01-01T00:00:01Z",
        "initContainerStatuses": [{"name": "init", "ready": false, "restartCount": 0, "image": "busybox", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:02Z", "finishedAt": "2026-01-01T00:00:03Z", "containerID": "containerd://1"}}}],
        "containerStatuses": [{"name": "web", "state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}},
            "lastState": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "ready": true, "restartCount": 1, "image": "nginx:1.27", "imageID": "docker.io/library/nginx@sha256:abc",
            "containerID": "containerd://2", "started": true, "allocatedResources": {"cpu": "250m"},
            "resources": {"requests": {"cpu": "250m"}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true, "recursiveReadOnly": "Disabled"}],
            "user": {"linux": {"uid": 1000, "gid": 0, "supplementalGroups": [0, 1]}},
            "allocatedResourcesStatus": [{"name": "claim:gpu/one", "resources": [{"resourceID": "gpu-0", "health": "Healthy"}]}],
            "stopSignal": "SIGTERM"}],
        "qosClass": "Burstable",
        "resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "web-0-gpu"}]
    });
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-0", "generateName": "web-", "namespace": "default", "uid": "0f1e", "resourceVersion": "42",
            "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "now"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "u-2", "controller": false}],
            "finalizers": ["bosun.dev/protect"],
            "managedFields": [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}, "subresource": "status"}]
        },
        "spec": {
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420, "optional": false}}],
            "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"], "restartPolicy": "Always"}],
            "containers": [container],
            "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "web", "stdin": true}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 600, "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "default", "serviceAccount": "default",
            "automountServiceAccountToken": false, "nodeName": "n1", "hostNetwork": true, "hostPID": true, "hostIPC": true,
            "shareProcessNamespace": false,
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "supplementalGroups": [1, 2], "supplementalGroupsPolicy": "Merge",
                "fsGroup": 2000, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}], "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "Localhost", "localhostProfile": "prof.json"}, "seLinuxChangePolicy": "Recursive"},
            "imagePullSecrets": [{"name": "regcred"}]
        },
        "status": status
    });
    let spec = pod["spec"].as_object_mut().unwrap();
    spec.extend(spec_rest.as_object().unwrap().clone());
    pod
}

fn volume_pod() -> Value {
    let secret_ref = json!({"name": "s"});
    let mut volumes = json!([
            {"name": "hostpath", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "emptydir", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "gce", "gcePersistentDisk": {"pdName": "pd", "fsType": "ext4", "partition": 1, "readOnly": true}},
            {"name": "ebs", "awsElasticBlockStore": {"volumeID": "vol-1", "partition": 2}},
            {"name": "git", "gitRepo": {"repository": "https://example.com/r.git", "revision": "main", "directory": "."}},
            {"name": "secret", "secret": {"secretName": "s", "items": [{"key": "k", "path": "p", "mode": 256}], "defaultMode": 420, "optional": true}},
            {"name": "nfs", "nfs": {"server": "nfs.local", "path": "/export", "readOnly": true}},
            {"name": "iscsi", "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0,
                "iscsiInterface": "default", "portals": ["10.0.0.2:3260"], "chapAuthDiscovery": true, "chapAuthSession": true,
                "secretRef": secret_ref, "initiatorName": "iqn.init"}},
            {"name": "gluster", "glusterfs": {"endpoints": "ep", "path": "vol", "readOnly": true}},
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "data", "readOnly": true}},
            {"name": "rbd", "rbd": {"monitors": ["m1"], "image": "img", "pool": "rbd", "user": "admin", "keyring": "/k", "secretRef": secret_ref, "readOnly": true}},
            {"name": "flex", "flexVolume": {"driver": "d", "fsType": "xfs", "secretRef": secret_ref, "options": {"a": "b"}}},
            {"name": "cinder", "cinder": {"volumeID": "v", "secretRef": secret_ref}},
            {"name": "cephfs", "cephfs": {"monitors": ["m"], "path": "/", "user": "u", "secretFile": "/f", "secretRef": secret_ref, "readOnly": true}},
            {"name": "flocker", "flocker": {"datasetName": "ds", "datasetUUID": "uuid"}}
    ]);
    let more = json!([
            {"name": "downward", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1"}, "mode": 0}], "defaultMode": 0}},
            {"name": "fc", "fc": {"targetWWNs": ["w"], "lun": 0, "fsType": "ext4", "wwids": ["id"]}},
            {"name": "azurefile", "azureFile": {"secretName": "s", "shareName": "share", "readOnly": true}},
            {"name": "configmap", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "p"}]}},
            {"name": "vsphere", "vsphereVolume": {"volumePath": "[ds] v.vmdk", "fsType": "ext4", "storagePolicyName": "gold", "storagePolicyID": "id"}},
            {"name": "quobyte", "quobyte": {"registry": "r:7861", "volume": "v", "readOnly": true, "user": "u", "group": "g", "tenant": "t"}},
            {"name": "azuredisk", "azureDisk": {"diskName": "d", "diskURI": "uri", "cachingMode": "ReadWrite", "fsType": "ext4", "readOnly": false, "kind": "Managed"}},
            {"name": "photon", "photonPersistentDisk": {"pdID": "p", "fsType": "ext4"}},
            {"name": "projected", "projected": {"defaultMode": 420, "sources": [
                {"secret": {"name": "s", "items": [{"key": "k", "path": "p"}], "optional": false}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}},
                {"configMap": {"name": "cfg", "optional": true}},
                {"serviceAccountToken": {"audience": "api", "expirationSeconds": 3600, "path": "token"}},
                {"clusterTrustBundle": {"signerName": "example.com/s", "labelSelector": {"matchLabels": {"a": "b"}}, "optional": true, "path": "ca.pem"}},
                {"podCertificate": {"signerName": "example.com/s", "keyType": "ED25519", "maxExpirationSeconds": 86400,
                    "credentialBundlePath": "bundle.pem", "userAnnotations": {"example.com/a": "b"}}}
            ]}},
            {"name": "portworx", "portworxVolume": {"volumeID": "v", "fsType": "ext4", "readOnly": true}},
            {"name": "scaleio", "scaleIO": {"gateway": "g", "system": "s", "secretRef": secret_ref, "sslEnabled": true,
                "protectionDomain": "pd", "storagePool": "sp", "storageMode": "ThinProvisioned", "volumeName": "v", "fsType": "xfs", "readOnly": true}},
            {"name": "storageos", "storageos": {"volumeName": "v", "volumeNamespace": "ns", "fsType": "ext4", "readOnly": true, "secretRef": secret_ref}},
            {"name": "csi", "csi": {"driver": "csi.example.com", "readOnly": false, "fsType": "ext4", "volumeAttributes": {"a": "b"}, "nodePublishSecretRef": secret_ref}},
            {"name": "ephemeral", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "accessModes": ["ReadWriteOnce"], "selector": {"matchLabels": {"tier": "fast"}},
                "resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}, "volumeName": "pv-1",
                "storageClassName": "", "volumeMode": "Filesystem", "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
                "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "src", "namespace": "other"}, "volumeAttributesClassName": "gold"}}}},
            {"name": "image", "image": {"reference": "registry.example/data:v1", "pullPolicy": "IfNotPresent"}}
    ]);
    volumes
        .as_array_mut()
        .unwrap()
        .extend(more.as_array().unwrap().iter().cloned());
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "volumes", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes}
    })
}

fn node() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:1::/64"], "providerID": "bosun://n1", "unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z"},
                {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}],
            "configSource": {"configMap": {"namespace": "kube-system", "name": "kubelet", "kubeletConfigKey": "kubelet"}},
            "externalID": "n1"},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100G", "hugepages-2Mi": "0"},
            "allocatable": {"cpu": "3800m", "memory": "15.5Gi", "pods": "110"},
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:10:00Z",
                "lastTransitionTime": "2026-01-01T00:00:30Z", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}, {"type": "Hostname", "address": "n1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.8.0", "osImage": "Ubuntu 24.04",
                "containerRuntimeVersion": "containerd://2.0.0", "kubeletVersion": "v1.33.1", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64", "swap": {"capacity": 0}},
            "images": [{"names": ["nginx:1.27"], "sizeBytes": 72_000_000}, {"names": ["pause"]}],
            "volumesInUse": ["kubernetes.io/csi/d^v"], "volumesAttached": [{"name": "kubernetes.io/csi/d^v", "devicePath": ""}],
            "config": {"active": {"configMap": {"namespace": "kube-system", "name": "kubelet", "uid": "u", "resourceVersion": "1", "kubeletConfigKey": "kubelet"}}, "error": "e"},
            "runtimeHandlers": [{"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": false}}],
            "features": {"supplementalGroupsPolicy": true},
            "declaredFeatures": ["InPlacePodVerticalScaling"]
        }
    })
}
