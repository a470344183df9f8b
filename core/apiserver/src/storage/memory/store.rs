//! The revisioned state of [`MemoryStorage`](super::MemoryStorage): one history of versions
//! per key, a `BTreeMap` index over the keys, and the log of which key each retained
//! revision wrote. Pure and synchronous: the caller holds the lock, and nothing here knows
//! about watchers, channels or time.
//!
//! Invariants (checked by [`Store::check_invariants`] in tests):
//! - `1 <= compacted <= current`, and `log` holds exactly the revisions
//!   `compacted + 1 ..= current`, oldest first: `log.len() == current - compacted`.
//! - Each key's versions are in strictly ascending `mod_revision`, and every version newer
//!   than `compacted` is the one write named by its log entry.
//! - At most one version of a key is at or below `compacted`, and it is live: it is the
//!   value that a read at `compacted` sees.
//! - A key whose history became empty is removed from the index.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::storage::{KeyValue, ListOptions, ListResult, Revision, StorageError, WatchEvent};

/// The revision of an empty store, as in etcd.
pub(super) const INITIAL_REVISION: Revision = 1;

/// One write to a key.
#[derive(Clone, Debug)]
struct Version {
    mod_revision: Revision,
    /// The revision that created this generation of the key.
    create_revision: Revision,
    /// Writes since the generation was created, starting at 1 (a tombstone counts too).
    version: i64,
    /// `None` is a tombstone: the delete that closed the generation.
    value: Option<Bytes>,
}

impl Version {
    fn is_live(&self) -> bool {
        self.value.is_some()
    }

    /// The key-value this version exposes. Panics on a tombstone, which exposes nothing.
    fn to_kv(&self, key: &str) -> KeyValue {
        let value = self.value.clone().expect("a tombstone has no key-value");
        KeyValue {
            key: key.to_owned(),
            value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
        }
    }
}

/// Every retained write to one key, in ascending `mod_revision`.
#[derive(Debug, Default)]
struct History {
    versions: Vec<Version>,
}

impl History {
    /// Index of the newest version written at or before `revision`.
    fn index_at(&self, revision: Revision) -> Option<usize> {
        let after = self
            .versions
            .partition_point(|v| v.mod_revision <= revision);
        after.checked_sub(1)
    }

    /// The version a read at `revision` sees, if the key was live then.
    fn live_at(&self, revision: Revision) -> Option<&Version> {
        let version = &self.versions[self.index_at(revision)?];
        version.is_live().then_some(version)
    }

    /// The current version, if the key is live now.
    fn live_now(&self) -> Option<&Version> {
        self.versions.last().filter(|v| v.is_live())
    }

    /// Drops every version that no read at or after `compacted` can see: all versions
    /// older than the newest one at or below `compacted`, and that one too if it is a
    /// tombstone.
    fn prune(&mut self, compacted: Revision) {
        let Some(newest_old) = self.index_at(compacted) else {
            return;
        };
        let keep_from = if self.versions[newest_old].is_live() {
            newest_old
        } else {
            newest_old + 1
        };
        self.versions.drain(..keep_from);
    }
}

/// The whole revisioned key space. See the module docs for its invariants.
#[derive(Debug)]
pub(super) struct Store {
    index: BTreeMap<Arc<str>, History>,
    /// The key written at each revision in `compacted + 1 ..= current`, oldest first.
    log: VecDeque<Arc<str>>,
    current: Revision,
    compacted: Revision,
}

impl Store {
    pub(super) fn new() -> Self {
        Store {
            index: BTreeMap::new(),
            log: VecDeque::new(),
            current: INITIAL_REVISION,
            compacted: INITIAL_REVISION,
        }
    }

    pub(super) fn current(&self) -> Revision {
        self.current
    }

    pub(super) fn compacted(&self) -> Revision {
        self.compacted
    }

    /// Resolves the revision a read at `at` is served at, or why it cannot be.
    pub(super) fn read_revision(&self, at: Option<Revision>) -> Result<Revision, StorageError> {
        match at {
            None => Ok(self.current),
            Some(requested) => {
                self.check_readable(requested)?;
                Ok(requested)
            }
        }
    }

