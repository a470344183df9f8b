//! Property tests over random clusters and pods, through `schedule_one` + `assume_pod`
//! as the scheduler runs them:
//! - no node is ever over-committed on any resource (cpu, memory, pods, GPUs);
//! - the same seed gives the same placements.
//!
//! The failing seed is printed by proptest and replays the run.

use std::sync::Arc;

use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder, term};
use bosun_sched_algos::{
    Cache, CycleContext, PodInfo, Profiles, Registry, ScheduleError, Snapshot, schedule_one,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct NodeSpec {
    milli_cpu: u32,
    memory_mi: u32,
    pods: u32,
    gpus: u32,
    tainted: bool,
    zone: u8,
}

#[derive(Clone, Debug)]
struct PodSpec {
    milli_cpu: u32,
    memory_mi: u32,
    gpus: u32,
    tolerates: bool,
    zone: Option<u8>,
    best_effort: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        500..16_000_u32,
        512..32_768_u32,
        1..30_u32,
        0..4_u32,
        prop::bool::weighted(0.2),
        0..3_u8,
    )
        .prop_map(
            |(milli_cpu, memory_mi, pods, gpus, tainted, zone)| NodeSpec {
                milli_cpu,
                memory_mi,
                pods,
                gpus,
                tainted,
                zone,
            },
        )
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        0..4_000_u32,
        0..8_192_u32,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.2, 0..3_u8),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(milli_cpu, memory_mi, gpu, tolerates, zone, best_effort)| PodSpec {
                milli_cpu,
                memory_mi,
                gpus: u32::from(gpu),
                tolerates,
                zone,
                best_effort,
            },
        )
}

fn build_cache(nodes: &[NodeSpec]) -> Cache {
    let mut cache = Cache::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut b = NodeBuilder::new(&format!("n{i}"))
            .capacity(
                &format!("{}m", n.milli_cpu),
                &format!("{}Mi", n.memory_mi),
                i64::from(n.pods),
            )
            .label("zone", &n.zone.to_string());
        if n.gpus > 0 {
            b = b.allocatable("nvidia.com/gpu", &n.gpus.to_string());
        }
        if n.tainted {
            b = b.taint("dedicated", "infra", "NoSchedule");
        }
        cache.add_node(&b.build()).unwrap();
    }
    cache
}

fn build_pod(i: usize, p: &PodSpec) -> Arc<PodInfo> {
    let mut b = PodBuilder::new(&format!("p{i}"));
    if !p.best_effort {
        b = b.request(&format!("{}m", p.milli_cpu), &format!("{}Mi", p.memory_mi));
    }
    if p.gpus > 0 {
        b = b.request_resource("nvidia.com/gpu", &p.gpus.to_string());
    }
    if p.tolerates {
        b = b.toleration("dedicated", "Exists", "", "");
    }
    if let Some(z) = p.zone {
        b = b.required_term(term(&[("zone", "In", &[&z.to_string()])]));
    }
    Arc::new(PodInfo::new(b.build()).unwrap())
}

/// Schedules every pod in order, assuming each placement; returns the node per pod.
fn run(nodes: &[NodeSpec], pods: &[PodSpec], seed: u64) -> (Cache, Vec<Option<String>>) {
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    let profile = profiles.get("default-scheduler").unwrap();
    let mut cache = build_cache(nodes);
    let mut snap = Snapshot::default();
    let mut ctx = CycleContext::seeded(seed);
    let mut placements = Vec::with_capacity(pods.len());
    for (i, spec) in pods.iter().enumerate() {
        let pod = build_pod(i, spec);
        cache.update_snapshot(&mut snap);
        match schedule_one(profile, &snap, &pod, &mut ctx) {
            Ok(d) => {
                cache.assume_pod(pod, &d.node_name).unwrap();
                placements.push(Some(d.node_name));
            }
            Err(ScheduleError::Fit(_)) => placements.push(None),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (cache, placements)
}

fn assert_not_overcommitted(cache: &Cache) {
    let snap = cache.snapshot();
    for n in snap.nodes() {
        let (a, r) = (&n.allocatable, &n.requested);
        assert!(
            r.milli_cpu <= a.milli_cpu,
            "{}: cpu {} > {}",
            n.name,
            r.milli_cpu,
            a.milli_cpu
        );
        assert!(
            r.memory <= a.memory,
            "{}: memory {} > {}",
            n.name,
            r.memory,
            a.memory
        );
        assert!(
            n.pods.len() as i64 <= a.allowed_pod_number,
            "{}: {} pods",
            n.name,
            n.pods.len()
        );
        let gpus = r.scalar("nvidia.com/gpu");
        assert!(
            gpus <= a.scalar("nvidia.com/gpu"),
            "{}: {gpus} GPUs",
            n.name
        );
        if n.taints.iter().any(|t| t.effect.blocks_scheduling()) {
            assert!(
                n.pods.iter().all(|p| !p.tolerations.is_empty()),
                "{}: untolerating pod on tainted node",
                n.name
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    /// 20 cases x 200..400 pods: thousands of random pods on random nodes.
    #[test]
    fn never_overcommits_and_replays(
        nodes in prop::collection::vec(node_spec(), 1..40),
        pods in prop::collection::vec(pod_spec(), 200..400),
        seed in any::<u64>(),
    ) {
        let (cache, placements) = run(&nodes, &pods, seed);
        assert_not_overcommitted(&cache);
        prop_assert_eq!(cache.n_pods(), placements.iter().flatten().count());
        let (_, again) = run(&nodes, &pods, seed);
        prop_assert_eq!(placements, again);
    }
}
