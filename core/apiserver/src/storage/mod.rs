//! The `Storage` trait: a revisioned key-value store with watch, on etcd's model.
//!
//! The API server keeps every object as one key (`/registry/<resource>/<namespace>/<name>`)
//! whose value is the object's JSON. Every write commits exactly one new cluster-wide
//! revision; an object's `resourceVersion` is the `mod_revision` of its key.
//!
//! `MemoryStorage` (in [`memory`]) is the reference implementation: every other backend is
//! tested against the same contract and must behave the same.

use async_trait::async_trait;
use bytes::Bytes;

pub mod embedded;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod memory;

pub use embedded::{EmbeddedStorage, EmbeddedStorageConfig};
#[cfg(feature = "etcd")]
pub use etcd::{EtcdStorage, EtcdStorageConfig};
pub use memory::{MemoryStorage, MemoryStorageConfig};

/// A store revision. Revisions start at 1 (an empty store is at revision 1, as etcd) and
/// every successful write adds exactly one.
pub type Revision = i64;

/// One live key as read at some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the current generation of the key was created.
    pub create_revision: Revision,
    /// Revision of the last write to the key. This is the object's `resourceVersion`.
    pub mod_revision: Revision,
    /// Number of writes to the key since it was created, starting at 1.
    pub version: i64,
}

/// How a LIST reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read at this revision; `None` reads the latest. A revision older than the
    /// compacted one is [`StorageError::Compacted`]; one newer than the current is
    /// [`StorageError::FutureRevision`].
    pub at: Option<Revision>,
    /// Return at most this many keys; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
    /// Start at this key (inclusive) instead of at the prefix. Must begin with the prefix.
    pub start: Option<String>,
}

/// The answer to a LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// Keys in ascending byte order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at (the store's current revision when `at` was `None`).
    pub revision: Revision,
    /// Number of keys under the prefix after the last returned one (0 when complete).
    pub remaining: usize,
}

/// The result of a successful delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The value the key held just before the delete.
    pub prev: KeyValue,
    /// The revision that the delete committed.
    pub revision: Revision,
}

/// One change seen by a watcher, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or updated; `prev` is the value before, if the key was live.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`; `prev` is the last live value.
    Delete { prev: KeyValue, revision: Revision },
    /// Every event up to and including `revision` has been delivered to this watcher.
    Progress { revision: Revision },
}

impl WatchEvent {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
            WatchEvent::Progress { revision } => *revision,
        }
    }
}

/// A stream of watch events. Ends (`None`) when the store shuts down; yields an error
/// and then ends when the watcher fell too far behind ([`StorageError::WatcherTooSlow`]).
pub struct WatchStream {
    rx: tokio::sync::mpsc::Receiver<Result<WatchEvent, StorageError>>,
}

impl WatchStream {
    /// Wraps a bounded channel; the sender side belongs to the storage implementation.
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<WatchEvent, StorageError>>) -> Self {
        WatchStream { rx }
    }

    /// The next event, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        self.rx.recv().await
    }
}

/// Operating errors of a storage backend. Programmer errors panic instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    /// The key's `mod_revision` was not the expected one.
    #[error("key {key:?} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The watcher's backlog reached its bound and it was cancelled; the client must
    /// re-watch (or relist).
    #[error("watcher fell too far behind and was cancelled")]
    WatcherTooSlow,
    /// A request exceeded a limit (value size, list size, watcher count).
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The backend is unavailable (remote store down, shutting down).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend detected corruption or an internal failure.
    #[error("storage internal error: {0}")]
    Internal(String),
}

/// A revisioned key-value store with watch.
///
/// Keys are UTF-8 strings ordered by their bytes. All reads are linearizable: a read
/// that starts after a write returned sees that write. Implementations must be safe to
/// call from many tasks at once.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The store's current revision: that of the last committed write.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// Reads one key at `at` (`None`: latest). Returns the key (if live at that revision)
    /// and the revision the read was served at.
    async fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StorageError>;

    /// Reads every live key that starts with `prefix`, in key order, subject to `opts`.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError>;

    /// Creates `key`. Fails with `AlreadyExists` when the key is live.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError>;

    /// Replaces `key` if its `mod_revision` equals `expected_mod_revision`.
    /// Fails with `NotFound` when the key is not live, `Conflict` on a revision mismatch.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StorageError>;

    /// Deletes `key`, if given only when its `mod_revision` equals the expected one.
    /// Fails with `NotFound` when the key is not live, `Conflict` on a revision mismatch.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<Deleted, StorageError>;

    /// Watches every key starting with `prefix`, delivering each change with a revision
    /// greater than `after` in revision order, then live changes as they commit.
    /// Fails with `Compacted` when `after` is older than the compacted revision and with
    /// `FutureRevision` when it is newer than the current one. A watcher whose backlog
    /// reaches the implementation's bound receives `WatcherTooSlow` and is dropped:
    /// writers never wait for watchers.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// Discards history before `revision`: reads and watches at older revisions fail with
    /// `Compacted` afterwards. Compacting at or below the current compacted revision is
    /// a no-op; above the current revision is `FutureRevision`.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// The oldest revision still readable.
    async fn compacted_revision(&self) -> Result<Revision, StorageError>;
}
