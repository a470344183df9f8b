//! Bosun harness: load generators and workloads, with latency measured as hdrhistogram
//! percentiles and results written as JSON whose keys carry their units.
//!
//! Layout:
//! - [`apiload`]: an API server load of N concurrent clients creating and updating pods
//!   over HTTP/2, open-loop at a target rate.
//! - [`stats`]: latency histograms and their JSON summary.
//! - [`timeline`]: a load run second by second, beside the machine's steal (shared by
//!   `apiload` and `storeload`).
//! - `storeload` (feature `etcd`): the etcd v3 load generator of `bosun bench store`;
//!   its watch streams go through the `etcd-client` crate (which needs protoc to
//!   build, hence the feature).
//! - [`etcdrpc`]: the lean unary KV client the generator's clients use (its own
//!   HTTP/2 connection loop, one task per connection).
//! - `storepeers` (feature `etcd`): `bosun store` and a real etcd started side by side
//!   in temporary directories, their RSS and bytes on disk, an fdatasync probe.
//! - [`model`]: nodes and pods as plain data, and their conversion to Kubernetes objects.
//! - [`datasets`]: checksum-verified loaders for the real traces in `datasets/`.
//! - [`replay`]: a trace's pods as a workload: FGD-style resampling or time replay.
//! - [`synth`]: synthetic clusters and pod workloads, reproducible from a seed.
//! - [`rng`]: the seeded, portable random stream every generator draws from.
//! - [`scenario`]: scheduling scenarios in YAML (scheduler_perf's shapes, openb-fgd),
//!   shipped in `harness/scenarios/`, loaded by name or path.
//! - [`sim`]: the simulation driver: algorithms in-process against an in-memory cluster
//!   in simulated time; [`sim::run_scenario`] is the entry point.
//! - [`metrics`]: placement quality (allocation, load spread, FGD GPU fragmentation).
//! - [`report`]: a run's JSON, terminal table and Markdown report.
//! - [`plots`]: the Markdown report's SVG plots (throughput, latency CDFs, GPU curves).
//! - [`check`]: the invariants every simulated run must satisfy.
//! - [`error`]: [`error::HarnessError`], the umbrella error of scenario runs.
//!
//! Invariants: every load is bounded in time and in the number of objects it creates,
//! and cleans up what it created; latency of a paced request is measured from the time
//! it was due, not the time it was sent, so a stalled server cannot hide its stall
//! (no coordinated omission).

pub mod apiload;
pub mod check;
pub mod datasets;
pub mod e2e;
pub mod error;
pub mod etcdrpc;
pub mod metrics;
pub mod model;
pub mod plots;
pub mod replay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod stats;
#[cfg(feature = "etcd")]
pub mod storeload;
#[cfg(feature = "etcd")]
pub mod storepeers;
pub mod synth;
pub mod timeline;
