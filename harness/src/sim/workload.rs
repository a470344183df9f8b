//! A scenario made concrete: its nodes, and its pods as the model's [`PodSpec`]s and as
//! the scheduler's [`PodInfo`]s (via [`PodSpec::to_k8s`], with the scenario's pod
//! affinity, topology spread and daemonset pinning added to the Kubernetes object).
//! Built once per scenario and shared by every algorithm's run.

use std::collections::BTreeMap;
use std::sync::Arc;

use bosun_sched_algos::PodInfo;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodAffinity, PodAffinityTerm, PodAntiAffinity, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::datasets::Datasets;
use crate::datasets::openb::{self, NodeList, PodList};
use crate::error::HarnessError;
use crate::model::{GpuRequest, NodeSpec, PodSpec, k8s_name};
use crate::replay::{FgdConfig, fgd_resample};
use crate::rng::SimRng;
use crate::scenario::{
    ClusterTemplate, OpenbNodeList, PodAffinityRule, PodGroup, QueueOrder, Scenario,
};
use crate::synth::{ClusterShape, generate_nodes};

/// The namespace every generated pod lives in.
pub const NAMESPACE: &str = "bench";
/// The `metadata.name` field key, for daemonset pinning.
const NAME_FIELD: &str = "metadata.name";

/// One pod of the workload.
#[derive(Clone, Debug)]
pub struct SimPod {
    /// The pod's name in the model (see [`SimPod::name`] for its Kubernetes name).
    pub name: String,
    /// What the pod asks for; the pods of one group share it, so its `name` is the
    /// group's first pod's: read [`SimPod::name`] for this one's.
    pub spec: Arc<PodSpec>,
    /// Index into [`Workload::groups`].
    pub group: u32,
    /// The node (index into [`Workload::nodes`]) a daemonset pod is pinned to.
    pub pin_node: Option<u32>,
    /// The scheduler's view of this pod, or of the first pod of its group when this
    /// one differs from it only in name (see [`SimPod::decode`]).
    template: Arc<PodInfo>,
}

impl SimPod {
    /// The pod's Kubernetes name (and UID).
    pub fn name(&self) -> String {
        k8s_name(&self.name)
    }

    /// The scheduler's [`PodInfo`] of this pod, as its informer would decode it on
    /// arrival: the converted pod itself, or a [`PodInfo::sibling`] of its group's
    /// first pod. Drivers call it when the pod arrives and count it as the
    /// scheduler's work.
    pub fn decode(&self) -> Arc<PodInfo> {
        let name = self.name();
        if self.template.name == name {
            Arc::clone(&self.template)
        } else {
            Arc::new(self.template.sibling(&name, &name))
        }
    }
}

/// A scenario's nodes and pods. Pods `0..n_initial` are initial; the rest are measured.
#[derive(Clone, Debug)]
pub struct Workload {
    pub nodes: Vec<NodeSpec>,
    /// Initial groups, then measured groups, then (for openb-fgd) one group standing
    /// for the trace's pods.
    pub groups: Vec<PodGroup>,
    pub pods: Vec<SimPod>,
    pub n_initial: usize,
    /// Pod ids (indexes into `pods`) in scheduling order, with their arrival in
    /// simulated microseconds.
    pub schedule: Vec<(u32, u64)>,
    /// Whether some measured pod requests GPUs or some node has them.
    pub has_gpus: bool,
    /// The openb-fgd curve step, if any.
    pub curve_step_frac: Option<f64>,
}

