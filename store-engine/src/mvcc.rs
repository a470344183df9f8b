//! The MVCC state machine: applies one write transaction at the next revision and
//! returns what to persist; serves reads at any retained revision. No IO, no clocks,
//! no threads: the [`crate::engine`] drives it and the log replays into it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use crate::codec::{MAX_RECORD_PAYLOAD_BYTES, REVISION_HEADER_BYTES, change_payload_bytes};
use crate::error::RequestError;
use crate::index::{Change, Entry, Index, KeySpan, PutEntry, tombstone_kv};
use crate::types::*;

/// The store's state: the index plus its current and compacted revisions.
///
/// Invariants: `compacted <= current`; every entry in the index has `main <= current`;
/// reads below `compacted` are refused.
#[derive(Clone, Debug)]
pub struct Mvcc {
    index: Index,
    current: i64,
    compacted: i64,
    /// A compaction whose entries are still being dropped ([`Mvcc::begin_compaction`]).
    sweep: Option<Sweep>,
}

/// A compaction in progress: entries at or below `at` are dropped from the keys from
/// `from` on by [`Mvcc::sweep_step`].
#[derive(Clone, Debug)]
struct Sweep {
    at: i64,
    from: Option<Bytes>,
}

/// Retained changes read back for a watcher catching up ([`Mvcc::history`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryChunk {
    /// In revision order, then `sub` order.
    pub events: Vec<Event>,
    /// Every change up to this revision is in `events` (or matched nothing).
    pub last_revision: i64,
}

/// A [`Mvcc::history`] read in progress ([`Mvcc::history_scan`]).
#[derive(Debug)]
pub struct HistoryScan {
    key: Vec<u8>,
    range_end: Vec<u8>,
    from: i64,
    /// The last key read, where the next step resumes.
    after: Option<Bytes>,
    selected: Selection,
}

/// The changes a [`HistoryScan`] keeps: every change seen so far with main revision
/// up to `bound` (the rest were dropped). `bound` starts at the scan's `to` and only
/// falls.
#[derive(Debug)]
struct Selection {
    bound: i64,
    max_events: usize,
    events: BTreeMap<Revision, Event>,
}

impl HistoryScan {
    /// The revisions the read covers: `from` (at least 1) and `to` (clamped to the
    /// newest visible revision).
    pub fn revisions(&self) -> (i64, i64) {
        (self.from, self.selected.bound)
    }

    /// The chunk read: every change up to its `last_revision`.
    pub fn finish(self) -> HistoryChunk {
        HistoryChunk {
            events: self.selected.events.into_values().collect(),
            last_revision: self.selected.bound,
        }
    }
}

impl Selection {
    /// Keeps `c` if it is at or below the bound, then lowers the bound past whole
    /// revisions until at most `max_events` remain (or one revision does). False once
    /// `c` is past the bound: so are the key's later changes.
    fn offer(&mut self, c: Change<'_>) -> bool {
        let rev = c.revision();
        if rev.main > self.bound {
            return false;
        }
        self.events.insert(rev, c.event());
        while self.events.len() > self.max_events {
            let first = self.events.first_key_value().map(|(r, _)| r.main);
            let last = self.events.last_key_value().map(|(r, _)| r.main);
            let (Some(first), Some(last)) = (first, last) else {
                break;
            };
            if first == last {
                // One revision over the limit: a chunk always ends on a whole one.
                self.bound = last;
                break;
            }
            while self
                .events
                .last_key_value()
                .is_some_and(|(r, _)| r.main == last)
            {
                self.events.pop_last();
            }
            self.bound = last - 1;
        }
        true
    }
}

/// The outcome of one applied transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub response: TxnResponse,
    /// The changes to persist and publish, `None` when the txn wrote nothing (and so
    /// took no revision).
    pub batch: Option<CommittedBatch>,
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc::new()
    }
}

impl Mvcc {
    /// An empty store at revision 1, as etcd's.
    pub fn new() -> Mvcc {
        Mvcc {
            index: Index::default(),
            current: 1,
            compacted: 0,
            sweep: None,
        }
    }

