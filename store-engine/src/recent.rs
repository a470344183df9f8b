//! The newest revisions' events, in revision order: a watcher a little behind (one
//! moved to catch-up because its queue was full, or one starting a few revisions back)
//! reads the revisions it missed from here instead of scanning every key of its range
//! in the index, which costs the range's size per chunk however few changes there are.
//!
//! Bounded by revisions ([`RECENT_REVISIONS_MAX`]) and by the key and value bytes the
//! events hold ([`RECENT_BYTES_MAX`]); the events share their keys and values with the
//! index and the watch queues. A read it cannot cover whole is left to the index. A
//! read holds the lock only to copy the handles of the revisions it covers
//! ([`Recent::window`]); it filters them after ([`select`]).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::index::KeySpan;
use crate::mvcc::HistoryChunk;
use crate::types::{CommittedBatch, Event};

/// Revisions kept at most.
pub const RECENT_REVISIONS_MAX: usize = 4096;
/// Key and value bytes (previous values included) the kept events hold at most, beyond
/// the newest revision, which is always kept.
pub const RECENT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Bytes charged per event on top of its keys and values (its handles).
const EVENT_BYTES_BASE: usize = 64;

/// The newest committed revisions, contiguous and in order.
#[derive(Debug)]
pub struct Recent {
    /// Each revision with the bytes it is charged ([`batch_bytes`]).
    batches: VecDeque<(Arc<CommittedBatch>, usize)>,
    bytes: usize,
    revisions_max: usize,
    bytes_max: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(RECENT_REVISIONS_MAX, RECENT_BYTES_MAX)
    }
}

fn batch_bytes(b: &CommittedBatch) -> usize {
    b.events
        .iter()
        .map(|e| {
            let prev = e.prev_kv.as_ref().map_or(0, |p| p.value.len());
            EVENT_BYTES_BASE + e.kv.key.len() + e.kv.value.len() + prev
        })
        .sum()
}

impl Recent {
    pub fn new(revisions_max: usize, bytes_max: usize) -> Recent {
        assert!(revisions_max > 0, "keeps at least the newest revision");
        Recent {
            batches: VecDeque::new(),
            bytes: 0,
            revisions_max,
            bytes_max,
        }
    }

    /// Appends the next committed revision, dropping the oldest beyond the bounds. A
    /// revision that does not follow the newest kept one starts over from it.
    pub fn push(&mut self, batch: CommittedBatch) {
        if self
            .batches
            .back()
            .is_some_and(|(b, _)| b.revision + 1 != batch.revision)
        {
            self.batches.clear();
            self.bytes = 0;
        }
        let bytes = batch_bytes(&batch);
        self.bytes += bytes;
        self.batches.push_back((Arc::new(batch), bytes));
        while self.batches.len() > self.revisions_max
            || (self.bytes > self.bytes_max && self.batches.len() > 1)
        {
            let (_, dropped) = self.batches.pop_front().expect("more than one kept");
            self.bytes -= dropped;
        }
    }

    /// The oldest and newest revisions kept.
    pub fn revisions(&self) -> Option<(i64, i64)> {
        Some((
            self.batches.front()?.0.revision,
            self.batches.back()?.0.revision,
        ))
    }

    /// The kept revisions `[from, to]`, if every one of them is kept.
    pub fn window(&self, from: i64, to: i64) -> Option<Vec<Arc<CommittedBatch>>> {
        if from > to {
            return Some(Vec::new());
        }
        let (oldest, newest) = self.revisions()?;
        if from < oldest || to > newest {
            return None;
        }
        let start = usize::try_from(from - oldest).expect("from is kept");
        let n = usize::try_from(to - from + 1).expect("to is kept");
        Some(
            self.batches
                .range(start..start + n)
                .map(|(b, _)| b.clone())
                .collect(),
        )
    }

    /// [`Recent::window`] then [`select`].
    pub fn read(
        &self,
        span: &KeySpan<'_>,
        from: i64,
        to: i64,
        max_events: usize,
    ) -> Option<HistoryChunk> {
        let window = self.window(from, to)?;
        Some(select(&window, span, to, max_events))
    }
}

