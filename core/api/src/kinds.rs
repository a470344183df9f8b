//! The kinds Bosun serves: their REST names, defaulting and validation.
//!
//! Each kind implements [`ApiKind`] on top of its k8s-openapi type, so its JSON is
//! wire-compatible with Kubernetes. Defaulting follows `pkg/apis/*/v1/defaults.go`
//! upstream (plus the pure admission defaults a stock cluster applies, such as
//! DefaultTolerationSeconds); validation follows `pkg/apis/*/validation` for the fields
//! Bosun's components depend on. Anything that needs cluster state (ClusterIP and
//! NodePort allocation, PriorityClass lookup, namespace existence) is the API server's job.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Event, Namespace, Node, Pod, PodSpec, PodTemplateSpec,
    ResourceRequirements, Secret, Service, Toleration,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::labels::LabelSelector;
use crate::quantity::Quantity;
use crate::validation::{self as v, FieldError};

/// Static description of one served resource (one row of `kubectl api-resources`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// Lower-case plural used in URLs (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Serves the `status` subresource (spec and status are updated separately).
    pub has_status: bool,
    /// Serves the `scale` subresource.
    pub has_scale: bool,
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// A kind Bosun serves. All methods are pure.
pub trait ApiKind:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + 'static
{
    const INFO: ResourceInfo;

    /// Fields (beyond `metadata.name` and `metadata.namespace`) usable in field selectors,
    /// as upstream's `GetAttrs`/`SelectableFields` for the kind.
    const SELECTABLE_FIELDS: &'static [&'static str] = &[];

    /// Validates an object's name (upstream's `ValidateXName`): messages, empty if valid.
    fn validate_name(name: &str) -> Vec<String> {
        v::is_dns1123_subdomain(name)
    }

    /// Whether [`ApiKind::default_fields`] writes metadata, so that an update changing
    /// only metadata must still run it.
    const DEFAULTS_METADATA: bool = false;

    /// Fills defaulted fields, as upstream's `SetDefaults_*` (idempotent).
    fn default_fields(&mut self) {}

    /// Resets what a client may not set at creation (upstream's `PrepareForCreate`).
    fn prepare_for_create(&mut self) {}

    /// Kind-specific validation of a new object (metadata is checked by the caller).
    fn validate_spec(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Kind-specific validation of an update (immutable fields and the like), in addition
    /// to [`ApiKind::validate_spec`] of the new object.
    fn validate_spec_update(&self, _old: &Self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Runs metadata and kind validation for a create.
pub fn validate_create<K: ApiKind>(obj: &K) -> Vec<FieldError> {
    let mut errs = v::validate_object_meta(
        obj.metadata(),
        K::INFO.namespaced,
        K::validate_name,
        "metadata",
    );
    errs.extend(obj.validate_spec());
    errs
}

/// Runs metadata and kind validation for an update of `old` into `new`.
pub fn validate_update<K: ApiKind>(new: &K, old: &K) -> Vec<FieldError> {
    let mut errs = validate_metadata_update::<K>(new.metadata(), old.metadata());
    errs.extend(new.validate_spec());
    errs.extend(new.validate_spec_update(old));
    errs
}

/// Runs the metadata validation of an update of a `K` (all of its validation when
/// nothing but metadata changes).
pub fn validate_metadata_update<K: ApiKind>(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = v::validate_object_meta(new, K::INFO.namespaced, K::validate_name, "metadata");
    errs.extend(v::validate_object_meta_update(new, old, "metadata"));
    errs
}

/// Upstream's `IsDNS1035Label` (service names must start with a letter).
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !ok {
        errs.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
             start with an alphabetic character, and end with an alphanumeric character \
             (e.g. 'my-name',  or 'abc-123', regex used for validation is \
             '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

macro_rules! info {
    ($group:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], cat: [$($cat:expr),*], status: $status:expr, scale: $scale:expr) => {
        ResourceInfo {
            group: $group,
            version: "v1",
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            has_status: $status,
            has_scale: $scale,
        }
    };
}

// ---------------------------------------------------------------------------------------
// Pods and pod templates.

/// `pkg/apis/core/v1/defaults.go`: SetDefaults_PodSpec, SetDefaults_Container, and the
/// requests-from-limits rule of SetDefaults_Pod.
pub fn default_pod_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.security_context.get_or_insert_with(Default::default);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.enable_service_links.get_or_insert(true);
    let host_network = spec.host_network.unwrap_or(false);
    for c in spec.containers.iter_mut() {
        default_container(c, host_network);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c, host_network);
    }
    for vol in spec.volumes.iter_mut().flatten() {
        if let Some(s) = vol.secret.as_mut() {
            s.default_mode.get_or_insert(0o644);
        }
        if let Some(cm) = vol.config_map.as_mut() {
            cm.default_mode.get_or_insert(0o644);
        }
    }
}

fn default_container(c: &mut Container, host_network: bool) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
        if host_network && p.host_port.is_none() {
            p.host_port = Some(p.container_port);
        }
    }
    if let Some(res) = c.resources.as_mut() {
        default_requests_from_limits(res);
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (digests included).
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_requests_from_limits(res: &mut ResourceRequirements) {
    let Some(limits) = res.limits.as_ref() else {
        return;
    };
    let requests = res.requests.get_or_insert_with(BTreeMap::new);
    for (name, q) in limits {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
}

/// The tolerations the DefaultTolerationSeconds admission plugin adds to every pod.
fn default_toleration_seconds(spec: &mut PodSpec) {
    const TAINTS: [&str; 2] = [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ];
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in TAINTS {
        let covered = tolerations.iter().any(|t| {
            let effect_ok = t
                .effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "NoExecute");
            let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == key);
            effect_ok && key_ok && (t.key.is_some() || t.operator.as_deref() == Some("Exists"))
        });
        if !covered {
            tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                value: None,
            });
        }
    }
}

