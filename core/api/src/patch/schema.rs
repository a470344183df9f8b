//! Patch metadata per kind: which lists merge, by which key, and which maps retain keys.
//!
//! Upstream reads this metadata from the Go struct tags `patchStrategy` and `patchMergeKey`
//! of the typed API objects. Bosun has no Go structs to reflect on, so the same tags are
//! written down here as a static tree, one [`PatchSchema`] per object type. The tags are
//! taken from:
//!
//! - `k8s.io/apimachinery/pkg/apis/meta/v1/types.go` (`ObjectMeta`, `Condition`)
//! - `k8s.io/api/core/v1/types.go` (`PodSpec`, `Container`, `EphemeralContainerCommon`,
//!   `PodStatus`, `NodeSpec`, `NodeStatus`, `ServiceSpec`, `ServiceStatus`, `NamespaceStatus`)
//! - `k8s.io/api/apps/v1/types.go` (`DeploymentSpec`, `DeploymentStatus`, `ReplicaSetStatus`)
//! - `k8s.io/api/discovery/v1/types.go`, `k8s.io/api/coordination/v1/types.go`,
//!   `k8s.io/api/scheduling/v1/types.go`: no strategic tags beyond `ObjectMeta`.
//!
//! Only fields that carry a tag, or lead to one, are listed; every other field gets the
//! default strategy (maps merge, lists are replaced whole).
//!
//! Server-side apply reads the same tree ([`crate::fieldmanager`]): a merging list is an
//! associative list (`x-kubernetes-list-type: map`, keyed by [`FieldSchema::list_keys`] or
//! the merge key) or a set (scalars); every other list is atomic; objects are granular
//! unless [`FieldSchema::atomic`] says `+structType=atomic`.

/// The `patchStrategy` tag of a field, minus `retainKeys` (see [`FieldSchema::retain_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No tag: maps merge recursively, lists are replaced whole.
    Default,
    /// `patchStrategy:"merge"`: lists merge element by element (by merge key for lists of
    /// objects, as a set for lists of scalars).
    Merge,
    /// `patchStrategy:"replace"`: the patch value replaces the stored one whole.
    Replace,
}

/// Patch metadata of one field of an object type.
#[derive(Debug)]
pub struct FieldSchema {
    /// The JSON name of the field.
    pub name: &'static str,
    pub strategy: PatchStrategy,
    /// `patchMergeKey`: the key that identifies elements of a merging list of objects.
    pub merge_key: Option<&'static str>,
    /// `retainKeys` in `patchStrategy`. Only clients use it (to emit `$retainKeys`); the
    /// server honours a `$retainKeys` directive wherever it appears, as upstream does.
    pub retain_keys: bool,
    /// The schema of the field's value, or of its elements when it is a list.
    pub schema: &'static PatchSchema,
    /// Server-side apply's `x-kubernetes-list-map-keys` where they differ from
    /// `[merge_key]` (container ports are keyed by `containerPort` and `protocol`).
    pub list_keys: &'static [&'static str],
    /// `x-kubernetes-map-type: atomic` / `+structType=atomic` for server-side apply: the
    /// value is owned and replaced whole; on a keyed list, each element is.
    pub atomic: bool,
}

impl FieldSchema {
    /// The metadata of a field the schema does not list: default strategy, nothing nested.
    pub const UNKNOWN: FieldSchema = FieldSchema::nested("", &PatchSchema::EMPTY);

    /// A field with the default strategy whose value has the given schema.
    pub const fn nested(name: &'static str, schema: &'static PatchSchema) -> FieldSchema {
        FieldSchema {
            name,
            strategy: PatchStrategy::Default,
            merge_key: None,
            retain_keys: false,
            schema,
            list_keys: &[],
            atomic: false,
        }
    }

