//! The etcd v3 gRPC service over a [`Store`]: KV (Range, Put, DeleteRange, Txn,
//! Compact), Watch (create, cancel, progress), Lease (Grant, Revoke, KeepAlive,
//! TimeToLive, Leases) and Maintenance.Status. etcdctl 3.4 and etcd's Go client drive it.
//!
//! Errors carry etcd's gRPC codes and messages (`rpctypes`), so clients map them back
//! to their typed errors. Writes are queued to the engine's writer and awaited (no thread
//! waits for a write's fdatasync); reads are in-memory and run inline (over the direct
//! transport, a range with a `range_end`, or a txn holding one, gets a task of its own).
//!
//! Two transports serve the same handlers ([`Transport`]): the direct one (the
//! default), a purpose-built HTTP/2 connection loop ([`conn`]) that reads every request
//! that has arrived and writes every answer that is ready in one system call each, and
//! tonic's stack (hyper, h2, tower), kept for comparison. Its framing ([`frame`]) and
//! HPACK decoder ([`hpack`]) also serve the load generator's client.
//!
//! Not served: Cluster, Auth, and the Maintenance methods other than Status
//! (UNIMPLEMENTED).

pub mod conn;
pub mod frame;
pub mod hpack;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{Error, RequestError};
use crate::lease::LeaseError;
use crate::logfile::LogDir;
use crate::proto::etcdserverpb as pb;
use crate::store::Store;
use crate::types::*;
use crate::watch::{ProgressHandle, WatchMessage, WatchSpec, Watcher, kv_to_proto};

/// etcd's allowance for gRPC framing on top of [`MAX_REQUEST_BYTES`]: bigger messages
/// are refused by the transport (RESOURCE_EXHAUSTED) before they are decoded.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// Bound on the watchers of one Watch stream.
pub const MAX_WATCHES_PER_STREAM: usize = 1024;
/// Bound on responses queued for one Watch or LeaseKeepAlive stream.
pub const STREAM_QUEUE_RESPONSES_MAX: usize = 64;
/// Bound on the retries of a put with `ignore_value`/`ignore_lease` that races writers.
pub const PUT_IGNORE_RETRIES_MAX: usize = 16;
/// The etcd version reported by Status (the API level served).
pub const ETCD_API_VERSION: &str = "3.4.0";

/// The watch response with each event already encoded: field 11 is `repeated
/// mvccpb.Event` on the wire, and a length-delimited message is byte-for-byte a `bytes`
/// field, so the hub's shared encodings go out without re-encoding (prost-build maps
/// `.etcdserverpb.WatchResponse` here). Decode an event with `mvccpb::Event::decode`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<pb::ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    #[prost(bool, tag = "3")]
    pub created: bool,
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    #[prost(bool, tag = "7")]
    pub fragment: bool,
    #[prost(bytes = "bytes", repeated, tag = "11")]
    pub events: Vec<bytes::Bytes>,
}

/// Which HTTP/2 stack carries the gRPC calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// [`conn`]: one task per connection, unary calls polled in it, reads and writes
    /// batched.
    #[default]
    Direct,
    /// tonic over hyper and h2: a task per call.
    Tonic,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Transport::Direct),
            "tonic" => Ok(Transport::Tonic),
            _ => Err(format!("unknown transport {s:?} (direct, tonic)")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub cluster_id: u64,
    pub member_id: u64,
    /// How often due leases are revoked.
    pub lease_tick_ms: u64,
    /// How often watchers created with `progress_notify` get a progress notification
    /// (etcd: 10 minutes).
    pub progress_notify_interval_ms: u64,
    pub transport: Transport,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            cluster_id: 0xb05e_0000_0000_0001,
            member_id: 0xb05e_0000_0000_0001,
            lease_tick_ms: 500,
            progress_notify_interval_ms: 10 * 60 * 1000,
            transport: Transport::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("accepting connections: {0}")]
    Accept(#[from] std::io::Error),
}

/// Serves the etcd v3 API on `listener` until `shutdown` completes; open streams
/// (watches, keep-alives) are ended then, and due leases stop being revoked.
pub async fn serve<D, F>(
    store: Arc<Store<D>>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    D: LogDir + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let svc = EtcdService {
        store: store.clone(),
        config: Arc::new(config.clone()),
        stop: stop_rx.clone(),
    };
    let expiry = tokio::spawn(expire_leases(store, config.lease_tick_ms, stop_rx.clone()));
    let max_msg = MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES;
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    if config.transport == Transport::Direct {
        let result = serve_direct(Arc::new(svc), listener, max_msg, signal, stop_rx).await;
        expiry.abort();
        return result;
    }
    let result = tonic::transport::Server::builder()
        .add_service(pb::kv_server::KvServer::new(svc.clone()).max_decoding_message_size(max_msg))
        .add_service(
            pb::watch_server::WatchServer::new(svc.clone()).max_decoding_message_size(max_msg),
        )
        .add_service(
            pb::lease_server::LeaseServer::new(svc.clone()).max_decoding_message_size(max_msg),
        )
        .add_service(pb::maintenance_server::MaintenanceServer::new(svc))
        .serve_with_incoming_shutdown(incoming(listener), signal)
        .await;
    expiry.abort();
    Ok(result?)
}

