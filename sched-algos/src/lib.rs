//! Bosun's scheduler algorithms: the filter/score framework with the shape of
//! kube-scheduler's (`pkg/scheduler/framework`), its default plugins with upstream's
//! exact semantics and score formulas, a cache with incremental snapshots, and
//! [`schedule_one`], one scheduling cycle; Bosun's own placement policies as plugins
//! (FGD, DRF, Tetris, first fit) and a batch placer by min-cost flow.
//!
//! The algorithms take a [`Snapshot`] and a [`PodInfo`] and return a [`Decision`] (or
//! why not); they do no IO and read no clock. Binding is returned as a `v1.Binding`
//! for the caller to send; assumed pods are the caller's to record in the [`Cache`].
//!
//! # Layout
//!
//! - [`status`]: the closed [`Code`] enum and [`Status`].
//! - [`resource`]: [`Resource`] amounts, scalar-resource naming rules, non-zero defaults.
//! - [`pod_info`]: [`PodInfo`], computed once per pod (requests, tolerations, affinity,
//!   ports, images); taints, tolerations and host ports.
//! - [`selectors`]: node selector terms as upstream's `nodeaffinity` helpers.
//! - [`affinity`]: inter-pod affinity terms (namespaces, namespace selectors).
//! - [`node_info`]: [`NodeInfo`], a node plus the sums over its pods.
//! - [`cache`]: [`Cache`] (nodes, pods, assumed pods, generations) and [`Snapshot`]
//!   (nodes plus structure-of-arrays [`NodeColumns`](cache::NodeColumns)).
//! - [`framework`]: one trait per extension point, [`CycleState`], [`Extensions`].
//! - [`registry`]: name-keyed plugin factories; duplicates are refused.
//! - [`profile`]: `KubeSchedulerConfiguration` YAML to [`Profiles`].
//! - [`plugins`]: one module per plugin.
//! - [`schedule`]: [`schedule_one`], [`FitError`], tie-breaking RNG, node sampling;
//!   [`score_nodes`](schedule::score_nodes) (a cycle without the selection) and Reserve.
//! - [`fragmentation`]: GPU fragmentation against a task mix (the FGD paper's measure).
//! - [`flow`]: min-cost flow (successive shortest paths with potentials).
//! - [`batch`]: a window of pods placed at once by min-cost flow (Firmament style).
//! - [`service`]: the scheduler service: informers, bounded queue, bind, Events (the IO edge).
//! - [`fixtures`]: builders of k8s Pods and Nodes for tests and benches.
//!
//! # Invariants
//!
//! - A node's `requested` is the sum of its pods' requests, assumed pods included; the
//!   NodeResourcesFit filter admits a pod only if every requested resource fits what is
//!   left, so a cache fed only by `schedule_one` + `assume_pod` never over-commits.
//! - Scores reaching the selection are in `0..=100` per plugin (checked every cycle),
//!   multiplied by weights >= 1.
//! - Every generation stamped on a node is unique and increasing; a snapshot at
//!   generation `g` equals the cache state at `g` after `update_snapshot`.
//! - Same snapshot, pod, profile and RNG seed: same decision. Parallelism changes how
//!   fast, never what.
//! - Placement policies (FGD, DRF, Tetris, first fit, random, the batch placer) change
//!   only how a node is chosen among those that pass the profile's filters; a batch
//!   re-runs the filters for a placement that an earlier one of its round may have
//!   invalidated.
//!
//! # The main loop
//!
//! ```
//! use std::sync::Arc;
//! use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
//! use bosun_sched_algos::{Cache, CycleContext, PodInfo, Profiles, Registry, Snapshot, schedule_one};
//!
//! let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
//! let mut cache = Cache::new();
//! for i in 0..3 {
//!     cache.add_node(&NodeBuilder::new(&format!("n{i}")).capacity("2", "4Gi", 110).build()).unwrap();
//! }
//! let mut snapshot = Snapshot::default();
//! let mut ctx = CycleContext::seeded(42);
//! for i in 0..5 {
//!     let pod = Arc::new(PodInfo::new(PodBuilder::new(&format!("p{i}")).request("1", "1Gi").build()).unwrap());
//!     let profile = profiles.for_pod(&pod).expect("default-scheduler");
//!     cache.update_snapshot(&mut snapshot); // copies only nodes changed since last cycle
//!     match schedule_one(profile, &snapshot, &pod, &mut ctx) {
//!         Ok(decision) => cache.assume_pod(pod, &decision.node_name).unwrap(),
//!         Err(e) => println!("{e}"),
//!     }
//! }
//! // Six CPUs in all, five one-CPU pods: all placed, at most two per node.
//! assert_eq!(cache.n_pods(), 5);
//! ```

pub mod affinity;
pub mod batch;
pub mod cache;
pub mod fixtures;
pub mod flow;
pub mod fragmentation;
pub mod framework;
pub mod memo;
pub mod metrics;
pub mod node_info;
pub mod permit;
pub mod plugins;
pub mod pod_info;
pub mod profile;
pub mod registry;
pub mod resource;
pub mod schedule;
pub mod selectors;
pub mod service;
pub mod status;

pub use cache::{Cache, CacheError, Snapshot};
pub use framework::{CycleState, Extensions, MAX_NODE_SCORE};
pub use node_info::NodeInfo;
pub use pod_info::{PodInfo, QueuedPodInfo};
pub use profile::{NodeSampling, Profile, Profiles};
pub use registry::{ConfigError, Registry};
pub use resource::Resource;
pub use schedule::{
    CycleContext, Decision, FitError, ScheduleError, SplitMix64, TieBreakRng, schedule_one,
};
pub use status::{Code, Status};
