//! `EtcdStorage`: [`Storage`] over any etcd v3 endpoint, through the `etcd-client`
//! crate: a real etcd (3.4 and later) or `bosun store` (bosun-store-engine's service).
//!
//! Mapping (the same as [`super::embedded`], over the wire):
//! - create: a txn with `create_revision(key) == 0`;
//! - update/delete: a txn with `version(key) > 0 && mod_revision(key) == expected`;
//!   when it fails, a read of the key tells `NotFound` from `Conflict`;
//! - get/list: a range at a revision with `limit`; `remaining` is the range's `count`
//!   minus the keys returned;
//! - watch: one etcd watch stream per watcher, from `after + 1`, with `prev_kv` and
//!   `progress_notify`; every `progress_interval` the forwarding task also sends a
//!   progress request, whose answer becomes [`WatchEvent::Progress`].
//!
//! Errors: gRPC `Unavailable`/`DeadlineExceeded`/`Cancelled` and transport failures are
//! [`StorageError::Unavailable`]; etcd's "required revision has been compacted" is
//! `Compacted` and "required revision is a future revision" is `FutureRevision`.
//!
//! Differences from [`super::MemoryStorage`] that etcd forces, all outside the common
//! contract:
//! - etcd does not report its compacted revision. [`EtcdStorage::compacted_revision`]
//!   finds it by a binary search of reads at past revisions (reads below it fail), about
//!   `log2(current)` small requests; `Compacted` errors name it the same way.
//! - A watcher that falls behind is etcd's business: etcd moves it to its unsynced group
//!   and catches it up (writers never wait); if the history it needs is compacted
//!   meanwhile, the stream yields `Compacted` and ends. A cancellation for any other
//!   reason yields `WatcherTooSlow`.
//! - Progress requests: etcd answers them for the whole stream (watch id -1), and etcd
//!   3.4 answers at once with the store's revision even while the watcher is still
//!   replaying history (the conformance suite saw a progress at 7 overtake the replayed
//!   event at 4; fixed in etcd 3.5.8). Only notifications that name this watcher's id
//!   count: etcd sends those (every `--experimental-watch-progress-notify-interval`,
//!   10 minutes by default) only for a watcher that is synced, in order with its
//!   events. `bosun store` answers progress requests per watcher, so there the
//!   `progress_interval` requests count too; against a real etcd they are ignored and
//!   the progress interval is etcd's.
//! - A store shared with other writers (another API server) is not at revision 1 when
//!   empty of our keys; the contract only speaks of revisions relative to each other.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions, WatchResponse,
};
use tokio::sync::{mpsc, watch};

use super::embedded::{list_range, prefix_range};
use super::{
    Deleted, KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent,
    WatchStream,
};

/// The oldest revision any store can be read at: an empty etcd is at revision 1.
const FIRST_REVISION: Revision = 1;

/// Configuration of an [`EtcdStorage`].
#[derive(Clone, Debug)]
pub struct EtcdStorageConfig {
    /// Bound on establishing a connection to an endpoint.
    pub connect_timeout: Duration,
    /// Capacity of each [`WatchStream`], in events. Must be at least 1.
    pub watch_backlog_events: usize,
    /// How often each watcher asks the server for a progress notification (answered per
    /// watcher by `bosun store`, ignored from a real etcd: see the module docs). Zero:
    /// only the server's own `progress_notify` ones (etcd: every 10 minutes).
    pub progress_interval: Duration,
}

