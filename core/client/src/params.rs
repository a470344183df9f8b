//! Request parameters: list, watch, delete and patch options, and their encoding
//! into query strings and bodies as kube-apiserver expects them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Preconditions};
use serde_json::Value;

/// How `resourceVersion` of a list is interpreted (`resourceVersionMatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionMatch {
    /// Not older than the given version.
    NotOlderThan,
    /// Exactly the given version.
    Exact,
}

/// Options of a list request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`, e.g. `spec.nodeName=node-1`.
    pub field_selector: Option<String>,
    /// Page size (`limit`); `None` asks for everything in one response.
    pub limit: Option<u32>,
    /// `continue` token of the previous page.
    pub continue_token: Option<String>,
    /// `resourceVersion`; unset means a consistent (quorum) read.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub version_match: Option<VersionMatch>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u32>,
}

impl ListParams {
    /// Sets the label selector.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Sets the field selector.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub(crate) fn append_query(&self, q: &mut Query) {
        q.opt("labelSelector", self.label_selector.as_deref());
        q.opt("fieldSelector", self.field_selector.as_deref());
        if let Some(limit) = self.limit {
            q.push("limit", &limit.to_string());
        }
        q.opt("continue", self.continue_token.as_deref());
        q.opt("resourceVersion", self.resource_version.as_deref());
        if let Some(m) = self.version_match {
            q.push(
                "resourceVersionMatch",
                match m {
                    VersionMatch::NotOlderThan => "NotOlderThan",
                    VersionMatch::Exact => "Exact",
                },
            );
        }
        if let Some(t) = self.timeout_seconds {
            q.push("timeoutSeconds", &t.to_string());
        }
    }
}

/// Options of a watch request. The resource version to start from is a
/// separate argument of [`crate::Api::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `timeoutSeconds`: the server ends the watch after this long.
    pub timeout_seconds: Option<u32>,
    /// `allowWatchBookmarks` (default true).
    pub bookmarks: bool,
}

impl Default for WatchParams {
    fn default() -> Self {
        WatchParams {
            label_selector: None,
            field_selector: None,
            timeout_seconds: Some(290),
            bookmarks: true,
        }
    }
}

impl WatchParams {
    /// The selectors of a list, carried over to the watch that follows it.
    pub fn from_list(lp: &ListParams) -> WatchParams {
        WatchParams {
            label_selector: lp.label_selector.clone(),
            field_selector: lp.field_selector.clone(),
            ..WatchParams::default()
        }
    }

    /// Sets `timeoutSeconds`.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    pub(crate) fn append_query(&self, q: &mut Query, resource_version: &str) {
        q.push("watch", "1");
        q.opt("labelSelector", self.label_selector.as_deref());
        q.opt("fieldSelector", self.field_selector.as_deref());
        if !resource_version.is_empty() {
            q.push("resourceVersion", resource_version);
        }
        if let Some(t) = self.timeout_seconds {
            q.push("timeoutSeconds", &t.to_string());
        }
        if self.bookmarks {
            q.push("allowWatchBookmarks", "true");
        }
    }
}

/// Cascading deletion policy (`propagationPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropagationPolicy {
    /// Leave dependents.
    Orphan,
    /// Delete dependents in the background.
    Background,
    /// Delete dependents before the owner.
    Foreground,
}

/// Options of a delete: sent as a `DeleteOptions` body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteParams {
    /// `gracePeriodSeconds` (0 deletes at once).
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`.
    pub propagation_policy: Option<PropagationPolicy>,
    /// Delete only if the object still has this UID / resource version.
    pub preconditions: Option<Preconditions>,
    /// `dryRun: [All]`.
    pub dry_run: bool,
}

impl DeleteParams {
    /// Sets the grace period.
    pub fn grace_period(mut self, seconds: i64) -> Self {
        self.grace_period_seconds = Some(seconds);
        self
    }

    /// Sets the propagation policy.
    pub fn propagation(mut self, policy: PropagationPolicy) -> Self {
        self.propagation_policy = Some(policy);
        self
    }

    /// Requires the object to have this UID.
    pub fn precondition_uid(mut self, uid: &str) -> Self {
        self.preconditions.get_or_insert_with(Default::default).uid = Some(uid.to_string());
        self
    }

    /// Requires the object to be at this resource version.
    pub fn precondition_resource_version(mut self, rv: &str) -> Self {
        self.preconditions
            .get_or_insert_with(Default::default)
            .resource_version = Some(rv.to_string());
        self
    }

    /// The `DeleteOptions` body.
    pub fn to_options(&self) -> DeleteOptions {
        DeleteOptions {
            api_version: Some("v1".to_string()),
            kind: Some("DeleteOptions".to_string()),
            grace_period_seconds: self.grace_period_seconds,
            propagation_policy: self.propagation_policy.map(|p| {
                match p {
                    PropagationPolicy::Orphan => "Orphan",
                    PropagationPolicy::Background => "Background",
                    PropagationPolicy::Foreground => "Foreground",
                }
                .to_string()
            }),
            preconditions: self.preconditions.clone(),
            dry_run: self.dry_run.then(|| vec!["All".to_string()]),
            ..DeleteOptions::default()
        }
    }
}

/// A patch body; the variant chooses the content type.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// RFC 6902 JSON patch (an array of operations).
    Json(Value),
    /// RFC 7386 JSON merge patch.
    Merge(Value),
    /// Kubernetes strategic merge patch (built-in kinds only).
    Strategic(Value),
}

impl Patch {
    /// The `Content-Type` header for this patch.
    pub fn content_type(&self) -> &'static str {
        match self {
            Patch::Json(_) => "application/json-patch+json",
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
        }
    }

    /// The patch document.
    pub fn body(&self) -> &Value {
        match self {
            Patch::Json(v) | Patch::Merge(v) | Patch::Strategic(v) => v,
        }
    }
}

/// A query string under construction, percent-encoding keys and values.
#[derive(Debug, Default)]
pub(crate) struct Query(String);

impl Query {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        encode_into(&mut self.0, key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }

    pub(crate) fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.push(key, v);
        }
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let lp = ListParams::default()
            .labels("app in (a,b),tier!=db")
            .fields("spec.nodeName=node-1")
            .limit(500);
        let mut q = Query::default();
        lp.append_query(&mut q);
        assert_eq!(
            q.into_string(),
            "?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb&fieldSelector=spec.nodeName%3Dnode-1&limit=500"
        );
        let mut q = Query::default();
        WatchParams::default()
            .timeout(60)
            .append_query(&mut q, "42");
        assert_eq!(
            q.into_string(),
            "?watch=1&resourceVersion=42&timeoutSeconds=60&allowWatchBookmarks=true"
        );
    }

    #[test]
    fn delete_options_body() {
        let dp = DeleteParams::default()
            .grace_period(0)
            .propagation(PropagationPolicy::Foreground)
            .precondition_uid("u-1");
        let v = serde_json::to_value(dp.to_options()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground", "preconditions": {"uid": "u-1"}
            })
        );
    }

    #[test]
    fn patch_content_types() {
        let v = serde_json::json!({});
        assert_eq!(
            Patch::Json(v.clone()).content_type(),
            "application/json-patch+json"
        );
        assert_eq!(
            Patch::Merge(v.clone()).content_type(),
            "application/merge-patch+json"
        );
        assert_eq!(
            Patch::Strategic(v).content_type(),
            "application/strategic-merge-patch+json"
        );
    }
}
