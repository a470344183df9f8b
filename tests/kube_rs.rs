//! The `kube` crate (kube-rs) against `bosun up`: typed CRUD on pods and nodes, server-side
//! apply as controllers use it, and a `watcher` stream that keeps going across server-side
//! watch timeouts.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::json;

async fn client(c: &common::Cluster) -> kube::Client {
    let kc = Kubeconfig::read_from(&c.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "kube-rs"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
    .unwrap()
}

/// `Patch::Apply` with a field manager: create, a second manager's conflict as a typed
/// 409, and a forced take-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_server_side_apply() {
    let c = common::Cluster::up();
    let cms: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let config = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"mode": v}});
    let applied = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-a"),
            &Patch::Apply(config("fast")),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["mode"], "fast");
    let managers = applied.metadata.managed_fields.unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0].manager.as_deref(), Some("controller-a"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

    let err = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-b"),
            &Patch::Apply(config("slow")),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}"),
        other => panic!("unexpected error {other:?}"),
    }
    let forced = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-b").force(),
            &Patch::Apply(config("slow")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["mode"], "slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_crud_on_pods_and_nodes() {
    let c = common::Cluster::up();
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("kr-1"))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().scheduler_name.as_deref(),
        Some("default-scheduler")
    );
    let err = pods
        .create(&PostParams::default(), &pod("kr-1"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("unexpected error {other:?}"),
    }
    let listed = pods
        .list(&ListParams::default().labels("app=kube-rs"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let patched = pods
        .patch(
            "kr-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.annotations.unwrap()["a"], "b");
    pods.delete("kr-1", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("kr-1").await.unwrap().is_none());

    let nodes: Api<Node> = Api::all(client);
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "kr-node"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let got = nodes.get("kr-node").await.unwrap();
    assert!(got.metadata.resource_version.is_some());
    nodes
        .delete("kr-node", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

type Events = futures::stream::BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>>;

/// The next watcher event, failing the test if none comes within 30 s.
async fn next_event(stream: &mut Events) -> Option<Result<watcher::Event<Pod>, watcher::Error>> {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("watcher stalled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_survives_server_side_timeouts() {
    let c = common::Cluster::up();
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    // The server ends each watch after 1 s; the watcher must re-watch and carry on.
    let mut stream: Events = watcher(pods.clone(), watcher::Config::default().timeout(1)).boxed();
    loop {
        match next_event(&mut stream).await.unwrap().unwrap() {
            watcher::Event::InitDone => break,
            _ => continue,
        }
    }
    // Outlive several server-side timeouts, then write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pods.create(&PostParams::default(), &pod("kr-late"))
        .await
        .unwrap();
    loop {
        match next_event(&mut stream).await.unwrap() {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p))
                if p.metadata.name.as_deref() == Some("kr-late") =>
            {
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("watcher error: {e}"),
        }
    }
}