impl Default for EtcdStorageConfig {
    fn default() -> Self {
        EtcdStorageConfig {
            connect_timeout: Duration::from_secs(5),
            watch_backlog_events: 1024,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// [`Storage`] over an etcd v3 endpoint. See the module docs.
pub struct EtcdStorage {
    client: Client,
    config: EtcdStorageConfig,
    /// Dropping this ends every watcher's forwarding task, and so its stream.
    _shutdown: watch::Sender<()>,
    shutdown_rx: watch::Receiver<()>,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EtcdStorage {
    /// Connects to `endpoints` (`http://host:port`) with the default configuration.
    pub async fn connect(endpoints: &[String]) -> Result<Arc<Self>, StorageError> {
        Self::connect_with(endpoints, EtcdStorageConfig::default()).await
    }

    /// Connects to `endpoints` and reads the current revision once, so that an endpoint
    /// that does not answer fails here with `Unavailable`. Panics if
    /// `config.watch_backlog_events` is 0.
    pub async fn connect_with(
        endpoints: &[String],
        config: EtcdStorageConfig,
    ) -> Result<Arc<Self>, StorageError> {
        assert!(
            config.watch_backlog_events >= 1,
            "watch_backlog_events must be at least 1"
        );
        let options = ConnectOptions::new().with_connect_timeout(config.connect_timeout);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(client_error)?;
        let (shutdown, shutdown_rx) = watch::channel(());
        let storage = Arc::new(EtcdStorage {
            client,
            config,
            _shutdown: shutdown,
            shutdown_rx,
        });
        storage.current_revision().await?;
        Ok(storage)
    }

    /// A handle on the client: calls take `&mut`, clones share the connection.
    fn kv(&self) -> Client {
        self.client.clone()
    }

    /// Maps a client error, filling in the revisions etcd's errors leave out.
    async fn error(&self, e: etcd_client::Error, requested: Revision) -> StorageError {
        match client_error(e) {
            StorageError::Compacted { .. } => match self.compacted_revision().await {
                Ok(compacted) => StorageError::Compacted {
                    requested,
                    compacted,
                },
                Err(e) => e,
            },
            StorageError::FutureRevision { .. } => match self.current_revision().await {
                Ok(current) => StorageError::FutureRevision { requested, current },
                Err(e) => e,
            },
            other => other,
        }
    }

    /// Fails unless `compacted <= revision <= current`, with one small read at
    /// `revision` (etcd checks both bounds on every read).
    async fn check_readable(&self, revision: Revision) -> Result<(), StorageError> {
        if revision < FIRST_REVISION {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.compacted_revision().await?,
            });
        }
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self.kv().get(vec![0], Some(options)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(e, revision).await),
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StorageError> {
        self.kv().txn(txn).await.map_err(client_error)
    }

    /// The live value of `key` now, for telling why a txn's compare failed.
    async fn live(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let resp = self.kv().get(key, None).await.map_err(client_error)?;
        resp.kvs().first().map(to_kv).transpose()
    }

    /// `NotFound` or `Conflict` for a write whose preconditions failed, from a fresh read.
    async fn precondition_failed(&self, key: &str, expected: Option<Revision>) -> StorageError {
        match self.live(key).await {
            Err(e) => e,
            Ok(None) => StorageError::NotFound {
                key: key.to_owned(),
            },
            Ok(Some(kv)) => StorageError::Conflict {
                key: key.to_owned(),
                // Only reachable with an expectation: without one, a live key passes.
                expected: expected.unwrap_or(0),
                actual: kv.mod_revision,
            },
        }
    }

    /// Whether a read at `revision` is refused as compacted.
    async fn is_compacted(&self, revision: Revision) -> Result<bool, StorageError> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self.kv().get(vec![0], Some(options)).await {
            Ok(_) => Ok(false),
            Err(e) => match client_error(e) {
                StorageError::Compacted { .. } => Ok(true),
                // A concurrent writer cannot make `revision <= current` future.
                other => Err(other),
            },
        }
    }
}

/// The compares "the key is live", and "its mod_revision is `expected`" if given.
fn live_compares(key: &str, expected: Option<Revision>) -> Vec<Compare> {
    let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
    if let Some(expected) = expected {
        compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
    }
    compares
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StorageError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::Internal("etcd response without a header".to_owned()))
}

/// The key-value a successful put wrote, from the txn's revision and the previous value.
fn put_result(key: &str, value: Bytes, resp: &TxnResponse) -> Result<KeyValue, StorageError> {
    let revision = header_revision(resp.header())?;
    let prev = match resp.op_responses().into_iter().next() {
        Some(TxnOpResponse::Put(put)) => put.prev_key().cloned(),
        other => return Err(unexpected("put response", other)),
    };
    let (create_revision, version) = match prev {
        Some(prev) => (prev.create_revision(), prev.version() + 1),
        None => (revision, 1),
    };
    Ok(KeyValue {
        key: key.to_owned(),
        value,
        create_revision,
        mod_revision: revision,
        version,
    })
}

fn unexpected(what: &str, got: impl std::fmt::Debug) -> StorageError {
    StorageError::Internal(format!("etcd answered {got:?} where a {what} was expected"))
}

fn to_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue, StorageError> {
    let key = kv
        .key_str()
        .map_err(|_| StorageError::Internal(format!("key {:?} is not UTF-8", kv.key())))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    })
}

