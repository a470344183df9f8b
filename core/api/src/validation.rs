//! Field errors and the name, label and annotation validators, as in k8s.io/apimachinery
//! (`pkg/util/validation`, `pkg/util/validation/field`, `pkg/api/validation/objectmeta.go`,
//! `pkg/apis/meta/v1/validation`).
//!
//! Validators come in two shapes, like upstream: the `is_*` functions return the list
//! of problems with a value as upstream's exact sentences (empty = valid), and the
//! `validate_*` functions return [`FieldError`]s located at a field path. A field path is
//! upstream's `field.Path` string form (`metadata.labels`, `spec.ports[0].name`).
//!
//! Invariants: messages are byte-identical to upstream's, so clients that match on them
//! keep working; [`FieldError::value`] holds the offending value already rendered the way
//! upstream prints it (strings quoted Go-style, numbers bare, lists and objects as JSON).
//! Maps are walked in key order, where upstream's order is random.
//!
//! Scope: object metadata checks follow `ValidateObjectMetaAccessor` and
//! `ValidateObjectMetaAccessorUpdate` except `managedFields`, which is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

/// Upstream's `TotalAnnotationSizeLimitB`: 256 KiB of keys plus values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;
/// Upstream's `DNS1123LabelMaxLength`.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Upstream's `DNS1123SubdomainMaxLength`.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Upstream's `LabelValueMaxLength` (also the qualified-name name-part limit).
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Upstream's `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";

const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

/// The kind of a field error (upstream's `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A required value is missing.
    Required,
    /// The value is malformed.
    Invalid,
    /// The value collides with another that must be unique.
    Duplicate,
    /// The value is not one of an enumeration.
    NotSupported,
    /// The value is well formed but not allowed here.
    Forbidden,
    /// The value is too long.
    TooLong,
    /// A list has too many items.
    TooMany,
    /// A referenced value does not exist.
    NotFound,
    /// Something went wrong that is not the user's fault.
    Internal,
}

impl FieldErrorKind {
    /// Upstream's `CauseType` string (`"FieldValueRequired"`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    /// Upstream's `ErrorType.String()`: the message's first words.
    pub fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Internal => "Internal error",
        }
    }
}

/// One field-level validation error (upstream's `field.Error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// Where, as a field path (`spec.containers[0].name`).
    pub field: String,
    /// The offending value rendered as upstream prints it (`"Foo_Bar"`, `80000`,
    /// `["a","b"]`); `None` when the message omits it.
    pub value: Option<String>,
    /// The explanation appended to the message; may be empty.
    pub detail: String,
}

/// A value that can be shown in a field error, rendered as upstream's `ErrorBody` does:
/// strings quoted Go-style (`%q`), numbers and booleans bare, anything else as JSON.
pub trait BadValue {
    /// The rendered value.
    fn render(&self) -> String;
}

