//! Bosun harness: load generators and workloads, with latency measured as hdrhistogram
//! percentiles and results written as JSON whose keys carry their units.
//!
//! Layout:
//! - [`apiload`]: an API server load of N concurrent clients creating and updating pods
//!   over HTTP/2, open-loop at a target rate.
//! - [`stats`]: latency histograms and their JSON summary.
//! - [`model`]: nodes and pods as plain data, and their conversion to Kubernetes objects.
//! - [`datasets`]: checksum-verified loaders for the real traces in `datasets/`.
//! - [`replay`]: a trace's pods as a workload: FGD-style resampling or time replay.
//! - [`synth`]: synthetic clusters and pod workloads, reproducible from a seed.
//! - [`rng`]: the seeded, portable random stream every generator draws from.
//!
//! Invariants: every load is bounded in time and in the number of objects it creates,
//! and cleans up what it created; latency of a paced request is measured from the time
//! it was due, not the time it was sent, so a stalled server cannot hide its stall
//! (no coordinated omission).

pub mod apiload;
pub mod datasets;
pub mod model;
pub mod replay;
pub mod rng;
pub mod stats;
pub mod synth;