/// The direct transport: a [`conn::Conn`] task per accepted connection. After
/// `signal`, no connection is accepted and each open one says GOAWAY and closes once
/// its streams end (sessions end on `stop`).
async fn serve_direct<D, F>(
    svc: Arc<EtcdService<D>>,
    listener: TcpListener,
    max_message: usize,
    signal: F,
    stop: tokio_watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    D: LogDir + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut signal = std::pin::pin!(signal);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut signal => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let io = match accepted {
            Ok((io, _)) => io,
            // A connection that failed before it was accepted (reset, or out of
            // descriptors for a moment) is the client's loss, not the server's end.
            Err(e) if is_transient_accept_error(&e) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let _ = io.set_nodelay(true);
        let mut stop = stop.clone();
        let conn = conn::Conn::new(io, svc.clone(), max_message);
        conns.spawn(conn.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }
    while conns.join_next().await.is_some() {}
    Ok(())
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error() == Some(24) // EMFILE
        || e.raw_os_error() == Some(23) // ENFILE
}

/// Accepted connections with `TCP_NODELAY`, as etcd's (Go sets it on every TCP
/// connection). tonic applies its own `tcp_nodelay` only to the listeners it binds;
/// without it, Nagle's algorithm holds small responses back until earlier segments
/// are acknowledged.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn expire_leases<D: LogDir + Clone + Send + Sync + 'static>(
    store: Arc<Store<D>>,
    tick_ms: u64,
    mut stop: tokio_watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(tick_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        // A failed revocation (the store refusing writes) is retried next tick.
        let _ = store.lessor.expire_due_async().await;
    }
}

/// etcd's gRPC status for a store error (etcd `rpctypes`).
pub fn status_of(e: &Error) -> Status {
    match e {
        Error::Request(r) => request_status(r),
        Error::Shutdown => Status::unavailable("etcdserver: server stopped"),
        Error::Poisoned(_) | Error::Io(_) | Error::Corruption(_) => {
            Status::internal(format!("etcdserver: {e}"))
        }
    }
}

fn request_status(e: &RequestError) -> Status {
    match e {
        RequestError::EmptyKey => Status::invalid_argument("etcdserver: key is not provided"),
        RequestError::LeaseNotFound(_) => {
            Status::not_found("etcdserver: requested lease not found")
        }
        RequestError::RangeEndBeforeKey => {
            Status::invalid_argument("etcdserver: range end sorts before the key")
        }
        RequestError::TooLarge { .. } => {
            Status::invalid_argument("etcdserver: request is too large")
        }
        RequestError::TooManyOps { .. } => {
            Status::invalid_argument("etcdserver: too many operations in txn request")
        }
        RequestError::DuplicateKey => {
            Status::invalid_argument("etcdserver: duplicate key given in txn request")
        }
        RequestError::TooManyChanges { n_changes, limit } => Status::invalid_argument(format!(
            "etcdserver: one revision would change {n_changes} keys (limit {limit})"
        )),
        RequestError::RevisionTooLarge {
            size_bytes,
            limit_bytes,
        } => Status::invalid_argument(format!(
            "etcdserver: one revision's changes would take {size_bytes} bytes (limit {limit_bytes})"
        )),
        RequestError::Compacted { .. } => {
            Status::out_of_range("etcdserver: mvcc: required revision has been compacted")
        }
        RequestError::FutureRevision { .. } => {
            Status::out_of_range("etcdserver: mvcc: required revision is a future revision")
        }
    }
}

/// etcd's gRPC status for a lease error.
pub fn lease_status(e: &LeaseError) -> Status {
    match e {
        LeaseError::NotFound(_) => Status::not_found("etcdserver: requested lease not found"),
        LeaseError::Exists(_) => Status::failed_precondition("etcdserver: lease already exists"),
        LeaseError::TtlTooLarge { .. } => Status::out_of_range("etcdserver: too large lease TTL"),
        LeaseError::TooMany => Status::resource_exhausted("etcdserver: too many leases"),
        LeaseError::BadId(_) => Status::invalid_argument("etcdserver: invalid lease id"),
        LeaseError::Store(e) => status_of(e),
    }
}

#[derive(Clone)]
struct EtcdService<D: LogDir + Clone + Send + Sync + 'static> {
    store: Arc<Store<D>>,
    config: Arc<ServerConfig>,
    stop: tokio_watch::Receiver<bool>,
}

