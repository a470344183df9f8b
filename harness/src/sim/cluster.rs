//! The simulator's own account of the cluster, kept beside the scheduler's cache and
//! independent of it: per node, what its pods use, including which physical GPU each
//! GPU pod got (the scheduler's `NodeResourcesFit` only sees the milli-GPU sum, so a
//! fractional pod can be admitted to a node where no single device has room; the
//! device plugin would then refuse it, and so does [`assign_devices`]).
//!
//! The placement checks here ([`ClusterState::fits`], [`ClusterState::admits`]) are
//! written from the Kubernetes semantics, not from the scheduler's code, so the
//! invariant checker can hold the scheduler to them.

use std::collections::{BTreeMap, HashMap};

use crate::model::{GPU_MILLI_PER_GPU, GpuRequest, NodeSpec, PodSpec, TaintEffect, k8s_name};
use crate::scenario::{AffinityOperator, NodeAffinityRule};
use crate::sim::workload::{SimPod, Workload};

/// One node as the simulator accounts it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeState {
    /// The Kubernetes name (the scheduler's key).
    pub name: String,
    /// Index into [`Workload::nodes`] of the node's spec.
    pub spec_idx: u32,
    pub labels: BTreeMap<String, String>,
    pub alive: bool,
    pub cpu_milli_used: u64,
    pub memory_mib_used: u64,
    pub n_pods: u32,
    /// Free milli-GPU per physical device.
    pub gpu_free_milli: Vec<u32>,
    /// Extended resources in use, by name.
    pub extended_used: BTreeMap<String, u64>,
    /// Pod ids running here.
    pub pods: Vec<u32>,
}

/// Every node and where every pod runs.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub nodes: Vec<NodeState>,
    pub by_name: HashMap<String, u32>,
    /// Per pod id: the node index it runs on.
    pub pod_node: Vec<Option<u32>>,
    /// Per pod id: the GPU devices it holds on its node.
    pub pod_devices: Vec<Vec<u8>>,
}

impl ClusterState {
    pub fn new(workload: &Workload) -> ClusterState {
        let mut state = ClusterState {
            nodes: Vec::with_capacity(workload.nodes.len()),
            by_name: HashMap::with_capacity(workload.nodes.len()),
            pod_node: vec![None; workload.pods.len()],
            pod_devices: vec![Vec::new(); workload.pods.len()],
        };
        for (i, spec) in workload.nodes.iter().enumerate() {
            state.add_node(spec, i as u32, k8s_name(&spec.name));
        }
        state
    }

    /// Adds a node built from `spec` under `name`; returns its index.
    pub fn add_node(&mut self, spec: &NodeSpec, spec_idx: u32, name: String) -> u32 {
        let idx = self.nodes.len() as u32;
        let mut labels = spec.all_labels();
        labels.insert(crate::model::HOSTNAME_LABEL.into(), name.clone());
        self.by_name.insert(name.clone(), idx);
        self.nodes.push(NodeState {
            name,
            spec_idx,
            labels,
            alive: true,
            cpu_milli_used: 0,
            memory_mib_used: 0,
            n_pods: 0,
            gpu_free_milli: vec![spec.gpu_milli_per_gpu; spec.gpus as usize],
            extended_used: BTreeMap::new(),
            pods: Vec::new(),
        });
        idx
    }

    /// Whether `pod`'s requests fit what node `n` has left, GPU devices included;
    /// the devices it would get.
    pub fn fits(&self, spec: &NodeSpec, n: u32, pod: &PodSpec) -> Option<Vec<u8>> {
        let node = &self.nodes[n as usize];
        let fits = node.alive
            && node.cpu_milli_used + pod.cpu_milli <= spec.cpu_milli
            && node.memory_mib_used + pod.memory_mib <= spec.memory_mib
            && node.n_pods < spec.max_pods
            && pod.extended.iter().all(|(name, amount)| {
                let cap = spec
                    .extended
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or(0, |e| e.1);
                node.extended_used.get(name).copied().unwrap_or(0) + amount <= cap
            });
        if !fits {
            return None;
        }
        assign_devices(&node.gpu_free_milli, pod.gpu)
    }

