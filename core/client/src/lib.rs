//! Bosun client: the typed Kubernetes REST client, the reflector/informer cache
//! and the rate-limited work queue that the scheduler, controllers and kubelet
//! are built on.
//!
//! It speaks kube-apiserver's wire protocol (JSON, chunked watch streams,
//! `metav1.Status` errors), so it works against Bosun's API server and a real
//! kube-apiserver alike.
//!
//! # Layout
//!
//! - [`config`]: [`Config`] from a kubeconfig, in-cluster, or [`Config::new`].
//! - `transport` (private): the tokio-rustls connector under hyper-util's pool; https trusts only the configured CA; ALPN `h2`, `http/1.1`; plain HTTP is HTTP/1.1, or HTTP/2 with prior knowledge when asked.
//! - [`client`]: [`Client`], cheap to clone; timeouts and bounded body reads.
//! - [`api`]: [`Api<K>`], typed verbs on any k8s-openapi kind; URL building.
//! - [`params`]: [`ListParams`], [`WatchParams`], [`DeleteParams`], [`Patch`].
//! - [`watch`]: [`WatchEvent`], the bounded line decoder of watch streams.
//! - [`store`]: [`Store<K>`], the thread-safe cache with secondary indexes.
//! - [`informer`]: [`Informer<K>`], list + watch + relist feeding a store and handlers.
//! - [`workqueue`]: [`WorkQueue<T>`], client-go's work queue semantics, bounded.
//! - [`error`]: [`Error`], with API errors carrying the decoded `Status`.
//!
//! # Invariants
//!
//! - Every response body read is bounded ([`Config::max_object_bytes`],
//!   [`Config::max_list_bytes`], [`Config::max_watch_line_bytes`]); every request
//!   but a watch's body is bounded by [`Config::request_timeout`].
//! - https never falls back to system roots: the configured CA is the only trust
//!   root (or verification is off, when the kubeconfig says so).
//! - The informer's store reflects a prefix of the server's history: after a
//!   list it holds the list's snapshot, and each watch event is applied in order
//!   before handlers see it. On 410 Gone it relists and synthesises the events
//!   that bring handlers to the new snapshot.
//! - A work-queue item is handed to at most one worker at a time, and an add
//!   during processing is never lost.
//! - Every queue has a bound: the work queue's `max_len`, informer channels'
//!   capacity, and the informer's `max_items` per list.
//!
//! # Example
//!
//! A controller's main loop: an informer feeds a work queue, a worker drains it.
//!
//! ```no_run
//! use bosun_client::{Api, Client, Config, Informer, InformerConfig, WorkQueue};
//! use k8s_openapi::api::core::v1::Pod;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(Config::from_default_kubeconfig()?)?;
//! let mut informer = Informer::new(Api::<Pod>::all(client.clone()), InformerConfig::default());
//! informer.store().add_index("node", |p: &Pod| {
//!     p.spec.as_ref().and_then(|s| s.node_name.clone()).into_iter().collect()
//! })?;
//! let queue = WorkQueue::<String>::new(10_000);
//! let q = queue.clone();
//! informer.add_handler(move |ev| {
//!     let _ = q.add(ev.key());
//! });
//! let informer = informer.spawn();
//! informer.wait_synced().await;
//! while let Some(key) = queue.get().await {
//!     if let Some(pod) = informer.store().get(&key) {
//!         println!("{key} on {:?}", pod.spec.as_ref().and_then(|s| s.node_name.as_deref()));
//!     }
//!     queue.forget(&key);
//!     queue.done(&key);
//! }
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod informer;
pub mod params;
pub mod store;
mod transport;
pub mod watch;
pub mod workqueue;

pub use api::{Api, ApiResource, DeleteResponse, ObjectList};
pub use client::Client;
pub use config::Config;
pub use error::{ConfigError, Error, Result};
pub use informer::{Informer, InformerConfig, InformerHandle, Synced};
pub use params::{DeleteParams, ListParams, Patch, PropagationPolicy, VersionMatch, WatchParams};
pub use store::{Event, Store, StoreError};
pub use watch::{WatchEvent, WatchStream};
pub use workqueue::{QueueError, RateLimiter, WorkQueue};
