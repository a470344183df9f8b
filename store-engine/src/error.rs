//! Typed errors, one enum per layer plus the crate's umbrella [`Error`].

use std::io;

/// A request the store refuses; nothing was written. These map to etcd's gRPC errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// etcd: "etcdserver: key is not provided".
    #[error("key is not provided")]
    EmptyKey,
    /// The range end sorts before the key (and is not the "\0" = to-the-end marker).
    #[error("range end sorts before the key")]
    RangeEndBeforeKey,
    /// etcd: "etcdserver: request is too large".
    #[error("request is too large: {size_bytes} bytes (limit {limit_bytes})")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// etcd: "etcdserver: too many operations in txn request".
    #[error("too many operations in txn request: {n_ops} (limit {limit})")]
    TooManyOps { n_ops: usize, limit: usize },
    /// etcd: "etcdserver: duplicate key given in txn request".
    #[error("duplicate key given in txn request")]
    DuplicateKey,
    /// One revision would change more keys than [`crate::MAX_CHANGES_PER_REVISION`].
    #[error("one revision would change {n_changes} keys (limit {limit})")]
    TooManyChanges { n_changes: usize, limit: usize },
    /// One revision's changes would not fit one log record
    /// ([`crate::codec::MAX_RECORD_PAYLOAD_BYTES`]): a delete of many large keys.
    #[error("one revision's changes would take {size_bytes} bytes (limit {limit_bytes})")]
    RevisionTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// etcd: "mvcc: required revision has been compacted".
    #[error("required revision {requested} has been compacted (compacted at {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    /// etcd: "mvcc: required revision is a future revision".
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision { requested: i64, current: i64 },
    /// etcd: "etcdserver: requested lease not found": the branch a txn took puts with
    /// a lease that does not exist.
    #[error("requested lease {0} not found")]
    LeaseNotFound(i64),
}

/// Data on disk that fails its integrity checks somewhere a torn write cannot explain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("corruption in {file} at offset {offset}: {reason}")]
pub struct Corruption {
    /// File name inside the data directory (a segment or a checkpoint).
    pub file: String,
    /// Byte offset of the first record that failed its checks.
    pub offset: u64,
    pub reason: String,
}

/// A torn tail cut off when the log was opened: the last write that never completed
/// (or damage to the last record, which a torn write cannot be told apart from).
/// Nothing cut was acknowledged, since acknowledgement waits for the sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cut a torn tail of {bytes_dropped} bytes off {file} at offset {offset}: {reason}")]
pub struct TailRepair {
    pub file: String,
    /// Where the file now ends: the end of its last valid record.
    pub offset: u64,
    pub bytes_dropped: u64,
    /// Why the first dropped record failed to decode.
    pub reason: String,
}

/// The crate's umbrella error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Corruption(#[from] Corruption),
    #[error("log I/O failed: {0}")]
    Io(#[from] io::Error),
    /// An earlier write or fdatasync failed; the engine refuses writes until reopened
    /// (retrying an fdatasync after a failure can report success for lost data).
    #[error("engine failed earlier and refuses writes: {0}")]
    Poisoned(String),
    #[error("engine is shut down")]
    Shutdown,
}

impl Error {
    /// The request error, if this is one.
    pub fn as_request(&self) -> Option<&RequestError> {
        match self {
            Error::Request(e) => Some(e),
            _ => None,
        }
    }
}
