//! The MVCC model and the operation interpreter shared by the model-based tests: the
//! proptest suite (`tests/model.rs`), the bounded fuzz run on stable
//! (`tests/fuzz_model.rs`) and the libFuzzer target (`fuzz/fuzz_targets/model.rs`).
//!
//! [`run`] plays a sequence of [`Op`]s, crashes and restarts included, against the
//! engine over a [`MemDir`] and against [`Model`], a naive model of etcd's MVCC (a full
//! `BTreeMap` per revision). Every response, every error and, after each restart, the
//! whole retained history must match; every commit-hook batch must match the model's
//! change. Txns nest up to [`NESTING_MAX`] deep; the model works out etcd's
//! duplicate-key rule path by path through the nested branches, not the way the
//! engine does. [`ops_from_bytes`] turns fuzzer input into operations.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bosun_store_engine::*;

type State = BTreeMap<Vec<u8>, KeyValue>;
/// A changed key and its new value (`None`: deleted).
type Change = (Vec<u8>, Option<KeyValue>);

pub const KEYS: [&[u8]; 6] = [b"a", b"a/1", b"a/2", b"b", b"c", b"\x00"];
pub const RANGE_ENDS: [&[u8]; 6] = [b"", b"\x00", b"a/", b"a0", b"b", b"z"];

/// etcd semantics, written the slow and obvious way.
pub struct Model {
    /// `states[r - 1]` is the state at revision `r`.
    states: Vec<State>,
    compacted: i64,
}

fn in_span(key: &[u8], k: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == k,
        [0] => key >= k,
        e => key >= k && key < e,
    }
}

fn check_span(k: &[u8], end: &[u8]) -> Result<(), RequestError> {
    if k.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    if !end.is_empty() && end != [0] && end < k {
        return Err(RequestError::RangeEndBeforeKey);
    }
    Ok(())
}

impl Model {
    fn current(&self) -> i64 {
        self.states.len() as i64
    }

