//! The engine: owns the log, the writer thread (group commit) and the checkpointer, and
//! serves reads. Synchronous and thread-safe; every write returns once durable.
//!
//! Group commit: callers queue writes (bounded); the writer takes up to
//! `batch_requests_max` of them, applies them to the [`Mvcc`] in queue order, appends
//! their records, fdatasyncs once, then publishes the new revision to readers, runs the
//! commit hooks and answers every caller. Readers see only durable revisions: the index
//! holds applied-but-unsynced entries, but reads are served at the committed revision.
//!
//! Two ways to submit a write, one queue: the blocking methods ([`Engine::txn`], ...)
//! wait on the queue and on their answer on the calling thread; the `_async` ones
//! ([`Engine::txn_async`], ...) are futures that wait for queue space and for the
//! answer without holding a thread, so a server can keep thousands of writes in flight
//! on a few tasks. Both are answered by the same group commit, after the same
//! fdatasync.
//!
//! Compaction: applying one refuses reads below its revision at once; the entries it
//! drops are dropped afterwards by the writer a few chunks of the index at a time
//! ([`SWEEP_CHUNKS_PER_STEP`]), between groups of writes and whenever none wait. A
//! physical compaction (etcd's `physical`) is answered when that sweep is done.
//!
//! Garbage collection: every value the store retains is in memory (the index), so the
//! log is read only at startup, and a record is dead once compaction (or a later write)
//! dropped its entry from the index. The engine counts the bytes on disk (segments and
//! the checkpoint) against the bytes the retained entries take written out
//! ([`Index::retained_bytes`](crate::index::Index::retained_bytes)); when the dead part
//! reaches [`EngineConfig::gc_min_dead_bytes`] and [`EngineConfig::gc_dead_ratio`] of
//! the total (typically right after a compaction's sweep), the writer rolls to a fresh segment
//! and hands a copy of the index to the background checkpointer, which writes the live
//! entries out once and then deletes every sealed segment, fully dead or mostly dead
//! alike. Writers pause only for the copy, which shares the index's chunks
//! copy-on-write (one handle per 256 keys: about 0.2 ms for 1M keys); readers do not
//! pause at all. A crash at any point leaves either the old checkpoint with all its
//! segments or the new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{Notify, oneshot};

use crate::checkpoint;
use crate::codec::{Record, encode_record, encode_revision};
use crate::error::{Error, RequestError, TailRepair};
use crate::index::KeySpan;
use crate::logfile::LogDir;
use crate::mvcc::{HistoryChunk, Mvcc, TxnLimits};
use crate::recent::{self, Recent};
use crate::types::*;
use crate::wal::{Replay, SEGMENT_BYTES_MAX_DEFAULT, Wal};

/// Bound on the hooks [`Engine::subscribe`] accepts.
pub const MAX_COMMIT_HOOKS: usize = 16;
/// The writer keeps its group buffer between groups (a fresh one per group cost a
/// realloc and fresh pages each time); beyond this capacity it gives the excess back.
pub const WRITER_BUFFER_RETAINED_BYTES_MAX: usize = 4 << 20;
/// Keys a history read ([`Engine::history`]) visits per hold of the index's read lock.
pub const HISTORY_KEYS_PER_STEP: usize = 1024;

/// Whether a write waits for fdatasync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Acknowledge a write only after fdatasync: the production mode.
    Fdatasync,
    /// FOR BENCHMARKS ONLY: acknowledge after the write reached the OS. A power cut
    /// loses acknowledged writes; a process crash does not.
    NoSyncBenchmarkOnly,
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub sync: SyncMode,
    /// The writer starts a new segment once the active one reaches this size.
    pub segment_bytes_max: u64,
    /// Bound on queued writes; callers block beyond it.
    pub queue_requests_max: usize,
    /// Bound on the writes that share one fdatasync.
    pub batch_requests_max: usize,
    /// Log bytes after which the engine checkpoints in the background; 0: only
    /// [`Engine::checkpoint`] (and garbage collection) do.
    pub checkpoint_after_bytes: u64,
    /// Garbage collection runs once this many bytes on disk are dead; 0 turns it off.
    pub gc_min_dead_bytes: u64,
    /// ... and once the dead bytes are at least this fraction of the bytes on disk.
    pub gc_dead_ratio: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sync: SyncMode::Fdatasync,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            queue_requests_max: 4096,
            batch_requests_max: 1024,
            checkpoint_after_bytes: 256 * 1024 * 1024,
            gc_min_dead_bytes: 64 * 1024 * 1024,
            gc_dead_ratio: 0.5,
        }
    }
}

/// Called on the writer thread with each durable revision, in revision order. Must not
/// block: it delays every writer.
pub type CommitHook = Box<dyn Fn(&CommittedBatch) + Send + Sync>;

/// Counters for benchmarks and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub n_writes: u64,
    pub n_groups: u64,
    pub n_syncs: u64,
    pub n_log_bytes: u64,
    pub n_checkpoints: u64,
    /// Checkpoints started by garbage collection (counted in `n_checkpoints` once
    /// written).
    pub n_gc_runs: u64,
    /// Async submissions that found the queue full and waited for space.
    pub n_queue_full_waits: u64,
    /// Ops waiting in the queue for the writer now.
    pub n_queued: u64,
    /// History reads (watch catch-up) served from the newest revisions in memory.
    pub n_history_reads_recent: u64,
    /// History reads that scanned the index (older than the revisions in memory).
    pub n_history_reads_scanned: u64,
    /// Bytes of the log segments and the checkpoint on disk.
    pub n_disk_bytes: u64,
    /// Bytes the retained entries take written out: what garbage collection keeps.
    pub n_retained_bytes: u64,
    pub last_checkpoint_error: Option<String>,
    /// The torn tail cut off when the log was opened, if any.
    pub repaired_tail: Option<TailRepair>,
}

