//! Batch placement by min-cost flow, in the style of Firmament (Gog et al.,
//! "Firmament: Fast, Centralized Cluster Scheduling at Scale", OSDI '16) and Quincy
//! before it: a window of pending pods is placed at once, minimising the summed cost
//! of the placements, instead of one pod after another.
//!
//! [`schedule_batch`] works in rounds until every pod of the window is placed or known
//! not to fit:
//!
//! 1. Each pending pod runs the profile's PreFilter, Filter, PreScore and Score
//!    ([`score_nodes`]) against the current snapshot; a pod no node fits fails there,
//!    with the same error (and PostFilter result) [`schedule_one`](crate::schedule_one)
//!    gives.
//! 2. The flow network: source -> pod (capacity 1) -> node (capacity 1, cost
//!    `max_total - total`, where `total` is the profile's weighted score of the node
//!    for the pod) -> sink (capacity 1); and pod -> sink directly at
//!    [`unscheduled_cost`], dearer than any set of node arcs, so the flow places as
//!    many pods as it can. Only feasible arcs exist, and only each pod's `k` cheapest
//!    (`k` = pods in the round), which keeps an optimum: the other pods take at most
//!    `k - 1` nodes, so one of a pod's `k` cheapest nodes is always free for it.
//! 3. One pod per node per round (the iterative form of node capacity): every arc's
//!    cost and feasibility are then exact, computed on the state the pod finds on
//!    that node. Pods the flow leaves out wait for the next round, which sees the
//!    placed ones.
//! 4. [`MinCostFlow`] solves it; placements are committed in window order: Reserve,
//!    then assume in the cache. Resources, ports and GPU devices are per node, so
//!    only terms spanning nodes (inter-pod affinity and anti-affinity, topology
//!    spread) can be broken by another commit of the round: a pod committed after one
//!    carrying such terms, or carrying them itself, re-runs the profile's PreFilter
//!    and Filter against the snapshot with the earlier commits ([`fits_on_node`]), and
//!    waits for the next round if it no longer fits.
//!
//! So every placement passed the profile's filters against the cluster as it was when
//! committed: the same guarantee as one cycle per pod. Each round commits at least one
//! pod (its first), so a window of `n` pods takes at most `n` rounds; one when there
//! are more feasible nodes than pods. Deterministic: the flow and the commit order
//! depend only on the inputs.

use std::sync::Arc;

use crate::cache::{Cache, CacheError, Snapshot};
use crate::flow::{EdgeId, MinCostFlow};
use crate::plugins::default_preemption::fits_on_node;
use crate::pod_info::PodInfo;
use crate::profile::Profile;
use crate::schedule::{
    CycleContext, Decision, ScheduleError, ScoredNodes, reserved_pod, run_reserve, score_nodes,
};

/// The window Bosun's `min-cost-flow` algorithm uses by default.
pub const DEFAULT_WINDOW_PODS: usize = 64;
/// A bound on one window.
pub const MAX_WINDOW_PODS: usize = 1024;

const _: () = assert!(DEFAULT_WINDOW_PODS <= MAX_WINDOW_PODS);

/// A pod the batch placed: the decision (its cycle state for Bind) and the pod as
/// assumed in the cache (pinned to the GPU devices a Reserve plugin chose, if any).
#[derive(Debug)]
pub struct BatchPlacement {
    pub decision: Decision,
    pub pod: Arc<PodInfo>,
}

/// The cost of leaving one pod of a round of `n_pods` unplaced: above what any `n_pods`
/// node arcs can cost together, so the flow never trades a placement for cheaper arcs.
pub fn unscheduled_cost(profile: &Profile, n_pods: usize) -> i64 {
    (n_pods as i64 + 1) * (profile.max_total_score() + 1)
}

