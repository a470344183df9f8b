//! `EmbeddedStorage`: [`Storage`] over an in-process bosun-store-engine [`Store`]: the
//! durable etcd-model engine, with no network in between. The default of `bosun up`.
//!
//! Mapping (the same as [`super::etcd`], on the engine's own types):
//! - create: a txn with `create_revision(key) == 0`, else a read of the key;
//! - update: a txn with `version(key) > 0 && mod_revision(key) == expected`, else a read
//!   that tells `NotFound` from `Conflict`;
//! - delete: likewise, with `prev_kv` for the deleted value;
//! - get/list: a range at a revision, with `limit`; `remaining` is the range's count
//!   minus the keys returned;
//! - watch: a [`WatchHub`](bosun_store_engine::WatchHub) watcher from `after + 1`, whose
//!   events carry `prev_kv`; one forwarding task per watcher feeds the bounded
//!   [`WatchStream`] and asks the hub for a progress notification every
//!   `progress_interval`.
//!
//! Blocking: engine writes (txn, compact) wait for fdatasync, so they run on tokio's
//! blocking pool and never on a runtime worker. Reads are in-memory (the engine serves
//! them under a read lock, never across IO) and run inline, as the engine's gRPC service
//! does.
//!
//! Revisions: an empty engine is at revision 1, as [`super::MemoryStorage`]. The engine
//! reports 0 as its compacted revision before the first compaction; this backend reports
//! 1 (the oldest readable revision), so `compacted_revision` means the same everywhere.
//!
//! Slow watchers: the hub never makes a writer wait. A watcher whose consumer does not
//! keep up fills its [`WatchStream`] (`watch_backlog_events`), then its hub queue, and
//! is then moved by the hub to catch-up from the retained history: it still sees every
//! revision, once and in order, at its own pace. If the history it needs is compacted
//! meanwhile, its stream yields [`StorageError::Compacted`] and ends; if the hub cancels
//! it (under [`SlowWatcherPolicy::Cancel`](bosun_store_engine::SlowWatcherPolicy)), it
//! yields [`StorageError::WatcherTooSlow`] and ends. Memory per watcher stays bounded by
//! those two queues either way.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap().block_on(async {
//! use bosun_apiserver::storage::{EmbeddedStorage, Storage};
//!
//! let dir = std::env::temp_dir().join(format!("bosun-embedded-doc-{}", std::process::id()));
//! let store = EmbeddedStorage::open(&dir)?;
//! let created = store.create("/registry/pods/default/web", "{}".into()).await?;
//! assert_eq!(created.mod_revision, store.current_revision().await?);
//! drop(store);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), bosun_apiserver::storage::StorageError>(())
//! # }).unwrap();
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bosun_store_engine as engine;
use bosun_store_engine::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Engine, HostDir, PutRequest,
    RangeRequest, RequestError, RequestOp, ResponseOp, Store, StoreConfig, TxnRequest, TxnResponse,
    WatchMessage, WatchSpec,
};
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::{
    Deleted, KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent,
    WatchStream,
};

/// The oldest revision any backend can be read at: an empty store is at revision 1.
const FIRST_REVISION: Revision = 1;

/// Configuration of an [`EmbeddedStorage`].
#[derive(Clone, Debug)]
pub struct EmbeddedStorageConfig {
    /// The engine's configuration (sync mode, segment size, queue bounds, hub policy).
    pub store: StoreConfig,
    /// Capacity of each [`WatchStream`], in events. Must be at least 1.
    pub watch_backlog_events: usize,
    /// How often every watcher receives a progress notification. Zero disables them.
    pub progress_interval: Duration,
}

