//! The harness's workload model: nodes and pods as plain data, the form every loader and
//! generator produces and every simulated run consumes. No k8s-openapi types in the hot
//! path: a `PodSpec` is a few integers and short strings, so 100k of them fit in tens of
//! MiB. [`NodeSpec::to_k8s`] and [`PodSpec::to_k8s`] convert to Kubernetes objects for the
//! end-to-end mode.
//!
//! # Mapping to Kubernetes
//!
//! | model | Kubernetes |
//! |---|---|
//! | `cpu_milli` | resource `cpu` (millicores, e.g. `4000m`) |
//! | `memory_mib` | resource `memory` (`<n>Mi`) |
//! | `disk_mib` | resource `ephemeral-storage` (`<n>Mi`), omitted when 0 on both sides |
//! | node `gpus` | capacity `nvidia.com/gpu` = `gpus`, and `bosun.io/gpu-milli` = `gpus × gpu_milli_per_gpu` |
//! | pod [`GpuRequest::Whole`]`(n)` | requests (and limits) `nvidia.com/gpu` = n and `bosun.io/gpu-milli` = n × 1000 |
//! | pod [`GpuRequest::Fraction`]`(m)` | requests (and limits) `bosun.io/gpu-milli` = m; annotation `bosun.io/gpu-fraction-milli` = m |
//! | node `gpu_model` | label `gpu-model=<model>` ([`GPU_MODEL_LABEL`]) |
//! | pod `gpu_models` (non-empty) | required node affinity `gpu-model In (...)` |
//! | `zone`, `region` | labels `topology.kubernetes.io/zone`, `topology.kubernetes.io/region` |
//! | `name` | `metadata.name` via [`k8s_name`] (a valid DNS-1123 name, e.g. `instance_3` → `instance-3`) |
//! | node `name` | label `kubernetes.io/hostname` (also via [`k8s_name`]) |
//! | node `instance_type` | label `node.kubernetes.io/instance-type` |
//! | node `images` | `status.images` (name and size) |
//! | `extended` (e.g. [`RDMA_RESOURCE`]) | extended resources of the same name (pods: requests = limits) |
//! | pod `qos`, `priority` | `priority`; `priorityClassName` ([`QosClass::priority_class_name`]) when `priority` is the class's; label `bosun.io/qos` |
//! | pod `app` | label `app` |
//! | pod `node_selector` | `nodeSelector` |
//! | pod `max_instances_per_node` = k | annotation `bosun.io/max-instances-per-node` = k (a custom filter enforces it; Kubernetes has no built-in equivalent) |
//!
//! Whole-GPU pods request the milli-GPU resource too, so the stock `NodeResourcesFit`
//! never lets whole and fractional pods together exceed a node's GPU capacity. What it
//! cannot express is that a fraction must fit on one physical device; GPU-aware plugins
//! (FGD) model devices themselves from the annotation. Extended resources must carry
//! limits equal to requests (upstream validation), so they do. Guaranteed pods also carry
//! cpu and memory limits equal to their requests, the other classes requests only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerImage, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, NodeSpec as K8sNodeSpec, NodeStatus, Pod, PodSpec as K8sPodSpec,
    ResourceRequirements, Taint as K8sTaint,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Milli-GPU units in one physical GPU.
pub const GPU_MILLI_PER_GPU: u32 = 1000;
/// Pods per node when nothing else is said (the kubelet's default `maxPods`).
pub const DEFAULT_MAX_PODS: u32 = 110;

/// Whole GPU devices, upstream's device-plugin name.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// GPU capacity and requests in milli-GPU (1000 per device), for fractional sharing.
pub const GPU_MILLI_RESOURCE: &str = "bosun.io/gpu-milli";
/// Share of an RDMA NIC's bandwidth in percent; a node has 100 per NIC.
pub const RDMA_RESOURCE: &str = "bosun.io/rdma";
/// RDMA capacity of one NIC, in [`RDMA_RESOURCE`] units.
pub const RDMA_PER_NIC: u64 = 100;

