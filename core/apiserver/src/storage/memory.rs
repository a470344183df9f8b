//! `MemoryStorage`: the reference in-memory implementation of [`Storage`], on etcd's MVCC
//! model. Every other backend is tested against it.
//!
//! Layout:
//! - `memory.rs` (this file): configuration, locking, the progress ticker, the trait.
//! - `memory/store.rs`: per-key version histories, the key index and the revision log;
//!   pure and synchronous.
//! - `memory/watchers.rs`: the bounded watcher channels and their fan-out.
//!
//! Model: one global revision, 1 for an empty store, one more per committed write. Each
//! key keeps its versions (create revision, mod revision, version, value or tombstone);
//! a delete closes the key's generation. Reads at any revision from the compacted one to
//! the current one see exactly the state at that revision. `compact` is explicit: the
//! caller runs it (for example on a timer, as the Kubernetes API server does).
//!
//! Locking: one `std::sync::RwLock` around the store and the watchers. Reads take it
//! shared; writes, watch registration and progress notifications take it exclusively, so
//! a new watcher's replay and its first live event cannot miss or repeat a revision. The
//! lock is never held across an `.await`, and no method here awaits anything.
//!
//! Watch backlog: each watcher has a bounded channel of `watch_backlog_events`. Writers
//! only `try_send`; a watcher whose backlog is full receives
//! [`StorageError::WatcherTooSlow`] (always delivered: a slot is reserved for it) and is
//! dropped. A watch whose replay alone would exceed the backlog fails at once with
//! [`StorageError::Compacted`] whose `compacted` field is the oldest revision from which
//! that watch could be served now. Kubernetes reflectors treat that as "410 Gone: too old
//! resource version" and relist, which is what they would have to do anyway after
//! falling that far behind, and it keeps a watcher's memory bounded by the backlog.
//!
//! LIST: `ListOptions::start` must begin with the prefix; a start that does not is not
//! an error here: the listing covers the keys that begin with the prefix and sort at or
//! after `start` (so a start before the prefix lists from the prefix).
//!
//! Progress: every `progress_interval`, each watcher with room in its backlog receives
//! `WatchEvent::Progress { revision: current }`, ordered after every event before it.
//! The ticker is a tokio task, started only if [`MemoryStorage::new`] is called inside a
//! tokio runtime (with its time driver enabled); it ends when the last `Arc` is dropped.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig, Storage, WatchEvent};
//!
//! let store = MemoryStorage::new(MemoryStorageConfig::default());
//! let created = store.create("/registry/pods/default/web", "{}".into()).await?;
//! assert_eq!(created.mod_revision, 2);
//! let mut watch = store.watch("/registry/pods/", 1).await?;
//! match watch.next().await {
//!     Some(Ok(WatchEvent::Put { kv, prev: None })) => assert_eq!(kv, created),
//!     other => panic!("expected the creation, got {other:?}"),
//! }
//! # Ok::<(), bosun_apiserver::storage::StorageError>(())
//! # }).unwrap();
//! ```

mod store;
mod watchers;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use self::store::Store;
use self::watchers::Watchers;
use super::{
    Deleted, KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchStream,
};

/// The largest `watch_backlog_events` accepted: a sanity bound, far above any useful one.
pub const MAX_WATCH_BACKLOG_EVENTS: usize = 1 << 24;

/// Configuration of a [`MemoryStorage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryStorageConfig {
    /// Capacity of each watcher's channel, in events: a watcher that falls this far behind
    /// is cancelled with `WatcherTooSlow`, and a watch whose replay would exceed it fails
    /// with `Compacted`. Must be in `1..=MAX_WATCH_BACKLOG_EVENTS`.
    pub watch_backlog_events: usize,
    /// How often every watcher receives a progress notification. Zero disables them.
    pub progress_interval: Duration,
    /// The most watchers that may be open at once; more fail with `TooLarge`.
    pub max_watchers: usize,
}

impl Default for MemoryStorageConfig {
    fn default() -> Self {
        MemoryStorageConfig {
            watch_backlog_events: 10_000,
            progress_interval: Duration::from_secs(5),
            max_watchers: 100_000,
        }
    }
}

/// The reference in-memory [`Storage`]. See the module docs.
#[derive(Debug)]
pub struct MemoryStorage {
    inner: RwLock<Inner>,
    /// Dropping this ends the progress ticker, if there is one, at once.
    _ticker_stop: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    watchers: Watchers,
}

impl MemoryStorage {
    /// An empty store at revision 1. Panics if `config.watch_backlog_events` is out of
    /// range. Starts the progress ticker only when called inside a tokio runtime and
    /// `config.progress_interval` is not zero.
    pub fn new(config: MemoryStorageConfig) -> Arc<MemoryStorage> {
        let backlog = config.watch_backlog_events;
        assert!(backlog >= 1, "watch_backlog_events must be at least 1");
        assert!(
            backlog <= MAX_WATCH_BACKLOG_EVENTS,
            "watch_backlog_events {backlog} is above the maximum"
        );
        let runtime = tokio::runtime::Handle::try_current().ok();
        let ticker = runtime.filter(|_| !config.progress_interval.is_zero());
        let (stop_tx, stop_rx) = oneshot::channel();
        let storage = Arc::new(MemoryStorage {
            inner: RwLock::new(Inner {
                store: Store::new(),
                watchers: Watchers::new(backlog, config.max_watchers),
            }),
            _ticker_stop: stop_tx,
        });
        if let Some(runtime) = ticker {
            let weak = Arc::downgrade(&storage);
            runtime.spawn(progress_ticker(weak, config.progress_interval, stop_rx));
        }
        storage
    }