/// The pod's QoS class, as upstream's `GetPodQOS`.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        let res = c.resources.as_ref();
        let requests = res.and_then(|r| r.requests.as_ref());
        let limits = res.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            let req = requests
                .and_then(|m| m.get(name))
                .and_then(|q| Quantity::parse(&q.0).ok());
            let lim = limits
                .and_then(|m| m.get(name))
                .and_then(|q| Quantity::parse(&q.0).ok());
            if req.as_ref().is_some_and(|q| !q.is_zero())
                || lim.as_ref().is_some_and(|q| !q.is_zero())
            {
                any = true;
            }
            match (&req, &lim) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `ValidatePodSpec` for the fields Bosun's components read.
pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&format!("{path}.containers"), ""));
    }
    let mut names = std::collections::HashSet::new();
    let all = spec.containers.iter().map(|c| (c, "containers")).chain(
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| (c, "initContainers")),
    );
    let mut idx_of = BTreeMap::<&str, usize>::new();
    for (c, list) in all {
        let idx = idx_of.entry(list).or_insert(0);
        let cpath = format!("{path}.{list}[{idx}]");
        *idx += 1;
        validate_container(c, &cpath, &mut errs);
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&format!("{cpath}.name"), &c.name));
        }
    }
    check_enum(
        &mut errs,
        spec.restart_policy.as_deref(),
        || format!("{path}.restartPolicy"),
        RESTART_POLICIES,
    );
    check_enum(
        &mut errs,
        spec.dns_policy.as_deref(),
        || format!("{path}.dnsPolicy"),
        DNS_POLICIES,
    );
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        errs.push(FieldError::invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            &g.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(sel) = spec.node_selector.as_ref() {
        errs.extend(v::validate_labels(
            Some(sel),
            &format!("{path}.nodeSelector"),
        ));
    }
    if let Some(node) = spec.node_name.as_deref()
        && !node.is_empty()
    {
        for msg in v::is_dns1123_subdomain(node) {
            errs.push(FieldError::invalid(&format!("{path}.nodeName"), node, &msg));
        }
    }
    for (i, t) in spec.tolerations.iter().flatten().enumerate() {
        validate_toleration(t, &format!("{path}.tolerations[{i}]"), &mut errs);
    }
    errs
}