    /// Rebuilds a store from a checkpoint's parts. Entries the compaction at
    /// `compacted` drops are dropped now: a checkpoint taken while a compaction was
    /// still sweeping holds some.
    pub fn from_parts(mut index: Index, current: i64, compacted: i64) -> Mvcc {
        assert!(
            compacted <= current,
            "compacted {compacted} > current {current}"
        );
        if compacted > 0 {
            index.compact(compacted);
        }
        Mvcc {
            index,
            current,
            compacted,
            sweep: None,
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Revision of the last applied write (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.current
    }

    /// Oldest readable revision (0 before the first compaction).
    pub fn compacted_revision(&self) -> i64 {
        self.compacted
    }

    /// Serves a range as of `visible` (the newest revision the caller may see, at most
    /// the current one): `req.revision` 0 reads at `visible`.
    pub fn range(&self, req: &RangeRequest, visible: i64) -> Result<RangeResponse, RequestError> {
        assert!(
            visible <= self.current,
            "visible {visible} > current {}",
            self.current
        );
        check_span(&req.key, &req.range_end)?;
        let at = self.check_read_revision(req.revision, visible)?;
        Ok(self.range_at(req, at, visible))
    }

    fn check_read_revision(&self, revision: i64, visible: i64) -> Result<i64, RequestError> {
        let at = if revision <= 0 { visible } else { revision };
        if at > visible {
            return Err(RequestError::FutureRevision {
                requested: at,
                current: visible,
            });
        }
        if at < self.compacted {
            return Err(RequestError::Compacted {
                requested: at,
                compacted: self.compacted,
            });
        }
        Ok(at)
    }

    fn range_at(&self, req: &RangeRequest, at: i64, header_revision: i64) -> RangeResponse {
        let span = KeySpan::new(&req.key, &req.range_end);
        let limit = if req.limit > 0 {
            req.limit as usize
        } else {
            usize::MAX
        };
        let mut resp = RangeResponse {
            header_revision,
            ..RangeResponse::default()
        };
        self.index.for_each_live(&span, at, |mut kv| {
            resp.count += 1;
            if req.count_only {
                return true;
            }
            if resp.kvs.len() < limit {
                if req.keys_only {
                    kv.value = Bytes::from(&[][..]);
                }
                resp.kvs.push(kv);
            }
            true
        });
        resp.more = (resp.count as usize) > resp.kvs.len() && !req.count_only;
        resp
    }

    /// Applies one transaction at revision `current + 1` if it writes. On an error
    /// nothing changed.
    pub fn apply(&mut self, txn: &TxnRequest) -> Result<Applied, RequestError> {
        self.apply_with(txn, TxnLimits::Client)
    }

    /// [`Mvcc::apply`] with a choice of request limits: the store's own txns (a lease
    /// revocation deleting every attached key in one revision) are not client requests.
    pub fn apply_with(
        &mut self,
        txn: &TxnRequest,
        limits: TxnLimits,
    ) -> Result<Applied, RequestError> {
        self.apply_checked(txn, limits, &[])
    }

    /// [`Mvcc::apply_with`], refusing the txn with `LeaseNotFound` if the branch its
    /// compares choose puts with one of `unknown_leases` (etcd checks the leases of the
    /// branch taken only).
    pub fn apply_checked(
        &mut self,
        txn: &TxnRequest,
        limits: TxnLimits,
        unknown_leases: &[i64],
    ) -> Result<Applied, RequestError> {
        self.check_txn(txn, limits)?;
        // Every compare on the path, nested txns' included, against the state before
        // the txn: pre-order, one outcome per txn taken.
        let mut path = Vec::new();
        self.txn_path(txn, &mut path);
        if !unknown_leases.is_empty()
            && let Some(lease) = path_leases(txn, &mut path.iter().copied())
                .into_iter()
                .find(|l| unknown_leases.contains(l))
        {
            return Err(RequestError::LeaseNotFound(lease));
        }
        let main = self.current + 1;
        let mut run = TxnRun {
            main,
            events: Vec::new(),
            touched: Vec::new(),
            payload_bytes: REVISION_HEADER_BYTES,
        };
        let (succeeded, mut responses) =
            match self.apply_path(txn, &mut path.iter().copied(), &mut run) {
                Ok(applied) => applied,
                Err(e) => {
                    self.index.rollback(&run.touched, main);
                    return Err(e);
                }
            };
        let wrote = !run.events.is_empty();
        let header_revision = if wrote { main } else { self.current };
        set_header_revisions(&mut responses, header_revision);
        if wrote {
            self.current = main;
        }
        let batch = wrote.then_some(CommittedBatch {
            revision: main,
            events: run.events,
        });
        Ok(Applied {
            response: TxnResponse {
                header_revision,
                succeeded,
                responses,
            },
            batch,
        })
    }

    /// Appends the outcome of `txn`'s compares to `path`, then those of the nested txns
    /// of the branch they choose, in order.
    fn txn_path(&self, txn: &TxnRequest, path: &mut Vec<bool>) {
        let succeeded = txn.compare.iter().all(|c| self.compare_holds(c));
        path.push(succeeded);
        for op in branch(txn, succeeded) {
            if let RequestOp::Txn(nested) = op {
                self.txn_path(nested, path);
            }
        }
    }

    /// Runs the branch of `txn` that `path` (from [`Mvcc::txn_path`]) chose, nested
    /// txns included; returns which branch and its responses.
    fn apply_path(
        &mut self,
        txn: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
        run: &mut TxnRun,
    ) -> Result<(bool, Vec<ResponseOp>), RequestError> {
        let succeeded = path.next().expect("one outcome per txn on the path");
        let ops = branch(txn, succeeded);
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let r = match op {
                RequestOp::Txn(nested) => {
                    let (succeeded, responses) = self.apply_path(nested, path, run)?;
                    ResponseOp::Txn(TxnResponse {
                        header_revision: 0,
                        succeeded,
                        responses,
                    })
                }
                op => self.apply_op(op, run)?,
            };
            responses.push(r);
        }
        Ok((succeeded, responses))
    }

    fn apply_op(&mut self, op: &RequestOp, run: &mut TxnRun) -> Result<ResponseOp, RequestError> {
        match op {
            RequestOp::Txn(_) => unreachable!("nested txns are run by apply_path"),
            // Reads inside a txn see the txn's earlier writes, as etcd's.
            RequestOp::Range(r) => {
                let at = if r.revision > 0 { r.revision } else { run.main };
                Ok(ResponseOp::Range(self.range_at(r, at, 0)))
            }
            RequestOp::Put(p) => {
                run.take_room(
                    1,
                    change_payload_bytes(EventKind::Put, p.key.len(), p.value.len()),
                )?;
                let prev = self.index.get(&p.key, run.main);
                let rev = Revision {
                    main: run.main,
                    sub: run.events.len() as i64,
                };
                let kv = self
                    .index
                    .put(&p.key, rev, Bytes::from(&p.value[..]), p.lease);
                run.touched.push(kv.key.clone());
                let prev_kv = if p.prev_kv { prev.clone() } else { None };
                let event_prev = self.before_txn(&p.key, prev, run.main);
                run.events.push(Event {
                    kind: EventKind::Put,
                    kv,
                    prev_kv: event_prev,
                });
                Ok(ResponseOp::Put(PutResponse {
                    header_revision: 0,
                    prev_kv,
                }))
            }
            RequestOp::DeleteRange(d) => {
                let span = KeySpan::new(&d.key, &d.range_end);
                let mut live = Vec::new();
                self.index.for_each_live(&span, run.main, |kv| {
                    live.push(kv);
                    live.len() <= MAX_CHANGES_PER_REVISION
                });
                let bytes = live
                    .iter()
                    .map(|kv| change_payload_bytes(EventKind::Delete, kv.key.len(), 0))
                    .sum();
                run.take_room(live.len(), bytes)?;
                let deleted = live.len() as i64;
                for prev in &live {
                    let rev = Revision {
                        main: run.main,
                        sub: run.events.len() as i64,
                    };
                    assert!(self.index.delete(&prev.key, rev), "live key deletes");
                    run.touched.push(prev.key.clone());
                    let kv = tombstone_kv(prev.key.clone(), run.main);
                    let event_prev = self.before_txn(&prev.key, Some(prev.clone()), run.main);
                    run.events.push(Event {
                        kind: EventKind::Delete,
                        kv,
                        prev_kv: event_prev,
                    });
                }
                let prev_kvs = if d.prev_kv { live } else { Vec::new() };
                Ok(ResponseOp::DeleteRange(DeleteRangeResponse {
                    header_revision: 0,
                    deleted,
                    prev_kvs,
                }))
            }
        }
    }

    /// An event's `prev_kv`: the key's value before the txn's revision `main`, as etcd
    /// reads it (at `mod_revision - 1`), not a change earlier in the same txn. `live`
    /// is the key's value within the txn just before this change.
    fn before_txn(&self, key: &[u8], live: Option<KeyValue>, main: i64) -> Option<KeyValue> {
        match live {
            Some(kv) if kv.mod_revision == main => self.index.get(key, main - 1),
            live => live,
        }
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let span = KeySpan::new(&c.key, &c.range_end);
        let (mut any, mut holds) = (false, true);
        self.index.for_each_live(&span, self.current, |kv| {
            any = true;
            holds = compare_kv(c, Some(&kv));
            holds
        });
        if any {
            return holds;
        }
        // etcd: a value compare on a missing key always fails.
        !matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, None)
    }

