//! The watch hub: fans each durable revision out to every matching watcher, without
//! ever blocking the writer, and replays retained history to watchers that start in
//! the past or fall behind.
//!
//! The model is etcd's synced/unsynced watcher groups:
//!
//! - A **synced** watcher gets each new revision from [`WatchHub::publish`] (the engine's
//!   commit hook) pushed onto its queue. The queue is bounded by
//!   [`WATCHER_QUEUE_MESSAGES_MAX`]; a watcher whose queue is full when a revision comes
//!   is not waited for: it is moved to catch-up at that revision (or cancelled, per
//!   [`SlowWatcherPolicy`]).
//! - A watcher in **catch-up** reads its missed revisions back from the store's history
//!   ([`History`]) itself, in chunks of at most [`CATCHUP_EVENTS_MAX`] events (whole
//!   revisions; a single larger revision comes whole), each time its queue runs dry,
//!   so a slow consumer pays for its own catch-up. The engine serves such reads from
//!   the newest revisions it keeps in memory ([`crate::recent`]) when they cover them,
//!   so a watcher a little behind reads only what it missed. Once it has read
//!   up to the newest published revision it rejoins the synced group under the hub lock,
//!   so no revision is missed or delivered twice. History that was compacted away
//!   cancels the watcher with the compacted revision (etcd's `ErrCompacted`).
//!
//! A published revision visits the range watchers and, through an index by key, only
//! the single-key watchers of the keys it changes (etcd's `keyWatchers`), so watchers
//! of other keys cost it nothing.
//!
//! Encode once: each event of a published revision is wrapped once in a
//! [`SharedEvent`] that every matching watcher's queue shares; its protobuf encoding
//! (`mvccpb.Event`, with or without `prev_kv`) is computed at most once, by whichever
//! sender needs it first, and shared as [`bytes::Bytes`].
//!
//! Lock order: hub state, then a watcher's state. The commit hook takes both; neither is
//! held across IO or an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use prost::Message as _;
use tokio::sync::Notify;

use crate::engine::Engine;
use crate::error::{Error, RequestError};
use crate::index::KeySpan;
use crate::logfile::LogDir;
use crate::mvcc::{HistoryChunk, check_span};
use crate::proto::mvccpb;
use crate::types::{CommittedBatch, Event, EventKind, KeyValue};

/// Bound on the messages (one per revision, or one catch-up chunk, or one progress
/// notification) queued for one watcher. Events are shared, so a queue costs pointers.
pub const WATCHER_QUEUE_MESSAGES_MAX: usize = 1024;
/// Events read from history per catch-up step (a step ends on a whole revision). The
/// read keeps at most this many events (plus one revision's) in memory, however much
/// history it scans.
pub const CATCHUP_EVENTS_MAX: usize = 1024;
/// Bound on the watchers of one hub.
pub const MAX_WATCHERS: usize = 1 << 16;

const _: () = assert!(WATCHER_QUEUE_MESSAGES_MAX >= 2);
const _: () = assert!(CATCHUP_EVENTS_MAX >= 1);

/// Where a watcher in catch-up reads missed revisions from: the store's retained
/// history. [`Engine`] implements it.
pub trait History: Send + Sync {
    /// The changes in `key..range_end` with revisions in `[from, to]`, in revision
    /// order, as many whole revisions as fit in `max_events` (see
    /// [`crate::Mvcc::history`]). Errors: [`RequestError::Compacted`] when `from` is
    /// below the compacted revision.
    fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        to: i64,
        max_events: usize,
    ) -> Result<HistoryChunk, Error>;
}

impl<D: LogDir + Clone + Send + Sync> History for Engine<D> {
    fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        to: i64,
        max_events: usize,
    ) -> Result<HistoryChunk, Error> {
        Engine::history(self, key, range_end, from, to, max_events)
    }
}

/// What happens to a synced watcher whose queue is full when a revision comes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlowWatcherPolicy {
    /// Stop pushing to it; it replays the missed revisions from history once it has
    /// drained its queue (etcd's unsynced group).
    #[default]
    CatchUp,
    /// Cancel it; the client must re-watch (what Kubernetes' watch cache does).
    Cancel,
}