impl BadValue for str {
    fn render(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for String {
    fn render(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for serde_json::Value {
    fn render(&self) -> String {
        go_json(self)
    }
}

impl<T: BadValue + ?Sized> BadValue for &T {
    fn render(&self) -> String {
        (**self).render()
    }
}

macro_rules! bare_bad_value {
    ($($t:ty),*) => {$(
        impl BadValue for $t {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
bare_bad_value!(i32, i64, u32, u64, usize, bool);

impl FieldError {
    fn new(kind: FieldErrorKind, field: String, value: Option<String>, detail: String) -> Self {
        FieldError {
            kind,
            field,
            value,
            detail,
        }
    }

    /// A required value is missing (upstream's `field.Required`).
    pub fn required(field: &str, detail: &str) -> Self {
        required_at(field, detail)
    }

    /// The string value is malformed (upstream's `field.Invalid`); the value is quoted.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        invalid_at(field, value, detail)
    }

    /// Any value is malformed (upstream's `field.Invalid` with a non-string value):
    /// numbers print bare, JSON values as JSON (`Invalid value: 80000: ...`).
    pub fn invalid_value(field: &str, value: impl BadValue, detail: &str) -> Self {
        invalid_at(field, value, detail)
    }

    /// The value must be unique but is not (upstream's `field.Duplicate`).
    pub fn duplicate(field: &str, value: &str) -> Self {
        Self::new(
            FieldErrorKind::Duplicate,
            field.to_owned(),
            Some(value.render()),
            String::new(),
        )
    }

    /// The value is not among `supported` (upstream's `field.NotSupported`).
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            FieldErrorKind::NotSupported,
            field.to_owned(),
            Some(value.render()),
            detail,
        )
    }

    /// The value is not allowed here (upstream's `field.Forbidden`).
    pub fn forbidden(field: &str, detail: &str) -> Self {
        forbidden_at(field, detail)
    }

    /// The value is longer than `max` bytes (upstream's `field.TooLong`).
    pub fn too_long(field: &str, max: usize) -> Self {
        too_long_at(field, max)
    }

    /// A list holds `actual` items, more than `max` (upstream's `field.TooMany`).
    pub fn too_many(field: &str, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {unit}");
        Self::new(
            FieldErrorKind::TooMany,
            field.to_owned(),
            Some(actual.to_string()),
            detail,
        )
    }

    /// A referenced value was not found (upstream's `field.NotFound`).
    pub fn not_found(field: &str, value: &str) -> Self {
        Self::new(
            FieldErrorKind::NotFound,
            field.to_owned(),
            Some(value.render()),
            String::new(),
        )
    }

    /// An internal failure (upstream's `field.InternalError`).
    pub fn internal(field: &str, detail: &str) -> Self {
        Self::new(
            FieldErrorKind::Internal,
            field.to_owned(),
            None,
            detail.to_owned(),
        )
    }

    /// Upstream's `CauseType` string, for a `Status` cause's `reason`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field (upstream's `ErrorBody`), for a `Status` cause's
    /// `message`: `Required value`, `Invalid value: "Foo_Bar": a lowercase RFC 1123 ...`.
    pub fn message(&self) -> String {
        let mut s = self.kind.label().to_owned();
        if let Some(value) = &self.value {
            s.push_str(": ");
            s.push_str(value);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

// Owned-argument constructors for this module's own use; the public ones take `&str`
// so callers can pass `&format!(..)` without clippy objecting.
fn required_at(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::Required, field.into(), None, detail.into())
}

fn invalid_at(
    field: impl Into<String>,
    value: impl BadValue,
    detail: impl Into<String>,
) -> FieldError {
    FieldError::new(
        FieldErrorKind::Invalid,
        field.into(),
        Some(value.render()),
        detail.into(),
    )
}

fn forbidden_at(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::Forbidden, field.into(), None, detail.into())
}

fn too_long_at(field: impl Into<String>, max: usize) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldError::new(
        FieldErrorKind::TooLong,
        field.into(),
        None,
        format!("may not be more than {max} {unit}"),
    )
}

/// `field: message`, upstream's `field.Error.Error()`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for FieldError {}

/// Upstream's aggregate of a field error list: one message alone, several as
/// `[a, b]`, repeated messages once.
pub fn aggregate_message(errs: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let msgs: Vec<String> = errs
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match msgs.len() {
        1 => msgs.into_iter().next().unwrap_or_default(),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

/// The message of upstream's `NewInvalid`: `Pod "x" is invalid: [spec.a: Required value,
/// ...]`, without brackets for a single error and without the colon for none. `kind` is
/// the qualified kind as upstream prints it (`Pod`, `Deployment.apps`).
pub fn join_messages(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let head = format!("{kind} {} is invalid", go_quote(name));
    if errs.is_empty() {
        head
    } else {
        format!("{head}: {}", aggregate_message(errs))
    }
}

/// Go's `strconv.Quote`: double quotes, backslash escapes, `\u` for non-printables.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if !go_is_print(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint` for non-ASCII: controls, separators other than
/// the ASCII space, and the common format characters are not printable.
fn go_is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let u = c as u32;
    let format_char = matches!(
        u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
            | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
            | 0xe000..=0xf8ff
    );
    !(c.is_control() || c.is_whitespace() || format_char)
}

/// Go's `json.Marshal` output for a JSON value: like serde_json, plus HTML-safe escapes.
fn go_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `parent.child`, or `child` under the root.
fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

// ---- Format validators (pkg/util/validation/validation.go) ----

/// Upstream's `RegexError`: the message, examples, and the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

/// Upstream's `MaxLenError`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

const EMPTY_ERROR: &str = "must be non-empty";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR_MSG: &str =
    "a valid percent string must be a numeric string followed by an ending '%'";

/// `^first (middle* last)?$` over bytes, the shape of all the name regexes here.
fn matches_shape(
    s: &str,
    first: impl Fn(u8) -> bool,
    middle: impl Fn(u8) -> bool,
    last: impl Fn(u8) -> bool,
) -> bool {
    let b = s.as_bytes();
    match b {
        [] => false,
        [only] => first(*only) && last(*only),
        [head, inner @ .., tail] => first(*head) && inner.iter().all(|&c| middle(c)) && last(*tail),
    }
}

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns1123_label_shape(s: &str) -> bool {
    matches_shape(s, lower_alnum, |c| lower_alnum(c) || c == b'-', lower_alnum)
}

fn dns1123_subdomain_shape(s: &str) -> bool {
    s.split('.').all(dns1123_label_shape)
}

fn qualified_name_shape(s: &str) -> bool {
    let ext = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    matches_shape(
        s,
        |c| c.is_ascii_alphanumeric(),
        ext,
        |c| c.is_ascii_alphanumeric(),
    )
}

/// RFC 1123 label: at most 63 lower-case alphanumerics or `-`, alphanumeric at both ends.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !dns1123_label_shape(value) {
        if dns1123_subdomain_shape(value) {
            // A valid subdomain but not a label: since length was checked, it has dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !dns1123_subdomain_shape(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// RFC 1035 label: like an RFC 1123 label, but starting with a letter.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    let shape = matches_shape(
        value,
        |c| c.is_ascii_lowercase(),
        |c| lower_alnum(c) || c == b'-',
        lower_alnum,
    );
    if !shape {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Qualified name (a label or annotation key): an optional DNS subdomain prefix and
/// `/`, then a name of at most 63 alphanumerics, `-`, `_` or `.`.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            let shape = regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            );
            errs.push(format!(
                "a qualified name {shape} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(LABEL_VALUE_MAX_LENGTH)
        ));
    }
    if !qualified_name_shape(name) {
        let shape = regex_error(
            QUALIFIED_NAME_ERR_MSG,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        );
        errs.push(format!("name part {shape}"));
    }
    errs
}

/// Label value: empty, or at most 63 alphanumerics, `-`, `_` or `.`, alphanumeric at
/// both ends.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !qualified_name_shape(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// C identifier: a letter or `_`, then letters, digits or `_` (length unchecked).
pub fn is_c_identifier(value: &str) -> Vec<String> {
    let ok = matches!(value.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            C_IDENTIFIER_ERR_MSG,
            C_IDENTIFIER_FMT,
            &["my_name", "MY_NAME", "MyName"],
        )]
    }
}

/// Port number in 1..=65535.
pub fn is_valid_port_num(port: i32) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_owned()]
    }
}