impl<D: LogDir + Clone + Send + Sync + 'static> EtcdService<D> {
    fn header(&self, revision: i64) -> Option<pb::ResponseHeader> {
        Some(pb::ResponseHeader {
            cluster_id: self.config.cluster_id,
            member_id: self.config.member_id,
            revision,
            raft_term: 1,
        })
    }

    fn range_response(&self, r: RangeResponse) -> pb::RangeResponse {
        pb::RangeResponse {
            header: self.header(r.header_revision),
            kvs: r.kvs.iter().map(kv_to_proto).collect(),
            more: r.more,
            count: r.count,
        }
    }

    fn response_op(&self, op: ResponseOp) -> pb::ResponseOp {
        use pb::response_op::Response;
        let response = match op {
            ResponseOp::Range(r) => Response::ResponseRange(self.range_response(r)),
            ResponseOp::Put(p) => Response::ResponsePut(pb::PutResponse {
                header: self.header(p.header_revision),
                prev_kv: p.prev_kv.as_ref().map(kv_to_proto),
            }),
            ResponseOp::DeleteRange(d) => Response::ResponseDeleteRange(pb::DeleteRangeResponse {
                header: self.header(d.header_revision),
                deleted: d.deleted,
                prev_kvs: d.prev_kvs.iter().map(kv_to_proto).collect(),
            }),
            ResponseOp::Txn(t) => Response::ResponseTxn(pb::TxnResponse {
                header: self.header(t.header_revision),
                succeeded: t.succeeded,
                responses: t
                    .responses
                    .into_iter()
                    .map(|r| self.response_op(r))
                    .collect(),
            }),
        };
        pb::ResponseOp {
            response: Some(response),
        }
    }

    /// Runs a txn inside the lessor's gate, checking the leases its puts name.
    async fn run_txn(&self, txn: TxnRequest) -> Result<TxnResponse, Status> {
        self.store
            .lessor
            .txn_async(txn)
            .await
            .map_err(|e| lease_status(&e))
    }

    async fn put_ignoring(&self, p: pb::PutRequest) -> Result<PutResponse, Status> {
        if p.ignore_value && !p.value.is_empty() {
            return Err(Status::invalid_argument("etcdserver: value is provided"));
        }
        if p.ignore_lease && p.lease != 0 {
            return Err(Status::invalid_argument("etcdserver: lease is provided"));
        }
        for _ in 0..PUT_IGNORE_RETRIES_MAX {
            let cur = self
                .store
                .kv
                .range(&RangeRequest {
                    key: p.key.clone(),
                    ..Default::default()
                })
                .map_err(|e| status_of(&e))?;
            let Some(cur) = cur.kvs.into_iter().next() else {
                return Err(Status::invalid_argument("etcdserver: key not found"));
            };
            let put = PutRequest {
                key: p.key.clone(),
                value: if p.ignore_value {
                    cur.value.to_vec()
                } else {
                    p.value.clone()
                },
                lease: if p.ignore_lease { cur.lease } else { p.lease },
                prev_kv: p.prev_kv,
            };
            let txn = TxnRequest {
                compare: vec![Compare {
                    key: p.key.clone(),
                    range_end: vec![],
                    result: CompareResult::Equal,
                    target: CompareTarget::ModRevision(cur.mod_revision),
                }],
                success: vec![RequestOp::Put(put)],
                failure: vec![],
            };
            let mut resp = self.run_txn(txn).await?;
            if resp.succeeded {
                match resp.responses.pop() {
                    Some(ResponseOp::Put(r)) => return Ok(r),
                    other => unreachable!("put answered {other:?}"),
                }
            }
        }
        Err(Status::aborted("etcdserver: key kept changing; retry"))
    }
}

fn range_from_pb(r: &pb::RangeRequest) -> RangeRequest {
    RangeRequest {
        key: r.key.clone(),
        range_end: r.range_end.clone(),
        revision: r.revision,
        limit: r.limit,
        keys_only: r.keys_only,
        count_only: r.count_only,
    }
}

/// Sorting and revision filters are served here, over the engine's key-ordered range.
fn needs_post_processing(r: &pb::RangeRequest) -> bool {
    use pb::range_request::{SortOrder, SortTarget};
    let order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
    let key_ascending =
        order == SortOrder::None || (order == SortOrder::Ascend && target == SortTarget::Key);
    !key_ascending
        || r.min_mod_revision > 0
        || r.max_mod_revision > 0
        || r.min_create_revision > 0
        || r.max_create_revision > 0
}

fn post_process(r: &pb::RangeRequest, mut resp: RangeResponse) -> RangeResponse {
    use pb::range_request::{SortOrder, SortTarget};
    resp.kvs.retain(|kv| {
        (r.min_mod_revision <= 0 || kv.mod_revision >= r.min_mod_revision)
            && (r.max_mod_revision <= 0 || kv.mod_revision <= r.max_mod_revision)
            && (r.min_create_revision <= 0 || kv.create_revision >= r.min_create_revision)
            && (r.max_create_revision <= 0 || kv.create_revision <= r.max_create_revision)
    });
    let order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
    if order != SortOrder::None {
        let target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
        // Stable: ties stay in key order.
        resp.kvs.sort_by(|a, b| match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        });
        if order == SortOrder::Descend {
            resp.kvs.reverse();
        }
    }
    if r.limit > 0 && resp.kvs.len() > r.limit as usize {
        resp.kvs.truncate(r.limit as usize);
        resp.more = true;
    }
    resp
}

/// What to finish on one txn op's response: a sorted or filtered range, which the
/// engine read whole in key order, is sorted, filtered and limited here as outside a
/// txn; a nested txn has its own.
enum Finish {
    Nothing,
    Range(pb::RangeRequest),
    Txn(Box<SortedRanges>),
}

/// Per branch of a txn, per op: what to finish on the op's response.
struct SortedRanges {
    success: Vec<Finish>,
    failure: Vec<Finish>,
}

