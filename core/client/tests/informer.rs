//! The informer against a scripted API server (client-go reflector behaviour):
//! paginated list, watch from the list's resource version, resume after a
//! server-side close from the last seen version (objects and bookmarks), retry
//! after a 500, relist after a 410 ERROR event and after an HTTP 410, and the
//! events a relist synthesises.

mod common;

use bosun_client::{Api, Client, Config, Event, Informer, InformerConfig, ListParams};
use common::{Reply, Seen, TestServer, event, pod_json, status_json};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Upper bound for the whole scenario; the test never waits on time otherwise.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

fn list(items: Vec<serde_json::Value>, rv: &str, cont: Option<&str>) -> Reply {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    Reply::Json(
        200,
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items})
            .to_string(),
    )
}

fn bookmark(rv: &str) -> String {
    event(
        "BOOKMARK",
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}),
    )
}

/// The scripted server: the n-th list and n-th watch get these answers.
/// `last_watch` is notified when the final (hanging) watch arrives.
fn script(last_watch: Arc<Notify>) -> common::Handler {
    let n_list = Arc::new(AtomicUsize::new(0));
    let n_watch = Arc::new(AtomicUsize::new(0));
    Arc::new(move |s: &Seen| {
        if s.is_watch() {
            match n_watch.fetch_add(1, Ordering::SeqCst) {
                // From the list's rv 10: three changes, then a server-side close.
                0 => Reply::Lines(vec![
                    event("ADDED", pod_json("ns", "d", "11")),
                    event("MODIFIED", pod_json("ns", "a", "12")),
                    event("DELETED", pod_json("ns", "b", "13")),
                ]),
                // From 13: a bookmark, then close.
                1 => Reply::Lines(vec![bookmark("15")]),
                // From 15: too old.
                2 => Reply::Lines(vec![event(
                    "ERROR",
                    serde_json::from_str(&status_json(
                        410,
                        "Expired",
                        "too old resource version: 15 (18)",
                    ))
                    .unwrap(),
                )]),
                // From the relist's 20: a server error, then an HTTP 410.
                3 => Reply::Json(500, status_json(500, "InternalError", "boom")),
                4 => Reply::Json(410, status_json(410, "Gone", "gone")),
                // From the third list's 21: stay open.
                _ => {
                    last_watch.notify_one();
                    Reply::LinesThenHang(vec![])
                }
            }
        } else {
            match n_list.fetch_add(1, Ordering::SeqCst) {
                0 => list(
                    vec![pod_json("ns", "a", "8"), pod_json("ns", "b", "9")],
                    "10",
                    Some("p2"),
                ),
                1 => list(vec![pod_json("ns", "c", "10")], "10", None),
                2 => list(
                    vec![pod_json("ns", "a", "20"), pod_json("ns", "e", "19")],
                    "20",
                    None,
                ),
                _ => list(
                    vec![pod_json("ns", "a", "20"), pod_json("ns", "e", "21")],
                    "21",
                    None,
                ),
            }
        }
    })
}

fn describe(ev: &Event<Pod>) -> String {
    let id = |p: &Pod| {
        format!(
            "{}@{}",
            p.metadata.name.as_deref().unwrap_or(""),
            p.metadata.resource_version.as_deref().unwrap_or("")
        )
    };
    match ev {
        Event::Added(p) => format!("added {}", id(p)),
        Event::Updated { old, new } => format!("updated {}->{}", id(old), id(new)),
        Event::Deleted(p) => format!("deleted {}", id(p)),
    }
}

/// The request line without `timeoutSeconds` (random by design), which is
/// checked separately.
fn normalized(s: &Seen) -> String {
    let line = s.line();
    let Some((path, q)) = line.split_once('?') else {
        return line;
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| !kv.starts_with("timeoutSeconds="))
        .collect();
    format!("{path}?{}", kept.join("&"))
}

