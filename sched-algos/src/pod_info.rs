//! `PodInfo`: everything the plugins read from a pod, computed once when the pod
//! enters the scheduler (upstream's `framework.PodInfo` plus the per-pod parts of each
//! plugin's PreFilter state), so the per-node hot loop never touches the k8s object.

use std::collections::BTreeMap;
use std::sync::Arc;

use bosun_api::quantity::Quantity;
use k8s_openapi::api::core::v1 as corev1;

use crate::affinity::PodAffinityTerms;
use crate::resource::{self, CPU, MEMORY, Resource, ResourceError};
use crate::selectors::{NodeSelector, PreferredTerms};

/// How a taint's effect is spelled; unknown effects are kept as text so they compare
/// like upstream's strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
    Other(Box<str>),
}

impl TaintEffect {
    pub fn parse(s: &str) -> TaintEffect {
        match s {
            "NoSchedule" => TaintEffect::NoSchedule,
            "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
            "NoExecute" => TaintEffect::NoExecute,
            other => TaintEffect::Other(other.into()),
        }
    }

    /// NoSchedule and NoExecute keep pods off a node (upstream's
    /// `DoNotScheduleTaintsFilterFunc`).
    pub fn blocks_scheduling(&self) -> bool {
        matches!(self, TaintEffect::NoSchedule | TaintEffect::NoExecute)
    }
}

/// A node taint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    pub fn from_k8s(t: &corev1::Taint) -> Taint {
        Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: TaintEffect::parse(&t.effect),
        }
    }
}

/// A toleration's operator; an empty operator means `Equal`, anything else never matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TolerationOp {
    Equal,
    Exists,
    Invalid,
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    /// Empty matches every key.
    pub key: String,
    pub operator: TolerationOp,
    pub value: String,
    /// `None` matches every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    pub fn from_k8s(t: &corev1::Toleration) -> Toleration {
        Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator: match t.operator.as_deref().unwrap_or("") {
                "" | "Equal" => TolerationOp::Equal,
                "Exists" => TolerationOp::Exists,
                _ => TolerationOp::Invalid,
            },
            value: t.value.clone().unwrap_or_default(),
            effect: t
                .effect
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(TaintEffect::parse),
        }
    }

    /// Upstream's `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.as_ref().is_some_and(|e| *e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOp::Equal => self.value == taint.value,
            TolerationOp::Exists => true,
            TolerationOp::Invalid => false,
        }
    }
}

/// Upstream's `TolerationsTolerateTaint`.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| t.tolerates(taint))
}

/// A transport protocol of a host port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A host port a container binds: `0.0.0.0` (the default) conflicts with every IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: Protocol,
    pub port: i32,
}

/// Upstream's `DefaultBindAllHostIP`.
pub const BIND_ALL_HOST_IP: &str = "0.0.0.0";

impl HostPort {
    /// Upstream's `HostPortInfo.sanitize`: empty IP means all, empty protocol TCP.
    fn from_k8s(p: &corev1::ContainerPort) -> Option<HostPort> {
        let port = p.host_port.filter(|&port| port > 0)?;
        let ip = match p.host_ip.as_deref() {
            None | Some("") => BIND_ALL_HOST_IP.to_owned(),
            Some(ip) => ip.to_owned(),
        };
        let protocol = match p.protocol.as_deref() {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        };
        Some(HostPort { ip, protocol, port })
    }

    /// Whether two host ports collide (upstream's `HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == BIND_ALL_HOST_IP || other.ip == BIND_ALL_HOST_IP)
    }
}

/// A pod could not be turned into a `PodInfo` (API validation would have refused it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodInfoError {
    #[error("pod {0}: {1}")]
    Resource(String, ResourceError),
}

