//! PATCH for stored objects: JSON patch, JSON merge patch and strategic merge patch, with
//! the error classes kube-apiserver answers with.
//!
//! The API server calls [`apply_patch`] with the stored object (as JSON), the request body
//! and the body's patch type ([`PatchType::from_content_type`]); it gets the patched object
//! or a [`PatchError`] whose [`PatchError::http_status`] it turns into a `Status`. This module
//! does no IO and keeps no state.
//!
//! Semantics, following kube-apiserver
//! (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`, `applyJSPatch` and
//! `strategicPatchObject`):
//!
//! - `application/json-patch+json`: RFC 6902 through the `json-patch` crate. At most
//!   [`MAX_JSON_PATCH_OPERATIONS`] operations (413 above). A body that does not decode as
//!   operations is a 400; an operation that fails (a `test` that does not match, a `remove`
//!   or `replace` of a missing path) is a 422, as upstream answers every apply failure.
//! - `application/merge-patch+json`: RFC 7386 through the `json-patch` crate; `null`
//!   deletes. Upstream replaces the whole object with a non-object patch and then fails to
//!   decode it; Bosun answers 400 straight away.
//! - `application/strategic-merge-patch+json`: the Kubernetes strategic merge patch
//!   ([`strategic_merge`], a port of `k8s.io/apimachinery/pkg/util/strategicpatch`),
//!   driven by the per-kind patch metadata of [`schema_for`]. Maps merge and `null`
//!   deletes; lists tagged `patchStrategy:"merge"` merge by their `patchMergeKey` (or as a
//!   set for scalars) and other lists are replaced; the directives `$patch`
//!   (`replace`/`delete`), `$retainKeys`, `$setElementOrder/<field>` and
//!   `$deleteFromPrimitiveList/<field>` are applied and never stored. This is what
//!   `kubectl apply` (client-side), `kubectl patch`, `label`, `annotate` and `scale` send.
//!
//! Error classes (see [`PatchError`]): the patch document is malformed → 400 BadRequest;
//! the patch cannot be applied to this object → 422 Invalid; too many JSON patch
//! operations → 413. Upstream answers some strategic merge failures with a 500 carrying the
//! Go error text (for instance a list element without its merge key); Bosun answers 400
//! when the patch alone is at fault and 422 when it clashes with the stored object.
//!
//! `application/apply-patch+yaml` ([`PatchType::Apply`]) is recognised here but is not a
//! patch of the stored object: the API server hands it to [`crate::fieldmanager::apply`].
//!
//! Layout: `schema` holds the per-kind patch metadata, `strategic` the merge algorithm.

mod schema;
mod strategic;

use std::fmt;

use serde_json::Value;

pub use schema::{FieldSchema, PatchSchema, PatchStrategy, schema_for};
pub use strategic::strategic_merge;

/// Upstream `maxJSONPatchOperations`: the most operations one JSON patch may carry.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch formats a PATCH request body can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 JSON patch, `application/json-patch+json`.
    Json,
    /// RFC 7386 JSON merge patch, `application/merge-patch+json`.
    Merge,
    /// Kubernetes strategic merge patch, `application/strategic-merge-patch+json`.
    Strategic,
    /// Server-side apply, `application/apply-patch+yaml`: the body is a configuration
    /// (YAML or JSON), handled by [`crate::fieldmanager::apply`], not by [`apply_patch`].
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value, ignoring parameters such as
    /// `;charset=utf-8` and letter case. `None` for anything else (the server answers 415).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct.split(';').next().unwrap_or_default().trim();
        [
            PatchType::Json,
            PatchType::Merge,
            PatchType::Strategic,
            PatchType::Apply,
        ]
        .into_iter()
        .find(|patch_type| media_type.eq_ignore_ascii_case(patch_type.content_type()))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

impl fmt::Display for PatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatchType::Json => "JSON",
            PatchType::Merge => "JSON merge",
            PatchType::Strategic => "strategic merge",
            PatchType::Apply => "apply",
        })
    }
}

