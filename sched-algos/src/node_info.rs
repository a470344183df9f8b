//! `NodeInfo`: a node and the sum of what its pods (bound and assumed) use
//! (upstream's `framework.NodeInfo`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as corev1;

use crate::plugins::gpu_device::GpuDevices;
use crate::pod_info::{HostPort, PodInfo, Taint};
use crate::resource::{Resource, ResourceError};

/// A host port in use on a node and how many pods use it (a count so that removing
/// one of two pods bound to the same port by `spec.nodeName` keeps it in use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedPort {
    pub port: HostPort,
    pub n_pods: u32,
}

/// A node and its pods. Invariants: `requested` and `non_zero_*` are the sums over
/// `pods`; `generation` is the cache generation of the last change.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub generation: u64,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    /// The sum of the pods' exact requests.
    pub requested: Resource,
    /// The sum of the pods' scoring requests (100m / 200Mi defaults).
    pub non_zero_milli_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<UsedPort>,
    /// Images by normalised name, with their size on this node.
    pub images: BTreeMap<String, i64>,
    /// How many of `pods` have inter-pod (anti-)affinity terms (upstream's
    /// `PodsWithAffinity`).
    pub n_pods_with_affinity: u32,
    /// How many of `pods` have required anti-affinity terms (upstream's
    /// `PodsWithRequiredAntiAffinity`).
    pub n_pods_with_required_anti_affinity: u32,
    /// Per-GPU-device usage by `pods` (the GpuDeviceFit plugin's model), replayed in
    /// the order pods were added; rebuilt when the node's device count changes.
    pub gpu_devices: GpuDevices,
}

impl NodeInfo {
    /// A node with no pods (upstream's `NewNodeInfo` + `SetNode`).
    pub fn new(node: &corev1::Node) -> Result<NodeInfo, ResourceError> {
        let mut info = NodeInfo::default();
        info.set_node(node)?;
        Ok(info)
    }

    /// Replaces the node-level fields, keeping the pods.
    pub fn set_node(&mut self, node: &corev1::Node) -> Result<(), ResourceError> {
        let status = node.status.as_ref();
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        self.allocatable = match allocatable {
            Some(list) => Resource::from_list(list)?,
            None => Resource::default(),
        };
        let spec = node.spec.as_ref();
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.taints = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(Taint::from_k8s)
            .collect();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let n_devices = GpuDevices::device_count(&self.allocatable);
        if n_devices != self.gpu_devices.n_devices() {
            let pods = self
                .pods
                .iter()
                .map(|p| (p.uid.as_str(), &p.requests, p.gpu_device_mask));
            self.gpu_devices.rebuild(n_devices, pods);
        }
        self.images = BTreeMap::new();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .entry(name.clone())
                    .or_insert(image.size_bytes.unwrap_or(0));
            }
        }
        Ok(())
    }

    /// Accounts a pod on this node (upstream's `NodeInfo.AddPod`).
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_milli_cpu += pod.non_zero_milli_cpu;
        self.non_zero_memory += pod.non_zero_memory;
        for hp in &pod.host_ports {
            match self.used_ports.iter_mut().find(|u| u.port == *hp) {
                Some(u) => u.n_pods += 1,
                None => self.used_ports.push(UsedPort {
                    port: hp.clone(),
                    n_pods: 1,
                }),
            }
        }
        self.n_pods_with_affinity += u32::from(pod.affinity.has_any());
        self.n_pods_with_required_anti_affinity +=
            u32::from(pod.affinity.has_required_anti_affinity());
        self.gpu_devices
            .add_pod(&pod.uid, &pod.requests, pod.gpu_device_mask);
        self.pods.push(pod);
    }

    /// Removes the pod with this UID; returns it, or `None` if it is not here.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let pod = self.pods.swap_remove(i);
        self.gpu_devices.remove_pod(&pod.uid);
        self.n_pods_with_affinity -= u32::from(pod.affinity.has_any());
        self.n_pods_with_required_anti_affinity -=
            u32::from(pod.affinity.has_required_anti_affinity());
        self.requested.sub(&pod.requests);
        self.non_zero_milli_cpu -= pod.non_zero_milli_cpu;
        self.non_zero_memory -= pod.non_zero_memory;
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u.port == *hp) {
                self.used_ports[j].n_pods -= 1;
                if self.used_ports[j].n_pods == 0 {
                    self.used_ports.swap_remove(j);
                }
            }
        }
        Some(pod)
    }

    /// Whether any used port conflicts with `port`.
    pub fn port_conflicts(&self, port: &HostPort) -> bool {
        self.used_ports.iter().any(|u| u.port.conflicts(port))
    }
}
