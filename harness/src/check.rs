//! Invariants of a simulated run, checked from the Kubernetes semantics against the
//! simulator's final cluster, independently of the scheduler's code:
//!
//! - every running pod fits its node: CPU, memory, pod count, extended resources and
//!   per-device GPU sums within capacity; whole-GPU pods on devices of their own;
//! - every running pod's node admits it: node selector, GPU model, required node
//!   affinity, daemonset pin, no untolerated NoSchedule/NoExecute taint;
//! - where the profile has the plugin: required pod anti-affinity (no two matching pods
//!   in one domain), required pod affinity (a matching pod shares the domain, unless
//!   it is the only matching pod) and DoNotSchedule topology spread (skew within
//!   `max_skew`, when no churn removed pods);
//! - the counts add up, and the decisions agree with where pods run.

use std::collections::{BTreeMap, HashMap};

use crate::model::GPU_MILLI_PER_GPU;
use crate::scenario::{PodAffinityRule, WhenUnsatisfiable};
use crate::sim::cluster::per_device_milli;
use crate::sim::{AlgorithmRun, Simulation};

/// Plugin enforcing pod (anti-)affinity.
pub const INTER_POD_AFFINITY: &str = "InterPodAffinity";
/// Plugin enforcing topology spread.
pub const POD_TOPOLOGY_SPREAD: &str = "PodTopologySpread";

/// Every violated invariant of one run, as messages naming the pod or node.
pub fn violations(sim: &Simulation, run: &AlgorithmRun) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = run.report.counts.check() {
        out.push(e);
    }
    check_resources(sim, run, &mut out);
    check_admission(sim, run, &mut out);
    let has = |p: &str| run.profile_plugins.contains(&p);
    if has(INTER_POD_AFFINITY) {
        check_pod_affinity(sim, run, &mut out);
    }
    if has(POD_TOPOLOGY_SPREAD) && sim.scenario.churn.is_none() {
        check_spread(sim, run, &mut out);
    }
    out
}

fn check_resources(sim: &Simulation, run: &AlgorithmRun, out: &mut Vec<String>) {
    let w = &sim.workload;
    for node in run.cluster.nodes.iter().filter(|n| n.alive) {
        let spec = &w.nodes[node.spec_idx as usize];
        let (mut cpu, mut mem) = (0u64, 0u64);
        let mut devices = vec![0u32; spec.gpus as usize];
        let mut whole_users = vec![0u32; spec.gpus as usize];
        for &id in &node.pods {
            let pod = &w.pods[id as usize].spec;
            cpu += pod.cpu_milli;
            mem += pod.memory_mib;
            let per = per_device_milli(pod.gpu);
            for &d in &run.cluster.pod_devices[id as usize] {
                devices[d as usize] += per;
                whole_users[d as usize] += u32::from(per == GPU_MILLI_PER_GPU);
            }
            if run.cluster.pod_devices[id as usize].len() as u64 * u64::from(per) != pod.gpu.milli()
            {
                out.push(format!(
                    "pod {} holds the wrong number of GPU devices",
                    w.pods[id as usize].name
                ));
            }
        }
        if cpu > spec.cpu_milli || mem > spec.memory_mib || node.pods.len() > spec.max_pods as usize
        {
            out.push(format!(
                "node {} over capacity: cpu {cpu}/{} memory {mem}/{} pods {}/{}",
                node.name,
                spec.cpu_milli,
                spec.memory_mib,
                node.pods.len(),
                spec.max_pods
            ));
        }
        for (d, (&used, &whole)) in devices.iter().zip(&whole_users).enumerate() {
            if used > spec.gpu_milli_per_gpu || (whole > 0 && used != GPU_MILLI_PER_GPU) {
                out.push(format!(
                    "node {} GPU {d} over-shared: {used} milli",
                    node.name
                ));
            }
        }
        if (cpu, mem, node.pods.len() as u32)
            != (node.cpu_milli_used, node.memory_mib_used, node.n_pods)
        {
            out.push(format!(
                "node {}: accounted usage differs from its pods",
                node.name
            ));
        }
    }
}

fn check_admission(sim: &Simulation, run: &AlgorithmRun, out: &mut Vec<String>) {
    let w = &sim.workload;
    for (id, node) in run.cluster.pod_node.iter().enumerate() {
        let Some(n) = *node else { continue };
        let pod = &w.pods[id];
        let state = &run.cluster.nodes[n as usize];
        let spec = &w.nodes[state.spec_idx as usize];
        let rules = &w.groups[pod.group as usize].node_affinity;
        if !run.cluster.admits(spec, n, pod, rules) {
            out.push(format!(
                "pod {} runs on node {} which does not admit it",
                pod.name, state.name
            ));
        }
    }
    for &(id, placed) in &run.decisions {
        // A pod placed and later deleted by churn no longer runs; one not placed never ran.
        if placed.is_none() && run.cluster.pod_node[id as usize].is_some() {
            out.push(format!(
                "pod {} runs but its decision was 'not placed'",
                w.pods[id as usize].name
            ));
        }
    }
}

/// Running pods per topology domain (`key` value), with their ids.
fn domains(run: &AlgorithmRun, key: &str) -> HashMap<String, Vec<u32>> {
    let mut out: HashMap<String, Vec<u32>> = HashMap::new();
    for node in run.cluster.nodes.iter().filter(|n| n.alive) {
        if let Some(value) = node.labels.get(key) {
            out.entry(value.clone()).or_default().extend(&node.pods);
        }
    }
    out
}

