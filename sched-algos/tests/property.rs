//! Property tests over random clusters and pods, through `schedule_one` + `assume_pod`
//! as the scheduler runs them:
//! - no node is ever over-committed on any resource (cpu, memory, pods, GPUs);
//! - the same seed gives the same placements;
//! - required pod affinity, required anti-affinity (the pod's own and existing pods')
//!   and DoNotSchedule topology spread constraints hold after every placement;
//! - preemption only ever proposes victims of lower priority than the preemptor, on
//!   a node where the preemptor then fits.
//!
//! - the verdict memo (incremental cycles) decides exactly as the full cycle, through
//!   repeated pod shapes, node updates, pod deletions and nodes joining.
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
    /// How many PreferNoSchedule taints (TaintToleration's score).
    soft_taints: u8,
    /// Labelled `tier=a` (a second preferred term for NodeAffinity's score).
    tier_a: bool,
    /// Which of two images the node has, if any (ImageLocality's score).
    image: Option<u8>,
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
    /// A preferred node affinity for this zone (NodeAffinity's score).
    prefers_zone: Option<u8>,
    /// A second preferred term, for `tier=a`.
    prefers_tier: bool,
    /// Which of two images the pod runs (ImageLocality's score).
    image: u8,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        500..16_000_u32,
        512..32_768_u32,
        1..30_u32,
        0..4_u32,
        prop::bool::weighted(0.2),
        0..3_u8,
        (prop_oneof![3 => Just(0_u8), 1 => 1..4_u8], any::<bool>()),
        prop::option::weighted(0.5, 0..2_u8),
    )
        .prop_map(
            |(milli_cpu, memory_mi, pods, gpus, tainted, zone, (soft_taints, tier_a), image)| {
                NodeSpec {
                    milli_cpu,
                    memory_mi,
                    pods,
                    gpus,
                    tainted,
                    zone,
                    soft_taints,
                    tier_a,
                    image,
                }
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
        (prop::option::weighted(0.3, 0..3_u8), any::<bool>(), 0..2_u8),
    )
        .prop_map(
            |(
                milli_cpu,
                memory_mi,
                gpu,
                tolerates,
                zone,
                best_effort,
                (app, rule, prio),
                (prefers_zone, prefers_tier, image),
            )| {
                PodSpec {
                    prefers_zone,
                    prefers_tier,
                    image,
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
        cache.add_node(&build_node(&format!("n{i}"), n)).unwrap();
    }
    cache
}

fn build_node(name: &str, n: &NodeSpec) -> k8s_openapi::api::core::v1::Node {
    let mut b = NodeBuilder::new(name)
        .capacity(
            &format!("{}m", n.milli_cpu),
            &format!("{}Mi", n.memory_mi),
            i64::from(n.pods),
        )
        .label("zone", &n.zone.to_string())
        .label(HOSTNAME, name);
    if n.gpus > 0 {
        b = b.allocatable("nvidia.com/gpu", &n.gpus.to_string());
    }
    if n.tainted {
        b = b.taint("dedicated", "infra", "NoSchedule");
    }
    for k in 0..n.soft_taints {
        b = b.taint(&format!("spot{k}"), "true", "PreferNoSchedule");
    }
    if n.tier_a {
        b = b.label("tier", "a");
    }
    if let Some(image) = n.image {
        b = b.image(&[&format!("app{image}:v1")], 300 << 20);
    }
    b.build()
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
    if let Some(z) = p.prefers_zone {
        b = b.preferred_term(5, term(&[("zone", "In", &[&z.to_string()])]));
    }
    if p.prefers_tier {
        b = b.preferred_term(3, term(&[("tier", "In", &["a"])]));
    }
    b = b.image(&format!("app{}:v1", p.image));
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

/// A step of the memo scenario.
#[derive(Clone, Debug)]
enum Step {
    /// Schedule a pod of shape `k % shapes`.
    Pod(usize),
    /// Delete the `k % running`-th running pod.
    DeletePod(usize),
    /// Replace node `k % nodes` with this spec (taints, images, size may change).
    UpdateNode(usize, NodeSpec),
    /// A new node joins.
    AddNode(NodeSpec),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..8_usize).prop_map(Step::Pod),
        1 => any::<usize>().prop_map(Step::DeletePod),
        1 => (any::<usize>(), node_spec()).prop_map(|(k, n)| Step::UpdateNode(k, n)),
        1 => node_spec().prop_map(Step::AddNode),
    ]
}

/// Runs the steps with the memo on or off; every decision, as text.
fn run_steps(
    nodes: &[NodeSpec],
    shapes: &[PodSpec],
    steps: &[Step],
    seed: u64,
    memo: bool,
) -> (Vec<String>, u64) {
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    let profile = profiles.get("default-scheduler").unwrap();
    let mut cache = build_cache(nodes);
    let mut n_nodes = nodes.len();
    let mut snap = Snapshot::default();
    let mut ctx = CycleContext::seeded(seed);
    ctx.set_memo(memo);
    let mut running: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Pod(k) => {
                let pod = build_pod(i, &shapes[k % shapes.len()]);
                cache.update_snapshot(&mut snap);
                match schedule_one(profile, &snap, &pod, &mut ctx) {
                    Ok(d) => {
                        out.push(format!(
                            "{} -> {} ({} feasible)",
                            pod.name, d.node_name, d.feasible_nodes
                        ));
                        running.push(pod.uid.clone());
                        cache.assume_pod(pod, &d.node_name).unwrap();
                    }
                    Err(e) => out.push(format!("{}: {e}", pod.name)),
                }
            }
            Step::DeletePod(k) if !running.is_empty() => {
                let uid = running.swap_remove(k % running.len());
                cache.remove_pod(&uid).unwrap();
            }
            Step::DeletePod(_) => {}
            Step::UpdateNode(k, spec) => {
                cache
                    .update_node(&build_node(&format!("n{}", k % n_nodes), spec))
                    .unwrap();
            }
            Step::AddNode(spec) => {
                cache
                    .add_node(&build_node(&format!("n{n_nodes}"), spec))
                    .unwrap();
                n_nodes += 1;
            }
        }
    }
    (out, ctx.memo_stats().cycles)
}