/// Maps a client error. Revisions etcd does not report are left at 0 (see
/// [`EtcdStorage::error`]).
fn client_error(e: etcd_client::Error) -> StorageError {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            match status.code() {
                _ if message.contains("required revision has been compacted") => {
                    StorageError::Compacted {
                        requested: 0,
                        compacted: 0,
                    }
                }
                _ if message.contains("required revision is a future revision") => {
                    StorageError::FutureRevision {
                        requested: 0,
                        current: 0,
                    }
                }
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                    StorageError::Unavailable(format!("etcd: {message}"))
                }
                Code::ResourceExhausted => StorageError::TooLarge(format!("etcd: {message}")),
                Code::InvalidArgument if message.contains("too large") => {
                    StorageError::TooLarge(format!("etcd: {message}"))
                }
                Code::InvalidArgument if message.contains("too many operations") => {
                    StorageError::TooLarge(format!("etcd: {message}"))
                }
                code => StorageError::Internal(format!("etcd: {code:?}: {message}")),
            }
        }
        e @ (etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_)
        | etcd_client::Error::EndpointError(_)
        | etcd_client::Error::WatchError(_)) => StorageError::Unavailable(e.to_string()),
        e => StorageError::Internal(e.to_string()),
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn current_revision(&self) -> Result<Revision, StorageError> {
        let options = GetOptions::new().with_count_only();
        let resp = self
            .kv()
            .get(vec![0], Some(options))
            .await
            .map_err(client_error)?;
        header_revision(resp.header())
    }

    async fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StorageError> {
        if let Some(at) = at.filter(|&at| at < FIRST_REVISION) {
            return Err(StorageError::Compacted {
                requested: at,
                compacted: self.compacted_revision().await?,
            });
        }
        let requested = at.unwrap_or(0);
        let options = GetOptions::new().with_revision(requested);
        let resp = match self.kv().get(key, Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.error(e, requested).await),
        };
        let kv = resp.kvs().first().map(to_kv).transpose()?;
        Ok((kv, at.unwrap_or(header_revision(resp.header())?)))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        if let Some(at) = opts.at.filter(|&at| at < FIRST_REVISION) {
            return Err(StorageError::Compacted {
                requested: at,
                compacted: self.compacted_revision().await?,
            });
        }
        let (key, range_end) = list_range(prefix, opts.start.as_deref());
        let limit = i64::try_from(opts.limit.unwrap_or(0)).unwrap_or(i64::MAX);
        let mut options = GetOptions::new()
            .with_revision(opts.at.unwrap_or(0))
            .with_limit(limit);
        if !range_end.is_empty() {
            options = options.with_range(range_end);
        }
        let resp = match self.kv().get(key, Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.error(e, opts.at.unwrap_or(0)).await),
        };
        let mut items = Vec::with_capacity(resp.kvs().len());
        for kv in resp
            .kvs()
            .iter()
            .filter(|kv| kv.key().starts_with(prefix.as_bytes()))
        {
            items.push(to_kv(kv)?);
        }
        let count = usize::try_from(resp.count()).expect("a count is non-negative");
        Ok(ListResult {
            items,
            revision: opts.at.unwrap_or(header_revision(resp.header())?),
            remaining: count.saturating_sub(resp.kvs().len()),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        put_result(key, value, &resp)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StorageError> {
        let expected = Some(expected_mod_revision);
        let txn = Txn::new()
            .when(live_compares(key, expected))
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(self.precondition_failed(key, expected).await);
        }
        put_result(key, value, &resp)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<Deleted, StorageError> {
        let txn = Txn::new()
            .when(live_compares(key, expected_mod_revision))
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(self.precondition_failed(key, expected_mod_revision).await);
        }
        let prev = match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Delete(d)) => d.prev_kvs().first().map(to_kv).transpose()?,
            other => return Err(unexpected("delete response", other)),
        };
        Ok(Deleted {
            prev: prev.ok_or_else(|| unexpected("deleted value", "none"))?,
            revision: header_revision(resp.header())?,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        self.check_readable(after).await?;
        let (key, range_end) = prefix_range(prefix.as_bytes());
        let options = WatchOptions::new()
            .with_range(range_end)
            .with_start_revision(after + 1)
            .with_prev_key()
            .with_progress_notify();
        let mut client = self.kv();
        let stream = client
            .watch(key, Some(options))
            .await
            .map_err(client_error)?;
        let (requests, mut responses) = stream.split();
        // The first response says whether the watch was created, and its id.
        let watch_id = match responses.message().await {
            Ok(Some(resp)) if resp.created() && !resp.canceled() => resp.watch_id(),
            Ok(Some(resp)) if resp.compact_revision() > 0 => {
                return Err(StorageError::Compacted {
                    requested: after,
                    compacted: resp.compact_revision(),
                });
            }
            Ok(Some(resp)) => {
                return Err(StorageError::Unavailable(format!(
                    "etcd refused the watch: {}",
                    resp.cancel_reason()
                )));
            }
            Ok(None) => {
                return Err(StorageError::Unavailable(
                    "etcd closed the watch stream".to_owned(),
                ));
            }
            Err(e) => return Err(client_error(e)),
        };
        let (tx, rx) = mpsc::channel(self.config.watch_backlog_events);
        let forward = Forward {
            tx,
            watch_id,
            last_revision: after,
            progress_interval: self.config.progress_interval,
            shutdown: self.shutdown_rx.clone(),
        };
        tokio::spawn(forward.run(requests, responses));
        Ok(WatchStream::new(rx))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        match self.kv().compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(e) => match self.error(e, revision).await {
                // etcd refuses to compact at or below the compacted revision; the
                // contract makes it a no-op.
                StorageError::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        // The smallest readable revision in [1, current]: reads below the compacted
        // revision fail, reads at or above it succeed.
        let (mut lo, mut hi) = (FIRST_REVISION, self.current_revision().await?);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.is_compacted(mid).await? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// Moves one etcd watch stream's responses to its [`WatchStream`].
struct Forward {
    tx: mpsc::Sender<Result<WatchEvent, StorageError>>,
    /// The server's id of this watcher: only progress notifications that name it count.
    watch_id: i64,
    /// The newest revision delivered (or `after`).
    last_revision: Revision,
    progress_interval: Duration,
    shutdown: watch::Receiver<()>,
}

impl Forward {
    async fn run(
        mut self,
        mut requests: etcd_client::WatchRequestSender,
        mut responses: etcd_client::WatchResponseStream,
    ) {
        // A zero interval disables progress requests: tick once a day and ignore it.
        let period = if self.progress_interval.is_zero() {
            Duration::from_secs(86_400)
        } else {
            self.progress_interval
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let response = tokio::select! {
                r = responses.message() => r,
                _ = ticks.tick() => {
                    if !self.progress_interval.is_zero()
                        && requests.request_progress().await.is_err()
                    {
                        let error = StorageError::Unavailable("etcd watch stream closed".into());
                        let _ = self.tx.send(Err(error)).await;
                        return;
                    }
                    continue;
                }
                _ = self.shutdown.changed() => return,
                _ = self.tx.closed() => return,
            };
            let response = match response {
                Ok(Some(response)) => response,
                Ok(None) => return,
                Err(e) => {
                    let _ = self.tx.send(Err(client_error(e))).await;
                    return;
                }
            };
            if !self.deliver(response).await {
                return;
            }
        }
    }

    /// Sends one response's events (or progress) on; false once the stream is over.
    async fn deliver(&mut self, response: WatchResponse) -> bool {
        if response.canceled() {
            let error = if response.compact_revision() > 0 {
                StorageError::Compacted {
                    requested: self.last_revision,
                    compacted: response.compact_revision(),
                }
            } else {
                StorageError::WatcherTooSlow
            };
            let _ = self.tx.send(Err(error)).await;
            return false;
        }
        if response.events().is_empty() {
            let Ok(revision) = header_revision(response.header()) else {
                return true;
            };
            // Only a notification for this watcher vouches for its events (see the
            // module docs on etcd 3.4); an older one says nothing new.
            if response.watch_id() != self.watch_id || revision < self.last_revision {
                return true;
            }
            let event = WatchEvent::Progress { revision };
            return self.tx.send(Ok(event)).await.is_ok();
        }
        for event in response.events() {
            let event = to_event(event);
            let failed = event.is_err();
            if let Ok(event) = &event {
                self.last_revision = event.revision();
            }
            if self.tx.send(event).await.is_err() || failed {
                return false;
            }
        }
        true
    }
}

fn to_event(event: &etcd_client::Event) -> Result<WatchEvent, StorageError> {
    let kv = event
        .kv()
        .ok_or_else(|| unexpected("watch event's kv", "none"))?;
    let prev = event.prev_kv().map(to_kv).transpose()?;
    match event.event_type() {
        EventType::Put => Ok(WatchEvent::Put {
            kv: to_kv(kv)?,
            prev,
        }),
        EventType::Delete => match prev {
            Some(prev) => Ok(WatchEvent::Delete {
                prev,
                revision: kv.mod_revision(),
            }),
            // etcd leaves prev_kv out when the previous version was compacted away.
            None => Err(StorageError::Compacted {
                requested: kv.mod_revision() - 1,
                compacted: kv.mod_revision(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    use super::client_error;
    use crate::storage::StorageError;

    /// etcd's gRPC errors (`api/v3rpc/rpctypes/error.go`) as `bosun store` and etcd send
    /// them, one row per case, to the storage error they mean.
    #[test]
    fn grpc_errors_map_to_storage_errors() {
        let compacted = StorageError::Compacted {
            requested: 0,
            compacted: 0,
        };
        let future = StorageError::FutureRevision {
            requested: 0,
            current: 0,
        };
        let too_large = |m: &str| StorageError::TooLarge(format!("etcd: {m}"));
        let unavailable = |m: &str| StorageError::Unavailable(format!("etcd: {m}"));
        let cases = [
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
                compacted,
            ),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
                future,
            ),
            (
                Code::InvalidArgument,
                "etcdserver: request is too large",
                too_large("etcdserver: request is too large"),
            ),
            (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
                too_large("etcdserver: too many operations in txn request"),
            ),
            (
                Code::Unavailable,
                "etcdserver: leader changed",
                unavailable("etcdserver: leader changed"),
            ),
            (
                Code::DeadlineExceeded,
                "etcdserver: request timed out",
                unavailable("etcdserver: request timed out"),
            ),
            (
                Code::InvalidArgument,
                "etcdserver: key is not provided",
                StorageError::Internal(
                    "etcd: InvalidArgument: etcdserver: key is not provided".into(),
                ),
            ),
        ];
        for (code, message, expected) in cases {
            let error = etcd_client::Error::GRpcStatus(Status::new(code, message));
            assert_eq!(client_error(error), expected, "{code:?} {message}");
        }
    }
}
