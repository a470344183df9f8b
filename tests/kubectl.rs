//! kubectl v1.32 against a real `bosun up`: discovery, create/apply, get in every output
//! format, describe, label, annotate, scale, the three patch types, server-side apply with
//! its conflicts and managed fields, delete, and watch.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cluster, lines_of, wait_for_line};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.26
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"#;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: p1
  labels: {tier: backend}
spec:
  containers:
  - name: c
    image: busybox:1.36
    resources:
      requests: {cpu: 100m, memory: 64Mi}
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"#;

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {team: a}
data:
  mode: fast
"#;

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {zone: z1}
status:
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
"#;

#[test]
fn discovery_lists_every_served_resource() {
    let c = Cluster::up();
    let out = c.kubectl(&["api-resources"]);
    for line in [
        "pods ",
        "po ",
        "nodes ",
        "services ",
        "endpoints ",
        "configmaps ",
        "secrets ",
        "namespaces ",
        "events ",
        "deployments ",
        "replicasets ",
        "endpointslices ",
        "leases ",
        "priorityclasses ",
    ] {
        assert!(out.contains(line), "api-resources lacks {line:?}:\n{out}");
    }
    assert!(out.contains("apps/v1"), "{out}");
    assert!(out.contains("coordination.k8s.io/v1"), "{out}");
    let version = c.kubectl(&["version", "-o", "json"]);
    assert!(version.contains("\"serverVersion\""), "{version}");
    let ns = c.kubectl(&["get", "namespaces"]);
    for want in [
        "NAME",
        "STATUS",
        "AGE",
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "Active",
    ] {
        assert!(ns.contains(want), "{want} missing:\n{ns}");
    }
}