/// Node label holding the GPU model (as the datasets README suggests); the scheduler's
/// FGD plugin reads the same label.
pub const GPU_MODEL_LABEL: &str = bosun_sched_algos::plugins::gpu_device::GPU_MODEL_LABEL;
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
pub const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
/// Pod label holding the app (DLRM `app_name`).
pub const APP_LABEL: &str = "app";
/// Pod label holding the QoS class.
pub const QOS_LABEL: &str = "bosun.io/qos";
/// Pod annotation: at most this many pods with the same `app` label per node.
pub const MAX_PER_NODE_ANNOTATION: &str = "bosun.io/max-instances-per-node";
/// Pod annotation: the milli-GPU fraction of one device a sharing pod needs.
pub const GPU_FRACTION_ANNOTATION: &str = "bosun.io/gpu-fraction-milli";
/// Image a pod runs when its spec names none.
pub const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A node taint's effect, as in Kubernetes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

/// A container image present on a node (for image-locality scoring).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    pub name: String,
    pub size_bytes: u64,
}

/// A node: capacities (all allocatable), placement labels, taints and images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    /// Ephemeral storage; 0 means not modelled (no `ephemeral-storage` capacity).
    pub disk_mib: u64,
    pub max_pods: u32,
    /// Physical GPU devices.
    pub gpus: u32,
    /// Milli-GPU per device; [`GPU_MILLI_PER_GPU`] for every real GPU.
    pub gpu_milli_per_gpu: u32,
    pub gpu_model: Option<String>,
    /// Other extended resources by Kubernetes name, e.g. ([`RDMA_RESOURCE`], 100).
    pub extended: Vec<(String, u64)>,
    /// The shape or template this node was made from, e.g. `openb-96c-8g-G2`.
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub region: Option<String>,
    /// Labels beyond the well-known ones derived from the fields above (see
    /// [`NodeSpec::all_labels`]).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub images: Vec<ImageSpec>,
}

impl NodeSpec {
    /// A node with only CPU and memory, no GPU, labels, taints or images.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            cpu_milli,
            memory_mib,
            disk_mib: 0,
            max_pods: DEFAULT_MAX_PODS,
            gpus: 0,
            gpu_milli_per_gpu: GPU_MILLI_PER_GPU,
            gpu_model: None,
            extended: Vec::new(),
            instance_type: None,
            zone: None,
            region: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            images: Vec::new(),
        }
    }

    /// Heap bytes this node owns, estimated from capacities (a B-tree entry is counted
    /// as its key and value plus [`MAP_ENTRY_OVERHEAD_BYTES`]); for memory accounting.
    pub fn approx_heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.name.capacity()
            + opt(&self.gpu_model)
            + opt(&self.instance_type)
            + opt(&self.zone)
            + opt(&self.region)
            + pairs_heap_bytes(&self.extended)
            + map_heap_bytes(&self.labels)
            + self.taints.capacity() * size_of::<Taint>()
            + self
                .taints
                .iter()
                .map(|t| t.key.capacity() + t.value.capacity())
                .sum::<usize>()
            + self.images.capacity() * size_of::<ImageSpec>()
            + self.images.iter().map(|i| i.name.capacity()).sum::<usize>()
    }

    /// Total GPU capacity in milli-GPU.
    pub fn gpu_milli_capacity(&self) -> u64 {
        u64::from(self.gpus) * u64::from(self.gpu_milli_per_gpu)
    }

    /// The node's labels as Kubernetes sees them: hostname, zone, region, GPU model and
    /// instance type, then `labels` (which win on a clash).
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert(HOSTNAME_LABEL.to_string(), k8s_name(&self.name));
        let derived = [
            (ZONE_LABEL, &self.zone),
            (REGION_LABEL, &self.region),
            (GPU_MODEL_LABEL, &self.gpu_model),
            (INSTANCE_TYPE_LABEL, &self.instance_type),
        ];
        for (key, value) in derived {
            if let Some(value) = value {
                out.insert(key.to_string(), value.clone());
            }
        }
        out.extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Capacity by Kubernetes resource name (see the module's mapping table).
    pub fn resources(&self) -> BTreeMap<String, Quantity> {
        let mut out = BTreeMap::new();
        out.insert("cpu".into(), milli_cpu(self.cpu_milli));
        out.insert("memory".into(), mebibytes(self.memory_mib));
        out.insert("pods".into(), Quantity(self.max_pods.to_string()));
        if self.disk_mib > 0 {
            out.insert("ephemeral-storage".into(), mebibytes(self.disk_mib));
        }
        if self.gpus > 0 {
            out.insert(GPU_RESOURCE.into(), Quantity(self.gpus.to_string()));
            let milli = self.gpu_milli_capacity().to_string();
            out.insert(GPU_MILLI_RESOURCE.into(), Quantity(milli));
        }
        for (name, value) in &self.extended {
            out.insert(name.clone(), Quantity(value.to_string()));
        }
        out
    }

    /// The Kubernetes Node, Ready-less: a hollow kubelet owns its conditions.
    pub fn to_k8s(&self) -> Node {
        let resources = self.resources();
        let taints: Vec<K8sTaint> = self
            .taints
            .iter()
            .map(|t| K8sTaint {
                key: t.key.clone(),
                value: (!t.value.is_empty()).then(|| t.value.clone()),
                effect: t.effect.as_str().to_string(),
                time_added: None,
            })
            .collect();
        let images: Vec<ContainerImage> = self
            .images
            .iter()
            .map(|i| ContainerImage {
                names: Some(vec![i.name.clone()]),
                size_bytes: Some(i.size_bytes as i64),
            })
            .collect();
        Node {
            metadata: ObjectMeta {
                name: Some(k8s_name(&self.name)),
                labels: Some(self.all_labels()),
                ..ObjectMeta::default()
            },
            spec: Some(K8sNodeSpec {
                taints: (!taints.is_empty()).then_some(taints),
                ..K8sNodeSpec::default()
            }),
            status: Some(NodeStatus {
                capacity: Some(resources.clone()),
                allocatable: Some(resources),
                images: (!images.is_empty()).then_some(images),
                ..NodeStatus::default()
            }),
        }
    }
}