/// Mostly pods without inter-pod rules: once one pod with rules is placed, inter-pod
/// affinity applies to every later pod and the memo runs in its mixed form.
fn memo_pod_spec() -> impl Strategy<Value = PodSpec> {
    (pod_spec(), prop::bool::weighted(0.6)).prop_map(|(mut p, plain)| {
        if plain {
            p.rule = 0;
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The memoised cycle decides exactly as the full one: same nodes, same feasible
    /// counts, same errors, same tie-breaking, through every kind of cluster change.
    #[test]
    fn memo_matches_full_cycle(
        nodes in prop::collection::vec(node_spec(), 1..40),
        shapes in prop::collection::vec(memo_pod_spec(), 1..5),
        steps in prop::collection::vec(step(), 100..300),
        seed in any::<u64>(),
    ) {
        let (full, full_memo_cycles) = run_steps(&nodes, &shapes, &steps, seed, false);
        let (memo, memo_cycles) = run_steps(&nodes, &shapes, &steps, seed, true);
        prop_assert_eq!(full_memo_cycles, 0);
        for (i, (a, b)) in full.iter().zip(&memo).enumerate() {
            prop_assert_eq!(a, b, "decision {} differs", i);
        }
        prop_assert_eq!(full.len(), memo.len());
        // Only pod shapes with inter-pod rules avoid the memo.
        if shapes.iter().all(|s| s.rule == 0) && full.iter().any(|d| d.contains(" -> ")) {
            prop_assert!(memo_cycles > 0);
        }
    }
}

/// Identical pods on an unchanging cluster: after the first cycle, each cycle
/// re-evaluates only the node the previous pod went to.
#[test]
fn memo_reevaluates_only_changed_nodes() {
    let spec = NodeSpec {
        milli_cpu: 4000,
        memory_mi: 32 * 1024,
        pods: 110,
        gpus: 0,
        tainted: false,
        zone: 0,
        soft_taints: 0,
        tier_a: false,
        image: None,
    };
    let shape = PodSpec {
        milli_cpu: 100,
        memory_mi: 500,
        gpus: 0,
        tolerates: false,
        zone: None,
        best_effort: false,
        app: 0,
        rule: 0,
        priority: 0,
        prefers_zone: None,
        prefers_tier: false,
        image: 0,
    };
    let nodes = vec![spec; 200];
    let steps: Vec<Step> = (0..50).map(|_| Step::Pod(0)).collect();
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    let profile = profiles.get("default-scheduler").unwrap();
    let mut cache = build_cache(&nodes);
    let mut snap = Snapshot::default();
    let mut ctx = CycleContext::seeded(1);
    for (i, _) in steps.iter().enumerate() {
        let pod = build_pod(i, &shape);
        cache.update_snapshot(&mut snap);
        let d = schedule_one(profile, &snap, &pod, &mut ctx).unwrap();
        cache.assume_pod(pod, &d.node_name).unwrap();
    }
    let stats = ctx.memo_stats();
    assert_eq!(stats.cycles, 50);
    assert_eq!(stats.nodes_evaluated, 200 + 49);
    assert_eq!(stats.full_scans, 1, "later cycles read the change log");
}