#[test]
fn create_apply_reapply_and_get_in_every_format() {
    let c = Cluster::up();
    let out = c.kubectl_stdin(&["create", "-f", "-"], POD);
    assert_eq!(out.trim(), "pod/p1 created");
    assert!(
        c.kubectl_with_stdin(&["create", "-f", "-"], Some(POD))
            .status
            .code()
            != Some(0)
    );

    let out = c.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert_eq!(out.trim(), "deployment.apps/web created");
    // Someone else labels the deployment; a re-apply with a new image must keep it.
    c.kubectl(&["label", "deployment", "web", "owner=ops"]);
    let changed = DEPLOYMENT.replace("nginx:1.26", "nginx:1.27");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert_eq!(out.trim(), "deployment.apps/web configured");
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.27"
    );
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[1].image}"
        ),
        "busybox:1.36"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.labels.owner}"),
        "ops"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.generation}"),
        "2"
    );
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert_eq!(out.trim(), "deployment.apps/web unchanged");

    let table = c.kubectl(&["get", "deploy", "web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("web "), "{table}");
    let wide = c.kubectl(&["get", "deploy", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap().contains("CONTAINERS"),
        "{wide}"
    );
    assert!(
        wide.contains("nginx,sidecar")
            && wide.contains("nginx:1.27,busybox:1.36")
            && wide.contains("app=web"),
        "{wide}"
    );
    let pods = c.kubectl(&["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert!(
        pods.contains("p1 ") && pods.contains("0/1") && pods.contains("Pending"),
        "{pods}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&c.kubectl(&["get", "pod", "p1", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["spec"]["restartPolicy"], "Always");
    assert_eq!(json["status"]["qosClass"], "Burstable");
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let yaml = c.kubectl(&["get", "pod", "p1", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("terminationGracePeriodSeconds: 30"),
        "{yaml}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&c.kubectl(&["get", "pods", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    c.kubectl_stdin(&["apply", "-f", "-"], SERVICE);
    let svc = c.kubectl(&["get", "svc", "web"]);
    assert!(svc.contains("NodePort") && svc.contains("80:3"), "{svc}");
    let ip = c.jsonpath(&["svc", "web"], "{.spec.clusterIP}");
    let addr: std::net::Ipv4Addr = ip.parse().unwrap();
    // Inside the default service CIDR 10.96.0.0/12.
    assert_eq!(
        u32::from(addr) & 0xfff0_0000,
        u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)),
        "{ip}"
    );
    // Re-applying a service keeps its allocated address and node port.
    let np = c.jsonpath(&["svc", "web"], "{.spec.ports[0].nodePort}");
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        &SERVICE.replace("targetPort: 8080", "targetPort: 9090"),
    );
    assert_eq!(c.jsonpath(&["svc", "web"], "{.spec.clusterIP}"), ip);
    assert_eq!(c.jsonpath(&["svc", "web"], "{.spec.ports[0].nodePort}"), np);
    assert_eq!(
        c.jsonpath(&["svc", "web"], "{.spec.ports[0].targetPort}"),
        "9090"
    );
}

/// `kubectl apply --server-side` (KEP-555): create, re-apply, a conflicting manager,
/// `--force-conflicts`, and the managers `--show-managed-fields` shows.
#[test]
fn server_side_apply_conflicts_force_and_managed_fields() {
    let c = Cluster::up();
    let ssa = ["apply", "--server-side", "-f", "-"];
    let out = c.kubectl_stdin(&ssa, DEPLOYMENT);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    c.kubectl(&["label", "deployment", "web", "owner=ops"]);
    let changed = DEPLOYMENT.replace("nginx:1.26", "nginx:1.27");
    let out = c.kubectl_stdin(&ssa, &changed);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let image = "{.spec.template.spec.containers[0].image}";
    assert_eq!(c.jsonpath(&["deploy", "web"], image), "nginx:1.27");
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[1].image}"
        ),
        "busybox:1.36"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.labels.owner}"),
        "ops"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.generation}"),
        "2"
    );

    // Another manager changing kubectl's replicas conflicts, and nothing changes.
    let scaled = changed.replace("replicas: 2", "replicas: 3");
    let other = ["apply", "--server-side", "--field-manager=other", "-f", "-"];
    let out = c.kubectl_with_stdin(&other, Some(&scaled));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#),
        "{stderr}"
    );
    assert!(stderr.contains("--force-conflicts"), "{stderr}");
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "2");

    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
    ];
    c.kubectl_stdin(&forced, &scaled);
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "3");

    let yaml = c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    for want in [
        "managedFields:",
        "manager: kubectl\n",
        "manager: other",
        "manager: kubectl-label",
        "operation: Apply",
        "operation: Update",
        "fieldsType: FieldsV1",
        r#"k:{"name":"nginx"}:"#,
        "f:replicas: {}",
    ] {
        assert!(yaml.contains(want), "{want:?} missing:\n{yaml}");
    }
    let plain = c.kubectl(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // A service re-applied server-side keeps the address and node port the server
    // allocated (nobody owns them, so no apply removes them).
    c.kubectl_stdin(&ssa, SERVICE);
    let ip = c.jsonpath(&["svc", "web"], "{.spec.clusterIP}");
    let np = c.jsonpath(&["svc", "web"], "{.spec.ports[0].nodePort}");
    c.kubectl_stdin(
        &ssa,
        &SERVICE.replace("targetPort: 8080", "targetPort: 9090"),
    );
    assert_eq!(c.jsonpath(&["svc", "web"], "{.spec.clusterIP}"), ip);
    assert_eq!(c.jsonpath(&["svc", "web"], "{.spec.ports[0].nodePort}"), np);
    assert_eq!(
        c.jsonpath(&["svc", "web"], "{.spec.ports[0].targetPort}"),
        "9090"
    );
}

/// A client-side applied object moves to server-side apply without conflicts (kubectl's
/// documented upgrade path), and client-side apply keeps working afterwards.
#[test]
fn client_side_apply_upgrades_to_server_side_apply() {
    let c = Cluster::up();
    c.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    let changed = DEPLOYMENT.replace("nginx:1.26", "nginx:1.27");
    let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &changed);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let image = "{.spec.template.spec.containers[0].image}";
    assert_eq!(c.jsonpath(&["deploy", "web"], image), "nginx:1.27");
    let last = c.jsonpath(
        &["deploy", "web"],
        r#"{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}"#,
    );
    assert!(last.contains("nginx:1.27"), "{last}");
    // kubectl rewrote the managers first (its csaupgrade JSON patch of managedFields):
    // the client-side apply manager's fields now belong to the `kubectl` applier.
    let managers = c.jsonpath(&["deploy", "web"], "{.metadata.managedFields[*].manager}");
    let managers: Vec<&str> = managers.split_whitespace().collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");
    assert!(
        !managers.contains(&"kubectl-client-side-apply"),
        "{managers:?}"
    );

    let back = DEPLOYMENT.replace("nginx:1.26", "nginx:1.28");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &back);
    assert_eq!(out.trim(), "deployment.apps/web configured");
    assert_eq!(c.jsonpath(&["deploy", "web"], image), "nginx:1.28");
}

