//! Golden cases worked by hand from upstream preemption.go (`SelectVictimsOnNode`,
//! `pickOneNodeForPreemption`, `calculateNumCandidates`) and default_preemption.go
//! (`PodEligibleToPreemptOthers`, the "preemption: " message), in the shapes of
//! default_preemption_test.go `TestSelectBestCandidate` and `TestPostFilter`.

use k8s_openapi::api::core::v1 as corev1;

use super::*;
use crate::Cache;
use crate::fixtures::{NodeBuilder, PodBuilder, affinity_term};
use crate::profile::Profiles;
use crate::registry::Registry;
use crate::schedule::{CycleContext, ScheduleError, schedule_one};

fn profile() -> Profile {
    Profiles::default_profiles(&Registry::in_tree())
        .unwrap()
        .get("default-scheduler")
        .unwrap()
        .clone()
}

fn cpu_node(name: &str, cpu: &str) -> corev1::Node {
    NodeBuilder::new(name)
        .capacity(cpu, "8Gi", 110)
        .label(crate::plugins::pod_topology_spread::LABEL_HOSTNAME, name)
        .build()
}

fn victim(name: &str, node: &str, prio: i32, cpu: &str) -> PodBuilder {
    PodBuilder::new(name)
        .node_name(node)
        .priority(prio)
        .request(cpu, "0")
}

/// Schedules `incoming` on a cache of these nodes and pods; the fit error's message
/// and what PostFilter proposed.
fn run(
    nodes: &[corev1::Node],
    pods: Vec<PodBuilder>,
    incoming: PodBuilder,
) -> (String, Option<PostFilterResult>) {
    let mut c = Cache::new();
    for n in nodes {
        c.add_node(n).unwrap();
    }
    for p in pods {
        c.add_pod(Arc::new(PodInfo::new(p.build()).unwrap()))
            .unwrap();
    }
    let pod = PodInfo::new(incoming.build()).unwrap();
    match schedule_one(
        &profile(),
        &c.snapshot(),
        &pod,
        &mut CycleContext::seeded(1),
    ) {
        Err(ScheduleError::Fit(e)) => (e.to_string(), e.post_filter_result.clone()),
        other => panic!("expected a fit error, got {other:?}"),
    }
}

fn nominated(node: &str, victims: &[&str]) -> Option<PostFilterResult> {
    Some(PostFilterResult {
        nominated_node_name: Some(node.to_owned()),
        victims: victims.iter().map(|v| format!("uid-{v}")).collect(),
    })
}

fn preemptor(cpu: &str) -> PodBuilder {
    PodBuilder::new("in").priority(100).request(cpu, "0")
}

#[test]
fn lowest_highest_victim_priority_wins() {
    // n1's victim has priority 10, n2's 50; n3's pod (200) is not preemptable.
    let nodes = [
        cpu_node("n1", "1"),
        cpu_node("n2", "1"),
        cpu_node("n3", "1"),
    ];
    let pods = vec![
        victim("a", "n1", 10, "1"),
        victim("b", "n2", 50, "1"),
        victim("c", "n3", 200, "1"),
    ];
    let (msg, result) = run(&nodes, pods, preemptor("1"));
    assert_eq!(msg, "0/3 nodes are available: 3 Insufficient cpu.");
    assert_eq!(result, nominated("n1", &["a"]));
}

#[test]
fn smallest_priority_sum_then_fewest_victims() {
    // Both highest victims are 10; n1 needs two (sum 2 * (10 + 2^31)), n2 one.
    let nodes = [cpu_node("n1", "1"), cpu_node("n2", "1")];
    let pods = vec![
        victim("a1", "n1", 10, "500m"),
        victim("a2", "n1", 10, "500m"),
        victim("b", "n2", 10, "1"),
    ];
    let (_, result) = run(&nodes, pods, preemptor("1"));
    assert_eq!(result, nominated("n2", &["b"]));
}

