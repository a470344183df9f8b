//! Bosun's store engine: a durable, log-structured MVCC key-value store on etcd v3's
//! data model (revisions, generations, tombstones, txns with compares, compaction).
//!
//! The engine core is wrapped by a watch hub, a lessor and the etcd v3 gRPC service
//! ([`serve`], which etcdctl 3.4 drives); Raft comes later. The engine knows nothing of
//! pods or of the API server.
//!
//! # Layout
//!
//! - [`types`]: requests, responses, events and the request limits (etcd's).
//! - [`error`]: typed errors per layer and the umbrella [`Error`].
//! - [`index`]: the in-memory index, each key to its revision history.
//! - [`mvcc`]: the pure state machine: apply one txn at the next revision, return what
//!   to persist; serve reads at any retained revision. No IO.
//! - [`codec`]: record framing (`len | crc32c | kind | payload`) and payload encodings.
//! - [`logfile`]: the `LogFile`/`LogDir` IO traits, the std::fs and in-memory backends,
//!   and [`HostDir`], a host backend chosen at run time ([`LogBackend`]).
//! - [`uring`]: the io_uring backend (the crate's only `unsafe`).
//! - [`wal`]: segments: append, roll, scan with CRC checks and torn-tail repair.
//! - [`checkpoint`]: the whole index at a segment boundary, for fast restart.
//! - [`engine`]: the writer thread (group commit) fed by blocking and async callers
//!   through one bounded queue, checkpointer and garbage collection, reads, commit
//!   hooks.
//! - [`watch`]: the watch hub: fan-out of each durable revision (events shared and
//!   encoded once), bounded per-watcher queues, catch-up from history, compaction.
//! - [`lease`]: the lessor: grant, keep-alive, revoke, TTL, expiry on a [`Clock`];
//!   grants persisted in a second log, attached keys deleted in one revision.
//! - [`store`]: [`Store`], the engine with its hub and lessor, opened from a data dir.
//! - [`proto`]: the etcd v3 wire types and stubs generated from `proto/` (protox).
//! - [`grpc`]: the etcd v3 service (KV, Watch, Lease, Maintenance.Status) and [`serve`].
//!
//! # Invariants
//!
//! - A write is acknowledged only after its record is durable (one fdatasync per group),
//!   unless [`SyncMode::NoSyncBenchmarkOnly`] says otherwise.
//! - Reads see exactly the durable revisions: nothing a crash could take back.
//! - Each write txn takes one main revision; its changes are numbered by `sub`. A txn
//!   that fails a check changes nothing.
//! - The log replays to the state it acknowledged: a bad record is truncated only when
//!   it is the torn tail of the last segment; anywhere else it is a [`Corruption`]
//!   naming the file and offset. CRCs are checked in release builds.
//! - Segments below a durable checkpoint's id are covered by it and may be removed.
//!   Garbage collection is such a checkpoint, started when compaction has left most of
//!   the bytes on disk dead (see [`engine`]).
//! - The writer never waits for a watcher: a full watcher queue moves it to catch-up.
//! - A watcher sees every revision in its range from its start revision, once and in
//!   order, or a cancellation naming the compacted revision it needed.
//! - Keys attached to a lease go in one revision when it is revoked or expires (in
//!   consecutive full revisions if they do not fit one: see [`lease`]).
//!
//! # Example: the main loop
//!
//! ```
//! use bosun_store_engine::*;
//!
//! let dir = MemDir::new(); // or StdDir::open(path)?
//! let engine = Engine::open(dir.clone(), EngineConfig::default())?;
//! let put = |k: &str, v: &str| PutRequest { key: k.into(), value: v.into(), ..Default::default() };
//! engine.put(put("/registry/pods/a", "1"))?; // revision 2: an empty store is at 1
//! engine.put(put("/registry/pods/b", "2"))?; // revision 3
//!
//! // Optimistic concurrency as the API server does it: write only if unchanged.
//! let txn = TxnRequest {
//!     compare: vec![Compare {
//!         key: b"/registry/pods/a".to_vec(),
//!         range_end: vec![],
//!         result: CompareResult::Equal,
//!         target: CompareTarget::ModRevision(2),
//!     }],
//!     success: vec![RequestOp::Put(put("/registry/pods/a", "1b"))],
//!     failure: vec![],
//! };
//! assert!(engine.txn(txn)?.succeeded);
//!
//! let list = RangeRequest { key: b"/registry/pods/".to_vec(), range_end: b"/registry/pods0".to_vec(), ..Default::default() };
//! assert_eq!(engine.range(&list)?.count, 2);
//! engine.compact(3)?;
//! drop(engine);
//!
//! // Restart: replay the log.
//! let engine = Engine::open(dir, EngineConfig::default())?;
//! assert_eq!(engine.current_revision(), 4);
//! assert_eq!(&engine.range(&list)?.kvs[0].value[..], b"1b");
//! # Ok::<(), bosun_store_engine::Error>(())
//! ```
//!
//! # Example: serving the etcd v3 API
//!
//! ```no_run
//! use bosun_store_engine::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = std::sync::Arc::new(Store::open("/var/lib/bosun-store", StoreConfig::default())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2379").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! serve(store, listener, ServerConfig::default(), shutdown).await?;
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod codec;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod index;
pub mod lease;
pub mod logfile;
pub mod mvcc;
pub mod proto;
pub mod recent;
pub mod store;
pub mod types;
pub mod uring;
pub mod wal;
pub mod watch;

pub use engine::{
    CommitHook, Engine, EngineConfig, EngineStats, MAX_COMMIT_HOOKS, SWEEP_CHUNKS_PER_STEP,
    SyncMode,
};
pub use error::{Corruption, Error, RequestError, TailRepair};
pub use grpc::{ServeError, ServerConfig, serve};
pub use lease::{Clock, FakeClock, LeaseError, LeaseInfo, Lessor, SystemClock};
pub use logfile::{HostDir, HostFile, LogBackend, LogDir, LogFile, MemDir, MemFile, StdDir};
pub use mvcc::{Applied, HistoryChunk, HistoryScan, Mvcc, TxnLimits};
pub use store::{Store, StoreConfig};
pub use types::*;
pub use uring::UringDir;
pub use watch::{HubConfig, SlowWatcherPolicy, WatchHub, WatchMessage, WatchSpec, Watcher};