fn matches(sim: &Simulation, id: u32, rule: &PodAffinityRule) -> bool {
    let labels = &sim.workload.pods[id as usize].spec.labels;
    rule.match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn domain_of<'a>(run: &'a AlgorithmRun, id: u32, key: &str) -> Option<&'a String> {
    let n = run.cluster.pod_node[id as usize]?;
    run.cluster.nodes[n as usize].labels.get(key)
}

fn check_pod_affinity(sim: &Simulation, run: &AlgorithmRun, out: &mut Vec<String>) {
    let w = &sim.workload;
    let mut by_key: HashMap<&str, HashMap<String, Vec<u32>>> = HashMap::new();
    for (id, pod) in w.pods.iter().enumerate() {
        let id = id as u32;
        let group = &w.groups[pod.group as usize];
        if run.cluster.pod_node[id as usize].is_none() {
            continue;
        }
        if let Some(rule) = &group.pod_anti_affinity {
            let by_domain = by_key
                .entry(rule.topology_key.as_str())
                .or_insert_with(|| domains(run, &rule.topology_key));
            if let Some(d) = domain_of(run, id, &rule.topology_key) {
                let clash = by_domain[d]
                    .iter()
                    .any(|&q| q != id && matches(sim, q, rule));
                if clash {
                    out.push(format!(
                        "pod {} shares {} {d} with a pod it repels",
                        pod.name, rule.topology_key
                    ));
                }
            }
        }
    }
    if sim.scenario.churn.is_none() {
        check_pod_affinity_in_order(sim, run, out);
    }
}

/// Required pod affinity as the scheduler sees it, decision by decision: when a pod was
/// placed, a pod matching its term already ran in the chosen node's domain, or none
/// ran anywhere and the pod matches its own term (upstream's first-pod exception).
/// Needs the placement order, so it is skipped when churn removed pods.
fn check_pod_affinity_in_order(sim: &Simulation, run: &AlgorithmRun, out: &mut Vec<String>) {
    let w = &sim.workload;
    let rules: Vec<&PodAffinityRule> = w
        .groups
        .iter()
        .filter_map(|g| g.pod_affinity.as_ref())
        .collect();
    if rules.is_empty() {
        return;
    }
    // Per rule: matching running pods per domain, and in all.
    let mut seen: Vec<(HashMap<String, usize>, usize)> = vec![(HashMap::new(), 0); rules.len()];
    let place = |id: u32, n: u32, seen: &mut Vec<(HashMap<String, usize>, usize)>| {
        for (rule, (per_domain, total)) in rules.iter().zip(seen.iter_mut()) {
            if matches(sim, id, rule) {
                *total += 1;
                if let Some(d) = run.cluster.nodes[n as usize].labels.get(&rule.topology_key) {
                    *per_domain.entry(d.clone()).or_default() += 1;
                }
            }
        }
    };
    let scheduled: std::collections::HashSet<u32> = run.decisions.iter().map(|d| d.0).collect();
    for id in 0..w.n_initial as u32 {
        if let (Some(n), false) = (run.cluster.pod_node[id as usize], scheduled.contains(&id)) {
            place(id, n, &mut seen);
        }
    }
    for &(id, placed) in &run.decisions {
        let Some(n) = placed else { continue };
        let pod = &w.pods[id as usize];
        if let Some(rule) = &w.groups[pod.group as usize].pod_affinity {
            let ri = rules
                .iter()
                .position(|r| *r == rule)
                .expect("collected above");
            let (per_domain, total) = &seen[ri];
            let domain = run.cluster.nodes[n as usize].labels.get(&rule.topology_key);
            let near = domain.is_some_and(|d| per_domain.get(d).is_some_and(|&c| c > 0));
            let first_pod = *total == 0 && matches(sim, id, rule);
            if !(near || first_pod) {
                out.push(format!(
                    "pod {} has no pod it needs in its {} when placed",
                    pod.name, rule.topology_key
                ));
            }
        }
        place(id, n, &mut seen);
    }
}

fn check_spread(sim: &Simulation, run: &AlgorithmRun, out: &mut Vec<String>) {
    let w = &sim.workload;
    for group in &w.groups {
        let Some(rule) = &group.topology_spread else {
            continue;
        };
        if rule.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
            continue;
        }
        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for node in run.cluster.nodes.iter().filter(|n| n.alive) {
            let Some(d) = node.labels.get(&rule.topology_key) else {
                continue;
            };
            let entry = counts.entry(d).or_default();
            *entry += node
                .pods
                .iter()
                .filter(|&&q| {
                    let labels = &w.pods[q as usize].spec.labels;
                    rule.match_labels
                        .iter()
                        .all(|(k, v)| labels.get(k) == Some(v))
                })
                .count();
        }
        let (min, max) = (counts.values().min(), counts.values().max());
        if let (Some(&min), Some(&max)) = (min, max)
            && max - min > rule.max_skew as usize
        {
            out.push(format!(
                "spread over {} has skew {} > {}",
                rule.topology_key,
                max - min,
                rule.max_skew
            ));
        }
    }
}