/// The responses of the branch taken, their sorted or filtered ranges finished.
fn finish_responses(
    sorted: SortedRanges,
    succeeded: bool,
    responses: Vec<ResponseOp>,
) -> Vec<ResponseOp> {
    let plan = if succeeded {
        sorted.success
    } else {
        sorted.failure
    };
    responses
        .into_iter()
        .zip(plan)
        .map(|(r, finish)| match (r, finish) {
            (ResponseOp::Range(resp), Finish::Range(req)) => {
                ResponseOp::Range(post_process(&req, resp))
            }
            (ResponseOp::Txn(mut t), Finish::Txn(nested)) => {
                t.responses = finish_responses(*nested, t.succeeded, t.responses);
                ResponseOp::Txn(t)
            }
            (r, _) => r,
        })
        .collect()
}

/// The op, and what to finish on its response.
fn request_op_from_pb(op: pb::RequestOp) -> Result<(RequestOp, Finish), Status> {
    use pb::request_op::Request;
    let op = match op.request {
        Some(Request::RequestRange(r)) => {
            if needs_post_processing(&r) && !r.count_only {
                let all = RangeRequest {
                    limit: 0,
                    ..range_from_pb(&r)
                };
                return Ok((RequestOp::Range(all), Finish::Range(r)));
            }
            Ok(RequestOp::Range(range_from_pb(&r)))
        }
        Some(Request::RequestPut(p)) => {
            if p.ignore_value || p.ignore_lease {
                return Err(Status::invalid_argument(
                    "etcdserver: ignore_value/ignore_lease inside a txn are not supported",
                ));
            }
            Ok(RequestOp::Put(PutRequest {
                key: p.key,
                value: p.value,
                lease: p.lease,
                prev_kv: p.prev_kv,
            }))
        }
        Some(Request::RequestDeleteRange(d)) => Ok(RequestOp::DeleteRange(DeleteRangeRequest {
            key: d.key,
            range_end: d.range_end,
            prev_kv: d.prev_kv,
        })),
        Some(Request::RequestTxn(t)) => {
            let (txn, sorted) = txn_from_pb(t)?;
            return Ok((RequestOp::Txn(txn), Finish::Txn(Box::new(sorted))));
        }
        None => Err(Status::invalid_argument("etcdserver: empty request op")),
    };
    Ok((op?, Finish::Nothing))
}

fn compare_from_pb(c: pb::Compare) -> Result<Compare, Status> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(c.result) {
        Ok(R::Equal) => CompareResult::Equal,
        Ok(R::Greater) => CompareResult::Greater,
        Ok(R::Less) => CompareResult::Less,
        Ok(R::NotEqual) => CompareResult::NotEqual,
        Err(_) => return Err(Status::invalid_argument("etcdserver: bad compare result")),
    };
    // The oneof carries the operand; a missing one is the zero of the target's type.
    let target = match (T::try_from(c.target), c.target_union) {
        (Ok(T::Version), Some(U::Version(n))) => CompareTarget::Version(n),
        (Ok(T::Version), None) => CompareTarget::Version(0),
        (Ok(T::Create), Some(U::CreateRevision(n))) => CompareTarget::CreateRevision(n),
        (Ok(T::Create), None) => CompareTarget::CreateRevision(0),
        (Ok(T::Mod), Some(U::ModRevision(n))) => CompareTarget::ModRevision(n),
        (Ok(T::Mod), None) => CompareTarget::ModRevision(0),
        (Ok(T::Value), Some(U::Value(v))) => CompareTarget::Value(v),
        (Ok(T::Value), None) => CompareTarget::Value(vec![]),
        (Ok(T::Lease), Some(U::Lease(n))) => CompareTarget::Lease(n),
        (Ok(T::Lease), None) => CompareTarget::Lease(0),
        _ => return Err(Status::invalid_argument("etcdserver: bad compare target")),
    };
    Ok(Compare {
        key: c.key,
        range_end: c.range_end,
        result,
        target,
    })
}

fn txn_from_pb(t: pb::TxnRequest) -> Result<(TxnRequest, SortedRanges), Status> {
    // etcd checks the op counts before anything else.
    for n_ops in [t.compare.len(), t.success.len(), t.failure.len()] {
        if n_ops > MAX_TXN_OPS {
            return Err(request_status(&RequestError::TooManyOps {
                n_ops,
                limit: MAX_TXN_OPS,
            }));
        }
    }
    let branch = |ops: Vec<pb::RequestOp>| -> Result<(Vec<_>, Vec<_>), Status> {
        Ok(ops
            .into_iter()
            .map(request_op_from_pb)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip())
    };
    let (success, sorted_success) = branch(t.success)?;
    let (failure, sorted_failure) = branch(t.failure)?;
    let txn = TxnRequest {
        compare: t
            .compare
            .into_iter()
            .map(compare_from_pb)
            .collect::<Result<_, _>>()?,
        success,
        failure,
    };
    let sorted = SortedRanges {
        success: sorted_success,
        failure: sorted_failure,
    };
    Ok((txn, sorted))
}

type BoxStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl<D: LogDir + Clone + Send + Sync + 'static> pb::kv_server::Kv for EtcdService<D> {
    async fn range(
        &self,
        req: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let r = req.into_inner();
        let resp = if needs_post_processing(&r) && !r.count_only {
            let all = RangeRequest {
                limit: 0,
                ..range_from_pb(&r)
            };
            let resp = self.store.kv.range(&all).map_err(|e| status_of(&e))?;
            post_process(&r, resp)
        } else {
            self.store
                .kv
                .range(&range_from_pb(&r))
                .map_err(|e| status_of(&e))?
        };
        Ok(Response::new(self.range_response(resp)))
    }

    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let p = req.into_inner();
        let resp = if p.ignore_value || p.ignore_lease {
            self.put_ignoring(p).await?
        } else {
            let op = RequestOp::Put(PutRequest {
                key: p.key,
                value: p.value,
                lease: p.lease,
                prev_kv: p.prev_kv,
            });
            let mut t = self
                .run_txn(TxnRequest {
                    success: vec![op],
                    ..Default::default()
                })
                .await?;
            match t.responses.pop() {
                Some(ResponseOp::Put(r)) => r,
                other => unreachable!("put answered {other:?}"),
            }
        };
        Ok(Response::new(pb::PutResponse {
            header: self.header(resp.header_revision),
            prev_kv: resp.prev_kv.as_ref().map(kv_to_proto),
        }))
    }

    async fn delete_range(
        &self,
        req: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let d = req.into_inner();
        let op = RequestOp::DeleteRange(DeleteRangeRequest {
            key: d.key,
            range_end: d.range_end,
            prev_kv: d.prev_kv,
        });
        let mut t = self
            .run_txn(TxnRequest {
                success: vec![op],
                ..Default::default()
            })
            .await?;
        let Some(ResponseOp::DeleteRange(r)) = t.responses.pop() else {
            unreachable!("delete answered something else")
        };
        Ok(Response::new(pb::DeleteRangeResponse {
            header: self.header(r.header_revision),
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.iter().map(kv_to_proto).collect(),
        }))
    }

    async fn txn(&self, req: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let (txn, sorted) = txn_from_pb(req.into_inner())?;
        let t = self.run_txn(txn).await?;
        let header = self.header(t.header_revision);
        let responses = finish_responses(sorted, t.succeeded, t.responses)
            .into_iter()
            .map(|r| self.response_op(r))
            .collect();
        Ok(Response::new(pb::TxnResponse {
            header,
            succeeded: t.succeeded,
            responses,
        }))
    }

    async fn compact(
        &self,
        req: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let pb::CompactionRequest { revision, physical } = req.into_inner();
        let current = self
            .store
            .kv
            .compact_async(revision, physical)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::CompactionResponse {
            header: self.header(current),
        }))
    }
}

#[tonic::async_trait]
impl<D: LogDir + Clone + Send + Sync + 'static> pb::watch_server::Watch for EtcdService<D> {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        req: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let rx = self.start_watch(Inbound::Tonic(Box::new(req.into_inner())));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A streaming call's request messages, from either transport.
enum Inbound<T> {
    Tonic(Box<Streaming<T>>),
    /// Undecoded messages from a [`conn::Conn`].
    Direct(mpsc::Receiver<bytes::Bytes>),
}

impl<T: prost::Message + Default> Inbound<T> {
    /// The next request; `None` once the client has ended its side, broken the
    /// stream, or sent a message that does not decode.
    async fn next(&mut self) -> Option<T> {
        match self {
            Inbound::Tonic(s) => s.message().await.ok().flatten(),
            Inbound::Direct(r) => T::decode(r.recv().await?).ok(),
        }
    }
}

