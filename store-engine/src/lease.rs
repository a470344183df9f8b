//! Leases on etcd's model: grant (TTL, optional id), keep-alive, revoke, time-to-live
//! with the attached keys, list. A key put with a lease id is attached to it; when the
//! lease is revoked or expires, every attached key is deleted in one revision (one txn),
//! which the watch hub sees as ordinary delete events. A lease whose keys would not fit
//! one revision ([`MAX_CHANGES_PER_REVISION`] keys, or more key bytes than a log record
//! holds) has them deleted over consecutive revisions, each as large as fits, so that
//! every lease can be revoked; etcd has no such bound, and deletes them all at once.
//!
//! # Persistence
//!
//! Grants and revocations are kept in a second [`Engine`] (its own log in its own
//! directory, `<data-dir>/lease` for [`crate::Store`]), one key per lease: the id as 8
//! big-endian bytes, the granted TTL in seconds as 8 little-endian bytes. Keeping them
//! out of the KV keyspace means no reserved prefix that ranges, txns, watches and
//! compaction would all have to hide. The attachments are not stored twice: each key
//! carries its lease id in the KV store, and [`Lessor::open`] rebuilds the lease -> keys
//! map from a scan. Like etcd, a restart gives every lease its full TTL again; keep-alives
//! are not persisted.
//!
//! Crash ordering: a grant is durable before its id is returned, so no key can name a
//! lease that a restart forgets; a revocation deletes the keys first and the lease record
//! second, so a crash in between leaves a lease with no keys, which expires again.
//!
//! # Concurrency
//!
//! KV writes run inside [`Lessor::write`] (or [`Lessor::txn_async`]), which holds a
//! shared gate and checks that every lease they name exists; a revocation holds the gate
//! exclusively while it deletes the keys, so no write can attach a key to a lease being
//! revoked, or re-put an attached key between the read of the attachment set and its
//! deletion. The attachment map is kept by a commit hook on the KV engine, in revision
//! order.
//!
//! The gate and the lock that serialises grants with revocations are tokio's, so the
//! server holds them across the wait for a durable write without holding a thread. The
//! blocking methods are the async ones driven to completion on the calling thread.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::codec::{MAX_RECORD_PAYLOAD_BYTES, REVISION_HEADER_BYTES, change_payload_bytes};
use crate::engine::{Engine, EngineConfig, EngineStats};
use crate::error::{Error, RequestError};
use crate::logfile::LogDir;
use crate::types::*;

/// etcd's minimum TTL with default timings (3/2 of the election timeout, rounded up).
pub const MIN_LEASE_TTL_S: i64 = 2;
/// etcd's `MaxLeaseTTL`.
pub const MAX_LEASE_TTL_S: i64 = 9_000_000_000;
/// Bound on live leases.
pub const MAX_LEASES: usize = 1 << 20;
/// Bound on the leases one [`Lessor::expire_due`] call revokes.
pub const MAX_EXPIRES_PER_CALL: usize = 1024;

/// Monotonic milliseconds. Behind a trait so tests drive expiry with [`FakeClock`].
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The process's monotonic clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct FakeClock {
    now_ms: AtomicU64,
}

impl FakeClock {
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// Lease errors, with etcd's meanings.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// etcd: "etcdserver: requested lease not found".
    #[error("requested lease not found: {0:x}")]
    NotFound(i64),
    /// etcd: "etcdserver: lease already exists".
    #[error("lease already exists: {0:x}")]
    Exists(i64),
    /// etcd: "etcdserver: too large lease TTL".
    #[error("too large lease TTL: {ttl_s} s (limit {MAX_LEASE_TTL_S})")]
    TtlTooLarge { ttl_s: i64 },
    #[error("too many leases (limit {MAX_LEASES})")]
    TooMany,
    /// A negative id (etcd's ids are positive).
    #[error("invalid lease id {0}")]
    BadId(i64),
    #[error(transparent)]
    Store(#[from] Error),
}

/// One lease as [`Lessor::time_to_live`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: i64,
    pub granted_ttl_s: i64,
    /// Whole seconds left (rounded down); 0 once due.
    pub remaining_ttl_s: i64,
    /// Attached keys in key order, when asked for.
    pub keys: Vec<Bytes>,
}

