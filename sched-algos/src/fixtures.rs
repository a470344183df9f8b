//! Terse builders for k8s Pods and Nodes, for tests, benches and the harness.
//!
//! ```
//! use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
//! let node = NodeBuilder::new("n1").capacity("4", "8Gi", 110).label("zone", "a").build();
//! let pod = PodBuilder::new("p1").request("500m", "1Gi").build();
//! assert_eq!(node.metadata.name.as_deref(), Some("n1"));
//! assert_eq!(pod.metadata.uid.as_deref(), Some("uid-p1"));
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{self as metav1, ObjectMeta};

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

/// Builds a `corev1::Node`.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    node: corev1::Node,
}

impl NodeBuilder {
    pub fn new(name: &str) -> NodeBuilder {
        NodeBuilder {
            node: corev1::Node {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(corev1::NodeSpec::default()),
                status: Some(corev1::NodeStatus::default()),
            },
        }
    }

    fn status(&mut self) -> &mut corev1::NodeStatus {
        self.node.status.get_or_insert_with(Default::default)
    }

    fn spec(&mut self) -> &mut corev1::NodeSpec {
        self.node.spec.get_or_insert_with(Default::default)
    }

    /// Sets allocatable cpu, memory and pods.
    pub fn capacity(self, cpu: &str, memory: &str, pods: i64) -> NodeBuilder {
        self.allocatable("cpu", cpu)
            .allocatable("memory", memory)
            .allocatable("pods", &pods.to_string())
    }

    pub fn allocatable(mut self, name: &str, value: &str) -> NodeBuilder {
        self.status()
            .allocatable
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_owned(), q(value));
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> NodeBuilder {
        self.node
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> NodeBuilder {
        self.spec()
            .taints
            .get_or_insert_with(Vec::new)
            .push(corev1::Taint {
                key: key.to_owned(),
                value: (!value.is_empty()).then(|| value.to_owned()),
                effect: effect.to_owned(),
                time_added: None,
            });
        self
    }

    pub fn unschedulable(mut self) -> NodeBuilder {
        self.spec().unschedulable = Some(true);
        self
    }

    pub fn image(mut self, names: &[&str], size_bytes: i64) -> NodeBuilder {
        self.status()
            .images
            .get_or_insert_with(Vec::new)
            .push(corev1::ContainerImage {
                names: Some(names.iter().map(|n| (*n).to_owned()).collect()),
                size_bytes: Some(size_bytes),
            });
        self
    }

    pub fn build(self) -> corev1::Node {
        self.node
    }
}

/// Builds a `corev1::Pod` with one container (`c0`) unless more are added.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    pod: corev1::Pod,
}