    /// Sends every watcher with room in its backlog a progress notification at the current
    /// revision now, as the ticker does. Also forgets watchers whose stream was dropped.
    pub fn request_progress(&self) -> Result<(), StorageError> {
        let mut inner = self.write()?;
        let Inner { store, watchers } = &mut *inner;
        watchers.progress(store.current());
        Ok(())
    }

    /// The number of registered watchers, including ones whose stream was dropped since
    /// the last write.
    pub fn watcher_count(&self) -> Result<usize, StorageError> {
        Ok(self.read()?.watchers.len())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Inner>, StorageError> {
        self.inner.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Inner>, StorageError> {
        self.inner.write().map_err(|_| poisoned())
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        self.read().expect("lock").store.check_invariants();
    }
}

impl Inner {
    /// Sends the event of the write just committed to `key` to the matching watchers.
    fn broadcast_latest(&mut self, key: &str) {
        if self.watchers.len() == 0 {
            return;
        }
        let event = self.store.event_at(self.store.current());
        self.watchers.broadcast(key, &event);
    }
}

fn poisoned() -> StorageError {
    // A thread panicked while holding the lock: an invariant may be broken, so refuse to
    // serve rather than serve something wrong.
    StorageError::Internal("memory storage lock poisoned by an earlier panic".to_owned())
}

/// Sends progress notifications every `period` until `stop` fires or the storage is gone.
async fn progress_ticker(
    storage: Weak<MemoryStorage>,
    period: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let start = tokio::time::Instant::now() + period;
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let Some(storage) = storage.upgrade() else {
            return;
        };
        if let Err(error) = storage.request_progress() {
            tracing::error!(%error, "progress ticker stops");
            return;
        }
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.read()?.store.current())
    }