#[derive(Clone, Debug, Default)]
pub struct HubConfig {
    pub slow_watcher: SlowWatcherPolicy,
}

/// What to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    /// As [`crate::RangeRequest::range_end`]: empty is `key` alone, `[0]` every key
    /// from `key` on.
    pub range_end: Vec<u8>,
    /// First revision to deliver; 0 starts after the newest published revision.
    /// Revisions still retained are replayed; older ones cancel the watcher with the
    /// compacted revision; a future one waits for it.
    pub start_revision: i64,
    /// Drop put events (etcd's `NOPUT` filter).
    pub no_put: bool,
    /// Drop delete events (etcd's `NODELETE` filter).
    pub no_delete: bool,
}

/// Why a watch could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("too many watchers (limit {limit})")]
    TooManyWatchers { limit: usize },
}

/// One event, shared by every watcher it matches; encoded at most once per form.
#[derive(Debug)]
pub struct SharedEvent {
    pub event: Event,
    encoded: OnceLock<bytes::Bytes>,
    encoded_with_prev: OnceLock<bytes::Bytes>,
}

impl SharedEvent {
    pub fn new(event: Event) -> Arc<SharedEvent> {
        Arc::new(SharedEvent {
            event,
            encoded: OnceLock::new(),
            encoded_with_prev: OnceLock::new(),
        })
    }

    /// The event as an encoded `mvccpb.Event`, computed once per form and shared.
    pub fn encoded(&self, with_prev_kv: bool) -> bytes::Bytes {
        let cell = if with_prev_kv {
            &self.encoded_with_prev
        } else {
            &self.encoded
        };
        cell.get_or_init(|| encode_event(&self.event, with_prev_kv))
            .clone()
    }

    /// Whether the encoding of this form was already computed (for tests and stats).
    pub fn is_encoded(&self, with_prev_kv: bool) -> bool {
        if with_prev_kv {
            self.encoded_with_prev.get().is_some()
        } else {
            self.encoded.get().is_some()
        }
    }
}

/// The wire form of one key-value.
pub fn kv_to_proto(kv: &KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key.to_vec(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.to_vec(),
        lease: kv.lease,
    }
}

fn encode_event(ev: &Event, with_prev_kv: bool) -> bytes::Bytes {
    let typ = match ev.kind {
        EventKind::Put => mvccpb::event::EventType::Put,
        EventKind::Delete => mvccpb::event::EventType::Delete,
    };
    let msg = mvccpb::Event {
        r#type: typ as i32,
        kv: Some(kv_to_proto(&ev.kv)),
        prev_kv: ev
            .prev_kv
            .as_ref()
            .filter(|_| with_prev_kv)
            .map(kv_to_proto),
    };
    bytes::Bytes::from(msg.encode_to_vec())
}

