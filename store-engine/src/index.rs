//! The in-memory index: each key's revision history, on etcd's `keyIndex` model.
//!
//! A key's history is one vector of entries sorted by [`Revision`]. A tombstone closes a
//! generation; the next put opens a new one (version 1, `create_revision` = its own
//! revision). Values live in the entries, shared by [`Bytes`] handles.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::types::{Bytes, Event, EventKind, KeyValue, Revision};

/// One change to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rev: Revision,
    /// `None` is a tombstone.
    pub put: Option<PutEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutEntry {
    pub create_revision: i64,
    pub version: i64,
    pub value: Bytes,
    pub lease: i64,
}

/// Which keys an operation covers, decoded from etcd's `(key, range_end)` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySpan<'a> {
    One(&'a [u8]),
    /// `[from, to)`, or `[from, ..)` when `to` is `None`.
    Range {
        from: &'a [u8],
        to: Option<&'a [u8]>,
    },
}

impl<'a> KeySpan<'a> {
    /// Caller has checked that `range_end` does not sort before `key`.
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> KeySpan<'a> {
        match range_end {
            [] => KeySpan::One(key),
            [0] => KeySpan::Range {
                from: key,
                to: None,
            },
            end => KeySpan::Range {
                from: key,
                to: Some(end),
            },
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match *self {
            KeySpan::One(k) => k == key,
            KeySpan::Range { from, to } => key >= from && to.is_none_or(|t| key < t),
        }
    }

    fn bounds(&self) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
        match *self {
            KeySpan::One(k) => (Bound::Included(k), Bound::Included(k)),
            KeySpan::Range { from, to: None } => (Bound::Included(from), Bound::Unbounded),
            KeySpan::Range { from, to: Some(t) } if t <= from => {
                // An empty span: BTreeMap::range panics on inverted bounds.
                (Bound::Included(from), Bound::Excluded(from))
            }
            KeySpan::Range { from, to: Some(t) } => (Bound::Included(from), Bound::Excluded(t)),
        }
    }
}

/// Bytes of checkpoint framing per entry: revision and tag, plus the key's length and
/// entry count (charged to every entry, so an upper bound).
const ENTRY_BYTES_BASE: usize = 8 + 8 + 1 + 4 + 4;
/// Bytes of checkpoint framing per put: create revision, version, lease, value length.
const PUT_BYTES_BASE: usize = 8 + 8 + 8 + 4;

/// Bytes one retained entry of `key` takes when written out again (a checkpoint):
/// what garbage collection rewrites per entry. An upper bound by a few bytes per key.
pub fn entry_bytes(key: &[u8], e: &Entry) -> u64 {
    let put = e.put.as_ref().map_or(0, |p| PUT_BYTES_BASE + p.value.len());
    (ENTRY_BYTES_BASE + key.len() + put) as u64
}

/// One retained change of one key, as [`Index::scan_changes`] visits it: its revision
/// is cheap, its event (with the value just before it, if retained) is built on demand.
pub struct Change<'a> {
    key: &'a Bytes,
    history: &'a [Entry],
    i: usize,
}

impl Change<'_> {
    pub fn revision(&self) -> Revision {
        self.history[self.i].rev
    }

    pub fn event(&self) -> Event {
        let (k, history, i) = (self.key, self.history, self.i);
        let entry = &history[i];
        let prev_kv = i.checked_sub(1).and_then(|p| {
            history[p]
                .put
                .as_ref()
                .map(|put| to_kv(k, history[p].rev, put))
        });
        let (kind, kv) = match &entry.put {
            Some(put) => (EventKind::Put, to_kv(k, entry.rev, put)),
            None => (EventKind::Delete, tombstone_kv(k.clone(), entry.rev.main)),
        };
        Event { kind, kv, prev_kv }
    }
}

/// Key -> history. Cloning is a deep copy of the tree but shares every key and value.
#[derive(Clone, Debug, Default)]
pub struct Index {
    keys: BTreeMap<Bytes, Vec<Entry>>,
    /// Sum of [`entry_bytes`] over every entry: the live data garbage collection keeps.
    retained_bytes: u64,
}

impl Index {
    pub fn n_keys(&self) -> usize {
        self.keys.len()
    }

    /// Bytes the retained entries take when rewritten (see [`entry_bytes`]).
    pub fn retained_bytes(&self) -> u64 {
        self.retained_bytes
    }

    /// The key's value as of revision `at` (main), if live then.
    pub fn get(&self, key: &[u8], at: i64) -> Option<KeyValue> {
        let (k, history) = self.keys.get_key_value(key)?;
        live_at(k, history, at)
    }

    /// Live keys in `span` as of `at`, in key order; `f` returns false to stop.
    pub fn for_each_live(&self, span: &KeySpan<'_>, at: i64, mut f: impl FnMut(KeyValue) -> bool) {
        for (k, history) in self.keys.range::<[u8], _>(span.bounds()) {
            if let Some(kv) = live_at(k, history, at)
                && !f(kv)
            {
                return;
            }
        }
    }