    /// Whether node `n`'s labels, taints and name admit the pod: node selector, GPU
    /// models, the group's node affinity, daemonset pin, and no untolerated
    /// NoSchedule/NoExecute taint (generated pods tolerate nothing).
    pub fn admits(
        &self,
        spec: &NodeSpec,
        n: u32,
        pod: &SimPod,
        rules: &[NodeAffinityRule],
    ) -> bool {
        let node = &self.nodes[n as usize];
        let labels = &node.labels;
        let selector_ok = pod
            .spec
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        let model_ok = pod.spec.gpu_models.is_empty()
            || spec
                .gpu_model
                .as_ref()
                .is_some_and(|m| pod.spec.gpu_models.contains(m));
        let affinity_ok = rules.iter().all(|r| rule_matches(r, labels));
        let pin_ok = pod
            .pin_node
            .is_none_or(|p| p == node.spec_idx && node.name == k8s_name(&spec.name));
        let taints_ok = !spec
            .taints
            .iter()
            .any(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute));
        selector_ok && model_ok && affinity_ok && pin_ok && taints_ok
    }

    /// Accounts pod `id` on node `n` holding `devices`.
    pub fn place(&mut self, id: u32, sim_pod: &SimPod, n: u32, devices: Vec<u8>) {
        let node = &mut self.nodes[n as usize];
        assert!(
            node.alive,
            "placing {} on removed node {}",
            sim_pod.name, node.name
        );
        assert!(
            self.pod_node[id as usize].is_none(),
            "{} placed twice",
            sim_pod.name
        );
        let pod = &sim_pod.spec;
        node.cpu_milli_used += pod.cpu_milli;
        node.memory_mib_used += pod.memory_mib;
        node.n_pods += 1;
        let per_device = per_device_milli(pod.gpu);
        for &d in &devices {
            node.gpu_free_milli[d as usize] -= per_device;
        }
        for (name, amount) in &pod.extended {
            *node.extended_used.entry(name.clone()).or_default() += amount;
        }
        node.pods.push(id);
        self.pod_node[id as usize] = Some(n);
        self.pod_devices[id as usize] = devices;
    }

    /// Undoes [`place`](ClusterState::place); returns the node it ran on.
    pub fn remove(&mut self, id: u32, sim_pod: &SimPod) -> u32 {
        let pod = &sim_pod.spec;
        let n = self.pod_node[id as usize]
            .take()
            .expect("removing a pod that is not placed");
        let devices = std::mem::take(&mut self.pod_devices[id as usize]);
        let node = &mut self.nodes[n as usize];
        node.cpu_milli_used -= pod.cpu_milli;
        node.memory_mib_used -= pod.memory_mib;
        node.n_pods -= 1;
        let per_device = per_device_milli(pod.gpu);
        for d in devices {
            node.gpu_free_milli[d as usize] += per_device;
        }
        for (name, amount) in &pod.extended {
            *node.extended_used.get_mut(name).expect("used") -= amount;
        }
        let at = node
            .pods
            .iter()
            .position(|&p| p == id)
            .expect("pod on its node");
        node.pods.swap_remove(at);
        n
    }

    /// Pods running now.
    pub fn n_running(&self) -> usize {
        self.pod_node.iter().filter(|n| n.is_some()).count()
    }
}

/// Milli-GPU a pod takes from each device it holds.
pub fn per_device_milli(gpu: GpuRequest) -> u32 {
    match gpu {
        GpuRequest::None => 0,
        GpuRequest::Whole(_) => GPU_MILLI_PER_GPU,
        GpuRequest::Fraction(m) => m,
    }
}