/// What a watcher receives.
#[derive(Clone, Debug)]
pub enum WatchMessage {
    /// Changes of one revision (live) or of several (catch-up), in order. `revision` is
    /// the newest revision they cover.
    Events {
        revision: i64,
        events: Vec<Arc<SharedEvent>>,
    },
    /// Every change up to `revision` has been delivered.
    Progress { revision: i64 },
    /// The watcher is over; nothing follows. `compact_revision` is non-zero when the
    /// revisions it needed were compacted.
    Canceled {
        compact_revision: i64,
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Synced,
    CatchUp { next_revision: i64 },
    Closed,
}

struct WatcherState {
    queue: VecDeque<WatchMessage>,
    mode: Mode,
}

struct WatcherShared {
    spec: WatchSpec,
    state: Mutex<WatcherState>,
    notify: Notify,
}

impl WatcherShared {
    fn wants(&self, ev: &Event) -> bool {
        let kind_ok = match ev.kind {
            EventKind::Put => !self.spec.no_put,
            EventKind::Delete => !self.spec.no_delete,
        };
        kind_ok && KeySpan::new(&self.spec.key, &self.spec.range_end).contains(&ev.kv.key)
    }
}

struct HubState {
    /// Newest revision published to the synced group.
    last_revision: i64,
    next_id: u64,
    /// Every watcher, of one key or of a range.
    watchers: BTreeMap<u64, Arc<WatcherShared>>,
    /// The watchers of one key, by key: a revision visits only those of the keys it
    /// changes (etcd's `keyWatchers`), however many watch other keys.
    by_key: HashMap<Vec<u8>, Vec<(u64, Arc<WatcherShared>)>>,
    /// The watchers of a range (a prefix, or from a key on): every revision visits each.
    ranges: BTreeMap<u64, Arc<WatcherShared>>,
}

/// Counters for tests, benchmarks and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    pub n_watchers: usize,
    /// Synced watchers moved to catch-up because their queue was full.
    pub n_slow: u64,
    /// Catch-up chunks read from history.
    pub n_catchup_reads: u64,
    /// Watchers cancelled because the history they needed was compacted.
    pub n_compacted: u64,
    /// Watchers visited by [`WatchHub::publish`]: the range watchers plus those of the
    /// keys each revision changes.
    pub n_visits: u64,
}

/// The hub. Feed it with [`WatchHub::publish`] (see [`WatchHub::attach`]).
pub struct WatchHub {
    state: Mutex<HubState>,
    history: Arc<dyn History>,
    config: HubConfig,
    n_slow: AtomicU64,
    n_catchup_reads: AtomicU64,
    n_compacted: AtomicU64,
    n_visits: AtomicU64,
}

impl WatchHub {
    /// A hub whose newest published revision is `current_revision`.
    pub fn new(history: Arc<dyn History>, current_revision: i64, config: HubConfig) -> Arc<Self> {
        Arc::new(WatchHub {
            state: Mutex::new(HubState {
                last_revision: current_revision,
                next_id: 1,
                watchers: BTreeMap::new(),
                by_key: HashMap::new(),
                ranges: BTreeMap::new(),
            }),
            history,
            config,
            n_slow: AtomicU64::new(0),
            n_catchup_reads: AtomicU64::new(0),
            n_compacted: AtomicU64::new(0),
            n_visits: AtomicU64::new(0),
        })
    }

    /// A hub fed by `engine`'s commit hook. The hook holds the hub weakly.
    pub fn attach<D>(engine: &Arc<Engine<D>>, config: HubConfig) -> Arc<Self>
    where
        D: LogDir + Clone + Send + Sync + 'static,
    {
        let history: Arc<dyn History> = engine.clone();
        // Subscribe first, then read the revision: a revision committed in between is
        // published to a hub that already counts it, which `publish` skips.
        let hub = WatchHub::new(history, 0, config);
        let weak: Weak<WatchHub> = Arc::downgrade(&hub);
        engine.subscribe(Box::new(move |batch| {
            if let Some(hub) = weak.upgrade() {
                hub.publish(batch);
            }
        }));
        {
            let mut st = hub.state.lock().unwrap();
            st.last_revision = st.last_revision.max(engine.current_revision());
        }
        hub
    }

