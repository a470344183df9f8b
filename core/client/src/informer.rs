//! [`Informer<K>`]: a reflector (list, then watch from the list's resource
//! version, resume after disconnects, relist on 410) feeding a [`Store<K>`] and
//! delivering [`Event`]s to handlers and bounded channels.

use crate::api::{Api, ApiResource};
use crate::error::{Error, status_is_gone};
use crate::params::{ListParams, WatchParams};
use crate::store::{Event, Store};
use crate::watch::WatchEvent;
use futures_util::StreamExt;
use rand::Rng;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Informer tuning. The defaults follow client-go's reflector.
#[derive(Clone, Debug)]
pub struct InformerConfig {
    /// Selectors and page size (`limit`, default 500) of the list; the selectors
    /// also apply to the watch.
    pub list_params: ListParams,
    /// Bound on the number of objects one list may return.
    pub max_items: usize,
    /// Each watch asks the server to end it after a random time in
    /// `[min_watch_timeout, 2 * min_watch_timeout]` (client-go: 5 min), so
    /// watches of many clients do not end together.
    pub min_watch_timeout: Duration,
    /// First delay after a failed list or watch.
    pub backoff_initial: Duration,
    /// Largest delay between retries.
    pub backoff_max: Duration,
    /// Ask for BOOKMARK events (`allowWatchBookmarks`).
    pub bookmarks: bool,
}

impl Default for InformerConfig {
    fn default() -> Self {
        InformerConfig {
            list_params: ListParams::default().limit(500),
            max_items: 1_000_000,
            min_watch_timeout: Duration::from_secs(300),
            backoff_initial: Duration::from_millis(800),
            backoff_max: Duration::from_secs(30),
            bookmarks: true,
        }
    }
}

/// A synchronous event handler. It runs on the informer task: hand long work to
/// a queue.
pub type Handler<K> = Box<dyn Fn(&Event<K>) + Send + Sync>;

/// Tells whether an informer has completed its first list.
#[derive(Clone, Debug)]
pub struct Synced(watch::Receiver<bool>);

impl Synced {
    /// True once the first list is in the store and its events were delivered.
    pub fn has_synced(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until synced; false if the informer stopped first.
    pub async fn wait_synced(&mut self) -> bool {
        self.0.wait_for(|s| *s).await.is_ok()
    }
}

/// A list-and-watch loop for one kind (client-go's reflector plus shared
/// informer). Register handlers and channels, then [`Informer::spawn`] it.
pub struct Informer<K: ApiResource> {
    api: Api<K>,
    config: InformerConfig,
    store: Store<K>,
    handlers: Vec<Handler<K>>,
    senders: Vec<mpsc::Sender<Event<K>>>,
    synced_tx: watch::Sender<bool>,
    synced_rx: watch::Receiver<bool>,
}

/// A running informer. Dropping it stops the informer.
pub struct InformerHandle<K> {
    store: Store<K>,
    synced: Synced,
    task: JoinHandle<()>,
}

impl<K> InformerHandle<K> {
    /// The informer's cache.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// True once the first list is in the store.
    pub fn has_synced(&self) -> bool {
        self.synced.has_synced()
    }

    /// Waits until the first list is in the store; false if the informer stopped.
    pub async fn wait_synced(&self) -> bool {
        self.synced.clone().wait_synced().await
    }

    /// A clonable sync flag, for code that does not hold the handle.
    pub fn synced(&self) -> Synced {
        self.synced.clone()
    }
}

impl<K> Drop for InformerHandle<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What ended one watch.
enum WatchEnd {
    /// The server ended it normally; `healthy` if it lasted or carried events.
    Closed { healthy: bool },
    /// The resource version is too old: relist.
    Gone,
    /// Failure; retry the watch after a backoff.
    Failed(Error),
}

impl<K: ApiResource> Informer<K> {
    /// An informer over `api` (which fixes kind and namespace).
    pub fn new(api: Api<K>, config: InformerConfig) -> Informer<K> {
        let (synced_tx, synced_rx) = watch::channel(false);
        Informer {
            api,
            config,
            store: Store::new(),
            handlers: Vec::new(),
            senders: Vec::new(),
            synced_tx,
            synced_rx,
        }
    }

    /// The cache this informer fills; register indexes on it before spawning.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Adds a handler, called for every event in order.
    pub fn add_handler(&mut self, f: impl Fn(&Event<K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(f));
    }

    /// A bounded channel of events. When it is full the informer waits (the
    /// watch is not read meanwhile); a dropped receiver is forgotten.
    pub fn subscribe(&mut self, capacity: usize) -> mpsc::Receiver<Event<K>> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.senders.push(tx);
        rx
    }