#[test]
fn describe_label_annotate_scale_and_patch() {
    let c = Cluster::up();
    c.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    c.kubectl_stdin(&["create", "-f", "-"], POD);
    c.kubectl_stdin(&["create", "-f", "-"], NODE);

    let d = c.kubectl(&["describe", "deployment", "web"]);
    assert!(
        d.contains("Name:")
            && d.contains("web")
            && d.contains("Replicas:")
            && d.contains("nginx:1.26"),
        "{d}"
    );
    let d = c.kubectl(&["describe", "pod", "p1"]);
    assert!(
        d.contains("Status:")
            && d.contains("Pending")
            && d.contains("QoS Class:")
            && d.contains("Burstable"),
        "{d}"
    );
    let d = c.kubectl(&["describe", "node", "node-1"]);
    assert!(d.contains("node-1") && d.contains("Capacity:"), "{d}");

    assert_eq!(
        c.kubectl(&["label", "pod", "p1", "env=prod"]).trim(),
        "pod/p1 labeled"
    );
    assert_eq!(c.jsonpath(&["pod", "p1"], "{.metadata.labels.env}"), "prod");
    c.kubectl(&["label", "pod", "p1", "env-"]);
    assert_eq!(c.jsonpath(&["pod", "p1"], "{.metadata.labels.env}"), "");
    let err = c.kubectl_fails(&["label", "pod", "p1", "tier=frontend"]);
    assert!(err.contains("already has a value"), "{err}");
    c.kubectl(&["label", "pod", "p1", "tier=frontend", "--overwrite"]);
    assert_eq!(
        c.jsonpath(&["pod", "p1"], "{.metadata.labels.tier}"),
        "frontend"
    );
    assert_eq!(
        c.kubectl(&["annotate", "node", "node-1", "note=hello"])
            .trim(),
        "node/node-1 annotated"
    );
    assert_eq!(
        c.jsonpath(&["node", "node-1"], "{.metadata.annotations.note}"),
        "hello"
    );

    assert_eq!(
        c.kubectl(&["scale", "deployment", "web", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "5");
    let err = c.kubectl_fails(&[
        "scale",
        "deployment",
        "web",
        "--replicas=3",
        "--current-replicas=4",
    ]);
    assert!(
        err.contains("expected")
            || err.contains("precondition")
            || err.contains("Conflict")
            || err.contains("4"),
        "{err}"
    );

    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#,
    ]);
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[*].image}"
        ),
        "nginx:1.28 busybox:1.36"
    );
    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"merged":"yes"}}}"#,
    ]);
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.labels.merged}"),
        "yes"
    );
    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
    ]);
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "1");
    let err = c.kubectl_fails(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":7}]"#,
    ]);
    assert!(!err.is_empty());
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "1");
    c.kubectl(&[
        "patch",
        "node",
        "node-1",
        "-p",
        r#"{"spec":{"unschedulable":true}}"#,
    ]);
    let nodes = c.kubectl(&["get", "nodes"]);
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
}

#[test]
fn delete_by_name_selector_and_all() {
    let c = Cluster::up();
    c.kubectl(&["create", "namespace", "team"]);
    for i in 0..3 {
        let pod = POD.replace("name: p1", &format!("name: p{i}")).replace(
            "tier: backend",
            if i == 0 { "tier: web" } else { "tier: db" },
        );
        c.kubectl_stdin(&["create", "-n", "team", "-f", "-"], &pod);
    }
    c.kubectl_stdin(&["apply", "-n", "team", "-f", "-"], DEPLOYMENT);
    c.kubectl_stdin(&["apply", "-n", "team", "-f", "-"], SERVICE);
    c.kubectl_stdin(&["apply", "-n", "team", "-f", "-"], CONFIGMAP);
    c.kubectl_stdin(&["create", "-f", "-"], NODE);
    c.kubectl_stdin(&["create", "-f", "-"], &NODE.replace("node-1", "node-2"));

    assert_eq!(
        c.kubectl(&["delete", "pod", "p0", "-n", "team"]).trim(),
        "pod \"p0\" deleted"
    );
    let out = c.kubectl(&["delete", "pods", "-n", "team", "-l", "tier=db"]);
    assert!(
        out.contains("\"p1\" deleted") && out.contains("\"p2\" deleted"),
        "{out}"
    );
    let left = c.kubectl_output(&["get", "pods", "-n", "team"]);
    assert!(
        String::from_utf8_lossy(&left.stderr).contains("No resources found"),
        "{left:?}"
    );
    assert!(
        c.kubectl(&["delete", "deployment", "web", "-n", "team"])
            .contains("deleted")
    );
    assert!(
        c.kubectl(&["delete", "service", "--all", "-n", "team"])
            .contains("\"web\" deleted")
    );
    assert!(
        c.kubectl(&["delete", "configmap", "-l", "team=a", "-n", "team"])
            .contains("\"settings\" deleted")
    );
    assert!(
        c.kubectl(&["delete", "nodes", "--all"])
            .contains("\"node-2\" deleted")
    );
    assert!(
        c.kubectl_fails(&["get", "node", "node-1"])
            .contains("NotFound")
    );

    // Namespace deletion removes what is inside.
    c.kubectl_stdin(&["apply", "-n", "team", "-f", "-"], CONFIGMAP);
    assert!(
        c.kubectl(&["delete", "namespace", "team"])
            .contains("\"team\" deleted")
    );
    let err = c.kubectl_fails(&["get", "namespace", "team"]);
    assert!(err.contains("not found"), "{err}");
    let cms = c.kubectl(&["get", "configmaps", "-A", "-o", "name"]);
    assert!(!cms.contains("settings"), "{cms}");
}