/// Why a patch was refused. [`PatchError::http_status`] gives the answer's status code.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON. 400.
    #[error("the {patch_type} patch is not valid JSON: {source}")]
    InvalidJson {
        patch_type: PatchType,
        source: serde_json::Error,
    },
    /// The body is JSON but not a patch of its type: not an array of operations, not an
    /// object, an unknown operation or directive, a missing merge key. 400.
    #[error("malformed {patch_type} patch: {reason}")]
    Malformed {
        patch_type: PatchType,
        reason: String,
    },
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations. 413.
    #[error(
        "the allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {count}"
    )]
    TooManyOperations { count: usize },
    /// A JSON patch operation failed on this object: a `test` did not match, a path to
    /// remove or replace is missing. 422, as upstream.
    #[error("the JSON patch cannot be applied: {0}")]
    JsonPatchFailed(#[source] json_patch::PatchError),
    /// A strategic merge patch clashes with the stored object (lists of lists, element
    /// types that differ, stored list elements without their merge key). 422.
    #[error("the strategic merge patch cannot be applied at {path}: {reason}")]
    Unprocessable { path: String, reason: String },
}

impl PatchError {
    /// Whether the server answers 400 BadRequest: the patch document itself is malformed.
    pub fn is_bad_request(&self) -> bool {
        self.http_status() == 400
    }

    /// The HTTP status kube-apiserver answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::InvalidJson { .. } | PatchError::Malformed { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::JsonPatchFailed(_) | PatchError::Unprocessable { .. } => 422,
        }
    }

    /// The `reason` of the Kubernetes `Status` for this error.
    pub fn status_reason(&self) -> &'static str {
        match self.http_status() {
            400 => "BadRequest",
            413 => "RequestEntityTooLarge",
            _ => "Invalid",
        }
    }
}

/// Applies `patch` (the request body) of `patch_type` to `original`, an object of `kind`
/// in `api_version`, and returns the patched object. `original` is not modified.
pub fn apply_patch(
    patch_type: PatchType,
    original: &Value,
    patch: &[u8],
    api_version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|source| PatchError::InvalidJson { patch_type, source })?;
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed {
                    patch_type,
                    reason: "a merge patch must be a JSON object".to_owned(),
                });
            }
            let mut patched = original.clone();
            json_patch::merge(&mut patched, &patch);
            Ok(patched)
        }
        PatchType::Strategic => strategic_merge(original, &patch, schema_for(api_version, kind)),
        PatchType::Apply => Err(PatchError::Malformed {
            patch_type,
            reason: "an apply patch is a configuration for the field manager".to_owned(),
        }),
    }
}