/// Where the writer sends one op's answer: a blocked thread or an awaiting task.
enum Responder<T> {
    Blocking(SyncSender<Result<T, Error>>),
    Async(oneshot::Sender<Result<T, Error>>),
}

impl<T> Responder<T> {
    /// A caller that went away is not an error of the store: the answer is dropped.
    fn send(self, result: Result<T, Error>) {
        match self {
            Responder::Blocking(tx) => drop(tx.send(result)),
            Responder::Async(tx) => drop(tx.send(result)),
        }
    }
}

enum WriteOp {
    /// The txn, its limits, and the leases it may name that do not exist.
    Txn(TxnRequest, TxnLimits, Vec<i64>, Responder<TxnResponse>),
    /// The revision, and whether to answer only once the compacted entries are gone.
    Compact(i64, bool, Responder<i64>),
    Snapshot(Responder<(Mvcc, u64)>),
}

/// Chunks of the index (of up to 256 keys each) a compaction drops entries from per
/// step: the writer takes one step after each group of writes, and steps back to back
/// while no writes wait, so a compaction of millions of keys never stops writers for
/// more than a step: about 0.4 ms (p50; p99 0.7 ms) when every key drops an entry, where
/// compacting 1M such keys at once took 0.45-0.62 s.
pub const SWEEP_CHUNKS_PER_STEP: usize = 8;

#[derive(Default)]
struct Counters {
    n_writes: AtomicU64,
    n_groups: AtomicU64,
    n_syncs: AtomicU64,
    n_log_bytes: AtomicU64,
    n_checkpoints: AtomicU64,
    n_gc_runs: AtomicU64,
    n_queue_full_waits: AtomicU64,
    /// Ops in the queue: counted up before they are sent, down as the writer takes them.
    n_queued: AtomicI64,
    n_history_reads_recent: AtomicU64,
    n_history_reads_scanned: AtomicU64,
}

/// What the log occupies on disk, kept by the writer (appends, rolls) and the
/// checkpointer (removals).
#[derive(Debug, Default)]
struct DiskUsage {
    /// Each segment's size, by id.
    segments: BTreeMap<u64, u64>,
    checkpoint_bytes: u64,
    /// The first segment the newest checkpoint does not cover.
    checkpoint_first_segment: u64,
}

impl DiskUsage {
    fn total(&self) -> u64 {
        self.checkpoint_bytes + self.segments.values().sum::<u64>()
    }

    /// A checkpoint of `bytes` now covers every segment below `first_segment`.
    fn checkpointed(&mut self, first_segment: u64, bytes: u64) {
        assert!(first_segment >= self.checkpoint_first_segment);
        self.segments.retain(|&id, _| id >= first_segment);
        self.checkpoint_bytes = bytes;
        self.checkpoint_first_segment = first_segment;
    }
}

struct Shared {
    mvcc: RwLock<Mvcc>,
    /// Newest durable revision: what reads see.
    committed: AtomicI64,
    hooks: RwLock<Vec<CommitHook>>,
    poisoned: Mutex<Option<String>>,
    /// Serialises checkpoint writers (explicit and background).
    checkpoint_lock: Mutex<()>,
    last_checkpoint_error: Mutex<Option<String>>,
    /// The torn tail cut off when the log was opened.
    repaired_tail: Option<TailRepair>,
    /// A snapshot is queued for or being written by the checkpointer.
    checkpoint_pending: AtomicBool,
    disk: Mutex<DiskUsage>,
    /// The index's retained bytes as of the last group.
    retained_bytes: AtomicU64,
    /// Woken each time the writer takes a group off the queue: async submitters wait
    /// on it for queue space.
    queue_space: Notify,
    counters: Counters,
    /// The newest revisions' events, which history reads serve first.
    recent: Mutex<Recent>,
}

impl Shared {
    fn checkpoint_done(&self, first_segment: u64, bytes: u64) {
        self.disk.lock().unwrap().checkpointed(first_segment, bytes);
        // Release: pairs with `stats`, which reads this count first.
        self.counters.n_checkpoints.fetch_add(1, Ordering::Release);
    }
}

/// The store engine over a [`LogDir`].
pub struct Engine<D: LogDir + Clone> {
    shared: Arc<Shared>,
    dir: D,
    tx: Option<SyncSender<WriteOp>>,
    writer: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

struct ReplayInto<'a>(&'a mut Mvcc);

impl Replay for ReplayInto<'_> {
    fn replay(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::SegmentHeader(h) if h.base_revision == self.0.current_revision() => Ok(()),
            Record::SegmentHeader(h) => Err(format!(
                "segment starts at revision {}, log is at {}",
                h.base_revision,
                self.0.current_revision()
            )),
            Record::Revision(batch) => self.0.restore(&batch),
            Record::Compact(rev) => self.0.compact(rev).map_err(|e| e.to_string()),
        }
    }
    fn revision(&self) -> i64 {
        self.0.current_revision()
    }
}