    async fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StorageError> {
        let inner = self.read()?;
        let revision = inner.store.read_revision(at)?;
        Ok((inner.store.get(key, revision), revision))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let inner = self.read()?;
        let revision = inner.store.read_revision(opts.at)?;
        Ok(inner.store.list(prefix, &opts, revision))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let mut inner = self.write()?;
        let kv = inner.store.create(key, value)?;
        inner.broadcast_latest(key);
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StorageError> {
        let mut inner = self.write()?;
        let kv = inner.store.update(key, value, expected_mod_revision)?;
        inner.broadcast_latest(key);
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<Deleted, StorageError> {
        let mut inner = self.write()?;
        let (prev, revision) = inner.store.delete(key, expected_mod_revision)?;
        inner.broadcast_latest(key);
        Ok(Deleted { prev, revision })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let mut inner = self.write()?;
        let Inner { store, watchers } = &mut *inner;
        store.check_readable(after)?;
        watchers.check_room()?;
        // Replay and registration happen under the same exclusive lock, so the first live
        // event this watcher gets is the first revision after the replay.
        match store.replay(prefix, after, watchers.backlog_events()) {
            Ok(replay) => Ok(watchers.register(prefix, replay)),
            Err(oldest) => Err(StorageError::Compacted {
                requested: after,
                compacted: oldest,
            }),
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.write()?.store.compact(revision)
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.read()?.store.compacted())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::FutureExt;

    use super::{MemoryStorage, MemoryStorageConfig};
    use crate::storage::{
        Deleted, KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent,
        WatchStream,
    };

    /// Bounds every wait for a watch event, so that a broken store fails a test instead of
    /// hanging it. Not a timing assertion: every event awaited is already due or, for the
    /// ticker tests, due after a few milliseconds.
    const HANG_GUARD: Duration = Duration::from_secs(60);

    /// A configuration without the progress ticker, so that no test sees an unplanned
    /// `Progress` however slowly it runs.
    fn quiet(watch_backlog_events: usize) -> MemoryStorageConfig {
        MemoryStorageConfig {
            watch_backlog_events,
            progress_interval: Duration::ZERO,
            ..MemoryStorageConfig::default()
        }
    }

    fn kv(
        key: &str,
        value: &str,
        create_revision: Revision,
        mod_revision: Revision,
        version: i64,
    ) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Bytes::from(value.to_owned()),
            create_revision,
            mod_revision,
            version,
        }
    }

    async fn recv(stream: &mut WatchStream) -> Option<Result<WatchEvent, StorageError>> {
        tokio::time::timeout(HANG_GUARD, stream.next())
            .await
            .expect("the watch stream stalled")
    }

    async fn recv_event(stream: &mut WatchStream) -> WatchEvent {
        match recv(stream).await {
            Some(Ok(event)) => event,
            other => panic!("expected a watch event, got {other:?}"),
        }
    }

    async fn assert_idle(stream: &mut WatchStream) {
        // Yielding first gives the task a fresh cooperative budget, so `None` below means
        // the channel is empty, not that tokio asked us to yield.
        tokio::task::yield_now().await;
        if let Some(item) = stream.next().now_or_never() {
            panic!("expected no pending watch item, got {item:?}");
        }
    }

    // ---- Model-based randomized test (STYLE.md 13) ----

    /// xorshift64*: a tiny seeded RNG, so that the model test needs no new dependency.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        /// Uniform in `lo..=hi`.
        fn between(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
        }

        fn percent(&mut self, p: usize) -> bool {
            self.below(100) < p
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const MODEL_SEEDS: u64 = 200;
    const MODEL_STEPS: usize = 300;
    /// Keys chosen to share prefixes in awkward ways ("a" < "a/1" < "a/10" < "a/2" < "ab").
    const KEYS: &[&str] = &["a", "a/1", "a/10", "a/2", "a/b/1", "ab", "b/1", "b/2", "c"];
    const PREFIXES: &[&str] = &["", "a", "a/", "a/b/", "b/", "c", "z"];

    type Snapshot = BTreeMap<String, KeyValue>;

    /// A watcher as the model expects it: what its stream holds that was not read yet.
    struct ModelWatch {
        stream: WatchStream,
        prefix: String,
        unread: VecDeque<Result<WatchEvent, StorageError>>,
        cancelled: bool,
    }

    impl ModelWatch {
        fn deliver(&mut self, event: WatchEvent, backlog: usize) {
            if self.cancelled {
                return;
            }
            if self.unread.len() < backlog {
                self.unread.push_back(Ok(event));
            } else {
                self.unread.push_back(Err(StorageError::WatcherTooSlow));
                self.cancelled = true;
            }
        }

        fn progress(&mut self, revision: Revision, backlog: usize) {
            if !self.cancelled && self.unread.len() < backlog {
                self.unread.push_back(Ok(WatchEvent::Progress { revision }));
            }
        }
    }

    /// The store as full snapshots, one per revision: obviously right, and slow.
    struct Model {
        /// `snapshots[r - 1]` is the state at revision `r`.
        snapshots: Vec<Snapshot>,
        /// `written[r - 2]` is the key that revision `r` wrote.
        written: Vec<String>,
        compacted: Revision,
        backlog: usize,
        max_watchers: usize,
        watches: Vec<ModelWatch>,
    }

    impl Model {
        fn new(backlog: usize, max_watchers: usize) -> Model {
            Model {
                snapshots: vec![Snapshot::new()],
                written: Vec::new(),
                compacted: 1,
                backlog,
                max_watchers,
                watches: Vec::new(),
            }
        }

        fn current(&self) -> Revision {
            self.snapshots.len() as Revision
        }

        fn at(&self, revision: Revision) -> &Snapshot {
            &self.snapshots[(revision - 1) as usize]
        }

        fn latest(&self) -> &Snapshot {
            self.at(self.current())
        }

        fn readable(&self, requested: Revision) -> Result<Revision, StorageError> {
            if requested < self.compacted {
                Err(StorageError::Compacted {
                    requested,
                    compacted: self.compacted,
                })
            } else if requested > self.current() {
                Err(StorageError::FutureRevision {
                    requested,
                    current: self.current(),
                })
            } else {
                Ok(requested)
            }
        }

        fn resolve(&self, at: Option<Revision>) -> Result<Revision, StorageError> {
            at.map_or(Ok(self.current()), |at| self.readable(at))
        }

        /// Commits a write of `key` (`None` deletes it) and queues its event for watchers.
        fn commit(&mut self, key: &str, kv: Option<KeyValue>) {
            let mut next = self.latest().clone();
            match kv {
                Some(kv) => next.insert(key.to_owned(), kv),
                None => next.remove(key),
            };
            self.snapshots.push(next);
            self.written.push(key.to_owned());
            let event = self.event(self.current());
            let backlog = self.backlog;
            for watch in self
                .watches
                .iter_mut()
                .filter(|w| key.starts_with(w.prefix.as_str()))
            {
                watch.deliver(event.clone(), backlog);
            }
        }

        /// The event of revision `revision`, from the two snapshots around it.
        fn event(&self, revision: Revision) -> WatchEvent {
            let key = &self.written[(revision - 2) as usize];
            let prev = self.at(revision - 1).get(key).cloned();
            match self.at(revision).get(key) {
                Some(kv) => WatchEvent::Put {
                    kv: kv.clone(),
                    prev,
                },
                None => WatchEvent::Delete {
                    prev: prev.expect("only a live key is deleted"),
                    revision,
                },
            }
        }

        fn list(&self, prefix: &str, opts: &ListOptions, revision: Revision) -> ListResult {
            let matching: Vec<&KeyValue> = self
                .at(revision)
                .values()
                .filter(|kv| kv.key.starts_with(prefix))
                .filter(|kv| opts.start.as_ref().is_none_or(|start| kv.key >= *start))
                .collect();
            let limit = opts
                .limit
                .filter(|&l| l > 0)
                .unwrap_or(usize::MAX)
                .min(matching.len());
            let items: Vec<KeyValue> = matching[..limit].iter().map(|kv| (*kv).clone()).collect();
            ListResult {
                items,
                revision,
                remaining: matching.len() - limit,
            }
        }

        fn watch(&self, prefix: &str, after: Revision) -> Result<Vec<WatchEvent>, StorageError> {
            self.readable(after)?;
            let open = self.watches.iter().filter(|w| !w.cancelled).count();
            if open >= self.max_watchers {
                return Err(StorageError::TooLarge("(any message)".to_owned()));
            }
            let events: Vec<WatchEvent> = (after + 1..=self.current())
                .filter(|&r| self.written[(r - 2) as usize].starts_with(prefix))
                .map(|r| self.event(r))
                .collect();
            if events.len() > self.backlog {
                let oldest = events[events.len() - self.backlog - 1].revision();
                return Err(StorageError::Compacted {
                    requested: after,
                    compacted: oldest,
                });
            }
            Ok(events)
        }
    }

    /// Prints the seed of a failing run, so that it can be replayed alone.
    struct SeedGuard(u64);

    impl Drop for SeedGuard {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!(
                    "model test failed for seed {0}; replay with BOSUN_STORAGE_SEED={0}",
                    self.0
                );
            }
        }
    }

