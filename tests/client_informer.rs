//! bosun-client against `bosun up`: an informer with a node index converges on writes
//! made by kubectl, and feeds a work queue as a controller's would.

mod common;

use std::time::Duration;

use bosun_client::{Api, Client, Config, Informer, InformerConfig, WorkQueue};
use k8s_openapi::api::core::v1::Pod;

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: NAME\nspec:\n  nodeName: NODE\n  containers:\n  - {name: c, image: busybox:1.36}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_cache_and_queue_follow_the_server() {
    let c = common::Cluster::up();
    let client = Client::new(Config::from_kubeconfig(&c.kubeconfig).unwrap()).unwrap();
    // Some state before the informer starts (seen by its LIST), some after (its WATCH).
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &POD.replace("NAME", "a").replace("NODE", "n1"),
    );
    let mut informer = Informer::new(Api::<Pod>::all(client.clone()), InformerConfig::default());
    informer
        .store()
        .add_index("node", |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .into_iter()
                .collect()
        })
        .unwrap();
    let queue = WorkQueue::<String>::new(1000);
    let q = queue.clone();
    informer.add_handler(move |ev| {
        let _ = q.add(ev.key());
    });
    let informer = informer.spawn();
    assert!(
        tokio::time::timeout(Duration::from_secs(30), informer.wait_synced())
            .await
            .unwrap()
    );
    let store = informer.store();
    assert!(store.get("default/a").is_some());

    let kubectl = |args: Vec<String>, stdin: Option<String>| {
        let dir = c.kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new("kubectl");
            cmd.arg("--kubeconfig").arg(dir).args(&args);
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null());
            let mut child = cmd.spawn().unwrap();
            if let Some(s) = stdin {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
            }
            assert!(child.wait().unwrap().success(), "kubectl {args:?}");
        })
    };
    kubectl(
        vec!["create".into(), "-f".into(), "-".into()],
        Some(POD.replace("NAME", "b").replace("NODE", "n1")),
    )
    .await
    .unwrap();
    kubectl(
        vec!["create".into(), "-f".into(), "-".into()],
        Some(POD.replace("NAME", "c").replace("NODE", "n2")),
    )
    .await
    .unwrap();
    kubectl(
        vec![
            "delete".into(),
            "pod".into(),
            "a".into(),
            "--grace-period=0".into(),
            "--force".into(),
        ],
        None,
    )
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut on_n1: Vec<String> = store
            .by_index("node", "n1")
            .unwrap()
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        on_n1.sort();
        if on_n1 == ["b"] && store.get("default/c").is_some() && store.get("default/a").is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache never converged: n1 = {on_n1:?}, keys = {:?}",
            store.keys()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every object the informer saw reached the queue, each at most once while queued.
    let mut keys = Vec::new();
    while !queue.is_empty() {
        let k = queue.get().await.unwrap();
        queue.done(&k);
        keys.push(k);
    }
    keys.sort();
    assert_eq!(keys, ["default/a", "default/b", "default/c"]);
}