impl Workload {
    /// Builds the nodes and pods of `scenario` with its seed.
    pub fn build(scenario: &Scenario) -> Result<Workload, HarnessError> {
        let nodes = build_nodes(scenario)?;
        let node_names: Vec<String> = nodes.iter().map(|n| k8s_name(&n.name)).collect();
        let mut groups: Vec<PodGroup> = scenario.initial_pods.clone();
        groups.extend(scenario.measured_pods.iter().cloned());
        let mut pods = Vec::with_capacity(groups.iter().map(|g| g.count).sum());
        for (gi, group) in groups.iter().enumerate() {
            let prefix = group_prefix(scenario, gi, group);
            // A group's pods differ only in name (daemonset pods also in their pin):
            // the first is converted, the others are its siblings.
            // They share one spec, which depends only on the group.
            let mut template: Option<Arc<PodInfo>> = None;
            let mut spec: Option<Arc<PodSpec>> = None;
            for i in 0..group.count {
                let name = format!("{prefix}-{i}");
                let spec = Arc::clone(
                    spec.get_or_insert_with(|| Arc::new(group_pod_spec(group, name.clone()))),
                );
                let pin_node = group.daemonset.then(|| (i % nodes.len()) as u32);
                if let Some(t) = template.as_ref().filter(|_| pin_node.is_none()) {
                    pods.push(SimPod {
                        name,
                        spec,
                        group: gi as u32,
                        pin_node,
                        template: Arc::clone(t),
                    });
                    continue;
                }
                let pin_name = pin_node.map(|n| node_names[n as usize].as_str());
                let pod = sim_pod(name, spec, gi as u32, group, pin_node, pin_name, scenario)?;
                template.get_or_insert_with(|| Arc::clone(&pod.template));
                pods.push(pod);
            }
        }
        if let Some(fgd) = &scenario.openb_fgd {
            let gi = groups.len() as u32;
            let trace_group = PodGroup {
                name: Some(format!("openb-{}", fgd.pod_list)),
                ..trace_group_defaults(0)
            };
            let list = PodList::named(&fgd.pod_list).expect("validated pod list");
            let trace = Datasets::shipped()
                .openb_pods(list)
                .map_err(|source| dataset_error(scenario, source))?;
            let capacity: u64 = nodes.iter().map(NodeSpec::gpu_milli_capacity).sum();
            let config = FgdConfig {
                target_ratio: fgd.target_ratio,
                seed: scenario.seed,
            };
            let resampled =
                fgd_resample(&trace, capacity, &config).map_err(|source| HarnessError::Replay {
                    scenario: scenario.name.clone(),
                    source,
                })?;
            for (i, mut spec) in resampled.into_iter().enumerate() {
                // Resampled copies repeat names; the index keeps them (and UIDs) unique.
                spec.name = format!("{}-{i}", k8s_name(&spec.name));
                let name = spec.name.clone();
                let pod = sim_pod(name, Arc::new(spec), gi, &trace_group, None, None, scenario)?;
                pods.push(pod);
            }
            groups.push(PodGroup {
                count: pods.len() - groups.iter().map(|g| g.count).sum::<usize>(),
                ..trace_group
            });
        }
        let n_initial = scenario.n_initial_pods();
        let schedule = schedule_order(scenario, &pods, n_initial);
        let has_gpus = nodes.iter().any(|n| n.gpus > 0)
            || pods[n_initial..]
                .iter()
                .any(|p| p.spec.gpu != GpuRequest::None);
        Ok(Workload {
            nodes,
            groups,
            pods,
            n_initial,
            schedule,
            has_gpus,
            curve_step_frac: scenario.openb_fgd.as_ref().map(|f| f.curve_step_frac),
        })
    }

    /// Whether the pod counts towards latency and throughput.
    pub fn collects_metrics(&self, pod_id: u32) -> bool {
        let pod = &self.pods[pod_id as usize];
        pod_id as usize >= self.n_initial && self.groups[pod.group as usize].collect_metrics
    }
}

fn trace_group_defaults(count: usize) -> PodGroup {
    PodGroup {
        count,
        name: None,
        cpu_milli: 0,
        memory_mib: 0,
        gpus: 0,
        gpu_milli: 0,
        priority: None,
        labels: BTreeMap::new(),
        node_selector: BTreeMap::new(),
        node_affinity: Vec::new(),
        pod_affinity: None,
        pod_anti_affinity: None,
        topology_spread: None,
        daemonset: false,
        collect_metrics: true,
    }
}

fn group_prefix(scenario: &Scenario, gi: usize, group: &PodGroup) -> String {
    let phase = if gi < scenario.initial_pods.len() {
        "init"
    } else {
        "pod"
    };
    match &group.name {
        Some(name) => format!("{phase}{gi}-{}", k8s_name(name)),
        None => format!("{phase}{gi}"),
    }
}

fn dataset_error(scenario: &Scenario, source: crate::datasets::DatasetError) -> HarnessError {
    HarnessError::Dataset {
        scenario: scenario.name.clone(),
        source,
    }
}

