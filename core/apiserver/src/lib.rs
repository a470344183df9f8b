//! Bosun API server: Kubernetes-compatible REST and watch over the [`storage::Storage`] trait.
//!
//! kubectl, the official Python client and the `kube` crate talk to it as to a
//! kube-apiserver: discovery, CRUD with optimistic concurrency, the three patch types,
//! server-side apply with `managedFields` recorded on every write,
//! selectors, paginated LISTs, watches with bookmarks, server-side tables, `Status`
//! errors, bearer-token auth over TLS with HTTP/2.
//!
//! Layout:
//! - [`storage`]: the `Storage` trait (revisioned KV with watch, etcd's model) and
//!   `MemoryStorage`, its in-memory MVCC reference implementation.
//! - [`resources`]: the served resources; typed logic behind `ResourceOps`.
//! - [`rest`]: the generic REST store (create/get/list/update/patch/delete/watch).
//! - [`cache`]: each stored version decoded once; LIST and WATCH share its wire bytes.
//! - [`alloc`]: ClusterIP and NodePort allocation.
//! - [`server`]: HTTP: auth, routing, negotiation, subresources, serving.
//! - [`openapi`]: OpenAPI v3 operations (what kubectl needs to validate server-side).
//! - [`discovery`], [`table`], [`metrics`], [`tls`], [`request`], [`error`]: the rest.
//!
//! Invariants: every write commits exactly one storage revision and every object's
//! `resourceVersion` is its key's `mod_revision`; a failed request writes nothing; every
//! request body, watch queue and LIST page is bounded; a slow watcher is dropped, never
//! waited for.
//!
//! The main loop, in process (tests drive it the same way over loopback):
//!
//! ```
//! use std::sync::Arc;
//! use bosun_apiserver::server::{ApiServer, ServerConfig};
//! use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let storage = MemoryStorage::new(MemoryStorageConfig::default());
//! let server = ApiServer::new(storage, ServerConfig::default()).await.unwrap();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let serving = tokio::spawn(bosun_apiserver::server::serve(server, listener, None, async {
//!     let _ = stopped.await;
//! }));
//! // ... clients talk to the listener's address here ...
//! stop.send(()).unwrap();
//! serving.await.unwrap();
//! # });
//! ```

pub mod alloc;
pub mod cache;
pub mod discovery;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod resources;
pub mod rest;
pub mod server;
pub mod storage;
pub mod table;
pub mod tls;

pub use error::ApiError;
pub use server::{ApiServer, ServerConfig, serve};
