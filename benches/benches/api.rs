//! Per-object work of one API request: decode a typical Pod from JSON, default and
//! validate it, encode it back; and the field management every write adds (decode the
//! stored `managedFields`, compare the versions, record the writer, encode the list).

use std::hint::black_box;

use bosun_api::kinds::{ApiKind, validate_create};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;

#[global_allocator]
static ALLOC: bosun_benches::Allocator = bosun_benches::ALLOCATOR;

/// A Pod shaped like a typical Deployment-managed one: two containers with resources,
/// ports, env, probes' worth of fields, labels and an owner reference.
pub const TYPICAL_POD: &str = r#"{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "name": "web-7d4b9c8f6d-x2x4k", "namespace": "default", "generateName": "web-7d4b9c8f6d-",
    "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
      "uid": "0b7c6f7e-3c4a-4b8e-9d55-1c5b8a8f0e11", "controller": true, "blockOwnerDeletion": true}]
  },
  "spec": {
    "containers": [
      {"name": "nginx", "image": "nginx:1.27",
       "ports": [{"containerPort": 80, "name": "http"}],
       "env": [{"name": "MODE", "value": "prod"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
       "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
       "volumeMounts": [{"name": "cfg", "mountPath": "/etc/nginx/conf.d"}]},
      {"name": "sidecar", "image": "busybox:1.36", "command": ["sh", "-c", "sleep infinity"],
       "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
    ],
    "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]
  }
}"#;

fn bench_pod(c: &mut Criterion) {
    let mut g = c.benchmark_group("api/pod");
    g.throughput(Throughput::Bytes(TYPICAL_POD.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| serde_json::from_str::<Pod>(black_box(TYPICAL_POD)).unwrap())
    });
    let pod: Pod = serde_json::from_str(TYPICAL_POD).unwrap();
    g.bench_function("default+validate", |b| {
        b.iter(|| {
            let mut p = pod.clone();
            p.default_fields();
            p.prepare_for_create();
            assert!(validate_create(black_box(&p)).is_empty());
        })
    });
    g.bench_function("encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&pod)).unwrap())
    });
    g.bench_function("decode+default+validate+encode", |b| {
        b.iter(|| {
            let mut p: Pod = serde_json::from_str(black_box(TYPICAL_POD)).unwrap();
            p.default_fields();
            p.prepare_for_create();
            assert!(validate_create(&p).is_empty());
            serde_json::to_vec(&p).unwrap()
        })
    });
    g.finish();
}

fn bench_field_management(c: &mut Criterion) {
    use bosun_api::fieldmanager::{self, Managed, WriteInfo, reset_fields};
    use bosun_api::patch::schema_for;

    let mut pod: serde_json::Value = serde_json::from_str(TYPICAL_POD).unwrap();
    let reset = reset_fields(true, "");
    let write = |manager| WriteInfo {
        schema: schema_for("v1", "Pod"),
        api_version: "v1",
        manager,
        subresource: "",
        reset: &reset,
        now: "2026-01-01T00:00:00Z",
    };
    let mut g = c.benchmark_group("api/fieldmanager");
    // A create: the whole object becomes the creator's entry.
    let empty = serde_json::json!({});
    g.bench_function("create", |b| {
        b.iter(|| {
            let mut m = Managed::default();
            fieldmanager::update(&empty, black_box(&pod), &mut m, &write("creator"));
            m.into_encoded()
        })
    });
    // The stored pod as its creator left it.
    let mut managed = Managed::default();
    fieldmanager::update(
        &serde_json::json!({}),
        &pod,
        &mut managed,
        &write("creator"),
    );
    pod["metadata"]["managedFields"] = managed.encode().unwrap();
    let mut labelled = pod.clone();
    labelled["metadata"]["labels"]["rev"] = serde_json::json!("2");
    g.bench_function("update-one-label", |b| {
        b.iter(|| {
            let mut m = Managed::decode_stored(&pod["metadata"]["managedFields"]).unwrap();
            fieldmanager::update(
                black_box(&pod),
                black_box(&labelled),
                &mut m,
                &write("labeler"),
            );
            m.encode()
        })
    });
    let config = serde_json::from_str::<serde_json::Value>(TYPICAL_POD).unwrap();
    g.bench_function("apply-whole-pod", |b| {
        b.iter(|| {
            let m = Managed::decode_stored(&pod["metadata"]["managedFields"]).unwrap();
            let (obj, m) = fieldmanager::apply(
                black_box(&pod),
                black_box(&config),
                &m,
                &write("kubectl"),
                true,
            )
            .unwrap();
            (obj, m.encode())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_pod, bench_field_management);
criterion_main!(benches);