impl PodBuilder {
    /// A pod in namespace `default` with UID `uid-<name>` and one empty container.
    pub fn new(name: &str) -> PodBuilder {
        PodBuilder {
            pod: corev1::Pod {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    namespace: Some("default".to_owned()),
                    uid: Some(format!("uid-{name}")),
                    ..ObjectMeta::default()
                },
                spec: Some(corev1::PodSpec {
                    containers: vec![corev1::Container {
                        name: "c0".to_owned(),
                        ..corev1::Container::default()
                    }],
                    ..corev1::PodSpec::default()
                }),
                status: None,
            },
        }
    }

    fn spec(&mut self) -> &mut corev1::PodSpec {
        self.pod.spec.get_or_insert_with(Default::default)
    }

    fn last_container(&mut self) -> &mut corev1::Container {
        self.spec().containers.last_mut().expect("a container")
    }

    /// Requests cpu and memory on the last container.
    pub fn request(self, cpu: &str, memory: &str) -> PodBuilder {
        self.request_resource("cpu", cpu)
            .request_resource("memory", memory)
    }

    /// Requests one resource on the last container.
    pub fn request_resource(mut self, name: &str, value: &str) -> PodBuilder {
        self.last_container()
            .resources
            .get_or_insert_with(Default::default)
            .requests
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_owned(), q(value));
        self
    }

    /// Appends a container with cpu/memory requests (empty strings: none).
    pub fn container(mut self, cpu: &str, memory: &str) -> PodBuilder {
        let n = self.spec().containers.len();
        self.spec().containers.push(corev1::Container {
            name: format!("c{n}"),
            ..corev1::Container::default()
        });
        let mut b = self;
        if !cpu.is_empty() {
            b = b.request_resource("cpu", cpu);
        }
        if !memory.is_empty() {
            b = b.request_resource("memory", memory);
        }
        b
    }

    /// Adds an init container; `sidecar` makes it restartable (`restartPolicy: Always`).
    pub fn init_container(mut self, cpu: &str, memory: &str, sidecar: bool) -> PodBuilder {
        let mut requests = BTreeMap::new();
        requests.insert("cpu".to_owned(), q(cpu));
        requests.insert("memory".to_owned(), q(memory));
        let n = self.spec().init_containers.as_ref().map_or(0, Vec::len);
        self.spec()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(corev1::Container {
                name: format!("init{n}"),
                restart_policy: sidecar.then(|| "Always".to_owned()),
                resources: Some(corev1::ResourceRequirements {
                    requests: Some(requests),
                    ..Default::default()
                }),
                ..corev1::Container::default()
            });
        self
    }

    pub fn image(mut self, image: &str) -> PodBuilder {
        self.last_container().image = Some(image.to_owned());
        self
    }

    pub fn host_port(mut self, ip: &str, protocol: &str, port: i32) -> PodBuilder {
        self.last_container()
            .ports
            .get_or_insert_with(Vec::new)
            .push(corev1::ContainerPort {
                container_port: port,
                host_port: Some(port),
                host_ip: (!ip.is_empty()).then(|| ip.to_owned()),
                protocol: (!protocol.is_empty()).then(|| protocol.to_owned()),
                name: None,
            });
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> PodBuilder {
        self.pod
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> PodBuilder {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn priority(mut self, p: i32) -> PodBuilder {
        self.spec().priority = Some(p);
        self
    }

    pub fn node_name(mut self, node: &str) -> PodBuilder {
        self.spec().node_name = Some(node.to_owned());
        self
    }

    pub fn scheduler_name(mut self, name: &str) -> PodBuilder {
        self.spec().scheduler_name = Some(name.to_owned());
        self
    }

    pub fn gate(mut self, name: &str) -> PodBuilder {
        self.spec()
            .scheduling_gates
            .get_or_insert_with(Vec::new)
            .push(corev1::PodSchedulingGate {
                name: name.to_owned(),
            });
        self
    }

    pub fn node_selector(mut self, key: &str, value: &str) -> PodBuilder {
        self.spec()
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Adds a toleration; empty strings leave the field unset.
    pub fn toleration(
        mut self,
        key: &str,
        operator: &str,
        value: &str,
        effect: &str,
    ) -> PodBuilder {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        self.spec()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(corev1::Toleration {
                key: opt(key),
                operator: opt(operator),
                value: opt(value),
                effect: opt(effect),
                toleration_seconds: None,
            });
        self
    }

    fn node_affinity(&mut self) -> &mut corev1::NodeAffinity {
        self.spec()
            .affinity
            .get_or_insert_with(Default::default)
            .node_affinity
            .get_or_insert_with(Default::default)
    }

    /// Adds a required term (ORed with other required terms).
    pub fn required_term(mut self, term: corev1::NodeSelectorTerm) -> PodBuilder {
        self.node_affinity()
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Default::default)
            .node_selector_terms
            .push(term);
        self
    }

    /// Adds a preferred term with a weight.
    pub fn preferred_term(mut self, weight: i32, term: corev1::NodeSelectorTerm) -> PodBuilder {
        self.node_affinity()
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(corev1::PreferredSchedulingTerm {
                weight,
                preference: term,
            });
        self
    }

    pub fn namespace(mut self, ns: &str) -> PodBuilder {
        self.pod.metadata.namespace = Some(ns.to_owned());
        self
    }

    fn pod_affinity_mut(&mut self) -> &mut corev1::PodAffinity {
        self.spec()
            .affinity
            .get_or_insert_with(Default::default)
            .pod_affinity
            .get_or_insert_with(Default::default)
    }

    fn pod_anti_affinity_mut(&mut self) -> &mut corev1::PodAntiAffinity {
        self.spec()
            .affinity
            .get_or_insert_with(Default::default)
            .pod_anti_affinity
            .get_or_insert_with(Default::default)
    }

    /// Adds a required pod affinity term.
    pub fn pod_affinity(mut self, term: corev1::PodAffinityTerm) -> PodBuilder {
        self.pod_affinity_mut()
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
        self
    }

    /// Adds a required pod anti-affinity term.
    pub fn pod_anti_affinity(mut self, term: corev1::PodAffinityTerm) -> PodBuilder {
        self.pod_anti_affinity_mut()
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
        self
    }

    /// Adds a preferred pod affinity term.
    pub fn preferred_pod_affinity(
        mut self,
        weight: i32,
        term: corev1::PodAffinityTerm,
    ) -> PodBuilder {
        self.pod_affinity_mut()
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(corev1::WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    /// Adds a preferred pod anti-affinity term.
    pub fn preferred_pod_anti_affinity(
        mut self,
        weight: i32,
        term: corev1::PodAffinityTerm,
    ) -> PodBuilder {
        self.pod_anti_affinity_mut()
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(corev1::WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    /// Adds a topology spread constraint.
    pub fn spread(mut self, c: corev1::TopologySpreadConstraint) -> PodBuilder {
        self.spec()
            .topology_spread_constraints
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }

    /// `spec.preemptionPolicy` (`Never` or `PreemptLowerPriority`).
    pub fn preemption_policy(mut self, policy: &str) -> PodBuilder {
        self.spec().preemption_policy = Some(policy.to_owned());
        self
    }

    /// `status.startTime`, in seconds since the epoch.
    pub fn start_time(mut self, unix_s: i64) -> PodBuilder {
        let ts = k8s_openapi::jiff::Timestamp::from_second(unix_s).expect("valid time");
        self.pod
            .status
            .get_or_insert_with(Default::default)
            .start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts));
        self
    }

    /// `status.nominatedNodeName`.
    pub fn nominated_node(mut self, node: &str) -> PodBuilder {
        self.pod
            .status
            .get_or_insert_with(Default::default)
            .nominated_node_name = Some(node.to_owned());
        self
    }

    pub fn build(self) -> corev1::Pod {
        self.pod
    }
}

fn match_labels(labels: &[(&str, &str)]) -> metav1::LabelSelector {
    metav1::LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        match_expressions: None,
    }
}

/// A pod affinity term selecting pods with these labels (in the owner's namespace).
pub fn affinity_term(labels: &[(&str, &str)], topology_key: &str) -> corev1::PodAffinityTerm {
    corev1::PodAffinityTerm {
        label_selector: Some(match_labels(labels)),
        topology_key: topology_key.to_owned(),
        ..Default::default()
    }
}

/// A pod affinity term selecting pods with these labels in the namespaces whose labels
/// match `ns_labels` (an empty slice: every namespace).
pub fn affinity_term_ns_selector(
    labels: &[(&str, &str)],
    ns_labels: &[(&str, &str)],
    topology_key: &str,
) -> corev1::PodAffinityTerm {
    corev1::PodAffinityTerm {
        namespace_selector: Some(match_labels(ns_labels)),
        ..affinity_term(labels, topology_key)
    }
}

/// A topology spread constraint over pods with these labels.
pub fn spread_constraint(
    max_skew: i32,
    topology_key: &str,
    when_unsatisfiable: &str,
    labels: &[(&str, &str)],
) -> corev1::TopologySpreadConstraint {
    corev1::TopologySpreadConstraint {
        max_skew,
        topology_key: topology_key.to_owned(),
        when_unsatisfiable: when_unsatisfiable.to_owned(),
        label_selector: Some(match_labels(labels)),
        ..Default::default()
    }
}

/// A namespace with labels.
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> corev1::Namespace {
    corev1::Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Default::default()
    }
}

/// A node selector term of label expressions `(key, operator, values)`.
pub fn term(exprs: &[(&str, &str, &[&str])]) -> corev1::NodeSelectorTerm {
    corev1::NodeSelectorTerm {
        match_expressions: Some(exprs.iter().map(|e| requirement(*e)).collect()),
        match_fields: None,
    }
}

/// A node selector term of field expressions (`metadata.name`).
pub fn field_term(exprs: &[(&str, &str, &[&str])]) -> corev1::NodeSelectorTerm {
    corev1::NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(exprs.iter().map(|e| requirement(*e)).collect()),
    }
}

fn requirement((key, op, values): (&str, &str, &[&str])) -> corev1::NodeSelectorRequirement {
    corev1::NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}