/// ConfigMap or Secret key: at most 253 alphanumerics, `-`, `_` or `.`, and not `.`,
/// `..` or starting with `..`.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let shape = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !shape {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_owned());
    } else if value == ".." {
        errs.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// IP address as upstream's `ParseIPSloppy` accepts it: IPv4 octets may carry leading
/// zeros (`010.1.1.1`), IPv6 as usual (no zone).
pub fn is_valid_ip(value: &str) -> Vec<String> {
    if parse_ip_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_owned()]
    }
}

/// Percentage: digits then `%`.
pub fn is_valid_percent(value: &str) -> Vec<String> {
    let ok = value
        .strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(PERCENT_ERR_MSG, PERCENT_FMT, &["1%", "93%"])]
    }
}

/// Go's pre-1.17 `net.ParseIP`: the first `.` or `:` decides the family.
fn parse_ip_sloppy(s: &str) -> Option<std::net::IpAddr> {
    match s.bytes().find(|&c| c == b'.' || c == b':')? {
        b'.' => parse_ipv4_sloppy(s).map(std::net::IpAddr::V4),
        _ => {
            if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
                return Some(ip.into());
            }
            // An embedded IPv4 tail may have leading zeros: normalize it and retry.
            let (head, tail) = s.rsplit_once(':')?;
            let v4 = parse_ipv4_sloppy(tail)?;
            format!("{head}:{v4}")
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(Into::into)
        }
    }
}

fn parse_ipv4_sloppy(s: &str) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: u32 = part.parse().ok()?;
        *octet = u8::try_from(n).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(octets.into())
}

// ---- Object metadata (pkg/api/validation/objectmeta.go) ----

/// Labels: keys are qualified names, values label values (`ValidateLabels`).
pub fn validate_labels(
    labels: Option<&BTreeMap<String, String>>,
    field_path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(invalid_at(field_path, k, msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(invalid_at(field_path, v, msg));
        }
    }
    errs
}

/// Annotations: keys are qualified names ignoring case, and keys plus values total at
/// most 256 KiB (`ValidateAnnotations`).
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    field_path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total_bytes = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid_at(field_path, k, msg));
        }
        total_bytes = total_bytes.saturating_add(k.len()).saturating_add(v.len());
    }
    if total_bytes > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(too_long_at(field_path, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES));
    }
    errs
}