/// The devices a GPU request gets, or `None` if no assignment exists: a fraction goes
/// to the device with the least room that still holds it (best fit, lowest index on
/// ties); `Whole(k)` takes the first `k` entirely free devices.
pub fn assign_devices(free_milli: &[u32], gpu: GpuRequest) -> Option<Vec<u8>> {
    match gpu {
        GpuRequest::None => Some(Vec::new()),
        GpuRequest::Fraction(m) => free_milli
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f >= m)
            .min_by_key(|&(i, &f)| (f, i))
            .map(|(i, _)| vec![i as u8]),
        GpuRequest::Whole(k) => {
            let whole: Vec<u8> = free_milli
                .iter()
                .enumerate()
                .filter(|&(_, &f)| f == GPU_MILLI_PER_GPU)
                .map(|(i, _)| i as u8)
                .take(k as usize)
                .collect();
            (whole.len() == k as usize).then_some(whole)
        }
    }
}

/// The devices of `mask` when a GPU request may take exactly them (the device plugin
/// honouring the scheduler's choice): `Whole(k)`, `k` entirely free devices; a
/// fraction, one device with room. `None` otherwise.
pub fn pinned_devices(free_milli: &[u32], gpu: GpuRequest, mask: u64) -> Option<Vec<u8>> {
    let devices: Vec<u8> = (0..64u8).filter(|&d| mask & (1 << d) != 0).collect();
    let free = |d: u8| free_milli.get(usize::from(d)).copied();
    let ok = match gpu {
        GpuRequest::None => devices.is_empty(),
        GpuRequest::Whole(k) => {
            devices.len() == k as usize
                && devices.iter().all(|&d| free(d) == Some(GPU_MILLI_PER_GPU))
        }
        GpuRequest::Fraction(m) => devices.len() == 1 && free(devices[0]).is_some_and(|f| f >= m),
    };
    ok.then_some(devices)
}

/// Whether node labels satisfy one node affinity rule.
pub fn rule_matches(rule: &NodeAffinityRule, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&rule.key);
    match rule.operator {
        AffinityOperator::In => value.is_some_and(|v| rule.values.contains(v)),
        AffinityOperator::NotIn => value.is_none_or(|v| !rule.values.contains(v)),
        AffinityOperator::Exists => value.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_best_fit_fractions_and_whole_needs_free_devices() {
        // (free per device, request, expected devices)
        type Case = (&'static [u32], GpuRequest, Option<Vec<u8>>);
        let cases: [Case; 6] = [
            (&[1000, 400, 600], GpuRequest::Fraction(300), Some(vec![1])),
            (&[1000, 400, 600], GpuRequest::Fraction(500), Some(vec![2])),
            (&[200, 200], GpuRequest::Fraction(300), None),
            (&[1000, 999, 1000], GpuRequest::Whole(2), Some(vec![0, 2])),
            (&[1000, 999], GpuRequest::Whole(2), None),
            (&[], GpuRequest::None, Some(vec![])),
        ];
        for (free, req, want) in cases {
            assert_eq!(assign_devices(free, req), want, "{free:?} {req:?}");
        }
    }

    #[test]
    fn pinned_devices_need_room_and_the_right_count() {
        // (free per device, request, pin, expected devices)
        type Case = (&'static [u32], GpuRequest, u64, Option<Vec<u8>>);
        let cases: [Case; 7] = [
            (
                &[1000, 400, 600],
                GpuRequest::Fraction(300),
                0b100,
                Some(vec![2]),
            ),
            (&[1000, 400, 600], GpuRequest::Fraction(500), 0b010, None),
            (&[1000, 400, 600], GpuRequest::Fraction(300), 0b110, None),
            (
                &[1000, 999, 1000],
                GpuRequest::Whole(2),
                0b101,
                Some(vec![0, 2]),
            ),
            (&[1000, 999, 1000], GpuRequest::Whole(2), 0b011, None),
            (&[1000], GpuRequest::Fraction(300), 0b10, None),
            (&[], GpuRequest::None, 0, Some(vec![])),
        ];
        for (free, req, mask, want) in cases {
            assert_eq!(
                pinned_devices(free, req, mask),
                want,
                "{free:?} {req:?} {mask:#b}"
            );
        }
    }
}