fn validate_container(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(FieldError::required(&format!("{path}.name"), ""));
    } else {
        for msg in v::is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&format!("{path}.name"), &c.name, &msg));
        }
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errs.push(FieldError::required(&format!("{path}.image"), ""));
    }
    check_enum(
        errs,
        c.image_pull_policy.as_deref(),
        || format!("{path}.imagePullPolicy"),
        PULL_POLICIES,
    );
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        for msg in v::is_valid_port_num(p.container_port) {
            errs.push(FieldError::invalid(
                &format!("{ppath}.containerPort"),
                &p.container_port.to_string(),
                &msg,
            ));
        }
        if let Some(hp) = p.host_port
            && hp != 0
        {
            for msg in v::is_valid_port_num(hp) {
                errs.push(FieldError::invalid(
                    &format!("{ppath}.hostPort"),
                    &hp.to_string(),
                    &msg,
                ));
            }
        }
        check_enum(
            errs,
            p.protocol.as_deref(),
            || format!("{ppath}.protocol"),
            PROTOCOLS,
        );
    }
    if let Some(res) = c.resources.as_ref() {
        validate_resources(res, &format!("{path}.resources"), errs);
    }
}

fn validate_resources(res: &ResourceRequirements, path: &str, errs: &mut Vec<FieldError>) {
    let mut parsed = |map: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                      field: &str| {
        let mut out = BTreeMap::new();
        for (name, q) in map.into_iter().flatten() {
            let fpath = format!("{path}.{field}[{name}]");
            match Quantity::parse(&q.0) {
                Ok(parsed) if parsed.is_negative() => errs.push(FieldError::invalid(
                    &fpath,
                    &q.0,
                    "must be greater than or equal to 0",
                )),
                Ok(parsed) => {
                    out.insert(name.clone(), parsed);
                }
                Err(_) => errs.push(FieldError::invalid(
                    &fpath,
                    &q.0,
                    "quantities must match the regular expression \
                     '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
            }
        }
        out
    };
    let requests = parsed(res.requests.as_ref(), "requests");
    let limits = parsed(res.limits.as_ref(), "limits");
    for (name, req) in &requests {
        if let Some(lim) = limits.get(name)
            && req > lim
        {
            errs.push(FieldError::invalid(
                &format!("{path}.requests"),
                &req.to_string(),
                &format!("must be less than or equal to {name} limit of {lim}"),
            ));
        }
    }
}

fn validate_toleration(t: &Toleration, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(key) = t.key.as_deref()
        && !key.is_empty()
    {
        for msg in v::is_qualified_name(key) {
            errs.push(FieldError::invalid(&format!("{path}.key"), key, &msg));
        }
    }
    match t.operator.as_deref() {
        None | Some("") | Some("Equal") => {}
        Some("Exists") => {
            if t.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::invalid(
                    &format!("{path}.operator"),
                    "Exists",
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            &format!("{path}.operator"),
            other,
            &["Equal", "Exists"],
        )),
    }
    if t.key.as_deref().is_none_or(str::is_empty) && t.operator.as_deref() != Some("Exists") {
        errs.push(FieldError::invalid(
            &format!("{path}.operator"),
            t.operator.as_deref().unwrap_or(""),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if let Some(effect) = t.effect.as_deref()
        && !effect.is_empty()
    {
        check_enum(
            errs,
            Some(effect),
            || format!("{path}.effect"),
            TAINT_EFFECTS,
        );
    }
}

/// `path` is rendered only for an error: most values are valid, and formatting every
/// checked field's path showed in the write path's profile.
fn check_enum(
    errs: &mut Vec<FieldError>,
    value: Option<&str>,
    path: impl FnOnce() -> String,
    allowed: &[&str],
) {
    if let Some(val) = value
        && !allowed.contains(&val)
    {
        errs.push(FieldError::not_supported(&path(), val, allowed));
    }
}

fn validate_template(t: &PodTemplateSpec, selector: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = BTreeMap::new();
    let labels = t
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&empty);
    errs.extend(v::validate_labels(
        Some(labels),
        &format!("{path}.metadata.labels"),
    ));
    if !selector.matches(labels) {
        errs.push(FieldError::invalid(
            &format!("{path}.metadata.labels"),
            &format!("{labels:?}"),
            "`selector` does not match template `labels`",
        ));
    }
    match t.spec.as_ref() {
        Some(spec) => errs.extend(validate_pod_spec(spec, &format!("{path}.spec"))),
        None => errs.push(FieldError::required(&format!("{path}.spec"), "")),
    }
    errs
}

impl ApiKind for Pod {
    const INFO: ResourceInfo = info!("", "Pod", "pods", "pod", true, short: ["po"], cat: ["all"], status: true, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];

    fn default_fields(&mut self) {
        if let Some(spec) = self.spec.as_mut() {
            default_pod_spec(spec);
            default_toleration_seconds(spec);
            spec.priority.get_or_insert(0);
            spec.preemption_policy
                .get_or_insert_with(|| "PreemptLowerPriority".into());
        }
    }

    fn prepare_for_create(&mut self) {
        let qos = self
            .spec
            .as_ref()
            .map(pod_qos_class)
            .unwrap_or("BestEffort");
        self.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos.into()),
            ..Default::default()
        });
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        match self.spec.as_ref() {
            Some(spec) => validate_pod_spec(spec, "spec"),
            None => vec![FieldError::required("spec", "")],
        }
    }

    /// Upstream's `ValidatePodUpdate`: only container images, activeDeadlineSeconds,
    /// added tolerations and a lowered grace period may change.
    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        let (Some(new_spec), Some(old_spec)) = (self.spec.as_ref(), old.spec.as_ref()) else {
            return Vec::new();
        };
        let mut relaxed = new_spec.clone();
        let copy_images = |dst: &mut Vec<Container>, src: &[Container]| {
            if dst.len() == src.len() {
                for (d, s) in dst.iter_mut().zip(src) {
                    d.image = s.image.clone();
                }
            }
        };
        copy_images(&mut relaxed.containers, &old_spec.containers);
        if let (Some(d), Some(s)) = (
            relaxed.init_containers.as_mut(),
            old_spec.init_containers.as_ref(),
        ) {
            copy_images(d, s);
        }
        relaxed.active_deadline_seconds = old_spec.active_deadline_seconds;
        let old_tolerations = old_spec.tolerations.clone().unwrap_or_default();
        if relaxed
            .tolerations
            .as_ref()
            .is_some_and(|t| old_tolerations.iter().all(|o| t.contains(o)))
        {
            relaxed.tolerations = old_spec.tolerations.clone();
        }
        relaxed.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
        if relaxed == *old_spec {
            return Vec::new();
        }
        vec![FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,\
             `spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
             `spec.tolerations` (only additions to existing tolerations),\
             `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        )]
    }
}

