//! Kubernetes' protobuf encoding of the kinds Bosun serves (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl's generators (`kubectl create namespace|configmap|secret|deployment|service|
//! priorityclass`) POST protobuf bodies. This module turns such a body into the JSON
//! the same object has in Kubernetes JSON (k8s-openapi's serde form), and back.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope
//! {TypeMeta typeMeta = 1 {apiVersion = 1; kind = 2}; bytes raw = 2; string
//! contentEncoding = 3; string contentType = 4}; `raw` holds the object's message.
//!
//! Layout:
//! - `wire`: varints, tags, length-delimited and fixed-width values.
//! - `schema`: the message tables (field numbers, JSON names, types) transcribed from
//!   upstream's `generated.proto` files, in a compact text form parsed once.
//! - `codec`: schema-driven message <-> JSON object translation.
//! - `text`: base64 and RFC 3339, the JSON forms of bytes and times.
//!
//! JSON forms follow Go's `encoding/json` on the upstream types:
//! - meta/v1 `Time` is an RFC 3339 string in UTC with whole seconds; Go's zero time,
//!   which upstream writes as an empty message, is `null` (kubectl's
//!   `"creationTimestamp": null`); `MicroTime` likewise with six fractional digits;
//! - `resource.Quantity` is a bare string, `intstr.IntOrString` a bare number or string,
//!   `FieldsV1` and `RawExtension` embedded JSON, `bytes` fields base64;
//! - upstream's marshallers write every non-pointer scalar, even when zero; decoding
//!   drops the zero exactly where Go's JSON would (`omitempty` on a non-pointer), and
//!   keeps every other value that was on the wire, so a set `replicas: 0` or a `false`
//!   pointer bool survives;
//! - a message field that was on the wire is written even when empty (`"status": {}`).
//!
//! Invariants: decoding never panics on any input (a truncation loop in the tests checks
//! it); no data is silently dropped: unknown field numbers in a known message are skipped
//! as upstream's generated unmarshallers do, but a JSON key the schema does not know is
//! an encoding error, and a message the schema leaves out is [`ProtoError::Unsupported`].
//! The schema is not recursive, so nesting depth is bounded by it; embedded JSON is
//! bounded by serde_json's recursion limit.
//!
//! ```
//! use bosun_api::protobuf;
//! let ns = serde_json::json!({
//!     "apiVersion": "v1", "kind": "Namespace",
//!     "metadata": {"name": "team", "creationTimestamp": null}, "spec": {}, "status": {}
//! });
//! let body = protobuf::encode(&ns).unwrap();
//! assert!(body.starts_with(b"k8s\0"));
//! assert_eq!(protobuf::decode(&body).unwrap(), ns);
//! ```

mod codec;
mod schema;
mod text;
mod wire;

use serde_json::{Map, Value};

use wire::{Reader, WireType, Writer};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a body could not be decoded, or an object encoded. Every variant is the client's
/// fault and maps to HTTP 400 (`BadRequest`), except [`ProtoError::UnknownKind`] and
/// [`ProtoError::Unsupported`], which mean Bosun cannot read this kind or field in
/// protobuf (415 `UnsupportedMediaType` tells the client to retry in JSON).
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("body does not start with the Kubernetes protobuf magic \"k8s\\0\"")]
    MissingMagic,
    #[error("truncated protobuf: a {what} runs past the end of its buffer")]
    Truncated { what: &'static str },
    #[error("malformed protobuf: {reason}")]
    Malformed { reason: String },
    #[error("protobuf envelope: {reason}")]
    Envelope { reason: String },
    #[error("kind {kind:?} of apiVersion {api_version:?} is not supported in protobuf")]
    UnknownKind { api_version: String, kind: String },
    #[error("{message}.{field}: this message is not supported in protobuf")]
    Unsupported { message: String, field: String },
    #[error("{message}.{field}: {reason}")]
    InvalidValue {
        message: String,
        field: String,
        reason: String,
    },
    #[error("{message}: unknown JSON field {field:?}")]
    UnknownField { message: String, field: String },
}

/// The kinds served in protobuf: (apiVersion, kind, message name in the schema).
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "Namespace"),
    ("v1", "Node", "Node"),
    ("v1", "Pod", "Pod"),
    ("v1", "Service", "Service"),
    ("v1", "Endpoints", "Endpoints"),
    ("v1", "ConfigMap", "ConfigMap"),
    ("v1", "Secret", "Secret"),
    ("v1", "Event", "Event"),
    ("v1", "Binding", "Binding"),
    ("apps/v1", "Deployment", "Deployment"),
    ("apps/v1", "ReplicaSet", "ReplicaSet"),
    ("discovery.k8s.io/v1", "EndpointSlice", "EndpointSlice"),
    ("events.k8s.io/v1", "Event", "events.Event"),
    ("coordination.k8s.io/v1", "Lease", "Lease"),
    ("scheduling.k8s.io/v1", "PriorityClass", "PriorityClass"),
    ("meta.k8s.io/v1", "DeleteOptions", "DeleteOptions"),
    ("policy/v1", "Eviction", "Eviction"),
    ("autoscaling/v1", "Scale", "Scale"),
];