/// A pod's GPU request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GpuRequest {
    None,
    /// This many whole devices on one node (1..).
    Whole(u32),
    /// A fraction of one device, in milli-GPU (1..1000); it must fit on one device.
    Fraction(u32),
}

impl GpuRequest {
    /// The request in milli-GPU, as counted against a cluster's GPU capacity.
    pub fn milli(self) -> u64 {
        match self {
            GpuRequest::None => 0,
            GpuRequest::Whole(n) => u64::from(n) * u64::from(GPU_MILLI_PER_GPU),
            GpuRequest::Fraction(m) => u64::from(m),
        }
    }
}

/// QoS class. `Ls`/`Be` are Alibaba's latency-sensitive and best-effort classes;
/// `Burstable`/`Guaranteed` are Kubernetes'. `Standard` is for pods whose source says
/// nothing (synthetic pods, DLRM, openb multigpu lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QosClass {
    Ls,
    Guaranteed,
    Burstable,
    Standard,
    Be,
}

impl QosClass {
    pub const ALL: [QosClass; 5] = [
        QosClass::Ls,
        QosClass::Guaranteed,
        QosClass::Burstable,
        QosClass::Standard,
        QosClass::Be,
    ];

    /// The scheduling priority: LS > Guaranteed/Burstable > Standard > BE, as the
    /// datasets README suggests.
    pub fn priority(self) -> i32 {
        match self {
            QosClass::Ls => 1000,
            QosClass::Guaranteed | QosClass::Burstable => 500,
            QosClass::Standard => 100,
            QosClass::Be => 0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Ls => "LS",
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::Standard => "Standard",
            QosClass::Be => "BE",
        }
    }

    /// The name of the PriorityClass [`priority_classes`] creates for this class.
    pub fn priority_class_name(self) -> &'static str {
        match self {
            QosClass::Ls => "bosun-ls",
            QosClass::Guaranteed => "bosun-guaranteed",
            QosClass::Burstable => "bosun-burstable",
            QosClass::Standard => "bosun-standard",
            QosClass::Be => "bosun-be",
        }
    }
}