    /// etcd's request checks: sizes, op counts, spans, range revisions, duplicate keys.
    fn check_txn(&self, txn: &TxnRequest, limits: TxnLimits) -> Result<(), RequestError> {
        if limits == TxnLimits::Client {
            check_request_limits(txn)?;
        }
        self.check_spans_and_keys(txn)
    }

    fn check_spans_and_keys(&self, txn: &TxnRequest) -> Result<(), RequestError> {
        self.check_spans(txn)?;
        check_intervals(&txn.success)?;
        check_intervals(&txn.failure)?;
        Ok(())
    }

    fn check_spans(&self, txn: &TxnRequest) -> Result<(), RequestError> {
        for c in &txn.compare {
            check_span(&c.key, &c.range_end)?;
        }
        for op in txn.success.iter().chain(&txn.failure) {
            match op {
                RequestOp::Range(r) => {
                    check_span(&r.key, &r.range_end)?;
                    self.check_read_revision(r.revision, self.current)?;
                }
                RequestOp::Put(p) => check_span(&p.key, &[])?,
                RequestOp::DeleteRange(d) => check_span(&d.key, &d.range_end)?,
                RequestOp::Txn(nested) => self.check_spans(nested)?,
            }
        }
        Ok(())
    }

    /// The changes in `key..range_end` with revisions in `[from, to]`, in revision
    /// order, cut at a whole revision so that at most `max_events` are returned (more
    /// only when the first revision alone has more changes). `to` is clamped to
    /// `visible`. Memory is bounded by the chunk, not by the history scanned.
    ///
    /// Errors: `from` below the compacted revision is `Compacted` (its changes are gone).
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        to: i64,
        visible: i64,
        max_events: usize,
    ) -> Result<HistoryChunk, RequestError> {
        let mut scan = self.history_scan(key, range_end, from, to, visible, max_events)?;
        while !self.history_step(&mut scan, usize::MAX)? {}
        Ok(scan.finish())
    }

    /// Starts a [`Mvcc::history`] read that [`Mvcc::history_step`] advances a bounded
    /// number of keys at a time, so that a caller sharing this `Mvcc` behind a lock can
    /// release it between steps.
    pub fn history_scan(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: i64,
        to: i64,
        visible: i64,
        max_events: usize,
    ) -> Result<HistoryScan, RequestError> {
        assert!(max_events > 0, "max_events must be positive");
        assert!(
            visible <= self.current,
            "visible {visible} > current {}",
            self.current
        );
        check_span(key, range_end)?;
        self.check_history_from(from)?;
        Ok(HistoryScan {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            from: from.max(1),
            after: None,
            selected: Selection {
                bound: to.min(visible),
                max_events,
                events: BTreeMap::new(),
            },
        })
    }

    /// Reads the next `max_keys` keys of `scan`; true once the span is done. The
    /// revisions read are durable and immutable, so steps may interleave with writes;
    /// a compaction past the scan's start in between fails it with `Compacted`.
    pub fn history_step(
        &self,
        scan: &mut HistoryScan,
        max_keys: usize,
    ) -> Result<bool, RequestError> {
        self.check_history_from(scan.from)?;
        let span = KeySpan::new(&scan.key, &scan.range_end);
        let resume = scan.after.take();
        let selected = &mut scan.selected;
        scan.after = self
            .index
            .scan_changes(&span, resume.as_deref(), max_keys, scan.from, |c| {
                selected.offer(c)
            });
        Ok(scan.after.is_none())
    }

    fn check_history_from(&self, from: i64) -> Result<(), RequestError> {
        if from < self.compacted {
            return Err(RequestError::Compacted {
                requested: from,
                compacted: self.compacted,
            });
        }
        Ok(())
    }

    /// Discards history before `at`: reads below it fail afterwards. etcd's errors: at
    /// or below the compacted revision is `Compacted`, above the current `FutureRevision`.
    pub fn compact(&mut self, at: i64) -> Result<(), RequestError> {
        self.check_compaction(at)?;
        self.index.compact(at);
        self.compacted = at;
        self.sweep = None;
        Ok(())
    }

    /// [`Mvcc::compact`] with the dropping left to [`Mvcc::sweep_step`]: reads below
    /// `at` are refused from now on, and reads at or after it see what they would after
    /// the whole compaction. A sweep still under way restarts at the new revision (a
    /// compaction at a later revision drops all an earlier one does).
    pub fn begin_compaction(&mut self, at: i64) -> Result<(), RequestError> {
        self.check_compaction(at)?;
        self.compacted = at;
        self.sweep = Some(Sweep { at, from: None });
        Ok(())
    }

    /// Drops compacted entries from up to `max_chunks` chunks of the index (of up to 256
    /// keys each). Returns true while the sweep has more to do.
    pub fn sweep_step(&mut self, max_chunks: usize) -> bool {
        let Some(sweep) = self.sweep.take() else {
            return false;
        };
        let next = self
            .index
            .compact_step(sweep.at, sweep.from.as_deref(), max_chunks);
        self.sweep = next.map(|from| Sweep {
            at: sweep.at,
            from: Some(from),
        });
        self.sweep.is_some()
    }

    /// True while a compaction's entries are still being dropped.
    pub fn sweeping(&self) -> bool {
        self.sweep.is_some()
    }

    fn check_compaction(&self, at: i64) -> Result<(), RequestError> {
        if at <= self.compacted {
            return Err(RequestError::Compacted {
                requested: at,
                compacted: self.compacted,
            });
        }
        if at > self.current {
            return Err(RequestError::FutureRevision {
                requested: at,
                current: self.current,
            });
        }
        Ok(())
    }

    /// Replays one persisted revision. Errors (not panics) on data that cannot be next,
    /// since it comes from disk.
    pub fn restore(&mut self, batch: &CommittedBatch) -> Result<(), String> {
        if batch.revision != self.current + 1 {
            return Err(format!(
                "revision {} follows {}",
                batch.revision, self.current
            ));
        }
        if batch.events.is_empty() || batch.events.len() > MAX_CHANGES_PER_REVISION {
            return Err(format!(
                "revision {} has {} changes",
                batch.revision,
                batch.events.len()
            ));
        }
        // A key may change more than once in one revision: nested txns may put a key
        // and then delete it (etcd allows it), in `sub` order.
        for (sub, ev) in batch.events.iter().enumerate() {
            if ev.kv.mod_revision != batch.revision {
                return Err(format!("revision {}: bad change {sub}", batch.revision));
            }
            let rev = Revision {
                main: batch.revision,
                sub: sub as i64,
            };
            let put = (ev.kind == EventKind::Put).then(|| PutEntry {
                create_revision: ev.kv.create_revision,
                version: ev.kv.version,
                value: ev.kv.value.clone(),
                lease: ev.kv.lease,
            });
            self.index.restore(ev.kv.key.clone(), Entry { rev, put });
        }
        self.current = batch.revision;
        Ok(())
    }
}

