//! [`WorkQueue<T>`]: client-go's rate-limited work queue, async and bounded.
//!
//! Semantics (client-go `util/workqueue`):
//! - an item is queued at most once (de-duplication of pending items);
//! - an item handed out by [`WorkQueue::get`] is processed by at most one worker:
//!   adding it while it is processed marks it dirty, and [`WorkQueue::done`]
//!   queues it again;
//! - [`WorkQueue::add_after`] queues an item after a delay (the earliest of
//!   several delays wins); [`WorkQueue::add_rate_limited`] takes the delay from a
//!   [`RateLimiter`], by default client-go's `DefaultControllerRateLimiter`;
//! - after [`WorkQueue::shut_down`], adds are refused, delayed items dropped, and
//!   `get` returns what is still queued, then `None`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Default bound on pending items (queued, dirty or waiting).
pub const DEFAULT_MAX_LEN: usize = 100_000;

/// Why an add was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    /// The queue holds `max_len` pending items.
    #[error("work queue full ({max_len} items)")]
    Full {
        /// The bound.
        max_len: usize,
    },
    /// The queue is shutting down.
    #[error("work queue is shutting down")]
    ShutDown,
}

/// Decides how long an item waits before it is retried.
pub trait RateLimiter<T>: Send {
    /// The delay before `item` may be processed again; counts one failure.
    fn when(&mut self, item: &T) -> Duration;
    /// Stops tracking `item` (it succeeded).
    fn forget(&mut self, item: &T);
    /// How many times `item` has been rate-limited since the last `forget`.
    fn num_requeues(&self, item: &T) -> u32;
}

/// Per-item exponential backoff: `base * 2^failures`, capped at `max`
/// (client-go `ItemExponentialFailureRateLimiter`).
#[derive(Debug)]
pub struct ItemExponentialFailureRateLimiter<T> {
    base: Duration,
    max: Duration,
    failures: HashMap<T, u32>,
}

impl<T: Hash + Eq + Clone> ItemExponentialFailureRateLimiter<T> {
    /// A limiter from `base` doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        ItemExponentialFailureRateLimiter {
            base,
            max,
            failures: HashMap::new(),
        }
    }
}