    /// A list of objects tagged `patchStrategy:"merge" patchMergeKey:"<key>"`.
    pub const fn merge_by_key(
        name: &'static str,
        key: &'static str,
        schema: &'static PatchSchema,
    ) -> FieldSchema {
        FieldSchema {
            name,
            strategy: PatchStrategy::Merge,
            merge_key: Some(key),
            retain_keys: false,
            schema,
            list_keys: &[],
            atomic: false,
        }
    }

    /// A list of scalars tagged `patchStrategy:"merge"`: merged as a set.
    pub const fn merge_scalars(name: &'static str) -> FieldSchema {
        FieldSchema {
            name,
            strategy: PatchStrategy::Merge,
            merge_key: None,
            retain_keys: false,
            schema: &PatchSchema::EMPTY,
            list_keys: &[],
            atomic: false,
        }
    }

    /// A field tagged `patchStrategy:"replace"`.
    pub const fn replace(name: &'static str) -> FieldSchema {
        FieldSchema {
            name,
            strategy: PatchStrategy::Replace,
            merge_key: None,
            retain_keys: false,
            schema: &PatchSchema::EMPTY,
            list_keys: &[],
            atomic: false,
        }
    }

    /// A field server-side apply treats as one value (`structType=atomic`), with no
    /// strategic merge tag.
    pub const fn atomic(name: &'static str) -> FieldSchema {
        FieldSchema {
            atomic: true,
            ..FieldSchema::nested(name, &PatchSchema::EMPTY)
        }
    }

    /// The same field with server-side apply list-map keys other than its merge key.
    pub const fn apply_keys(self, keys: &'static [&'static str]) -> FieldSchema {
        FieldSchema {
            list_keys: keys,
            ..self
        }
    }

    /// The same field with atomic elements (or value) for server-side apply.
    pub const fn atomic_elements(self) -> FieldSchema {
        FieldSchema {
            atomic: true,
            ..self
        }
    }

    /// The keys identifying an element of this list for server-side apply: the list-map
    /// keys, else the merge key; empty for lists that are not associative.
    pub fn apply_list_keys(&self) -> &[&'static str] {
        if !self.list_keys.is_empty() {
            return self.list_keys;
        }
        match &self.merge_key {
            Some(key) => std::slice::from_ref(key),
            None => &[],
        }
    }

    /// The same field with `retainKeys` added to its strategy.
    pub const fn retain_keys(self) -> FieldSchema {
        FieldSchema {
            retain_keys: true,
            ..self
        }
    }

    /// Whether lists in this field merge rather than being replaced.
    pub fn is_merging_list(&self) -> bool {
        self.strategy == PatchStrategy::Merge
    }
}

/// The patch metadata of one object type: its tagged fields and the fields leading to them.
#[derive(Debug)]
pub struct PatchSchema {
    fields: &'static [FieldSchema],
}

impl PatchSchema {
    /// No tagged fields: every list is replaced, every map merged.
    pub const EMPTY: PatchSchema = PatchSchema::new(&[]);

    pub const fn new(fields: &'static [FieldSchema]) -> PatchSchema {
        PatchSchema { fields }
    }

    /// The metadata of field `name`, or [`FieldSchema::UNKNOWN`] when it is not listed.
    pub fn field(&self, name: &str) -> &FieldSchema {
        // Linear: the longest field list here has nine entries.
        self.fields
            .iter()
            .find(|field| field.name == name)
            .unwrap_or(&FieldSchema::UNKNOWN)
    }

    pub fn fields(&self) -> &'static [FieldSchema] {
        self.fields
    }
}