#[test]
fn reprieve_keeps_the_most_important_pods() {
    // 1 CPU: a (50, 500m) and b (10, 500m). Both removed, the pod fits; a is reprieved
    // first (higher priority) and still fits; adding b back does not: b is the victim.
    let nodes = [cpu_node("n1", "1")];
    let pods = vec![victim("a", "n1", 50, "500m"), victim("b", "n1", 10, "500m")];
    let (_, result) = run(&nodes, pods, preemptor("500m"));
    assert_eq!(result, nominated("n1", &["b"]));
}

#[test]
fn latest_start_time_breaks_the_tie() {
    // Same priority, count and sum: n2's victim started later (t=200 vs t=100).
    let nodes = [cpu_node("n1", "1"), cpu_node("n2", "1")];
    let pods = vec![
        victim("a", "n1", 10, "1").start_time(100),
        victim("b", "n2", 10, "1").start_time(200),
    ];
    let (_, result) = run(&nodes, pods, preemptor("1"));
    assert_eq!(result, nominated("n2", &["b"]));
    // All equal: the first candidate.
    let pods = vec![
        victim("a", "n1", 10, "1").start_time(100),
        victim("b", "n2", 10, "1").start_time(100),
    ];
    let (_, result) = run(&nodes, pods, preemptor("1"));
    assert_eq!(result, nominated("n1", &["a"]));
}

#[test]
fn messages_when_preemption_cannot_help() {
    let nodes = [cpu_node("n1", "1")];
    // preemptionPolicy Never.
    let (msg, result) = run(
        &nodes,
        vec![victim("a", "n1", 10, "1")],
        preemptor("1").preemption_policy("Never"),
    );
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: not eligible due to preemptionPolicy=Never.."
    );
    assert_eq!(result, None);
    // Removing every lower-priority pod is not enough: the filter's own status.
    let (msg, result) = run(&nodes, vec![victim("a", "n1", 10, "100m")], preemptor("2"));
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: 0/1 nodes are available: 1 Insufficient cpu.."
    );
    assert_eq!(
        result,
        Some(PostFilterResult {
            nominated_node_name: Some(String::new()),
            victims: vec![],
        })
    );
}

#[test]
fn preemption_sees_inter_pod_anti_affinity() {
    // The incoming pod refuses app=x on the same host. n1's app=x pod is lower
    // priority: evicting it makes n1 fit (PreFilter re-run without it); n2's is not.
    let nodes = [cpu_node("n1", "4"), cpu_node("n2", "4")];
    let x = |name: &str, node: &str, prio: i32| victim(name, node, prio, "100m").label("app", "x");
    let incoming = preemptor("100m").pod_anti_affinity(affinity_term(
        &[("app", "x")],
        crate::plugins::pod_topology_spread::LABEL_HOSTNAME,
    ));
    let (msg, result) = run(&nodes, vec![x("a", "n1", 10), x("b", "n2", 200)], incoming);
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."
    );
    assert_eq!(result, nominated("n1", &["a"]));
}

#[test]
fn num_candidates_golden() {
    let check = |pct: i64, abs: i64, n: usize, want: usize| {
        let pl = DefaultPreemption::new(&DefaultPreemptionArgs {
            min_candidate_nodes_percentage: pct,
            min_candidate_nodes_absolute: abs,
        })
        .unwrap();
        assert_eq!(pl.num_candidates(n), want, "{pct}% / {abs} of {n}");
    };
    // calculateNumCandidates: max(n * pct / 100, abs), at most n.
    check(5, 50, 10, 10);
    check(5, 50, 1000, 50);
    check(40, 50, 1000, 400);
    check(10, 100, 10_000, 1000);
    assert!(
        DefaultPreemption::new(&DefaultPreemptionArgs {
            min_candidate_nodes_percentage: 0,
            min_candidate_nodes_absolute: 0,
        })
        .is_err()
    );
}