impl<D: LogDir + Clone> Engine<D> {
    /// Opens (or creates) the store in `dir`: loads the newest checkpoint, replays the
    /// log after it, truncates a torn tail, and starts the writer.
    pub fn open(dir: D, config: EngineConfig) -> Result<Engine<D>, Error> {
        assert!(
            config.queue_requests_max > 0,
            "queue_requests_max must be positive"
        );
        assert!(
            config.batch_requests_max > 0,
            "batch_requests_max must be positive"
        );
        let loaded = checkpoint::load_latest(&dir)?;
        let (mut mvcc, first_segment, checkpoint_bytes) = match loaded {
            Some(l) => (l.mvcc, l.first_segment, l.bytes),
            None => (Mvcc::new(), 0, 0),
        };
        let wal = Wal::open(
            dir.clone(),
            config.segment_bytes_max,
            first_segment,
            &mut ReplayInto(&mut mvcc),
        )?;
        let disk = DiskUsage {
            segments: wal.opened_sizes().iter().copied().collect(),
            checkpoint_bytes,
            checkpoint_first_segment: first_segment,
        };
        let shared = Arc::new(Shared {
            committed: AtomicI64::new(mvcc.current_revision()),
            checkpoint_pending: AtomicBool::new(false),
            disk: Mutex::new(disk),
            retained_bytes: AtomicU64::new(mvcc.index().retained_bytes()),
            mvcc: RwLock::new(mvcc),
            hooks: RwLock::new(Vec::new()),
            poisoned: Mutex::new(None),
            checkpoint_lock: Mutex::new(()),
            last_checkpoint_error: Mutex::new(None),
            repaired_tail: wal.repaired_tail().cloned(),
            queue_space: Notify::new(),
            counters: Counters::default(),
            recent: Mutex::new(Recent::default()),
        });
        let (ckpt_tx, ckpt_rx) = sync_channel(1);
        let checkpointer = {
            let (shared, dir) = (shared.clone(), dir.clone());
            std::thread::Builder::new()
                .name("store-checkpoint".into())
                .spawn(move || checkpoint_loop(&shared, &dir, ckpt_rx))?
        };
        let (tx, rx) = sync_channel(config.queue_requests_max);
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || {
                    Writer {
                        shared,
                        wal,
                        config,
                        ckpt_tx,
                        bytes_since_checkpoint: 0,
                        buf: Vec::new(),
                        sweeping: false,
                        sweep_waiters: Vec::new(),
                    }
                    .run(rx)
                })?
        };
        Ok(Engine {
            shared,
            dir,
            tx: Some(tx),
            writer: Some(writer),
            checkpointer: Some(checkpointer),
        })
    }

    /// Newest durable revision.
    pub fn current_revision(&self) -> i64 {
        self.shared.committed.load(Ordering::Acquire)
    }

    pub fn compacted_revision(&self) -> i64 {
        self.shared.mvcc.read().unwrap().compacted_revision()
    }

    /// Reads at the newest durable revision, or at `req.revision`.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        let mvcc = self.shared.mvcc.read().unwrap();
        Ok(mvcc.range(req, self.current_revision())?)
    }

    pub fn put(&self, req: PutRequest) -> Result<PutResponse, Error> {
        match self.single(RequestOp::Put(req))? {
            ResponseOp::Put(r) => Ok(r),
            other => unreachable!("put answered {other:?}"),
        }
    }

    pub fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse, Error> {
        match self.single(RequestOp::DeleteRange(req))? {
            ResponseOp::DeleteRange(r) => Ok(r),
            other => unreachable!("delete answered {other:?}"),
        }
    }

    fn single(&self, op: RequestOp) -> Result<ResponseOp, Error> {
        let mut resp = self.txn(TxnRequest {
            success: vec![op],
            ..TxnRequest::default()
        })?;
        assert_eq!(resp.responses.len(), 1, "one op, one response");
        Ok(resp.responses.pop().expect("one response"))
    }

    /// Runs a transaction; returns once its writes (if any) are durable.
    pub fn txn(&self, req: TxnRequest) -> Result<TxnResponse, Error> {
        self.call(|reply| WriteOp::Txn(req, TxnLimits::Client, Vec::new(), reply))
    }

    /// A txn of the store's own (see [`TxnLimits::Internal`]): not held to the client
    /// request limits, only to [`MAX_CHANGES_PER_REVISION`].
    pub fn txn_internal(&self, req: TxnRequest) -> Result<TxnResponse, Error> {
        self.call(|reply| WriteOp::Txn(req, TxnLimits::Internal, Vec::new(), reply))
    }

    /// [`Engine::txn`] without a thread: resolves once the txn's writes (if any) are
    /// durable. Waits (asynchronously) while the queue is full. Dropping the future
    /// after the txn was queued does not withdraw it.
    pub async fn txn_async(&self, req: TxnRequest) -> Result<TxnResponse, Error> {
        self.txn_async_checked(req, Vec::new()).await
    }

    /// [`Engine::txn_async`], refused with [`RequestError::LeaseNotFound`] (and nothing
    /// changed) if the branch its compares choose puts with one of `unknown_leases`:
    /// the lessor names the leases the txn's puts give that do not exist, and only the
    /// branch taken decides (as etcd's).
    pub async fn txn_async_checked(
        &self,
        req: TxnRequest,
        unknown_leases: Vec<i64>,
    ) -> Result<TxnResponse, Error> {
        self.call_async(|reply| WriteOp::Txn(req, TxnLimits::Client, unknown_leases, reply))
            .await
    }

    /// [`Engine::txn_internal`] without a thread.
    pub async fn txn_internal_async(&self, req: TxnRequest) -> Result<TxnResponse, Error> {
        self.call_async(|reply| WriteOp::Txn(req, TxnLimits::Internal, Vec::new(), reply))
            .await
    }

    /// [`Engine::put`] without a thread.
    pub async fn put_async(&self, req: PutRequest) -> Result<PutResponse, Error> {
        match self.single_async(RequestOp::Put(req)).await? {
            ResponseOp::Put(r) => Ok(r),
            other => unreachable!("put answered {other:?}"),
        }
    }

    /// [`Engine::delete_range`] without a thread.
    pub async fn delete_range_async(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        match self.single_async(RequestOp::DeleteRange(req)).await? {
            ResponseOp::DeleteRange(r) => Ok(r),
            other => unreachable!("delete answered {other:?}"),
        }
    }

    async fn single_async(&self, op: RequestOp) -> Result<ResponseOp, Error> {
        let mut resp = self
            .txn_async(TxnRequest {
                success: vec![op],
                ..TxnRequest::default()
            })
            .await?;
        assert_eq!(resp.responses.len(), 1, "one op, one response");
        Ok(resp.responses.pop().expect("one response"))
    }

    /// Retained changes in `key..range_end` with revisions in `[from, to]` (clamped
    /// to the newest durable revision); see [`Mvcc::history`]. Read from the newest
    /// revisions kept in memory ([`crate::recent`]) when they cover `[from, to]`, from
    /// the index otherwise.
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        to: i64,
        max_events: usize,
    ) -> Result<HistoryChunk, Error> {
        let mut scan = {
            let mvcc = self.shared.mvcc.read().unwrap();
            let visible = self.current_revision();
            mvcc.history_scan(key, range_end, from, to, visible, max_events)?
        };
        let (from, to) = scan.revisions();
        // The lock is held to copy the revisions' handles, not to filter them.
        let window = self.shared.recent.lock().unwrap().window(from, to);
        if let Some(window) = window {
            let chunk = recent::select(&window, &KeySpan::new(key, range_end), to, max_events);
            self.shared
                .counters
                .n_history_reads_recent
                .fetch_add(1, Ordering::Relaxed);
            return Ok(chunk);
        }
        self.shared
            .counters
            .n_history_reads_scanned
            .fetch_add(1, Ordering::Relaxed);
        // The read lock is released between steps, so a long scan delays the writer
        // by one step at most.
        loop {
            let mvcc = self.shared.mvcc.read().unwrap();
            if mvcc.history_step(&mut scan, HISTORY_KEYS_PER_STEP)? {
                return Ok(scan.finish());
            }
        }
    }

    /// Compacts history before `revision`; returns the revision at the time, once the
    /// compaction is durable and every entry it drops is gone from memory (etcd's
    /// `physical`). Reads below `revision` are refused from the moment it is applied.
    pub fn compact(&self, revision: i64) -> Result<i64, Error> {
        self.call(|reply| WriteOp::Compact(revision, true, reply))
    }

    /// [`Engine::compact`] without a thread. Without `physical`, it returns once the
    /// compaction is durable, and the writer drops the compacted entries afterwards,
    /// [`SWEEP_CHUNKS_PER_STEP`] chunks of the index at a time, between groups of writes.
    pub async fn compact_async(&self, revision: i64, physical: bool) -> Result<i64, Error> {
        self.call_async(|reply| WriteOp::Compact(revision, physical, reply))
            .await
    }

    /// Writes a checkpoint of the current state and removes the segments it covers.
    /// Returns the first segment it does not cover. Writers pause only while the index
    /// is copied (one shared handle per chunk of 256 keys), not while it is written.
    pub fn checkpoint(&self) -> Result<u64, Error> {
        let (mvcc, first_segment) = self.call(WriteOp::Snapshot)?;
        write_checkpoint(&self.shared, &self.dir, &mvcc, first_segment)
    }

    /// Registers a hook called with every durable revision from now on.
    ///
    /// # Panics
    /// If more than [`MAX_COMMIT_HOOKS`] are registered.
    pub fn subscribe(&self, hook: CommitHook) {
        let mut hooks = self.shared.hooks.write().unwrap();
        assert!(
            hooks.len() < MAX_COMMIT_HOOKS,
            "at most {MAX_COMMIT_HOOKS} commit hooks"
        );
        hooks.push(hook);
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.shared.counters;
        EngineStats {
            n_writes: c.n_writes.load(Ordering::Relaxed),
            n_groups: c.n_groups.load(Ordering::Relaxed),
            n_syncs: c.n_syncs.load(Ordering::Relaxed),
            n_log_bytes: c.n_log_bytes.load(Ordering::Relaxed),
            // Acquire, and first: the GC run a counted checkpoint began with is seen.
            n_checkpoints: c.n_checkpoints.load(Ordering::Acquire),
            n_gc_runs: c.n_gc_runs.load(Ordering::Relaxed),
            n_queue_full_waits: c.n_queue_full_waits.load(Ordering::Relaxed),
            n_queued: c.n_queued.load(Ordering::Relaxed).max(0) as u64,
            n_history_reads_recent: c.n_history_reads_recent.load(Ordering::Relaxed),
            n_history_reads_scanned: c.n_history_reads_scanned.load(Ordering::Relaxed),
            n_disk_bytes: self.shared.disk.lock().unwrap().total(),
            n_retained_bytes: self.shared.retained_bytes.load(Ordering::Relaxed),
            last_checkpoint_error: self.shared.last_checkpoint_error.lock().unwrap().clone(),
            repaired_tail: self.shared.repaired_tail.clone(),
        }
    }

    /// Number of keys with retained history (live or not yet compacted).
    pub fn n_indexed_keys(&self) -> usize {
        self.shared.mvcc.read().unwrap().index().n_keys()
    }

    fn call<T>(&self, make: impl FnOnce(Responder<T>) -> WriteOp) -> Result<T, Error> {
        if let Some(reason) = self.shared.poisoned.lock().unwrap().clone() {
            return Err(Error::Poisoned(reason));
        }
        let (reply_tx, reply_rx) = sync_channel(1);
        let tx = self.tx.as_ref().ok_or(Error::Shutdown)?;
        let queued = &self.shared.counters.n_queued;
        queued.fetch_add(1, Ordering::Relaxed);
        tx.send(make(Responder::Blocking(reply_tx))).map_err(|_| {
            queued.fetch_sub(1, Ordering::Relaxed);
            Error::Shutdown
        })?;
        reply_rx
            .recv()
            .map_err(|_| Error::Poisoned("writer thread stopped".into()))?
    }

    /// Queues an op and awaits its answer. The queue is the same bounded one the
    /// blocking callers use: when it is full, the op waits here (not in a buffer) until
    /// the writer takes a group off it.
    async fn call_async<T>(&self, make: impl FnOnce(Responder<T>) -> WriteOp) -> Result<T, Error> {
        if let Some(reason) = self.shared.poisoned.lock().unwrap().clone() {
            return Err(Error::Poisoned(reason));
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(Error::Shutdown)?;
        let mut op = make(Responder::Async(reply_tx));
        loop {
            // Registered before the attempt, so a group taken between a full attempt and
            // the wait still wakes us.
            let space = self.shared.queue_space.notified();
            let mut space = std::pin::pin!(space);
            space.as_mut().enable();
            let queued = &self.shared.counters.n_queued;
            queued.fetch_add(1, Ordering::Relaxed);
            let sent = tx.try_send(op);
            if sent.is_err() {
                queued.fetch_sub(1, Ordering::Relaxed);
            }
            match sent {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    op = back;
                    self.shared
                        .counters
                        .n_queue_full_waits
                        .fetch_add(1, Ordering::Relaxed);
                    space.await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(Error::Shutdown),
            }
        }
        reply_rx
            .await
            .map_err(|_| Error::Poisoned("writer thread stopped".into()))?
    }
}