/// The schema for objects of `kind` in `api_version` (`v1`, `apps/v1`, ...). The version is
/// ignored, only the group counts. Unknown kinds get [`PatchSchema::EMPTY`].
pub fn schema_for(api_version: &str, kind: &str) -> &'static PatchSchema {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    match (group, kind) {
        ("", "Pod") => &POD,
        ("", "PodTemplate") => &POD_TEMPLATE,
        ("", "Node") => &NODE,
        ("", "Service") => &SERVICE,
        ("", "Namespace") => &NAMESPACE,
        ("", "Endpoints" | "ConfigMap" | "Secret" | "Event")
        | ("discovery.k8s.io", "EndpointSlice")
        | ("coordination.k8s.io", "Lease")
        | ("scheduling.k8s.io", "PriorityClass")
        | ("events.k8s.io", "Event") => &METADATA_ONLY,
        ("apps", "Deployment") => &DEPLOYMENT,
        ("apps", "ReplicaSet") => &REPLICA_SET,
        _ => &PatchSchema::EMPTY,
    }
}

use FieldSchema as F;

const EMPTY: &PatchSchema = &PatchSchema::EMPTY;

// meta/v1 ObjectMeta: ownerReferences `patchStrategy:"merge" patchMergeKey:"uid"`,
// finalizers `patchStrategy:"merge"`. OwnerReference is `+structType=atomic`.
static OBJECT_META: PatchSchema = PatchSchema::new(&[
    F::merge_by_key("ownerReferences", "uid", EMPTY).atomic_elements(),
    F::merge_scalars("finalizers"),
]);

const METADATA: FieldSchema = F::nested("metadata", &OBJECT_META);

// Every `conditions` list tagged here uses `patchStrategy:"merge" patchMergeKey:"type"`
// (core/v1 PodStatus, NodeStatus, NamespaceStatus; meta/v1 Condition in ServiceStatus;
// apps/v1 DeploymentStatus, ReplicaSetStatus).
const CONDITIONS: FieldSchema = F::merge_by_key("conditions", "type", EMPTY);

static METADATA_ONLY: PatchSchema = PatchSchema::new(&[METADATA]);

// core/v1 EnvVarSource: the key and field selectors are `+structType=atomic`.
static ENV_VAR: PatchSchema = PatchSchema::new(&[F::nested(
    "valueFrom",
    &PatchSchema::new(&[
        F::atomic("configMapKeyRef"),
        F::atomic("secretKeyRef"),
        F::atomic("fieldRef"),
        F::atomic("resourceFieldRef"),
    ]),
)]);

// core/v1 Container and EphemeralContainerCommon carry the same tags. Ports are a map
// list keyed by containerPort and protocol for server-side apply.
static CONTAINER: PatchSchema = PatchSchema::new(&[
    F::merge_by_key("ports", "containerPort", EMPTY).apply_keys(&["containerPort", "protocol"]),
    F::merge_by_key("env", "name", &ENV_VAR),
    F::merge_by_key("volumeMounts", "mountPath", EMPTY),
    F::merge_by_key("volumeDevices", "devicePath", EMPTY),
]);

// core/v1 PodSpec. topologySpreadConstraints is a map list keyed by topologyKey and
// whenUnsatisfiable for server-side apply, but its strategic merge key is topologyKey alone.
static POD_SPEC: PatchSchema = PatchSchema::new(&[
    F::merge_by_key("volumes", "name", EMPTY).retain_keys(),
    F::merge_by_key("initContainers", "name", &CONTAINER),
    F::merge_by_key("containers", "name", &CONTAINER),
    F::merge_by_key("ephemeralContainers", "name", &CONTAINER),
    // LocalObjectReference is `+structType=atomic`.
    F::merge_by_key("imagePullSecrets", "name", EMPTY).atomic_elements(),
    F::merge_by_key("hostAliases", "ip", EMPTY),
    F::merge_by_key(
        "topologySpreadConstraints",
        "topologyKey",
        &SPREAD_CONSTRAINT,
    )
    .apply_keys(&["topologyKey", "whenUnsatisfiable"]),
    F::merge_by_key("schedulingGates", "name", EMPTY),
    F::merge_by_key("resourceClaims", "name", EMPTY).retain_keys(),
]);

