//! The load generator against the store's gRPC service in-process: its unary client
//! with every request kind the workloads send and a server error as its gRPC status,
//! and whole (short) workload runs. Every wait is bounded; no timing is asserted.

use std::sync::Arc;
use std::time::Duration;

use bosun_harness::etcdrpc::{KvConn, RpcError, pb, prefix_end};
use bosun_store_engine::{Clock, MemDir, ServerConfig, Store, StoreConfig, SystemClock, serve};

const WAIT: Duration = Duration::from_secs(30);

async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let store =
        Store::with_dirs(MemDir::new(), MemDir::new(), StoreConfig::default(), clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        Arc::new(store),
        listener,
        ServerConfig::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    (format!("http://{addr}"), stop_tx)
}

/// A store and one connection to it.
async fn start_connected() -> (KvConn, tokio::sync::oneshot::Sender<()>) {
    let (url, stop) = start().await;
    let conn = tokio::time::timeout(WAIT, KvConn::connect(&url))
        .await
        .unwrap()
        .unwrap();
    (conn, stop)
}

fn put(key: &str, value: &[u8]) -> pb::PutRequest {
    pb::PutRequest {
        key: key.into(),
        value: value.to_vec(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_range_and_compare_and_swap_round_trip() {
    let (conn, _stop) = start_connected().await;
    let test = async {
        let mut last = 0;
        for k in ["p/00", "p/01", "p/02", "q/00"] {
            let resp = conn.put(&put(k, k.as_bytes())).await.unwrap();
            last = resp.header.unwrap().revision;
        }
        // A prefix range sees exactly the keys under it, values intact.
        let prefix = b"p/".to_vec();
        let got = conn
            .range(&pb::RangeRequest {
                range_end: prefix_end(&prefix),
                key: prefix,
                ..Default::default()
            })
            .await
            .unwrap();
        let keys: Vec<_> = got.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(keys, [b"p/00".to_vec(), b"p/01".to_vec(), b"p/02".to_vec()]);
        assert!(got.kvs.iter().all(|kv| kv.value == kv.key));
        let count = conn
            .range(&pb::RangeRequest {
                key: vec![0],
                range_end: vec![0],
                count_only: true,
                serializable: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((count.count, count.kvs.len()), (4, 0));

        // Compare-and-swap on mod_revision: a stale revision reads the key back, the
        // current one writes.
        let cas = |known: i64| pb::TxnRequest {
            compare: vec![pb::Compare {
                result: pb::compare::CompareResult::Equal as i32,
                target: pb::compare::CompareTarget::Mod as i32,
                key: b"q/00".to_vec(),
                range_end: Vec::new(),
                target_union: Some(pb::compare::TargetUnion::ModRevision(known)),
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(put("q/00", b"new"))),
            }],
            failure: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
                    key: b"q/00".to_vec(),
                    ..Default::default()
                })),
            }],
        };
        let lost = conn.txn(&cas(last - 1)).await.unwrap();
        assert!(!lost.succeeded);
        let Some(pb::response_op::Response::ResponseRange(read)) =
            lost.responses[0].response.clone()
        else {
            panic!("the failure branch reads the key: {lost:?}");
        };
        assert_eq!(read.kvs[0].mod_revision, last);
        let won = conn.txn(&cas(last)).await.unwrap();
        assert!(won.succeeded);
        assert_eq!(won.header.unwrap().revision, last + 1);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_its_grpc_status_and_the_connection_goes_on() {
    let (conn, _stop) = start_connected().await;
    let test = async {
        // Over etcd's 1.5 MiB request limit (and under the transport's 2 MiB).
        let big = vec![b'v'; 1600 * 1024];
        let err = conn.put(&put("big", &big)).await.unwrap_err();
        match &err {
            RpcError::Status { code, message } => {
                assert_eq!(*code, 3, "InvalidArgument: {err}");
                assert!(message.contains("request is too large"), "{err}");
            }
            other => panic!("expected a gRPC status, got {other}"),
        }
        // The same connection still serves, and nothing was written.
        let resp = conn.put(&put("small", b"v")).await.unwrap();
        assert_eq!(resp.header.unwrap().revision, 2);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn a_bad_endpoint_is_refused_before_connecting() {
    for bad in ["127.0.0.1:2379", "https://127.0.0.1:2379", "http://no-port"] {
        let err = KvConn::connect(bad).await.err().expect(bad);
        assert!(matches!(err, RpcError::Endpoint(_)), "{bad}: {err}");
    }
}

#[cfg(feature = "etcd")]
mod workloads {
    use super::*;
    use bosun_harness::storeload::{self, StoreLoadConfig, StoreLoadReport, Workload};

    /// One bounded run of the load against `url`.
    async fn run(url: &str, cfg: &StoreLoadConfig) -> StoreLoadReport {
        tokio::time::timeout(WAIT, storeload::run(&[url.to_string()], cfg))
            .await
            .unwrap()
            .unwrap()
    }

    fn config(workload: Workload) -> StoreLoadConfig {
        StoreLoadConfig {
            workload,
            clients: 8,
            connections: 2,
            duration: Duration::from_secs(20),
            ops_max: 400,
            key_space: 64,
            ..StoreLoadConfig::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compare_and_swap_clients_start_from_the_preloaded_revisions() {
        let (url, _stop) = start().await;
        let cfg = config(Workload::Txn);
        let report = run(&url, &cfg).await;
        assert_eq!((report.ops, report.errors), (400, 0), "{report:?}");
        // Each client owns its keys and knows their revisions from the preload: no
        // compare can fail.
        assert_eq!(report.txn_conflicts, 0, "{report:?}");
        assert_eq!(report.per_op.keys().collect::<Vec<_>>(), ["txn"]);
        assert_eq!(report.per_op["txn"].count, 400);
        assert_eq!(report.n_keys, 64);
        let in_timeline: u64 = report.timeline.iter().map(|s| s.requests).sum();
        assert_eq!(in_timeline, 400);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefix_ranges_and_puts_run_without_errors() {
        let (url, _stop) = start().await;
        let mut cfg = config(Workload::Range);
        cfg.prefix_ranges = true;
        cfg.key_space = 1024;
        let report = run(&url, &cfg).await;
        assert_eq!((report.ops, report.errors), (400, 0), "{report:?}");
        assert_eq!(report.per_op["range"].count, 400);

        let mut cfg = config(Workload::Put);
        cfg.random_keys = true;
        cfg.key_space = 50;
        let report = run(&url, &cfg).await;
        assert_eq!((report.ops, report.errors), (400, 0), "{report:?}");
        // The put keys (numbers below 50) are among the range run's 1,024.
        assert_eq!(report.n_keys, 1024, "{report:?}");
    }
}