impl Default for EmbeddedStorageConfig {
    fn default() -> Self {
        EmbeddedStorageConfig {
            store: StoreConfig::default(),
            watch_backlog_events: 1024,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// [`Storage`] over an in-process store engine. See the module docs.
pub struct EmbeddedStorage {
    store: Store<HostDir>,
    config: EmbeddedStorageConfig,
    /// Dropping this ends every watcher's forwarding task, and so its stream.
    _shutdown: watch::Sender<()>,
    shutdown_rx: watch::Receiver<()>,
}

impl std::fmt::Debug for EmbeddedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStorage")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in `dir` with the default configuration.
    pub fn open(dir: impl AsRef<Path>) -> Result<Arc<Self>, StorageError> {
        Self::open_with(dir, EmbeddedStorageConfig::default())
    }

    /// Opens (or creates) the store in `dir`. Replays the log, so it may take a while on
    /// a large store: call it before serving, or from a blocking context. Panics if
    /// `config.watch_backlog_events` is 0.
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: EmbeddedStorageConfig,
    ) -> Result<Arc<Self>, StorageError> {
        assert!(
            config.watch_backlog_events >= 1,
            "watch_backlog_events must be at least 1"
        );
        let store = Store::open(dir, config.store.clone()).map_err(engine_error)?;
        for repair in store.repaired_tails() {
            tracing::warn!("store log repaired on open: {repair}");
        }
        let (shutdown, shutdown_rx) = watch::channel(());
        Ok(Arc::new(EmbeddedStorage {
            store,
            config,
            _shutdown: shutdown,
            shutdown_rx,
        }))
    }

    /// The engine, for tools and tests (checkpoints, stats).
    pub fn engine(&self) -> &Arc<Engine<HostDir>> {
        &self.store.kv
    }

    /// Runs a write on the blocking pool: it waits for fdatasync.
    async fn write<T, F>(&self, op: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine<HostDir>) -> Result<T, engine::Error> + Send + 'static,
    {
        let kv = Arc::clone(&self.store.kv);
        tokio::task::spawn_blocking(move || op(&kv))
            .await
            .map_err(|e| StorageError::Internal(format!("engine write task failed: {e}")))?
            .map_err(engine_error)
    }

    async fn txn(&self, txn: TxnRequest) -> Result<TxnResponse, StorageError> {
        self.write(move |kv| kv.txn(txn)).await
    }

    /// The oldest readable revision (the engine says 0 before any compaction).
    fn compacted(&self) -> Revision {
        self.store.kv.compacted_revision().max(FIRST_REVISION)
    }

    /// Fails unless `compacted <= revision <= current`, as [`super::MemoryStorage`].
    fn check_readable(&self, revision: Revision) -> Result<(), StorageError> {
        let compacted = self.compacted();
        if revision < compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted,
            });
        }
        let current = self.store.kv.current_revision();
        if revision > current {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current,
            });
        }
        Ok(())
    }

    fn range(&self, req: &RangeRequest) -> Result<engine::RangeResponse, StorageError> {
        self.store.kv.range(req).map_err(engine_error)
    }

    /// The live value of `key` now, for telling why a txn's compare failed.
    fn live(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let resp = self.range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        })?;
        resp.kvs.first().map(to_kv).transpose()
    }

    /// `NotFound` or `Conflict` for a write whose preconditions failed, from a fresh read.
    fn precondition_failed(&self, key: &str, expected: Option<Revision>) -> StorageError {
        match self.live(key) {
            Err(e) => e,
            Ok(None) => StorageError::NotFound {
                key: key.to_owned(),
            },
            Ok(Some(kv)) => StorageError::Conflict {
                key: key.to_owned(),
                // Only reachable with an expectation: without one, a live key passes.
                expected: expected.unwrap_or(0),
                actual: kv.mod_revision,
            },
        }
    }
}

/// The compares "the key is live", and "its mod_revision is `expected`" if given.
fn live_compares(key: &str, expected: Option<Revision>) -> Vec<Compare> {
    let compare = |result, target| Compare {
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        result,
        target,
    };
    let mut compares = vec![compare(CompareResult::Greater, CompareTarget::Version(0))];
    if let Some(expected) = expected {
        compares.push(compare(
            CompareResult::Equal,
            CompareTarget::ModRevision(expected),
        ));
    }
    compares
}

fn put_op(key: &str, value: &Bytes) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
        lease: 0,
        prev_kv: true,
    })
}

/// The key-value a successful put wrote, from the txn's revision and the previous value.
fn put_result(key: &str, value: Bytes, resp: &TxnResponse) -> Result<KeyValue, StorageError> {
    let revision = resp.header_revision;
    let prev = match resp.responses.first() {
        Some(ResponseOp::Put(put)) => put.prev_kv.as_ref(),
        other => return Err(unexpected("put response", other)),
    };
    let (create_revision, version) = match prev {
        Some(prev) => (prev.create_revision, prev.version + 1),
        None => (revision, 1),
    };
    Ok(KeyValue {
        key: key.to_owned(),
        value,
        create_revision,
        mod_revision: revision,
        version,
    })
}