    fn read_rev(&self, revision: i64) -> Result<i64, RequestError> {
        let at = if revision <= 0 {
            self.current()
        } else {
            revision
        };
        if at > self.current() {
            return Err(RequestError::FutureRevision {
                requested: at,
                current: self.current(),
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

    fn range_in(state: &State, r: &RangeRequest, header_revision: i64) -> RangeResponse {
        let all: Vec<&KeyValue> = state
            .values()
            .filter(|kv| in_span(&kv.key, &r.key, &r.range_end))
            .collect();
        let limit = if r.limit > 0 {
            r.limit as usize
        } else {
            usize::MAX
        };
        let kvs: Vec<KeyValue> = if r.count_only {
            vec![]
        } else {
            all.iter()
                .take(limit)
                .map(|kv| {
                    let mut kv = (*kv).clone();
                    if r.keys_only {
                        kv.value = Bytes::from(&[][..]);
                    }
                    kv
                })
                .collect()
        };
        RangeResponse {
            header_revision,
            more: !r.count_only && all.len() > kvs.len(),
            count: all.len() as i64,
            kvs,
        }
    }

    fn range(&self, r: &RangeRequest) -> Result<RangeResponse, RequestError> {
        check_span(&r.key, &r.range_end)?;
        let at = self.read_rev(r.revision)?;
        Ok(Self::range_in(
            &self.states[at as usize - 1],
            r,
            self.current(),
        ))
    }

    fn compare(state: &State, c: &Compare) -> bool {
        let kvs: Vec<&KeyValue> = state
            .values()
            .filter(|kv| in_span(&kv.key, &c.key, &c.range_end))
            .collect();
        let one = |kv: Option<&KeyValue>| {
            let ord = match &c.target {
                CompareTarget::Value(v) => match kv {
                    None => return false,
                    Some(kv) => kv.value[..].cmp(&v[..]),
                },
                CompareTarget::Version(n) => kv.map_or(0, |k| k.version).cmp(n),
                CompareTarget::CreateRevision(n) => kv.map_or(0, |k| k.create_revision).cmp(n),
                CompareTarget::ModRevision(n) => kv.map_or(0, |k| k.mod_revision).cmp(n),
                CompareTarget::Lease(n) => kv.map_or(0, |k| k.lease).cmp(n),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
                CompareResult::NotEqual => ord.is_ne(),
            }
        };
        if kvs.is_empty() {
            one(None)
        } else {
            kvs.into_iter().all(|kv| one(Some(kv)))
        }
    }

    fn check_txn(&self, t: &TxnRequest) -> Result<(), RequestError> {
        // As etcd's kvServer.Txn: every op's own checks, both branches, nested txns'
        // included, then the duplicate-key checks.
        self.check_spans(t)?;
        for ops in [&t.success, &t.failure] {
            for path in paths(ops, &Vec::new()) {
                // A key put twice on one path through the branch, or put inside a
                // range a delete on the path reaches, is a duplicate. The two branches
                // of a nested txn are never on one path.
                for (i, (at, p)) in path.puts.iter().enumerate() {
                    let dup = path.puts[..i].iter().any(|(_, q)| q == p);
                    let deleted = path
                        .dels
                        .iter()
                        .any(|(del, (k, end))| in_span(p, k, end) && delete_reaches(del, at));
                    if dup || deleted {
                        return Err(RequestError::DuplicateKey);
                    }
                }
            }
        }
        Ok(())
    }

    fn check_spans(&self, t: &TxnRequest) -> Result<(), RequestError> {
        for c in &t.compare {
            check_span(&c.key, &c.range_end)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match op {
                RequestOp::Range(r) => {
                    check_span(&r.key, &r.range_end)?;
                    self.read_rev(r.revision)?;
                }
                RequestOp::Put(p) => check_span(&p.key, b"")?,
                RequestOp::DeleteRange(d) => check_span(&d.key, &d.range_end)?,
                RequestOp::Txn(nested) => self.check_spans(nested)?,
            }
        }
        Ok(())
    }

    /// Every compare of the txn and of the nested txns it reaches, all against the
    /// state before the txn (etcd's semantics): whether each took its success branch,
    /// in the order the txns are met.
    fn outcomes(state: &State, t: &TxnRequest, out: &mut Vec<bool>) {
        let succeeded = t.compare.iter().all(|c| Self::compare(state, c));
        out.push(succeeded);
        for op in if succeeded { &t.success } else { &t.failure } {
            if let RequestOp::Txn(nested) = op {
                Self::outcomes(state, nested, out);
            }
        }
    }

    /// Returns the response and the changed keys' (key, kv-or-tombstone) in order.
    fn txn(&mut self, t: &TxnRequest) -> Result<(TxnResponse, Vec<Change>), RequestError> {
        self.check_txn(t)?;
        let cur = self.states.last().unwrap();
        let mut outcomes = Vec::new();
        Self::outcomes(cur, t, &mut outcomes);
        let mut run = Run {
            rev: self.current() + 1,
            work: cur.clone(),
            changes: Vec::new(),
        };
        let mut outcomes = outcomes.into_iter();
        let (succeeded, mut responses) = self.run_txn(t, &mut outcomes, &mut run);
        let header = if run.changes.is_empty() {
            self.current()
        } else {
            run.rev
        };
        set_headers(&mut responses, header);
        if !run.changes.is_empty() {
            self.states.push(run.work);
        }
        Ok((
            TxnResponse {
                header_revision: header,
                succeeded,
                responses,
            },
            run.changes,
        ))
    }

    /// Runs the branch `outcomes` chose, nested txns in turn; returns whether it was
    /// the success branch and its responses (headers filled in later).
    fn run_txn(
        &self,
        t: &TxnRequest,
        outcomes: &mut impl Iterator<Item = bool>,
        run: &mut Run,
    ) -> (bool, Vec<ResponseOp>) {
        let succeeded = outcomes.next().expect("an outcome per txn reached");
        let mut responses = Vec::new();
        for op in if succeeded { &t.success } else { &t.failure } {
            responses.push(match op {
                RequestOp::Range(r) => {
                    let state = if r.revision > 0 {
                        &self.states[r.revision as usize - 1]
                    } else {
                        &run.work
                    };
                    ResponseOp::Range(Self::range_in(state, r, 0))
                }
                RequestOp::Put(p) => {
                    let prev = run.work.get(&p.key).cloned();
                    let rev = run.rev;
                    let kv = KeyValue {
                        key: Bytes::from(&p.key[..]),
                        create_revision: prev.as_ref().map_or(rev, |k| k.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |k| k.version + 1),
                        value: Bytes::from(&p.value[..]),
                        lease: p.lease,
                    };
                    run.work.insert(p.key.clone(), kv.clone());
                    run.changes.push((p.key.clone(), Some(kv)));
                    ResponseOp::Put(PutResponse {
                        header_revision: 0,
                        prev_kv: if p.prev_kv { prev } else { None },
                    })
                }
                RequestOp::DeleteRange(d) => {
                    let gone: Vec<KeyValue> = run
                        .work
                        .values()
                        .filter(|kv| in_span(&kv.key, &d.key, &d.range_end))
                        .cloned()
                        .collect();
                    for kv in &gone {
                        run.work.remove(&kv.key[..]);
                        run.changes.push((kv.key.to_vec(), None));
                    }
                    let deleted = gone.len() as i64;
                    ResponseOp::DeleteRange(DeleteRangeResponse {
                        header_revision: 0,
                        deleted,
                        prev_kvs: if d.prev_kv { gone } else { vec![] },
                    })
                }
                RequestOp::Txn(nested) => {
                    let (succeeded, responses) = self.run_txn(nested, outcomes, run);
                    ResponseOp::Txn(TxnResponse {
                        header_revision: 0,
                        succeeded,
                        responses,
                    })
                }
            });
        }
        (succeeded, responses)
    }

    fn compact(&mut self, rev: i64) -> Result<i64, RequestError> {
        if rev <= self.compacted {
            return Err(RequestError::Compacted {
                requested: rev,
                compacted: self.compacted,
            });
        }
        if rev > self.current() {
            return Err(RequestError::FutureRevision {
                requested: rev,
                current: self.current(),
            });
        }
        self.compacted = rev;
        Ok(self.current())
    }
}

/// One write txn in progress: its revision, the state so far, its changes in order.
struct Run {
    rev: i64,
    work: State,
    changes: Vec<Change>,
}

/// Every response of a txn, nested ones' included, carries the txn's revision.
fn set_headers(responses: &mut [ResponseOp], header: i64) {
    for r in responses {
        match r {
            ResponseOp::Range(x) => x.header_revision = header,
            ResponseOp::Put(x) => x.header_revision = header,
            ResponseOp::DeleteRange(x) => x.header_revision = header,
            ResponseOp::Txn(x) => {
                x.header_revision = header;
                set_headers(&mut x.responses, header);
            }
        }
    }
}

/// Where an op sits on a path through a branch: its index in each op list from the
/// branch down to its own.
type Position = Vec<usize>;

/// A deleted span: key and range end.
type Span = (Vec<u8>, Vec<u8>);

/// The keys one path through a branch puts and the spans it deletes, with where.
#[derive(Clone, Default)]
struct Path {
    puts: Vec<(Position, Vec<u8>)>,
    dels: Vec<(Position, Span)>,
}

/// Every path through `ops`: one per choice of branch at each nested txn reached.
fn paths(ops: &[RequestOp], at: &Position) -> Vec<Path> {
    let mut out = vec![Path::default()];
    for (i, op) in ops.iter().enumerate() {
        let mut pos = at.clone();
        pos.push(i);
        match op {
            RequestOp::Put(p) => out
                .iter_mut()
                .for_each(|path| path.puts.push((pos.clone(), p.key.clone()))),
            RequestOp::DeleteRange(d) => out.iter_mut().for_each(|path| {
                path.dels
                    .push((pos.clone(), (d.key.clone(), d.range_end.clone())))
            }),
            RequestOp::Range(_) => {}
            RequestOp::Txn(nested) => {
                let inner: Vec<Path> = paths(&nested.success, &pos)
                    .into_iter()
                    .chain(paths(&nested.failure, &pos))
                    .collect();
                out = out
                    .iter()
                    .flat_map(|path| {
                        inner.iter().map(move |i| {
                            let mut p = path.clone();
                            p.puts.extend(i.puts.iter().cloned());
                            p.dels.extend(i.dels.iter().cloned());
                            p
                        })
                    })
                    .collect();
            }
        }
    }
    out
}

/// Whether a delete at `del` reaches a put at `put` on the same path, as etcd's
/// `checkIntervals` decides: within the op list where the two first part, a delete made
/// there or a put made there meet whatever the order; when both sit in nested txns
/// there, the delete reaches only puts of the nested txns after its own.
fn delete_reaches(del: &Position, put: &Position) -> bool {
    let common = del.iter().zip(put).take_while(|(a, b)| a == b).count();
    if del.len() == common + 1 || put.len() == common + 1 {
        return true;
    }
    del[common] < put[common]
}

#[derive(Clone, Debug)]
pub enum Op {
    Range {
        key: usize,
        end: usize,
        rev: u16,
        limit: u8,
        keys_only: bool,
        count_only: bool,
    },
    Put {
        key: usize,
        value: u8,
        lease: u8,
        prev_kv: bool,
    },
    Delete {
        key: usize,
        end: usize,
        prev_kv: bool,
    },
    Txn {
        compares: Vec<(usize, usize, u8, u8, u8)>,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
    Compact {
        rev: u16,
    },
    Checkpoint,
    /// Crash at this moment (keeping `torn` unsynced bytes) and reopen.
    Crash {
        torn: u8,
    },
}

#[derive(Clone, Debug)]
pub enum TxnOp {
    Range {
        key: usize,
        end: usize,
    },
    Put {
        key: usize,
        value: u8,
    },
    Delete {
        key: usize,
        end: usize,
    },
    /// A nested txn.
    Txn {
        compares: Vec<(usize, usize, u8, u8, u8)>,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
}

fn build_compare((key, end, result, target, n): (usize, usize, u8, u8, u8)) -> Compare {
    let result = [
        CompareResult::Equal,
        CompareResult::Greater,
        CompareResult::Less,
        CompareResult::NotEqual,
    ][result as usize];
    let n = i64::from(n);
    let target = match target {
        0 => CompareTarget::Value(vec![b'0' + n as u8]),
        1 => CompareTarget::Version(n),
        2 => CompareTarget::CreateRevision(n),
        3 => CompareTarget::ModRevision(n * 2),
        _ => CompareTarget::Lease(n % 2),
    };
    Compare {
        key: KEYS[key].to_vec(),
        range_end: RANGE_ENDS[end].to_vec(),
        result,
        target,
    }
}

fn build_txn_op(op: &TxnOp) -> RequestOp {
    match *op {
        TxnOp::Txn {
            ref compares,
            ref success,
            ref failure,
        } => RequestOp::Txn(TxnRequest {
            compare: compares.iter().copied().map(build_compare).collect(),
            success: success.iter().map(build_txn_op).collect(),
            failure: failure.iter().map(build_txn_op).collect(),
        }),
        TxnOp::Range { key, end } => RequestOp::Range(RangeRequest {
            key: KEYS[key].to_vec(),
            range_end: RANGE_ENDS[end].to_vec(),
            ..Default::default()
        }),
        TxnOp::Put { key, value } => RequestOp::Put(PutRequest {
            key: KEYS[key].to_vec(),
            value: vec![b'0' + value % 4],
            lease: 0,
            prev_kv: true,
        }),
        TxnOp::Delete { key, end } => RequestOp::DeleteRange(DeleteRangeRequest {
            key: KEYS[key].to_vec(),
            range_end: RANGE_ENDS[end].to_vec(),
            prev_kv: true,
        }),
    }
}

fn config() -> EngineConfig {
    // Tiny segments, frequent background checkpoints and garbage collection after
    // compactions exercise rolls and removal.
    EngineConfig {
        segment_bytes_max: 300,
        checkpoint_after_bytes: 2000,
        gc_min_dead_bytes: 400,
        ..EngineConfig::default()
    }
}

type Seen = Arc<Mutex<Vec<CommittedBatch>>>;

fn open(dir: &MemDir, seen: &Seen) -> Engine<MemDir> {
    let engine = Engine::open(dir.clone(), config()).expect("reopen");
    let seen = seen.clone();
    engine.subscribe(Box::new(move |b| seen.lock().unwrap().push(b.clone())));
    engine
}

/// Every retained revision reads the same from the engine as from the model.
fn check_history(engine: &Engine<MemDir>, model: &Model) {
    assert_eq!(engine.current_revision(), model.current());
    assert_eq!(engine.compacted_revision(), model.compacted);
    for rev in model.compacted.max(1)..=model.current() {
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: rev,
            ..Default::default()
        };
        assert_eq!(
            engine.range(&all).map_err(|e| e.to_string()),
            model.range(&all).map_err(|e| e.to_string()),
            "history at {rev}"
        );
    }
}

fn check_hook(seen: &Seen, model: &Model, changes: &[Change]) {
    let batch = seen
        .lock()
        .unwrap()
        .pop()
        .expect("a committed write reaches the hook");
    assert_eq!(batch.revision, model.current());
    let prev_state = &model.states[model.states.len() - 2];
    assert_eq!(batch.events.len(), changes.len());
    for (ev, (key, kv)) in batch.events.iter().zip(changes) {
        assert_eq!(&ev.kv.key[..], &key[..]);
        assert_eq!(ev.prev_kv.as_ref(), prev_state.get(key));
        match kv {
            Some(kv) => assert_eq!((&ev.kv, ev.kind), (kv, EventKind::Put)),
            None => assert_eq!(
                (ev.kv.mod_revision, ev.kind),
                (model.current(), EventKind::Delete)
            ),
        }
    }
}

pub fn run(ops: Vec<Op>) {
    let mut dir = MemDir::new();
    let seen: Seen = Arc::default();
    let mut engine = open(&dir, &seen);
    let mut model = Model {
        states: vec![State::new()],
        compacted: 0,
    };
    for op in ops {
        let cur = model.current();
        match op {
            Op::Range {
                key,
                end,
                rev,
                limit,
                keys_only,
                count_only,
            } => {
                let r = RangeRequest {
                    key: KEYS[key].to_vec(),
                    range_end: RANGE_ENDS[end].to_vec(),
                    revision: i64::from(rev) % (cur + 2),
                    limit: i64::from(limit),
                    keys_only,
                    count_only,
                };
                let got = engine
                    .range(&r)
                    .map_err(|e| e.as_request().cloned().expect("request error"));
                assert_eq!(got, model.range(&r), "{r:?}");
            }
            Op::Compact { rev } => {
                let rev = i64::from(rev) % (cur + 2);
                let got = engine
                    .compact(rev)
                    .map_err(|e| e.as_request().cloned().expect("request error"));
                assert_eq!(got, model.compact(rev));
            }
            Op::Checkpoint => {
                engine.checkpoint().expect("checkpoint");
            }
            Op::Crash { torn } => {
                // Crash first (threads still running), then reopen what a crash leaves.
                dir = dir.crash(usize::from(torn));
                drop(engine);
                seen.lock().unwrap().clear();
                engine = open(&dir, &seen);
                check_history(&engine, &model);
            }
            write => {
                let txn = match write {
                    Op::Put {
                        key,
                        value,
                        lease,
                        prev_kv,
                    } => TxnRequest {
                        success: vec![RequestOp::Put(PutRequest {
                            key: KEYS[key].to_vec(),
                            value: vec![b'0' + value],
                            lease: i64::from(lease),
                            prev_kv,
                        })],
                        ..Default::default()
                    },
                    Op::Delete { key, end, prev_kv } => TxnRequest {
                        success: vec![RequestOp::DeleteRange(DeleteRangeRequest {
                            key: KEYS[key].to_vec(),
                            range_end: RANGE_ENDS[end].to_vec(),
                            prev_kv,
                        })],
                        ..Default::default()
                    },
                    Op::Txn {
                        compares,
                        success,
                        failure,
                    } => TxnRequest {
                        compare: compares.into_iter().map(build_compare).collect(),
                        success: success.iter().map(build_txn_op).collect(),
                        failure: failure.iter().map(build_txn_op).collect(),
                    },
                    _ => unreachable!(),
                };
                let got = engine
                    .txn(txn.clone())
                    .map_err(|e| e.as_request().cloned().expect("request error"));
                let want = model.txn(&txn);
                assert_eq!(
                    got,
                    want.as_ref().map(|(r, _)| r.clone()).map_err(Clone::clone),
                    "{txn:?}"
                );
                match want {
                    Ok((_, changes)) if !changes.is_empty() => check_hook(&seen, &model, &changes),
                    _ => assert!(seen.lock().unwrap().is_empty(), "no revision, no hook call"),
                }
            }
        }
    }
    check_history(&engine, &model);
    drop(engine);
    let engine = open(&dir.crash(0), &seen);
    check_history(&engine, &model);
    assert_eq!(engine.stats().last_checkpoint_error, None);
}

/// How deep txns nest in generated operations.
pub const NESTING_MAX: usize = 2;

/// Bound on the operations one fuzz input plays.
pub const FUZZ_OPS_MAX: usize = 200;

/// Fuzzer bytes read one at a time; zeros once they run out.
struct Input<'a>(std::slice::Iter<'a, u8>);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
    fn key(&mut self) -> usize {
        usize::from(self.u8()) % KEYS.len()
    }
    fn end(&mut self) -> usize {
        usize::from(self.u8()) % RANGE_ENDS.len()
    }
    fn flag(&mut self) -> bool {
        self.u8() % 2 == 1
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn compare(&mut self) -> (usize, usize, u8, u8, u8) {
        let (key, end) = (self.key(), self.end());
        (key, end, self.u8() % 4, self.u8() % 5, self.u8() % 4)
    }
    /// One op of a txn at nesting `depth` (the outer txn's ops are at 0); nested txns
    /// go at most [`NESTING_MAX`] deep.
    fn txn_op(&mut self, depth: usize) -> TxnOp {
        let kind = self.u8() % 4;
        if kind == 3 && depth < NESTING_MAX {
            return TxnOp::Txn {
                compares: (0..self.u8() % 3).map(|_| self.compare()).collect(),
                success: (0..self.u8() % 3).map(|_| self.txn_op(depth + 1)).collect(),
                failure: (0..self.u8() % 3).map(|_| self.txn_op(depth + 1)).collect(),
            };
        }
        let (key, x) = (self.key(), self.u8());
        let end = usize::from(x) % RANGE_ENDS.len();
        match kind {
            0 => TxnOp::Range { key, end },
            1 => TxnOp::Put { key, value: x },
            _ => TxnOp::Delete { key, end },
        }
    }
}

/// Decodes fuzzer bytes into operations, with the proptest strategy's weights: a tag
/// byte picks the kind, the following bytes its fields.
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    let mut input = Input(data.iter());
    let mut ops = Vec::new();
    while ops.len() < FUZZ_OPS_MAX {
        let Some(&tag) = input.0.next() else { break };
        let b = &mut input;
        let op = match tag % 17 {
            0..=2 => Op::Range {
                key: b.key(),
                end: b.end(),
                rev: b.u16(),
                limit: b.u8() % 4,
                keys_only: b.flag(),
                count_only: b.flag(),
            },
            3..=8 => Op::Put {
                key: b.key(),
                value: b.u8() % 4,
                lease: b.u8() % 2,
                prev_kv: b.flag(),
            },
            9..=10 => Op::Delete {
                key: b.key(),
                end: b.end(),
                prev_kv: b.flag(),
            },
            11..=13 => Op::Txn {
                compares: (0..b.u8() % 3).map(|_| b.compare()).collect(),
                success: (0..b.u8() % 4).map(|_| b.txn_op(0)).collect(),
                failure: (0..b.u8() % 3).map(|_| b.txn_op(0)).collect(),
            },
            14 => Op::Compact { rev: b.u16() },
            15 => Op::Checkpoint,
            _ => Op::Crash { torn: b.u8() % 40 },
        };
        ops.push(op);
    }
    ops
}