impl<D: LogDir + Clone + Send + Sync + 'static> EtcdService<D> {
    fn start_watch(
        &self,
        inbound: Inbound<pb::WatchRequest>,
    ) -> mpsc::Receiver<Result<WatchResponse, Status>> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE_RESPONSES_MAX);
        let session = WatchSession {
            svc: self.clone(),
            tx,
            watchers: HashMap::new(),
        };
        tokio::spawn(session.run(inbound));
        rx
    }

    fn start_keep_alive(
        &self,
        mut inbound: Inbound<pb::LeaseKeepAliveRequest>,
    ) -> mpsc::Receiver<Result<pb::LeaseKeepAliveResponse, Status>> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE_RESPONSES_MAX);
        let svc = self.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = inbound.next() => m,
                    _ = stop.changed() => return,
                };
                let Some(r) = msg else { return };
                // etcd answers an unknown (or expired) lease with TTL 0, not an error.
                let ttl = svc.store.lessor.keep_alive(r.id).unwrap_or(0);
                let resp = pb::LeaseKeepAliveResponse {
                    header: svc.header(svc.store.kv.current_revision()),
                    id: r.id,
                    ttl,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// Runs a call that may read many keys on a task of its own, so the connection's
/// other calls (watches, writes) go on meanwhile; anything else (a point get) runs in
/// the connection's task.
async fn own_task_if(
    many: bool,
    call: impl Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
) -> Result<Vec<u8>, Status> {
    if many {
        tokio::spawn(call)
            .await
            .map_err(|e| Status::internal(format!("read task: {e}")))?
    } else {
        call.await
    }
}

/// Whether a txn may read many keys: a compare or a range with a `range_end`, in
/// either branch, at any depth.
fn txn_reads_ranges(txn: &pb::TxnRequest) -> bool {
    use pb::request_op::Request as Op;
    txn.compare.iter().any(|c| !c.range_end.is_empty())
        || txn
            .success
            .iter()
            .chain(&txn.failure)
            .any(|op| match &op.request {
                Some(Op::RequestRange(r)) => !r.range_end.is_empty(),
                Some(Op::RequestTxn(t)) => txn_reads_ranges(t),
                _ => false,
            })
}

/// Method numbers of the direct transport's routes.
mod method {
    pub const RANGE: u8 = 0;
    pub const PUT: u8 = 1;
    pub const DELETE_RANGE: u8 = 2;
    pub const TXN: u8 = 3;
    pub const COMPACT: u8 = 4;
    pub const LEASE_GRANT: u8 = 5;
    pub const LEASE_REVOKE: u8 = 6;
    pub const LEASE_TIME_TO_LIVE: u8 = 7;
    pub const LEASE_LEASES: u8 = 8;
    pub const STATUS: u8 = 9;
    pub const WATCH: u8 = 10;
    pub const LEASE_KEEP_ALIVE: u8 = 11;
}

/// Decodes a unary request and runs the tonic-facing handler on it: both transports
/// share one implementation of every method.
macro_rules! direct_unary {
    ($svc:expr, $message:expr, $method:path, $req:ty) => {{
        let svc = $svc.clone();
        Box::pin(async move {
            let req = <$req as prost::Message>::decode($message)
                .map_err(|e| Status::internal(format!("failed to decode request: {e}")))?;
            let resp = $method(&*svc, Request::new(req)).await?;
            Ok(prost::Message::encode_to_vec(resp.get_ref()))
        })
    }};
}

impl<D: LogDir + Clone + Send + Sync + 'static> conn::Service for EtcdService<D> {
    fn route(&self, path: &[u8]) -> Option<conn::Route> {
        use conn::Route::{Streaming, Unary};
        Some(match path {
            b"/etcdserverpb.KV/Range" => Unary(method::RANGE),
            b"/etcdserverpb.KV/Put" => Unary(method::PUT),
            b"/etcdserverpb.KV/DeleteRange" => Unary(method::DELETE_RANGE),
            b"/etcdserverpb.KV/Txn" => Unary(method::TXN),
            b"/etcdserverpb.KV/Compact" => Unary(method::COMPACT),
            b"/etcdserverpb.Lease/LeaseGrant" => Unary(method::LEASE_GRANT),
            b"/etcdserverpb.Lease/LeaseRevoke" => Unary(method::LEASE_REVOKE),
            b"/etcdserverpb.Lease/LeaseTimeToLive" => Unary(method::LEASE_TIME_TO_LIVE),
            b"/etcdserverpb.Lease/LeaseLeases" => Unary(method::LEASE_LEASES),
            b"/etcdserverpb.Maintenance/Status" => Unary(method::STATUS),
            b"/etcdserverpb.Watch/Watch" => Streaming(method::WATCH),
            b"/etcdserverpb.Lease/LeaseKeepAlive" => Streaming(method::LEASE_KEEP_ALIVE),
            _ => return None,
        })
    }

    fn unary(self: &Arc<Self>, m: u8, message: bytes::Bytes) -> conn::UnaryFuture {
        match m {
            method::RANGE => {
                let svc = self.clone();
                Box::pin(async move {
                    let req = <pb::RangeRequest as prost::Message>::decode(message)
                        .map_err(|e| Status::internal(format!("failed to decode request: {e}")))?;
                    let many = !req.range_end.is_empty();
                    let read = async move {
                        let resp = pb::kv_server::Kv::range(&*svc, Request::new(req)).await?;
                        Ok(prost::Message::encode_to_vec(resp.get_ref()))
                    };
                    own_task_if(many, read).await
                })
            }
            method::PUT => direct_unary!(self, message, pb::kv_server::Kv::put, pb::PutRequest),
            method::DELETE_RANGE => {
                direct_unary!(
                    self,
                    message,
                    pb::kv_server::Kv::delete_range,
                    pb::DeleteRangeRequest
                )
            }
            method::TXN => {
                let svc = self.clone();
                Box::pin(async move {
                    let req = <pb::TxnRequest as prost::Message>::decode(message)
                        .map_err(|e| Status::internal(format!("failed to decode request: {e}")))?;
                    let many = txn_reads_ranges(&req);
                    let run = async move {
                        let resp = pb::kv_server::Kv::txn(&*svc, Request::new(req)).await?;
                        Ok(prost::Message::encode_to_vec(resp.get_ref()))
                    };
                    own_task_if(many, run).await
                })
            }
            method::COMPACT => direct_unary!(
                self,
                message,
                pb::kv_server::Kv::compact,
                pb::CompactionRequest
            ),
            method::LEASE_GRANT => {
                direct_unary!(
                    self,
                    message,
                    pb::lease_server::Lease::lease_grant,
                    pb::LeaseGrantRequest
                )
            }
            method::LEASE_REVOKE => {
                direct_unary!(
                    self,
                    message,
                    pb::lease_server::Lease::lease_revoke,
                    pb::LeaseRevokeRequest
                )
            }
            method::LEASE_TIME_TO_LIVE => direct_unary!(
                self,
                message,
                pb::lease_server::Lease::lease_time_to_live,
                pb::LeaseTimeToLiveRequest
            ),
            method::LEASE_LEASES => {
                direct_unary!(
                    self,
                    message,
                    pb::lease_server::Lease::lease_leases,
                    pb::LeaseLeasesRequest
                )
            }
            method::STATUS => direct_unary!(
                self,
                message,
                pb::maintenance_server::Maintenance::status,
                pb::StatusRequest
            ),
            _ => unreachable!("route gives no unary method {m}"),
        }
    }

    fn open(self: &Arc<Self>, m: u8) -> conn::StreamEnds {
        let (in_tx, in_rx) = mpsc::channel(STREAM_QUEUE_RESPONSES_MAX);
        let outbound: Box<dyn conn::Outbound> = match m {
            method::WATCH => Box::new(self.start_watch(Inbound::Direct(in_rx))),
            method::LEASE_KEEP_ALIVE => Box::new(self.start_keep_alive(Inbound::Direct(in_rx))),
            _ => unreachable!("route gives no streaming method {m}"),
        };
        conn::StreamEnds {
            inbound: in_tx,
            outbound,
        }
    }
}

