//! API errors, answered as `metav1.Status` with upstream's codes, reasons and messages.

use bosun_api::validation::{FieldError, join_messages};
use serde_json::{Value, json};

use crate::storage::StorageError;

/// An error answered to an API client. Every failure path of the server ends here, so a
/// client always sees a `Status` with the HTTP code and reason kube-apiserver would send.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    /// `metav1.StatusReason` (`NotFound`, `AlreadyExists`, `Invalid`, ...).
    pub reason: &'static str,
    pub message: String,
    /// `metav1.StatusDetails`, when upstream sends one.
    pub details: Option<Value>,
}

/// `group` and `resource` of an object, for messages such as `deployments.apps "x" not found`.
#[derive(Clone, Copy, Debug)]
pub struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

fn details(gr: GroupResource<'_>, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": gr.resource });
    if !gr.group.is_empty() {
        d["group"] = json!(gr.group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            format!("{gr}")
        } else {
            format!("{gr} \"{name}\"")
        };
        ApiError {
            details: Some(details(gr, name)),
            ..Self::new(403, "Forbidden", format!("{target} is forbidden: {why}"))
        }
    }

    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        ApiError {
            details: Some(details(gr, name)),
            ..Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
        }
    }

    /// A path that names no resource: upstream answers a bare 404.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "the server was unable to respond with a content type that the client supports ({accept})"
            ),
        )
    }

    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        ApiError {
            details: Some(details(gr, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{gr} \"{name}\" already exists"),
            )
        }
    }

    pub fn conflict(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(gr, name)),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
            )
        }
    }

    /// The object changed since the client read it.
    pub fn modified(gr: GroupResource<'_>, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit_bytes}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: \
                 application/json, application/yaml, application/vnd.kubernetes.protobuf, \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
                 application/strategic-merge-patch+json"
            ),
        )
    }

    /// 422 with one cause per field error (upstream's `NewInvalid`).
    pub fn invalid(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> Self {
        let causes: Vec<Value> = errs
            .iter()
            .map(|e| json!({ "reason": e.reason(), "message": e.message(), "field": e.field }))
            .collect();
        let mut d = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        ApiError {
            details: Some(d),
            ..Self::new(422, "Invalid", join_messages(&qualified, name, errs))
        }
    }

    /// 409 for an apply that would change fields other managers own (upstream
    /// `NewApplyConflict`): one `FieldManagerConflict` cause per field.
    pub fn apply_conflict(conflicts: &[bosun_api::fieldmanager::Conflict]) -> Self {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| {
                json!({
                    "type": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.manager),
                    "field": c.path.to_string(),
                })
            })
            .collect();
        ApiError {
            details: Some(json!({ "causes": causes })),
            ..Self::new(
                409,
                "Conflict",
                bosun_api::fieldmanager::conflicts_message(conflicts),
            )
        }
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Maps a storage error for the object `name` of `gr`.
    pub fn from_storage(err: StorageError, gr: GroupResource<'_>, name: &str) -> Self {
        match err {
            StorageError::AlreadyExists { .. } => Self::already_exists(gr, name),
            StorageError::NotFound { .. } => Self::not_found(gr, name),
            StorageError::Conflict { .. } => Self::modified(gr, name),
            StorageError::Compacted {
                requested,
                compacted,
            } => Self::expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StorageError::FutureRevision { requested, current } => Self::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StorageError::TooLarge(m) => ApiError {
                ..Self::new(413, "RequestEntityTooLarge", m)
            },
            StorageError::WatcherTooSlow => Self::internal("watcher fell behind"),
            StorageError::Unavailable(m) => Self::unavailable(m),
            StorageError::Internal(m) => Self::internal(m),
        }
    }

    /// The `Status` object sent to the client.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        let pods = GroupResource {
            group: "",
            resource: "pods",
        };
        let deploys = GroupResource {
            group: "apps",
            resource: "deployments",
        };
        let cases = [
            (
                ApiError::not_found(pods, "x"),
                404,
                "NotFound",
                r#"pods "x" not found"#,
            ),
            (
                ApiError::not_found(deploys, "d"),
                404,
                "NotFound",
                r#"deployments.apps "d" not found"#,
            ),
            (
                ApiError::already_exists(pods, "x"),
                409,
                "AlreadyExists",
                r#"pods "x" already exists"#,
            ),
            (
                ApiError::modified(pods, "x"),
                409,
                "Conflict",
                r#"Operation cannot be fulfilled on pods "x": the object has been modified; please apply your changes to the latest version and try again"#,
            ),
            (
                ApiError::unauthorized(),
                401,
                "Unauthorized",
                "Unauthorized",
            ),
        ];
        for (err, code, reason, message) in cases {
            let status = err.to_status();
            assert_eq!(status["code"], code);
            assert_eq!(status["reason"], reason);
            assert_eq!(status["message"], message);
            assert_eq!(status["kind"], "Status");
            assert_eq!(status["status"], "Failure");
        }
    }

    #[test]
    fn invalid_carries_causes() {
        let errs = [FieldError::required("spec.containers", "")];
        let status = ApiError::invalid("Pod", "", "p", &errs).to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["causes"][0]["field"], "spec.containers");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(status["details"]["kind"], "Pod");
    }
}