    /// Appends a put at `rev`, which must be newer than every revision of the key.
    /// Returns the new version of the key.
    pub fn put(&mut self, key: &[u8], rev: Revision, value: Bytes, lease: i64) -> KeyValue {
        let history = match self.keys.get_mut(key) {
            Some(h) => h,
            None => self.keys.entry(Bytes::from(key)).or_default(),
        };
        let (create_revision, version) = match history.last() {
            Some(Entry {
                rev: last,
                put: Some(p),
            }) => {
                assert!(*last < rev, "put at {rev:?} not after {last:?}");
                (p.create_revision, p.version + 1)
            }
            Some(Entry {
                rev: last,
                put: None,
            }) => {
                assert!(*last < rev, "put at {rev:?} not after {last:?}");
                (rev.main, 1)
            }
            None => (rev.main, 1),
        };
        let put = PutEntry {
            create_revision,
            version,
            value,
            lease,
        };
        let entry = Entry {
            rev,
            put: Some(put.clone()),
        };
        self.retained_bytes += entry_bytes(key, &entry);
        history.push(entry);
        let key = self
            .keys
            .get_key_value(key)
            .expect("just inserted")
            .0
            .clone();
        to_kv(&key, rev, &put)
    }

    /// Appends a tombstone at `rev` if the key is live; returns whether it was.
    pub fn delete(&mut self, key: &[u8], rev: Revision) -> bool {
        let Some(history) = self.keys.get_mut(key) else {
            return false;
        };
        match history.last() {
            Some(Entry {
                rev: last,
                put: Some(_),
            }) => {
                assert!(*last < rev, "delete at {rev:?} not after {last:?}");
                let entry = Entry { rev, put: None };
                self.retained_bytes += entry_bytes(key, &entry);
                history.push(entry);
                true
            }
            _ => false,
        }
    }

    /// Appends a restored entry (replay, checkpoint load): its revision must be newer
    /// than every revision of the key.
    pub fn restore(&mut self, key: Bytes, entry: Entry) {
        self.retained_bytes += entry_bytes(&key, &entry);
        let history = self.keys.entry(key).or_default();
        if let Some(last) = history.last() {
            assert!(
                last.rev < entry.rev,
                "restore {:?} not after {:?}",
                entry.rev,
                last.rev
            );
        }
        history.push(entry);
    }

    /// Removes every change at main revision `main` (undo of a failed txn). Touches
    /// only `keys`, which must include every key changed at `main`.
    pub fn rollback(&mut self, keys: &[Bytes], main: i64) {
        for key in keys {
            let history = self.keys.get_mut(key).expect("rolled-back key exists");
            while let Some(e) = history.pop_if(|e| e.rev.main == main) {
                self.retained_bytes -= entry_bytes(key, &e);
            }
            if history.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// etcd's compaction: for each key, drops the entries older than the newest one at
    /// or before `at`; drops that one too if it is a tombstone. Reads at `at` or later
    /// see the same data afterwards.
    pub fn compact(&mut self, at: i64) {
        let mut dropped_bytes = 0;
        self.keys.retain(|key, history| {
            let n_at_or_before = history.partition_point(|e| e.rev.main <= at);
            if n_at_or_before > 0 {
                let keep_from = n_at_or_before - 1;
                let drop_to = if history[keep_from].put.is_none() {
                    keep_from + 1
                } else {
                    keep_from
                };
                for e in history.drain(..drop_to) {
                    dropped_bytes += entry_bytes(key, &e);
                }
            }
            !history.is_empty()
        });
        self.retained_bytes -= dropped_bytes;
    }

    /// One step of a history scan: hands `f` the changes with main revision `from` or
    /// later of up to `max_keys` keys of `span`, key by key (each key's in revision
    /// order; `f` returns false to skip the rest of that key's), starting after the key
    /// `after` (at the span's start when `None`). Returns the last key visited when keys
    /// of `span` may remain, `None` when the span is done.
    pub fn scan_changes(
        &self,
        span: &KeySpan<'_>,
        after: Option<&[u8]>,
        max_keys: usize,
        from: i64,
        mut f: impl FnMut(Change<'_>) -> bool,
    ) -> Option<Bytes> {
        assert!(max_keys > 0, "max_keys must be positive");
        let (mut lo, hi) = span.bounds();
        if let Some(a) = after {
            let past_end = match hi {
                Bound::Included(t) => a >= t,
                Bound::Excluded(t) => a >= t,
                Bound::Unbounded => false,
            };
            if past_end {
                return None;
            }
            lo = Bound::Excluded(a);
        }
        let mut last: Option<&Bytes> = None;
        for (n, (key, history)) in self.keys.range::<[u8], _>((lo, hi)).enumerate() {
            if n == max_keys {
                return last.cloned();
            }
            last = Some(key);
            let first = history.partition_point(|e| e.rev.main < from);
            for i in first..history.len() {
                if !f(Change { key, history, i }) {
                    break;
                }
            }
        }
        None
    }

    /// Every key with its history, in key order (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Vec<Entry>)> {
        self.keys.iter()
    }
}

fn live_at(key: &Bytes, history: &[Entry], at: i64) -> Option<KeyValue> {
    let n = history.partition_point(|e| e.rev.main <= at);
    let entry = history.get(n.checked_sub(1)?)?;
    entry.put.as_ref().map(|p| to_kv(key, entry.rev, p))
}

fn to_kv(key: &Bytes, rev: Revision, p: &PutEntry) -> KeyValue {
    KeyValue {
        key: key.clone(),
        create_revision: p.create_revision,
        mod_revision: rev.main,
        version: p.version,
        value: p.value.clone(),
        lease: p.lease,
    }
}

/// A delete as etcd reports it: the key and the deleting revision, everything else zero.
pub(crate) fn tombstone_kv(key: Bytes, main: i64) -> KeyValue {
    KeyValue {
        key,
        create_revision: 0,
        mod_revision: main,
        version: 0,
        value: Bytes::from(&[][..]),
        lease: 0,
    }
}