struct TxnRun {
    main: i64,
    events: Vec<Event>,
    touched: Vec<Bytes>,
    /// Bytes the revision's log record payload takes so far.
    payload_bytes: usize,
}

impl TxnRun {
    /// Checks that `n_more` changes taking `bytes_more` of log record still fit one
    /// revision, and counts them.
    fn take_room(&mut self, n_more: usize, bytes_more: usize) -> Result<(), RequestError> {
        let n_changes = self.events.len() + n_more;
        if n_changes > MAX_CHANGES_PER_REVISION {
            return Err(RequestError::TooManyChanges {
                n_changes,
                limit: MAX_CHANGES_PER_REVISION,
            });
        }
        let size_bytes = self.payload_bytes + bytes_more;
        if size_bytes > MAX_RECORD_PAYLOAD_BYTES {
            return Err(RequestError::RevisionTooLarge {
                size_bytes,
                limit_bytes: MAX_RECORD_PAYLOAD_BYTES,
            });
        }
        self.payload_bytes = size_bytes;
        Ok(())
    }
}

fn set_header_revisions(responses: &mut [ResponseOp], revision: i64) {
    for r in responses {
        match r {
            ResponseOp::Range(x) => x.header_revision = revision,
            ResponseOp::Put(x) => x.header_revision = revision,
            ResponseOp::DeleteRange(x) => x.header_revision = revision,
            ResponseOp::Txn(x) => {
                x.header_revision = revision;
                set_header_revisions(&mut x.responses, revision);
            }
        }
    }
}

fn compare_kv(c: &Compare, kv: Option<&KeyValue>) -> bool {
    let field = |f: fn(&KeyValue) -> i64| kv.map_or(0, f);
    let ord = match &c.target {
        CompareTarget::Value(v) => kv.map_or(&[][..], |kv| &kv.value[..]).cmp(&v[..]),
        CompareTarget::Version(n) => field(|kv| kv.version).cmp(n),
        CompareTarget::CreateRevision(n) => field(|kv| kv.create_revision).cmp(n),
        CompareTarget::ModRevision(n) => field(|kv| kv.mod_revision).cmp(n),
        CompareTarget::Lease(n) => field(|kv| kv.lease).cmp(n),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
        CompareResult::NotEqual => ord != Ordering::Equal,
    }
}

/// Which request limits a txn is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnLimits {
    /// etcd's client limits: [`MAX_TXN_OPS`] per branch, [`MAX_REQUEST_BYTES`].
    Client,
    /// The store's own txns: only [`MAX_CHANGES_PER_REVISION`] applies.
    Internal,
}

/// etcd's size and op-count limits on a client request.
fn check_request_limits(txn: &TxnRequest) -> Result<(), RequestError> {
    check_op_counts(txn)?;
    let size_bytes = txn_size_bytes(txn);
    if size_bytes > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge {
            size_bytes,
            limit_bytes: MAX_REQUEST_BYTES,
        });
    }
    Ok(())
}

/// [`MAX_TXN_OPS`] per compare list and branch, nested txns' included.
fn check_op_counts(txn: &TxnRequest) -> Result<(), RequestError> {
    for n_ops in [txn.compare.len(), txn.success.len(), txn.failure.len()] {
        if n_ops > MAX_TXN_OPS {
            return Err(RequestError::TooManyOps {
                n_ops,
                limit: MAX_TXN_OPS,
            });
        }
    }
    for op in txn.success.iter().chain(&txn.failure) {
        if let RequestOp::Txn(nested) = op {
            check_op_counts(nested)?;
        }
    }
    Ok(())
}

/// etcd's `checkRequestRange`-style span check, shared by every keyed operation.
pub fn check_span(key: &[u8], range_end: &[u8]) -> Result<(), RequestError> {
    if key.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    if !range_end.is_empty() && range_end != [0] && range_end < key {
        return Err(RequestError::RangeEndBeforeKey);
    }
    Ok(())
}

/// etcd's `checkIntervals` for one branch: no key put twice, no put inside a deleted range.
/// The branch of `txn` that its compares' outcome chooses.
fn branch(txn: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &txn.success
    } else {
        &txn.failure
    }
}

/// The leases the puts on `path` name (nested txns' taken branches included).
fn path_leases(txn: &TxnRequest, path: &mut impl Iterator<Item = bool>) -> Vec<i64> {
    let succeeded = path.next().expect("one outcome per txn on the path");
    let mut leases = Vec::new();
    for op in branch(txn, succeeded) {
        match op {
            RequestOp::Put(p) if p.lease != 0 => leases.push(p.lease),
            RequestOp::Txn(nested) => leases.extend(path_leases(nested, path)),
            _ => {}
        }
    }
    leases
}