/// The scheduler's precomputed view of a pod. See the module docs.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.priority`, 0 when unset (admission fills it in).
    pub priority: i32,
    /// `spec.schedulerName`, `default-scheduler` when unset.
    pub scheduler_name: String,
    /// `spec.nodeName`, empty when unset.
    pub node_name: String,
    pub scheduling_gates: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// What the pod needs for filtering: upstream's `PodRequests` (max of init
    /// containers vs. sum of containers and sidecars, pod-level requests, overhead).
    pub requests: Resource,
    /// CPU for scoring, with 100m for each container lacking a CPU request.
    pub non_zero_milli_cpu: i64,
    /// Memory for scoring, with 200Mi for each container lacking a memory request.
    pub non_zero_memory: i64,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    /// `spec.nodeSelector`, exact matches.
    pub node_selector: BTreeMap<String, String>,
    /// `requiredDuringSchedulingIgnoredDuringExecution`, if set.
    pub required_affinity: Option<NodeSelector>,
    /// The `metadata.name` values the required affinity restricts the pod to, if every
    /// term names some (upstream's NodeAffinity PreFilter result); `Some(empty)` means
    /// the terms conflict.
    pub required_node_names: Option<Vec<String>>,
    /// `preferredDuringSchedulingIgnoredDuringExecution`, or the parse error.
    pub preferred_affinity: Result<PreferredTerms, String>,
    /// Normalised image names of init containers then containers.
    pub images: Vec<String>,
    /// `len(initContainers) + len(containers)`, ImageLocality's divisor.
    pub n_containers: usize,
    /// Inter-pod affinity and anti-affinity terms, parsed.
    pub affinity: PodAffinityTerms,
    /// The selector PodTopologySpread's default constraints use: upstream's
    /// `helper.DefaultSelector`, the union of the selectors of the Services,
    /// ReplicaSets, ReplicationControllers and StatefulSets selecting the pod. The
    /// snapshot holds none of those objects, so the caller sets it (see
    /// [`PodInfo::with_default_spread_selector`]); `None`: no default constraints.
    pub default_spread_selector: Option<bosun_api::labels::LabelSelector>,
    /// The GPU devices (a bit mask) the pod is pinned to: its
    /// [`GPU_DEVICES_ANNOTATION`](crate::plugins::gpu_device::GPU_DEVICES_ANNOTATION)
    /// when it parses, or set by a caller that assumes the pod where a Reserve plugin
    /// chose devices (see [`plugins::gpu_device`](crate::plugins::gpu_device)).
    pub gpu_device_mask: Option<u64>,
    /// The original object, for later plugins (inter-pod affinity, topology spread).
    pub pod: Arc<corev1::Pod>,
    /// See [`PodInfo::signature`].
    signature: u64,
}