    /// Fails unless `compacted <= revision <= current`.
    pub(super) fn check_readable(&self, revision: Revision) -> Result<(), StorageError> {
        if revision < self.compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.current {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.current,
            });
        }
        Ok(())
    }

    pub(super) fn get(&self, key: &str, revision: Revision) -> Option<KeyValue> {
        debug_assert!(self.check_readable(revision).is_ok());
        let version = self.index.get(key)?.live_at(revision)?;
        Some(version.to_kv(key))
    }

    /// Lists the keys under `prefix` live at `revision`. A `start` that sorts before
    /// `prefix` starts at `prefix`; keys that do not begin with `prefix` are never returned.
    pub(super) fn list(&self, prefix: &str, opts: &ListOptions, revision: Revision) -> ListResult {
        debug_assert!(self.check_readable(revision).is_ok());
        let from = match opts.start.as_deref() {
            Some(start) if start > prefix => start,
            _ => prefix,
        };
        let limit = match opts.limit {
            None | Some(0) => usize::MAX,
            Some(limit) => limit,
        };
        let mut items = Vec::new();
        let mut remaining = 0;
        let range = self
            .index
            .range::<str, _>((Bound::Included(from), Bound::Unbounded));
        for (key, history) in range.take_while(|(key, _)| key.starts_with(prefix)) {
            let Some(version) = history.live_at(revision) else {
                continue;
            };
            if items.len() < limit {
                items.push(version.to_kv(key));
            } else {
                // Counting the rest is a scan, as in etcd; the limit bounds the response,
                // not the work.
                remaining += 1;
            }
        }
        ListResult {
            items,
            revision,
            remaining,
        }
    }

    /// The live version of `key` now, or `NotFound`; and `Conflict` if `expected` is given
    /// and is not its `mod_revision`.
    fn live_version(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<&Version, StorageError> {
        let not_found = || StorageError::NotFound {
            key: key.to_owned(),
        };
        let version = self
            .index
            .get(key)
            .and_then(History::live_now)
            .ok_or_else(not_found)?;
        match expected {
            Some(expected) if expected != version.mod_revision => Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                actual: version.mod_revision,
            }),
            _ => Ok(version),
        }
    }

    pub(super) fn create(&mut self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        if self.index.get(key).and_then(History::live_now).is_some() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = self.current + 1;
        let version = Version {
            mod_revision: revision,
            create_revision: revision,
            version: 1,
            value: Some(value),
        };
        Ok(self.commit(key, version).to_kv(key))
    }

    pub(super) fn update(
        &mut self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StorageError> {
        let current = self.live_version(key, Some(expected_mod_revision))?;
        let version = Version {
            mod_revision: self.current + 1,
            create_revision: current.create_revision,
            version: current.version + 1,
            value: Some(value),
        };
        Ok(self.commit(key, version).to_kv(key))
    }

    /// Deletes `key`; returns its last live value and the revision of the delete.
    pub(super) fn delete(
        &mut self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StorageError> {
        let current = self.live_version(key, expected_mod_revision)?;
        let prev = current.to_kv(key);
        let tombstone = Version {
            mod_revision: self.current + 1,
            create_revision: current.create_revision,
            version: current.version + 1,
            value: None,
        };
        let revision = self.commit(key, tombstone).mod_revision;
        Ok((prev, revision))
    }

    /// Appends `version` (written at the next revision) to `key`'s history.
    fn commit(&mut self, key: &str, version: Version) -> &Version {
        assert_eq!(
            version.mod_revision,
            self.current + 1,
            "a write commits the next revision"
        );
        let key: Arc<str> = match self.index.get_key_value(key) {
            Some((existing, _)) => Arc::clone(existing),
            None => Arc::from(key),
        };
        self.current = version.mod_revision;
        self.log.push_back(Arc::clone(&key));
        let history = self.index.entry(key).or_default();
        history.versions.push(version);
        history.versions.last().expect("just pushed")
    }

    /// Drops history before `revision`. A no-op at or below the compacted revision.
    pub(super) fn compact(&mut self, revision: Revision) -> Result<(), StorageError> {
        if revision > self.current {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.current,
            });
        }
        if revision <= self.compacted {
            return Ok(());
        }
        // Only keys written since the last compaction can hold versions that this one
        // drops, so the log says which keys to visit: the work is that of the writes.
        for _ in self.compacted..revision {
            let key = self
                .log
                .pop_front()
                .expect("the log covers compacted+1..=current");
            let Some(history) = self.index.get_mut(&*key) else {
                continue; // Already pruned away by an earlier entry for the same key.
            };
            history.prune(revision);
            if history.versions.is_empty() {
                self.index.remove(&*key);
            }
        }
        self.compacted = revision;
        Ok(())
    }

    /// The event that revision `revision` committed. Panics if it is not retained.
    pub(super) fn event_at(&self, revision: Revision) -> WatchEvent {
        assert!(
            revision > self.compacted && revision <= self.current,
            "revision {revision} is not in the log"
        );
        let key = &self.log[usize::try_from(revision - self.compacted - 1).expect("in range")];
        let history = &self.index[&**key];
        let idx = history
            .versions
            .binary_search_by_key(&revision, |v| v.mod_revision)
            .expect("every logged revision has its version");
        // The previous version is retained: it is either newer than `compacted` or the
        // newest one at or below it, which compaction keeps when live.
        let prev = idx
            .checked_sub(1)
            .map(|i| &history.versions[i])
            .filter(|v| v.is_live())
            .map(|v| v.to_kv(key));
        let version = &history.versions[idx];
        if version.is_live() {
            WatchEvent::Put {
                kv: version.to_kv(key),
                prev,
            }
        } else {
            WatchEvent::Delete {
                prev: prev.expect("a delete follows a live version"),
                revision,
            }
        }
    }

    /// The events under `prefix` with revisions in `after + 1 ..= current`, oldest first,
    /// if there are at most `max_events` of them. Otherwise fails with the oldest `after`
    /// for which there would be at most `max_events`. `after` must be readable.
    pub(super) fn replay(
        &self,
        prefix: &str,
        after: Revision,
        max_events: usize,
    ) -> Result<Vec<WatchEvent>, Revision> {
        debug_assert!(self.check_readable(after).is_ok());
        let mut events = Vec::new();
        let newer = usize::try_from(self.current - after).expect("after <= current");
        // Walk back from the newest so that an overflow knows where the window would start.
        let mut revision = self.current;
        for key in self.log.iter().rev().take(newer) {
            if key.starts_with(prefix) {
                if events.len() == max_events {
                    return Err(revision);
                }
                events.push(self.event_at(revision));
            }
            revision -= 1;
        }
        events.reverse();
        Ok(events)
    }

    /// Panics, naming the broken invariant, unless the module's invariants hold.
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        assert!(
            self.compacted >= INITIAL_REVISION,
            "compacted {} < 1",
            self.compacted
        );
        assert!(
            self.compacted <= self.current,
            "compacted {} > current {}",
            self.compacted,
            self.current
        );
        let logged = usize::try_from(self.current - self.compacted).expect("non-negative");
        assert_eq!(self.log.len(), logged, "log length");
        for (offset, key) in self.log.iter().enumerate() {
            let revision = self.compacted + 1 + offset as Revision;
            let history = self
                .index
                .get(&**key)
                .unwrap_or_else(|| panic!("logged key {key:?} not indexed"));
            let found = history.versions.iter().any(|v| v.mod_revision == revision);
            assert!(
                found,
                "key {key:?} has no version at logged revision {revision}"
            );
        }
        for (key, history) in &self.index {
            assert!(
                !history.versions.is_empty(),
                "key {key:?} has an empty history"
            );
            let ascending = history
                .versions
                .windows(2)
                .all(|w| w[0].mod_revision < w[1].mod_revision);
            assert!(ascending, "key {key:?} versions are not ascending");
            let old: Vec<&Version> = history
                .versions
                .iter()
                .filter(|v| v.mod_revision <= self.compacted)
                .collect();
            assert!(
                old.len() <= 1,
                "key {key:?} keeps {} versions at or below compacted",
                old.len()
            );
            assert!(
                old.iter().all(|v| v.is_live()),
                "key {key:?} keeps a compacted tombstone"
            );
            for v in history
                .versions
                .iter()
                .filter(|v| v.mod_revision > self.compacted)
            {
                let offset =
                    usize::try_from(v.mod_revision - self.compacted - 1).expect("in range");
                assert_eq!(
                    &*self.log[offset], &**key,
                    "log entry for revision {}",
                    v.mod_revision
                );
            }
            for w in history.versions.windows(2) {
                let (before, after) = (&w[0], &w[1]);
                if before.is_live() {
                    assert_eq!(
                        after.create_revision, before.create_revision,
                        "key {key:?} generation"
                    );
                    assert_eq!(
                        after.version,
                        before.version + 1,
                        "key {key:?} version count"
                    );
                } else {
                    assert_eq!(
                        after.create_revision, after.mod_revision,
                        "key {key:?} recreated"
                    );
                    assert_eq!(after.version, 1, "key {key:?} recreated version");
                }
            }
        }
    }
}