/// Keys put and spans deleted by a branch, nested txns' included.
type Intervals<'a> = (HashSet<&'a [u8]>, Vec<KeySpan<'a>>);

/// etcd's `checkIntervals` over one branch: a key may be put once on any path through
/// it, and not inside a range the path deletes. The two branches of a nested txn are
/// exclusive, so both may put the same key.
fn check_intervals(ops: &[RequestOp]) -> Result<Intervals<'_>, RequestError> {
    let mut dels: Vec<KeySpan<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(KeySpan::new(&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let mut puts: HashSet<&[u8]> = HashSet::new();
    for op in ops {
        let RequestOp::Txn(nested) = op else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&nested.success)?;
        let (puts_else, dels_else) = check_intervals(&nested.failure)?;
        for &k in &puts_then {
            if puts.contains(k) || dels.iter().any(|d| d.contains(k)) {
                return Err(RequestError::DuplicateKey);
            }
            puts.insert(k);
        }
        for &k in &puts_else {
            let exclusive = puts_then.contains(k);
            if (puts.contains(k) && !exclusive) || dels.iter().any(|d| d.contains(k)) {
                return Err(RequestError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        if let RequestOp::Put(p) = op
            && (!puts.insert(&p.key[..]) || dels.iter().any(|d| d.contains(&p.key)))
        {
            return Err(RequestError::DuplicateKey);
        }
    }
    Ok((puts, dels))
}

/// The bytes a request is charged against [`MAX_REQUEST_BYTES`].
pub fn txn_size_bytes(txn: &TxnRequest) -> usize {
    let compares: usize = txn
        .compare
        .iter()
        .map(|c| {
            let operand = if let CompareTarget::Value(v) = &c.target {
                v.len()
            } else {
                8
            };
            c.key.len() + c.range_end.len() + operand + REQUEST_OP_OVERHEAD_BYTES
        })
        .sum();
    let op_size = |op: &RequestOp| match op {
        RequestOp::Range(r) => r.key.len() + r.range_end.len(),
        RequestOp::Put(p) => p.key.len() + p.value.len(),
        RequestOp::DeleteRange(d) => d.key.len() + d.range_end.len(),
        RequestOp::Txn(nested) => txn_size_bytes(nested),
    } + REQUEST_OP_OVERHEAD_BYTES;
    compares
        + txn
            .success
            .iter()
            .chain(&txn.failure)
            .map(op_size)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], value: &[u8]) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease: 0,
            prev_kv: false,
        })
    }
    fn del(key: &[u8], end: &[u8]) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            prev_kv: false,
        })
    }
    fn range(key: &[u8], end: &[u8], revision: i64) -> RequestOp {
        RequestOp::Range(RangeRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            revision,
            ..Default::default()
        })
    }
    fn ops(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            success,
            ..Default::default()
        }
    }

    fn nested(
        compare: Vec<Compare>,
        success: Vec<RequestOp>,
        failure: Vec<RequestOp>,
    ) -> RequestOp {
        RequestOp::Txn(TxnRequest {
            compare,
            success,
            failure,
        })
    }

    fn absent(key: &[u8]) -> Compare {
        Compare {
            key: key.to_vec(),
            range_end: Vec::new(),
            result: CompareResult::Equal,
            target: CompareTarget::Version(0),
        }
    }

    fn value(m: &Mvcc, key: &[u8]) -> Option<Vec<u8>> {
        m.index()
            .get(key, m.current_revision())
            .map(|kv| kv.value.to_vec())
    }

    /// A nested txn's compares see the state before the outer txn (as etcd's
    /// `compareToPath`), even after the outer txn's earlier ops wrote the key; its
    /// response nests; everything is one revision.
    #[test]
    fn nested_txns_compare_against_the_state_before_the_txn() {
        let mut m = Mvcc::new();
        let txn = TxnRequest {
            compare: vec![absent(b"a")],
            success: vec![
                put(b"a", b"1"),
                // "a" is absent before the txn, though the put above wrote it.
                nested(
                    vec![absent(b"a")],
                    vec![
                        put(b"then", b"x"),
                        nested(vec![absent(b"then")], vec![range(b"a", b"", 0)], vec![]),
                    ],
                    vec![put(b"else", b"y")],
                ),
            ],
            failure: vec![put(b"outer-else", b"z")],
        };
        let applied = m.apply(&txn).unwrap();
        let resp = applied.response;
        assert!(resp.succeeded);
        assert_eq!(resp.header_revision, 2);
        assert_eq!(
            applied.batch.unwrap().events.len(),
            2,
            "a and then, one revision"
        );
        let ResponseOp::Txn(inner) = &resp.responses[1] else {
            panic!("a nested response: {resp:?}");
        };
        assert!(inner.succeeded);
        assert_eq!(inner.header_revision, 2);
        let ResponseOp::Txn(innermost) = &inner.responses[1] else {
            panic!("a nested response: {inner:?}");
        };
        assert!(innermost.succeeded, "\"then\" was absent before the txn");
        let ResponseOp::Range(r) = &innermost.responses[0] else {
            panic!("a range: {innermost:?}");
        };
        assert_eq!(r.kvs[0].value[..], b"1"[..], "reads see the txn's writes");
        assert_eq!(value(&m, b"then"), Some(b"x".to_vec()));
        assert_eq!(value(&m, b"else"), None);

        // Run again: "a" exists now, so the outer failure branch runs alone.
        let resp = m.apply(&txn).unwrap().response;
        assert!(!resp.succeeded);
        assert_eq!(resp.responses.len(), 1);
        assert_eq!(value(&m, b"outer-else"), Some(b"z".to_vec()));
    }

    /// etcd lets a nested txn delete a key an earlier nested txn put, in one revision.
    /// Both events carry the value from before the txn as `prev_kv` (etcd reads it at
    /// `mod_revision - 1`), and the revision replays from the log: it once failed to,
    /// as a "bad change", which left the store unable to open.
    #[test]
    fn a_key_put_then_deleted_in_one_revision_replays() {
        let mut m = Mvcc::new();
        let first = m
            .apply(&ops(vec![put(b"k", b"old")]))
            .unwrap()
            .batch
            .unwrap();
        let txn = ops(vec![
            nested(vec![], vec![put(b"k", b"new")], vec![]),
            nested(vec![], vec![del(b"k", b"")], vec![]),
        ]);
        let applied = m.apply(&txn).unwrap();
        let batch = applied.batch.unwrap();
        assert_eq!(batch.revision, 3);
        let kinds: Vec<_> = batch.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Put, EventKind::Delete]);
        for e in &batch.events {
            let prev = e.prev_kv.as_ref().expect("k was live before the txn");
            assert_eq!((&prev.value[..], prev.mod_revision), (&b"old"[..], 2));
        }
        assert_eq!(value(&m, b"k"), None);

        // The same events read back from the index (a watch's catch-up).
        let mut scanned = Vec::new();
        m.index()
            .scan_changes(&KeySpan::One(b"k"), None, 1, 3, |c| {
                scanned.push(c.event());
                true
            });
        assert_eq!(scanned, batch.events);

        let mut replayed = Mvcc::new();
        replayed.restore(&first).unwrap();
        replayed.restore(&batch).unwrap();
        assert_eq!(replayed.index(), m.index());
    }

    /// etcd's `checkIntervals` across nested txns: a key put twice on one path, or put
    /// inside a range the path deletes, is a duplicate; the two branches of a nested
    /// txn exclude each other. Nested branches are held to the op limit too. A refused
    /// txn changes nothing.
    #[test]
    fn nested_txns_follow_etcds_duplicate_key_and_limit_rules() {
        let cases: Vec<(&str, TxnRequest, Option<RequestError>)> = vec![
            (
                "outer and nested put the same key",
                ops(vec![
                    put(b"k", b"1"),
                    nested(vec![], vec![put(b"k", b"2")], vec![]),
                ]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "both branches of one nested txn may put it",
                ops(vec![nested(
                    vec![],
                    vec![put(b"k", b"1")],
                    vec![put(b"k", b"2")],
                )]),
                None,
            ),
            (
                "two nested txns may not",
                ops(vec![
                    nested(vec![], vec![put(b"k", b"1")], vec![]),
                    nested(vec![], vec![], vec![put(b"k", b"2")]),
                ]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "a nested put inside the outer delete",
                ops(vec![
                    del(b"a", b"z"),
                    nested(vec![], vec![put(b"k", b"1")], vec![]),
                ]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "an outer put inside a nested delete",
                ops(vec![
                    nested(vec![], vec![del(b"a", b"z")], vec![]),
                    put(b"k", b"1"),
                ]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "the outer branches are separate",
                TxnRequest {
                    success: vec![put(b"k", b"1")],
                    failure: vec![nested(vec![], vec![put(b"k", b"2")], vec![])],
                    ..Default::default()
                },
                None,
            ),
            (
                "a nested branch over the op limit",
                ops(vec![nested(
                    vec![],
                    vec![range(b"a", b"", 0); MAX_TXN_OPS + 1],
                    vec![],
                )]),
                Some(RequestError::TooManyOps {
                    n_ops: MAX_TXN_OPS + 1,
                    limit: MAX_TXN_OPS,
                }),
            ),
            (
                "a bad span inside a nested txn",
                ops(vec![nested(vec![], vec![del(b"b", b"a")], vec![])]),
                Some(RequestError::RangeEndBeforeKey),
            ),
        ];
        for (name, txn, want) in cases {
            let mut m = Mvcc::new();
            m.apply(&ops(vec![put(b"k", b"0")])).unwrap();
            let before = m.index().clone();
            let got = m.apply(&txn).err();
            assert_eq!(got, want, "{name}");
            if want.is_some() {
                assert_eq!(m.index(), &before, "{name}: a refused txn changes nothing");
            }
        }
    }

    /// Only the leases on the path taken must exist, nested branches included.
    #[test]
    fn unknown_leases_count_on_the_path_taken_only() {
        let put_leased = |key: &[u8], lease| {
            RequestOp::Put(PutRequest {
                key: key.to_vec(),
                value: b"v".to_vec(),
                lease,
                prev_kv: false,
            })
        };
        let txn = ops(vec![nested(
            vec![absent(b"k")],
            vec![put_leased(b"a", 7)],
            vec![put_leased(b"b", 9)],
        )]);
        let mut m = Mvcc::new();
        assert_eq!(
            m.apply_checked(&txn, TxnLimits::Client, &[7]).err(),
            Some(RequestError::LeaseNotFound(7))
        );
        assert_eq!(m.current_revision(), 1);
        m.apply_checked(&txn, TxnLimits::Client, &[9]).unwrap();
        assert_eq!(value(&m, b"a"), Some(b"v".to_vec()));
    }

    /// etcd's request checks (etcdserver/api/v3rpc/key.go `checkTxnRequest`,
    /// `checkIntervals`; mvcc `ErrCompacted`/`ErrFutureRev`), one row per case, on a
    /// store at revision 4 compacted at 3.
    #[test]
    fn request_checks_match_etcd() {
        let big = vec![0u8; MAX_REQUEST_BYTES];
        let many = vec![range(b"a", b"", 0); MAX_TXN_OPS + 1];
        let cases: Vec<(&str, TxnRequest, Option<RequestError>)> = vec![
            (
                "empty key",
                ops(vec![put(b"", b"v")]),
                Some(RequestError::EmptyKey),
            ),
            (
                "range end before key",
                ops(vec![del(b"b", b"a")]),
                Some(RequestError::RangeEndBeforeKey),
            ),
            (
                "range end \\0 is to the end",
                ops(vec![del(b"b", b"\0")]),
                None,
            ),
            (
                "range end equal to key is empty",
                ops(vec![range(b"b", b"b", 0)]),
                None,
            ),
            (
                "too large",
                ops(vec![put(b"k", &big)]),
                Some(RequestError::TooLarge {
                    size_bytes: MAX_REQUEST_BYTES + 17,
                    limit_bytes: MAX_REQUEST_BYTES,
                }),
            ),
            (
                "too many ops",
                ops(many),
                Some(RequestError::TooManyOps {
                    n_ops: MAX_TXN_OPS + 1,
                    limit: MAX_TXN_OPS,
                }),
            ),
            (
                "max ops is fine",
                ops(vec![range(b"a", b"", 0); MAX_TXN_OPS]),
                None,
            ),
            (
                "same key put twice",
                ops(vec![put(b"a", b"1"), put(b"a", b"2")]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "put inside a deleted range",
                ops(vec![del(b"a", b"c"), put(b"b", b"1")]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "put before the delete counts too",
                ops(vec![put(b"b", b"1"), del(b"a", b"\0")]),
                Some(RequestError::DuplicateKey),
            ),
            (
                "overlapping deletes are allowed",
                ops(vec![del(b"a", b"c"), del(b"b", b"d")]),
                None,
            ),
            (
                "same key in then and else",
                TxnRequest {
                    success: vec![put(b"a", b"1")],
                    failure: vec![put(b"a", b"2")],
                    ..Default::default()
                },
                None,
            ),
            (
                "range at a compacted revision",
                ops(vec![range(b"a", b"", 2)]),
                Some(RequestError::Compacted {
                    requested: 2,
                    compacted: 3,
                }),
            ),
            (
                "range at the compacted revision",
                ops(vec![range(b"a", b"", 3)]),
                None,
            ),
            (
                "range at a future revision",
                ops(vec![range(b"a", b"", 5)]),
                Some(RequestError::FutureRevision {
                    requested: 5,
                    current: 4,
                }),
            ),
        ];
        for (name, txn, want) in cases {
            let mut m = store_at_4_compacted_at_3();
            let before = (m.current_revision(), m.index().clone());
            let got = m.apply(&txn).err();
            assert_eq!(got, want, "{name}");
            if want.is_some() {
                assert_eq!(
                    m.current_revision(),
                    before.0,
                    "{name}: a refused txn changes nothing"
                );
                assert_eq!(
                    format!("{:?}", m.index()),
                    format!("{:?}", before.1),
                    "{name}"
                );
            }
        }
    }

    fn store_at_4_compacted_at_3() -> Mvcc {
        let mut m = Mvcc::new();
        for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")] {
            m.apply(&ops(vec![put(k, v)])).unwrap();
        }
        m.compact(3).unwrap();
        m
    }

    /// etcd `applyCompare`: a missing key has version/revisions/lease 0, and a value
    /// compare on it fails whatever the operator.
    #[test]
    fn compare_on_missing_keys_follows_etcd() {
        let m = store_at_4_compacted_at_3();
        let cmp = |key: &[u8], result, target| Compare {
            key: key.to_vec(),
            range_end: vec![],
            result,
            target,
        };
        let cases = [
            (
                cmp(b"zz", CompareResult::Equal, CompareTarget::Version(0)),
                true,
            ),
            (
                cmp(
                    b"zz",
                    CompareResult::Equal,
                    CompareTarget::CreateRevision(0),
                ),
                true,
            ),
            (
                cmp(
                    b"zz",
                    CompareResult::NotEqual,
                    CompareTarget::Value(b"x".to_vec()),
                ),
                false,
            ),
            (
                cmp(b"zz", CompareResult::Equal, CompareTarget::Value(vec![])),
                false,
            ),
            (
                cmp(b"a", CompareResult::Equal, CompareTarget::Version(2)),
                true,
            ),
            (
                cmp(
                    b"a",
                    CompareResult::Greater,
                    CompareTarget::Value(b"2".to_vec()),
                ),
                true,
            ),
            (
                cmp(b"a", CompareResult::Equal, CompareTarget::CreateRevision(2)),
                true,
            ),
            (
                cmp(b"a", CompareResult::Less, CompareTarget::ModRevision(4)),
                false,
            ),
        ];
        for (c, want) in cases {
            assert_eq!(m.compare_holds(&c), want, "{c:?}");
        }
    }

    /// Generations: a delete closes one, the next put starts version 1 again.
    #[test]
    fn delete_closes_a_generation() {
        let mut m = Mvcc::new();
        m.apply(&ops(vec![put(b"k", b"1")])).unwrap(); // 2
        m.apply(&ops(vec![put(b"k", b"2")])).unwrap(); // 3
        m.apply(&ops(vec![del(b"k", b"")])).unwrap(); // 4
        m.apply(&ops(vec![put(b"k", b"3")])).unwrap(); // 5
        let kv = m.index().get(b"k", 5).unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
        assert_eq!(m.index().get(b"k", 4), None);
        assert_eq!(m.index().get(b"k", 3).unwrap().version, 2);
        // Deleting a missing key writes nothing and takes no revision.
        let applied = m.apply(&ops(vec![del(b"nope", b"")])).unwrap();
        assert_eq!((applied.batch, applied.response.header_revision), (None, 5));
    }

    /// A txn's reads see its own earlier writes (etcd's write txn reads at rev + 1).
    #[test]
    fn txn_reads_its_own_writes() {
        let mut m = Mvcc::new();
        let applied = m
            .apply(&ops(vec![put(b"a", b"1"), range(b"a", b"", 0)]))
            .unwrap();
        let ResponseOp::Range(r) = &applied.response.responses[1] else {
            panic!("range response")
        };
        assert_eq!((r.count, r.header_revision), (1, 2));
    }

    /// A txn that fails halfway (too many changes) is rolled back entirely.
    #[test]
    fn a_txn_that_fails_halfway_changes_nothing() {
        let mut m = Mvcc::new();
        m.apply(&ops(vec![put(b"a", b"x")])).unwrap();
        for chunk in 0..(MAX_CHANGES_PER_REVISION / MAX_TXN_OPS) {
            let puts = (0..MAX_TXN_OPS)
                .map(|i| put(format!("m{chunk:05}{i:03}").as_bytes(), b""))
                .collect();
            m.apply(&ops(puts)).unwrap();
        }
        let current = m.current_revision();
        // One change more than the bound: refused, and the put before the delete undone.
        let limit = MAX_CHANGES_PER_REVISION;
        let txn = ops(vec![put(b"a", b"y"), del(b"m", b"n")]);
        assert_eq!(
            m.apply(&txn).err(),
            Some(RequestError::TooManyChanges {
                n_changes: limit + 1,
                limit
            })
        );
        assert_eq!(m.current_revision(), current);
        assert_eq!(&m.index().get(b"a", current).unwrap().value[..], b"x");
        // Exactly the bound fits.
        let applied = m.apply(&ops(vec![del(b"m", b"n")])).unwrap();
        assert_eq!(applied.batch.map(|b| b.events.len()), Some(limit));
    }

    /// A delete whose tombstones would not fit one log record is refused, and nothing
    /// changes; one that just fits is written as one revision.
    #[test]
    fn a_revision_over_a_log_record_is_refused() {
        let mut m = Mvcc::new();
        let key_len = MAX_REQUEST_BYTES - 1024;
        let tombstone = change_payload_bytes(EventKind::Delete, key_len, 0);
        let fit = (MAX_RECORD_PAYLOAD_BYTES - REVISION_HEADER_BYTES) / tombstone;
        let key = |i: usize| {
            let mut k = vec![b'k'; key_len];
            k[key_len - 8..].copy_from_slice(format!("{i:08}").as_bytes());
            k
        };
        for i in 0..=fit {
            m.apply(&ops(vec![put(&key(i), b"")])).unwrap();
        }
        let current = m.current_revision();
        let all = del(b"k", b"l");
        assert_eq!(
            m.apply(&ops(vec![all.clone()])).err(),
            Some(RequestError::RevisionTooLarge {
                size_bytes: REVISION_HEADER_BYTES + (fit + 1) * tombstone,
                limit_bytes: MAX_RECORD_PAYLOAD_BYTES,
            })
        );
        assert_eq!(m.current_revision(), current);
        assert_eq!(
            m.range_at(
                &RangeRequest {
                    key: b"k".to_vec(),
                    range_end: b"l".to_vec(),
                    count_only: true,
                    ..Default::default()
                },
                current,
                0
            )
            .count,
            fit as i64 + 1
        );
        m.apply(&ops(vec![del(&key(fit), b"")])).unwrap();
        let applied = m.apply(&ops(vec![all])).unwrap();
        let batch = applied.batch.unwrap();
        assert_eq!(batch.events.len(), fit);
        assert!(crate::codec::revision_payload_bytes(&batch) <= MAX_RECORD_PAYLOAD_BYTES);
    }

    /// A store with interleaved single puts, multi-key txns and range deletes over 20
    /// keys (a fixed pseudo-random sequence).
    fn busy_store() -> Mvcc {
        let mut m = Mvcc::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let key = |i: u64| format!("k{i:02}").into_bytes();
        for _ in 0..300 {
            let op = match next(10) {
                0..=5 => vec![put(&key(next(20)), b"v")],
                6..=8 => {
                    let mut keys: Vec<u64> = (0..1 + next(5)).map(|_| next(20)).collect();
                    keys.sort_unstable();
                    keys.dedup();
                    keys.iter().map(|&k| put(&key(k), b"t")).collect()
                }
                _ => {
                    let a = next(20);
                    vec![del(&key(a), &key(a + 1 + next(4)))]
                }
            };
            m.apply(&ops(op)).unwrap();
        }
        m
    }

    /// What a history read from `from` with `max_events` must return, from the index's
    /// full listing: every change sorted by revision, cut after the last whole revision
    /// that fits (or after the first revision if it alone does not).
    fn expected_chunk(m: &Mvcc, from: i64, max_events: usize) -> (Vec<(Revision, Bytes)>, i64) {
        let mut all: Vec<(Revision, Bytes)> = m
            .index()
            .iter()
            .flat_map(|(k, h)| h.iter().map(move |e| (e.rev, k.clone())))
            .filter(|(rev, _)| rev.main >= from)
            .collect();
        all.sort();
        if all.len() <= max_events {
            return (all, m.current_revision());
        }
        let mut cut = all[max_events].0.main - 1;
        if all.iter().take_while(|(r, _)| r.main <= cut).count() == 0 {
            cut = all[0].0.main;
        }
        all.retain(|(r, _)| r.main <= cut);
        (all, cut)
    }

    /// History chunks hold whole revisions in order, as many as fit, and reading a
    /// step of a few keys at a time returns the same chunk as one pass.
    #[test]
    fn history_chunks_are_whole_revisions_in_order_however_they_are_stepped() {
        let m = busy_store();
        let now = m.current_revision();
        for from in [1, 2, 50, 150, now] {
            for max_events in [1, 2, 7, 64, 10_000] {
                let chunk = m.history(b"k", b"l", from, now, now, max_events).unwrap();
                let got_keys: Vec<_> = chunk
                    .events
                    .iter()
                    .map(|e| (e.kv.mod_revision, e.kv.key.clone()))
                    .collect();
                let (want, last) = expected_chunk(&m, from, max_events);
                let want_keys: Vec<_> = want.iter().map(|(r, k)| (r.main, k.clone())).collect();
                assert_eq!(got_keys, want_keys, "from {from}, max {max_events}");
                assert_eq!(chunk.last_revision, last, "from {from}, max {max_events}");
                for max_keys in [1, 3, 7] {
                    let mut scan = m
                        .history_scan(b"k", b"l", from, now, now, max_events)
                        .unwrap();
                    let mut steps = 0;
                    while !m.history_step(&mut scan, max_keys).unwrap() {
                        steps += 1;
                    }
                    let n_keys = m.index().n_keys();
                    assert_eq!(
                        steps,
                        n_keys.div_ceil(max_keys) - 1,
                        "{max_keys} keys a step"
                    );
                    assert_eq!(scan.finish(), chunk, "from {from}, {max_keys} keys a step");
                }
            }
        }
    }

    /// A single revision larger than the chunk is returned whole.
    #[test]
    fn a_revision_larger_than_the_chunk_comes_whole() {
        let mut m = Mvcc::new();
        m.apply(&ops((0..10).map(|i| put(&[b'a', i], b"v")).collect()))
            .unwrap();
        m.apply(&ops(vec![put(b"b", b"v")])).unwrap();
        let chunk = m.history(b"a", b"\0", 1, 3, 3, 4).unwrap();
        assert_eq!((chunk.events.len(), chunk.last_revision), (10, 2));
        let rest = m.history(b"a", b"\0", 3, 3, 3, 4).unwrap();
        assert_eq!((rest.events.len(), rest.last_revision), (1, 3));
    }

    /// A compaction between two steps past the scan's start fails the scan.
    #[test]
    fn a_compaction_between_steps_fails_the_scan() {
        let mut m = busy_store();
        let now = m.current_revision();
        let mut scan = m.history_scan(b"k", b"l", 10, now, now, 10_000).unwrap();
        assert!(!m.history_step(&mut scan, 2).unwrap());
        m.compact(20).unwrap();
        assert_eq!(
            m.history_step(&mut scan, 2),
            Err(RequestError::Compacted {
                requested: 10,
                compacted: 20
            })
        );
    }
}
