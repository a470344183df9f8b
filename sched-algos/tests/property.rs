//! Property tests over random clusters and pods, through `schedule_one` + `assume_pod`
//! as the scheduler runs them:
//! - no node is ever over-committed on any resource (cpu, memory, pods, GPUs);
//! - the same seed gives the same placements;
//! - required pod affinity, required anti-affinity (the pod's own and existing pods')
//!   and DoNotSchedule topology spread constraints hold after every placement;
//! - preemption only ever proposes victims of lower priority than the preemptor, on
//!   a node where the preemptor then fits.
//!
//! The failing seed is printed by proptest and replays the run.

use std::sync::Arc;

use bosun_sched_algos::fixtures::{
    NodeBuilder, PodBuilder, affinity_term, spread_constraint, term,
};
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
    /// Pod labels: app in 0..3.
    app: u8,
    /// 0: none; 1: required affinity to app 0 by zone; 2: required anti-affinity to
    /// the same app by hostname; 3: DoNotSchedule spread of the same app by zone,
    /// maxSkew 1.
    rule: u8,
    priority: i32,
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
        (0..3_u8, 0..4_u8, 0..3_i32),
    )
        .prop_map(
            |(milli_cpu, memory_mi, gpu, tolerates, zone, best_effort, (app, rule, prio))| {
                PodSpec {
                    milli_cpu,
                    memory_mi,
                    gpus: u32::from(gpu),
                    tolerates,
                    zone,
                    best_effort,
                    app,
                    rule,
                    priority: prio * 100,
                }
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
            .label("zone", &n.zone.to_string())
            .label(HOSTNAME, &format!("n{i}"));
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

const HOSTNAME: &str = "kubernetes.io/hostname";

fn build_pod(i: usize, p: &PodSpec) -> Arc<PodInfo> {
    let app = p.app.to_string();
    let mut b = PodBuilder::new(&format!("p{i}"))
        .label("app", &app)
        .priority(p.priority);
    match p.rule {
        1 => b = b.pod_affinity(affinity_term(&[("app", "0")], "zone")),
        2 => b = b.pod_anti_affinity(affinity_term(&[("app", &app)], HOSTNAME)),
        3 => {
            b = b.spread(spread_constraint(
                1,
                "zone",
                "DoNotSchedule",
                &[("app", &app)],
            ))
        }
        _ => {}
    }
    if !p.best_effort {
        b = b.request(&format!("{}m", p.milli_cpu), &format!("{}Mi", p.memory_mi));
    }
    if p.gpus > 0 {
        b = b.request_resource("nvidia.com/gpu", &p.gpus.to_string());
    }
    if p.tolerates {
        b = b.toleration("dedicated", "Exists", "", "");
    }
    // Spread pods stay free of node affinity so that every zone is one of their
    // domains (nodeAffinityPolicy Honor would otherwise narrow them).
    if let Some(z) = p.zone.filter(|_| p.rule != 3) {
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
            Err(ScheduleError::Fit(e)) => {
                check_preemption(&snap, &pod, e.post_filter_result.as_ref());
                placements.push(None)
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        if i % 16 == 15 || i + 1 == pods.len() {
            assert_pod_rules_hold(&cache);
        }
    }
    (cache, placements)
}

/// Preemption proposes only strictly lower-priority victims, all on the nominated
/// node.
fn check_preemption(
    snap: &Snapshot,
    pod: &PodInfo,
    result: Option<&bosun_sched_algos::framework::PostFilterResult>,
) {
    let Some(r) = result else { return };
    let Some(node) = r.nominated_node_name.as_deref().filter(|n| !n.is_empty()) else {
        assert!(r.victims.is_empty(), "victims without a node");
        return;
    };
    let info = snap.node(snap.node_index(node).expect("nominated node exists"));
    assert!(!r.victims.is_empty(), "nominated {node} without victims");
    for uid in &r.victims {
        let v = info
            .pods
            .iter()
            .find(|p| &p.uid == uid)
            .unwrap_or_else(|| panic!("victim {uid} not on {node}"));
        assert!(
            v.priority < pod.priority,
            "victim {uid} priority {} >= preemptor {}",
            v.priority,
            pod.priority
        );
    }
}

/// Every placed pod's required affinity, anti-affinity and hard spread hold, counting
/// the pods placed after it (anti-affinity is symmetric through existing pods' terms;
/// affinity and spread are checked as of now, which placements only ever keep or
/// improve for affinity; spread is checked with the skew bound of every pod at once).
fn assert_pod_rules_hold(cache: &Cache) {
    let snap = cache.snapshot();
    let zone_of = |n: &bosun_sched_algos::NodeInfo| n.labels["zone"].clone();
    let mut per_zone_app: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for n in snap.nodes() {
        for p in &n.pods {
            *per_zone_app
                .entry((zone_of(n), p.labels["app"].clone()))
                .or_default() += 1;
        }
    }
    let zones: std::collections::BTreeSet<String> =
        snap.nodes().iter().map(|n| zone_of(n)).collect();
    for n in snap.nodes() {
        for p in &n.pods {
            let app = &p.labels["app"];
            if !p.affinity.required_affinity.is_empty() {
                // Some app-0 pod in the same zone (itself counts when it is app 0).
                let c = per_zone_app
                    .get(&(zone_of(n), "0".into()))
                    .copied()
                    .unwrap_or(0);
                assert!(
                    c > 0,
                    "{}: affinity to app 0 broken in zone {}",
                    p.name,
                    zone_of(n)
                );
            }
            if !p.affinity.required_anti_affinity.is_empty() {
                let same = n
                    .pods
                    .iter()
                    .filter(|q| q.uid != p.uid && &q.labels["app"] == app)
                    .count();
                assert_eq!(same, 0, "{}: anti-affinity broken on {}", p.name, n.name);
            }
        }
    }
    // DoNotSchedule spread (maxSkew 1 by zone): each spread pod goes only to a zone
    // holding the minimum count of its app, so while every pod of an app is a spread
    // pod the zones' counts differ by at most 1. (Pods of the app without the
    // constraint may legitimately unbalance it; those apps are not checked.)
    for app in ["0", "1", "2"] {
        let all_spread = snap
            .nodes()
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| p.labels["app"] == app)
            .all(|p| is_spread(p));
        if !all_spread {
            continue;
        }
        let counts: Vec<i64> = zones
            .iter()
            .map(|z| {
                per_zone_app
                    .get(&(z.clone(), app.to_owned()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 1, "app {app}: zone counts {counts:?} skew > 1");
    }
}

fn is_spread(p: &PodInfo) -> bool {
    p.pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty())
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
