//! Requests, responses and events on etcd v3's model (`etcdserverpb`, `mvccpb`).

use std::sync::Arc;

/// Immutable shared bytes: keys and values are shared between the index, snapshots and
/// responses without copying.
pub type Bytes = Arc<[u8]>;

/// etcd: a gRPC request is at most 1.5 MiB (`--max-request-bytes` default).
pub const MAX_REQUEST_BYTES: usize = 3 * 512 * 1024;
/// etcd: `--max-txn-ops` default.
pub const MAX_TXN_OPS: usize = 128;
/// Bound on the keys one revision may change (a `delete_range` over many keys). etcd has
/// no such bound; ours keeps one log record bounded.
pub const MAX_CHANGES_PER_REVISION: usize = 1 << 16;
/// Bytes a request is charged per operation on top of its keys and values, so that
/// many empty operations also count.
pub const REQUEST_OP_OVERHEAD_BYTES: usize = 16;

/// A revision: `main` is bumped once per write transaction, `sub` numbers the changes
/// inside it. Ordered by `(main, sub)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

/// One version of one key, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    /// Revision that created the key's current generation.
    pub create_revision: i64,
    /// Revision of the last change to the key.
    pub mod_revision: i64,
    /// Number of changes since creation, 1 for a fresh key.
    pub version: i64,
    /// Empty when the range was `keys_only`.
    pub value: Bytes,
    /// Lease id attached at the last put, 0 for none.
    pub lease: i64,
}

/// etcd's `RangeRequest` (without sorting and revision filters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub key: Vec<u8>,
    /// Empty: only `key`. `[0]`: every key >= `key`. Otherwise keys in `[key, range_end)`.
    pub range_end: Vec<u8>,
    /// 0 reads the latest committed revision.
    pub revision: i64,
    /// 0 is no limit.
    pub limit: i64,
    pub keys_only: bool,
    pub count_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The store's revision when the range was served.
    pub header_revision: i64,
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` returned.
    pub more: bool,
    /// Number of keys in the range (ignoring `limit`).
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Stored with the key; 0 for none. Not checked against a lessor in this slice.
    pub lease: i64,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    pub header_revision: i64,
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    pub key: Vec<u8>,
    /// As in [`RangeRequest::range_end`].
    pub range_end: Vec<u8>,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeResponse {
    pub header_revision: i64,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// What a [`Compare`] looks at, with the operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Lease(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// etcd's `Compare`: `key's target <result> operand`, for every key in the range. A
/// missing key has version, revisions and lease 0; a `Value` compare on it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub result: CompareResult,
    pub target: CompareTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    /// A nested txn: its compares are evaluated, with the outer txn's, against the
    /// state before the outer txn (etcd's semantics).
    Txn(TxnRequest),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

/// etcd's `TxnRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// The new revision if the txn wrote, else the current one.
    pub header_revision: i64,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as a watcher sees it. For a delete, `kv` holds the key and the deleting
/// revision as `mod_revision`, everything else zero (as etcd).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The key's value just before this change, if it was live.
    pub prev_kv: Option<KeyValue>,
}

/// Every change of one committed, durable revision, in `sub` order: what the engine
/// hands to commit hooks (the watch hub, later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBatch {
    pub revision: i64,
    pub events: Vec<Event>,
}