    #[tokio::test]
    async fn behaves_like_the_snapshot_model() {
        let seeds: Vec<u64> = match std::env::var("BOSUN_STORAGE_SEED") {
            Ok(seed) => vec![seed.parse().expect("BOSUN_STORAGE_SEED is a u64")],
            Err(_) => (0..MODEL_SEEDS).collect(),
        };
        for seed in seeds {
            let _guard = SeedGuard(seed);
            run_model(seed).await;
        }
    }

    async fn run_model(seed: u64) {
        let mut rng = Rng::new(seed);
        let backlog = *rng.pick(&[2, 5, 10_000]);
        let max_watchers = *rng.pick(&[1, 3, 100_000]);
        let config = MemoryStorageConfig {
            max_watchers,
            ..quiet(backlog)
        };
        let store = MemoryStorage::new(config);
        let mut model = Model::new(backlog, max_watchers);
        for step in 0..MODEL_STEPS {
            match rng.below(100) {
                0..25 => model_create(&store, &mut model, &mut rng, step).await,
                25..45 => model_update(&store, &mut model, &mut rng, step).await,
                45..57 => model_delete(&store, &mut model, &mut rng, step).await,
                57..62 => model_compact(&store, &mut model, &mut rng, step).await,
                62..74 => model_get(&store, &model, &mut rng, step).await,
                74..86 => model_list(&store, &model, &mut rng, step).await,
                86..91 => model_watch(&store, &mut model, &mut rng, step).await,
                91..93 => {
                    if !model.watches.is_empty() {
                        let idx = rng.below(model.watches.len());
                        drop(model.watches.swap_remove(idx));
                    }
                }
                93..97 => model_read_watch(&mut model, &mut rng, step).await,
                _ => {
                    store.request_progress().expect("progress");
                    let (current, backlog) = (model.current(), model.backlog);
                    model
                        .watches
                        .iter_mut()
                        .for_each(|w| w.progress(current, backlog));
                }
            }
            store.check_invariants();
            assert_eq!(
                store.current_revision().await,
                Ok(model.current()),
                "step {step}: current revision"
            );
            assert_eq!(
                store.compacted_revision().await,
                Ok(model.compacted),
                "step {step}: compacted revision"
            );
        }
        // Every stream holds exactly what the model queued, and ends once the store is gone
        // (a cancelled one has ended already).
        for watch in &mut model.watches {
            while let Some(expected) = watch.unread.pop_front() {
                assert_eq!(
                    recv(&mut watch.stream).await,
                    Some(expected),
                    "final drain of {:?}",
                    watch.prefix
                );
            }
            if watch.cancelled {
                assert_eq!(
                    recv(&mut watch.stream).await,
                    None,
                    "cancelled watch on {:?} ends",
                    watch.prefix
                );
            } else {
                assert_idle(&mut watch.stream).await;
            }
        }
        drop(store);
        for watch in &mut model.watches {
            assert_eq!(
                recv(&mut watch.stream).await,
                None,
                "watch on {:?} ends with the store",
                watch.prefix
            );
        }
    }

    fn random_value(rng: &mut Rng) -> Bytes {
        Bytes::from(format!("v{}", rng.below(1000)))
    }

    /// `None` (latest) or a revision around the readable window, out-of-range ones included.
    fn random_at(model: &Model, rng: &mut Rng) -> Option<Revision> {
        (!rng.percent(30)).then(|| rng.between(model.compacted - 2, model.current() + 2))
    }