/// Places `pods` (at most [`MAX_WINDOW_PODS`]) together; see the module docs. Placed
/// pods are assumed in `cache`; the result has one entry per pod, in order. `snapshot`
/// is brought up to date as the rounds go. Errs only when the cache refuses an
/// assumption (a caller bug: a pod already in the cache, say).
pub fn schedule_batch(
    profile: &Profile,
    cache: &mut Cache,
    snapshot: &mut Snapshot,
    pods: &[Arc<PodInfo>],
    ctx: &mut CycleContext,
) -> Result<Vec<Result<BatchPlacement, ScheduleError>>, CacheError> {
    assert!(
        pods.len() <= MAX_WINDOW_PODS,
        "{} pods in a window",
        pods.len()
    );
    let mut results: Vec<Option<Result<BatchPlacement, ScheduleError>>> =
        pods.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..pods.len()).collect();
    while !pending.is_empty() {
        cache.update_snapshot(snapshot);
        let mut round: Vec<(usize, ScoredNodes)> = Vec::with_capacity(pending.len());
        for &i in &pending {
            match score_nodes(profile, snapshot, &pods[i], ctx) {
                Ok(scored) => round.push((i, scored)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let assignment = solve_round(profile, &round);
        let before = pending.len();
        pending.clear();
        let mut committed = 0usize;
        // Whether a pod committed this round has terms spanning nodes.
        let mut spanning = false;
        for ((i, scored), node) in round.into_iter().zip(assignment) {
            let Some(node_idx) = node else {
                pending.push(i);
                continue;
            };
            let pod = &pods[i];
            if committed > 0 {
                cache.update_snapshot(snapshot);
                if (spanning || has_spanning_terms(pod))
                    && !fits_on_node(profile, pod, snapshot, node_idx).is_success()
                {
                    pending.push(i);
                    continue;
                }
            }
            results[i] = Some(commit(profile, cache, snapshot, pod, scored, node_idx)?);
            committed += 1;
            spanning |= has_spanning_terms(pod);
        }
        assert!(
            pending.len() < before,
            "a batch round of {before} pods placed nothing"
        );
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every pod of the window is decided"))
        .collect())
}

/// Reserve and assume one placement.
fn commit(
    profile: &Profile,
    cache: &mut Cache,
    snapshot: &Snapshot,
    pod: &Arc<PodInfo>,
    scored: ScoredNodes,
    node_idx: u32,
) -> Result<Result<BatchPlacement, ScheduleError>, CacheError> {
    let node = snapshot.node(node_idx);
    let mut decision = Decision {
        node_idx,
        node_name: node.name.clone(),
        evaluated_nodes: scored.evaluated_nodes,
        feasible_nodes: scored.feasible.len(),
        state: scored.state,
    };
    if let Err(status) = run_reserve(profile, &mut decision.state, pod, node) {
        return Ok(Err(ScheduleError::Plugin {
            point: "Reserve",
            status,
        }));
    }
    let assumed = reserved_pod(&decision.state, pod, node);
    cache.assume_pod(Arc::clone(&assumed), &decision.node_name)?;
    Ok(Ok(BatchPlacement {
        decision,
        pod: assumed,
    }))
}

/// One round's flow: the node each pod of `round` gets, or `None`.
fn solve_round(profile: &Profile, round: &[(usize, ScoredNodes)]) -> Vec<Option<u32>> {
    let k = round.len();
    let max_total = profile.max_total_score();
    // Each pod's k cheapest feasible arcs, cheapest first (node index on ties).
    let arcs: Vec<Vec<(i64, u32)>> = round
        .iter()
        .map(|(_, s)| {
            let mut a: Vec<(i64, u32)> = s
                .feasible
                .iter()
                .zip(&s.totals)
                .map(|(&idx, &total)| (max_total - total, idx))
                .collect();
            if a.len() > k {
                a.select_nth_unstable(k - 1);
                a.truncate(k);
            }
            a.sort_unstable();
            a
        })
        .collect();
    let mut nodes: Vec<u32> = arcs.iter().flatten().map(|&(_, idx)| idx).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let node_id = |idx: u32| nodes.binary_search(&idx).expect("collected above");
    // Flow nodes: source 0, pods 1..=k, snapshot nodes after, sink last.
    let (source, sink) = (0, 1 + k + nodes.len());
    let mut g = MinCostFlow::new(sink + 1);
    let unscheduled = unscheduled_cost(profile, k);
    let mut pod_arcs: Vec<Vec<(EdgeId, u32)>> = Vec::with_capacity(k);
    for (p, candidates) in arcs.iter().enumerate() {
        g.add_edge(source, 1 + p, 1, 0);
        g.add_edge(1 + p, sink, 1, unscheduled);
        let edges = candidates
            .iter()
            .map(|&(cost, idx)| (g.add_edge(1 + p, 1 + k + node_id(idx), 1, cost), idx))
            .collect();
        pod_arcs.push(edges);
    }
    for n in 0..nodes.len() {
        g.add_edge(1 + k + n, sink, 1, 0);
    }
    let result = g.solve(source, sink, k as i64);
    assert_eq!(result.flow, k as i64, "every pod has its unscheduled arc");
    pod_arcs
        .iter()
        .map(|edges| {
            edges
                .iter()
                .find(|&&(e, _)| g.flow(e) == 1)
                .map(|&(_, idx)| idx)
        })
        .collect()
}

/// Whether `pod` has terms that constrain or count pods on other nodes: inter-pod
/// affinity or anti-affinity, or topology spread (its own or the default one).
fn has_spanning_terms(pod: &PodInfo) -> bool {
    let spread = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty());
    pod.affinity.has_any() || spread || pod.default_spread_selector.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder, affinity_term};
    use crate::registry::Registry;
    use crate::{PodInfo, Profiles, schedule_one};

    fn profile() -> Profile {
        Profiles::default_profiles(&Registry::in_tree())
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .clone()
    }

    fn pod_info(p: k8s_openapi::api::core::v1::Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(p).unwrap())
    }

    /// The flow beats one-by-one placement: p1 prefers the emptier n1 but fits n2;
    /// p2 only fits n1 (node selector). One by one, p1 takes n1 and p2 fails; the
    /// batch places p1 on n2 and p2 on n1.
    #[test]
    fn places_what_one_by_one_cannot() {
        let cluster = || {
            let mut cache = Cache::new();
            let n1 = NodeBuilder::new("n1")
                .capacity("2", "4Gi", 110)
                .label("disk", "ssd");
            cache.add_node(&n1.build()).unwrap();
            let n2 = NodeBuilder::new("n2").capacity("2", "4Gi", 110);
            cache.add_node(&n2.build()).unwrap();
            let filler = PodBuilder::new("filler")
                .request("500m", "1Gi")
                .node_name("n2")
                .build();
            cache.add_pod(pod_info(filler)).unwrap();
            cache
        };
        let mut cache = cluster();
        let p1 = pod_info(PodBuilder::new("p1").request("1500m", "1Gi").build());
        let p2 = pod_info(
            PodBuilder::new("p2")
                .request("1500m", "1Gi")
                .node_selector("disk", "ssd")
                .build(),
        );
        let profile = profile();
        // One by one: p1 goes to n1 (least allocated), and p2 has nowhere to go.
        let mut one = cluster();
        let d = schedule_one(&profile, &one.snapshot(), &p1, &mut CycleContext::seeded(1)).unwrap();
        assert_eq!(d.node_name, "n1");
        one.assume_pod(Arc::clone(&p1), "n1").unwrap();
        assert!(
            schedule_one(&profile, &one.snapshot(), &p2, &mut CycleContext::seeded(1)).is_err()
        );
        // Together: both placed.
        let mut snapshot = Snapshot::default();
        let out = schedule_batch(
            &profile,
            &mut cache,
            &mut snapshot,
            &[Arc::clone(&p1), Arc::clone(&p2)],
            &mut CycleContext::seeded(1),
        )
        .unwrap();
        let nodes: Vec<&str> = out
            .iter()
            .map(|r| r.as_ref().unwrap().decision.node_name.as_str())
            .collect();
        assert_eq!(nodes, ["n2", "n1"]);
        assert!(cache.is_assumed(&p1.uid) && cache.is_assumed(&p2.uid));
    }

    /// Terms spanning nodes are re-checked at commit: four pods that refuse to share a
    /// zone, three nodes (n0 and n1 in zone a, n2 in zone b). The flow gives each of
    /// three pods a node of its own; the one committed second shares a zone with the
    /// first, fails its re-check and waits; the next round finds every zone taken.
    /// Two pods are placed, one per zone, two fit nowhere.
    #[test]
    fn anti_affinity_between_window_pods_holds() {
        let cluster = || {
            let mut cache = Cache::new();
            for (i, (used, zone)) in [("0", "a"), ("2", "a"), ("2", "b")].iter().enumerate() {
                let name = format!("n{i}");
                let node = NodeBuilder::new(&name)
                    .capacity("8", "16Gi", 110)
                    .label("topology.kubernetes.io/zone", zone);
                cache.add_node(&node.build()).unwrap();
                let filler = PodBuilder::new(&format!("f{i}"))
                    .request(used, "1Gi")
                    .node_name(&name)
                    .build();
                cache.add_pod(pod_info(filler)).unwrap();
            }
            cache
        };
        let mut cache = cluster();
        let pods: Vec<Arc<PodInfo>> = (0..4)
            .map(|i| {
                pod_info(
                    PodBuilder::new(&format!("p{i}"))
                        .request("1", "1Gi")
                        .label("app", "x")
                        .pod_anti_affinity(affinity_term(
                            &[("app", "x")],
                            "topology.kubernetes.io/zone",
                        ))
                        .build(),
                )
            })
            .collect();
        let mut snapshot = Snapshot::default();
        let run = |cache: &mut Cache, snapshot: &mut Snapshot| {
            schedule_batch(
                &profile(),
                cache,
                snapshot,
                &pods,
                &mut CycleContext::seeded(1),
            )
            .unwrap()
        };
        let mut again = cluster();
        let out = run(&mut cache, &mut snapshot);
        let mut nodes: Vec<&str> = out
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|p| p.decision.node_name.as_str())
            .collect();
        nodes.sort_unstable();
        assert_eq!(nodes.len(), 2, "{nodes:?}");
        assert_eq!(nodes[1], "n2", "one pod in zone b");
        assert_eq!(
            out.iter()
                .filter(|r| matches!(r, Err(ScheduleError::Fit(_))))
                .count(),
            2
        );
        // Same inputs, same placements.
        let replay = run(&mut again, &mut Snapshot::default());
        let names = |o: &[Result<BatchPlacement, ScheduleError>]| -> Vec<Option<String>> {
            o.iter()
                .map(|r| r.as_ref().ok().map(|p| p.decision.node_name.clone()))
                .collect()
        };
        assert_eq!(names(&out), names(&replay));
    }

    /// One pod per node per round: four identical pods on three equal nodes take one
    /// node each in the first round; the fourth goes in a second round.
    #[test]
    fn rounds_place_more_pods_than_nodes() {
        let mut cache = Cache::new();
        for i in 0..3 {
            let node = NodeBuilder::new(&format!("n{i}")).capacity("4", "8Gi", 110);
            cache.add_node(&node.build()).unwrap();
        }
        let pods: Vec<Arc<PodInfo>> = (0..4)
            .map(|i| {
                pod_info(
                    PodBuilder::new(&format!("p{i}"))
                        .request("1", "1Gi")
                        .build(),
                )
            })
            .collect();
        let out = schedule_batch(
            &profile(),
            &mut cache,
            &mut Snapshot::default(),
            &pods,
            &mut CycleContext::seeded(1),
        )
        .unwrap();
        let mut per_node = [0; 3];
        for r in &out {
            let name = &r.as_ref().unwrap().decision.node_name;
            per_node[name[1..].parse::<usize>().unwrap()] += 1;
        }
        per_node.sort_unstable();
        assert_eq!(per_node, [1, 1, 2]);
    }
}