impl PodInfo {
    /// Precomputes everything from a pod. Fails only on quantities that do not parse.
    pub fn new(pod: corev1::Pod) -> Result<PodInfo, PodInfoError> {
        let pod = Arc::new(pod);
        let meta = &pod.metadata;
        let key = format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        );
        let default_spec = corev1::PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&default_spec);
        let exact =
            pod_requests(spec, false).map_err(|e| PodInfoError::Resource(key.clone(), e))?;
        let non_zero = pod_requests(spec, true).map_err(|e| PodInfoError::Resource(key, e))?;
        let non_zero_milli_cpu = non_zero.get(CPU).map_or(0, Quantity::milli_value);
        let non_zero_memory = non_zero.get(MEMORY).map_or(0, Quantity::value);
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref());
        let required = affinity.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
        let preferred = affinity
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default();
        let init = spec.init_containers.as_deref().unwrap_or_default();
        let gpu_device_mask = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::plugins::gpu_device::GPU_DEVICES_ANNOTATION))
            .and_then(|v| crate::plugins::gpu_device::parse_device_list(v));
        Ok(PodInfo {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| crate::profile::DEFAULT_SCHEDULER_NAME.to_owned()),
            node_name: spec.node_name.clone().unwrap_or_default(),
            scheduling_gates: spec
                .scheduling_gates
                .iter()
                .flatten()
                .map(|g| g.name.clone())
                .collect(),
            labels: meta.labels.clone().unwrap_or_default(),
            requests: Resource::from_quantities(&exact),
            non_zero_milli_cpu,
            non_zero_memory,
            host_ports: host_ports(spec),
            tolerations: spec
                .tolerations
                .iter()
                .flatten()
                .map(Toleration::from_k8s)
                .collect(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_affinity: required.map(NodeSelector::parse),
            required_node_names: required.and_then(required_node_names),
            preferred_affinity: PreferredTerms::parse(preferred),
            images: init
                .iter()
                .chain(&spec.containers)
                .filter_map(|c| c.image.as_deref())
                .map(normalized_image_name)
                .collect(),
            n_containers: init.len() + spec.containers.len(),
            affinity: PodAffinityTerms::parse(&pod),
            default_spread_selector: None,
            gpu_device_mask,
            signature: signature(spec, None, gpu_device_mask),
            pod: Arc::clone(&pod),
        })
    }

    /// A 64-bit hash of everything in the pod spec that scheduling reads: containers'
    /// images, resources and ports, init containers (and their restart policy), pod
    /// resources and overhead, tolerations, node selector, affinity, node name,
    /// scheduler name, topology spread constraints, the default spread selector, and
    /// the GPU devices the pod is pinned to.
    /// Two pods with the same signature get the same verdict from every
    /// [node-local](crate::framework::Plugin::node_local) plugin on every node, which
    /// is what lets [`crate::memo`] reuse verdicts across pods of one shape. Name,
    /// namespace, labels, priority and UID are not part of it. The fields of a
    /// `PodInfo` are not to be changed after construction, except through the
    /// `with_*` methods, which keep the signature right.
    pub fn signature(&self) -> u64 {
        self.signature
    }

    /// A pod that differs from this one only in `metadata.name` and `metadata.uid`,
    /// without converting its object again: every precomputed field is copied and the
    /// object is shared, so `self.pod`'s name and UID stay this pod's (readers of the
    /// identity use [`PodInfo::name`], [`PodInfo::uid`] and [`PodInfo::key`]). For
    /// load generators that make many copies of one pod; the signature is unchanged,
    /// as it covers neither field.
    pub fn sibling(&self, name: &str, uid: &str) -> PodInfo {
        PodInfo {
            name: name.to_owned(),
            uid: uid.to_owned(),
            ..self.clone()
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Sets [`default_spread_selector`](PodInfo::default_spread_selector).
    pub fn with_default_spread_selector(
        mut self,
        selector: bosun_api::labels::LabelSelector,
    ) -> PodInfo {
        let spec = self.pod.spec.clone().unwrap_or_default();
        self.signature = signature(&spec, Some(&selector), self.gpu_device_mask);
        self.default_spread_selector = Some(selector);
        self
    }

    /// Whether the pod is being deleted (`metadata.deletionTimestamp` set).
    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// `status.startTime` as nanoseconds since the epoch, if set.
    pub fn start_time_ns(&self) -> Option<i64> {
        let t = self.pod.status.as_ref()?.start_time.as_ref()?;
        t.0.as_nanosecond().try_into().ok()
    }
}

/// See [`PodInfo::signature`]. The hash is SipHash with fixed keys over the JSON of
/// the fields, so it is stable across runs and processes.
fn signature(
    spec: &corev1::PodSpec,
    default_spread: Option<&bosun_api::labels::LabelSelector>,
    gpu_device_mask: Option<u64>,
) -> u64 {
    use std::hash::Hasher;

    #[derive(serde::Serialize)]
    struct Container<'a> {
        image: &'a Option<String>,
        resources: &'a Option<corev1::ResourceRequirements>,
        ports: &'a Option<Vec<corev1::ContainerPort>>,
        restart_policy: &'a Option<String>,
    }
    #[derive(serde::Serialize)]
    struct Fields<'a> {
        containers: Vec<Container<'a>>,
        init_containers: Vec<Container<'a>>,
        resources: &'a Option<corev1::ResourceRequirements>,
        overhead:
            &'a Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
        tolerations: &'a Option<Vec<corev1::Toleration>>,
        node_selector: &'a Option<BTreeMap<String, String>>,
        affinity: &'a Option<corev1::Affinity>,
        node_name: &'a Option<String>,
        scheduler_name: &'a Option<String>,
        topology_spread_constraints: &'a Option<Vec<corev1::TopologySpreadConstraint>>,
        default_spread: Option<String>,
        gpu_device_mask: Option<u64>,
    }
    fn container(c: &corev1::Container) -> Container<'_> {
        Container {
            image: &c.image,
            resources: &c.resources,
            ports: &c.ports,
            restart_policy: &c.restart_policy,
        }
    }
    let fields = Fields {
        containers: spec.containers.iter().map(container).collect(),
        init_containers: spec
            .init_containers
            .iter()
            .flatten()
            .map(container)
            .collect(),
        resources: &spec.resources,
        overhead: &spec.overhead,
        tolerations: &spec.tolerations,
        node_selector: &spec.node_selector,
        affinity: &spec.affinity,
        node_name: &spec.node_name,
        scheduler_name: &spec.scheduler_name,
        topology_spread_constraints: &spec.topology_spread_constraints,
        default_spread: default_spread.map(|s| format!("{s:?}")),
        gpu_device_mask,
    };
    struct HashWriter(std::hash::DefaultHasher);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(std::hash::DefaultHasher::new());
    serde_json::to_writer(&mut w, &fields).expect("k8s types serialize");
    w.0.finish()
}