impl<T: Hash + Eq + Clone + Send> RateLimiter<T> for ItemExponentialFailureRateLimiter<T> {
    fn when(&mut self, item: &T) -> Duration {
        let n = self.failures.entry(item.clone()).or_insert(0);
        let exp = *n;
        *n = n.saturating_add(1);
        2_u32
            .checked_pow(exp)
            .and_then(|m| self.base.checked_mul(m))
            .map_or(self.max, |d| d.min(self.max))
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// An overall token bucket of `qps` refill and `burst` size (client-go
/// `BucketRateLimiter` over Go's `rate.Limiter`: each call reserves a token,
/// and the delay is how long until that token exists).
#[derive(Debug)]
pub struct BucketRateLimiter {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl BucketRateLimiter {
    /// A full bucket of `burst` tokens refilled at `qps`.
    pub fn new(qps: f64, burst: u32) -> Self {
        assert!(qps > 0.0, "qps must be positive");
        BucketRateLimiter {
            qps,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }
}

impl<T> RateLimiter<T> for BucketRateLimiter {
    fn when(&mut self, _item: &T) -> Duration {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }

    fn forget(&mut self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> u32 {
        0
    }
}

/// client-go's `DefaultControllerRateLimiter`: the larger of a per-item
/// exponential backoff (5 ms .. 1000 s) and an overall 10 qps, burst 100 bucket.
#[derive(Debug)]
pub struct DefaultControllerRateLimiter<T> {
    item: ItemExponentialFailureRateLimiter<T>,
    bucket: BucketRateLimiter,
}

impl<T: Hash + Eq + Clone + Send> Default for DefaultControllerRateLimiter<T> {
    fn default() -> Self {
        DefaultControllerRateLimiter {
            item: ItemExponentialFailureRateLimiter::new(
                Duration::from_millis(5),
                Duration::from_secs(1000),
            ),
            bucket: BucketRateLimiter::new(10.0, 100),
        }
    }
}

impl<T: Hash + Eq + Clone + Send> RateLimiter<T> for DefaultControllerRateLimiter<T> {
    fn when(&mut self, item: &T) -> Duration {
        let a = self.item.when(item);
        let b = RateLimiter::<T>::when(&mut self.bucket, item);
        a.max(b)
    }

    fn forget(&mut self, item: &T) {
        self.item.forget(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.item.num_requeues(item)
    }
}

struct State<T> {
    /// Items ready to be handed out, in order. Each is also in `dirty`.
    queue: VecDeque<T>,
    /// Items that need processing: queued, or re-added while processing.
    dirty: HashSet<T>,
    /// Items handed out and not yet `done`.
    processing: HashSet<T>,
    /// Delayed items by ready time (sequence number breaks ties).
    waiting: BTreeMap<(Instant, u64), T>,
    /// Delayed item -> its key in `waiting`.
    waiting_keys: HashMap<T, (Instant, u64)>,
    next_seq: u64,
    shutting_down: bool,
    limiter: Box<dyn RateLimiter<T>>,
}

impl<T: Hash + Eq + Clone> State<T> {
    /// Queues `item` unless it is already pending. Returns true if a worker
    /// should be woken.
    fn insert(&mut self, item: T) -> bool {
        if !self.dirty.insert(item.clone()) {
            return false;
        }
        if self.processing.contains(&item) {
            return false;
        }
        self.queue.push_back(item);
        true
    }

    fn n_pending(&self) -> usize {
        self.dirty.len() + self.waiting.len()
    }

    /// Moves delayed items whose time has come into the queue.
    fn promote_ready(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            self.waiting_keys.remove(&item);
            self.insert(item);
        }
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    max_len: usize,
}

/// An async, bounded, rate-limited work queue. Clones share the queue.
pub struct WorkQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue::new(DEFAULT_MAX_LEN)
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> WorkQueue<T> {
    /// A queue of at most `max_len` pending items with the default controller
    /// rate limiter.
    pub fn new(max_len: usize) -> WorkQueue<T> {
        WorkQueue::with_rate_limiter(max_len, Box::new(DefaultControllerRateLimiter::default()))
    }

    /// A queue with a custom rate limiter.
    pub fn with_rate_limiter(max_len: usize, limiter: Box<dyn RateLimiter<T>>) -> WorkQueue<T> {
        WorkQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    waiting: BTreeMap::new(),
                    waiting_keys: HashMap::new(),
                    next_seq: 0,
                    shutting_down: false,
                    limiter,
                }),
                notify: Notify::new(),
                max_len,
            }),
        }
    }

    // No user code runs under the lock except the rate limiter, and each
    // mutation completes before it, so a poisoned lock is still consistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an item now. Already pending: no-op. Being processed: it is
    /// queued again when `done`.
    pub fn add(&self, item: T) -> Result<(), QueueError> {
        let mut st = self.lock();
        if st.shutting_down {
            return Err(QueueError::ShutDown);
        }
        if st.dirty.contains(&item) {
            return Ok(());
        }
        if st.n_pending() >= self.shared.max_len {
            return Err(QueueError::Full {
                max_len: self.shared.max_len,
            });
        }
        let wake = st.insert(item);
        drop(st);
        if wake {
            self.shared.notify.notify_one();
        }
        Ok(())
    }

    /// Queues an item after `delay`; if it is already waiting, the earlier time wins.
    pub fn add_after(&self, item: T, delay: Duration) -> Result<(), QueueError> {
        if delay.is_zero() {
            return self.add(item);
        }
        let ready_at = Instant::now() + delay;
        let mut st = self.lock();
        if st.shutting_down {
            return Err(QueueError::ShutDown);
        }
        let seq = st.next_seq;
        match st.waiting_keys.get(&item).copied() {
            Some(old) if old.0 <= ready_at => return Ok(()),
            Some(old) => {
                st.waiting.remove(&old);
            }
            None if st.n_pending() >= self.shared.max_len => {
                return Err(QueueError::Full {
                    max_len: self.shared.max_len,
                });
            }
            None => {}
        }
        st.next_seq += 1;
        st.waiting.insert((ready_at, seq), item.clone());
        st.waiting_keys.insert(item, (ready_at, seq));
        drop(st);
        // Sleeping workers recompute their deadline.
        self.shared.notify.notify_waiters();
        Ok(())
    }

    /// Queues an item after the rate limiter's delay for it.
    pub fn add_rate_limited(&self, item: T) -> Result<(), QueueError> {
        let delay = {
            let mut st = self.lock();
            if st.shutting_down {
                return Err(QueueError::ShutDown);
            }
            st.limiter.when(&item)
        };
        self.add_after(item, delay)
    }

    /// Resets the rate limiter's failure count for `item`.
    pub fn forget(&self, item: &T) {
        self.lock().limiter.forget(item);
    }

    /// How many times `item` was rate-limited since its last `forget`.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.lock().limiter.num_requeues(item)
    }

    /// Waits for an item and marks it as processing; the caller must call
    /// [`WorkQueue::done`] with it. `None` once shut down and drained.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Register before looking at the state so no wake-up is missed.
            notified.as_mut().enable();
            let deadline = {
                let mut st = self.lock();
                st.promote_ready(Instant::now());
                if let Some(item) = st.queue.pop_front() {
                    st.dirty.remove(&item);
                    st.processing.insert(item.clone());
                    let more = !st.queue.is_empty();
                    drop(st);
                    if more {
                        // Pass the baton: a notify_one may have woken only us.
                        self.shared.notify.notify_one();
                    }
                    return Some(item);
                }
                if st.shutting_down {
                    return None;
                }
                st.waiting.first_key_value().map(|(k, _)| k.0)
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `item` as processed; if it was added meanwhile it is queued again.
    pub fn done(&self, item: &T) {
        let mut st = self.lock();
        st.processing.remove(item);
        if st.dirty.contains(item) {
            st.queue.push_back(item.clone());
            drop(st);
            self.shared.notify.notify_one();
        }
    }

    /// Number of items ready to be handed out (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when no item is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of delayed items.
    pub fn len_waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Refuses further adds, drops delayed items, and wakes every worker; `get`
    /// returns the still-queued items and then `None`.
    pub fn shut_down(&self) {
        {
            let mut st = self.lock();
            st.shutting_down = true;
            st.waiting.clear();
            st.waiting_keys.clear();
        }
        self.shared.notify.notify_waiters();
    }

    /// True after [`WorkQueue::shut_down`].
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }
}

impl<T> std::fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("max_len", &self.shared.max_len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