// ---------------------------------------------------------------------------------------
// Workloads.

fn selector_of(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    path: &str,
) -> (LabelSelector, Vec<FieldError>) {
    let mut errs = Vec::new();
    let empty = sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty);
    if empty {
        errs.push(FieldError::invalid(
            path,
            "{}",
            "empty selector is invalid for deployment",
        ));
    }
    match LabelSelector::from_k8s(Some(sel)) {
        Ok(s) => (s, errs),
        Err(e) => {
            errs.push(FieldError::invalid(path, "", &e.to_string()));
            (LabelSelector::nothing(), errs)
        }
    }
}

/// apps/v1 workloads may not change their selector (upstream's ValidateDeploymentUpdate
/// and ValidateReplicaSetUpdate).
fn selector_immutable(
    new: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    old: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "spec.selector",
        &format!("{new:?}"),
        "field is immutable",
    )]
}

fn validate_replicas(replicas: Option<i32>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(r) = replicas
        && r < 0
    {
        errs.push(FieldError::invalid(
            path,
            &r.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

fn default_template(t: &mut PodTemplateSpec) {
    if let Some(spec) = t.spec.as_mut() {
        default_pod_spec(spec);
    }
}

impl ApiKind for Deployment {
    const INFO: ResourceInfo = info!("apps", "Deployment", "deployments", "deployment", true,
        short: ["deploy"], cat: ["all"], status: true, scale: true);

    fn default_fields(&mut self) {
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if ty == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        default_template(&mut spec.template);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let Some(spec) = self.spec.as_ref() else {
            return vec![FieldError::required("spec", "")];
        };
        let (sel, mut errs) = selector_of(&spec.selector, "spec.selector");
        validate_replicas(spec.replicas, "spec.replicas", &mut errs);
        errs.extend(validate_template(&spec.template, &sel, "spec.template"));
        if let Some(strategy) = spec.strategy.as_ref() {
            check_enum(
                &mut errs,
                strategy.type_.as_deref(),
                || "spec.strategy.type".to_owned(),
                &["Recreate", "RollingUpdate"],
            );
            if strategy.type_.as_deref() == Some("Recreate") && strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        if let Some(t) = spec.template.spec.as_ref()
            && t.restart_policy.as_deref().is_some_and(|p| p != "Always")
        {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                t.restart_policy.as_deref().unwrap_or(""),
                &["Always"],
            ));
        }
        errs
    }

    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        selector_immutable(
            self.spec.as_ref().map(|s| &s.selector),
            old.spec.as_ref().map(|s| &s.selector),
        )
    }
}

impl ApiKind for ReplicaSet {
    const INFO: ResourceInfo = info!("apps", "ReplicaSet", "replicasets", "replicaset", true,
        short: ["rs"], cat: ["all"], status: true, scale: true);
    const SELECTABLE_FIELDS: &'static [&'static str] = &["status.replicas"];

    fn default_fields(&mut self) {
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        spec.replicas.get_or_insert(1);
        if let Some(t) = spec.template.as_mut() {
            default_template(t);
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let Some(spec) = self.spec.as_ref() else {
            return vec![FieldError::required("spec", "")];
        };
        let (sel, mut errs) = selector_of(&spec.selector, "spec.selector");
        validate_replicas(spec.replicas, "spec.replicas", &mut errs);
        match spec.template.as_ref() {
            Some(t) => errs.extend(validate_template(t, &sel, "spec.template")),
            None if spec.replicas.unwrap_or(1) > 0 => {
                errs.push(FieldError::required("spec.template", ""));
            }
            None => {}
        }
        errs
    }

    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        selector_immutable(
            self.spec.as_ref().map(|s| &s.selector),
            old.spec.as_ref().map(|s| &s.selector),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Services and endpoints.

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

impl ApiKind for Service {
    const INFO: ResourceInfo = info!("", "Service", "services", "service", true, short: ["svc"], cat: ["all"], status: true, scale: false);

    fn validate_name(name: &str) -> Vec<String> {
        is_dns1035_label(name)
    }

    /// `SetDefaults_Service`. IP families and addresses are set by the allocator.
    fn default_fields(&mut self) {
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        spec.session_affinity.get_or_insert_with(|| "None".into());
        let ty = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
        if spec.session_affinity.as_deref() == Some("ClientIP") {
            let cfg = spec
                .session_affinity_config
                .get_or_insert_with(Default::default);
            cfg.client_ip
                .get_or_insert_with(Default::default)
                .timeout_seconds
                .get_or_insert(10800);
        }
        for p in spec.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
            if p.target_port.is_none() {
                p.target_port = Some(IntOrString::Int(p.port));
            }
        }
        if ty != "ExternalName" {
            spec.internal_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            spec.external_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        if ty == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(Default::default());
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let Some(spec) = self.spec.as_ref() else {
            return vec![FieldError::required("spec", "")];
        };
        let mut errs = Vec::new();
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        check_enum(
            &mut errs,
            Some(ty),
            || "spec.type".to_owned(),
            SERVICE_TYPES,
        );
        let headless = spec.cluster_ip.as_deref() == Some("None");
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        if ports.is_empty() && ty != "ExternalName" && !headless {
            errs.push(FieldError::required("spec.ports", ""));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.ports[{i}]");
            match p.name.as_deref().filter(|n| !n.is_empty()) {
                None if ports.len() > 1 => {
                    errs.push(FieldError::required(&format!("{path}.name"), ""))
                }
                None => {}
                Some(n) => {
                    for msg in v::is_dns1123_label(n) {
                        errs.push(FieldError::invalid(&format!("{path}.name"), n, &msg));
                    }
                    if !names.insert(n) {
                        errs.push(FieldError::duplicate(&format!("{path}.name"), n));
                    }
                }
            }
            for msg in v::is_valid_port_num(p.port) {
                errs.push(FieldError::invalid(
                    &format!("{path}.port"),
                    &p.port.to_string(),
                    &msg,
                ));
            }
            check_enum(
                &mut errs,
                p.protocol.as_deref(),
                || format!("{path}.protocol"),
                PROTOCOLS,
            );
            if let Some(np) = p.node_port
                && np != 0
                && ty == "ClusterIP"
            {
                errs.push(FieldError::forbidden(
                    &format!("{path}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if let Some(IntOrString::Int(tp)) = p.target_port {
                for msg in v::is_valid_port_num(tp) {
                    errs.push(FieldError::invalid(
                        &format!("{path}.targetPort"),
                        &tp.to_string(),
                        &msg,
                    ));
                }
            }
        }
        if let Some(sel) = spec.selector.as_ref() {
            errs.extend(v::validate_labels(Some(sel), "spec.selector"));
        }
        if let Some(ip) = spec.cluster_ip.as_deref()
            && !ip.is_empty()
            && ip != "None"
        {
            for msg in v::is_valid_ip(ip) {
                errs.push(FieldError::invalid("spec.clusterIP", ip, &msg));
            }
        }
        check_enum(
            &mut errs,
            spec.session_affinity.as_deref(),
            || "spec.sessionAffinity".to_owned(),
            &["None", "ClientIP"],
        );
        errs
    }

    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        let new_ip = self
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .unwrap_or("");
        let old_ip = old
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .unwrap_or("");
        if !new_ip.is_empty() && new_ip != old_ip {
            return vec![FieldError::invalid(
                "spec.clusterIPs[0]",
                new_ip,
                "may not change once set",
            )];
        }
        Vec::new()
    }
}

impl ApiKind for Endpoints {
    const INFO: ResourceInfo = info!("", "Endpoints", "endpoints", "endpoints", true, short: ["ep"], cat: [], status: false, scale: false);

    fn default_fields(&mut self) {
        for subset in self.subsets.iter_mut().flatten() {
            for p in subset.ports.iter_mut().flatten() {
                p.protocol.get_or_insert_with(|| "TCP".into());
            }
        }
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, subset) in self.subsets.iter().flatten().enumerate() {
            let addrs = subset.addresses.iter().flatten().map(|a| (a, "addresses"));
            let not_ready = subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, "notReadyAddresses"));
            for (j, (a, list)) in addrs.chain(not_ready).enumerate() {
                for msg in v::is_valid_ip(&a.ip) {
                    errs.push(FieldError::invalid(
                        &format!("subsets[{i}].{list}[{j}].ip"),
                        &a.ip,
                        &msg,
                    ));
                }
            }
            for (j, p) in subset.ports.iter().flatten().enumerate() {
                for msg in v::is_valid_port_num(p.port) {
                    errs.push(FieldError::invalid(
                        &format!("subsets[{i}].ports[{j}].port"),
                        &p.port.to_string(),
                        &msg,
                    ));
                }
            }
        }
        errs
    }
}

impl ApiKind for EndpointSlice {
    const INFO: ResourceInfo = info!("discovery.k8s.io", "EndpointSlice", "endpointslices", "endpointslice", true,
        short: [], cat: [], status: false, scale: false);

    fn default_fields(&mut self) {
        for p in self.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
            p.name.get_or_insert_with(String::new);
        }
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        check_enum(
            &mut errs,
            Some(self.address_type.as_str()),
            || "addressType".to_owned(),
            &["IPv4", "IPv6", "FQDN"],
        );
        for (i, ep) in self.endpoints.iter().enumerate() {
            if ep.addresses.is_empty() {
                errs.push(FieldError::required(
                    &format!("endpoints[{i}].addresses"),
                    "must contain at least 1 address",
                ));
            }
            if self.address_type != "FQDN" {
                for (j, a) in ep.addresses.iter().enumerate() {
                    for msg in v::is_valid_ip(a) {
                        errs.push(FieldError::invalid(
                            &format!("endpoints[{i}].addresses[{j}]"),
                            a,
                            &msg,
                        ));
                    }
                }
            }
        }
        for (i, p) in self.ports.iter().flatten().enumerate() {
            if let Some(port) = p.port {
                for msg in v::is_valid_port_num(port) {
                    errs.push(FieldError::invalid(
                        &format!("ports[{i}].port"),
                        &port.to_string(),
                        &msg,
                    ));
                }
            }
        }
        errs
    }
}

// ---------------------------------------------------------------------------------------
// Cluster objects.

impl ApiKind for Namespace {
    const INFO: ResourceInfo = info!("", "Namespace", "namespaces", "namespace", false, short: ["ns"], cat: [], status: true, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &["status.phase"];

    fn validate_name(name: &str) -> Vec<String> {
        v::is_dns1123_label(name)
    }

    const DEFAULTS_METADATA: bool = true;

    fn default_fields(&mut self) {
        if let Some(name) = self.metadata.name.clone() {
            let labels = self.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.insert("kubernetes.io/metadata.name".into(), name);
        }
    }

    fn prepare_for_create(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push("kubernetes".into());
        }
        self.status = Some(k8s_openapi::api::core::v1::NamespaceStatus {
            phase: Some("Active".into()),
            conditions: None,
        });
    }
}

impl ApiKind for Node {
    const INFO: ResourceInfo = info!("", "Node", "nodes", "node", false, short: ["no"], cat: [], status: true, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &["spec.unschedulable"];

    /// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
    fn default_fields(&mut self) {
        if let Some(status) = self.status.as_mut()
            && status.allocatable.is_none()
        {
            status.allocatable = status.capacity.clone();
        }
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, t) in self
            .spec
            .iter()
            .flat_map(|s| s.taints.iter().flatten())
            .enumerate()
        {
            let path = format!("spec.taints[{i}]");
            for msg in v::is_qualified_name(&t.key) {
                errs.push(FieldError::invalid(&format!("{path}.key"), &t.key, &msg));
            }
            check_enum(
                &mut errs,
                Some(t.effect.as_str()),
                || format!("{path}.effect"),
                TAINT_EFFECTS,
            );
        }
        if let Some(status) = self.status.as_ref() {
            for (field, map) in [
                ("capacity", &status.capacity),
                ("allocatable", &status.allocatable),
            ] {
                for (name, q) in map.iter().flatten() {
                    if Quantity::parse(&q.0).is_err() {
                        errs.push(FieldError::invalid(
                            &format!("status.{field}[{name}]"),
                            &q.0,
                            "quantities must match the regular expression \
                             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        ));
                    }
                }
            }
        }
        errs
    }
}

fn validate_data_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in keys {
        for msg in v::is_config_map_key(key) {
            errs.push(FieldError::invalid(&format!("{path}[{key}]"), key, &msg));
        }
    }
    errs
}

/// ConfigMaps and Secrets hold at most 1 MiB of data (upstream's `MaxSecretSize`).
const MAX_DATA_BYTES: usize = 1024 * 1024;

impl ApiKind for ConfigMap {
    const INFO: ResourceInfo = info!("", "ConfigMap", "configmaps", "configmap", true, short: ["cm"], cat: [], status: false, scale: false);

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = validate_data_keys(self.data.iter().flat_map(|d| d.keys()), "data");
        errs.extend(validate_data_keys(
            self.binary_data.iter().flat_map(|d| d.keys()),
            "binaryData",
        ));
        let size: usize = self
            .data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self
                .binary_data
                .iter()
                .flatten()
                .map(|(k, v)| k.len() + v.0.len())
                .sum::<usize>();
        if size > MAX_DATA_BYTES {
            errs.push(FieldError::too_long("", MAX_DATA_BYTES));
        }
        errs
    }
}

impl ApiKind for Secret {
    const INFO: ResourceInfo = info!("", "Secret", "secrets", "secret", true, short: [], cat: [], status: false, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &["type"];

    fn default_fields(&mut self) {
        self.type_.get_or_insert_with(|| "Opaque".into());
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = validate_data_keys(self.data.iter().flat_map(|d| d.keys()), "data");
        let size: usize = self
            .data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.0.len())
            .sum();
        if size > MAX_DATA_BYTES {
            errs.push(FieldError::too_long("data", MAX_DATA_BYTES));
        }
        errs
    }

    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        if self.type_ != old.type_ {
            return vec![FieldError::invalid(
                "type",
                self.type_.as_deref().unwrap_or(""),
                "field is immutable",
            )];
        }
        Vec::new()
    }
}

impl ApiKind for Event {
    const INFO: ResourceInfo = info!("", "Event", "events", "event", true, short: ["ev"], cat: [], status: false, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
}

impl ApiKind for EventsV1Event {
    const INFO: ResourceInfo = info!("events.k8s.io", "Event", "events", "event", true,
        short: ["ev"], cat: [], status: false, scale: false);
    const SELECTABLE_FIELDS: &'static [&'static str] = &[
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "reportingController",
        "type",
    ];
}

impl ApiKind for Lease {
    const INFO: ResourceInfo = info!("coordination.k8s.io", "Lease", "leases", "lease", true,
        short: [], cat: [], status: false, scale: false);

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(d) = self.spec.as_ref().and_then(|s| s.lease_duration_seconds)
            && d <= 0
        {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                &d.to_string(),
                "must be greater than 0",
            ));
        }
        errs
    }
}