/// The PriorityClasses that converted pods name; create them before the pods.
pub fn priority_classes() -> Vec<PriorityClass> {
    QosClass::ALL
        .iter()
        .map(|q| PriorityClass {
            metadata: ObjectMeta {
                name: Some(q.priority_class_name().to_string()),
                ..ObjectMeta::default()
            },
            value: q.priority(),
            description: Some(format!("Bosun harness QoS class {}", q.as_str())),
            ..PriorityClass::default()
        })
        .collect()
}

/// A pod: requests, placement constraints, and (from traces) its lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpec {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub gpu: GpuRequest,
    /// Allowed GPU models; empty means any.
    pub gpu_models: Vec<String>,
    pub qos: QosClass,
    pub priority: i32,
    /// Other extended resources by Kubernetes name, e.g. ([`RDMA_RESOURCE`], 25).
    pub extended: Vec<(String, u64)>,
    pub app: Option<String>,
    /// At most this many pods with the same `app` on one node; `None` is no limit.
    pub max_instances_per_node: Option<u32>,
    /// Arrival in simulated time; `None` when the source gives no times.
    pub arrival_ms: Option<u64>,
    /// Departure in simulated time; `None` when the pod outlives the trace (censored)
    /// or the source gives no times.
    pub departure_ms: Option<u64>,
    /// False for pods the trace says were never scheduled in production (openb
    /// `Pending`): keep them, but report them separately.
    pub scheduled_in_trace: bool,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Node labels the pod requires (Kubernetes `nodeSelector`).
    pub node_selector: BTreeMap<String, String>,
}

impl PodSpec {
    /// A pod with only CPU and memory requests.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64) -> PodSpec {
        PodSpec {
            name: name.into(),
            cpu_milli,
            memory_mib,
            disk_mib: 0,
            gpu: GpuRequest::None,
            gpu_models: Vec::new(),
            qos: QosClass::Standard,
            priority: QosClass::Standard.priority(),
            extended: Vec::new(),
            app: None,
            max_instances_per_node: None,
            arrival_ms: None,
            departure_ms: None,
            scheduled_in_trace: true,
            image: None,
            labels: BTreeMap::new(),
            node_selector: BTreeMap::new(),
        }
    }

    /// Heap bytes this pod owns, estimated as for [`NodeSpec::approx_heap_bytes`].
    pub fn approx_heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.name.capacity()
            + self.gpu_models.capacity() * size_of::<String>()
            + self.gpu_models.iter().map(String::capacity).sum::<usize>()
            + pairs_heap_bytes(&self.extended)
            + opt(&self.app)
            + opt(&self.image)
            + map_heap_bytes(&self.labels)
            + map_heap_bytes(&self.node_selector)
    }

    /// Requests by Kubernetes resource name (see the module's mapping table).
    pub fn requests(&self) -> BTreeMap<String, Quantity> {
        let mut out = BTreeMap::new();
        out.insert("cpu".into(), milli_cpu(self.cpu_milli));
        out.insert("memory".into(), mebibytes(self.memory_mib));
        if self.disk_mib > 0 {
            out.insert("ephemeral-storage".into(), mebibytes(self.disk_mib));
        }
        out.extend(self.extended_requests());
        out
    }

    /// The requests that are extended resources (GPU and `extended`): these need limits.
    fn extended_requests(&self) -> BTreeMap<String, Quantity> {
        let mut out = BTreeMap::new();
        if let GpuRequest::Whole(n) = self.gpu {
            out.insert(GPU_RESOURCE.into(), Quantity(n.to_string()));
        }
        if self.gpu != GpuRequest::None {
            let milli = self.gpu.milli().to_string();
            out.insert(GPU_MILLI_RESOURCE.into(), Quantity(milli));
        }
        for (name, value) in &self.extended {
            out.insert(name.clone(), Quantity(value.to_string()));
        }
        out
    }

    /// The Kubernetes Pod in `namespace`, unscheduled, one container.
    pub fn to_k8s(&self, namespace: &str) -> Pod {
        let mut limits = self.extended_requests();
        if self.qos == QosClass::Guaranteed {
            limits.insert("cpu".into(), milli_cpu(self.cpu_milli));
            limits.insert("memory".into(), mebibytes(self.memory_mib));
        }
        let container = Container {
            name: "main".into(),
            image: Some(self.image.as_deref().unwrap_or(DEFAULT_IMAGE).to_string()),
            resources: Some(ResourceRequirements {
                requests: Some(self.requests()),
                limits: (!limits.is_empty()).then_some(limits),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(k8s_name(&self.name)),
                namespace: Some(namespace.to_string()),
                labels: Some(self.k8s_labels()),
                annotations: self.k8s_annotations(),
                ..ObjectMeta::default()
            },
            spec: Some(K8sPodSpec {
                containers: vec![container],
                // Admission rejects a priority that differs from its class's value, so
                // the class is named only when the two agree.
                priority_class_name: (self.priority == self.qos.priority())
                    .then(|| self.qos.priority_class_name().to_string()),
                priority: Some(self.priority),
                node_selector: (!self.node_selector.is_empty()).then(|| self.node_selector.clone()),
                affinity: self.gpu_model_affinity(),
                ..K8sPodSpec::default()
            }),
            status: None,
        }
    }

    fn k8s_labels(&self) -> BTreeMap<String, String> {
        let mut out = self.labels.clone();
        out.insert(QOS_LABEL.into(), self.qos.as_str().into());
        if let Some(app) = &self.app {
            out.insert(APP_LABEL.into(), app.clone());
        }
        out
    }

    fn k8s_annotations(&self) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if let Some(k) = self.max_instances_per_node {
            out.insert(MAX_PER_NODE_ANNOTATION.into(), k.to_string());
        }
        if let GpuRequest::Fraction(m) = self.gpu {
            out.insert(GPU_FRACTION_ANNOTATION.into(), m.to_string());
        }
        (!out.is_empty()).then_some(out)
    }

    fn gpu_model_affinity(&self) -> Option<Affinity> {
        if self.gpu_models.is_empty() {
            return None;
        }
        let requirement = NodeSelectorRequirement {
            key: GPU_MODEL_LABEL.into(),
            operator: "In".into(),
            values: Some(self.gpu_models.clone()),
        };
        let selector = NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![requirement]),
                match_fields: None,
            }],
        };
        Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(selector),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        })
    }
}