fn build_nodes(scenario: &Scenario) -> Result<Vec<NodeSpec>, HarnessError> {
    let c = &scenario.cluster;
    let mut nodes = match &c.openb {
        Some(o) => {
            let list = match o.node_list {
                OpenbNodeList::GpuNode => NodeList::GpuNode,
                OpenbNodeList::AllNode => NodeList::AllNode,
            };
            let mut nodes = Datasets::shipped()
                .openb_nodes(list)
                .map_err(|source| dataset_error(scenario, source))?;
            if let Some(k) = o.sample_nodes.filter(|&k| k < nodes.len()) {
                let mut idx: Vec<usize> = (0..nodes.len()).collect();
                SimRng::new(scenario.seed).shuffle(&mut idx);
                idx.truncate(k);
                idx.sort_unstable();
                nodes = idx.into_iter().map(|i| nodes[i].clone()).collect();
            }
            openb::replicate_nodes(&nodes, o.replicate)
        }
        None => {
            let mut shape = match c.template {
                ClusterTemplate::SchedulerPerf => ClusterShape::scheduler_perf(c.nodes),
                ClusterTemplate::Heterogeneous => ClusterShape::heterogeneous(c.nodes),
            };
            if let Some(z) = c.zones {
                shape.zones_per_region = z;
            }
            generate_nodes(&shape, scenario.seed).map_err(|source| HarnessError::Synth {
                scenario: scenario.name.clone(),
                source,
            })?
        }
    };
    for rule in &c.node_labels {
        let n_labelled = (rule.fraction * nodes.len() as f64).round() as usize;
        for (i, node) in nodes.iter_mut().take(n_labelled).enumerate() {
            let value = &rule.values[i % rule.values.len()];
            node.labels.insert(rule.key.clone(), value.clone());
        }
    }
    Ok(nodes)
}

fn group_pod_spec(group: &PodGroup, name: String) -> PodSpec {
    let mut spec = PodSpec::new(name, group.cpu_milli, group.memory_mib);
    spec.gpu = match (group.gpus, group.gpu_milli) {
        (0, 0) => GpuRequest::None,
        (0, m) => GpuRequest::Fraction(m),
        (n, _) => GpuRequest::Whole(n),
    };
    if let Some(p) = group.priority {
        spec.priority = p;
    }
    spec.labels = group.labels.clone();
    spec.node_selector = group.node_selector.clone();
    spec
}

fn sim_pod(
    name: String,
    spec: Arc<PodSpec>,
    group_idx: u32,
    group: &PodGroup,
    pin_node: Option<u32>,
    pin_name: Option<&str>,
    scenario: &Scenario,
) -> Result<SimPod, HarnessError> {
    let mut pod = PodSpec {
        name: name.clone(),
        ..PodSpec::clone(&spec)
    }
    .to_k8s(NAMESPACE);
    add_constraints(&mut pod, group, pin_name);
    // The cache keys pods by UID; names are unique within a workload.
    pod.metadata.uid = pod.metadata.name.clone();
    let info = PodInfo::new(pod).map_err(|e| HarnessError::Scenario {
        origin: scenario.name.clone(),
        message: format!("generated pod is not schedulable: {e}"),
    })?;
    Ok(SimPod {
        name,
        spec,
        group: group_idx,
        pin_node,
        template: Arc::new(info),
    })
}