// core/v1 TopologySpreadConstraint: its LabelSelector is `+structType=atomic`.
static SPREAD_CONSTRAINT: PatchSchema = PatchSchema::new(&[F::atomic("labelSelector")]);

// core/v1 PodStatus.
static POD_STATUS: PatchSchema = PatchSchema::new(&[
    CONDITIONS,
    F::merge_by_key("podIPs", "ip", EMPTY),
    F::merge_by_key("hostIPs", "ip", EMPTY),
    F::merge_by_key("resourceClaimStatuses", "name", EMPTY).retain_keys(),
]);

static POD: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested("spec", &POD_SPEC),
    F::nested("status", &POD_STATUS),
]);

// core/v1 PodTemplateSpec.
static POD_TEMPLATE_SPEC: PatchSchema = PatchSchema::new(&[METADATA, F::nested("spec", &POD_SPEC)]);

static POD_TEMPLATE: PatchSchema =
    PatchSchema::new(&[METADATA, F::nested("template", &POD_TEMPLATE_SPEC)]);

// core/v1 NodeSpec podCIDRs `patchStrategy:"merge"`; NodeStatus conditions and addresses
// `patchMergeKey:"type"`.
static NODE: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested("spec", &PatchSchema::new(&[F::merge_scalars("podCIDRs")])),
    F::nested(
        "status",
        &PatchSchema::new(&[CONDITIONS, F::merge_by_key("addresses", "type", EMPTY)]),
    ),
]);

// core/v1 ServiceSpec ports `patchMergeKey:"port"` (a map list keyed by port and protocol
// for server-side apply), selector `+mapType=atomic`; ServiceStatus conditions.
static SERVICE: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested(
        "spec",
        &PatchSchema::new(&[
            F::merge_by_key("ports", "port", EMPTY).apply_keys(&["port", "protocol"]),
            F::atomic("selector"),
        ]),
    ),
    F::nested("status", &PatchSchema::new(&[CONDITIONS])),
]);

// core/v1 NamespaceStatus conditions. NamespaceSpec finalizers carry no tag.
static NAMESPACE: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested("status", &PatchSchema::new(&[CONDITIONS])),
]);

// apps/v1 DeploymentSpec strategy `patchStrategy:"retainKeys"`; its selector (meta/v1
// LabelSelector) is `+structType=atomic`, as ReplicaSetSpec's.
static DEPLOYMENT: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested(
        "spec",
        &PatchSchema::new(&[
            F::atomic("selector"),
            F::nested("template", &POD_TEMPLATE_SPEC),
            F::nested("strategy", EMPTY).retain_keys(),
        ]),
    ),
    F::nested("status", &PatchSchema::new(&[CONDITIONS])),
]);