    /// Newest revision published.
    pub fn current_revision(&self) -> i64 {
        self.state.lock().unwrap().last_revision
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            n_watchers: self.state.lock().unwrap().watchers.len(),
            n_slow: self.n_slow.load(Ordering::Relaxed),
            n_catchup_reads: self.n_catchup_reads.load(Ordering::Relaxed),
            n_compacted: self.n_compacted.load(Ordering::Relaxed),
            n_visits: self.n_visits.load(Ordering::Relaxed),
        }
    }

    /// Delivers one durable revision to the synced watchers. Never waits for a watcher.
    /// Revisions must come in order; one not newer than the last is ignored.
    pub fn publish(&self, batch: &CommittedBatch) {
        let mut st = self.state.lock().unwrap();
        if batch.revision <= st.last_revision {
            return;
        }
        st.last_revision = batch.revision;
        if st.watchers.is_empty() {
            return;
        }
        let shared: Vec<Arc<SharedEvent>> =
            batch.events.iter().cloned().map(SharedEvent::new).collect();
        let mut n_visits = 0;
        for w in st.ranges.values() {
            self.offer(w, batch.revision, &shared);
            n_visits += 1;
        }
        if !st.by_key.is_empty() {
            // A revision changes a key once, so no watcher is visited twice.
            for e in &batch.events {
                for (_, w) in st.by_key.get(&e.kv.key[..]).into_iter().flatten() {
                    self.offer(w, batch.revision, &shared);
                    n_visits += 1;
                }
            }
        }
        self.n_visits.fetch_add(n_visits, Ordering::Relaxed);
    }

    /// Queues the events of `revision` that `w` wants, if it is synced; moves it to
    /// catch-up (or cancels it) instead if its queue is full.
    fn offer(&self, w: &WatcherShared, revision: i64, shared: &[Arc<SharedEvent>]) {
        let mut ws = w.state.lock().unwrap();
        // A start revision in the future: nothing until it comes.
        if ws.mode != Mode::Synced || revision < w.spec.start_revision {
            return;
        }
        let events: Vec<_> = shared
            .iter()
            .filter(|e| w.wants(&e.event))
            .cloned()
            .collect();
        if events.is_empty() {
            return;
        }
        if ws.queue.len() >= WATCHER_QUEUE_MESSAGES_MAX {
            self.n_slow.fetch_add(1, Ordering::Relaxed);
            match self.config.slow_watcher {
                SlowWatcherPolicy::CatchUp => {
                    ws.mode = Mode::CatchUp {
                        next_revision: revision,
                    }
                }
                SlowWatcherPolicy::Cancel => {
                    // One message past the bound, and the last one.
                    ws.mode = Mode::Closed;
                    ws.queue.push_back(WatchMessage::Canceled {
                        compact_revision: 0,
                        reason: "watcher fell behind".into(),
                    });
                }
            }
        } else {
            ws.queue
                .push_back(WatchMessage::Events { revision, events });
        }
        w.notify.notify_one();
    }

    /// Starts a watcher. A start revision at or before the newest published one
    /// replays history first (or cancels with the compacted revision).
    pub fn watch(self: &Arc<Self>, spec: WatchSpec) -> Result<Watcher, WatchError> {
        check_span(&spec.key, &spec.range_end)?;
        let mut st = self.state.lock().unwrap();
        if st.watchers.len() >= MAX_WATCHERS {
            return Err(WatchError::TooManyWatchers {
                limit: MAX_WATCHERS,
            });
        }
        let mode = if spec.start_revision > 0 && spec.start_revision <= st.last_revision {
            Mode::CatchUp {
                next_revision: spec.start_revision,
            }
        } else {
            Mode::Synced
        };
        let id = st.next_id;
        st.next_id += 1;
        let shared = Arc::new(WatcherShared {
            spec,
            state: Mutex::new(WatcherState {
                queue: VecDeque::new(),
                mode,
            }),
            notify: Notify::new(),
        });
        st.watchers.insert(id, shared.clone());
        if shared.spec.range_end.is_empty() {
            let key = shared.spec.key.clone();
            st.by_key.entry(key).or_default().push((id, shared.clone()));
        } else {
            st.ranges.insert(id, shared.clone());
        }
        Ok(Watcher {
            id,
            shared,
            hub: self.clone(),
        })
    }

    fn remove(&self, id: u64) {
        let mut st = self.state.lock().unwrap();
        let Some(w) = st.watchers.remove(&id) else {
            return;
        };
        if st.ranges.remove(&id).is_none()
            && let Some(of_key) = st.by_key.get_mut(&w.spec.key[..])
        {
            of_key.retain(|(i, _)| *i != id);
            if of_key.is_empty() {
                st.by_key.remove(&w.spec.key[..]);
            }
        }
    }

    /// One catch-up step for `w` from `next_revision`: rejoin the synced group if
    /// nothing is missing, else read one chunk of history into its queue.
    fn catch_up(&self, w: &WatcherShared, next_revision: i64) {
        let to = {
            let st = self.state.lock().unwrap();
            if next_revision > st.last_revision {
                let mut ws = w.state.lock().unwrap();
                if ws.mode == (Mode::CatchUp { next_revision }) {
                    ws.mode = Mode::Synced;
                }
                return;
            }
            st.last_revision
        };
        self.n_catchup_reads.fetch_add(1, Ordering::Relaxed);
        let read = self.history.history(
            &w.spec.key,
            &w.spec.range_end,
            next_revision,
            to,
            CATCHUP_EVENTS_MAX,
        );
        let mut ws = w.state.lock().unwrap();
        if ws.mode != (Mode::CatchUp { next_revision }) {
            return;
        }
        match read {
            Ok(chunk) => {
                assert!(
                    chunk.last_revision >= next_revision,
                    "history chunk ends at {} before {next_revision}",
                    chunk.last_revision
                );
                let events: Vec<_> = chunk
                    .events
                    .into_iter()
                    .filter(|e| w.wants(e))
                    .map(SharedEvent::new)
                    .collect();
                if !events.is_empty() {
                    ws.queue.push_back(WatchMessage::Events {
                        revision: chunk.last_revision,
                        events,
                    });
                }
                ws.mode = Mode::CatchUp {
                    next_revision: chunk.last_revision + 1,
                };
            }
            Err(e) => {
                let compact_revision = match e.as_request() {
                    Some(RequestError::Compacted { compacted, .. }) => *compacted,
                    _ => 0,
                };
                if compact_revision != 0 {
                    self.n_compacted.fetch_add(1, Ordering::Relaxed);
                }
                ws.mode = Mode::Closed;
                ws.queue.push_back(WatchMessage::Canceled {
                    compact_revision,
                    reason: e.to_string(),
                });
            }
        }
    }
}