/// Estimated per-entry overhead of a `BTreeMap` beyond its keys and values (node
/// headers amortised over entries).
pub const MAP_ENTRY_OVERHEAD_BYTES: usize = 16;

fn map_heap_bytes(map: &BTreeMap<String, String>) -> usize {
    map.iter()
        .map(|(k, v)| {
            k.capacity() + v.capacity() + 2 * size_of::<String>() + MAP_ENTRY_OVERHEAD_BYTES
        })
        .sum()
}

fn pairs_heap_bytes(pairs: &Vec<(String, u64)>) -> usize {
    pairs.capacity() * size_of::<(String, u64)>()
        + pairs.iter().map(|(k, _)| k.capacity()).sum::<usize>()
}

/// `name` as a valid Kubernetes object name (a DNS-1123 subdomain): lowercased, with
/// any other character but `-` and `.` replaced by `-` (DLRM's `instance_12` becomes
/// `instance-12`). Names that are already valid are unchanged.
pub fn k8s_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut out: String = trimmed.chars().take(253).collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}

fn milli_cpu(milli: u64) -> Quantity {
    Quantity(format!("{milli}m"))
}

fn mebibytes(mib: u64) -> Quantity {
    Quantity(format!("{mib}Mi"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_node_capacity_has_whole_and_milli_gpus() {
        let mut node = NodeSpec::new("n1", 96_000, 393_216);
        node.gpus = 8;
        node.gpu_model = Some("G2".into());
        node.extended.push((RDMA_RESOURCE.into(), RDMA_PER_NIC));
        node.zone = Some("z1".into());
        node.taints.push(Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: TaintEffect::NoSchedule,
        });
        let k = node.to_k8s();
        let cap = k.status.unwrap().allocatable.unwrap();
        assert_eq!(cap["cpu"].0, "96000m");
        assert_eq!(cap["memory"].0, "393216Mi");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap[GPU_RESOURCE].0, "8");
        assert_eq!(cap[GPU_MILLI_RESOURCE].0, "8000");
        assert_eq!(cap[RDMA_RESOURCE].0, "100");
        assert!(!cap.contains_key("ephemeral-storage"));
        let labels = k.metadata.labels.unwrap();
        assert_eq!(labels[GPU_MODEL_LABEL], "G2");
        assert_eq!(labels[ZONE_LABEL], "z1");
        assert_eq!(labels[HOSTNAME_LABEL], "n1");
        assert_eq!(k.spec.unwrap().taints.unwrap()[0].effect, "NoSchedule");
    }

    #[test]
    fn fractional_pod_requests_milli_gpu_only() {
        let mut pod = PodSpec::new("p", 6000, 12_288);
        pod.gpu = GpuRequest::Fraction(460);
        pod.gpu_models = vec!["T4".into(), "P100".into()];
        pod.qos = QosClass::Ls;
        pod.priority = QosClass::Ls.priority();
        let k = pod.to_k8s("ns");
        let spec = k.spec.unwrap();
        let res = spec.containers[0].resources.clone().unwrap();
        let req = res.requests.unwrap();
        assert_eq!(req[GPU_MILLI_RESOURCE].0, "460");
        assert!(!req.contains_key(GPU_RESOURCE));
        let lim = res.limits.unwrap();
        assert_eq!(lim[GPU_MILLI_RESOURCE].0, "460");
        assert!(
            !lim.contains_key("cpu"),
            "LS is not Guaranteed: no cpu limit"
        );
        assert_eq!(spec.priority, Some(1000));
        assert_eq!(spec.priority_class_name.as_deref(), Some("bosun-ls"));
        let terms = spec
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        let expr = &terms[0].match_expressions.as_ref().unwrap()[0];
        assert_eq!(expr.key, GPU_MODEL_LABEL);
        assert_eq!(expr.values.as_deref().unwrap(), ["T4", "P100"]);
        let ann = k.metadata.annotations.unwrap();
        assert_eq!(ann[GPU_FRACTION_ANNOTATION], "460");
    }

    #[test]
    fn whole_gpu_pod_requests_both_gpu_resources_and_guaranteed_has_limits() {
        let mut pod = PodSpec::new("p", 1000, 1024);
        pod.gpu = GpuRequest::Whole(2);
        pod.qos = QosClass::Guaranteed;
        pod.app = Some("app_1".into());
        pod.max_instances_per_node = Some(4);
        let k = pod.to_k8s("ns");
        let res = k.spec.unwrap().containers[0].resources.clone().unwrap();
        assert_eq!(res.requests.as_ref().unwrap()[GPU_RESOURCE].0, "2");
        assert_eq!(res.requests.as_ref().unwrap()[GPU_MILLI_RESOURCE].0, "2000");
        assert_eq!(res.limits.as_ref().unwrap()["cpu"].0, "1000m");
        assert_eq!(k.metadata.labels.unwrap()[APP_LABEL], "app_1");
        assert_eq!(
            k.metadata.annotations.unwrap()[MAX_PER_NODE_ANNOTATION],
            "4"
        );
    }

    #[test]
    fn k8s_names_are_valid() {
        let cases = [
            ("openb-pod-0001", "openb-pod-0001"),
            ("instance_12", "instance-12"),
            ("Node_A.b", "node-a.b"),
            ("_x_", "x"),
            ("", "x"),
        ];
        for (name, want) in cases {
            assert_eq!(k8s_name(name), want, "{name}");
        }
    }

    #[test]
    fn priority_classes_cover_every_qos_once() {
        let classes = priority_classes();
        assert_eq!(classes.len(), QosClass::ALL.len());
        for q in QosClass::ALL {
            let c = classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(q.priority_class_name()))
                .unwrap();
            assert_eq!(c.value, q.priority());
        }
    }
}