#[tokio::test]
async fn informer_lists_watches_resumes_and_relists() {
    let last_watch = Arc::new(Notify::new());
    let server = TestServer::start(script(last_watch.clone())).await;
    let client = Client::new(Config::new(&server.http_url()).unwrap()).unwrap();
    let config = InformerConfig {
        list_params: ListParams::default().limit(2),
        min_watch_timeout: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..InformerConfig::default()
    };
    let mut informer = Informer::new(Api::<Pod>::namespaced(client, "ns"), config);
    let store = informer.store();
    store
        .add_index("name", |p: &Pod| {
            p.metadata.name.clone().into_iter().collect()
        })
        .unwrap();
    let mut events = informer.subscribe(4);
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    informer.add_handler(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    let handle = informer.spawn();

    let want_events = [
        // First list (two pages): everything is new.
        "added a@8",
        "added b@9",
        "added c@10",
        // First watch.
        "added d@11",
        "updated a@8->a@12",
        "deleted b@13",
        // Relist after the 410 ERROR event: survivors updated, vanished deleted.
        "updated a@12->a@20",
        "added e@19",
        "deleted c@10",
        "deleted d@11",
        // Relist after the HTTP 410.
        "updated a@20->a@20",
        "updated e@19->e@21",
    ];
    let mut got = Vec::new();
    tokio::time::timeout(SCENARIO_TIMEOUT, async {
        while got.len() < want_events.len() {
            let ev = events.recv().await.expect("informer stopped");
            got.push(describe(&ev));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("events so far: {got:?}"));
    assert!(handle.has_synced());
    // Deletions of one relist come in no particular order.
    got[8..10].sort();
    assert_eq!(got, want_events);
    assert_eq!(handled.load(Ordering::SeqCst), want_events.len());

    let mut keys = store.keys();
    keys.sort();
    assert_eq!(keys, ["ns/a", "ns/e"]);
    assert_eq!(
        store
            .get("ns/e")
            .and_then(|p| p.metadata.resource_version.clone())
            .as_deref(),
        Some("21")
    );
    assert_eq!(store.by_index("name", "a").unwrap().len(), 1);
    assert!(store.by_index("name", "c").unwrap().is_empty());

    // The informer then watches from the third list's version.
    tokio::time::timeout(SCENARIO_TIMEOUT, last_watch.notified())
        .await
        .expect("final watch request");
    let seen = server.seen();
    let lines: Vec<String> = seen.iter().map(normalized).collect();
    let base = "GET /api/v1/namespaces/ns/pods";
    let watch = |rv: &str| format!("{base}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true");
    assert_eq!(
        lines,
        [
            format!("{base}?limit=2"),
            format!("{base}?limit=2&continue=p2"),
            watch("10"),
            watch("13"),
            watch("15"),
            format!("{base}?limit=2"),
            watch("20"),
            watch("20"),
            format!("{base}?limit=2"),
            watch("21"),
        ]
    );
    for s in seen.iter().filter(|s| s.is_watch()) {
        let t: u64 = s.query("timeoutSeconds").unwrap().parse().unwrap();
        assert!(
            (60..=120).contains(&t),
            "timeoutSeconds {t} outside [60, 120]"
        );
    }
    drop(handle);
}

#[tokio::test]
async fn wait_synced_reports_first_list() {
    let server = TestServer::start(Arc::new(|s: &Seen| {
        if s.is_watch() {
            Reply::LinesThenHang(vec![])
        } else {
            list(vec![pod_json("ns", "only", "3")], "3", None)
        }
    }))
    .await;
    let client = Client::new(Config::new(&server.http_url()).unwrap()).unwrap();
    let informer = Informer::new(Api::<Pod>::all(client), InformerConfig::default());
    let handle = informer.spawn();
    let synced = tokio::time::timeout(SCENARIO_TIMEOUT, handle.wait_synced()).await;
    assert_eq!(synced.ok(), Some(true));
    assert_eq!(handle.store().len(), 1);
    assert!(handle.store().get("ns/only").is_some());
    assert_eq!(server.seen()[0].line(), "GET /api/v1/pods?limit=500");
}