fn unexpected(what: &str, got: impl std::fmt::Debug) -> StorageError {
    StorageError::Internal(format!(
        "engine answered {got:?} where a {what} was expected"
    ))
}

/// The engine's `[key, range_end)` for every key starting with `prefix` (etcd's
/// `WithPrefix`; the empty prefix is every key).
pub(crate) fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (prefix.to_vec(), end);
        }
    }
    // Every byte is 0xff: the prefix's keys run to the end of the key space.
    (prefix.to_vec(), vec![0])
}

/// The `[from, end)` a LIST scans: from `start` when it sorts after the prefix. A `start`
/// past the prefix's keys scans only `start` itself (which the caller filters out).
pub(crate) fn list_range(prefix: &str, start: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let (key, end) = prefix_range(prefix.as_bytes());
    let from = match start {
        Some(start) if start.as_bytes() > key.as_slice() => start.as_bytes().to_vec(),
        _ => key,
    };
    if end != [0] && from >= end {
        return (from, Vec::new());
    }
    (from, end)
}

fn to_kv(kv: &engine::KeyValue) -> Result<KeyValue, StorageError> {
    let key = std::str::from_utf8(&kv.key)
        .map_err(|_| StorageError::Internal(format!("key {:?} is not UTF-8", kv.key)))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(&kv.value),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
    })
}

fn engine_error(e: engine::Error) -> StorageError {
    match e {
        engine::Error::Request(r) => request_error(r),
        engine::Error::Corruption(c) => StorageError::Internal(c.to_string()),
        engine::Error::Io(e) => StorageError::Internal(format!("store I/O failed: {e}")),
        engine::Error::Poisoned(reason) => {
            StorageError::Unavailable(format!("store refuses writes after a failure: {reason}"))
        }
        engine::Error::Shutdown => StorageError::Unavailable("store is shut down".to_owned()),
    }
}