static REPLICA_SET: PatchSchema = PatchSchema::new(&[
    METADATA,
    F::nested(
        "spec",
        &PatchSchema::new(&[
            F::atomic("selector"),
            F::nested("template", &POD_TEMPLATE_SPEC),
        ]),
    ),
    F::nested("status", &PatchSchema::new(&[CONDITIONS])),
]);

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `path` (field names) from the schema of a kind and returns the last field.
    fn lookup(api_version: &str, kind: &str, path: &[&str]) -> &'static FieldSchema {
        let mut schema = schema_for(api_version, kind);
        let mut field = &FieldSchema::UNKNOWN;
        for name in path {
            field = schema.field(name);
            schema = field.schema;
        }
        field
    }

    #[test]
    fn tags_match_upstream_types() {
        // (apiVersion, kind, path, merge key, retainKeys); None key means a merged scalar list.
        type TagCase = (
            &'static str,
            &'static str,
            &'static [&'static str],
            Option<&'static str>,
            bool,
        );
        let cases: &[TagCase] = &[
            ("v1", "Pod", &["metadata", "finalizers"], None, false),
            (
                "v1",
                "Pod",
                &["metadata", "ownerReferences"],
                Some("uid"),
                false,
            ),
            ("v1", "Pod", &["spec", "containers"], Some("name"), false),
            (
                "v1",
                "Pod",
                &["spec", "initContainers", "env"],
                Some("name"),
                false,
            ),
            (
                "v1",
                "Pod",
                &["spec", "ephemeralContainers", "volumeMounts"],
                Some("mountPath"),
                false,
            ),
            (
                "v1",
                "Pod",
                &["spec", "containers", "ports"],
                Some("containerPort"),
                false,
            ),
            (
                "v1",
                "Pod",
                &["spec", "containers", "volumeDevices"],
                Some("devicePath"),
                false,
            ),
            ("v1", "Pod", &["spec", "volumes"], Some("name"), true),
            (
                "v1",
                "Pod",
                &["spec", "imagePullSecrets"],
                Some("name"),
                false,
            ),
            ("v1", "Pod", &["spec", "hostAliases"], Some("ip"), false),
            (
                "v1",
                "Pod",
                &["spec", "topologySpreadConstraints"],
                Some("topologyKey"),
                false,
            ),
            ("v1", "Pod", &["status", "conditions"], Some("type"), false),
            ("v1", "Pod", &["status", "podIPs"], Some("ip"), false),
            ("v1", "Node", &["spec", "podCIDRs"], None, false),
            ("v1", "Node", &["status", "addresses"], Some("type"), false),
            ("v1", "Node", &["status", "conditions"], Some("type"), false),
            ("v1", "Service", &["spec", "ports"], Some("port"), false),
            (
                "v1",
                "Namespace",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            ("v1", "ConfigMap", &["metadata", "finalizers"], None, false),
            (
                "discovery.k8s.io/v1",
                "EndpointSlice",
                &["metadata", "ownerReferences"],
                Some("uid"),
                false,
            ),
            (
                "coordination.k8s.io/v1",
                "Lease",
                &["metadata", "finalizers"],
                None,
                false,
            ),
            (
                "apps/v1",
                "Deployment",
                &["spec", "template", "spec", "containers"],
                Some("name"),
                false,
            ),
            (
                "apps/v1",
                "Deployment",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "apps/v1",
                "ReplicaSet",
                &["spec", "template", "spec", "volumes"],
                Some("name"),
                true,
            ),
            (
                "apps/v1",
                "ReplicaSet",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
        ];
        for &(api_version, kind, path, key, retain) in cases {
            let field = lookup(api_version, kind, path);
            let what = format!("{api_version} {kind} {}", path.join("."));
            assert_eq!(field.strategy, PatchStrategy::Merge, "{what}: strategy");
            assert_eq!(field.merge_key, key, "{what}: merge key");
            assert_eq!(field.retain_keys, retain, "{what}: retainKeys");
        }
    }

    #[test]
    fn untagged_fields_and_unknown_kinds_use_the_default_strategy() {
        let strategy = lookup("apps/v1", "Deployment", &["spec", "strategy"]);
        assert_eq!(strategy.strategy, PatchStrategy::Default);
        assert!(
            strategy.retain_keys,
            "deployment spec.strategy is retainKeys"
        );
        let cases: &[(&str, &str, &[&str])] = &[
            ("v1", "Pod", &["spec", "tolerations"]),
            ("v1", "Node", &["spec", "taints"]),
            ("v1", "Endpoints", &["subsets"]),
            ("v1", "Namespace", &["spec", "finalizers"]),
            // Wrong group: the kind is not recognised.
            (
                "extensions/v1beta1",
                "Deployment",
                &["spec", "template", "spec", "containers"],
            ),
            ("example.com/v1", "Widget", &["metadata", "finalizers"]),
        ];
        for &(api_version, kind, path) in cases {
            let field = lookup(api_version, kind, path);
            assert_eq!(
                field.strategy,
                PatchStrategy::Default,
                "{api_version} {kind} {}",
                path.join(".")
            );
        }
    }
}