struct SessionWatcher {
    task: tokio::task::JoinHandle<()>,
    progress: ProgressHandle,
    progress_notify: bool,
}

/// One Watch stream: many watchers, one response queue.
struct WatchSession<D: LogDir + Clone + Send + Sync + 'static> {
    svc: EtcdService<D>,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
    /// By the stream's watch id.
    watchers: HashMap<i64, SessionWatcher>,
}

impl<D: LogDir + Clone + Send + Sync + 'static> WatchSession<D> {
    async fn run(mut self, mut inbound: Inbound<pb::WatchRequest>) {
        let mut stop = self.svc.stop.clone();
        let period = Duration::from_millis(self.svc.config.progress_notify_interval_ms.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                msg = inbound.next() => match msg {
                    Some(req) => {
                        if !self.handle(req).await {
                            break;
                        }
                    }
                    _ => break,
                },
                _ = tick.tick() => {
                    for w in self.watchers.values().filter(|w| w.progress_notify) {
                        w.progress.request_progress();
                    }
                }
                _ = stop.changed() => break,
            }
            self.watchers.retain(|_, w| !w.task.is_finished());
        }
        for w in self.watchers.values() {
            w.task.abort();
        }
    }

    /// Handles one request; false once the client is gone.
    async fn handle(&mut self, req: pb::WatchRequest) -> bool {
        use pb::watch_request::RequestUnion;
        let resp = match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
            Some(RequestUnion::CancelRequest(c)) => match self.watchers.remove(&c.watch_id) {
                Some(w) => {
                    w.task.abort();
                    Some(WatchResponse {
                        header: self.svc.header(self.svc.store.hub.current_revision()),
                        watch_id: c.watch_id,
                        canceled: true,
                        ..Default::default()
                    })
                }
                None => None,
            },
            Some(RequestUnion::ProgressRequest(_)) => {
                let mut any = false;
                for w in self.watchers.values() {
                    any |= w.progress.request_progress();
                }
                // With no watcher to speak for, the stream itself answers (etcd's -1).
                (!any && self.watchers.is_empty()).then(|| WatchResponse {
                    header: self.svc.header(self.svc.store.hub.current_revision()),
                    watch_id: -1,
                    ..Default::default()
                })
            }
            None => None,
        };
        match resp {
            Some(r) => self.tx.send(Ok(r)).await.is_ok(),
            None => true,
        }
    }

    /// Starts a watcher and queues its created response; returns a refusal instead.
    async fn create(&mut self, c: pb::WatchCreateRequest) -> Option<WatchResponse> {
        let header = self.svc.header(self.svc.store.hub.current_revision());
        let refuse = |reason: &str| WatchResponse {
            header,
            watch_id: -1,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        };
        // etcd: an empty range ([key, end) with end <= key) is refused.
        if !c.range_end.is_empty() && c.range_end != [0] && c.range_end <= c.key {
            return Some(refuse("mvcc: watcher range is empty"));
        }
        if self.watchers.len() >= MAX_WATCHES_PER_STREAM {
            return Some(refuse("etcdserver: too many watchers on this stream"));
        }
        let watch_id = if c.watch_id != 0 {
            if self.watchers.contains_key(&c.watch_id) {
                return Some(refuse(
                    "mvcc: duplicate watch ID provided on the WatchStream",
                ));
            }
            c.watch_id
        } else {
            (0..)
                .find(|id| !self.watchers.contains_key(id))
                .expect("a free id")
        };
        use pb::watch_create_request::FilterType;
        let spec = WatchSpec {
            key: c.key,
            range_end: c.range_end,
            start_revision: c.start_revision,
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
        };
        let watcher = match self.svc.store.hub.watch(spec) {
            Ok(w) => w,
            Err(e) => return Some(refuse(&format!("etcdserver: {e}"))),
        };
        let created = WatchResponse {
            header,
            watch_id,
            created: true,
            ..Default::default()
        };
        // The created response goes first: queue it before the watcher's task starts.
        if self.tx.send(Ok(created)).await.is_err() {
            return None;
        }
        let progress = watcher.progress_handle();
        let task = tokio::spawn(forward(
            watcher,
            watch_id,
            c.prev_kv,
            self.svc.clone(),
            self.tx.clone(),
        ));
        self.watchers.insert(
            watch_id,
            SessionWatcher {
                task,
                progress,
                progress_notify: c.progress_notify,
            },
        );
        None
    }
}