fn apply_json_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let malformed = |reason: String| PatchError::Malformed {
        patch_type: PatchType::Json,
        reason,
    };
    let Value::Array(operations) = &patch else {
        return Err(malformed(
            "a JSON patch must be an array of operations".to_owned(),
        ));
    };
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            count: operations.len(),
        });
    }
    let operations: json_patch::Patch =
        serde_json::from_value(patch).map_err(|err| malformed(err.to_string()))?;
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &operations).map_err(PatchError::JsonPatchFailed)?;
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Expected outcome: the patched object, or the HTTP status of the error.
    enum Want {
        Doc(Value),
        Status(u16),
    }
    use Want::{Doc, Status};

    struct Case {
        name: &'static str,
        patch_type: PatchType,
        api_version: &'static str,
        kind: &'static str,
        original: Value,
        patch: String,
        want: Want,
    }

    fn case(
        name: &'static str,
        patch_type: PatchType,
        original: Value,
        patch: &str,
        want: Want,
    ) -> Case {
        Case {
            name,
            patch_type,
            api_version: "v1",
            kind: "Pod",
            original,
            patch: patch.to_owned(),
            want,
        }
    }

    fn check(cases: Vec<Case>) {
        for c in cases {
            let got = apply_patch(
                c.patch_type,
                &c.original,
                c.patch.as_bytes(),
                c.api_version,
                c.kind,
            );
            match (got, c.want) {
                (Ok(got), Doc(want)) => assert_eq!(got, want, "case {:?}", c.name),
                (Err(err), Status(status)) => {
                    assert_eq!(err.http_status(), status, "case {:?}: {err}", c.name);
                    assert_eq!(err.is_bad_request(), status == 400, "case {:?}", c.name);
                }
                (Ok(got), Status(status)) => {
                    panic!("case {:?}: want status {status}, got {got}", c.name)
                }
                (Err(err), Doc(want)) => panic!("case {:?}: want {want}, got {err}", c.name),
            }
        }
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
                         "finalizers": ["a/x", "b/y"]},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}
        })
    }

    fn with(mut doc: Value, pointer: &str, value: Value) -> Value {
        *doc.pointer_mut(pointer).expect("pointer exists") = value;
        doc
    }

    fn without(mut doc: Value, parent: &str, key: &str) -> Value {
        let map = doc
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("object");
        map.remove(key).expect("key exists");
        doc
    }

    #[test]
    fn content_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            ("application/merge-patch+json", Some(PatchType::Merge)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::Strategic),
            ),
            (
                "application/strategic-merge-patch+json; charset=utf-8",
                Some(PatchType::Strategic),
            ),
            ("Application/Merge-Patch+JSON", Some(PatchType::Merge)),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            ("application/json", None),
            ("", None),
        ];
        for (ct, want) in cases {
            assert_eq!(PatchType::from_content_type(ct), want, "{ct:?}");
        }
    }

    #[test]
    fn json_patch() {
        use PatchType::Json;
        check(vec![
            case(
                "add a label",
                Json,
                pod(),
                r#"[{"op":"add","path":"/metadata/labels/env","value":"prod"}]"#,
                Doc(with(
                    pod(),
                    "/metadata/labels",
                    json!({"app": "web", "tier": "fe", "env": "prod"}),
                )),
            ),
            case(
                "remove a label",
                Json,
                pod(),
                r#"[{"op":"remove","path":"/metadata/labels/tier"}]"#,
                Doc(without(pod(), "/metadata/labels", "tier")),
            ),
            case(
                "replace an image after a passing test",
                Json,
                pod(),
                r#"[{"op":"test","path":"/spec/containers/0/image","value":"nginx:1.25"},
                    {"op":"replace","path":"/spec/containers/0/image","value":"nginx:1.27"}]"#,
                Doc(with(pod(), "/spec/containers/0/image", json!("nginx:1.27"))),
            ),
            case(
                "failed test",
                Json,
                pod(),
                r#"[{"op":"test","path":"/metadata/name","value":"q"}]"#,
                Status(422),
            ),
            case(
                "remove a missing path",
                Json,
                pod(),
                r#"[{"op":"remove","path":"/metadata/annotations/x"}]"#,
                Status(422),
            ),
            case(
                "replace a missing path",
                Json,
                pod(),
                r#"[{"op":"replace","path":"/spec/nodeName","value":"n1"}]"#,
                Status(422),
            ),
            case("not JSON", Json, pod(), "[{", Status(400)),
            case("not an array", Json, pod(), r#"{"op":"add"}"#, Status(400)),
            case(
                "unknown op",
                Json,
                pod(),
                r#"[{"op":"frobnicate","path":"/a"}]"#,
                Status(400),
            ),
            case(
                "path without leading slash",
                Json,
                pod(),
                r#"[{"op":"add","path":"metadata","value":1}]"#,
                Status(400),
            ),
            case(
                "add without value",
                Json,
                pod(),
                r#"[{"op":"add","path":"/a"}]"#,
                Status(400),
            ),
        ]);
    }

    #[test]
    fn too_many_json_patch_operations() {
        let op = r#"{"op":"test","path":"/kind","value":"Pod"}"#;
        let at_limit = format!("[{}]", vec![op; MAX_JSON_PATCH_OPERATIONS].join(","));
        let over_limit = format!("[{}]", vec![op; MAX_JSON_PATCH_OPERATIONS + 1].join(","));
        check(vec![
            case(
                "at the limit",
                PatchType::Json,
                pod(),
                &at_limit,
                Doc(pod()),
            ),
            case(
                "over the limit",
                PatchType::Json,
                pod(),
                &over_limit,
                Status(413),
            ),
        ]);
    }

    #[test]
    fn merge_patch() {
        use PatchType::Merge;
        check(vec![
            case(
                // kubectl label pod p env=prod
                "label",
                Merge,
                pod(),
                r#"{"metadata":{"labels":{"env":"prod"}}}"#,
                Doc(with(
                    pod(),
                    "/metadata/labels",
                    json!({"app": "web", "tier": "fe", "env": "prod"}),
                )),
            ),
            case(
                // kubectl label pod p tier-  /  kubectl annotate pod p a-
                "null deletes a label and a missing annotation is a no-op",
                Merge,
                pod(),
                r#"{"metadata":{"labels":{"tier":null},"annotations":{"a":null}}}"#,
                // RFC 7386 creates the object a patch descends into, even only to delete in it.
                Doc(with(
                    with(pod(), "/metadata/labels", json!({"app": "web"})),
                    "/metadata",
                    json!({"name": "p", "namespace": "default", "labels": {"app": "web"},
                           "finalizers": ["a/x", "b/y"], "annotations": {}}),
                )),
            ),
            case(
                "null deletes a nested object",
                Merge,
                pod(),
                r#"{"spec":null}"#,
                Doc(without(pod(), "", "spec")),
            ),
            case(
                "lists are replaced whole",
                Merge,
                pod(),
                r#"{"metadata":{"finalizers":["c/z"]}}"#,
                Doc(with(pod(), "/metadata/finalizers", json!(["c/z"]))),
            ),
            case("not JSON", Merge, pod(), "{", Status(400)),
            case("not an object", Merge, pod(), "[1]", Status(400)),
            case("a scalar", Merge, pod(), "5", Status(400)),
        ]);
    }

    #[test]
    fn strategic_merge_patch_on_pods() {
        use PatchType::Strategic;
        check(vec![
            case(
                "label",
                Strategic,
                pod(),
                r#"{"metadata":{"labels":{"env":"prod","tier":null}}}"#,
                Doc(with(
                    pod(),
                    "/metadata/labels",
                    json!({"app": "web", "env": "prod"}),
                )),
            ),
            case(
                "finalizers are unioned",
                Strategic,
                pod(),
                r#"{"metadata":{"finalizers":["b/y","c/z"]}}"#,
                Doc(with(
                    pod(),
                    "/metadata/finalizers",
                    json!(["a/x", "b/y", "c/z"]),
                )),
            ),
            case(
                "finalizer removed",
                Strategic,
                pod(),
                r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a/x"]}}"#,
                Doc(with(pod(), "/metadata/finalizers", json!(["b/y"]))),
            ),
            case(
                "container merged by name",
                Strategic,
                pod(),
                r#"{"spec":{"containers":[{"name":"c","image":"nginx:1.27","ports":[{"containerPort":80}]}]}}"#,
                Doc(with(
                    pod(),
                    "/spec/containers",
                    json!([{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]),
                )),
            ),
            case("not JSON", Strategic, pod(), "{", Status(400)),
            case("not an object", Strategic, pod(), "[]", Status(400)),
            case(
                "bad directive",
                Strategic,
                pod(),
                r#"{"metadata":{"$patch":"frobnicate"}}"#,
                Status(400),
            ),
            case(
                "container without its merge key",
                Strategic,
                pod(),
                r#"{"spec":{"containers":[{"image":"x"}]}}"#,
                Status(400),
            ),
        ]);
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {
                    "deployment.kubernetes.io/revision": "1",
                    "kubectl.kubernetes.io/last-applied-configuration": "v1"
                }
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                            {"name": "sidecar", "image": "busybox", "args": ["sleep", "inf"]}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "restartPolicy": "Always"
                    }
                }
            },
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    /// Patches shaped as `kubectl apply` (client-side, CreateThreeWayMergePatch) sends them.
    #[test]
    fn kubectl_apply_three_way_patches_on_a_deployment() {
        use PatchType::Strategic;
        let apply = |name, patch: &str, want| Case {
            api_version: "apps/v1",
            kind: "Deployment",
            ..case(name, Strategic, deployment(), patch, want)
        };
        let containers = "/spec/template/spec/containers";
        check(vec![
            apply(
                "image change with $setElementOrder keeps order and server fields",
                r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"v2"}},
                    "spec":{"template":{"spec":{
                        "$setElementOrder/containers":[{"name":"web"},{"name":"sidecar"}],
                        "containers":[{"image":"nginx:1.27","name":"web"}]}}}}"#,
                Doc(with(
                    with(
                        deployment(),
                        &format!("{containers}/0/image"),
                        json!("nginx:1.27"),
                    ),
                    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
                    json!("v2"),
                )),
            ),
            apply(
                "container removed, env reordered and one env var deleted",
                r#"{"spec":{"template":{"spec":{
                        "$setElementOrder/containers":[{"name":"web"}],
                        "containers":[
                            {"$setElementOrder/env":[{"name":"B"}],"name":"web",
                             "env":[{"$patch":"delete","name":"A"}]},
                            {"$patch":"delete","name":"sidecar"}]}}}}"#,
                Doc(with(
                    deployment(),
                    containers,
                    json!([{"name": "web", "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "B", "value": "2"}]}]),
                )),
            ),
            apply(
                "strategy switched to Recreate clears rollingUpdate via $retainKeys",
                r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
                Doc(with(
                    deployment(),
                    "/spec/strategy",
                    json!({"type": "Recreate"}),
                )),
            ),
            apply(
                "volume source switched via $retainKeys",
                r#"{"spec":{"template":{"spec":{
                        "$setElementOrder/volumes":[{"name":"data"}],
                        "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cfg"},"name":"data"}]}}}}"#,
                Doc(with(
                    deployment(),
                    "/spec/template/spec/volumes",
                    json!([{"name": "data", "configMap": {"name": "cfg"}}]),
                )),
            ),
            apply(
                "container added at the position $setElementOrder gives",
                r#"{"spec":{"template":{"spec":{
                        "$setElementOrder/containers":[{"name":"web"},{"name":"log"},{"name":"sidecar"}],
                        "containers":[{"name":"log","image":"fluentbit"}]}}}}"#,
                Doc(with(
                    deployment(),
                    containers,
                    json!([
                        deployment().pointer(&format!("{containers}/0")).cloned(),
                        {"name": "log", "image": "fluentbit"},
                        deployment().pointer(&format!("{containers}/1")).cloned()
                    ]),
                )),
            ),
            apply(
                // kubectl scale sends a merge patch to /scale; a strategic one on the object
                // must work the same.
                "replicas",
                r#"{"spec":{"replicas":5}}"#,
                Doc(with(deployment(), "/spec/replicas", json!(5))),
            ),
            apply(
                "status condition merged by type",
                r#"{"status":{"conditions":[{"type":"Progressing","status":"True"}]}}"#,
                Doc(with(
                    deployment(),
                    "/status/conditions",
                    json!([{"type": "Progressing", "status": "True"}, {"type": "Available", "status": "True"}]),
                )),
            ),
        ]);
    }

    #[test]
    fn unknown_kinds_replace_lists() {
        let original =
            json!({"metadata": {"finalizers": ["a"]}, "spec": {"items": [{"name": "x", "v": 1}]}});
        let patch = br#"{"metadata":{"finalizers":["b"]},"spec":{"items":[{"name":"x"}]}}"#;
        let got = apply_patch(
            PatchType::Strategic,
            &original,
            patch,
            "example.com/v1",
            "Widget",
        )
        .expect("patch applies");
        assert_eq!(
            got,
            json!({"metadata": {"finalizers": ["b"]}, "spec": {"items": [{"name": "x"}]}})
        );
    }

    #[test]
    fn status_reasons() {
        let bad = apply_patch(PatchType::Json, &pod(), b"{", "v1", "Pod").expect_err("bad json");
        assert_eq!(
            (bad.http_status(), bad.status_reason()),
            (400, "BadRequest")
        );
        let failed = apply_patch(
            PatchType::Json,
            &pod(),
            br#"[{"op":"test","path":"/kind","value":"Node"}]"#,
            "v1",
            "Pod",
        )
        .expect_err("test fails");
        assert_eq!(
            (failed.http_status(), failed.status_reason()),
            (422, "Invalid")
        );
        let large = PatchError::TooManyOperations {
            count: MAX_JSON_PATCH_OPERATIONS + 1,
        };
        assert_eq!(large.status_reason(), "RequestEntityTooLarge");
    }
}
