//! The gRPC service through a Rust client: exact status codes and the Watch stream
//! protocol (created / canceled / compact_revision / progress), which etcdctl shows
//! only as text. Every wait is bounded; no timing is asserted.

use std::sync::Arc;
use std::time::Duration;

use bosun_store_engine::grpc::WatchResponse;
use bosun_store_engine::proto::etcdserverpb as pb;
use bosun_store_engine::proto::mvccpb;
use bosun_store_engine::*;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

async fn start() -> (tonic::transport::Channel, tokio::sync::oneshot::Sender<()>) {
    start_with(grpc::Transport::default()).await
}

async fn start_with(
    transport: grpc::Transport,
) -> (tonic::transport::Channel, tokio::sync::oneshot::Sender<()>) {
    let config = ServerConfig {
        transport,
        ..Default::default()
    };
    let (channel, stop, _served) = start_on(MemDir::new(), MemDir::new(), config).await;
    (channel, stop)
}

type Served = tokio::task::JoinHandle<Result<(), ServeError>>;

/// Serves a store in `kv` and `lease` (clones share their files, so a second call on
/// clones is a restart once the first server has ended: awaiting the handle).
async fn start_on(
    kv: MemDir,
    lease: MemDir,
    config: ServerConfig,
) -> (
    tonic::transport::Channel,
    tokio::sync::oneshot::Sender<()>,
    Served,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let store = Store::with_dirs(kv, lease, StoreConfig::default(), clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve(Arc::new(store), listener, config, async move {
        let _ = stop_rx.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, stop_tx, served)
}

fn put(key: &str, value: Vec<u8>) -> pb::PutRequest {
    pb::PutRequest {
        key: key.into(),
        value,
        ..Default::default()
    }
}

fn check(err: tonic::Status, code: Code, message: &str) {
    assert_eq!((err.code(), err.message()), (code, message));
}

/// Status reports the key space's bytes on disk, before and after a restart, and the
/// bytes in use below them once history is compacted away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_bytes_on_disk_across_restarts() {
    let (kv_dir, lease_dir) = (MemDir::new(), MemDir::new());
    let status = |ch: tonic::transport::Channel| async move {
        pb::maintenance_client::MaintenanceClient::new(ch)
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let (ch, stop, served) =
        start_on(kv_dir.clone(), lease_dir.clone(), ServerConfig::default()).await;
    let mut kv = pb::kv_client::KvClient::new(ch.clone());
    for i in 0..50u8 {
        kv.put(put("k", vec![i; 1000])).await.unwrap();
    }
    let before = status(ch.clone()).await;
    assert!(before.db_size > 50_000, "{before:?}");
    assert_eq!(
        before.db_size_in_use,
        before.db_size_in_use.min(before.db_size)
    );
    kv.compact(pb::CompactionRequest {
        revision: 51,
        physical: true,
    })
    .await
    .unwrap();
    let compacted = status(ch.clone()).await;
    assert!(compacted.db_size_in_use < 2_000, "{compacted:?}");
    let _ = stop.send(());
    drop((kv, ch));
    tokio::time::timeout(WAIT, served)
        .await
        .expect("the server ends")
        .unwrap()
        .unwrap();
    let (ch, _stop, _served) = start_on(kv_dir, lease_dir, ServerConfig::default()).await;
    let after = status(ch).await;
    assert!(after.db_size >= before.db_size, "{before:?} then {after:?}");
    assert_eq!(after.db_size_in_use, compacted.db_size_in_use);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_etcd_codes_and_messages() {
    errors_carry_etcd_codes_and_messages_over(grpc::Transport::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_etcd_codes_and_messages_over_tonic() {
    errors_carry_etcd_codes_and_messages_over(grpc::Transport::Tonic).await;
}

async fn errors_carry_etcd_codes_and_messages_over(transport: grpc::Transport) {
    let (ch, _stop) = start_with(transport).await;
    let mut kv = pb::kv_client::KvClient::new(ch.clone());
    let mut lease = pb::lease_client::LeaseClient::new(ch);
    for i in 0..3 {
        kv.put(put("a", vec![i])).await.unwrap();
    }
    kv.compact(pb::CompactionRequest {
        revision: 3,
        physical: false,
    })
    .await
    .unwrap();
    let big = put("big", vec![0; MAX_REQUEST_BYTES + 1]);
    check(
        kv.put(big).await.unwrap_err(),
        Code::InvalidArgument,
        "etcdserver: request is too large",
    );
    let old = pb::RangeRequest {
        key: "a".into(),
        revision: 2,
        ..Default::default()
    };
    check(
        kv.range(old).await.unwrap_err(),
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
    );
    let op = |k: String| pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(put(&k, vec![]))),
    };
    let many = pb::TxnRequest {
        success: (0..=MAX_TXN_OPS).map(|i| op(format!("k{i}"))).collect(),
        ..Default::default()
    };
    check(
        kv.txn(many).await.unwrap_err(),
        Code::InvalidArgument,
        "etcdserver: too many operations in txn request",
    );
    let twice = pb::TxnRequest {
        success: vec![op("k".into()), op("k".into())],
        ..Default::default()
    };
    check(
        kv.txn(twice).await.unwrap_err(),
        Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
    );
    check(
        lease
            .lease_revoke(pb::LeaseRevokeRequest { id: 77 })
            .await
            .unwrap_err(),
        Code::NotFound,
        "etcdserver: requested lease not found",
    );
    let granted = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 77 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((granted.id, granted.ttl), (77, 60));
    check(
        lease
            .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 77 })
            .await
            .unwrap_err(),
        Code::FailedPrecondition,
        "etcdserver: lease already exists",
    );
    let ttl = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest { id: 78, keys: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ttl.ttl, -1, "etcd: an unknown lease has TTL -1");
    // Nothing above wrote: the store is at revision 4 still.
    let r = kv.range(pb::RangeRequest {
        key: "a".into(),
        ..Default::default()
    });
    let r = r.await.unwrap().into_inner();
    assert_eq!(r.header.unwrap().revision, 4);
}

/// Sorted and filtered ranges inside a txn answer as they do outside one, in the
/// branch taken, nested txns' included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_and_filtered_ranges_and_nested_txns() {
    use pb::range_request::{SortOrder, SortTarget};
    let (ch, _stop) = start().await;
    let mut kv = pb::kv_client::KvClient::new(ch);
    // Written out of key order, so that sorting by mod revision differs from by key.
    for (k, v) in [("/s/b", "2"), ("/s/a", "1"), ("/s/d", "4"), ("/s/c", "3")] {
        kv.put(put(k, v.into())).await.unwrap();
    }
    let first = kv
        .range(pb::RangeRequest {
            key: b"/s/b".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .kvs[0]
        .mod_revision;
    let ranges = [
        pb::RangeRequest {
            key: b"/s/".to_vec(),
            range_end: b"/s0".to_vec(),
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Mod as i32,
            limit: 3,
            ..Default::default()
        },
        pb::RangeRequest {
            key: b"/s/".to_vec(),
            range_end: b"/s0".to_vec(),
            min_mod_revision: first + 2,
            ..Default::default()
        },
    ];
    let op = |r: &pb::RangeRequest| pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(r.clone())),
    };
    // An empty compare list holds: the success branch runs. The failure branch holds
    // a sorted range too, which must not shift the success branch's finishing.
    let txn = pb::TxnRequest {
        success: vec![
            op(&ranges[0]),
            pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(put(
                    "/t",
                    b"x".to_vec(),
                ))),
            },
            op(&ranges[1]),
        ],
        failure: vec![op(&ranges[1])],
        ..Default::default()
    };
    let resp = kv.txn(txn).await.unwrap().into_inner();
    assert!(resp.succeeded);
    let keys = |r: &pb::RangeResponse| -> Vec<String> {
        r.kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
            .collect()
    };
    let in_txn: Vec<pb::RangeResponse> = resp
        .responses
        .into_iter()
        .filter_map(|r| match r.response {
            Some(pb::response_op::Response::ResponseRange(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(keys(&in_txn[0]), ["/s/c", "/s/d", "/s/a"]);
    assert!(in_txn[0].more);
    assert_eq!(keys(&in_txn[1]), ["/s/c", "/s/d"]);
    for (r, got) in ranges.iter().zip(&in_txn) {
        let outside = kv.range(r.clone()).await.unwrap().into_inner();
        assert_eq!((keys(&outside), outside.more), (keys(got), got.more));
    }

    // In a nested txn too, whose compare sees the state before the outer txn: "/n" is
    // absent then, though the outer txn puts it first.
    let absent = pb::Compare {
        key: b"/n".to_vec(),
        result: pb::compare::CompareResult::Equal as i32,
        target: pb::compare::CompareTarget::Version as i32,
        target_union: Some(pb::compare::TargetUnion::Version(0)),
        ..Default::default()
    };
    let inner = pb::TxnRequest {
        compare: vec![absent],
        success: vec![op(&ranges[0])],
        failure: vec![],
    };
    let txn = pb::TxnRequest {
        success: vec![
            pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(put(
                    "/n",
                    b"x".to_vec(),
                ))),
            },
            pb::RequestOp {
                request: Some(pb::request_op::Request::RequestTxn(inner)),
            },
        ],
        ..Default::default()
    };
    let resp = kv.txn(txn).await.unwrap().into_inner();
    let Some(pb::response_op::Response::ResponseTxn(nested)) = &resp.responses[1].response else {
        panic!("a nested txn response: {resp:?}");
    };
    assert!(nested.succeeded);
    assert_eq!(
        nested.header.as_ref().unwrap().revision,
        resp.header.as_ref().unwrap().revision
    );
    let Some(pb::response_op::Response::ResponseRange(r)) = &nested.responses[0].response else {
        panic!("a range response: {nested:?}");
    };
    assert_eq!(keys(r), ["/s/c", "/s/d", "/s/a"]);
}

async fn next(stream: &mut tonic::Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a watch response within the bound")
        .unwrap()
        .expect("stream open")
}

fn create(key: &str, range_end: &str, start_revision: i64, watch_id: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: key.into(),
                range_end: range_end.into(),
                start_revision,
                prev_kv: true,
                watch_id,
                ..Default::default()
            },
        )),
    }
}