/// Moves one watcher's messages to the stream, waiting when the stream is full (the
/// hub then moves the watcher to catch-up; the writer never waits).
async fn forward<D: LogDir + Clone + Send + Sync + 'static>(
    mut watcher: Watcher,
    watch_id: i64,
    prev_kv: bool,
    svc: EtcdService<D>,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
) {
    while let Some(msg) = watcher.recv().await {
        let (resp, last) = match msg {
            WatchMessage::Events { revision, events } => (
                WatchResponse {
                    header: svc.header(revision),
                    watch_id,
                    events: events.iter().map(|e| e.encoded(prev_kv)).collect(),
                    ..Default::default()
                },
                false,
            ),
            WatchMessage::Progress { revision } => (
                WatchResponse {
                    header: svc.header(revision),
                    watch_id,
                    ..Default::default()
                },
                false,
            ),
            WatchMessage::Canceled {
                compact_revision,
                reason,
            } => (
                WatchResponse {
                    header: svc.header(svc.store.hub.current_revision()),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    cancel_reason: if compact_revision != 0 {
                        "etcdserver: mvcc: required revision has been compacted".into()
                    } else {
                        reason
                    },
                    ..Default::default()
                },
                true,
            ),
        };
        if tx.send(Ok(resp)).await.is_err() || last {
            return;
        }
    }
}

#[tonic::async_trait]
impl<D: LogDir + Clone + Send + Sync + 'static> pb::lease_server::Lease for EtcdService<D> {
    async fn lease_grant(
        &self,
        req: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let r = req.into_inner();
        let (id, ttl) = self
            .store
            .lessor
            .grant_async(r.id, r.ttl)
            .await
            .map_err(|e| lease_status(&e))?;
        Ok(Response::new(pb::LeaseGrantResponse {
            header: self.header(self.store.kv.current_revision()),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        req: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let id = req.into_inner().id;
        self.store
            .lessor
            .revoke_async(id)
            .await
            .map_err(|e| lease_status(&e))?;
        Ok(Response::new(pb::LeaseRevokeResponse {
            header: self.header(self.store.kv.current_revision()),
        }))
    }

    type LeaseKeepAliveStream = BoxStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let rx = self.start_keep_alive(Inbound::Tonic(Box::new(req.into_inner())));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let r = req.into_inner();
        let header = self.header(self.store.kv.current_revision());
        // etcd answers an unknown lease with TTL -1, not an error.
        let resp = match self.store.lessor.time_to_live(r.id, r.keys) {
            Ok(info) => pb::LeaseTimeToLiveResponse {
                header,
                id: r.id,
                ttl: info.remaining_ttl_s,
                granted_ttl: info.granted_ttl_s,
                keys: info.keys.iter().map(|k| k.to_vec()).collect(),
            },
            Err(LeaseError::NotFound(_)) => pb::LeaseTimeToLiveResponse {
                header,
                id: r.id,
                ttl: -1,
                ..Default::default()
            },
            Err(e) => return Err(lease_status(&e)),
        };
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        _req: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: self.header(self.store.kv.current_revision()),
            leases: self
                .store
                .lessor
                .leases()
                .into_iter()
                .map(|id| pb::LeaseStatus { id })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl<D: LogDir + Clone + Send + Sync + 'static> pb::maintenance_server::Maintenance
    for EtcdService<D>
{
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let revision = self.store.kv.current_revision();
        let stats = self.store.kv.stats();
        let errors = stats.last_checkpoint_error.into_iter().collect();
        Ok(Response::new(pb::StatusResponse {
            header: self.header(revision),
            version: ETCD_API_VERSION.into(),
            // The key space's files (log segments and checkpoint), as etcd's bbolt
            // file; in use, the bytes its retained entries take written out.
            db_size: stats.n_disk_bytes as i64,
            db_size_in_use: stats.n_retained_bytes as i64,
            leader: self.config.member_id,
            raft_index: revision as u64,
            raft_term: 1,
            raft_applied_index: revision as u64,
            errors,
            is_learner: false,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::request_op::Request as Op;

    fn op(request: Op) -> pb::RequestOp {
        pb::RequestOp {
            request: Some(request),
        }
    }

    fn range(range_end: &[u8]) -> Op {
        Op::RequestRange(pb::RangeRequest {
            key: b"a".to_vec(),
            range_end: range_end.to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn a_txn_that_may_read_many_keys_is_told_apart() {
        let put = op(Op::RequestPut(pb::PutRequest {
            key: b"a".to_vec(),
            ..Default::default()
        }));
        let point = pb::TxnRequest {
            compare: vec![pb::Compare {
                key: b"a".to_vec(),
                ..Default::default()
            }],
            success: vec![put.clone(), op(range(b""))],
            failure: vec![op(range(b""))],
        };
        assert!(!txn_reads_ranges(&point));

        let mut failure_range = point.clone();
        failure_range.failure.push(op(range(b"b")));
        assert!(txn_reads_ranges(&failure_range));

        let mut from_key = point.clone();
        from_key.success.push(op(range(&[0])));
        assert!(txn_reads_ranges(&from_key));

        let mut compare_range = point.clone();
        compare_range.compare[0].range_end = b"z".to_vec();
        assert!(txn_reads_ranges(&compare_range));

        let nested = |inner: pb::TxnRequest| pb::TxnRequest {
            success: vec![put.clone(), op(Op::RequestTxn(inner))],
            ..Default::default()
        };
        assert!(!txn_reads_ranges(&nested(point.clone())));
        assert!(txn_reads_ranges(&nested(nested(failure_range))));
    }
}