/// As [`crate::Mvcc::history`] over the revisions of `window` (consecutive, ending at
/// `to`): the changes in `span`, cut after whole revisions so that at most `max_events`
/// are returned (more only when the first revision alone has more).
pub fn select(
    window: &[Arc<CommittedBatch>],
    span: &KeySpan<'_>,
    to: i64,
    max_events: usize,
) -> HistoryChunk {
    assert!(max_events > 0, "max_events must be positive");
    let mut events: Vec<Event> = Vec::new();
    for b in window {
        let matching = || b.events.iter().filter(|e| span.contains(&e.kv.key));
        let n = matching().count();
        if n == 0 {
            continue;
        }
        if !events.is_empty() && events.len() + n > max_events {
            return HistoryChunk {
                events,
                last_revision: b.revision - 1,
            };
        }
        events.extend(matching().cloned());
        if events.len() > max_events {
            // One revision over the limit: a chunk always ends on a whole one.
            return HistoryChunk {
                events,
                last_revision: b.revision,
            };
        }
    }
    HistoryChunk {
        events,
        last_revision: to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::Mvcc;
    use crate::types::{
        Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RequestOp,
        TxnRequest,
    };

    /// A store of puts, deletes, range deletes and multi-key txns over a few keys, with
    /// every committed revision kept in a [`Recent`] of `revisions_max`.
    fn busy(revisions_max: usize) -> (Mvcc, Recent) {
        let mut mvcc = Mvcc::new();
        let mut recent = Recent::new(revisions_max, RECENT_BYTES_MAX);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let key = |n: u64| format!("k{}", n % 12).into_bytes();
        for i in 0..300u64 {
            let r = next();
            let op = |r: u64| match r % 5 {
                0 => RequestOp::DeleteRange(DeleteRangeRequest {
                    key: key(r / 5),
                    range_end: if r.is_multiple_of(3) {
                        key(r / 5 + 3)
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }),
                _ => RequestOp::Put(PutRequest {
                    key: key(r / 5),
                    value: i.to_le_bytes().to_vec(),
                    ..Default::default()
                }),
            };
            let txn = if r.is_multiple_of(7) {
                // Several distinct keys in one revision.
                TxnRequest {
                    compare: vec![Compare {
                        key: key(r),
                        target: CompareTarget::Version(0),
                        result: CompareResult::Greater,
                        range_end: Vec::new(),
                    }],
                    success: (0..3)
                        .map(|j| {
                            RequestOp::Put(PutRequest {
                                key: format!("t{j}").into_bytes(),
                                value: i.to_le_bytes().to_vec(),
                                ..Default::default()
                            })
                        })
                        .collect(),
                    failure: vec![op(r)],
                }
            } else {
                TxnRequest {
                    success: vec![op(r)],
                    ..Default::default()
                }
            };
            if let Ok(applied) = mvcc.apply(&txn)
                && let Some(batch) = applied.batch
            {
                recent.push(batch);
            }
        }
        (mvcc, recent)
    }

    #[test]
    fn reads_what_the_index_reads() {
        let (mvcc, recent) = busy(RECENT_REVISIONS_MAX);
        let (oldest, newest) = recent.revisions().unwrap();
        assert_eq!((oldest, newest), (2, mvcc.current_revision()));
        let spans: [(&[u8], &[u8]); 4] =
            [(b"k1", b""), (b"k1", b"k5"), (b"t", b"u"), (b"\0", b"\0")];
        for (key, range_end) in spans {
            let span = KeySpan::new(key, range_end);
            for from in [1, 2, 50, 151, newest, newest + 1] {
                for to in [from + 3, newest - 1, newest] {
                    for max_events in [1, 2, 5, 1000] {
                        let want = mvcc
                            .history(key, range_end, from, to, newest, max_events)
                            .unwrap();
                        let got = recent.read(&span, from.max(1), to.min(newest), max_events);
                        let case = format!("{span:?} from {from} to {to} max {max_events}");
                        if from < oldest {
                            assert_eq!(got, None, "{case}");
                        } else {
                            assert_eq!(got, Some(want), "{case}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn keeps_the_newest_revisions_within_its_bounds() {
        let (mvcc, recent) = busy(40);
        let newest = mvcc.current_revision();
        assert_eq!(recent.revisions(), Some((newest - 39, newest)));
        let all = KeySpan::new(b"\0", b"\0");
        assert_eq!(recent.read(&all, newest - 40, newest, 10), None);
        assert!(recent.read(&all, newest - 39, newest, 10).is_some());

        // A byte bound drops all but the newest revision when each is larger.
        let mut small = Recent::new(10, 1);
        let batch = |revision| CommittedBatch {
            revision,
            events: Vec::new(),
        };
        small.push(batch(5));
        small.push(batch(6));
        assert_eq!(
            small.revisions(),
            Some((5, 6)),
            "empty revisions cost nothing"
        );
        let (_, with_events) = busy(1);
        let one = CommittedBatch::clone(&with_events.batches.back().unwrap().0);
        let mut small = Recent::new(10, 1);
        small.push(one.clone());
        assert_eq!(small.revisions(), Some((one.revision, one.revision)));
        // A gap starts over.
        small.push(batch(one.revision + 5));
        assert_eq!(
            small.revisions(),
            Some((one.revision + 5, one.revision + 5))
        );
    }
}