#[test]
fn get_watch_shows_writes_from_another_client() {
    let c = Cluster::up();
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["get", "pods", "-w", "--request-timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(watch.stdout.take().unwrap());
    // An empty namespace prints nothing on stdout until the first event, so create the
    // pod now: either the initial list or the watch must show it.
    c.kubectl_stdin(&["create", "-f", "-"], POD);
    let seen = wait_for_line(&lines, Duration::from_secs(30), |l| {
        l.starts_with("p1 ") && l.contains("Pending")
    });
    assert!(seen.is_ok(), "watch never showed p1: {seen:?}");
    c.kubectl(&["label", "pod", "p1", "seen=yes"]);
    c.kubectl(&["delete", "pod", "p1"]);
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn bad_input_is_rejected_with_the_right_status_and_nothing_changes() {
    let c = Cluster::up();
    let err = c.kubectl_with_stdin(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n"));
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        !err.status.success() && stderr.contains("Invalid value: \"Bad_Name\""),
        "{stderr}"
    );
    let err = c.kubectl_with_stdin(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: [{name: c, image: x, resources: {requests: {cpu: lots}}}]}\n"));
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        !err.status.success() && stderr.contains("spec.containers[0].resources.requests[cpu]"),
        "{stderr}"
    );
    let err = c.kubectl_fails(&["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    let pods = c.kubectl_output(&["get", "pods"]);
    assert!(String::from_utf8_lossy(&pods.stderr).contains("No resources found"));
}

#[test]
fn generator_commands_send_protobuf_and_work() {
    // kubectl's `create <generator>` commands post Kubernetes protobuf, not JSON.
    let c = Cluster::up();
    assert_eq!(
        c.kubectl(&["create", "namespace", "gen"]).trim(),
        "namespace/gen created"
    );
    let ns = ["-n", "gen"];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&ns);
        c.kubectl(&all)
    };
    assert!(
        run(&["create", "configmap", "cfg", "--from-literal=mode=fast"])
            .contains("configmap/cfg created")
    );
    assert_eq!(
        c.jsonpath(&["configmap", "cfg", "-n", "gen"], "{.data.mode}"),
        "fast"
    );
    assert!(
        run(&[
            "create",
            "secret",
            "generic",
            "sec",
            "--from-literal=pw=s3cret"
        ])
        .contains("secret/sec created")
    );
    assert_eq!(
        c.jsonpath(&["secret", "sec", "-n", "gen"], "{.data.pw}"),
        "czNjcmV0"
    );
    assert!(
        run(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3",
            "--port=80"
        ])
        .contains("deployment.apps/web created")
    );
    assert_eq!(
        c.jsonpath(
            &["deploy", "web", "-n", "gen"],
            "{.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort}"
        ),
        "3 80"
    );
    assert!(
        run(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
            .contains("service/web created")
    );
    assert_eq!(
        c.jsonpath(&["svc", "web", "-n", "gen"], "{.spec.ports[0].targetPort}"),
        "8080"
    );
    assert!(
        c.kubectl(&[
            "create",
            "priorityclass",
            "high",
            "--value=1000",
            "--description=important"
        ])
        .contains("priorityclass.scheduling.k8s.io/high created")
    );
    assert_eq!(c.jsonpath(&["priorityclass", "high"], "{.value}"), "1000");
    assert!(
        run(&["expose", "deployment", "web", "--name=web2", "--port=81"])
            .contains("service/web2 exposed")
    );
    let err = c.kubectl_fails(&["create", "namespace", "Bad_NS"]);
    assert!(err.contains("Invalid value: \"Bad_NS\""), "{err}");
}

#[test]
fn objects_survive_a_restart_on_the_embedded_store() {
    let mut c = Cluster::up();
    c.kubectl(&["create", "namespace", "durable"]);
    c.kubectl(&[
        "create",
        "configmap",
        "keep",
        "-n",
        "durable",
        "--from-literal=a=b",
    ]);
    c.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    let rv_before = c.jsonpath(&["deploy", "web"], "{.metadata.resourceVersion}");
    c.restart();
    assert_eq!(
        c.jsonpath(&["configmap", "keep", "-n", "durable"], "{.data.a}"),
        "b"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.resourceVersion}"),
        rv_before
    );
    // Revisions keep counting up from where they were.
    c.kubectl(&["label", "deploy", "web", "after=restart"]);
    let rv_after: i64 = c
        .jsonpath(&["deploy", "web"], "{.metadata.resourceVersion}")
        .parse()
        .unwrap();
    assert!(rv_after > rv_before.parse::<i64>().unwrap());
}