    /// The sync flag.
    pub fn synced(&self) -> Synced {
        Synced(self.synced_rx.clone())
    }

    /// Runs the informer on a new task.
    pub fn spawn(self) -> InformerHandle<K> {
        let store = self.store.clone();
        let synced = self.synced();
        let task = tokio::spawn(self.run());
        InformerHandle {
            store,
            synced,
            task,
        }
    }

    /// Runs list-and-watch forever (until the task is dropped or aborted).
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        loop {
            let rv = match self.list_and_replace().await {
                Ok(rv) => rv,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(kind = K::KIND, error = %e, ?delay, "informer list failed");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            self.watch_until_gone(rv, &mut backoff).await;
            tracing::debug!(kind = K::KIND, "informer relisting");
        }
    }

    async fn list_and_replace(&mut self) -> Result<String, Error> {
        let list = self
            .api
            .list_all(&self.config.list_params, self.config.max_items)
            .await?;
        let rv = list.resource_version().to_string();
        let events = self.store.replace(list.items);
        for ev in events {
            self.dispatch(ev).await;
        }
        self.synced_tx.send_replace(true);
        Ok(rv)
    }

    /// Watches from `rv`, resuming from the last seen version after each end,
    /// until the server says the version is gone.
    async fn watch_until_gone(&mut self, mut rv: String, backoff: &mut Backoff) {
        loop {
            match self.watch_once(&mut rv).await {
                WatchEnd::Gone => return,
                WatchEnd::Closed { healthy: true } => backoff.reset(),
                WatchEnd::Closed { healthy: false } => {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                WatchEnd::Failed(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(kind = K::KIND, error = %e, ?delay, rv, "informer watch failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn watch_params(&self) -> WatchParams {
        let min_s = u32::try_from(self.config.min_watch_timeout.as_secs())
            .unwrap_or(u32::MAX / 2)
            .max(1);
        let timeout_s = rand::rng().random_range(min_s..=min_s.saturating_mul(2));
        WatchParams {
            bookmarks: self.config.bookmarks,
            ..WatchParams::from_list(&self.config.list_params).timeout(timeout_s)
        }
    }

    async fn watch_once(&mut self, rv: &mut String) -> WatchEnd {
        let started = Instant::now();
        let mut stream = match self.api.watch(&self.watch_params(), rv).await {
            Ok(s) => s,
            Err(e) if e.is_gone() => return WatchEnd::Gone,
            Err(e) => return WatchEnd::Failed(e),
        };
        let mut n_events = 0_usize;
        while let Some(item) = stream.next().await {
            n_events += 1;
            let ev = match item {
                Ok(WatchEvent::Added(k) | WatchEvent::Modified(k)) => {
                    set_rv(rv, &k);
                    self.store.apply(k)
                }
                Ok(WatchEvent::Deleted(k)) => {
                    set_rv(rv, &k);
                    self.store.delete(k)
                }
                Ok(WatchEvent::Bookmark { resource_version }) => {
                    if !resource_version.is_empty() {
                        *rv = resource_version;
                    }
                    continue;
                }
                Ok(WatchEvent::Error(s)) if status_is_gone(&s) => return WatchEnd::Gone,
                Ok(WatchEvent::Error(s)) => return WatchEnd::Failed(Error::Api(s)),
                Err(e) => return WatchEnd::Failed(e),
            };
            self.dispatch(ev).await;
        }
        // client-go treats a watch that ends at once with nothing in it as a
        // failure, so that a server closing every watch does not spin us.
        WatchEnd::Closed {
            healthy: n_events > 0 || started.elapsed() >= Duration::from_secs(1),
        }
    }

    async fn dispatch(&mut self, ev: Event<K>) {
        for h in &self.handlers {
            h(&ev);
        }
        let mut closed = false;
        for tx in &self.senders {
            closed |= tx.send(ev.clone()).await.is_err();
        }
        if closed {
            self.senders.retain(|tx| !tx.is_closed());
        }
    }
}

fn set_rv<K: ApiResource>(rv: &mut String, obj: &K) {
    if let Some(v) = obj
        .metadata()
        .resource_version
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        v.clone_into(rv);
    }
}

/// Exponential backoff with up to 10% jitter, capped.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = base.mul_f64(rand::rng().random_range(0.0..0.1));
        (base + jitter).min(self.max)
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let d: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(100) && d[0] <= Duration::from_millis(110));
        assert!(d[1] >= Duration::from_millis(200) && d[1] <= Duration::from_millis(220));
        assert!(d[2] >= Duration::from_millis(400) && d[2] <= Duration::from_millis(440));
        assert_eq!(d[3], Duration::from_millis(500));
        assert_eq!(d[4], Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(110));
    }
}
