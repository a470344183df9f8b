//! Errors: one umbrella [`Error`] for everything a request can fail with, and
//! [`ConfigError`] for building a [`crate::Config`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a non-2xx code. The body was decoded as a
    /// `metav1.Status`; when it was not one, a Status was synthesised from the
    /// HTTP code and the (truncated) body.
    #[error("api error {}: {} ({})", .0.code.unwrap_or_default(), .0.reason.as_deref().unwrap_or(""), .0.message.as_deref().unwrap_or(""))]
    Api(Box<Status>),
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The request did not complete within the configured timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// A response body was larger than the bound for its kind of request.
    #[error("response body larger than {limit_bytes} bytes")]
    BodyTooLarge {
        /// The bound that was exceeded.
        limit_bytes: usize,
    },
    /// A response body (or one watch line) was not the JSON we expected.
    #[error("decode error ({context}): {source}")]
    Decode {
        /// What was being decoded.
        context: &'static str,
        /// The underlying serde error.
        source: serde_json::Error,
    },
    /// A request body could not be encoded.
    #[error("encode error: {0}")]
    Encode(serde_json::Error),
    /// The request itself is invalid (empty name, namespaced kind without a
    /// namespace, ...); nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Error {
    /// The decoded Status of an API error, if this is one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    /// The HTTP code of an API error.
    pub fn code(&self) -> Option<u16> {
        self.status()
            .and_then(|s| s.code)
            .and_then(|c| u16::try_from(c).ok())
    }

    /// The Status reason of an API error (`NotFound`, `Conflict`, `Expired`, ...).
    pub fn reason(&self) -> Option<&str> {
        self.status().and_then(|s| s.reason.as_deref())
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// 409 Conflict or AlreadyExists.
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// 410 Gone / reason Expired: the resource version is too old; relist.
    pub fn is_gone(&self) -> bool {
        self.status().is_some_and(status_is_gone)
    }
}

/// True when a Status says "the resource version you asked for is gone" (HTTP 410,
/// reason `Expired` or `Gone`), the signal for a reflector to relist.
pub fn status_is_gone(s: &Status) -> bool {
    s.code == Some(410) || matches!(s.reason.as_deref(), Some("Expired" | "Gone"))
}

/// Building a [`crate::Config`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named by the configuration could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The kubeconfig is not valid YAML of the expected shape.
    #[error("invalid kubeconfig: {0}")]
    Kubeconfig(String),
    /// A named context, cluster or user is missing.
    #[error("kubeconfig has no {kind} named {name:?}")]
    Missing {
        /// `context`, `cluster` or `user`.
        kind: &'static str,
        /// The name looked up.
        name: String,
    },
    /// The server URL is not an absolute http(s) URL.
    #[error("invalid server url {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Base64 data in the kubeconfig did not decode.
    #[error("invalid base64 in {field}: {source}")]
    Base64 {
        /// The field.
        field: &'static str,
        /// The decode error.
        source: base64::DecodeError,
    },
    /// A PEM certificate or key is invalid, or the TLS setup was rejected.
    #[error("tls: {0}")]
    Tls(String),
    /// An environment variable needed (in-cluster config, home directory) is unset.
    #[error("environment variable {0} not set")]
    Env(&'static str),
}