/// A Watch stream on `ch`: where to send requests, and the responses.
async fn open_watch(
    ch: tonic::transport::Channel,
) -> (
    mpsc::Sender<pb::WatchRequest>,
    tonic::Streaming<WatchResponse>,
) {
    let (tx, rx) = mpsc::channel(8);
    let stream = pb::watch_client::WatchClient::new(ch)
        .watch(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, stream)
}

fn progress() -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
            pb::WatchProgressRequest {},
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stream_protocol() {
    watch_stream_protocol_over(grpc::Transport::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stream_protocol_over_tonic() {
    watch_stream_protocol_over(grpc::Transport::Tonic).await;
}

async fn watch_stream_protocol_over(transport: grpc::Transport) {
    let (ch, _stop) = start_with(transport).await;
    let mut kv = pb::kv_client::KvClient::new(ch.clone());
    for i in 0..3 {
        kv.put(put("k/old", vec![i])).await.unwrap();
    }
    kv.compact(pb::CompactionRequest {
        revision: 3,
        physical: false,
    })
    .await
    .unwrap();
    let (tx, mut stream) = open_watch(ch).await;

    // No watcher yet: the stream answers progress itself (watch id -1).
    tx.send(progress()).await.unwrap();
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, r.header.unwrap().revision), (-1, 4));

    // A compacted start: created, then canceled with the compacted revision.
    tx.send(create("k/", "k0", 2, 0)).await.unwrap();
    let r = next(&mut stream).await;
    assert!(r.created && !r.canceled);
    let r = next(&mut stream).await;
    assert!(r.canceled);
    assert_eq!((r.watch_id, r.compact_revision), (0, 3));

    // A range end before the key: refused at creation.
    tx.send(create("b", "a", 0, 0)).await.unwrap();
    let r = next(&mut stream).await;
    assert!(r.created && r.canceled, "{r:?}");

    // A live watcher with a chosen id and prev_kv.
    tx.send(create("k/", "k0", 0, 5)).await.unwrap();
    let r = next(&mut stream).await;
    assert!(r.created && r.watch_id == 5);
    kv.put(put("k/old", b"new".to_vec())).await.unwrap();
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, r.events.len()), (5, 1));
    let ev = mvccpb::Event::decode(r.events[0].clone()).unwrap();
    assert_eq!(ev.kv.unwrap().value, b"new");
    assert_eq!(ev.prev_kv.unwrap().value, vec![2]);
    assert_eq!(r.header.unwrap().revision, 5);

    tx.send(progress()).await.unwrap();
    let r = next(&mut stream).await;
    assert_eq!((r.watch_id, r.events.len()), (5, 0));
    assert_eq!(r.header.unwrap().revision, 5);

    let cancel = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CancelRequest(
            pb::WatchCancelRequest { watch_id: 5 },
        )),
    };
    tx.send(cancel).await.unwrap();
    let r = next(&mut stream).await;
    assert!(r.canceled && r.watch_id == 5);
}