impl<D: LogDir + Clone> Drop for Engine<D> {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it and exit; it then closes the
        // checkpointer's queue.
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
    }
}

/// Writes `mvcc` as the checkpoint covering the segments below `first_segment`, unless
/// a newer checkpoint was written meanwhile (an explicit and a background one can race):
/// that one covers more. Returns the first segment the newest checkpoint does not cover.
fn write_checkpoint<D: LogDir>(
    shared: &Shared,
    dir: &D,
    mvcc: &Mvcc,
    first_segment: u64,
) -> Result<u64, Error> {
    let _guard = shared.checkpoint_lock.lock().unwrap();
    let newest = shared.disk.lock().unwrap().checkpoint_first_segment;
    if newest > first_segment {
        return Ok(newest);
    }
    let bytes = checkpoint::write(dir, mvcc, first_segment)?;
    shared.checkpoint_done(first_segment, bytes);
    Ok(first_segment)
}

fn checkpoint_loop<D: LogDir>(shared: &Shared, dir: &D, rx: Receiver<(Mvcc, u64)>) {
    while let Ok((mvcc, first_segment)) = rx.recv() {
        if let Err(e) = write_checkpoint(shared, dir, &mvcc, first_segment) {
            *shared.last_checkpoint_error.lock().unwrap() = Some(e.to_string());
        }
        drop(mvcc);
        shared.checkpoint_pending.store(false, Ordering::Release);
    }
}