fn request_error(e: RequestError) -> StorageError {
    match e {
        RequestError::Compacted {
            requested,
            compacted,
        } => StorageError::Compacted {
            requested,
            compacted: compacted.max(FIRST_REVISION),
        },
        RequestError::FutureRevision { requested, current } => {
            StorageError::FutureRevision { requested, current }
        }
        e @ (RequestError::TooLarge { .. }
        | RequestError::TooManyOps { .. }
        | RequestError::TooManyChanges { .. }
        | RequestError::RevisionTooLarge { .. }) => StorageError::TooLarge(e.to_string()),
        // The API server never builds these; reaching one is a bug in this module.
        e @ (RequestError::EmptyKey
        | RequestError::RangeEndBeforeKey
        | RequestError::DuplicateKey
        | RequestError::LeaseNotFound(_)) => StorageError::Internal(format!("bad request: {e}")),
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.store.kv.current_revision())
    }

    async fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StorageError> {
        if let Some(at) = at {
            self.check_readable(at)?;
        }
        let resp = self.range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            revision: at.unwrap_or(0),
            ..RangeRequest::default()
        })?;
        let kv = resp.kvs.first().map(to_kv).transpose()?;
        Ok((kv, at.unwrap_or(resp.header_revision)))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        if let Some(at) = opts.at {
            self.check_readable(at)?;
        }
        let (key, range_end) = list_range(prefix, opts.start.as_deref());
        let resp = self.range(&RangeRequest {
            key,
            range_end,
            revision: opts.at.unwrap_or(0),
            limit: i64::try_from(opts.limit.unwrap_or(0)).unwrap_or(i64::MAX),
            ..RangeRequest::default()
        })?;
        let mut items = Vec::with_capacity(resp.kvs.len());
        for kv in resp
            .kvs
            .iter()
            .filter(|kv| kv.key.starts_with(prefix.as_bytes()))
        {
            items.push(to_kv(kv)?);
        }
        let count = usize::try_from(resp.count).expect("a count is non-negative");
        let remaining = count.saturating_sub(resp.kvs.len());
        Ok(ListResult {
            items,
            revision: opts.at.unwrap_or(resp.header_revision),
            remaining,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let resp = self
            .txn(TxnRequest {
                compare: vec![Compare {
                    key: key.as_bytes().to_vec(),
                    range_end: Vec::new(),
                    result: CompareResult::Equal,
                    target: CompareTarget::CreateRevision(0),
                }],
                success: vec![put_op(key, &value)],
                failure: Vec::new(),
            })
            .await?;
        if !resp.succeeded {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        put_result(key, value, &resp)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StorageError> {
        let expected = Some(expected_mod_revision);
        let resp = self
            .txn(TxnRequest {
                compare: live_compares(key, expected),
                success: vec![put_op(key, &value)],
                failure: Vec::new(),
            })
            .await?;
        if !resp.succeeded {
            return Err(self.precondition_failed(key, expected));
        }
        put_result(key, value, &resp)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<Deleted, StorageError> {
        let resp = self
            .txn(TxnRequest {
                compare: live_compares(key, expected_mod_revision),
                success: vec![RequestOp::DeleteRange(DeleteRangeRequest {
                    key: key.as_bytes().to_vec(),
                    range_end: Vec::new(),
                    prev_kv: true,
                })],
                failure: Vec::new(),
            })
            .await?;
        if !resp.succeeded {
            return Err(self.precondition_failed(key, expected_mod_revision));
        }
        let prev = match resp.responses.first() {
            Some(ResponseOp::DeleteRange(d)) => d.prev_kvs.first(),
            other => return Err(unexpected("delete response", other)),
        };
        let prev = prev.ok_or_else(|| unexpected("deleted value", "none"))?;
        Ok(Deleted {
            prev: to_kv(prev)?,
            revision: resp.header_revision,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        self.check_readable(after)?;
        let (key, range_end) = prefix_range(prefix.as_bytes());
        let spec = WatchSpec {
            key,
            range_end,
            start_revision: after + 1,
            no_put: false,
            no_delete: false,
        };
        let watcher = self.store.hub.watch(spec).map_err(|e| match e {
            engine::watch::WatchError::Request(r) => request_error(r),
            e @ engine::watch::WatchError::TooManyWatchers { .. } => {
                StorageError::TooLarge(e.to_string())
            }
        })?;
        let (tx, rx) = mpsc::channel(self.config.watch_backlog_events);
        let forward = Forward {
            tx,
            last_revision: after,
            progress_interval: self.config.progress_interval,
            shutdown: self.shutdown_rx.clone(),
        };
        tokio::spawn(forward.run(watcher));
        Ok(WatchStream::new(rx))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        match self.write(move |kv| kv.compact(revision)).await {
            // etcd refuses to compact at or below the compacted revision; the contract
            // makes it a no-op.
            Err(StorageError::Compacted { .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.compacted())
    }
}

/// Moves one hub watcher's messages to its [`WatchStream`].
struct Forward {
    tx: mpsc::Sender<Result<WatchEvent, StorageError>>,
    /// The newest revision delivered (or `after`): a compaction cancel names it.
    last_revision: Revision,
    progress_interval: Duration,
    shutdown: watch::Receiver<()>,
}

impl Forward {
    async fn run(mut self, mut watcher: engine::Watcher) {
        let progress = watcher.progress_handle();
        // A zero interval disables progress: tick once a day and ignore it.
        let period = if self.progress_interval.is_zero() {
            Duration::from_secs(86_400)
        } else {
            self.progress_interval
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let message = tokio::select! {
                m = watcher.recv() => m,
                _ = ticks.tick() => {
                    if !self.progress_interval.is_zero() {
                        progress.request_progress();
                    }
                    continue;
                }
                _ = self.shutdown.changed() => return,
                _ = self.tx.closed() => return,
            };
            let Some(message) = message else { return };
            if !self.deliver(message).await {
                return;
            }
        }
    }

    /// Sends one hub message on; false once the stream is over.
    async fn deliver(&mut self, message: WatchMessage) -> bool {
        match message {
            WatchMessage::Events { events, .. } => {
                for shared in events {
                    let event = to_event(&shared.event);
                    let failed = event.is_err();
                    if let Ok(event) = &event {
                        self.last_revision = event.revision();
                    }
                    if self.tx.send(event).await.is_err() || failed {
                        return false;
                    }
                }
                true
            }
            WatchMessage::Progress { revision } => {
                let event = WatchEvent::Progress { revision };
                self.tx.send(Ok(event)).await.is_ok()
            }
            WatchMessage::Canceled {
                compact_revision, ..
            } => {
                let error = if compact_revision > 0 {
                    StorageError::Compacted {
                        requested: self.last_revision,
                        compacted: compact_revision,
                    }
                } else {
                    StorageError::WatcherTooSlow
                };
                let _ = self.tx.send(Err(error)).await;
                false
            }
        }
    }
}

fn to_event(event: &engine::Event) -> Result<WatchEvent, StorageError> {
    let prev = event.prev_kv.as_ref().map(to_kv).transpose()?;
    match event.kind {
        engine::EventKind::Put => Ok(WatchEvent::Put {
            kv: to_kv(&event.kv)?,
            prev,
        }),
        engine::EventKind::Delete => Ok(WatchEvent::Delete {
            prev: prev.ok_or_else(|| unexpected("delete event's prev_kv", "none"))?,
            revision: event.kv.mod_revision,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{EmbeddedStorage, EmbeddedStorageConfig, list_range, prefix_range};
    use crate::storage::{Storage, WatchEvent};

    /// A directory under the system's temporary directory, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("bosun-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn quiet() -> EmbeddedStorageConfig {
        EmbeddedStorageConfig {
            progress_interval: Duration::ZERO,
            ..EmbeddedStorageConfig::default()
        }
    }

    /// What a write acknowledged survives a restart, revisions and compaction included.
    #[tokio::test]
    async fn acknowledged_writes_survive_a_reopen() {
        let dir = TempDir::new("embedded-reopen");
        let store = EmbeddedStorage::open_with(&dir.0, quiet()).unwrap();
        let a = store.create("/a", "1".into()).await.unwrap(); // 2
        store.create("/b", "1".into()).await.unwrap(); // 3
        store.delete("/b", None).await.unwrap(); // 4
        store.compact(3).await.unwrap();
        drop(store);
        let store = EmbeddedStorage::open_with(&dir.0, quiet()).unwrap();
        assert_eq!(store.current_revision().await, Ok(4));
        assert_eq!(store.compacted_revision().await, Ok(3));
        assert_eq!(store.get("/a", None).await, Ok((Some(a), 4)));
        assert_eq!(
            store.get("/b", Some(3)).await.unwrap().0.unwrap().value,
            "1"
        );
        assert_eq!(store.get("/b", None).await, Ok((None, 4)));
    }

    /// Dropping the storage ends its watch streams (the contract's "store shuts down").
    #[tokio::test]
    async fn dropping_the_storage_ends_watch_streams() {
        let dir = TempDir::new("embedded-drop");
        let store = EmbeddedStorage::open_with(&dir.0, quiet()).unwrap();
        store.create("/a", "1".into()).await.unwrap(); // 2
        let mut watch = store.watch("/", 1).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(20), watch.next()).await;
        assert!(
            matches!(first, Ok(Some(Ok(WatchEvent::Put { .. })))),
            "{first:?}"
        );
        drop(store);
        let end = tokio::time::timeout(Duration::from_secs(20), watch.next()).await;
        assert_eq!(end, Ok(None), "the stream ends with the storage");
    }

    /// etcd's `GetPrefixRangeEnd` (clientv3/op.go), one row per case.
    #[test]
    fn prefix_range_is_etcds() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"", b"\0", b"\0"),
            (b"/a/", b"/a/", b"/a0"),
            (b"a\xff", b"a\xff", b"b"),
            (b"\xff\xff", b"\xff\xff", b"\0"),
        ];
        for &(prefix, key, end) in cases {
            assert_eq!(
                prefix_range(prefix),
                (key.to_vec(), end.to_vec()),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn list_range_starts_at_start_when_it_sorts_after_the_prefix() {
        /// (prefix, start, expected key, expected range end)
        type Case = (
            &'static str,
            Option<&'static str>,
            &'static [u8],
            &'static [u8],
        );
        let cases: &[Case] = &[
            ("/a/", None, b"/a/", b"/a0"),
            ("/a/", Some("/a/x"), b"/a/x", b"/a0"),
            ("/a/", Some("/"), b"/a/", b"/a0"),
            ("/a/", Some("/b"), b"/b", b""),
            ("", Some("k"), b"k", b"\0"),
        ];
        for &(prefix, start, key, end) in cases {
            assert_eq!(
                list_range(prefix, start),
                (key.to_vec(), end.to_vec()),
                "{prefix:?} from {start:?}"
            );
        }
    }
}