/// A handle that can ask a watcher for a progress notification from another task.
#[derive(Clone)]
pub struct ProgressHandle {
    shared: Arc<WatcherShared>,
    hub: Weak<WatchHub>,
}

impl ProgressHandle {
    /// Queues a [`WatchMessage::Progress`] at the newest published revision if the
    /// watcher is synced (everything up to it is queued already) and its queue has
    /// room. Returns whether it did.
    pub fn request_progress(&self) -> bool {
        let Some(hub) = self.hub.upgrade() else {
            return false;
        };
        let st = hub.state.lock().unwrap();
        let mut ws = self.shared.state.lock().unwrap();
        if ws.mode != Mode::Synced || ws.queue.len() >= WATCHER_QUEUE_MESSAGES_MAX {
            return false;
        }
        ws.queue.push_back(WatchMessage::Progress {
            revision: st.last_revision,
        });
        self.shared.notify.notify_one();
        true
    }
}

/// One watcher. Dropping it removes it from the hub.
pub struct Watcher {
    id: u64,
    shared: Arc<WatcherShared>,
    hub: Arc<WatchHub>,
}

impl Watcher {
    /// Hub-wide id.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn spec(&self) -> &WatchSpec {
        &self.shared.spec
    }

    pub fn progress_handle(&self) -> ProgressHandle {
        ProgressHandle {
            shared: self.shared.clone(),
            hub: Arc::downgrade(&self.hub),
        }
    }

    /// The next message; `None` after a [`WatchMessage::Canceled`] was received.
    /// Catch-up reads history on the caller's task (a bounded, in-memory read).
    pub async fn recv(&mut self) -> Option<WatchMessage> {
        loop {
            match self.poll_once() {
                Step::Message(m) => return Some(m),
                Step::Closed => return None,
                Step::CatchUp(next) => self.hub.catch_up(&self.shared, next),
                // A notify_one before we wait leaves a permit: no lost wake-up.
                Step::Wait => self.shared.notify.notified().await,
            }
        }
    }

    /// The next message if one is ready (catching up from history if needed), without
    /// waiting for new revisions.
    pub fn try_recv(&mut self) -> Option<WatchMessage> {
        loop {
            match self.poll_once() {
                Step::Message(m) => return Some(m),
                Step::Closed | Step::Wait => return None,
                Step::CatchUp(next) => self.hub.catch_up(&self.shared, next),
            }
        }
    }

    fn poll_once(&self) -> Step {
        let mut ws = self.shared.state.lock().unwrap();
        if let Some(m) = ws.queue.pop_front() {
            return Step::Message(m);
        }
        match ws.mode {
            Mode::Closed => Step::Closed,
            Mode::Synced => Step::Wait,
            Mode::CatchUp { next_revision } => Step::CatchUp(next_revision),
        }
    }

    /// Messages queued now (for tests).
    pub fn queued(&self) -> usize {
        self.shared.state.lock().unwrap().queue.len()
    }
}