/// The highest priority a user-defined PriorityClass may have (upstream's
/// `HighestUserDefinablePriority`).
pub const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

impl ApiKind for PriorityClass {
    const INFO: ResourceInfo = info!("scheduling.k8s.io", "PriorityClass", "priorityclasses", "priorityclass", false,
        short: ["pc"], cat: [], status: false, scale: false);

    fn default_fields(&mut self) {
        self.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn validate_spec(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = self.metadata.name.as_deref().unwrap_or("");
        if self.value > HIGHEST_USER_PRIORITY && !name.starts_with("system-") {
            errs.push(FieldError::forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        check_enum(
            &mut errs,
            self.preemption_policy.as_deref(),
            || "preemptionPolicy".to_owned(),
            &["PreemptLowerPriority", "Never"],
        );
        errs
    }

    fn validate_spec_update(&self, old: &Self) -> Vec<FieldError> {
        if self.value != old.value {
            return vec![FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            )];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            status: None,
        }
    }

    fn container(name: &str, image: &str) -> Container {
        Container {
            name: name.into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn pull_policy_defaults_follow_the_tag() {
        // pkg/apis/core/v1/defaults.go SetDefaults_Container.
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry:5000/nginx", "Always"),
            ("registry:5000/nginx:1.0", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn pod_defaults_are_upstreams() {
        let mut p = pod(vec![Container {
            ports: Some(vec![ContainerPort {
                container_port: 80,
                ..Default::default()
            }]),
            ..container("web", "nginx:1.27")
        }]);
        p.default_fields();
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
        let c = &spec.containers[0];
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(
            c.ports.as_ref().unwrap()[0].protocol.as_deref(),
            Some("TCP")
        );
        let tolerations = spec.tolerations.as_ref().unwrap();
        assert_eq!(
            tolerations.len(),
            2,
            "DefaultTolerationSeconds adds two tolerations"
        );
        // Idempotent: defaulting twice changes nothing.
        let once = p.clone();
        p.default_fields();
        assert_eq!(p, once);
    }

    #[test]
    fn qos_classes() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
        let with = |req: &[(&str, &str)], lim: &[(&str, &str)]| {
            let map = |xs: &[(&str, &str)]| {
                (!xs.is_empty()).then(|| {
                    xs.iter()
                        .map(|(k, v)| (k.to_string(), Q(v.to_string())))
                        .collect()
                })
            };
            let mut c = container("c", "i");
            c.resources = Some(ResourceRequirements {
                requests: map(req),
                limits: map(lim),
                ..Default::default()
            });
            PodSpec {
                containers: vec![c],
                ..Default::default()
            }
        };
        assert_eq!(pod_qos_class(&with(&[], &[])), "BestEffort");
        assert_eq!(pod_qos_class(&with(&[("cpu", "100m")], &[])), "Burstable");
        let both = [("cpu", "1"), ("memory", "1Gi")];
        assert_eq!(pod_qos_class(&with(&both, &both)), "Guaranteed");
        assert_eq!(
            pod_qos_class(&with(&[("cpu", "1000m"), ("memory", "1024Mi")], &both)),
            "Guaranteed"
        );
        assert_eq!(
            pod_qos_class(&with(&[("cpu", "500m"), ("memory", "1Gi")], &both)),
            "Burstable"
        );
    }

    #[test]
    fn pod_validation_reports_each_field() {
        let mut p = pod(vec![container("Bad_Name", ""), container("ok", "img")]);
        p.spec.as_mut().unwrap().restart_policy = Some("Sometimes".into());
        let errs = validate_create(&p);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"spec.containers[0].name"), "{fields:?}");
        assert!(fields.contains(&"spec.containers[0].image"), "{fields:?}");
        assert!(fields.contains(&"spec.restartPolicy"), "{fields:?}");
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn pod_update_allows_only_image_changes() {
        let old = pod(vec![container("c", "a:1")]);
        let mut new = old.clone();
        new.spec.as_mut().unwrap().containers[0].image = Some("a:2".into());
        assert!(new.validate_spec_update(&old).is_empty());
        new.spec.as_mut().unwrap().containers[0].name = "d".into();
        assert_eq!(new.validate_spec_update(&old).len(), 1);
    }

    #[test]
    fn service_names_are_dns1035() {
        assert!(is_dns1035_label("web").is_empty());
        assert!(!is_dns1035_label("1web").is_empty());
        assert!(!is_dns1035_label("Web").is_empty());
        assert!(!is_dns1035_label("").is_empty());
    }
}