#[derive(Debug)]
struct Lease {
    ttl_s: i64,
    expiry_ms: u64,
    keys: BTreeSet<Bytes>,
}

struct LessorState {
    leases: BTreeMap<i64, Lease>,
    next_id: i64,
}

/// The lessor over a KV engine and a lease log.
pub struct Lessor<D: LogDir + Clone + Send + Sync + 'static> {
    kv: Arc<Engine<D>>,
    log: Engine<D>,
    clock: Arc<dyn Clock>,
    state: Mutex<LessorState>,
    /// Shared by KV writes, exclusive for revocations (see the module docs).
    gate: tokio::sync::RwLock<()>,
    /// Serialises grants and revocations with each other.
    admin: tokio::sync::Mutex<()>,
}

fn lease_key(id: i64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

impl<D: LogDir + Clone + Send + Sync + 'static> Lessor<D> {
    /// Opens the lease log in `lease_dir`, restores every lease with a full TTL from
    /// now, rebuilds the attachments from `kv`, and hooks into `kv`'s commits.
    pub fn open(
        kv: Arc<Engine<D>>,
        lease_dir: D,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, Error> {
        let log = Engine::open(lease_dir, config)?;
        let now = clock.now_ms();
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        };
        let mut leases = BTreeMap::new();
        for rec in log.range(&all)?.kvs {
            let (Ok(id), Ok(ttl)) = (
                <[u8; 8]>::try_from(&rec.key[..]),
                <[u8; 8]>::try_from(&rec.value[..]),
            ) else {
                return Err(Error::Corruption(crate::Corruption {
                    file: "lease log".into(),
                    offset: 0,
                    reason: format!("bad lease record {:?}", rec.key),
                }));
            };
            let ttl_s = i64::from_le_bytes(ttl);
            leases.insert(
                i64::from_be_bytes(id),
                Lease {
                    ttl_s,
                    expiry_ms: now + ttl_ms(ttl_s),
                    keys: BTreeSet::new(),
                },
            );
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64)
            << 16;
        let next_id = leases
            .keys()
            .next_back()
            .map_or(seed, |max| (max + 1).max(seed));
        let lessor = Arc::new(Lessor {
            kv: kv.clone(),
            log,
            clock,
            state: Mutex::new(LessorState { leases, next_id }),
            gate: tokio::sync::RwLock::new(()),
            admin: tokio::sync::Mutex::new(()),
        });
        // Hook first, then scan: no write is lost in between (writes that come before
        // the scan are seen twice, which attaching is idempotent for).
        let weak: Weak<Self> = Arc::downgrade(&lessor);
        kv.subscribe(Box::new(move |batch| {
            if let Some(l) = weak.upgrade() {
                l.on_commit(batch);
            }
        }));
        let attached = kv.range(&all)?.kvs;
        let mut st = lessor.state.lock().unwrap();
        for kv in attached.into_iter().filter(|kv| kv.lease != 0) {
            // A key naming a lease the log does not know stays as it is (it cannot come
            // from this store: grants are durable before use).
            if let Some(l) = st.leases.get_mut(&kv.lease) {
                l.keys.insert(kv.key);
            }
        }
        drop(st);
        Ok(lessor)
    }

    /// Keeps the attachment map in step with the KV store (the commit hook).
    fn on_commit(&self, batch: &CommittedBatch) {
        let mut st = self.state.lock().unwrap();
        for ev in &batch.events {
            let prev_lease = ev.prev_kv.as_ref().map_or(0, |p| p.lease);
            let new_lease = match ev.kind {
                EventKind::Put => ev.kv.lease,
                EventKind::Delete => 0,
            };
            if prev_lease != 0
                && prev_lease != new_lease
                && let Some(l) = st.leases.get_mut(&prev_lease)
            {
                l.keys.remove(&ev.kv.key);
            }
            if new_lease != 0
                && let Some(l) = st.leases.get_mut(&new_lease)
            {
                l.keys.insert(ev.kv.key.clone());
            }
        }
    }

    pub fn kv(&self) -> &Arc<Engine<D>> {
        &self.kv
    }

    /// Runs a KV write `f` that attaches keys to `leases` (0s are ignored): refused
    /// with [`LeaseError::NotFound`] if one does not exist, and never concurrent with a
    /// revocation.
    pub fn write<T>(
        &self,
        leases: impl IntoIterator<Item = i64>,
        f: impl FnOnce() -> T,
    ) -> Result<T, LeaseError> {
        let _gate = block_on(self.gate.read());
        self.check_leases(leases)?;
        Ok(f())
    }

    /// Runs a KV txn without a thread, holding the gate until it is durable: refused
    /// with [`LeaseError::NotFound`] if the branch its compares choose puts with a lease
    /// that does not exist (a put in the other branch may name one, as etcd allows).
    pub async fn txn_async(&self, txn: TxnRequest) -> Result<TxnResponse, LeaseError> {
        let _gate = self.gate.read().await;
        let unknown = self.unknown_leases(leases_named(&txn));
        match self.kv.txn_async_checked(txn, unknown).await {
            Err(Error::Request(RequestError::LeaseNotFound(id))) => Err(LeaseError::NotFound(id)),
            other => Ok(other?),
        }
    }

    fn check_leases(&self, leases: impl IntoIterator<Item = i64>) -> Result<(), LeaseError> {
        match self.unknown_leases(leases).first() {
            Some(&id) => Err(LeaseError::NotFound(id)),
            None => Ok(()),
        }
    }

    /// The leases among `leases` (0s ignored) that do not exist.
    fn unknown_leases(&self, leases: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let st = self.state.lock().unwrap();
        leases
            .into_iter()
            .filter(|&id| id != 0 && !st.leases.contains_key(&id))
            .collect()
    }

    /// Grants a lease: `id` 0 picks one. A TTL below [`MIN_LEASE_TTL_S`] is raised to
    /// it. Returns the id and the TTL granted; durable when it returns.
    pub fn grant(&self, id: i64, ttl_s: i64) -> Result<(i64, i64), LeaseError> {
        block_on(self.grant_async(id, ttl_s))
    }

    /// [`Lessor::grant`] without a thread.
    pub async fn grant_async(&self, id: i64, ttl_s: i64) -> Result<(i64, i64), LeaseError> {
        if ttl_s > MAX_LEASE_TTL_S {
            return Err(LeaseError::TtlTooLarge { ttl_s });
        }
        if id < 0 {
            return Err(LeaseError::BadId(id));
        }
        let ttl_s = ttl_s.max(MIN_LEASE_TTL_S);
        let _admin = self.admin.lock().await;
        let id = {
            let mut st = self.state.lock().unwrap();
            if st.leases.len() >= MAX_LEASES {
                return Err(LeaseError::TooMany);
            }
            if id != 0 && st.leases.contains_key(&id) {
                return Err(LeaseError::Exists(id));
            }
            if id != 0 {
                id
            } else {
                while st.leases.contains_key(&st.next_id) {
                    st.next_id += 1;
                }
                st.next_id += 1;
                st.next_id - 1
            }
        };
        self.log
            .put_async(PutRequest {
                key: lease_key(id),
                value: ttl_s.to_le_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock().unwrap();
        st.next_id = st.next_id.max(id + 1);
        st.leases.insert(
            id,
            Lease {
                ttl_s,
                expiry_ms: now + ttl_ms(ttl_s),
                keys: BTreeSet::new(),
            },
        );
        Ok((id, ttl_s))
    }

    /// Revokes a lease: deletes its keys in one revision (see the module docs for
    /// leases too large for one), then forgets it. Returns the revision of the (last)
    /// deletes, if there were keys.
    pub fn revoke(&self, id: i64) -> Result<Option<i64>, LeaseError> {
        block_on(self.revoke_async(id))
    }

    /// [`Lessor::revoke`] without a thread.
    pub async fn revoke_async(&self, id: i64) -> Result<Option<i64>, LeaseError> {
        self.revoke_if(id, |_| true).await
    }

    /// Revokes `id` if `due` holds for it under the lock (expiry re-checks the clock:
    /// a keep-alive may have come since the lease was picked).
    async fn revoke_if(
        &self,
        id: i64,
        due: impl Fn(&Lease) -> bool,
    ) -> Result<Option<i64>, LeaseError> {
        let _admin = self.admin.lock().await;
        let _gate = self.gate.write().await;
        let keys: Vec<Bytes> = {
            let st = self.state.lock().unwrap();
            let lease = st.leases.get(&id).ok_or(LeaseError::NotFound(id))?;
            if !due(lease) {
                return Err(LeaseError::NotFound(id));
            }
            lease.keys.iter().cloned().collect()
        };
        let mut revision = None;
        for chunk in revocation_chunks(&keys) {
            let success = chunk
                .iter()
                .map(|k| {
                    RequestOp::DeleteRange(DeleteRangeRequest {
                        key: k.to_vec(),
                        ..Default::default()
                    })
                })
                .collect();
            let resp = self
                .kv
                .txn_internal_async(TxnRequest {
                    success,
                    ..Default::default()
                })
                .await?;
            revision = Some(resp.header_revision);
        }
        self.log
            .delete_range_async(DeleteRangeRequest {
                key: lease_key(id),
                ..Default::default()
            })
            .await?;
        let removed = self.state.lock().unwrap().leases.remove(&id);
        let removed = removed.expect("revoked lease existed: grants and revokes are serialised");
        assert!(
            removed.keys.is_empty(),
            "lease {id:x} still has keys after their deletion: {:?}",
            removed.keys
        );
        Ok(revision)
    }

    /// Restarts the lease's TTL from now; returns the TTL. A lease that is due (but not
    /// yet revoked) is not found, as etcd's.
    pub fn keep_alive(&self, id: i64) -> Result<i64, LeaseError> {
        let now = self.clock.now_ms();
        let mut st = self.state.lock().unwrap();
        match st.leases.get_mut(&id) {
            Some(l) if l.expiry_ms > now => {
                l.expiry_ms = now + ttl_ms(l.ttl_s);
                Ok(l.ttl_s)
            }
            _ => Err(LeaseError::NotFound(id)),
        }
    }

    pub fn time_to_live(&self, id: i64, with_keys: bool) -> Result<LeaseInfo, LeaseError> {
        let now = self.clock.now_ms();
        let st = self.state.lock().unwrap();
        let l = st.leases.get(&id).ok_or(LeaseError::NotFound(id))?;
        Ok(LeaseInfo {
            id,
            granted_ttl_s: l.ttl_s,
            remaining_ttl_s: (l.expiry_ms.saturating_sub(now) / 1000) as i64,
            keys: if with_keys {
                l.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    /// The lease log's engine statistics.
    pub fn log_stats(&self) -> EngineStats {
        self.log.stats()
    }

    /// Every lease id, in order.
    pub fn leases(&self) -> Vec<i64> {
        self.state.lock().unwrap().leases.keys().copied().collect()
    }

    /// Revokes up to [`MAX_EXPIRES_PER_CALL`] leases that are due by the clock; returns
    /// their ids. A revocation that fails (the store refusing writes) leaves that lease
    /// to the next call; the others are revoked regardless, and the first failure is
    /// returned. The server calls this on a timer; tests call it after moving a
    /// [`FakeClock`].
    pub fn expire_due(&self) -> Result<Vec<i64>, LeaseError> {
        block_on(self.expire_due_async())
    }

    /// [`Lessor::expire_due`] without a thread.
    pub async fn expire_due_async(&self) -> Result<Vec<i64>, LeaseError> {
        let now = self.clock.now_ms();
        let due: Vec<i64> = {
            let st = self.state.lock().unwrap();
            st.leases
                .iter()
                .filter(|(_, l)| l.expiry_ms <= now)
                .map(|(id, _)| *id)
                .take(MAX_EXPIRES_PER_CALL)
                .collect()
        };
        let mut expired = Vec::with_capacity(due.len());
        let mut first_error = None;
        for id in due {
            let now = self.clock.now_ms();
            match self.revoke_if(id, |l| l.expiry_ms <= now).await {
                Ok(_) => expired.push(id),
                // Revoked by a client, or kept alive, meanwhile.
                Err(LeaseError::NotFound(_)) => {}
                // One lease failing does not hold the others back.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(expired),
            Some(e) => Err(e),
        }
    }
}

/// `keys` cut into runs that each fit one revision: at most
/// [`MAX_CHANGES_PER_REVISION`] deletes whose tombstones fit one log record.
fn revocation_chunks(keys: &[Bytes]) -> Vec<&[Bytes]> {
    let room = MAX_RECORD_PAYLOAD_BYTES - REVISION_HEADER_BYTES;
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, k) in keys.iter().enumerate() {
        let b = change_payload_bytes(EventKind::Delete, k.len(), 0);
        if i > start && (i - start == MAX_CHANGES_PER_REVISION || bytes + b > room) {
            chunks.push(&keys[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += b;
    }
    if start < keys.len() {
        chunks.push(&keys[start..]);
    }
    chunks
}

fn ttl_ms(ttl_s: i64) -> u64 {
    (ttl_s.max(0) as u64).saturating_mul(1000)
}

/// The leases a txn's puts name (any branch, nested ones included: which run is
/// decided at apply).
fn leases_named(txn: &TxnRequest) -> Vec<i64> {
    let mut leases = Vec::new();
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            RequestOp::Put(p) if p.lease != 0 => leases.push(p.lease),
            RequestOp::Txn(nested) => leases.extend(leases_named(nested)),
            _ => {}
        }
    }
    leases
}

/// Drives `fut` to completion on the calling thread (parking it in between): the
/// blocking API of the lessor. What the lessor's futures wait for (tokio's locks, the
/// engine's answers) is woken by other threads, so no runtime is needed, and calling
/// this from a runtime's thread blocks that thread as any blocking call would.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake before the park leaves a token: park returns at once.
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfile::MemDir;
    use crate::store::{Store, StoreConfig};
    use crate::watch::{WatchMessage, WatchSpec};

    fn open(kv: &MemDir, lease: &MemDir, clock: &Arc<FakeClock>) -> Store<MemDir> {
        let clock: Arc<dyn Clock> = clock.clone();
        Store::with_dirs(kv.clone(), lease.clone(), StoreConfig::default(), clock).unwrap()
    }

    fn put_with(store: &Store<MemDir>, key: &str, lease: i64) -> Result<i64, LeaseError> {
        let kv = store.kv.clone();
        store.lessor.write([lease], || {
            kv.put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                lease,
                ..Default::default()
            })
            .unwrap()
            .header_revision
        })
    }

    fn live_keys(store: &Store<MemDir>) -> Vec<String> {
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            keys_only: true,
            ..Default::default()
        };
        let kvs = store.kv.range(&all).unwrap().kvs;
        kvs.iter()
            .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
            .collect()
    }

    /// A lease with more keys than one revision may change still expires: its keys
    /// go in consecutive full revisions, and the lease is gone afterwards.
    #[test]
    fn a_lease_larger_than_a_revision_expires_over_several() {
        let (kv_dir, lease_dir, clock) =
            (MemDir::new(), MemDir::new(), Arc::new(FakeClock::default()));
        let store = open(&kv_dir, &lease_dir, &clock);
        let (id, _) = store.lessor.grant(0, 10).unwrap();
        let n = MAX_CHANGES_PER_REVISION + 1;
        for batch in (0..n).collect::<Vec<_>>().chunks(MAX_TXN_OPS) {
            let kv = store.kv.clone();
            store
                .lessor
                .write([id], || {
                    let success = batch
                        .iter()
                        .map(|i| {
                            RequestOp::Put(PutRequest {
                                key: format!("k{i:06}").into_bytes(),
                                lease: id,
                                ..Default::default()
                            })
                        })
                        .collect();
                    kv.txn(TxnRequest {
                        success,
                        ..Default::default()
                    })
                    .unwrap()
                })
                .unwrap();
        }
        put_with(&store, "plain", 0).unwrap();
        clock.advance_ms(10_000);
        let before = store.kv.current_revision();
        assert_eq!(store.lessor.expire_due().unwrap(), vec![id]);
        assert_eq!(store.kv.current_revision(), before + 2, "two revisions");
        assert_eq!(live_keys(&store), ["plain"]);
        assert!(store.lessor.leases().is_empty());
    }

    /// Revocation runs: as many keys as one revision may change, and no more key bytes
    /// than one log record holds.
    #[test]
    fn revocation_chunks_fit_one_revision_each() {
        let small: Vec<Bytes> = (0..2 * MAX_CHANGES_PER_REVISION + 5)
            .map(|i| Bytes::from(format!("k{i:06}").as_bytes()))
            .collect();
        let sizes: Vec<usize> = revocation_chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(
            sizes,
            [MAX_CHANGES_PER_REVISION, MAX_CHANGES_PER_REVISION, 5]
        );
        let big = Bytes::from(vec![b'k'; MAX_REQUEST_BYTES - 100]);
        let large: Vec<Bytes> = (0..100).map(|_| big.clone()).collect();
        let chunks = revocation_chunks(&large);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 100);
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        for c in &chunks {
            let bytes: usize = c
                .iter()
                .map(|k| change_payload_bytes(EventKind::Delete, k.len(), 0))
                .sum();
            assert!(REVISION_HEADER_BYTES + bytes <= MAX_RECORD_PAYLOAD_BYTES);
        }
        assert!(revocation_chunks(&[]).is_empty());
    }

    /// etcd lessor: expiry revokes the lease, and its keys go in one revision, which
    /// watchers see as delete events of that revision.
    #[test]
    fn expiry_deletes_the_attached_keys_in_one_revision() {
        let (kv_dir, lease_dir, clock) =
            (MemDir::new(), MemDir::new(), Arc::new(FakeClock::default()));
        let store = open(&kv_dir, &lease_dir, &clock);
        let (id, ttl) = store.lessor.grant(0, 10).unwrap();
        assert_eq!(ttl, 10);
        for k in ["a", "b", "c"] {
            put_with(&store, k, id).unwrap();
        }
        put_with(&store, "plain", 0).unwrap();
        let info = store.lessor.time_to_live(id, true).unwrap();
        let keys: Vec<&[u8]> = info.keys.iter().map(|k| &k[..]).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
        let mut w = store
            .hub
            .watch(WatchSpec {
                key: vec![0],
                range_end: vec![0],
                ..Default::default()
            })
            .unwrap();
        clock.advance_ms(9_999);
        assert_eq!(store.lessor.expire_due().unwrap(), Vec::<i64>::new());
        clock.advance_ms(1);
        let before = store.kv.current_revision();
        assert_eq!(store.lessor.expire_due().unwrap(), vec![id]);
        assert_eq!(store.kv.current_revision(), before + 1, "one revision");
        assert_eq!(live_keys(&store), ["plain"]);
        match w.try_recv() {
            Some(WatchMessage::Events { revision, events }) => {
                assert_eq!(revision, before + 1);
                assert_eq!(events.len(), 3);
                assert!(events.iter().all(|e| e.event.kind == EventKind::Delete));
            }
            other => panic!("expected the deletes, got {other:?}"),
        }
        assert!(matches!(
            store.lessor.time_to_live(id, false),
            Err(LeaseError::NotFound(_))
        ));
        assert!(store.lessor.leases().is_empty());
    }

    #[test]
    fn keep_alive_restarts_the_ttl_and_unknown_leases_are_refused() {
        let (kv_dir, lease_dir, clock) =
            (MemDir::new(), MemDir::new(), Arc::new(FakeClock::default()));
        let store = open(&kv_dir, &lease_dir, &clock);
        let (id, _) = store.lessor.grant(42, 5).unwrap();
        assert_eq!(id, 42);
        assert!(matches!(
            store.lessor.grant(42, 5),
            Err(LeaseError::Exists(42))
        ));
        assert!(matches!(
            store.lessor.grant(0, MAX_LEASE_TTL_S + 1),
            Err(LeaseError::TtlTooLarge { .. })
        ));
        assert_eq!(
            store.lessor.grant(7, 1).unwrap().1,
            MIN_LEASE_TTL_S,
            "TTL raised to the minimum"
        );
        clock.advance_ms(4_000);
        assert_eq!(store.lessor.keep_alive(42).unwrap(), 5);
        clock.advance_ms(4_000);
        assert_eq!(
            store.lessor.expire_due().unwrap(),
            vec![7],
            "42 was kept alive"
        );
        assert_eq!(
            store
                .lessor
                .time_to_live(42, false)
                .unwrap()
                .remaining_ttl_s,
            1
        );
        // A put naming an unknown lease changes nothing.
        let rev = store.kv.current_revision();
        assert!(matches!(
            put_with(&store, "k", 999),
            Err(LeaseError::NotFound(999))
        ));
        assert!(matches!(
            store.lessor.revoke(999),
            Err(LeaseError::NotFound(999))
        ));
        assert!(matches!(
            store.lessor.keep_alive(999),
            Err(LeaseError::NotFound(999))
        ));
        assert_eq!(store.kv.current_revision(), rev);
        // Re-putting a key without its lease detaches it.
        put_with(&store, "k", 42).unwrap();
        put_with(&store, "k", 0).unwrap();
        assert!(store.lessor.time_to_live(42, true).unwrap().keys.is_empty());
        store.lessor.revoke(42).unwrap();
        assert_eq!(live_keys(&store), ["k"]);
    }

    /// Only the branch a txn takes must name existing leases, as etcd checks: the other
    /// may name an unknown one.
    #[test]
    fn a_txn_needs_existing_leases_in_the_branch_it_takes_only() {
        let clock = Arc::new(FakeClock::default());
        let store = open(&MemDir::new(), &MemDir::new(), &clock);
        let (lease, _) = store.lessor.grant(0, 30).unwrap();
        let put = |key: &str, lease| {
            RequestOp::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                lease,
                ..Default::default()
            })
        };
        // "k" absent: version 0 holds when `absent`, so success runs.
        let txn = |absent: bool| TxnRequest {
            compare: vec![Compare {
                key: b"k".to_vec(),
                range_end: Vec::new(),
                result: if absent {
                    CompareResult::Equal
                } else {
                    CompareResult::NotEqual
                },
                target: CompareTarget::Version(0),
            }],
            success: vec![put("ok", lease)],
            failure: vec![put("missing", 999)],
        };
        let rev = store.kv.current_revision();
        let got = block_on(store.lessor.txn_async(txn(false)));
        assert!(
            matches!(got, Err(LeaseError::NotFound(999))),
            "the failure branch is taken and names lease 999: {got:?}"
        );
        assert_eq!(store.kv.current_revision(), rev, "nothing written");
        let got = block_on(store.lessor.txn_async(txn(true))).unwrap();
        assert!(got.succeeded);
        assert_eq!(live_keys(&store), ["ok"]);
        let keys = store.lessor.time_to_live(lease, true).unwrap().keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(&keys[0][..], b"ok");
    }

    /// Leases survive a restart with their attached keys, get their full TTL again (as
    /// etcd's), and still expire afterwards; revoked ones stay revoked.
    #[test]
    fn restart_keeps_leases_and_attachments() {
        let (kv_dir, lease_dir, clock) =
            (MemDir::new(), MemDir::new(), Arc::new(FakeClock::default()));
        let (kept, gone) = {
            let store = open(&kv_dir, &lease_dir, &clock);
            let (kept, _) = store.lessor.grant(0, 30).unwrap();
            let (gone, _) = store.lessor.grant(0, 30).unwrap();
            put_with(&store, "x", kept).unwrap();
            put_with(&store, "y", gone).unwrap();
            store.lessor.revoke(gone).unwrap();
            (kept, gone)
        };
        clock.advance_ms(20_000);
        let store = open(&kv_dir, &lease_dir, &clock);
        assert_eq!(store.lessor.leases(), vec![kept]);
        let info = store.lessor.time_to_live(kept, true).unwrap();
        assert_eq!((info.granted_ttl_s, info.remaining_ttl_s), (30, 30));
        assert_eq!(info.keys.len(), 1);
        assert!(matches!(
            store.lessor.time_to_live(gone, false),
            Err(LeaseError::NotFound(_))
        ));
        let (next, _) = store.lessor.grant(0, 30).unwrap();
        assert!(next > kept, "ids are not reused");
        clock.advance_ms(30_000);
        let mut expired = store.lessor.expire_due().unwrap();
        expired.sort();
        assert_eq!(expired, vec![kept, next]);
        assert!(live_keys(&store).is_empty());
    }
}
