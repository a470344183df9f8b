//! Server-side `Table` printing, so `kubectl get` prints what it prints against
//! kube-apiserver. Columns and cell rules follow upstream's
//! `pkg/printers/internalversion/printers.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Event, Namespace, Node, Pod, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// One column definition of a Table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: shown with `-o wide`.
    pub priority: i32,
}

const fn col(
    name: &'static str,
    ty: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
};
const AGE: Column = col(
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

impl Column {
    /// The `TableColumnDefinition` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Printing of one kind.
pub trait PrintKind {
    const COLUMNS: &'static [Column];
    fn row(&self, now: Timestamp) -> Vec<Value>;
}

/// Upstream's `duration.HumanDuration`.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `translateTimestampSince`.
fn since(t: Option<&Time>, now: Timestamp) -> String {
    match t {
        None => "<unknown>".into(),
        Some(t) => human_duration(now.duration_since(t.0)),
    }
}

fn age(meta: &ObjectMeta, now: Timestamp) -> Value {
    json!(since(meta.creation_timestamp.as_ref(), now))
}

fn name(meta: &ObjectMeta) -> Value {
    json!(meta.name.clone().unwrap_or_default())
}

fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

fn selector_string(sel: &LabelSelector) -> String {
    match bosun_api::labels::LabelSelector::from_k8s(Some(sel)) {
        Ok(s) if s.is_everything() => "<none>".into(),
        Ok(s) => s.to_string(),
        Err(_) => "<error>".into(),
    }
}

fn map_selector(sel: Option<&BTreeMap<String, String>>) -> String {
    match sel {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn containers_and_images(containers: &[Container]) -> (String, String) {
    let names = containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let images = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

impl PrintKind for Pod {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "Ready",
            "string",
            0,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            0,
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            "string",
            0,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        col(
            "IP",
            "string",
            1,
            "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        ),
        col(
            "Node",
            "string",
            1,
            "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.",
        ),
        col(
            "Nominated Node",
            "string",
            1,
            "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
        ),
        col(
            "Readiness Gates",
            "string",
            1,
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ];

    /// Upstream's `printPod`.
    fn row(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let total = spec.containers.len();
        let mut ready = 0;
        let mut restarts = 0;
        let mut last_restart: Option<Timestamp> = None;
        let mut reason = status
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .or(status.phase.clone())
            .unwrap_or_default();
        let mut has_running = false;
        for cs in status.container_statuses.iter().flatten().rev() {
            restarts += cs.restart_count;
            if let Some(t) = cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
            {
                last_restart = Some(last_restart.map_or(t.0, |l| l.max(t.0)));
            }
            let state = cs.state.clone().unwrap_or_default();
            if let Some(w) = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty())
            {
                reason = w;
            } else if let Some(t) = state.terminated.as_ref() {
                reason = match (&t.reason, t.signal) {
                    (Some(r), _) if !r.is_empty() => r.clone(),
                    (_, Some(sig)) if sig != 0 => format!("Signal:{sig}"),
                    _ => format!("ExitCode:{}", t.exit_code),
                };
            } else if state.running.is_some() && cs.ready {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
        if self.metadata.deletion_timestamp.is_some() {
            reason = if status.reason.as_deref() == Some("NodeLost") {
                "Unknown".into()
            } else {
                "Terminating".into()
            };
        }
        let restarts_cell = match last_restart {
            Some(t) if restarts > 0 => {
                format!("{restarts} ({} ago)", human_duration(now.duration_since(t)))
            }
            _ => restarts.to_string(),
        };
        let gates = spec.readiness_gates.as_ref().map_or(0, Vec::len);
        vec![
            name(&self.metadata),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_cell),
            age(&self.metadata, now),
            json!(or_none(status.pod_ip.as_deref())),
            json!(or_none(spec.node_name.as_deref())),
            json!(or_none(status.nominated_node_name.as_deref())),
            json!(if gates == 0 {
                "<none>".to_string()
            } else {
                format!("0/{gates}")
            }),
        ]
    }
}

impl PrintKind for Node {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Status", "string", 0, "The status of the node"),
        col("Roles", "string", 0, "The roles of the node"),
        AGE,
        col(
            "Version",
            "string",
            0,
            "Kubelet Version reported by the node.",
        ),
        col(
            "Internal-IP",
            "string",
            1,
            "List of addresses reachable to the node. Queried from cloud provider, if available.",
        ),
        col(
            "External-IP",
            "string",
            1,
            "List of addresses reachable to the node. Queried from cloud provider, if available.",
        ),
        col(
            "OS-Image",
            "string",
            1,
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        col(
            "Kernel-Version",
            "string",
            1,
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        col(
            "Container-Runtime",
            "string",
            1,
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        ),
    ];

    /// Upstream's `printNode`.
    fn row(&self, now: Timestamp) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let mut states: Vec<String> = Vec::new();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        match ready {
            Some(c) if c.status == "True" => states.push("Ready".into()),
            _ => states.push("NotReady".into()),
        }
        if self
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            states.push("SchedulingDisabled".into());
        }
        let mut roles: Vec<String> = self
            .metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role.to_string())
                } else if k == "kubernetes.io/role" {
                    Some(v.clone())
                } else {
                    None
                }
            })
            .filter(|r| !r.is_empty())
            .collect();
        roles.sort();
        let roles = if roles.is_empty() {
            "<none>".into()
        } else {
            roles.join(",")
        };
        let addr = |ty: &str| {
            or_none(
                status
                    .addresses
                    .iter()
                    .flatten()
                    .find(|a| a.type_ == ty)
                    .map(|a| a.address.as_str()),
            )
        };
        let info = status.node_info.clone().unwrap_or_default();
        let unknown = |s: &str| {
            if s.is_empty() {
                "<unknown>".to_string()
            } else {
                s.to_string()
            }
        };
        vec![
            name(&self.metadata),
            json!(states.join(",")),
            json!(roles),
            age(&self.metadata, now),
            json!(info.kubelet_version),
            json!(addr("InternalIP")),
            json!(addr("ExternalIP")),
            json!(unknown(&info.os_image)),
            json!(unknown(&info.kernel_version)),
            json!(unknown(&info.container_runtime_version)),
        ]
    }
}

impl PrintKind for Deployment {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Ready", "string", 0, "Number of the pod with ready state"),
        col(
            "Up-to-date",
            "string",
            0,
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        ),
        col(
            "Available",
            "string",
            0,
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        col(
            "Containers",
            "string",
            1,
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            1,
            "Images referenced by each container in the template.",
        ),
        col(
            "Selector",
            "string",
            1,
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        ),
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let containers = spec
            .template
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or(&[]);
        let (names, images) = containers_and_images(containers);
        vec![
            name(&self.metadata),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(0)
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(selector_string(&spec.selector)),
        ]
    }
}

impl PrintKind for ReplicaSet {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "Desired",
            "integer",
            0,
            "Replicas is the number of desired pods.",
        ),
        col(
            "Current",
            "integer",
            0,
            "Replicas is the most recently observed number of replicas.",
        ),
        col(
            "Ready",
            "integer",
            0,
            "The number of ready replicas for this replica set.",
        ),
        AGE,
        col(
            "Containers",
            "string",
            1,
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            1,
            "Images referenced by each container in the template.",
        ),
        col(
            "Selector",
            "string",
            1,
            "Selector is a label query over pods that should match the replica count.",
        ),
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let containers = spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or(&[]);
        let (names, images) = containers_and_images(containers);
        vec![
            name(&self.metadata),
            json!(spec.replicas.unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            age(&self.metadata, now),
            json!(names),
            json!(images),
            json!(selector_string(&spec.selector)),
        ]
    }
}