/// Adds the group's node affinity, daemonset pin, pod (anti-)affinity and topology
/// spread to a converted pod, keeping what the conversion set (GPU-model affinity).
fn add_constraints(pod: &mut Pod, group: &PodGroup, pin_name: Option<&str>) {
    let spec = pod.spec.as_mut().expect("to_k8s sets a spec");
    let exprs: Vec<NodeSelectorRequirement> = group
        .node_affinity
        .iter()
        .map(|r| NodeSelectorRequirement {
            key: r.key.clone(),
            operator: r.operator.as_str().to_string(),
            values: (!r.values.is_empty()).then(|| r.values.clone()),
        })
        .collect();
    let fields: Vec<NodeSelectorRequirement> = pin_name
        .map(|name| NodeSelectorRequirement {
            key: NAME_FIELD.into(),
            operator: "In".into(),
            values: Some(vec![name.to_string()]),
        })
        .into_iter()
        .collect();
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    if !exprs.is_empty() || !fields.is_empty() {
        let na = affinity
            .node_affinity
            .get_or_insert_with(NodeAffinity::default);
        let selector = na
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(|| NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm::default()],
            });
        // Terms are ORed; adding to each keeps the conversion's constraint and ANDs ours.
        for term in &mut selector.node_selector_terms {
            term.match_expressions
                .get_or_insert_with(Vec::new)
                .extend(exprs.iter().cloned());
            if !fields.is_empty() {
                term.match_fields
                    .get_or_insert_with(Vec::new)
                    .extend(fields.iter().cloned());
            }
        }
    }
    if let Some(rule) = &group.pod_affinity {
        affinity.pod_affinity = Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![affinity_term(rule)]),
            ..PodAffinity::default()
        });
    }
    if let Some(rule) = &group.pod_anti_affinity {
        affinity.pod_anti_affinity = Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![affinity_term(rule)]),
            ..PodAntiAffinity::default()
        });
    }
    if *affinity == Affinity::default() {
        spec.affinity = None;
    }
    if let Some(s) = &group.topology_spread {
        spec.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
            max_skew: s.max_skew as i32,
            topology_key: s.topology_key.clone(),
            when_unsatisfiable: s.when_unsatisfiable.as_str().to_string(),
            label_selector: Some(label_selector(&s.match_labels)),
            ..TopologySpreadConstraint::default()
        }]);
    }
}

fn affinity_term(rule: &PodAffinityRule) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(label_selector(&rule.match_labels)),
        topology_key: rule.topology_key.clone(),
        ..PodAffinityTerm::default()
    }
}

fn label_selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    }
}

/// Measured pods in scheduling order with their arrival times. The order depends only
/// on the scenario, never on measured times.
fn schedule_order(scenario: &Scenario, pods: &[SimPod], n_initial: usize) -> Vec<(u32, u64)> {
    let interval_us = scenario
        .arrival
        .rate_pods_per_s
        .map(|rate| 1e6 / rate)
        .unwrap_or(0.0);
    let mut out: Vec<(u32, u64)> = (n_initial..pods.len())
        .enumerate()
        .map(|(k, id)| (id as u32, (k as f64 * interval_us).round() as u64))
        .collect();
    if scenario.arrival.order == QueueOrder::Priority {
        // PrioritySort among pods that arrived together; stable, so file order breaks ties.
        out.sort_by_key(|&(id, arrival_us)| {
            (
                arrival_us,
                std::cmp::Reverse(pods[id as usize].spec.priority),
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Siblings are what converting each pod on its own would give.
    #[test]
    fn siblings_equal_their_own_conversion() {
        for name in [
            "SchedulingBasic-short",
            "PodAntiAffinity-short",
            "SchedulingDaemonset-short",
        ] {
            let scenario = crate::scenario::load_scenario(name).unwrap();
            let w = Workload::build(&scenario).unwrap();
            let node_names: Vec<String> = w.nodes.iter().map(|n| k8s_name(&n.name)).collect();
            for p in &w.pods {
                let group = &w.groups[p.group as usize];
                let pin = p.pin_node.map(|n| node_names[n as usize].as_str());
                let spec = Arc::clone(&p.spec);
                let own = sim_pod(
                    p.name.clone(),
                    spec,
                    p.group,
                    group,
                    p.pin_node,
                    pin,
                    &scenario,
                )
                .unwrap();
                let (a, b) = (&p.decode(), &own.decode());
                assert_eq!((&a.name, &a.uid, a.key()), (&b.name, &b.uid, b.key()));
                assert_eq!(a.signature(), b.signature(), "{}", a.name);
                assert_eq!(
                    (
                        &a.labels,
                        &a.requests,
                        a.priority,
                        &a.affinity.required_anti_affinity.len()
                    ),
                    (
                        &b.labels,
                        &b.requests,
                        b.priority,
                        &b.affinity.required_anti_affinity.len()
                    )
                );
                assert_eq!(a.pod.spec, b.pod.spec, "{}", a.name);
            }
        }
    }
}