/// Upstream's `normalizedImageName`: an image without a tag gets `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    let last_colon = name.rfind(':');
    let last_slash = name.rfind('/');
    if last_colon.map(|c| c as isize).unwrap_or(-1) <= last_slash.map(|s| s as isize).unwrap_or(-1)
    {
        format!("{name}:latest")
    } else {
        name.to_owned()
    }
}

/// Ports of containers and of sidecar (restartable init) containers with a host port.
fn host_ports(spec: &corev1::PodSpec) -> Vec<HostPort> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(HostPort::from_k8s)
        .collect()
}

/// Upstream's NodeAffinity PreFilter node-name extraction: the union over terms of the
/// intersection of each term's `metadata.name In` values; `None` as soon as one term
/// names no node (every node is then eligible).
fn required_node_names(sel: &corev1::NodeSelector) -> Option<Vec<String>> {
    if sel.node_selector_terms.is_empty() {
        return None;
    }
    let mut union: Vec<String> = Vec::new();
    for term in &sel.node_selector_terms {
        let mut term_names: Option<Vec<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == crate::selectors::OBJECT_NAME_FIELD && r.operator == "In" {
                let values = r.values.clone().unwrap_or_default();
                term_names = Some(match term_names {
                    None => values,
                    Some(prev) => prev.into_iter().filter(|n| values.contains(n)).collect(),
                });
            }
        }
        union.extend(term_names?);
    }
    union.sort();
    union.dedup();
    Some(union)
}

type ResourceList = BTreeMap<String, Quantity>;

/// Upstream's `resourcehelper.PodRequests`; with `non_missing`, containers lacking a
/// CPU or memory request count as 100m / 200Mi (`NonMissingContainerRequests`).
fn pod_requests(spec: &corev1::PodSpec, non_missing: bool) -> Result<ResourceList, ResourceError> {
    let container_requests = |c: &corev1::Container| -> Result<ResourceList, ResourceError> {
        let mut out = ResourceList::new();
        for (name, q) in c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .into_iter()
            .flatten()
        {
            out.insert(name.clone(), resource::parse(name, q)?);
        }
        if non_missing {
            out.entry(CPU.to_owned()).or_insert_with(|| {
                Quantity::from_milli(
                    resource::DEFAULT_MILLI_CPU_REQUEST,
                    bosun_api::quantity::Format::DecimalSI,
                )
            });
            out.entry(MEMORY.to_owned()).or_insert_with(|| {
                Quantity::from_value(
                    resource::DEFAULT_MEMORY_REQUEST,
                    bosun_api::quantity::Format::DecimalSI,
                )
            });
        }
        Ok(out)
    };
    let mut reqs = ResourceList::new();
    for c in &spec.containers {
        add_list(&mut reqs, &container_requests(c)?);
    }
    let mut sidecar_reqs = ResourceList::new();
    let mut init_reqs = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let mut creqs = container_requests(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            add_list(&mut reqs, &creqs);
            add_list(&mut sidecar_reqs, &creqs);
            creqs = sidecar_reqs.clone();
        } else {
            add_list(&mut creqs, &sidecar_reqs);
        }
        max_list(&mut init_reqs, &creqs);
    }
    max_list(&mut reqs, &init_reqs);
    // Pod-level requests (PodLevelResources) replace the aggregate for cpu and memory.
    let pod_level = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    for (name, q) in pod_level.into_iter().flatten() {
        if name == CPU || name == MEMORY {
            reqs.insert(name.clone(), resource::parse(name, q)?);
        }
    }
    for (name, q) in spec.overhead.iter().flatten() {
        add_list(
            &mut reqs,
            &ResourceList::from([(name.clone(), resource::parse(name, q)?)]),
        );
    }
    Ok(reqs)
}

fn add_list(into: &mut ResourceList, from: &ResourceList) {
    for (name, q) in from {
        into.entry(name.clone())
            .and_modify(|v| *v = v.add(q))
            .or_insert(*q);
    }
}

fn max_list(into: &mut ResourceList, from: &ResourceList) {
    for (name, q) in from {
        into.entry(name.clone())
            .and_modify(|v| {
                if q > v {
                    *v = *q;
                }
            })
            .or_insert(*q);
    }
}

/// A pod waiting in the queue: the precomputed info plus when it was queued (a
/// monotonic tick given by the caller; the algorithms read no clock).
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    pub pod: Arc<PodInfo>,
    pub timestamp: u64,
}
