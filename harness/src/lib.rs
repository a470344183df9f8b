//! Bosun harness: load generators and workloads, with latency measured as hdrhistogram
//! percentiles and results written as JSON whose keys carry their units.
//!
//! Layout:
//! - [`apiload`]: an API server load of N concurrent clients creating and updating pods
//!   over HTTP/2, open-loop at a target rate.
//! - [`stats`]: latency histograms and their JSON summary.
//!
//! Invariants: every load is bounded in time and in the number of objects it creates,
//! and cleans up what it created; latency of a paced request is measured from the time
//! it was due, not the time it was sent, so a stalled server cannot hide its stall
//! (no coordinated omission).

pub mod apiload;
pub mod stats;