enum Reply {
    Txn(Responder<TxnResponse>, Result<TxnResponse, RequestError>),
    Compact(Responder<i64>, Result<i64, RequestError>, bool),
}

struct Writer<D: LogDir> {
    shared: Arc<Shared>,
    wal: Wal<D>,
    config: EngineConfig,
    ckpt_tx: SyncSender<(Mvcc, u64)>,
    bytes_since_checkpoint: u64,
    /// The group's records, reused (see [`WRITER_BUFFER_RETAINED_BYTES_MAX`]).
    buf: Vec<u8>,
    /// A compaction's entries are still being dropped ([`Mvcc::sweep_step`]).
    sweeping: bool,
    /// Physical compactions answered when the sweep is done: (caller, revision then).
    sweep_waiters: Vec<(Responder<i64>, i64)>,
}

impl<D: LogDir> Writer<D> {
    fn run(mut self, rx: Receiver<WriteOp>) {
        loop {
            let first = if self.sweeping {
                // Sweep while no write waits.
                match rx.try_recv() {
                    Ok(op) => op,
                    Err(TryRecvError::Empty) => {
                        self.sweep_step();
                        // Steps back to back take the index's write lock back to back:
                        // let readers woken by the last release take it in between.
                        std::thread::yield_now();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                }
            };
            let mut group = vec![first];
            while group.len() < self.config.batch_requests_max {
                match rx.try_recv() {
                    Ok(op) => group.push(op),
                    Err(_) => break,
                }
            }
            self.shared
                .counters
                .n_queued
                .fetch_sub(group.len() as i64, Ordering::Relaxed);
            self.shared.queue_space.notify_waiters();
            self.commit_group(group);
            if self.sweeping {
                // One step per group too, so that a sweep ends under any load.
                self.sweep_step();
            }
            self.maybe_checkpoint();
        }
        while self.sweeping {
            self.sweep_step();
        }
    }

    /// Drops a compaction's entries from the next [`SWEEP_CHUNKS_PER_STEP`] chunks;
    /// answers the physical compactions once the sweep is done.
    fn sweep_step(&mut self) {
        let (more, retained) = {
            let mut mvcc = self.shared.mvcc.write().unwrap();
            let more = mvcc.sweep_step(SWEEP_CHUNKS_PER_STEP);
            (more, mvcc.index().retained_bytes())
        };
        self.shared
            .retained_bytes
            .store(retained, Ordering::Relaxed);
        if !more {
            self.sweeping = false;
            for (reply, revision) in self.sweep_waiters.drain(..) {
                reply.send(Ok(revision));
            }
            // What the sweep dropped may make garbage collection due now.
            self.maybe_checkpoint();
        }
    }

    /// Starts a background checkpoint when the log has grown by
    /// `checkpoint_after_bytes`, or when garbage collection is due.
    fn maybe_checkpoint(&mut self) {
        if self.shared.checkpoint_pending.load(Ordering::Acquire) || self.poison_reason().is_some()
        {
            // The previous checkpoint is still being written; retry after a later group.
            return;
        }
        let due = self.config.checkpoint_after_bytes;
        let grown = due > 0 && self.bytes_since_checkpoint >= due;
        // After a compaction's sweep: until then the dead entries still count as live.
        let gc = !self.sweeping && self.gc_due();
        if !grown && !gc {
            return;
        }
        match self.snapshot() {
            Ok(snap) => {
                self.shared
                    .checkpoint_pending
                    .store(true, Ordering::Release);
                // Counted before the checkpoint thread can finish it: whoever sees the
                // checkpoint counted (`stats`) sees its GC run counted too.
                let gc_runs = &self.shared.counters.n_gc_runs;
                if gc {
                    gc_runs.fetch_add(1, Ordering::Relaxed);
                }
                match self.ckpt_tx.try_send(snap) {
                    Ok(()) => self.bytes_since_checkpoint = 0,
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        if gc {
                            gc_runs.fetch_sub(1, Ordering::Relaxed);
                        }
                        self.shared
                            .checkpoint_pending
                            .store(false, Ordering::Release);
                    }
                }
            }
            Err(e) => self.poison(e.to_string()),
        }
    }