enum Step {
    Message(WatchMessage),
    Closed,
    CatchUp(i64),
    Wait,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, MemDir, PutRequest, RequestOp, TxnRequest};

    fn engine() -> Arc<Engine<MemDir>> {
        Arc::new(Engine::open(MemDir::new(), EngineConfig::default()).unwrap())
    }

    fn put(e: &Engine<MemDir>, k: &str, v: &str) -> i64 {
        e.put(PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        })
        .unwrap()
        .header_revision
    }

    fn prefix(p: &str, start_revision: i64) -> WatchSpec {
        let mut end = p.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1;
        WatchSpec {
            key: p.into(),
            range_end: end,
            start_revision,
            ..Default::default()
        }
    }

    /// Drains everything ready: (revision, key, kind) of each event, and whatever ended it.
    fn drain(w: &mut Watcher) -> (Vec<(i64, String, EventKind)>, Option<WatchMessage>) {
        let mut seen = Vec::new();
        while let Some(m) = w.try_recv() {
            match m {
                WatchMessage::Events { events, .. } => seen.extend(events.iter().map(|e| {
                    let kv = &e.event.kv;
                    let key = String::from_utf8(kv.key.to_vec()).unwrap();
                    (kv.mod_revision, key, e.event.kind)
                })),
                other => return (seen, Some(other)),
            }
        }
        (seen, None)
    }

    /// Encode once: every watcher of a revision shares each event and its encoding.
    #[test]
    fn fan_out_shares_one_event_and_one_encoding() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let mut ws: Vec<_> = (0..5)
            .map(|_| hub.watch(prefix("/a/", 0)).unwrap())
            .collect();
        let mut other = hub.watch(prefix("/b/", 0)).unwrap();
        let rev = put(&e, "/a/1", "x");
        let mut got = Vec::new();
        for w in &mut ws {
            match w.try_recv() {
                Some(WatchMessage::Events { revision, events }) => {
                    assert_eq!(revision, rev);
                    assert_eq!(events.len(), 1);
                    got.push(events[0].clone());
                }
                other => panic!("expected events, got {other:?}"),
            }
        }
        assert!(
            other.try_recv().is_none(),
            "no event outside the watched prefix"
        );
        assert!(
            got.iter().all(|ev| Arc::ptr_eq(ev, &got[0])),
            "one shared event"
        );
        assert!(
            !got[0].is_encoded(false),
            "nothing encoded before a sender needs it"
        );
        let first = got[0].encoded(false);
        let again = got[4].encoded(false);
        assert_eq!(first.as_ptr(), again.as_ptr(), "one encoding, shared");
        let decoded = mvccpb::Event::decode(first).unwrap();
        assert_eq!(decoded.kv.unwrap().value, b"x");
    }

    /// A start revision in the past replays retained history, then continues live,
    /// with every revision exactly once.
    #[test]
    fn watch_from_the_past_replays_then_goes_live() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let r1 = put(&e, "/a/1", "1");
        put(&e, "/b/1", "1");
        let r3 = put(&e, "/a/2", "2");
        let mut w = hub.watch(prefix("/a/", r1)).unwrap();
        let r4 = put(&e, "/a/1", "again");
        let (seen, end) = drain(&mut w);
        assert!(end.is_none());
        let want = vec![
            (r1, "/a/1".to_string(), EventKind::Put),
            (r3, "/a/2".to_string(), EventKind::Put),
            (r4, "/a/1".to_string(), EventKind::Put),
        ];
        assert_eq!(seen, want);
        let r5 = put(&e, "/a/3", "3");
        assert_eq!(
            drain(&mut w).0,
            vec![(r5, "/a/3".to_string(), EventKind::Put)]
        );
    }

    /// A watcher that does not read is never waited for: once its queue is full it is
    /// moved to catch-up, and when it reads again it gets every revision once, in order.
    #[test]
    fn slow_watcher_catches_up_from_history() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let start = e.current_revision() + 1;
        let mut slow = hub.watch(prefix("/k/", 0)).unwrap();
        let mut fast = hub.watch(prefix("/k/", 0)).unwrap();
        let n = WATCHER_QUEUE_MESSAGES_MAX + CATCHUP_EVENTS_MAX + 10;
        let mut n_fast = 0;
        for i in 0..n {
            put(&e, &format!("/k/{i:05}"), "v");
            n_fast += drain(&mut fast).0.len();
        }
        assert_eq!(n_fast, n, "the fast watcher saw every revision live");
        assert_eq!(
            slow.queued(),
            WATCHER_QUEUE_MESSAGES_MAX,
            "queue stays bounded"
        );
        assert_eq!(hub.stats().n_slow, 1);
        let (seen, end) = drain(&mut slow);
        assert!(end.is_none());
        let revs: Vec<i64> = seen.iter().map(|s| s.0).collect();
        let want: Vec<i64> = (start..start + n as i64).collect();
        assert_eq!(revs, want, "every revision once, in order");
        assert!(
            hub.stats().n_catchup_reads >= 2,
            "read back in bounded chunks"
        );
        // Back in the synced group: live events flow again.
        let r = put(&e, "/k/live", "v");
        assert_eq!(
            drain(&mut slow).0,
            vec![(r, "/k/live".to_string(), EventKind::Put)]
        );
    }

    #[test]
    fn slow_watcher_is_cancelled_under_the_cancel_policy() {
        let e = engine();
        let config = HubConfig {
            slow_watcher: SlowWatcherPolicy::Cancel,
        };
        let hub = WatchHub::attach(&e, config);
        let mut slow = hub.watch(prefix("/k/", 0)).unwrap();
        for i in 0..=WATCHER_QUEUE_MESSAGES_MAX {
            put(&e, &format!("/k/{i}"), "v");
        }
        let (seen, end) = drain(&mut slow);
        assert_eq!(seen.len(), WATCHER_QUEUE_MESSAGES_MAX);
        assert!(matches!(
            end,
            Some(WatchMessage::Canceled {
                compact_revision: 0,
                ..
            })
        ));
        assert!(slow.try_recv().is_none());
    }

    /// etcd: watching from a compacted revision cancels with the compacted revision;
    /// so does a slow watcher whose missed history was compacted meanwhile.
    #[test]
    fn compacted_history_cancels_with_the_compact_revision() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let mut slow = hub.watch(prefix("/k/", 0)).unwrap();
        for i in 0..WATCHER_QUEUE_MESSAGES_MAX + 5 {
            put(&e, &format!("/k/{i}"), "v");
        }
        let at = e.current_revision();
        e.compact(at).unwrap();
        let mut late = hub.watch(prefix("/k/", 2)).unwrap();
        let (_, end) = drain(&mut late);
        assert!(
            matches!(end, Some(WatchMessage::Canceled { compact_revision, .. }) if compact_revision == at)
        );
        let (seen, end) = drain(&mut slow);
        assert_eq!(
            seen.len(),
            WATCHER_QUEUE_MESSAGES_MAX,
            "the queued part still arrives"
        );
        assert!(
            matches!(end, Some(WatchMessage::Canceled { compact_revision, .. }) if compact_revision == at)
        );
        assert_eq!(hub.stats().n_compacted, 2);
        // At the compacted revision itself, watching is allowed.
        let mut ok = hub.watch(prefix("/k/", at)).unwrap();
        assert!(drain(&mut ok).1.is_none());
    }

    #[test]
    fn progress_filters_and_removal() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let mut w = hub
            .watch(WatchSpec {
                no_put: true,
                ..prefix("/k/", 0)
            })
            .unwrap();
        put(&e, "/k/a", "1");
        let r = e
            .delete_range(crate::DeleteRangeRequest {
                key: "/k/a".into(),
                ..Default::default()
            })
            .unwrap()
            .header_revision;
        assert_eq!(
            drain(&mut w).0,
            vec![(r, "/k/a".to_string(), EventKind::Delete)]
        );
        assert!(w.progress_handle().request_progress());
        assert!(matches!(w.try_recv(), Some(WatchMessage::Progress { revision }) if revision == r));
        assert_eq!(hub.stats().n_watchers, 1);
        drop(w);
        assert_eq!(hub.stats().n_watchers, 0);
        // A range end before the key is refused.
        let bad = WatchSpec {
            key: "b".into(),
            range_end: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            hub.watch(bad),
            Err(WatchError::Request(RequestError::RangeEndBeforeKey))
        ));
    }

    /// recv() waits for the next revision without polling (the writer's notify wakes it).
    #[tokio::test]
    async fn recv_waits_for_the_next_revision() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let mut w = hub.watch(prefix("/k/", 0)).unwrap();
        let writer = {
            let e = e.clone();
            tokio::task::spawn_blocking(move || put(&e, "/k/x", "1"))
        };
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), w.recv())
            .await
            .expect("an event within the bound");
        let rev = writer.await.unwrap();
        assert!(matches!(got, Some(WatchMessage::Events { revision, .. }) if revision == rev));
    }

    /// A revision visits the range watchers and the watchers of the keys it changes,
    /// not every watcher; each still gets exactly its events, and a cancelled one is
    /// gone from the index.
    #[test]
    fn a_revision_visits_only_the_watchers_of_its_keys_and_the_ranges() {
        let e = engine();
        let hub = WatchHub::attach(&e, HubConfig::default());
        let one = |k: &str| WatchSpec {
            key: k.into(),
            ..Default::default()
        };
        let mut keyed: Vec<Watcher> = (0..500)
            .map(|i| hub.watch(one(&format!("/k/{i:03}"))).unwrap())
            .collect();
        let mut twin = hub.watch(one("/k/007")).unwrap();
        let mut range = hub.watch(prefix("/k/", 0)).unwrap();
        let r = put(&e, "/k/007", "v");
        // The range watcher and the two watchers of /k/007.
        assert_eq!(hub.stats().n_visits, 3);
        for w in [&mut keyed[7], &mut twin, &mut range] {
            assert_eq!(drain(w).0, vec![(r, "/k/007".to_string(), EventKind::Put)]);
        }
        assert!(
            keyed.iter_mut().all(|w| drain(w).0.is_empty()),
            "no other key's"
        );
        // A txn changing three keys visits their watchers once each.
        let txn = TxnRequest {
            success: ["/k/001", "/k/002", "/other"]
                .into_iter()
                .map(|k| {
                    RequestOp::Put(PutRequest {
                        key: k.into(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        };
        e.txn(txn).unwrap();
        assert_eq!(hub.stats().n_visits, 3 + 3);
        assert_eq!(drain(&mut keyed[1]).0.len(), 1);
        assert_eq!(drain(&mut keyed[2]).0.len(), 1);
        assert_eq!(drain(&mut range).0.len(), 2, "the range's two keys");
        // Dropped watchers leave the index.
        drop(keyed);
        drop(twin);
        put(&e, "/k/007", "w");
        assert_eq!(hub.stats().n_visits, 3 + 3 + 1);
        assert_eq!(hub.stats().n_watchers, 1);
    }
}