/// The schema message for a kind. DeleteOptions is registered in every group version
/// upstream (`metav1.AddToGroupVersion`), so clients may send it under any apiVersion.
fn message_for(api_version: &str, kind: &str) -> Result<&'static schema::Message, ProtoError> {
    let name = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, name)| *name)
        .or_else(|| (kind == "DeleteOptions").then_some("DeleteOptions"))
        .ok_or_else(|| ProtoError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    Ok(codec::lookup(name).expect("every kind's message is in the schema (checked by tests)"))
}

/// The parts of a `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: Option<&'a [u8]>,
}

fn read_string(
    reader: &mut Reader<'_>,
    wire_type: WireType,
    what: &str,
) -> Result<String, ProtoError> {
    if wire_type != WireType::Len {
        return Err(ProtoError::Envelope {
            reason: format!("{what} has wire type {wire_type:?}"),
        });
    }
    String::from_utf8(reader.bytes()?.to_vec()).map_err(|_| ProtoError::Envelope {
        reason: format!("{what} is not valid UTF-8"),
    })
}

fn read_envelope(body: &[u8]) -> Result<Envelope<'_>, ProtoError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::MissingMagic)?;
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: None,
    };
    let mut reader = Reader::new(rest);
    while !reader.is_empty() {
        match reader.tag()? {
            (1, WireType::Len) => {
                let mut type_meta = Reader::new(reader.bytes()?);
                while !type_meta.is_empty() {
                    match type_meta.tag()? {
                        (1, wt) => {
                            envelope.api_version =
                                read_string(&mut type_meta, wt, "typeMeta.apiVersion")?
                        }
                        (2, wt) => {
                            envelope.kind = read_string(&mut type_meta, wt, "typeMeta.kind")?
                        }
                        (_, wt) => type_meta.skip(wt)?,
                    }
                }
            }
            (2, WireType::Len) => envelope.raw = Some(reader.bytes()?),
            (3, wt) => {
                let encoding = read_string(&mut reader, wt, "contentEncoding")?;
                if !encoding.is_empty() {
                    return Err(ProtoError::Envelope {
                        reason: format!("content encoding {encoding:?} is not supported"),
                    });
                }
            }
            (4, wt) => {
                let content_type = read_string(&mut reader, wt, "contentType")?;
                if !content_type.is_empty() && content_type != MEDIA_TYPE {
                    return Err(ProtoError::Envelope {
                        reason: format!("content type {content_type:?} is not protobuf"),
                    });
                }
            }
            (num @ (1 | 2), wt) => {
                return Err(ProtoError::Envelope {
                    reason: format!("field {num} has wire type {wt:?}"),
                });
            }
            (_, wt) => reader.skip(wt)?,
        }
    }
    Ok(envelope)
}

/// Decodes a Kubernetes protobuf body (the 4-byte magic "k8s\0" followed by a runtime.Unknown
/// envelope {TypeMeta typeMeta = 1 {apiVersion = 1, kind = 2}; bytes raw = 2; string contentEncoding = 3; string contentType = 4})
/// into the object's JSON, exactly as the same object would be written in Kubernetes JSON (k8s-openapi's serde form), with apiVersion and kind set.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = read_envelope(body)?;
    let msg = message_for(&envelope.api_version, &envelope.kind)?;
    // Upstream always writes raw, even for an empty object; a body without it is cut short.
    let raw = envelope.raw.ok_or_else(|| ProtoError::Envelope {
        reason: "no raw object".to_string(),
    })?;
    let mut obj = Map::new();
    codec::decode_message(msg, raw, &mut obj)?;
    obj.insert(
        "apiVersion".to_string(),
        Value::String(envelope.api_version),
    );
    obj.insert("kind".to_string(), Value::String(envelope.kind));
    Ok(Value::Object(obj))
}

/// The inverse, for the same kinds (used by tests; the server may use it later for responses).
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let top = |reason: &str| ProtoError::InvalidValue {
        message: "object".to_string(),
        field: "-".to_string(),
        reason: reason.to_string(),
    };
    let Value::Object(map) = obj else {
        return Err(top("not a JSON object"));
    };
    let (Some(Value::String(api_version)), Some(Value::String(kind))) =
        (map.get("apiVersion"), map.get("kind"))
    else {
        return Err(top("apiVersion and kind must be strings"));
    };
    let msg = message_for(api_version, kind)?;
    let mut raw = Writer::default();
    codec::encode_message(msg, map, &["apiVersion", "kind"], &mut raw)?;

    let mut type_meta = Writer::default();
    type_meta.bytes_field(1, api_version.as_bytes());
    type_meta.bytes_field(2, kind.as_bytes());
    let mut out = Writer {
        buf: MAGIC.to_vec(),
    };
    out.bytes_field(1, &type_meta.buf);
    out.bytes_field(2, &raw.buf);
    // Upstream writes the empty contentEncoding and contentType too.
    out.bytes_field(3, &[]);
    out.bytes_field(4, &[]);
    Ok(out.buf)
}

#[cfg(test)]
mod tests;
