//! Criterion suites for Bosun's hot paths, one file per component under `benches/`:
//!
//! - `api`: decode, default, validate and encode a typical Pod (the API server's
//!   per-request object work).
//! - `apiserver`: LIST of 100k pods with a label selector through the REST layer, and one
//!   storage write fanned out to 1k watchers.
//! - `sched`: one full scheduling cycle (snapshot, filter, score, assume) on the
//!   SchedulingBasic shape at 1k to 10k nodes, every node scored.
//! - `store_engine`: group-committed puts (fdatasync vs no-sync, 1 vs 8 writers), ranges,
//!   index lookups, and the pure MVCC apply path.
//!
//! Run one suite with `cargo bench -p bosun-benches --bench api`. Figures and the commands
//! that produced them are recorded in `BENCHMARKS.md` at the repository root.
//!
//! Every suite runs on [`Allocator`]: mimalloc, as the `bosun` binary does, so that an
//! allocation-heavy change is measured as it will run. `--features system-alloc` runs
//! them on the system allocator instead, to compare the two.

/// The suites' global allocator: each suite declares
/// `#[global_allocator] static ALLOC: bosun_benches::Allocator = bosun_benches::ALLOCATOR;`.
#[cfg(not(feature = "system-alloc"))]
pub type Allocator = mimalloc::MiMalloc;
#[cfg(not(feature = "system-alloc"))]
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// The suites' global allocator (the system's, by the `system-alloc` feature).
#[cfg(feature = "system-alloc")]
pub type Allocator = std::alloc::System;
#[cfg(feature = "system-alloc")]
pub const ALLOCATOR: Allocator = std::alloc::System;