/// Watchers created with `progress_notify` get periodic progress notifications (no
/// events, the current revision, their own id); the others get none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_progress_reaches_only_the_watchers_that_asked() {
    let config = ServerConfig {
        progress_notify_interval_ms: 20,
        ..ServerConfig::default()
    };
    let (ch, _stop, _served) = start_on(MemDir::new(), MemDir::new(), config).await;
    let mut kv = pb::kv_client::KvClient::new(ch.clone());
    kv.put(put("a", vec![1])).await.unwrap();
    let (tx, mut stream) = open_watch(ch).await;
    tx.send(create("a", "", 0, 1)).await.unwrap();
    let mut notify = create("b", "", 0, 2);
    if let Some(pb::watch_request::RequestUnion::CreateRequest(c)) = &mut notify.request_union {
        c.progress_notify = true;
    }
    tx.send(notify).await.unwrap();
    let mut created = Vec::new();
    while created.len() < 2 {
        let r = next(&mut stream).await;
        assert!(r.created && r.events.is_empty(), "{r:?}");
        created.push(r.watch_id);
    }
    created.sort();
    assert_eq!(created, [1, 2]);
    for _ in 0..3 {
        let r = next(&mut stream).await;
        assert!(!r.created && !r.canceled && r.events.is_empty(), "{r:?}");
        assert_eq!((r.watch_id, r.header.unwrap().revision), (2, 2));
    }
}
