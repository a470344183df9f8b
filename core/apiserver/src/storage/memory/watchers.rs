//! The watchers of [`MemoryStorage`](super::MemoryStorage): one bounded channel each, fed
//! with `try_send` only, so that a writer never waits for a reader.
//!
//! Each channel has room for `backlog_events` events plus [`RESERVED_SLOTS`]: events and
//! progress notifications may only use the backlog, so that when the backlog is full the
//! reserved slot always has room for the `WatcherTooSlow` error that ends the stream.
//! This relies on the storage being the only sender and sending under its write lock.

use tokio::sync::mpsc;

use crate::storage::{Revision, StorageError, WatchEvent, WatchStream};

/// Slots of each watcher's channel kept free for the final `WatcherTooSlow`.
const RESERVED_SLOTS: usize = 1;

type Sender = mpsc::Sender<Result<WatchEvent, StorageError>>;

#[derive(Debug)]
struct Watcher {
    prefix: String,
    tx: Sender,
}

#[derive(Debug)]
pub(super) struct Watchers {
    watchers: Vec<Watcher>,
    backlog_events: usize,
    max_watchers: usize,
}

impl Watchers {
    pub(super) fn new(backlog_events: usize, max_watchers: usize) -> Self {
        assert!(
            backlog_events >= 1,
            "a watch backlog must hold at least one event"
        );
        Watchers {
            watchers: Vec::new(),
            backlog_events,
            max_watchers,
        }
    }

    /// The most events a watcher may have unread; also the longest replay.
    pub(super) fn backlog_events(&self) -> usize {
        self.backlog_events
    }

    pub(super) fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Forgets watchers whose stream was dropped.
    pub(super) fn prune_closed(&mut self) {
        self.watchers.retain(|w| !w.tx.is_closed());
    }

    /// Fails with `TooLarge` when no further watcher may be registered.
    pub(super) fn check_room(&mut self) -> Result<(), StorageError> {
        self.prune_closed();
        if self.watchers.len() >= self.max_watchers {
            return Err(StorageError::TooLarge(format!(
                "the limit of {} watchers is reached",
                self.max_watchers
            )));
        }
        Ok(())
    }

    /// Registers a watcher on `prefix` whose stream starts with `replay`, which must fit
    /// the backlog.
    pub(super) fn register(&mut self, prefix: &str, replay: Vec<WatchEvent>) -> WatchStream {
        assert!(
            replay.len() <= self.backlog_events,
            "a replay of {} events exceeds the backlog of {}",
            replay.len(),
            self.backlog_events
        );
        let (tx, rx) = mpsc::channel(self.backlog_events + RESERVED_SLOTS);
        for event in replay {
            tx.try_send(Ok(event))
                .expect("a new channel has room for the replay");
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        WatchStream::new(rx)
    }

    /// Sends `event`, a change to `key`, to every watcher whose prefix matches. Cancels
    /// watchers whose backlog is full and forgets those whose stream was dropped.
    pub(super) fn broadcast(&mut self, key: &str, event: &WatchEvent) {
        self.watchers.retain(|w| {
            if !key.starts_with(w.prefix.as_str()) {
                return !w.tx.is_closed();
            }
            if w.tx.capacity() > RESERVED_SLOTS {
                // Only a closed receiver can make this fail: the capacity never shrinks
                // under us because we are the only sender.
                return w.tx.try_send(Ok(event.clone())).is_ok();
            }
            tracing::info!(prefix = %w.prefix, "cancelling a watcher whose backlog is full");
            // Cannot fail for lack of room: that is what the reserved slot is for.
            let _ = w.tx.try_send(Err(StorageError::WatcherTooSlow));
            false
        });
    }

    /// Tells every watcher with room in its backlog that it has seen every event up to
    /// `revision`. A watcher without room is skipped: the events it has not read yet are
    /// followed by a later progress notification or by `WatcherTooSlow`.
    pub(super) fn progress(&mut self, revision: Revision) {
        self.watchers.retain(|w| {
            if w.tx.capacity() > RESERVED_SLOTS {
                return w.tx.try_send(Ok(WatchEvent::Progress { revision })).is_ok();
            }
            !w.tx.is_closed()
        });
    }
}