const SMALL_NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: small
status:
  capacity: {cpu: "1", memory: 4Gi, pods: "110"}
"#;

#[test]
fn the_scheduler_binds_pods_and_reports_failed_scheduling() {
    let c = Cluster::up_with_scheduler();
    c.kubectl_stdin(&["create", "-f", "-"], SMALL_NODE);
    c.kubectl(&["run", "fits", "--image=busybox:1.36", "--overrides", r#"{"spec":{"containers":[{"name":"fits","image":"busybox:1.36","resources":{"requests":{"cpu":"500m"}}}]}}"#]);
    c.kubectl(&["run", "big", "--image=busybox:1.36", "--overrides", r#"{"spec":{"containers":[{"name":"big","image":"busybox:1.36","resources":{"requests":{"cpu":"2"}}}]}}"#]);
    let bound = |pod: &str| c.jsonpath(&["pod", pod], "{.spec.nodeName}");
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("fits to be bound", &|| bound("fits") == "small");
    let events = || {
        c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=big",
            "-o",
            "jsonpath={.items[*].message}",
        ])
    };
    wait("a FailedScheduling event for big", &|| {
        events().contains("0/1 nodes are available")
    });
    assert!(events().contains("Insufficient cpu"), "{}", events());
    assert_eq!(bound("big"), "");
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &SMALL_NODE
            .replace("small", "large")
            .replace("cpu: \"1\"", "cpu: \"8\""),
    );
    wait("big to be bound to the new node", &|| {
        bound("big") == "large"
    });
    let scheduled = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=Scheduled",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        scheduled.contains("Successfully assigned default/fits to small"),
        "{scheduled}"
    );
}

const PREEMPTION: &str = r#"
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
---
apiVersion: v1
kind: Pod
metadata:
  name: low
spec:
  # No kubelet finishes a graceful termination yet: the victim goes at once.
  terminationGracePeriodSeconds: 0
  containers:
  - name: low
    image: busybox:1.36
    resources: {requests: {cpu: 800m}}
"#;

const PREEMPTOR: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: high
spec:
  priorityClassName: high
  containers:
  - name: high
    image: busybox:1.36
    resources: {requests: {cpu: 800m}}
"#;

#[test]
fn a_higher_priority_pod_preempts_a_lower_priority_one() {
    let c = Cluster::up_with_scheduler();
    c.kubectl_stdin(&["create", "-f", "-"], SMALL_NODE);
    c.kubectl_stdin(&["create", "-f", "-"], PREEMPTION);
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let bound = |pod: &str| c.jsonpath(&["pod", pod], "{.spec.nodeName}");
    wait("low to be bound", &|| bound("low") == "small");
    c.kubectl_stdin(&["create", "-f", "-"], PREEMPTOR);
    wait("high to be bound in low's place", &|| {
        c.kubectl_output(&["get", "pod", "high", "-o", "jsonpath={.spec.nodeName}"])
            .stdout
            == b"small"
    });
    let gone = c.kubectl_fails(&["get", "pod", "low"]);
    assert!(gone.contains("NotFound"), "{gone}");
    let preempted = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=low,reason=Preempted",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(preempted.contains("on node small"), "{preempted}");
    let metrics = c.kubectl(&["get", "--raw", "/metrics"]);
    assert!(
        metrics
            .lines()
            .any(|l| l == "scheduler_preemption_attempts_total 1"),
        "no preemption counted in\n{metrics}"
    );
}