/// Finalizers: qualified names, and not both `orphan` and `foregroundDeletion`
/// (`ValidateFinalizers`).
pub fn validate_finalizers(finalizers: Option<&[String]>, field_path: &str) -> Vec<FieldError> {
    let finalizers = finalizers.unwrap_or_default();
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(invalid_at(field_path, f, msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(invalid_at(
            field_path,
            serde_json::json!(finalizers),
            format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// Owner references: apiVersion, kind, name and uid set, no `Event` owner, at most one
/// controller (`ValidateOwnerReferences`).
pub fn validate_owner_references(
    refs: Option<&[OwnerReference]>,
    field_path: &str,
) -> Vec<FieldError> {
    let refs = refs.unwrap_or_default();
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        validate_owner_reference(r, field_path, &mut errs);
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(invalid_at(
                    field_path,
                    Rendered(format!(
                        "[{}]",
                        refs.iter().map(owner_reference_json).collect::<Vec<_>>().join(",")
                    )),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

fn validate_owner_reference(r: &OwnerReference, path: &str, errs: &mut Vec<FieldError>) {
    // schema.FromAPIVersionAndKind: "v1" is the core group, "g/v" a group, more slashes
    // parse to an empty group and version.
    let (group, version) = match r.api_version.matches('/').count() {
        _ if r.api_version.is_empty() || r.api_version == "/" => ("", ""),
        0 => ("", r.api_version.as_str()),
        1 => r.api_version.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    };
    if version.is_empty() {
        errs.push(invalid_at(
            child(path, "apiVersion"),
            &r.api_version,
            "version must not be empty",
        ));
    }
    if r.kind.is_empty() {
        errs.push(invalid_at(
            child(path, "kind"),
            &r.kind,
            "must not be empty",
        ));
    }
    if r.name.is_empty() {
        errs.push(invalid_at(
            child(path, "name"),
            &r.name,
            "must not be empty",
        ));
    }
    if r.uid.is_empty() {
        // types.UID is not a Go string to the error printer: it is shown as JSON.
        errs.push(invalid_at(
            child(path, "uid"),
            serde_json::json!(r.uid),
            "must not be empty",
        ));
    }
    if group.is_empty() && version == "v1" && r.kind == "Event" {
        errs.push(invalid_at(
            path,
            Rendered(owner_reference_json(r)),
            format!(
                "{group}/{version}, Kind={} is disallowed from being an owner",
                r.kind
            ),
        ));
    }
}

/// An owner reference as Go's `json.Marshal` writes it: fields in the Go struct's order
/// (serde_json's map would sort them), unset pointers omitted.
fn owner_reference_json(r: &OwnerReference) -> String {
    let quote = |s: &str| go_json(&serde_json::Value::from(s));
    let mut out = format!(
        "{{\"apiVersion\":{},\"kind\":{},\"name\":{},\"uid\":{}",
        quote(&r.api_version),
        quote(&r.kind),
        quote(&r.name),
        quote(&r.uid)
    );
    if let Some(c) = r.controller {
        out.push_str(&format!(",\"controller\":{c}"));
    }
    if let Some(b) = r.block_owner_deletion {
        out.push_str(&format!(",\"blockOwnerDeletion\":{b}"));
    }
    out.push('}');
    out
}

/// A value rendered already, shown as is.
struct Rendered(String);

impl BadValue for Rendered {
    fn render(&self) -> String {
        self.0.clone()
    }
}

/// Upstream's generate-name masking: a trailing `-` is allowed in a prefix, so it is
/// replaced before validation (upstream drops the last two bytes and appends `a`).
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        match name.get(..cut) {
            Some(head) => format!("{head}a"),
            None => name.to_owned(),
        }
    } else {
        name.to_owned()
    }
}

/// Metadata of an object being created (`ValidateObjectMetaAccessor`): generateName and
/// name through `name_validator`, name required, namespace required and a DNS-1123 label
/// iff `namespaced` (forbidden otherwise), generation non-negative, then labels,
/// annotations, owner references and finalizers.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_validator: fn(&str) -> Vec<String>,
    field_path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_validator(&mask_trailing_dash(generate_name)) {
            errs.push(invalid_at(
                child(field_path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(required_at(
            child(field_path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_validator(name) {
            errs.push(invalid_at(child(field_path, "name"), name, msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let ns_path = child(field_path, "namespace");
    match (namespaced, namespace.is_empty()) {
        (true, true) => errs.push(required_at(ns_path, "")),
        (true, false) => {
            for msg in is_dns1123_label(namespace) {
                errs.push(invalid_at(ns_path.clone(), namespace, msg));
            }
        }
        (false, false) => errs.push(forbidden_at(ns_path, "not allowed on this type")),
        (false, true) => {}
    }
    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        errs.push(invalid_at(
            child(field_path, "generation"),
            generation,
            "must be greater than or equal to 0",
        ));
    }
    errs.extend(validate_common(meta, field_path));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref(),
        &child(field_path, "finalizers"),
    ));
    errs
}

/// Labels, annotations and owner references: checked on create and update alike.
fn validate_common(meta: &ObjectMeta, field_path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(meta.labels.as_ref(), &child(field_path, "labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(field_path, "annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref(),
        &child(field_path, "ownerReferences"),
    ));
    errs
}

/// Metadata of an object being updated (`ValidateObjectMetaAccessorUpdate`): no new
/// finalizers once deletion started, resourceVersion set, generation not decremented,
/// name, namespace, uid, creationTimestamp, deletionTimestamp and
/// deletionGracePeriodSeconds unchanged, then labels, annotations and owner references.
/// generateName may change, as upstream allows.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    field_path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let before: BTreeSet<&String> = old.finalizers.iter().flatten().collect();
        let added: BTreeSet<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            let list: Vec<String> = added.iter().map(|f| go_quote(f)).collect();
            errs.push(forbidden_at(
                child(field_path, "finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    if new.resource_version.as_deref().unwrap_or("").is_empty() {
        errs.push(invalid_at(
            child(field_path, "resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (new_gen, old_gen) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if new_gen < old_gen {
        errs.push(invalid_at(
            child(field_path, "generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    // Each changed field is reported with its new value, rendered as upstream's printer
    // does: name and namespace are Go strings (%q); the rest marshal as JSON.
    fn str_of(s: &Option<String>) -> &str {
        s.as_deref().unwrap_or("")
    }
    // Rendered only for a field that changed.
    let checks: [(&str, bool, &dyn Fn() -> String); 6] = [
        ("name", str_of(&new.name) != str_of(&old.name), &|| {
            go_quote(str_of(&new.name))
        }),
        (
            "namespace",
            str_of(&new.namespace) != str_of(&old.namespace),
            &|| go_quote(str_of(&new.namespace)),
        ),
        ("uid", str_of(&new.uid) != str_of(&old.uid), &|| {
            go_json(&str_of(&new.uid).into())
        }),
        (
            "creationTimestamp",
            new.creation_timestamp != old.creation_timestamp,
            &|| go_json(&time_json(new.creation_timestamp.as_ref())),
        ),
        (
            "deletionTimestamp",
            new.deletion_timestamp != old.deletion_timestamp,
            &|| go_json(&time_json(new.deletion_timestamp.as_ref())),
        ),
        (
            "deletionGracePeriodSeconds",
            new.deletion_grace_period_seconds != old.deletion_grace_period_seconds,
            &|| {
                go_json(
                    &new.deletion_grace_period_seconds
                        .map_or(serde_json::Value::Null, Into::into),
                )
            },
        ),
    ];
    for (name, changed, render) in checks {
        if changed {
            errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                child(field_path, name),
                Some(render()),
                FIELD_IMMUTABLE_ERROR_MSG.to_owned(),
            ));
        }
    }
    errs.extend(validate_common(new, field_path));
    errs
}

/// `metav1.Time` as Go marshals it: RFC 3339 in UTC to the second, `null` when unset.
fn time_json(t: Option<&Time>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME_PART: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_REGEX: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const SUBDOMAIN_REGEX: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    /// Compares a list of errors or messages with the expected strings, in order.
    fn check<T: ToString>(what: &str, got: &[T], expected: &[&str]) {
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(got, expected, "{what}");
    }

    type Validator = fn(&str) -> Vec<String>;

    #[test]
    fn string_validators() {
        // validation_test.go: TestIsDNS1123Label, TestIsDNS1123Subdomain,
        // TestIsQualifiedName, TestIsValidLabelValue, TestIsConfigMapKey, TestIsValidIP,
        // TestIsValidPercent, TestIsCIdentifier. `None` means "invalid, any message".
        let a63 = "a".repeat(63);
        let a64 = "a".repeat(64);
        let a253 = "a".repeat(253);
        let a254 = "a".repeat(254);
        let long_qualified = format!("{a253}/{a63}");
        let too_long_prefix = format!("{a254}/abc");
        let qualified_slashes = format!(
            "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            NAME_PART
        );
        let name_part = format!("name part {NAME_PART}");
        let prefix_part = format!("prefix part {SUBDOMAIN_REGEX}");
        let table: Vec<(Validator, &str, Option<Vec<&str>>)> = vec![
            (is_dns1123_label, "a", Some(vec![])),
            (is_dns1123_label, "a--1--2--b", Some(vec![])),
            (is_dns1123_label, "0", Some(vec![])),
            (is_dns1123_label, "1-a", Some(vec![])),
            (is_dns1123_label, &a63, Some(vec![])),
            (is_dns1123_label, "", Some(vec![LABEL_REGEX])),
            (is_dns1123_label, "A", Some(vec![LABEL_REGEX])),
            (is_dns1123_label, "Foo_Bar", Some(vec![LABEL_REGEX])),
            (is_dns1123_label, "a-", None),
            (is_dns1123_label, "-a", None),
            (is_dns1123_label, "a_b", None),
            (is_dns1123_label, "a b", None),
            (is_dns1123_label, "a.b", Some(vec!["must not contain dots"])),
            (is_dns1123_label, "a.", Some(vec![LABEL_REGEX])),
            (
                is_dns1123_label,
                &a64,
                Some(vec!["must be no more than 63 characters"]),
            ),
            (is_dns1123_subdomain, "a.a", Some(vec![])),
            (is_dns1123_subdomain, "a-1.a--1--2--b", Some(vec![])),
            (is_dns1123_subdomain, "0.1", Some(vec![])),
            (is_dns1123_subdomain, &a253, Some(vec![])),
            (is_dns1123_subdomain, "", Some(vec![SUBDOMAIN_REGEX])),
            (is_dns1123_subdomain, "a..b", Some(vec![SUBDOMAIN_REGEX])),
            (is_dns1123_subdomain, "a.", None),
            (is_dns1123_subdomain, ".a", None),
            (is_dns1123_subdomain, "A.b", None),
            (
                is_dns1123_subdomain,
                &a254,
                Some(vec!["must be no more than 253 characters"]),
            ),
            (is_dns1035_label, "a-1", Some(vec![])),
            (is_dns1035_label, "1-a", None),
            (is_qualified_name, "simple", Some(vec![])),
            (is_qualified_name, "1-starts-with-num", Some(vec![])),
            (
                is_qualified_name,
                "now-with-dashes/now-with-dashes",
                Some(vec![]),
            ),
            (is_qualified_name, "1.2.3.4/5678", Some(vec![])),
            (is_qualified_name, "Uppercase_Is_OK_123", Some(vec![])),
            (
                is_qualified_name,
                "example.com/Uppercase_Is_OK_123",
                Some(vec![]),
            ),
            (is_qualified_name, &a63, Some(vec![])),
            (is_qualified_name, &long_qualified, Some(vec![])),
            (
                is_qualified_name,
                "nospecialchars%^=@",
                Some(vec![&name_part]),
            ),
            (
                is_qualified_name,
                "cantendwithadash-",
                Some(vec![&name_part]),
            ),
            (
                is_qualified_name,
                "only/one/slash",
                Some(vec![&qualified_slashes]),
            ),
            (
                is_qualified_name,
                "Example.com/abc",
                Some(vec![&prefix_part]),
            ),
            (is_qualified_name, "example_com/abc", None),
            (
                is_qualified_name,
                "example.com/",
                Some(vec!["name part must be non-empty", &name_part]),
            ),
            (
                is_qualified_name,
                "/simple",
                Some(vec!["prefix part must be non-empty"]),
            ),
            (
                is_qualified_name,
                &a64,
                Some(vec!["name part must be no more than 63 characters"]),
            ),
            (
                is_qualified_name,
                &too_long_prefix,
                Some(vec!["prefix part must be no more than 253 characters"]),
            ),
            (is_valid_label_value, "", Some(vec![])),
            (is_valid_label_value, "end-with-num-1", Some(vec![])),
            (is_valid_label_value, &a63, Some(vec![])),
            (is_valid_label_value, "Tama-nui-te-rā.is_Māori.sun", None),
            (is_valid_label_value, "-starts-with-dash", None),
            (is_valid_label_value, "ends.with.dot.", None),
            (
                is_valid_label_value,
                &a64,
                Some(vec!["must be no more than 63 characters"]),
            ),
            (is_config_map_key, "good", Some(vec![])),
            (is_config_map_key, ".so.is.this", Some(vec![])),
            (is_config_map_key, "THIS_IS_GOOD", Some(vec![])),
            (is_config_map_key, "bad/key", None),
            (is_config_map_key, ".", Some(vec!["must not be '.'"])),
            (is_config_map_key, "..", Some(vec!["must not be '..'"])),
            (
                is_config_map_key,
                "..bad",
                Some(vec!["must not start with '..'"]),
            ),
            (
                is_config_map_key,
                "",
                Some(vec![
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ]),
            ),
            (is_valid_ip, "1.2.3.4", Some(vec![])),
            (is_valid_ip, "255.255.255.255", Some(vec![])),
            (is_valid_ip, "010.001.1.01", Some(vec![])),
            (is_valid_ip, "::1", Some(vec![])),
            (is_valid_ip, "2001:db8::ffff", Some(vec![])),
            (is_valid_ip, "::ffff:1.2.3.04", Some(vec![])),
            (
                is_valid_ip,
                "",
                Some(vec![
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ]),
            ),
            (is_valid_ip, "1.2.3", None),
            (is_valid_ip, "256.1.1.1", None),
            (is_valid_ip, "1.2.3.4/32", None),
            (is_valid_ip, "fe80::1%eth0", None),
            (is_valid_ip, "a.b.c.d", None),
            (is_valid_percent, "0%", Some(vec![])),
            (is_valid_percent, "00000%", Some(vec![])),
            (is_valid_percent, "100%", Some(vec![])),
            (
                is_valid_percent,
                "99.99%",
                Some(vec![
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ]),
            ),
            (is_valid_percent, "%", None),
            (is_valid_percent, "-5%", None),
            (is_c_identifier, "_a", Some(vec![])),
            (is_c_identifier, "A__1__2__B", Some(vec![])),
            (
                is_c_identifier,
                "1a",
                Some(vec![
                    "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')",
                ]),
            ),
            (is_c_identifier, "", None),
            (is_c_identifier, "a-b", None),
        ];
        for (validator, input, expected) in table {
            let got = validator(input);
            match expected {
                Some(messages) => check(input, &got, &messages),
                None => assert!(!got.is_empty(), "{input:?} should be invalid"),
            }
        }
        // TestIsValidPortNum.
        for (port, ok) in [
            (1, true),
            (80, true),
            (65535, true),
            (0, false),
            (-1, false),
            (65536, false),
        ] {
            let expected: &[&str] = if ok {
                &[]
            } else {
                &["must be between 1 and 65535, inclusive"]
            };
            check(&port.to_string(), &is_valid_port_num(port), expected);
        }
    }

    #[test]
    fn field_error_text() {
        // errors_test.go: TestMakeFuncs / TestErrorUsefulMessage, and the Status reasons.
        let table: Vec<(FieldError, &str, &str)> = vec![
            (
                FieldError::invalid("f", "v", "d"),
                "f: Invalid value: \"v\": d",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid_value("f", 80000, "d"),
                "f: Invalid value: 80000: d",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid_value("f", serde_json::json!(["a", "b"]), "d"),
                "f: Invalid value: [\"a\",\"b\"]: d",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid("f", "a\"b\n\u{1}é", ""),
                "f: Invalid value: \"a\\\"b\\n\\x01é\"",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid_value("f", serde_json::json!("<&>"), ""),
                "f: Invalid value: \"\\u003c\\u0026\\u003e\"",
                "FieldValueInvalid",
            ),
            (
                FieldError::not_supported("f", "x", &["a", "b"]),
                "f: Unsupported value: \"x\": supported values: \"a\", \"b\"",
                "FieldValueNotSupported",
            ),
            (
                FieldError::not_supported("f", "x", &[]),
                "f: Unsupported value: \"x\"",
                "FieldValueNotSupported",
            ),
            (
                FieldError::duplicate("f", "v"),
                "f: Duplicate value: \"v\"",
                "FieldValueDuplicate",
            ),
            (
                FieldError::not_found("f", "v"),
                "f: Not found: \"v\"",
                "FieldValueNotFound",
            ),
            (
                FieldError::required("f", ""),
                "f: Required value",
                "FieldValueRequired",
            ),
            (
                FieldError::required("f", "d"),
                "f: Required value: d",
                "FieldValueRequired",
            ),
            (
                FieldError::forbidden("f", "d"),
                "f: Forbidden: d",
                "FieldValueForbidden",
            ),
            (
                FieldError::too_long("f", 5),
                "f: Too long: may not be more than 5 bytes",
                "FieldValueTooLong",
            ),
            (
                FieldError::too_long("f", 1),
                "f: Too long: may not be more than 1 byte",
                "FieldValueTooLong",
            ),
            (
                FieldError::too_many("f", 5, 3),
                "f: Too many: 5: must have at most 3 items",
                "FieldValueTooMany",
            ),
            (
                FieldError::internal("f", "boom"),
                "f: Internal error: boom",
                "InternalError",
            ),
        ];
        for (err, text, reason) in table {
            assert_eq!(err.to_string(), text);
            assert_eq!(err.reason(), reason, "{text}");
            assert_eq!(format!("{}: {}", err.field, err.message()), text);
        }
    }

    #[test]
    fn aggregate() {
        // errors.go NewInvalid and util/errors aggregate: brackets only for several,
        // duplicates once.
        let a = FieldError::required("spec.a", "");
        let b = FieldError::invalid("spec.b", "y", "bad");
        let table: Vec<(Vec<FieldError>, &str)> = vec![
            (vec![], "Pod \"x\" is invalid"),
            (
                vec![a.clone()],
                "Pod \"x\" is invalid: spec.a: Required value",
            ),
            (
                vec![a.clone(), b.clone()],
                "Pod \"x\" is invalid: [spec.a: Required value, spec.b: Invalid value: \"y\": bad]",
            ),
            (
                vec![a.clone(), a.clone()],
                "Pod \"x\" is invalid: spec.a: Required value",
            ),
        ];
        for (errs, expected) in table {
            assert_eq!(join_messages("Pod", "x", &errs), expected);
        }
    }

    fn meta(name: &str, namespace: &str) -> ObjectMeta {
        ObjectMeta {
            name: (!name.is_empty()).then(|| name.to_owned()),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            ..ObjectMeta::default()
        }
    }

    fn owner(
        api_version: &str,
        kind: &str,
        name: &str,
        uid: &str,
        controller: Option<bool>,
    ) -> OwnerReference {
        OwnerReference {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            controller,
            block_owner_deletion: None,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn object_meta_create() {
        // objectmeta_test.go: TestValidateObjectMetaNamespaces, ...OwnerReferences,
        // TestValidateAnnotations, TestValidateFinalizersUpdate-style name checks.
        let dots = "metadata.namespace: Invalid value: \"foo.bar\": must not contain dots";
        let with = |f: &dyn Fn(&mut ObjectMeta)| {
            let mut m = meta("x", "ns");
            f(&mut m);
            m
        };
        let big = "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let table: Vec<(&str, ObjectMeta, bool, Vec<String>)> = vec![
            ("valid", meta("x", "ns"), true, vec![]),
            ("cluster-scoped", meta("x", ""), false, vec![]),
            ("no name", meta("", "ns"), true, vec!["metadata.name: Required value: name or generateName is required".into()]),
            ("no namespace", meta("x", ""), true, vec!["metadata.namespace: Required value".into()]),
            ("namespace on cluster kind", meta("x", "ns"), false, vec!["metadata.namespace: Forbidden: not allowed on this type".into()]),
            ("dotted namespace", meta("x", "foo.bar"), true, vec![dots.into()]),
            ("bad name", meta("Foo_Bar", "ns"), true, vec![format!("metadata.name: Invalid value: \"Foo_Bar\": {SUBDOMAIN_REGEX}")]),
            ("generateName with trailing dash", with(&|m| m.generate_name = Some("foo-".into())), true, vec![]),
            (
                "bad generateName",
                with(&|m| m.generate_name = Some("Foo-".into())),
                true,
                vec![format!("metadata.generateName: Invalid value: \"Foo-\": {SUBDOMAIN_REGEX}")],
            ),
            (
                "negative generation",
                with(&|m| m.generation = Some(-1)),
                true,
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0".into()],
            ),
            (
                "bad label key and value",
                with(&|m| m.labels = Some(map(&[("a b", "c_")]))),
                true,
                vec![
                    format!("metadata.labels: Invalid value: \"a b\": name part {NAME_PART}"),
                    "metadata.labels: Invalid value: \"c_\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
                ],
            ),
            ("upper-case annotation key", with(&|m| m.annotations = Some(map(&[("Example.COM/Key", "v")]))), true, vec![]),
            (
                "bad annotation key",
                with(&|m| m.annotations = Some(map(&[("a/b/c", "v")]))),
                true,
                vec![format!("metadata.annotations: Invalid value: \"a/b/c\": a qualified name {NAME_PART} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")],
            ),
            (
                "annotations too big",
                with(&|m| m.annotations = Some(map(&[("k", &big)]))),
                true,
                vec!["metadata.annotations: Too long: may not be more than 262144 bytes".into()],
            ),
            (
                "conflicting finalizers",
                with(&|m| m.finalizers = Some(vec!["orphan".into(), "foregroundDeletion".into()])),
                true,
                vec!["metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set".into()],
            ),
            (
                "bad finalizer",
                with(&|m| m.finalizers = Some(vec!["a/b/c".into()])),
                true,
                vec![format!("metadata.finalizers: Invalid value: \"a/b/c\": a qualified name {NAME_PART} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")],
            ),
            (
                "event owner",
                with(&|m| m.owner_references = Some(vec![owner("v1", "Event", "e", "1", None)])),
                true,
                vec!["metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"1\"}: /v1, Kind=Event is disallowed from being an owner".into()],
            ),
            (
                "empty owner",
                with(&|m| m.owner_references = Some(vec![owner("", "", "", "", None)])),
                true,
                vec![
                    "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty".into(),
                    "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty".into(),
                    "metadata.ownerReferences.name: Invalid value: \"\": must not be empty".into(),
                    "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty".into(),
                ],
            ),
            (
                "two controllers",
                with(&|m| {
                    m.owner_references = Some(vec![
                        owner("apps/v1", "ReplicaSet", "a", "1", Some(true)),
                        owner("apps/v1", "ReplicaSet", "b", "2", Some(true)),
                    ])
                }),
                true,
                vec!["metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"a\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b".into()],
            ),
        ];
        for (what, m, namespaced, expected) in table {
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            check(
                what,
                &validate_object_meta(&m, namespaced, is_dns1123_subdomain, "metadata"),
                &expected,
            );
        }
    }

    #[test]
    fn object_meta_update() {
        // objectmeta_test.go: TestValidateObjectMetaUpdateIgnoresCreationTimestamp,
        // TestValidateObjectMetaUpdatePreventsDeletionFieldMutation,
        // TestValidateFinalizersPreventConflictingFinalizers-style update cases.
        let ts = |s: &str| Time(s.parse().unwrap());
        let base = || {
            let mut m = meta("x", "ns");
            m.resource_version = Some("1".into());
            m.uid = Some("u1".into());
            m.generation = Some(2);
            m.creation_timestamp = Some(ts("2020-01-01T00:00:00Z"));
            m
        };
        let changed = |f: &dyn Fn(&mut ObjectMeta)| {
            let mut m = base();
            f(&mut m);
            m
        };
        let deleting = changed(&|m| {
            m.deletion_timestamp = Some(ts("2020-01-02T00:00:00Z"));
            m.finalizers = Some(vec!["a".into()]);
        });
        let table: Vec<(&str, ObjectMeta, ObjectMeta, Vec<&str>)> = vec![
            ("unchanged", base(), base(), vec![]),
            (
                "generateName may change",
                changed(&|m| m.generate_name = Some("y-".into())),
                base(),
                vec![],
            ),
            (
                "name",
                changed(&|m| m.name = Some("y".into())),
                base(),
                vec!["metadata.name: Invalid value: \"y\": field is immutable"],
            ),
            (
                "namespace",
                changed(&|m| m.namespace = Some("other".into())),
                base(),
                vec!["metadata.namespace: Invalid value: \"other\": field is immutable"],
            ),
            (
                "uid",
                changed(&|m| m.uid = Some("u2".into())),
                base(),
                vec!["metadata.uid: Invalid value: \"u2\": field is immutable"],
            ),
            (
                "creationTimestamp",
                changed(&|m| m.creation_timestamp = Some(ts("2021-01-01T00:00:00.5Z"))),
                base(),
                vec![
                    "metadata.creationTimestamp: Invalid value: \"2021-01-01T00:00:00Z\": field is immutable",
                ],
            ),
            (
                "creationTimestamp cleared",
                changed(&|m| m.creation_timestamp = None),
                base(),
                vec!["metadata.creationTimestamp: Invalid value: null: field is immutable"],
            ),
            (
                "deletion fields",
                changed(&|m| m.deletion_grace_period_seconds = Some(30)),
                base(),
                vec!["metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable"],
            ),
            (
                "no resourceVersion",
                changed(&|m| m.resource_version = None),
                base(),
                vec![
                    "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                ],
            ),
            (
                "generation decremented",
                changed(&|m| m.generation = Some(1)),
                base(),
                vec!["metadata.generation: Invalid value: 1: must not be decremented"],
            ),
            (
                "new finalizer while deleting",
                {
                    let mut m = deleting.clone();
                    m.finalizers = Some(vec!["a".into(), "c".into(), "b".into()]);
                    m
                },
                deleting.clone(),
                vec![
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b\", \"c\"}",
                ],
            ),
            (
                "removing finalizer while deleting",
                changed(&|m| m.deletion_timestamp = deleting.deletion_timestamp.clone()),
                deleting.clone(),
                vec![],
            ),
            (
                "bad label on update",
                changed(&|m| m.labels = Some(map(&[("k", "-v")]))),
                base(),
                vec![
                    "metadata.labels: Invalid value: \"-v\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ],
            ),
        ];
        for (what, new, old, expected) in table {
            check(
                what,
                &validate_object_meta_update(&new, &old, "metadata"),
                &expected,
            );
        }
    }
}