impl PrintKind for Service {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "Type",
            "string",
            0,
            "type determines how the Service is exposed.",
        ),
        col(
            "Cluster-IP",
            "string",
            0,
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        col(
            "External-IP",
            "string",
            0,
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        col(
            "Port(s)",
            "string",
            0,
            "The list of ports that are exposed by this service.",
        ),
        AGE,
        col(
            "Selector",
            "string",
            1,
            "Route service traffic to pods with label keys and values matching this selector.",
        ),
    ];

    /// Upstream's `printService`.
    fn row(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let ty = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let cluster_ip = or_none(spec.cluster_ip.as_deref());
        let external: Vec<String> = match ty.as_str() {
            "ExternalName" => spec.external_name.iter().cloned().collect(),
            "LoadBalancer" => {
                let mut ips: Vec<String> = self
                    .status
                    .iter()
                    .flat_map(|s| s.load_balancer.iter())
                    .flat_map(|lb| lb.ingress.iter().flatten())
                    .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
                    .collect();
                ips.extend(spec.external_ips.iter().flatten().cloned());
                if ips.is_empty() {
                    vec!["<pending>".into()]
                } else {
                    ips
                }
            }
            _ => spec.external_ips.clone().unwrap_or_default(),
        };
        let external = if external.is_empty() {
            "<none>".to_string()
        } else {
            external.join(",")
        };
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                match p.node_port {
                    Some(np) if np != 0 => format!("{}:{np}/{proto}", p.port),
                    _ => format!("{}/{proto}", p.port),
                }
            })
            .collect();
        let ports = if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        };
        vec![
            name(&self.metadata),
            json!(ty),
            json!(cluster_ip),
            json!(external),
            json!(ports),
            age(&self.metadata, now),
            json!(map_selector(spec.selector.as_ref())),
        ]
    }
}