    async fn model_create(store: &MemoryStorage, model: &mut Model, rng: &mut Rng, step: usize) {
        let key = *rng.pick(KEYS);
        let value = random_value(rng);
        let next = model.current() + 1;
        let expected = match model.latest().get(key) {
            Some(_) => Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            }),
            None => Ok(KeyValue {
                key: key.to_owned(),
                value: value.clone(),
                create_revision: next,
                mod_revision: next,
                version: 1,
            }),
        };
        assert_eq!(
            store.create(key, value).await,
            expected,
            "step {step}: create {key:?}"
        );
        if let Ok(kv) = expected {
            model.commit(key, Some(kv));
        }
    }

    async fn model_update(store: &MemoryStorage, model: &mut Model, rng: &mut Rng, step: usize) {
        let key = *rng.pick(KEYS);
        let value = random_value(rng);
        let live = model.latest().get(key).cloned();
        let expected_rev = match &live {
            Some(cur) if rng.percent(80) => cur.mod_revision,
            _ => rng.between(0, model.current() + 1),
        };
        let expected = match live {
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            Some(cur) if cur.mod_revision != expected_rev => Err(StorageError::Conflict {
                key: key.to_owned(),
                expected: expected_rev,
                actual: cur.mod_revision,
            }),
            Some(cur) => Ok(KeyValue {
                value: value.clone(),
                mod_revision: model.current() + 1,
                version: cur.version + 1,
                ..cur
            }),
        };
        let got = store.update(key, value, expected_rev).await;
        assert_eq!(
            got, expected,
            "step {step}: update {key:?} expecting revision {expected_rev}"
        );
        if let Ok(kv) = expected {
            model.commit(key, Some(kv));
        }
    }

    async fn model_delete(store: &MemoryStorage, model: &mut Model, rng: &mut Rng, step: usize) {
        let key = *rng.pick(KEYS);
        let live = model.latest().get(key).cloned();
        let expected_rev = match rng.below(10) {
            0..3 => None,
            3..8 => Some(live.as_ref().map_or(0, |cur| cur.mod_revision)),
            _ => Some(rng.between(0, model.current() + 1)),
        };
        let expected = match live {
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
            Some(cur) if expected_rev.is_some_and(|e| e != cur.mod_revision) => {
                Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected: expected_rev.expect("checked"),
                    actual: cur.mod_revision,
                })
            }
            Some(cur) => Ok(Deleted {
                prev: cur,
                revision: model.current() + 1,
            }),
        };
        let got = store.delete(key, expected_rev).await;
        assert_eq!(
            got, expected,
            "step {step}: delete {key:?} expecting {expected_rev:?}"
        );
        if expected.is_ok() {
            model.commit(key, None);
        }
    }

    async fn model_compact(store: &MemoryStorage, model: &mut Model, rng: &mut Rng, step: usize) {
        let revision = rng.between(model.compacted - 1, model.current() + 1);
        let expected = if revision > model.current() {
            Err(StorageError::FutureRevision {
                requested: revision,
                current: model.current(),
            })
        } else {
            model.compacted = model.compacted.max(revision);
            Ok(())
        };
        assert_eq!(
            store.compact(revision).await,
            expected,
            "step {step}: compact at {revision}"
        );
    }

    async fn model_get(store: &MemoryStorage, model: &Model, rng: &mut Rng, step: usize) {
        let key = *rng.pick(KEYS);
        let at = random_at(model, rng);
        let expected = model
            .resolve(at)
            .map(|r| (model.at(r).get(key).cloned(), r));
        assert_eq!(
            store.get(key, at).await,
            expected,
            "step {step}: get {key:?} at {at:?}"
        );
    }

    /// Lists, then follows the pages the way a paginating client does: same revision,
    /// starting just after the last key returned.
    async fn model_list(store: &MemoryStorage, model: &Model, rng: &mut Rng, step: usize) {
        let prefix = *rng.pick(PREFIXES);
        let at = random_at(model, rng);
        let limit = *rng.pick(&[None, Some(0), Some(1), Some(2), Some(3)]);
        let start = match rng.below(10) {
            0..2 => Some(format!("{prefix}{}", rng.pick(&["", "1", "2", "b", "~"]))),
            // Outside the contract (a start must begin with the prefix); pins down the
            // documented behaviour: a start before the prefix starts at the prefix.
            2 => Some(rng.pick(KEYS).to_string()),
            _ => None,
        };
        let mut opts = ListOptions {
            at,
            limit,
            start: start.clone(),
        };
        let revision = match model.resolve(at) {
            Ok(revision) => revision,
            Err(error) => {
                assert_eq!(
                    store.list(prefix, opts).await,
                    Err(error),
                    "step {step}: list {prefix:?} at {at:?}"
                );
                return;
            }
        };
        let mut all = Vec::new();
        for page in 0.. {
            assert!(
                page <= KEYS.len(),
                "step {step}: list {prefix:?} does not terminate"
            );
            let got = store
                .list(prefix, opts.clone())
                .await
                .expect("a readable list");
            assert_eq!(
                got,
                model.list(prefix, &opts, revision),
                "step {step}: list {prefix:?} page {page}, {opts:?}"
            );
            all.extend(got.items.iter().cloned());
            if got.remaining == 0 {
                break;
            }
            let last = &got
                .items
                .last()
                .expect("a page followed by more is not empty")
                .key;
            opts = ListOptions {
                at: Some(revision),
                limit,
                start: Some(format!("{last}\0")),
            };
        }
        let whole = ListOptions {
            at,
            limit: None,
            start,
        };
        assert_eq!(
            all,
            model.list(prefix, &whole, revision).items,
            "step {step}: pages of {prefix:?} add up"
        );
    }

    async fn model_watch(store: &MemoryStorage, model: &mut Model, rng: &mut Rng, step: usize) {
        let prefix = *rng.pick(PREFIXES);
        let after = rng.between(model.compacted - 2, model.current() + 1);
        let got = store.watch(prefix, after).await;
        let what = format!("step {step}: watch {prefix:?} after {after}");
        match (model.watch(prefix, after), got) {
            (Ok(events), Ok(stream)) => {
                let unread = events.into_iter().map(Ok).collect();
                model.watches.push(ModelWatch {
                    stream,
                    prefix: prefix.to_owned(),
                    unread,
                    cancelled: false,
                });
            }
            (Err(StorageError::TooLarge(_)), Err(StorageError::TooLarge(_))) => {}
            (Err(expected), Err(got)) => assert_eq!(got, expected, "{what}"),
            (expected, got) => panic!(
                "{what}: expected {expected:?}, got {:?}",
                got.map(|_| "a stream")
            ),
        }
    }

    async fn model_read_watch(model: &mut Model, rng: &mut Rng, step: usize) {
        if model.watches.is_empty() {
            return;
        }
        let idx = rng.below(model.watches.len());
        let watch = &mut model.watches[idx];
        for _ in 0..rng.below(watch.unread.len() + 1) {
            let expected = watch.unread.pop_front().expect("bounded by unread");
            assert_eq!(
                recv(&mut watch.stream).await,
                Some(expected),
                "step {step}: read watch {:?}",
                watch.prefix
            );
        }
    }

    // ---- Reads and compaction ----

    #[tokio::test]
    async fn compaction_keeps_latest_live_versions_and_forgets_deleted_keys() {
        let store = MemoryStorage::new(quiet(16));
        assert_eq!(
            store.current_revision().await,
            Ok(1),
            "an empty store is at revision 1"
        );
        store.create("a", "1".into()).await.unwrap(); // 2
        store.update("a", "2".into(), 2).await.unwrap(); // 3
        store.create("b", "1".into()).await.unwrap(); // 4
        store.delete("b", None).await.unwrap(); // 5
        store.create("c", "1".into()).await.unwrap(); // 6
        store.compact(5).await.unwrap();
        store.check_invariants();

        assert_eq!(
            store.get("a", Some(5)).await,
            Ok((Some(kv("a", "2", 2, 3, 2)), 5))
        );
        assert_eq!(store.get("b", Some(5)).await, Ok((None, 5)));
        assert_eq!(
            store.get("c", Some(5)).await,
            Ok((None, 5)),
            "not yet created at 5"
        );
        assert_eq!(
            store.get("a", Some(4)).await,
            Err(StorageError::Compacted {
                requested: 4,
                compacted: 5
            })
        );
        assert_eq!(
            store.get("a", Some(7)).await,
            Err(StorageError::FutureRevision {
                requested: 7,
                current: 6
            })
        );
        let listed = store
            .list(
                "",
                ListOptions {
                    at: Some(5),
                    ..ListOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            listed,
            ListResult {
                items: vec![kv("a", "2", 2, 3, 2)],
                revision: 5,
                remaining: 0
            }
        );
        assert_eq!(
            store.compact(3).await,
            Ok(()),
            "compacting below the compacted revision is a no-op"
        );
        assert_eq!(store.compacted_revision().await, Ok(5));
        assert_eq!(
            store.compact(7).await,
            Err(StorageError::FutureRevision {
                requested: 7,
                current: 6
            })
        );
    }

    // ---- Watch ----

    #[tokio::test]
    async fn watch_replays_history_then_streams_live_without_gap_or_duplicate() {
        let store = MemoryStorage::new(quiet(16));
        for i in 0..4 {
            store.create(&format!("k{i}"), "v".into()).await.unwrap(); // revisions 2..=5
        }
        let mut watch = store.watch("", 3).await.unwrap();
        store.create("k4", "v".into()).await.unwrap(); // 6
        store.create("k5", "v".into()).await.unwrap(); // 7
        for expected in 4..=7 {
            assert_eq!(recv_event(&mut watch).await.revision(), expected);
        }
        assert_idle(&mut watch).await;
    }

    /// Registration races with writers on other threads; the watcher must still see every
    /// revision after its starting point exactly once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_registered_during_writes_sees_every_revision_once() {
        const WRITES_PER_TASK: usize = 300;
        let store = MemoryStorage::new(quiet(10_000));
        let writers: Vec<_> = (0..2)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..WRITES_PER_TASK {
                        store
                            .create(&format!("k/{task}/{i}"), "v".into())
                            .await
                            .unwrap();
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let after = store.current_revision().await.unwrap();
        let mut watch = store.watch("k/", after).await.unwrap();
        for writer in writers {
            writer.await.unwrap();
        }
        let last = store.current_revision().await.unwrap();
        assert_eq!(last, 1 + 2 * WRITES_PER_TASK as Revision);
        for expected in after + 1..=last {
            assert_eq!(recv_event(&mut watch).await.revision(), expected);
        }
        assert_idle(&mut watch).await;
    }

    #[tokio::test]
    async fn delete_events_carry_the_last_live_value() {
        let store = MemoryStorage::new(quiet(16));
        let mut watch = store.watch("k", 1).await.unwrap();
        store.create("k", "1".into()).await.unwrap(); // 2
        store.update("k", "2".into(), 2).await.unwrap(); // 3
        store.delete("k", Some(3)).await.unwrap(); // 4
        store.create("k", "3".into()).await.unwrap(); // 5, a new generation
        let expected = [
            WatchEvent::Put {
                kv: kv("k", "1", 2, 2, 1),
                prev: None,
            },
            WatchEvent::Put {
                kv: kv("k", "2", 2, 3, 2),
                prev: Some(kv("k", "1", 2, 2, 1)),
            },
            WatchEvent::Delete {
                prev: kv("k", "2", 2, 3, 2),
                revision: 4,
            },
            WatchEvent::Put {
                kv: kv("k", "3", 5, 5, 1),
                prev: None,
            },
        ];
        for event in &expected {
            assert_eq!(&recv_event(&mut watch).await, event, "live");
        }
        let mut replayed = store.watch("k", 1).await.unwrap();
        for event in &expected {
            assert_eq!(&recv_event(&mut replayed).await, event, "replayed");
        }
    }

    #[tokio::test]
    async fn watch_sees_only_keys_under_its_prefix() {
        let store = MemoryStorage::new(quiet(16));
        let mut watch = store.watch("/a/", 1).await.unwrap();
        store.create("/a", "v".into()).await.unwrap();
        store.create("/a/1", "v".into()).await.unwrap(); // 3
        store.create("/ab", "v".into()).await.unwrap();
        store.create("/b/1", "v".into()).await.unwrap();
        store.create("/a/2", "v".into()).await.unwrap(); // 6
        assert_eq!(recv_event(&mut watch).await.revision(), 3);
        assert_eq!(recv_event(&mut watch).await.revision(), 6);
        assert_idle(&mut watch).await;
    }

    #[tokio::test]
    async fn watch_before_the_compacted_revision_fails() {
        let store = MemoryStorage::new(quiet(16));
        for i in 0..4 {
            store.create(&format!("k{i}"), "v".into()).await.unwrap(); // 2..=5
        }
        store.compact(3).await.unwrap();
        let err = store.watch("", 2).await.err();
        assert_eq!(
            err,
            Some(StorageError::Compacted {
                requested: 2,
                compacted: 3
            })
        );
        let err = store.watch("", 6).await.err();
        assert_eq!(
            err,
            Some(StorageError::FutureRevision {
                requested: 6,
                current: 5
            })
        );
        let mut watch = store.watch("", 3).await.unwrap();
        assert_eq!(recv_event(&mut watch).await.revision(), 4);
    }

    /// A replay longer than the backlog is refused like a compacted revision (HTTP 410,
    /// which makes a reflector relist), naming the oldest revision it could be served from.
    #[tokio::test]
    async fn replay_longer_than_the_backlog_fails_as_compacted() {
        let store = MemoryStorage::new(quiet(3));
        for i in 0..5 {
            store.create(&format!("a/{i}"), "v".into()).await.unwrap(); // 2, 4, 6, 8, 10
            store.create(&format!("b/{i}"), "v".into()).await.unwrap(); // 3, 5, 7, 9, 11
        }
        let err = store.watch("a/", 1).await.err();
        assert_eq!(
            err,
            Some(StorageError::Compacted {
                requested: 1,
                compacted: 4
            })
        );
        let mut watch = store.watch("a/", 4).await.unwrap();
        for expected in [6, 8, 10] {
            assert_eq!(recv_event(&mut watch).await.revision(), expected);
        }
        assert_idle(&mut watch).await;
    }

    #[tokio::test]
    async fn slow_watcher_is_cancelled_while_writes_succeed() {
        let store = MemoryStorage::new(quiet(4));
        let mut slow = store.watch("k/", 1).await.unwrap();
        let mut elsewhere = store.watch("other/", 1).await.unwrap();
        for i in 0..10 {
            store
                .create(&format!("k/{i}"), "v".into())
                .await
                .expect("writers never wait for watchers");
        }
        for expected in 2..=5 {
            assert_eq!(recv_event(&mut slow).await.revision(), expected);
        }
        assert_eq!(
            recv(&mut slow).await,
            Some(Err(StorageError::WatcherTooSlow))
        );
        assert_eq!(recv(&mut slow).await, None);
        assert_eq!(
            store.watcher_count(),
            Ok(1),
            "only the cancelled watcher is gone"
        );
        store.create("other/x", "v".into()).await.unwrap();
        assert_eq!(recv_event(&mut elsewhere).await.revision(), 12);
    }

    #[tokio::test]
    async fn progress_is_ordered_after_data_and_skipped_when_the_backlog_is_full() {
        let store = MemoryStorage::new(quiet(3));
        let mut watch = store.watch("", 1).await.unwrap();
        store.create("a", "v".into()).await.unwrap(); // 2
        store.create("b", "v".into()).await.unwrap(); // 3
        store.request_progress().unwrap(); // fills the backlog
        store.request_progress().unwrap(); // skipped: no room
        store.create("c", "v".into()).await.unwrap(); // 4: cancels the watcher
        assert_eq!(recv_event(&mut watch).await.revision(), 2);
        assert_eq!(recv_event(&mut watch).await.revision(), 3);
        assert_eq!(
            recv_event(&mut watch).await,
            WatchEvent::Progress { revision: 3 }
        );
        assert_eq!(
            recv(&mut watch).await,
            Some(Err(StorageError::WatcherTooSlow))
        );
        assert_eq!(recv(&mut watch).await, None);
    }

    /// Uses the real ticker, with a short interval and real time (the crate's tokio has no
    /// `test-util`, so time cannot be paused); it asserts order, never durations.
    #[tokio::test]
    async fn ticker_sends_progress_after_earlier_events() {
        let config = MemoryStorageConfig {
            progress_interval: Duration::from_millis(5),
            ..quiet(16)
        };
        let store = MemoryStorage::new(config);
        store.create("a", "v".into()).await.unwrap(); // 2
        store.create("b", "v".into()).await.unwrap(); // 3
        // No await point since `new`, so on this single-threaded runtime the ticker has
        // not run yet: the replay comes first.
        let mut watch = store.watch("", 1).await.unwrap();
        assert_eq!(recv_event(&mut watch).await.revision(), 2);
        assert_eq!(recv_event(&mut watch).await.revision(), 3);
        assert_eq!(
            recv_event(&mut watch).await,
            WatchEvent::Progress { revision: 3 }
        );
        store.create("c", "v".into()).await.unwrap(); // 4
        let mut next = recv_event(&mut watch).await;
        while next == (WatchEvent::Progress { revision: 3 }) {
            next = recv_event(&mut watch).await;
        }
        assert_eq!(
            next.revision(),
            4,
            "the write comes before any later progress"
        );
        assert!(matches!(next, WatchEvent::Put { .. }));
        assert_eq!(
            recv_event(&mut watch).await,
            WatchEvent::Progress { revision: 4 }
        );
    }

    #[tokio::test]
    async fn dropping_a_watch_stream_prunes_the_watcher_on_the_next_write() {
        let store = MemoryStorage::new(quiet(16));
        let watch = store.watch("k/", 1).await.unwrap();
        assert_eq!(store.watcher_count(), Ok(1));
        drop(watch);
        assert_eq!(store.watcher_count(), Ok(1), "pruned lazily");
        store.create("unrelated", "v".into()).await.unwrap();
        assert_eq!(store.watcher_count(), Ok(0));
    }

    #[tokio::test]
    async fn watcher_limit_counts_only_open_streams() {
        let store = MemoryStorage::new(MemoryStorageConfig {
            max_watchers: 2,
            ..quiet(16)
        });
        let first = store.watch("", 1).await.unwrap();
        let _second = store.watch("", 1).await.unwrap();
        assert!(matches!(
            store.watch("", 1).await.err(),
            Some(StorageError::TooLarge(_))
        ));
        drop(first);
        assert!(
            store.watch("", 1).await.is_ok(),
            "a dropped stream frees its place"
        );
    }

    #[tokio::test]
    async fn dropping_the_store_ends_streams_and_the_ticker() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let tasks_before = metrics.num_alive_tasks();
        let config = MemoryStorageConfig {
            progress_interval: Duration::from_millis(1),
            ..quiet(16)
        };
        let store = MemoryStorage::new(config);
        assert_eq!(
            metrics.num_alive_tasks(),
            tasks_before + 1,
            "the ticker runs"
        );
        let mut watch = store.watch("", 1).await.unwrap();
        assert_eq!(
            recv_event(&mut watch).await,
            WatchEvent::Progress { revision: 1 }
        );
        drop(store);
        loop {
            match recv(&mut watch).await {
                Some(Ok(WatchEvent::Progress { .. })) => continue, // sent before the drop
                other => {
                    assert_eq!(other, None, "the stream ends with the store");
                    break;
                }
            }
        }
        tokio::time::timeout(HANG_GUARD, async {
            while metrics.num_alive_tasks() > tasks_before {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the ticker ends once the store is dropped");
    }

    #[test]
    fn new_outside_a_runtime_works_without_a_ticker() {
        let store = MemoryStorage::new(MemoryStorageConfig::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            store.create("k", "v".into()).await.unwrap();
            assert_eq!(
                store.get("k", None).await,
                Ok((Some(kv("k", "v", 2, 2, 1)), 2))
            );
        });
        assert_eq!(
            runtime.metrics().num_alive_tasks(),
            0,
            "no ticker was spawned"
        );
    }
}