    /// Whether enough of the bytes on disk are dead for garbage collection to run.
    fn gc_due(&self) -> bool {
        let min_dead = self.config.gc_min_dead_bytes;
        if min_dead == 0 {
            return false;
        }
        let disk = self.shared.disk.lock().unwrap().total();
        let dead = disk.saturating_sub(self.shared.retained_bytes.load(Ordering::Relaxed));
        dead >= min_dead && dead as f64 >= self.config.gc_dead_ratio * disk as f64
    }

    /// Records the active segment's size after an append or a roll.
    fn note_active_size(&self) {
        let mut disk = self.shared.disk.lock().unwrap();
        disk.segments
            .insert(self.wal.active_id(), self.wal.active_len());
    }

    fn poison_reason(&self) -> Option<String> {
        self.shared.poisoned.lock().unwrap().clone()
    }

    fn poison(&self, reason: String) {
        self.shared.poisoned.lock().unwrap().get_or_insert(reason);
    }

    /// Applies, persists, syncs once, publishes, then answers every op of the group.
    fn commit_group(&mut self, group: Vec<WriteOp>) {
        if let Some(reason) = self.poison_reason() {
            return reply_all_failed(group, &reason);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.shrink_to(WRITER_BUFFER_RETAINED_BYTES_MAX);
        let mut replies = Vec::with_capacity(group.len());
        let mut batches = Vec::new();
        let mut snapshots = Vec::new();
        let (base_revision, applied_revision) = {
            let mut mvcc = self.shared.mvcc.write().unwrap();
            let base = mvcc.current_revision();
            for op in group {
                match op {
                    WriteOp::Txn(req, limits, unknown_leases, reply) => {
                        let result =
                            mvcc.apply_checked(&req, limits, &unknown_leases)
                                .map(|applied| {
                                    if let Some(batch) = applied.batch {
                                        encode_revision(&batch, &mut buf);
                                        batches.push(batch);
                                    }
                                    applied.response
                                });
                        replies.push(Reply::Txn(reply, result));
                    }
                    WriteOp::Compact(rev, physical, reply) => {
                        let result = mvcc.begin_compaction(rev).map(|()| mvcc.current_revision());
                        if result.is_ok() {
                            encode_record(&Record::Compact(rev), &mut buf);
                            self.sweeping = true;
                        }
                        replies.push(Reply::Compact(reply, result, physical));
                    }
                    WriteOp::Snapshot(reply) => snapshots.push(reply),
                }
            }
            self.shared
                .retained_bytes
                .store(mvcc.index().retained_bytes(), Ordering::Relaxed);
            (base, mvcc.current_revision())
        };
        if !buf.is_empty()
            && let Err(e) = self.persist(&buf, base_revision)
        {
            let reason = format!("log write failed: {e}");
            self.poison(reason.clone());
            for r in replies {
                match r {
                    Reply::Txn(tx, _) => tx.send(Err(Error::Poisoned(reason.clone()))),
                    Reply::Compact(tx, _, _) => tx.send(Err(Error::Poisoned(reason.clone()))),
                }
            }
            return;
        }
        self.buf = buf;
        self.shared
            .committed
            .store(applied_revision, Ordering::Release);
        let c = &self.shared.counters;
        c.n_writes
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
        c.n_groups.fetch_add(1, Ordering::Relaxed);
        for hook in self.shared.hooks.read().unwrap().iter() {
            batches.iter().for_each(hook);
        }
        if !batches.is_empty() {
            let mut recent = self.shared.recent.lock().unwrap();
            batches.into_iter().for_each(|b| recent.push(b));
        }
        for r in replies {
            match r {
                Reply::Txn(tx, res) => tx.send(res.map_err(Error::from)),
                Reply::Compact(tx, Ok(revision), true) => {
                    self.sweep_waiters.push((tx, revision));
                }
                Reply::Compact(tx, res, _) => tx.send(res.map_err(Error::from)),
            }
        }
        for reply in snapshots {
            let snap = self.snapshot();
            if let Err(e) = &snap {
                self.poison(format!("segment roll failed: {e}"));
            }
            reply.send(snap);
        }
    }

    fn persist(&mut self, buf: &[u8], base_revision: i64) -> std::io::Result<()> {
        self.wal.append(buf, base_revision)?;
        self.note_active_size();
        if self.config.sync == SyncMode::Fdatasync {
            self.wal.sync()?;
            self.shared.counters.n_syncs.fetch_add(1, Ordering::Relaxed);
        } else {
            self.wal.flush()?;
        }
        self.shared
            .counters
            .n_log_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.bytes_since_checkpoint += buf.len() as u64;
        Ok(())
    }

    /// A copy of the (fully durable) state and a fresh segment: the copy covers every
    /// segment below the returned id.
    fn snapshot(&mut self) -> Result<(Mvcc, u64), Error> {
        let mvcc = self.shared.mvcc.read().unwrap().clone();
        assert_eq!(
            mvcc.current_revision(),
            self.shared.committed.load(Ordering::Acquire)
        );
        let id = self.wal.roll(mvcc.current_revision())?;
        self.note_active_size();
        Ok((mvcc, id))
    }
}

fn reply_all_failed(group: Vec<WriteOp>, reason: &str) {
    for op in group {
        let err = || Error::Poisoned(reason.to_string());
        match op {
            WriteOp::Txn(_, _, _, tx) => tx.send(Err(err())),
            WriteOp::Compact(_, _, tx) => tx.send(Err(err())),
            WriteOp::Snapshot(tx) => tx.send(Err(err())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::task::{Context, Waker};

    use super::*;
    use crate::logfile::MemDir;

    fn put_txn(key: &str) -> TxnRequest {
        TxnRequest {
            success: vec![RequestOp::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                ..Default::default()
            })],
            ..Default::default()
        }
    }

    fn has_key(dir: &MemDir, key: &str) -> bool {
        let engine = Engine::open(dir.clone(), EngineConfig::default()).unwrap();
        let got = engine.range(&RangeRequest {
            key: key.into(),
            ..Default::default()
        });
        got.unwrap().count == 1
    }

    /// An async write resolves only once durable: a power cut right after each answer
    /// keeps it, for writers in flight together and for the blocking API beside them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_writes_are_answered_only_once_durable() {
        let dir = MemDir::new();
        let engine = Arc::new(Engine::open(dir.clone(), EngineConfig::default()).unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let key = format!("k{i:02}");
                    let resp = engine.txn_async(put_txn(&key)).await.unwrap();
                    (key, resp.header_revision)
                })
            })
            .collect();
        let sync_engine = engine.clone();
        let sync_rev = tokio::task::spawn_blocking(move || sync_engine.txn(put_txn("sync")))
            .await
            .unwrap()
            .unwrap()
            .header_revision;
        let mut revisions = vec![sync_rev];
        for t in tasks {
            let (key, rev) = t.await.unwrap();
            assert!(has_key(&dir.crash(0), &key), "{key} lost by a power cut");
            revisions.push(rev);
        }
        revisions.sort();
        revisions.dedup();
        assert_eq!(revisions.len(), 65, "one revision per write");
        assert!(has_key(&dir.crash(0), "sync"));
        let deleted = engine
            .delete_range_async(DeleteRangeRequest {
                key: b"k00".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(deleted.deleted, 1);
        assert!(!has_key(&dir.crash(0), "k00"));
    }

    /// With the writer held in a commit hook and the queue (of 1) full, a third async
    /// write waits for space instead of queuing past the bound, then goes through.
    #[test]
    fn a_full_queue_makes_async_writers_wait() {
        let config = EngineConfig {
            queue_requests_max: 1,
            ..EngineConfig::default()
        };
        let engine = Arc::new(Engine::open(MemDir::new(), config).unwrap());
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
        let release_rx = Mutex::new(Some(release_rx));
        engine.subscribe(Box::new(move |_| {
            // Only the first commit is held.
            if let Some(rx) = release_rx.lock().unwrap().take() {
                entered_tx.send(()).unwrap();
                rx.recv().unwrap();
            }
        }));
        let first = {
            let engine = engine.clone();
            std::thread::spawn(move || engine.txn(put_txn("first")).unwrap())
        };
        entered_rx.recv().unwrap();
        let mut second = Box::pin(engine.txn_async(put_txn("second")));
        let mut third = Box::pin(engine.txn_async(put_txn("third")));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(second.as_mut().poll(&mut cx).is_pending(), "queued");
        assert_eq!(engine.stats().n_queue_full_waits, 0);
        assert!(third.as_mut().poll(&mut cx).is_pending(), "waits for space");
        assert_eq!(engine.stats().n_queue_full_waits, 1);
        release_tx.send(()).unwrap();
        first.join().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (second, third) = rt.block_on(async { (second.await, third.await) });
        let (second, third) = (second.unwrap(), third.unwrap());
        assert!(
            third.header_revision > second.header_revision,
            "queue order"
        );
        assert_eq!(engine.current_revision(), third.header_revision);
    }

    /// A compaction is answered once durable and swept afterwards, between writes; a
    /// physical one is answered only once the sweep is done. The writer is held in a
    /// commit hook to look at the state between the two.
    #[test]
    fn a_compaction_sweeps_after_its_answer_and_a_physical_one_after_the_sweep() {
        let engine = Arc::new(Engine::open(MemDir::new(), EngineConfig::default()).unwrap());
        let mut model = Mvcc::new();
        let put = |k: usize, v: usize| TxnRequest {
            success: vec![RequestOp::Put(PutRequest {
                key: format!("k{k:04}").into_bytes(),
                value: format!("v{v}").into_bytes(),
                ..Default::default()
            })],
            ..Default::default()
        };
        // 1,000 keys of three versions: hundreds of (test-sized) chunks, several steps.
        for v in 0..3 {
            for k in 0..1000 {
                engine.txn(put(k, v)).unwrap();
                model.apply(&put(k, v)).unwrap();
            }
        }
        let at = engine.current_revision() - 10;

        // Hold the next two commits.
        let (entered_tx, entered_rx) = mpsc::sync_channel(2);
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(2);
        let holds = Mutex::new(2);
        let release_rx = Mutex::new(release_rx);
        engine.subscribe(Box::new(move |_| {
            let mut holds = holds.lock().unwrap();
            if *holds > 0 {
                *holds -= 1;
                entered_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
            }
        }));
        let held = {
            let engine = engine.clone();
            std::thread::spawn(move || engine.txn(put(5000, 0)).unwrap())
        };
        entered_rx.recv().unwrap();
        // Queued behind the held commit, to be one group: the compaction, then a write.
        let mut compact = Box::pin(engine.compact_async(at, false));
        let mut after = Box::pin(engine.txn_async(put(5001, 0)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(compact.as_mut().poll(&mut cx).is_pending());
        assert!(after.as_mut().poll(&mut cx).is_pending());
        release_tx.send(()).unwrap();
        let held = held.join().unwrap();
        // The writer holds at the write behind the compaction: begun, nothing swept.
        entered_rx.recv().unwrap();
        model.apply(&put(5000, 0)).unwrap();
        let mut swept = model.clone();
        swept.compact(at).unwrap();
        {
            let mvcc = engine.shared.mvcc.read().unwrap();
            assert_eq!(mvcc.compacted_revision(), at);
            assert!(mvcc.sweeping());
            assert!(mvcc.index().retained_bytes() > swept.index().retained_bytes());
        }
        release_tx.send(()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (compacted, after) = rt.block_on(async { (compact.await, after.await) });
        // Answered with the revision it was applied at, before the write behind it.
        assert_eq!(compacted.unwrap(), held.header_revision);
        assert_eq!(after.unwrap().header_revision, held.header_revision + 1);
        model.compact(at).unwrap();
        model.apply(&put(5001, 0)).unwrap();

        // A physical compaction: answered with the sweep done, the index as if it had
        // all been dropped at once.
        let at = engine.current_revision();
        engine.compact(at).unwrap();
        model.compact(at).unwrap();
        let mvcc = engine.shared.mvcc.read().unwrap();
        assert!(!mvcc.sweeping());
        assert_eq!(mvcc.index(), model.index());
        assert_eq!(
            engine.stats().n_retained_bytes,
            model.index().retained_bytes()
        );
    }

    /// History reads within the newest revisions are served from memory, older ones
    /// (and any after a restart, until new revisions come) from the index; both give
    /// what the index gives.
    #[test]
    fn history_reads_come_from_the_newest_revisions_when_they_cover_them() {
        let dir = MemDir::new();
        let engine = Engine::open(dir.clone(), EngineConfig::default()).unwrap();
        for i in 0..20 {
            engine.txn(put_txn(&format!("h{}", i % 3))).unwrap();
        }
        let newest = engine.current_revision();
        let from_index = |engine: &Engine<MemDir>, from| {
            let mvcc = engine.shared.mvcc.read().unwrap();
            mvcc.history(b"h", b"i", from, newest, newest, 4).unwrap()
        };
        let got = engine.history(b"h", b"i", newest - 6, newest, 4).unwrap();
        assert_eq!(got, from_index(&engine, newest - 6));
        assert_eq!(got.events.len(), 4);
        let stats = engine.stats();
        assert_eq!(
            (stats.n_history_reads_recent, stats.n_history_reads_scanned),
            (1, 0)
        );
        drop(engine);

        let engine = Engine::open(dir, EngineConfig::default()).unwrap();
        let got = engine.history(b"h", b"i", newest - 6, newest, 4).unwrap();
        assert_eq!(got, from_index(&engine, newest - 6));
        let stats = engine.stats();
        assert_eq!(
            (stats.n_history_reads_recent, stats.n_history_reads_scanned),
            (0, 1),
            "nothing in memory after a restart"
        );
        engine.txn(put_txn("h0")).unwrap();
        engine
            .history(b"h", b"i", newest + 1, newest + 1, 4)
            .unwrap();
        assert_eq!(engine.stats().n_history_reads_recent, 1);
    }

    /// Garbage collection waits for a compaction's sweep and starts as soon as the
    /// sweep ends, with no write after it to wake the writer.
    #[test]
    fn garbage_collection_starts_when_a_sweep_ends() {
        let config = EngineConfig {
            checkpoint_after_bytes: 0,
            gc_min_dead_bytes: 1,
            ..EngineConfig::default()
        };
        let engine = Engine::open(MemDir::new(), config).unwrap();
        // 200 keys of three versions: dozens of (test-sized) chunks, several steps.
        for _ in 0..3 {
            for k in 0..200 {
                engine.txn(put_txn(&format!("k{k:03}"))).unwrap();
            }
        }
        assert_eq!(
            engine.stats().n_gc_runs,
            0,
            "nothing is dead before compaction"
        );
        engine.compact(engine.current_revision()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while engine.stats().n_checkpoints == 0 {
            assert!(std::time::Instant::now() < deadline, "GC did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(engine.stats().n_gc_runs, 1);
    }
}