impl PrintKind for Endpoints {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "Endpoints",
            "string",
            0,
            "Endpoints is the list of endpoints in the endpoint set.",
        ),
        AGE,
    ];

    /// Upstream's `formatEndpoints` with at most 3 entries shown.
    fn row(&self, now: Timestamp) -> Vec<Value> {
        let mut list = Vec::new();
        let mut total = 0;
        for subset in self.subsets.iter().flatten() {
            let ports = subset.ports.clone().unwrap_or_default();
            for addr in subset.addresses.iter().flatten() {
                if ports.is_empty() {
                    total += 1;
                    if list.len() < 3 {
                        list.push(addr.ip.clone());
                    }
                }
                for p in &ports {
                    total += 1;
                    if list.len() < 3 {
                        list.push(format!("{}:{}", addr.ip, p.port));
                    }
                }
            }
        }
        let mut cell = if list.is_empty() {
            "<none>".to_string()
        } else {
            list.join(",")
        };
        if total > list.len() {
            cell = format!("{cell} + {} more...", total - list.len());
        }
        vec![name(&self.metadata), json!(cell), age(&self.metadata, now)]
    }
}

impl PrintKind for EndpointSlice {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "AddressType",
            "string",
            0,
            "The type of addresses in this EndpointSlice.",
        ),
        col("Ports", "string", 0, "The ports of this EndpointSlice."),
        col(
            "Endpoints",
            "string",
            0,
            "The endpoints of this EndpointSlice.",
        ),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let ports: Vec<String> = self
            .ports
            .iter()
            .flatten()
            .map(|p| p.port.map_or("<unset>".to_string(), |p| p.to_string()))
            .collect();
        let ports = if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        };
        let addrs: Vec<&str> = self
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter())
            .map(String::as_str)
            .collect();
        let mut cell = if addrs.is_empty() {
            "<unset>".to_string()
        } else {
            addrs.iter().take(3).copied().collect::<Vec<_>>().join(",")
        };
        if addrs.len() > 3 {
            cell = format!("{cell} + {} more...", addrs.len() - 3);
        }
        vec![
            name(&self.metadata),
            json!(self.address_type),
            json!(ports),
            json!(cell),
            age(&self.metadata, now),
        ]
    }
}

impl PrintKind for ConfigMap {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Data", "string", 0, "Data contains the configuration data."),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let n = self.data.as_ref().map_or(0, BTreeMap::len)
            + self.binary_data.as_ref().map_or(0, BTreeMap::len);
        vec![name(&self.metadata), json!(n), age(&self.metadata, now)]
    }
}

impl PrintKind for Secret {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Type", "string", 0, "The type of the secret"),
        col("Data", "string", 0, "The number of entries in the secret"),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let n = self.data.as_ref().map_or(0, BTreeMap::len);
        vec![
            name(&self.metadata),
            json!(self.type_.clone().unwrap_or_default()),
            json!(n),
            age(&self.metadata, now),
        ]
    }
}

impl PrintKind for Namespace {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Status", "string", 0, "The status of the namespace"),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let phase = self
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        vec![name(&self.metadata), json!(phase), age(&self.metadata, now)]
    }
}

impl PrintKind for Event {
    const COLUMNS: &'static [Column] = &[
        col("Last Seen", "string", 0, "Time when last event occurred"),
        col(
            "Type",
            "string",
            0,
            "Type of this event (Normal, Warning), new types could be added in the future.",
        ),
        col(
            "Reason",
            "string",
            0,
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col("Object", "string", 0, "Object this event is about."),
        col("Subobject", "string", 1, "Subobject this event is about."),
        col("Source", "string", 1, "The component reporting this event."),
        col(
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        col(
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded.",
        ),
        col(
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        Column {
            priority: 1,
            ..NAME
        },
    ];

    /// Upstream's `printEvent`.
    fn row(&self, now: Timestamp) -> Vec<Value> {
        let first = self
            .first_timestamp
            .as_ref()
            .or(self.metadata.creation_timestamp.as_ref());
        let last = self
            .last_timestamp
            .as_ref()
            .or(self
                .event_time
                .as_ref()
                .map(|t| &t.0)
                .map(|t| Time(*t))
                .as_ref())
            .cloned()
            .or_else(|| first.cloned());
        let obj = &self.involved_object;
        let kind = obj.kind.clone().unwrap_or_default().to_lowercase();
        let source = self.source.as_ref().map(|s| {
            let mut out = s.component.clone().unwrap_or_default();
            if let Some(h) = s.host.as_deref().filter(|h| !h.is_empty()) {
                out = format!("{out}, {h}");
            }
            out
        });
        let source = source
            .filter(|s| !s.is_empty())
            .or(self.reporting_component.clone())
            .unwrap_or_default();
        vec![
            json!(since(last.as_ref(), now)),
            json!(self.type_.clone().unwrap_or_default()),
            json!(self.reason.clone().unwrap_or_default()),
            json!(format!("{kind}/{}", obj.name.clone().unwrap_or_default())),
            json!(obj.field_path.clone().unwrap_or_default()),
            json!(source),
            json!(self.message.clone().unwrap_or_default().trim()),
            json!(since(first, now)),
            json!(self.count.unwrap_or(1)),
            name(&self.metadata),
        ]
    }
}

impl PrintKind for EventsV1Event {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Reason", "string", 0, "Why the action was taken."),
        col(
            "Note",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.reason.clone().unwrap_or_default()),
            json!(self.note.clone().unwrap_or_default()),
            age(&self.metadata, now),
        ]
    }
}

impl PrintKind for Lease {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col("Holder", "string", 0, "The holder of the lease."),
        AGE,
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        let holder = self
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        vec![
            name(&self.metadata),
            json!(holder),
            age(&self.metadata, now),
        ]
    }
}

impl PrintKind for PriorityClass {
    const COLUMNS: &'static [Column] = &[
        NAME,
        col(
            "Value",
            "integer",
            0,
            "The value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
        ),
        col(
            "Global-Default",
            "boolean",
            0,
            "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
        ),
        AGE,
        col(
            "PreemptionPolicy",
            "string",
            0,
            "PreemptionPolicy is the Policy for preempting pods with lower priority.",
        ),
    ];

    fn row(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.value),
            json!(self.global_default.unwrap_or(false)),
            age(&self.metadata, now),
            json!(self.preemption_policy.clone().unwrap_or_default()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_upstream() {
        // k8s.io/apimachinery/pkg/util/duration/duration_test.go TestHumanDuration.
        let cases = [
            (1, "1s"),
            (70, "70s"),
            (190, "3m10s"),
            (70 * 60, "70m"),
            (47 * 60 * 60, "47h"),
            (49 * 60 * 60, "2d1h"),
            ((8 * 24 + 2) * 60 * 60, "8d"),
            (367 * 24 * 60 * 60, "367d"),
            ((365 * 2 + 1) * 24 * 60 * 60, "2y1d"),
            ((365 * 8 + 10) * 24 * 60 * 60, "8y"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (6 * 60 * 60 + 30 * 60, "6h30m"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
    }

    #[test]
    fn pod_row_reports_waiting_reason_and_readiness() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "nodeName": "n1"},
            "status": {"phase": "Pending", "podIP": "10.0.0.1", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "image": "x", "imageID": "",
                 "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 0, "image": "y", "imageID": "",
                 "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]}
        }))
        .unwrap();
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let row = pod.row(now);
        assert_eq!(row[0], "p");
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "ImagePullBackOff");
        assert_eq!(row[3], "2");
        assert_eq!(row[4], "5m");
        assert_eq!(row[5], "10.0.0.1");
        assert_eq!(row[6], "n1");
        assert_eq!(row.len(), Pod::COLUMNS.len());
    }
}
