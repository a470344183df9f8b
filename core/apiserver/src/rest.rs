//! The generic REST store: create, get, list, update, patch, delete and watch of any
//! served resource over [`Storage`], with kube-apiserver's rules for metadata,
//! optimistic concurrency, finalizers, graceful deletion and selectors, and field
//! management: every create, update and patch records its manager in
//! `metadata.managedFields`, and apply patches run server-side apply
//! ([`bosun_api::fieldmanager`]).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bosun_api::fieldmanager::{self, ApplyError, Managed, WriteInfo};
use bosun_api::fields::FieldSelector;
use bosun_api::labels::LabelSelector;
use bosun_api::patch::{PatchType, apply_patch, schema_for};
use bosun_api::validation::FieldError;
use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::alloc::Allocators;
use crate::cache::{CachedObject, DEFAULT_CACHE_BYTES, ObjectCache};
use crate::error::{ApiError, GroupResource};
use crate::resources::{Registry, Resource, same_but_metadata};
use crate::storage::{KeyValue, ListOptions, Revision, Storage, StorageError, WatchEvent};

/// How many times a write retries after losing an optimistic-concurrency race before
/// answering 409 (only when the client did not pin a resourceVersion itself).
const MAX_WRITE_RETRIES: usize = 16;
/// Keys read by the first storage page of a limited LIST; later pages double.
const LIST_PAGE_KEYS: usize = 500;
/// Largest storage page of a limited LIST.
const MAX_LIST_PAGE_KEYS: usize = 65_536;
/// Bound of one watch response's outgoing event queue.
pub const WATCH_QUEUE_EVENTS: usize = 1024;
/// Default grace period of a pod delete (pod spec's default).
const DEFAULT_POD_GRACE_SECONDS: i64 = 30;

/// Server-wide settings of the REST layer.
#[derive(Clone, Debug)]
pub struct RestConfig {
    /// Longest watch a client may ask for; also the upper end of the default.
    pub max_watch_timeout: Duration,
    /// Shortest default watch timeout (upstream: `--min-request-timeout`, 1800 s).
    pub min_watch_timeout: Duration,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            max_watch_timeout: Duration::from_secs(3600),
            min_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// Query parameters the REST verbs read.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    /// `Strict` rejects unknown fields; anything else drops them (upstream's `Ignore`).
    pub field_validation: Option<String>,
    /// `fieldManager`: who the write's fields are recorded under.
    pub field_manager: Option<String>,
    /// `force`: an apply takes over fields other managers own instead of conflicting.
    pub force: Option<bool>,
    /// The manager a write without `fieldManager` is recorded under, from the request's
    /// User-Agent ([`fieldmanager::manager_from_user_agent`]); set by the HTTP layer.
    pub user_agent_manager: String,
}

impl Params {
    /// Reads the known parameters; malformed numbers are a 400.
    pub fn parse(query: &[(String, String)]) -> Result<Params, ApiError> {
        let mut p = Params::default();
        let truthy = |v: &str| matches!(v, "1" | "true" | "True" | "");
        for (k, v) in query {
            let num = |what: &str| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid {what}: {v:?}")))
            };
            match k.as_str() {
                "labelSelector" => p.label_selector = Some(v.clone()),
                "fieldSelector" => p.field_selector = Some(v.clone()),
                "limit" => p.limit = Some(num("limit")?.max(0) as usize),
                "continue" => p.continue_token = Some(v.clone()).filter(|s| !s.is_empty()),
                "resourceVersion" => p.resource_version = Some(v.clone()),
                "resourceVersionMatch" => {
                    p.resource_version_match = Some(v.clone()).filter(|s| !s.is_empty())
                }
                "watch" => p.watch = truthy(v),
                "allowWatchBookmarks" => p.allow_watch_bookmarks = truthy(v),
                "sendInitialEvents" => p.send_initial_events = truthy(v),
                "timeoutSeconds" => p.timeout_seconds = Some(num("timeoutSeconds")?.max(0) as u64),
                "dryRun" => p.dry_run = v == "All",
                "gracePeriodSeconds" => p.grace_period_seconds = Some(num("gracePeriodSeconds")?),
                "propagationPolicy" => p.propagation_policy = Some(v.clone()),
                "fieldValidation" => p.field_validation = Some(v.clone()),
                "fieldManager" => p.field_manager = Some(v.clone()).filter(|s| !s.is_empty()),
                "force" => {
                    p.force = Some(match v.as_str() {
                        "true" | "True" | "1" => true,
                        "false" | "False" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid force: {v:?}: expected true or false"
                            )));
                        }
                    })
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The manager this write is recorded under: `fieldManager`, else the User-Agent's,
    /// else `unknown` (upstream `buildManagerInfo`).
    pub fn manager(&self) -> &str {
        match self.field_manager.as_deref() {
            Some(m) => m,
            None if !self.user_agent_manager.is_empty() => &self.user_agent_manager,
            None => "unknown",
        }
    }

    /// Upstream `ValidateCreateOptions`/`ValidateUpdateOptions`/`ValidatePatchOptions` on
    /// the field manager options: a 422 on the options kind (`PatchOptions`, ...).
    pub fn validate_write(
        &self,
        options_kind: &str,
        patch: Option<PatchType>,
    ) -> Result<(), ApiError> {
        let mut errs = Vec::new();
        match patch {
            Some(PatchType::Apply) if self.field_manager.is_none() => {
                errs.push(FieldError::required(
                    "fieldManager",
                    "is required for apply patch",
                ));
            }
            Some(PatchType::Apply) => {}
            // Create and update options have no `force`: it is ignored there, as upstream.
            Some(_) if self.force.is_some() => {
                errs.push(FieldError::forbidden(
                    "force",
                    "may not be specified for non-apply patch",
                ));
            }
            _ => {}
        }
        if let Some(m) = &self.field_manager {
            if m.len() > fieldmanager::MAX_FIELD_MANAGER_LEN {
                errs.push(FieldError::too_long(
                    "fieldManager",
                    fieldmanager::MAX_FIELD_MANAGER_LEN,
                ));
            }
            if let Some((i, c)) = m.char_indices().find(|(_, c)| c.is_control()) {
                errs.push(FieldError::invalid(
                    "fieldManager",
                    m,
                    &format!("invalid character U+{:04X} (at position {i})", c as u32),
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(options_kind, "meta.k8s.io", "", &errs))
        }
    }
}

/// How a write records who changed which fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracking {
    /// Create, update, non-apply patch: the request's manager takes what it changed.
    Update,
    /// Server-side apply: the transform already computed the managers and left them in
    /// the object's `metadata.managedFields`.
    Applied,
    /// A server-internal write (binding, scale): managers stay as they are.
    Untracked,
}

fn take_managed_fields(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")?
        .as_object_mut()?
        .remove("managedFields")
}

fn put_managed_fields(obj: &mut Value, managed: Option<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match managed {
            Some(list) => {
                meta.insert("managedFields".into(), list);
            }
            None => {
                meta.remove("managedFields");
            }
        }
    }
}

/// The managers a stored object's entries decode to; entries that do not decode are
/// dropped (upstream resets them rather than failing the write).
fn stored_managers(entries: Option<&Value>) -> Managed {
    entries
        .and_then(|e| Managed::decode_stored(e).ok())
        .unwrap_or_default()
}

/// The time managers record: RFC 3339 in whole seconds, as `metav1.Time` encodes.
fn now_rfc3339() -> String {
    let now = Timestamp::now();
    now.round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// What field management records about a write, owned for [`WriteInfo`] to borrow.
struct WriteContext {
    kind: &'static str,
    api_version: String,
    subresource: &'static str,
    reset: fieldmanager::Set,
    now: String,
}

impl WriteContext {
    fn new(res: &Resource, part: Part) -> WriteContext {
        let info = res.info();
        let subresource = subresource_of(part);
        WriteContext {
            kind: info.kind,
            api_version: info.api_version(),
            subresource,
            reset: fieldmanager::reset_fields(info.has_status, subresource),
            now: now_rfc3339(),
        }
    }

    fn write_info<'a>(&'a self, manager: &'a str) -> WriteInfo<'a> {
        WriteInfo {
            schema: schema_for(&self.api_version, self.kind),
            api_version: &self.api_version,
            manager,
            subresource: self.subresource,
            reset: &self.reset,
            now: &self.now,
        }
    }
}

fn subresource_of(part: Part) -> &'static str {
    match part {
        Part::Status => "status",
        Part::Main | Part::System => "",
    }
}

/// Selectors of a LIST or WATCH, checked against the resource's selectable fields.
#[derive(Clone)]
pub struct Selection {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn parse(p: &Params, res: &Resource) -> Result<Selection, ApiError> {
        let labels = match p.label_selector.as_deref() {
            None | Some("") => LabelSelector::everything(),
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        };
        let fields = match p.field_selector.as_deref() {
            None | Some("") => FieldSelector::everything(),
            Some(s) => FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        };
        let allowed = res.ops.selectable_fields();
        for r in fields.requirements() {
            let f = r.field.as_str();
            if f != "metadata.name" && f != "metadata.namespace" && !allowed.contains(&f) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(Selection { labels, fields })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_everything() && self.fields.is_everything()
    }

    /// Matches a cached object on its pre-parsed labels and fields (no decoding).
    pub fn matches_cached(&self, obj: &CachedObject) -> bool {
        (self.labels.is_everything() || self.labels.matches(&obj.labels))
            && (self.fields.is_everything() || self.fields.matches(|f| obj.field(f)))
    }
}

/// The value of a selectable field, as upstream's `GetAttrs` renders it.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    let found = match field {
        "source" => obj.get("source").and_then(|s| s.get("component")),
        "status.podIPs" => obj.pointer("/status/podIPs/0/ip"),
        // Walked segment by segment: this runs for every selectable field of every
        // version cached, so it allocates no JSON pointer.
        other => other.split('.').try_fold(obj, |v, k| v.get(k)),
    };
    match found {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Null) | None => match field {
            "spec.unschedulable" | "spec.hostNetwork" => Some("false".into()),
            "status.replicas" => Some("0".into()),
            _ => None,
        },
        Some(other) => Some(other.to_string()),
    }
}

/// A watch event ready to send.
#[derive(Clone, Debug)]
pub enum WatchItem {
    /// `ADDED`/`MODIFIED`/`DELETED` of a cached object, shared by every watcher that
    /// receives it: its wire bytes are encoded once.
    Object {
        event_type: &'static str,
        object: Arc<CachedObject>,
    },
    /// Anything else (`BOOKMARK`, `ERROR`), as a full event value.
    Raw(Value),
}

impl WatchItem {
    /// The event as one JSON line (with the trailing newline).
    pub fn to_json_line(&self) -> Vec<u8> {
        match self {
            WatchItem::Object { event_type, object } => {
                let mut line = Vec::with_capacity(object.json.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(event_type.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object.json);
                line.extend_from_slice(b"}\n");
                line
            }
            WatchItem::Raw(v) => {
                let mut line = serde_json::to_vec(v).unwrap_or_default();
                line.push(b'\n');
                line
            }
        }
    }

    /// The event as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            WatchItem::Object { event_type, object } => {
                json!({"type": event_type, "object": object.value().unwrap_or(Value::Null)})
            }
            WatchItem::Raw(v) => v.clone(),
        }
    }
}

/// A LIST's answer with items as cached objects, so JSON responses are assembled from
/// their wire bytes without re-encoding.
pub struct ListOut {
    pub kind: &'static str,
    pub api_version: String,
    pub metadata: Value,
    pub items: Vec<Arc<CachedObject>>,
}

/// The objects a LIST with `p`'s selectors would return, a page of
/// [`DELETE_PAGE_ITEMS`] at a time, all pages at the first page's revision: what a
/// collection delete and a namespace's cleanup walk, so that their memory is one page
/// of shared cache entries, not the whole collection decoded.
struct Pages {
    params: Params,
    done: bool,
}

/// Objects per page of [`Pages`].
const DELETE_PAGE_ITEMS: usize = 500;

impl Pages {
    fn new(p: &Params) -> Pages {
        let mut params = p.clone();
        params.limit = Some(DELETE_PAGE_ITEMS);
        params.continue_token = None;
        Pages {
            params,
            done: false,
        }
    }

    async fn next(
        &mut self,
        rest: &Rest,
        res: &Resource,
        ns: Option<&str>,
    ) -> Result<Option<ListOut>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let page = rest.list_cached(res, ns, &self.params).await?;
        match page.metadata.get("continue").and_then(Value::as_str) {
            Some(token) => {
                self.params.continue_token = Some(token.to_owned());
                self.params.resource_version = None;
                self.params.resource_version_match = None;
            }
            None => self.done = true,
        }
        Ok(Some(page))
    }
}

impl ListOut {
    /// The list's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let header =
            json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": self.metadata});
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.pop(); // the closing brace
        let body: usize = self.items.iter().map(|o| o.json.len() + 1).sum();
        out.reserve(body + 16);
        out.extend_from_slice(b",\"items\":[");
        for (i, o) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&o.json);
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The list as a JSON value.
    pub fn to_value(&self) -> Result<Value, ApiError> {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|o| o.value())
            .collect::<Result<_, _>>()?;
        Ok(
            json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": self.metadata, "items": items}),
        )
    }
}

/// The REST store shared by every request.
pub struct Rest {
    pub storage: Arc<dyn Storage>,
    pub cache: ObjectCache,
    pub registry: Registry,
    pub alloc: Allocators,
    pub config: RestConfig,
}

fn meta_of(obj: &Value) -> Result<ObjectMeta, ApiError> {
    match obj.get("metadata") {
        None | Some(Value::Null) => Ok(ObjectMeta::default()),
        // Deserialized from the borrowed value: no copy of the metadata tree.
        Some(m) => ObjectMeta::deserialize(m)
            .map_err(|e| ApiError::bad_request(format!("invalid metadata: {e}"))),
    }
}

/// [`meta_of`] without `managedFields`, which are left undecoded (they are a large part
/// of a stored object's metadata, and an update keeps them apart anyway).
fn meta_without_managers(obj: &Value) -> Result<ObjectMeta, ApiError> {
    match obj.get("metadata") {
        Some(Value::Object(m)) => {
            let fields = m
                .iter()
                .filter(|(k, _)| k.as_str() != "managedFields")
                .map(|(k, v)| (k.as_str(), v));
            ObjectMeta::deserialize(
                serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields),
            )
            .map_err(|e| ApiError::bad_request(format!("invalid metadata: {e}")))
        }
        _ => meta_of(obj),
    }
}

fn set_meta(obj: &mut Value, meta: &ObjectMeta) -> Result<(), ApiError> {
    obj["metadata"] = serde_json::to_value(meta).map_err(ApiError::internal)?;
    Ok(())
}

fn set_rv(obj: &mut Value, rev: Revision) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

fn decode_kv(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    set_rv(&mut obj, kv.mod_revision);
    Ok(obj)
}

fn encode_for_storage(obj: &Value) -> Result<Bytes, ApiError> {
    crate::cache::encode_stored(obj).map(Bytes::from)
}

/// Paths of fields present in `input` that decoding into the kind's type dropped.
fn unknown_fields(input: &Value, canonical: &Value, prefix: &str, out: &mut Vec<String>) {
    match (input, canonical) {
        (Value::Object(i), Value::Object(c)) => {
            for (k, v) in i {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match c.get(k) {
                    None if !v.is_null() => out.push(path),
                    Some(cv) => unknown_fields(v, cv, &path, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(c)) if i.len() == c.len() => {
            for (n, (iv, cv)) in i.iter().zip(c).enumerate() {
                unknown_fields(iv, cv, &format!("{prefix}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// With `fieldValidation=Strict`, an object carrying fields its kind does not have is a
/// 400, as upstream's strict decoding.
fn check_strict(res: &Resource, obj: &Value, p: &Params) -> Result<(), ApiError> {
    if p.field_validation.as_deref() != Some("Strict") {
        return Ok(());
    }
    let canonical = res.ops.decode(obj.clone())?;
    let mut unknown = Vec::new();
    unknown_fields(obj, &canonical, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        list.join(", ")
    )))
}

fn parse_rv(s: &str) -> Result<Revision, ApiError> {
    s.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {s:?}")))
}

/// `generateName` suffix alphabet and length (upstream's `utilrand.String(5)`).
/// A random (version 4) UID, from the thread's generator rather than a system call.
fn new_uid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

fn generate_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

fn encode_continue(rev: Revision, start: String) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: rev,
        start,
    };
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    serde_json::from_slice(&raw).map_err(|_| bad())
}

/// The result of a DELETE: the object as last seen, and whether it is gone already.
pub struct DeleteOutcome {
    pub object: Value,
    pub gone: bool,
}

/// A committed write: the object, and its cached wire form (sent as the response).
pub struct Written {
    pub object: Value,
    pub cached: Arc<CachedObject>,
}

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status is kept from the stored object when the kind has one.
    Main,
    /// The `status` subresource: only status changes.
    Status,
    /// A server-internal write (binding, scale): the whole object as given, defaulted but
    /// without the kind's update restrictions (upstream's binding REST does the same).
    System,
}

impl Rest {
    pub fn new(storage: Arc<dyn Storage>, config: RestConfig) -> Self {
        Rest {
            storage,
            registry: Registry::builtin(),
            cache: ObjectCache::new(DEFAULT_CACHE_BYTES),
            alloc: Allocators::default(),
            config,
        }
    }

    fn gr(res: &Resource) -> GroupResource<'static> {
        res.ops.group_resource()
    }

    fn storage_err<'a>(res: &Resource, name: &'a str) -> impl Fn(StorageError) -> ApiError + 'a {
        let gr = Self::gr(res);
        move |e| ApiError::from_storage(e, gr, name)
    }

    /// Caches a just-written version from its stored bytes (no re-encoding), so the
    /// response, the watchers and the LISTs that follow share one encoding of it.
    fn remember(
        &self,
        res: &Resource,
        key: &str,
        rev: Revision,
        obj: &Value,
        stored: &[u8],
    ) -> Result<Arc<CachedObject>, ApiError> {
        let cached = Arc::new(CachedObject::from_value_and_stored(res, rev, obj, stored)?);
        self.cache.insert(key, cached.clone());
        Ok(cached)
    }

    // ---------------------------------------------------------------------------------
    // Reads.

    pub async fn get(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let at = match p.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(rv) => {
                let rv = parse_rv(rv)?;
                let current = self
                    .storage
                    .current_revision()
                    .await
                    .map_err(Self::storage_err(res, name))?;
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
                None
            }
        };
        let (kv, _) = self
            .storage
            .get(&res.key(ns, name), at)
            .await
            .map_err(Self::storage_err(res, name))?;
        match kv {
            Some(kv) => decode_kv(&kv),
            None => Err(ApiError::not_found(Self::gr(res), name)),
        }
    }

    /// Reads the current stored object, or 404.
    async fn current(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(Value, KeyValue), ApiError> {
        let (kv, _) = self
            .storage
            .get(&res.key(ns, name), None)
            .await
            .map_err(Self::storage_err(res, name))?;
        let kv = kv.ok_or_else(|| ApiError::not_found(Self::gr(res), name))?;
        Ok((decode_kv(&kv)?, kv))
    }

    /// LIST as a JSON value.
    pub async fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> Result<Value, ApiError> {
        self.list_cached(res, ns, p).await?.to_value()
    }

    /// LIST with items as cached objects.
    pub async fn list_cached(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> Result<ListOut, ApiError> {
        let sel = Selection::parse(p, res)?;
        let prefix = res.list_prefix(ns);
        let (mut at, mut start) = match p.continue_token.as_deref() {
            Some(token) => {
                let t = decode_continue(token)?;
                if !t.start.starts_with(&prefix) && !prefix.starts_with(&t.start) {
                    return Err(ApiError::bad_request(
                        "continue key is not valid: key is outside the listed range",
                    ));
                }
                (Some(t.rv), Some(t.start))
            }
            None => (self.list_revision(p).await?, None),
        };
        let limit = p.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut continue_from: Option<String> = None;
        let mut remaining = None;
        // Storage counts what remains after each page by scanning (as etcd does), so
        // pages grow geometrically: a scan costs O(n log n) key visits, not O(n^2).
        // Without a limit the whole range is read at once.
        let mut page_keys = limit.map_or(0, |l| l.clamp(1, LIST_PAGE_KEYS));
        let revision = loop {
            let page_limit = (page_keys > 0).then_some(page_keys);
            page_keys = page_keys.saturating_mul(2).min(MAX_LIST_PAGE_KEYS);
            let page = self
                .storage
                .list(&prefix, ListOptions { at, limit: page_limit, start: start.clone() })
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } if p.continue_token.is_some() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         You can start a new list without the continue parameter.",
                    ),
                    other => ApiError::from_storage(other, Self::gr(res), ""),
                })?;
            at = Some(page.revision);
            let n = page.items.len();
            for (i, kv) in page.items.iter().enumerate() {
                let obj = self.cache.get_or_build(res, kv)?;
                if sel.matches_cached(&obj) {
                    items.push(obj);
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    let more = i + 1 < n || page.remaining > 0;
                    if more {
                        continue_from = Some(format!("{}\0", kv.key));
                        if sel.is_everything() {
                            remaining = Some(n - i - 1 + page.remaining);
                        }
                    }
                    break;
                }
            }
            if continue_from.is_some() || page.remaining == 0 || n == 0 {
                break page.revision;
            }
            start = page.items.last().map(|kv| format!("{}\0", kv.key));
        };
        let info = res.info();
        let mut metadata = json!({ "resourceVersion": revision.to_string() });
        if let Some(from) = continue_from {
            metadata["continue"] = json!(encode_continue(revision, from));
            if let Some(r) = remaining {
                metadata["remainingItemCount"] = json!(r);
            }
        }
        Ok(ListOut {
            kind: info.list_kind,
            api_version: info.api_version(),
            metadata,
            items,
        })
    }

    /// The revision a LIST reads at, from `resourceVersion` and `resourceVersionMatch`.
    async fn list_revision(&self, p: &Params) -> Result<Option<Revision>, ApiError> {
        let rv = match p.resource_version.as_deref() {
            None | Some("") => {
                if p.resource_version_match.is_some() {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                return Ok(None);
            }
            Some("0") => return Ok(None),
            Some(rv) => parse_rv(rv)?,
        };
        let current = self.storage.current_revision().await.map_err(|e| {
            ApiError::from_storage(
                e,
                GroupResource {
                    group: "",
                    resource: "",
                },
                "",
            )
        })?;
        match p.resource_version_match.as_deref() {
            Some("Exact") => Ok(Some(rv)),
            None | Some("NotOlderThan") => {
                if rv > current {
                    Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )))
                } else {
                    Ok(None)
                }
            }
            Some(other) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    // ---------------------------------------------------------------------------------
    // Create.

    /// Checks `apiVersion`/`kind` of a request body against the resource (upstream answers
    /// 400 when they disagree) and fills them in when absent.
    pub fn check_type(
        &self,
        res: &Resource,
        obj: &mut Value,
        expect_kind: &str,
        expect_api_version: &str,
    ) -> Result<(), ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(format!(
                "the body of the request is not a JSON object (expected a {})",
                res.info().kind
            )));
        };
        require_or_fill(map, "apiVersion", expect_api_version, |v| {
            format!(
                "the API version in the data ({v}) does not match the expected API version ({expect_api_version})"
            )
        })?;
        require_or_fill(map, "kind", expect_kind, |k| {
            format!("the kind in the data ({k}) does not match the expected kind ({expect_kind})")
        })
    }

    pub async fn create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        obj: Value,
        p: &Params,
    ) -> Result<Written, ApiError> {
        self.create_tracked(res, ns, obj, p, None).await
    }

    /// Creates `obj`. Its managers are the request's manager owning what it sent (after
    /// defaulting, as upstream decodes with defaults), or `applied`, what an apply that
    /// creates the object computed.
    async fn create_tracked(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        p: &Params,
        applied: Option<Option<Value>>,
    ) -> Result<Written, ApiError> {
        let info = res.info();
        self.check_type(res, &mut obj, info.kind, &info.api_version())?;
        check_strict(res, &obj, p)?;
        let mut name = String::new();
        let mut namespace: Option<String> = None;
        let mut prepare = |meta: &mut ObjectMeta| -> Result<(), ApiError> {
            if info.namespaced {
                let ns = ns.ok_or_else(ApiError::no_route)?;
                match meta.namespace.as_deref() {
                    Some(m) if !m.is_empty() && m != ns => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => meta.namespace = Some(ns.to_string()),
                }
            } else {
                meta.namespace = None;
            }
            if meta.name.as_deref().is_none_or(str::is_empty)
                && let Some(prefix) = meta.generate_name.as_deref().filter(|g| !g.is_empty())
            {
                meta.name = Some(format!("{prefix}{}", generate_suffix()));
            }
            let now = Timestamp::now();
            meta.uid = Some(new_uid());
            meta.creation_timestamp = Some(Time(
                now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now),
            ));
            meta.resource_version = None;
            meta.deletion_timestamp = None;
            meta.deletion_grace_period_seconds = None;
            meta.managed_fields = None;
            meta.generation = info.has_status.then_some(1);
            name = meta.name.clone().unwrap_or_default();
            namespace = meta.namespace.clone();
            Ok(())
        };
        let mut obj = res.ops.admit_create(obj, &mut prepare)?;
        // Upstream records the create's fields before admission plugins and the storage
        // layer add theirs (priority, cluster IPs): those belong to nobody.
        match applied {
            None => self.record_update(res, &json!({}), &mut obj, None, Part::Main, p),
            Some(managed) => put_managed_fields(&mut obj, managed),
        }
        if let Some(ns) = namespace.as_deref() {
            self.check_namespace_open(res, ns, &name).await?;
        }
        self.admit_create_with_state(res, &mut obj, &name).await?;
        if p.dry_run {
            if info.plural == "services" {
                self.alloc.release_service(&obj);
            }
            let cached = Arc::new(CachedObject::build(res, 0, obj.clone())?);
            return Ok(Written {
                object: obj,
                cached,
            });
        }
        let bytes = encode_for_storage(&obj)?;
        let created = self
            .storage
            .create(&res.key(namespace.as_deref(), &name), bytes.clone())
            .await;
        match created {
            Ok(kv) => {
                set_rv(&mut obj, kv.mod_revision);
                let cached = self.remember(res, &kv.key, kv.mod_revision, &obj, &bytes)?;
                Ok(Written {
                    object: obj,
                    cached,
                })
            }
            Err(e) => {
                if info.plural == "services" {
                    self.alloc.release_service(&obj);
                }
                Err(ApiError::from_storage(e, Self::gr(res), &name))
            }
        }
    }

    /// A namespaced object may be created only in an existing namespace that is not
    /// terminating.
    async fn check_namespace_open(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let (kv, _) = self
            .storage
            .get(&format!("/registry/namespaces/{ns}"), None)
            .await
            .map_err(Self::storage_err(res, name))?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found(
                GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                ns,
            ));
        };
        let namespaces = self
            .registry
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("no namespaces"))?;
        if self.cache.get_or_build(namespaces, &kv)?.deleting {
            return Err(ApiError::forbidden(
                Self::gr(res),
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }

    /// Admission that needs cluster state: service address allocation and pod priority.
    async fn admit_create_with_state(
        &self,
        res: &Resource,
        obj: &mut Value,
        name: &str,
    ) -> Result<(), ApiError> {
        match res.info().plural {
            "services" => self.alloc.allocate_service(obj, None, name),
            "pods" => self.admit_pod_priority(obj, name).await,
            _ => Ok(()),
        }
    }

    /// Upstream's Priority admission plugin: resolve `priorityClassName` into `priority`.
    async fn admit_pod_priority(&self, obj: &mut Value, name: &str) -> Result<(), ApiError> {
        let Some(class) = obj
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Ok(());
        };
        let (value, policy) = match class {
            "system-node-critical" => (2_000_001_000_i64, "PreemptLowerPriority".to_string()),
            "system-cluster-critical" => (2_000_000_000, "PreemptLowerPriority".to_string()),
            other => {
                let (kv, _) = self
                    .storage
                    .get(
                        &format!("/registry/scheduling.k8s.io/priorityclasses/{other}"),
                        None,
                    )
                    .await
                    .map_err(|e| {
                        ApiError::from_storage(
                            e,
                            GroupResource {
                                group: "",
                                resource: "pods",
                            },
                            name,
                        )
                    })?;
                let Some(kv) = kv else {
                    return Err(ApiError::forbidden(
                        GroupResource {
                            group: "",
                            resource: "pods",
                        },
                        name,
                        &format!("no PriorityClass with name {other} was found"),
                    ));
                };
                let pc = decode_kv(&kv)?;
                let value = pc.get("value").and_then(Value::as_i64).unwrap_or(0);
                let policy = pc
                    .get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("PreemptLowerPriority");
                (value, policy.to_string())
            }
        };
        obj["spec"]["priority"] = json!(value);
        obj["spec"]["preemptionPolicy"] = json!(policy);
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Update and patch.

    /// PUT of the main resource or its status.
    pub async fn update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        part: Part,
        p: &Params,
    ) -> Result<Written, ApiError> {
        let info = res.info();
        self.check_type(res, &mut obj, info.kind, &info.api_version())?;
        let meta = meta_of(&obj)?;
        if meta.name.as_deref().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta.name.as_deref().unwrap_or("")
            )));
        }
        if info.namespaced
            && meta
                .namespace
                .as_deref()
                .is_some_and(|m| !m.is_empty() && Some(m) != ns)
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let pinned = meta
            .resource_version
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_rv)
            .transpose()?;
        self.guaranteed_update(
            res,
            ns,
            name,
            (pinned, tracking_of(part)),
            p,
            |_current| Ok(obj.clone()),
            part,
        )
        .await
    }

    /// PATCH of the main resource or its status.
    pub async fn patch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        (patch_type, body): (PatchType, &[u8]),
        part: Part,
        p: &Params,
    ) -> Result<Written, ApiError> {
        let info = res.info();
        let api_version = info.api_version();
        self.guaranteed_update(
            res,
            ns,
            name,
            (None, tracking_of(part)),
            p,
            |current| {
                let patched = apply_patch(patch_type, current, body, &api_version, info.kind)
                    .map_err(|e| {
                        if e.is_bad_request() {
                            ApiError::bad_request(e.to_string())
                        } else {
                            ApiError::invalid(
                                info.kind,
                                info.group,
                                name,
                                &[bosun_api::validation::FieldError::invalid(
                                    "",
                                    "",
                                    &e.to_string(),
                                )],
                            )
                        }
                    })?;
                Ok(patched)
            },
            part,
        )
        .await
    }

    /// Server-side apply (PATCH with `application/apply-patch+yaml`): merges the
    /// configuration in `body` (YAML or JSON) as `p.manager()`'s whole intent and creates
    /// the object when it does not exist. Returns the write and whether it created.
    pub async fn apply(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        body: &[u8],
        part: Part,
        p: &Params,
    ) -> Result<(Written, bool), ApiError> {
        let config = self.apply_config(res, ns, name, body)?;
        let apply_to = |live: &Value| self.apply_to(res, live, &config, part, p);
        for _ in 0..MAX_WRITE_RETRIES {
            let updated = self
                .guaranteed_update(
                    res,
                    ns,
                    name,
                    (None, Tracking::Applied),
                    p,
                    |current| apply_to(current),
                    part,
                )
                .await;
            match updated {
                Err(e) if e.code == 404 && part == Part::Main => {}
                other => return other.map(|w| (w, false)),
            }
            // Upstream applies upsert: the configuration applied to nothing is created.
            let mut created = apply_to(&json!({}))?;
            let managers = take_managed_fields(&mut created);
            match self
                .create_tracked(res, ns, created, p, Some(managers))
                .await
            {
                Err(e) if e.reason == "AlreadyExists" => continue,
                other => return other.map(|w| (w, true)),
            }
        }
        Err(ApiError::modified(Self::gr(res), name))
    }

    /// Decodes and checks an applied configuration (upstream `applyPatcher` and the
    /// structured merge manager's checks): an object of the resource's own apiVersion and
    /// kind, naming the object of the URL, without `managedFields`.
    fn apply_config(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let info = res.info();
        let mut config: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let expected = info.api_version();
        let Some(map) = config.as_object_mut() else {
            return Err(ApiError::bad_request(
                "error decoding YAML: the applied configuration must be an object",
            ));
        };
        let version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if version != expected {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {version}, expected: {expected}"
            )));
        }
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
        let meta = map
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        if meta.get("managedFields").is_some_and(|m| !m.is_null()) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        require_or_fill(meta, "name", name, |n| {
            format!("the name of the object ({n}) does not match the name on the URL ({name})")
        })?;
        if info.namespaced
            && let Some(m) = meta.get("namespace").and_then(Value::as_str)
            && !m.is_empty()
            && Some(m) != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(config)
    }

    /// Applies `config` to `live` (`{}` for a create) and leaves the new managers in the
    /// result's `metadata.managedFields`.
    fn apply_to(
        &self,
        res: &Resource,
        live: &Value,
        config: &Value,
        part: Part,
        p: &Params,
    ) -> Result<Value, ApiError> {
        let context = WriteContext::new(res, part);
        let write = context.write_info(p.manager());
        let managed = stored_managers(live.pointer("/metadata/managedFields"));
        let force = p.force.unwrap_or(false);
        let (mut obj, managed) = fieldmanager::apply(live, config, &managed, &write, force)
            .map_err(|e| match e {
                ApplyError::Conflicts(conflicts) => ApiError::apply_conflict(&conflicts),
                ApplyError::Shape(e) => ApiError::bad_request(format!(
                    "failed to create typed patch object ({}, Kind={}): {e}",
                    context.api_version, context.kind
                )),
            })?;
        // Upstream types the configuration against the kind's schema: a field the kind
        // does not have is refused, whatever fieldValidation says.
        let canonical = res.ops.decode(obj.clone())?;
        let mut unknown = Vec::new();
        unknown_fields(&obj, &canonical, "", &mut unknown);
        if let Some(field) = unknown.first() {
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({}, Kind={}): .{field}: field not declared in schema",
                context.api_version, context.kind
            )));
        }
        put_managed_fields(&mut obj, managed.into_encoded());
        Ok(obj)
    }

    /// A server-internal read-modify-write of the whole object (binding, scale).
    pub async fn update_with(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        p: &Params,
        transform: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        self.guaranteed_update(
            res,
            ns,
            name,
            (None, Tracking::Untracked),
            p,
            transform,
            Part::System,
        )
        .await
    }

    /// Reads, transforms and writes an object under optimistic concurrency, retrying on
    /// lost races unless the client pinned a resourceVersion (in the body or the patch),
    /// and records the write's managers as `tracking` says.
    #[allow(clippy::too_many_arguments)]
    async fn guaranteed_update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        (pinned, tracking): (Option<Revision>, Tracking),
        p: &Params,
        transform: impl Fn(&Value) -> Result<Value, ApiError>,
        part: Part,
    ) -> Result<Written, ApiError> {
        let info = res.info();
        for _ in 0..MAX_WRITE_RETRIES {
            let (current, kv) = self.current(res, ns, name).await?;
            let mut new = transform(&current)?;
            self.check_type(res, &mut new, info.kind, &info.api_version())?;
            if part != Part::System {
                check_strict(res, &new, p)?;
            }
            // Managers are set after admission, which would otherwise re-encode them.
            let sent_managers = match tracking {
                Tracking::Untracked => None,
                Tracking::Update | Tracking::Applied => Some(take_managed_fields(&mut new)),
            };
            let new_meta = meta_of(&new)?;
            let client_rv = new_meta
                .resource_version
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(parse_rv)
                .transpose()?;
            if let Some(rv) = pinned.or(client_rv)
                && rv != kv.mod_revision
            {
                return Err(ApiError::modified(Self::gr(res), name));
            }
            // A pinned write fails on a lost race; an unpinned one re-reads and retries.
            let retry = pinned.is_none();
            let mut new = self
                .prepare_update(res, new, new_meta, &current, part)
                .await?;
            match (tracking, sent_managers) {
                (Tracking::Update, Some(sent)) => {
                    self.record_update(res, &current, &mut new, sent, part, p)
                }
                (Tracking::Applied, Some(managers)) => put_managed_fields(&mut new, managers),
                _ => {}
            }
            if values_equal_ignoring_rv(&new, &current) {
                let cached = self.cache.get_or_build(res, &kv)?;
                return Ok(Written {
                    object: current,
                    cached,
                });
            }
            // Removing the last finalizer of an object being deleted deletes it.
            let finalizing = new
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
                && new
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            if p.dry_run {
                let cached = Arc::new(CachedObject::build(res, kv.mod_revision, new.clone())?);
                return Ok(Written {
                    object: new,
                    cached,
                });
            }
            if finalizing && !(info.plural == "pods" && is_graceful_pod(&new)) {
                match self.storage.delete(&kv.key, Some(kv.mod_revision)).await {
                    Ok(d) => {
                        let mut gone = new;
                        set_rv(&mut gone, d.revision);
                        self.after_delete(res, &gone);
                        let cached = Arc::new(CachedObject::build(res, d.revision, gone.clone())?);
                        return Ok(Written {
                            object: gone,
                            cached,
                        });
                    }
                    Err(StorageError::Conflict { .. }) if retry => continue,
                    Err(e) => return Err(ApiError::from_storage(e, Self::gr(res), name)),
                }
            }
            let bytes = encode_for_storage(&new)?;
            match self
                .storage
                .update(&kv.key, bytes.clone(), kv.mod_revision)
                .await
            {
                Ok(written) => {
                    let mut out = new;
                    set_rv(&mut out, written.mod_revision);
                    let cached = self.remember(res, &kv.key, written.mod_revision, &out, &bytes)?;
                    return Ok(Written {
                        object: out,
                        cached,
                    });
                }
                Err(StorageError::Conflict { .. }) if retry => continue,
                Err(e) => return Err(ApiError::from_storage(e, Self::gr(res), name)),
            }
        }
        Err(ApiError::modified(Self::gr(res), name))
    }

    /// Records an update from `live` to `new` in `new`'s `metadata.managedFields`. `sent`
    /// is the list the client sent: as upstream, `[{}]` clears every manager, a valid
    /// non-empty list replaces the stored one (through the main resource), and anything
    /// else keeps the stored one, so clients unaware of the field never erase it.
    fn record_update(
        &self,
        res: &Resource,
        live: &Value,
        new: &mut Value,
        sent: Option<Value>,
        part: Part,
        p: &Params,
    ) {
        let subresource = subresource_of(part);
        let stored_list = live.pointer("/metadata/managedFields");
        let stored = || stored_managers(stored_list);
        let mut managed = match sent {
            Some(list) if Managed::is_reset(&list) => Managed::default(),
            // Sent back as stored (a patch that left them alone, a PUT of what was read):
            // the stored entries, taken as they are rather than checked and decoded.
            Some(list) if stored_list == Some(&list) => {
                Managed::decode_stored_owned(list).unwrap_or_default()
            }
            Some(list) if subresource.is_empty() => match Managed::decode(&list) {
                Ok(m) if !m.entries().is_empty() => m,
                _ => stored(),
            },
            _ => stored(),
        };
        let context = WriteContext::new(res, part);
        fieldmanager::update(live, new, &mut managed, &context.write_info(p.manager()));
        put_managed_fields(new, managed.into_encoded());
    }

    /// Carries system metadata over from `current`, splits spec from status, defaults,
    /// validates and bumps `generation` when the spec changed.
    async fn prepare_update(
        &self,
        res: &Resource,
        mut new: Value,
        mut meta: ObjectMeta,
        current: &Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let info = res.info();
        // The status subresource writes the stored metadata back whole, managers included.
        let old_meta = if part == Part::Status {
            meta_of(current)?
        } else {
            meta_without_managers(current)?
        };
        if part == Part::Status {
            // Only status changes through the status subresource.
            let mut merged = current.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            new = merged;
            meta = old_meta.clone();
        } else if info.has_status && part == Part::Main {
            match current.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if meta.uid.is_none() {
            meta.uid = old_meta.uid.clone();
        }
        meta.creation_timestamp = old_meta.creation_timestamp.clone();
        meta.deletion_timestamp = old_meta.deletion_timestamp.clone();
        meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds;
        meta.generation = old_meta.generation;
        // Unconditional updates carry no resourceVersion; validation sees the stored one
        // (the storage encoding drops it again).
        meta.resource_version = old_meta.resource_version.clone();
        meta.namespace = old_meta.namespace.clone();
        set_meta(&mut new, &meta)?;
        let mut new = match part {
            Part::System => res.ops.decode(new)?,
            Part::Main | Part::Status
                if !res.ops.defaults_metadata() && same_but_metadata(&new, current) =>
            {
                res.ops.admit_metadata_update(new, &meta, &old_meta)?
            }
            Part::Main | Part::Status => res.ops.admit_update(new, current)?,
        };
        if info.plural == "services" {
            self.alloc.carry_over_service(&mut new, current)?;
        }
        if info.has_status && part != Part::Status && new.get("spec") != current.get("spec") {
            let generation = old_meta.generation.unwrap_or(0) + 1;
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("generation".into(), json!(generation));
            }
        }
        Ok(new)
    }

    // ---------------------------------------------------------------------------------
    // Delete.

    pub async fn delete(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &Value,
        p: &Params,
    ) -> Result<DeleteOutcome, ApiError> {
        let grace = opts
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(p.grace_period_seconds);
        let pre_uid = opts
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let pre_rv = opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(parse_rv)
            .transpose()?;
        for _ in 0..MAX_WRITE_RETRIES {
            let (current, kv) = self.current(res, ns, name).await?;
            let meta = meta_of(&current)?;
            if let Some(uid) = &pre_uid
                && meta.uid.as_deref() != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    Self::gr(res),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta.uid.as_deref().unwrap_or("")
                    ),
                ));
            }
            if let Some(rv) = pre_rv
                && rv != kv.mod_revision
            {
                return Err(ApiError::conflict(
                    Self::gr(res),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let outcome = match self.plan_delete(res, &current, &meta, grace) {
                DeletePlan::Mark(marked) => {
                    if p.dry_run {
                        return Ok(DeleteOutcome {
                            object: marked,
                            gone: false,
                        });
                    }
                    let bytes = encode_for_storage(&marked)?;
                    match self.storage.update(&kv.key, bytes, kv.mod_revision).await {
                        Ok(w) => {
                            let mut obj = marked;
                            set_rv(&mut obj, w.mod_revision);
                            DeleteOutcome {
                                object: obj,
                                gone: false,
                            }
                        }
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => return Err(ApiError::from_storage(e, Self::gr(res), name)),
                    }
                }
                DeletePlan::AlreadyDeleting => DeleteOutcome {
                    object: current,
                    gone: false,
                },
                DeletePlan::Now => {
                    if p.dry_run {
                        return Ok(DeleteOutcome {
                            object: current,
                            gone: true,
                        });
                    }
                    match self.storage.delete(&kv.key, Some(kv.mod_revision)).await {
                        Ok(d) => {
                            let mut obj = current;
                            set_rv(&mut obj, d.revision);
                            self.after_delete(res, &obj);
                            DeleteOutcome {
                                object: obj,
                                gone: true,
                            }
                        }
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(e) => return Err(ApiError::from_storage(e, Self::gr(res), name)),
                    }
                }
            };
            return Ok(outcome);
        }
        Err(ApiError::modified(Self::gr(res), name))
    }

    fn plan_delete(
        &self,
        res: &Resource,
        current: &Value,
        meta: &ObjectMeta,
        grace: Option<i64>,
    ) -> DeletePlan {
        let deleting = meta.deletion_timestamp.is_some();
        let has_finalizers = meta.finalizers.as_ref().is_some_and(|f| !f.is_empty());
        let info = res.info();
        let now = Timestamp::now();
        let now_s = Time(now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now));
        if info.plural == "namespaces" {
            if deleting {
                return DeletePlan::AlreadyDeleting;
            }
            let mut marked = current.clone();
            let mut m = meta.clone();
            m.deletion_timestamp = Some(now_s);
            m.deletion_grace_period_seconds = Some(0);
            marked["metadata"] = serde_json::to_value(&m).unwrap_or(Value::Null);
            marked["status"]["phase"] = json!("Terminating");
            return DeletePlan::Mark(marked);
        }
        if info.plural == "pods" && is_graceful_pod(current) {
            let spec_grace = current
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64);
            let grace = grace
                .or(spec_grace)
                .unwrap_or(DEFAULT_POD_GRACE_SECONDS)
                .max(0);
            let shortening = meta
                .deletion_grace_period_seconds
                .is_some_and(|g| grace < g);
            if grace > 0 && (!deleting || shortening) {
                let mut m = meta.clone();
                let at = now
                    .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(grace))
                    .unwrap_or(now);
                m.deletion_timestamp = Some(Time(
                    at.round(k8s_openapi::jiff::Unit::Second).unwrap_or(at),
                ));
                m.deletion_grace_period_seconds = Some(grace);
                let mut marked = current.clone();
                marked["metadata"] = serde_json::to_value(&m).unwrap_or(Value::Null);
                return DeletePlan::Mark(marked);
            }
            if grace > 0 {
                return DeletePlan::AlreadyDeleting;
            }
            if !has_finalizers {
                return DeletePlan::Now;
            }
        }
        if has_finalizers {
            if deleting {
                return DeletePlan::AlreadyDeleting;
            }
            let mut m = meta.clone();
            m.deletion_timestamp = Some(now_s);
            m.deletion_grace_period_seconds = Some(0);
            let mut marked = current.clone();
            marked["metadata"] = serde_json::to_value(&m).unwrap_or(Value::Null);
            return DeletePlan::Mark(marked);
        }
        DeletePlan::Now
    }

    fn after_delete(&self, res: &Resource, obj: &Value) {
        if res.info().plural == "services" {
            self.alloc.release_service(obj);
        }
    }

    /// DELETE of a collection: deletes every object the selectors match, returning the
    /// list of what was deleted or marked for deletion. The list keeps each object as
    /// its JSON (as a LIST's items are), not as a decoded value, which took about six
    /// times the memory (28 against 4.7 KB per pod).
    pub async fn delete_collection(
        &self,
        res: &Resource,
        ns: Option<&str>,
        opts: &Value,
        p: &Params,
    ) -> Result<ListOut, ApiError> {
        let mut pages = Pages::new(p);
        let mut deleted = Vec::new();
        let mut list_revision = None;
        while let Some(page) = pages.next(self, res, ns).await? {
            list_revision.get_or_insert_with(|| page.metadata["resourceVersion"].clone());
            for item in &page.items {
                let name = item.field("metadata.name").unwrap_or_default();
                let item_ns = item.field("metadata.namespace");
                match self
                    .delete(res, item_ns.as_deref().or(ns), &name, opts, p)
                    .await
                {
                    Ok(out) => deleted.push(Arc::new(CachedObject::of_object(res, &out.object)?)),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let info = res.info();
        Ok(ListOut {
            kind: info.list_kind,
            api_version: info.api_version(),
            metadata: json!({"resourceVersion": list_revision.unwrap_or(Value::Null)}),
            items: deleted,
        })
    }

    /// Deletes every object in a terminating namespace, then the namespace itself once it
    /// is empty. Runs in the background after the namespace was marked; gives up after
    /// `max_rounds` rounds one second apart (the namespace then stays `Terminating`, as
    /// upstream's does while content remains).
    pub async fn finalize_namespace(self: Arc<Self>, ns: String, max_rounds: usize) {
        let opts = json!({});
        let params = Params::default();
        for round in 0..max_rounds {
            let mut remaining = 0usize;
            for res in self.registry.all().iter().filter(|r| r.info().namespaced) {
                let mut pages = Pages::new(&params);
                while let Ok(Some(page)) = pages.next(&self, res, Some(&ns)).await {
                    for item in &page.items {
                        remaining += 1;
                        let name = item.field("metadata.name").unwrap_or_default();
                        if let Err(e) = self.delete(res, Some(&ns), &name, &opts, &params).await
                            && e.code != 404
                        {
                            tracing::warn!(namespace = %ns, %name, error = %e, "namespace cleanup: delete failed");
                        }
                    }
                }
            }
            if remaining == 0 {
                break;
            }
            if round + 1 < max_rounds {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let key = format!("/registry/namespaces/{ns}");
        for _ in 0..MAX_WRITE_RETRIES {
            let Ok((Some(kv), _)) = self.storage.get(&key, None).await else {
                return;
            };
            let mut still_there = false;
            for res in self.registry.all().iter().filter(|r| r.info().namespaced) {
                if let Ok(l) = self
                    .storage
                    .list(
                        &res.list_prefix(Some(&ns)),
                        ListOptions {
                            limit: Some(1),
                            ..Default::default()
                        },
                    )
                    .await
                    && !l.items.is_empty()
                {
                    still_there = true;
                }
            }
            if still_there {
                tracing::info!(namespace = %ns, "namespace still has content; it stays Terminating");
                return;
            }
            match self.storage.delete(&key, Some(kv.mod_revision)).await {
                Err(StorageError::Conflict { .. }) => continue,
                _ => return,
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Watch.

    /// Starts a watch; events flow into the returned bounded channel until the timeout,
    /// the client going away, or the storage ending the watcher.
    pub async fn watch(
        self: &Arc<Self>,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> Result<mpsc::Receiver<WatchItem>, ApiError> {
        let sel = Selection::parse(p, res)?;
        let prefix = res.list_prefix(ns);
        let (tx, rx) = mpsc::channel(WATCH_QUEUE_EVENTS);
        let mut initial = Vec::new();
        // Upstream: an unset or "0" resourceVersion starts with the current state as
        // ADDED events; `sendInitialEvents` asks for the same from a given version.
        let initial_at = match p.resource_version.as_deref() {
            None | Some("") | Some("0") => Some(None),
            Some(rv) if p.send_initial_events => Some(Some(rv.to_string())),
            Some(_) => None,
        };
        let after = match initial_at {
            Some(rv) => {
                let list_params = Params {
                    label_selector: p.label_selector.clone(),
                    field_selector: p.field_selector.clone(),
                    resource_version: rv,
                    ..Default::default()
                };
                let list = self.list_cached(res, ns, &list_params).await?;
                for object in list.items {
                    initial.push(WatchItem::Object {
                        event_type: "ADDED",
                        object,
                    });
                }
                parse_rv(list.metadata["resourceVersion"].as_str().unwrap_or("0"))?
            }
            None => parse_rv(p.resource_version.as_deref().unwrap_or("0"))?,
        };
        let info = res.info();
        let bookmark = move |rev: Revision, initial_end: bool| {
            let mut meta = json!({"resourceVersion": rev.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            WatchItem::Raw(
                json!({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}}),
            )
        };
        let stream = match self.storage.watch(&prefix, after).await {
            Ok(s) => s,
            Err(StorageError::Compacted {
                requested,
                compacted,
            }) => {
                // Upstream answers 200 with one ERROR event carrying 410 Expired.
                let err = ApiError::expired(format!(
                    "too old resource version: {requested} ({compacted})"
                ));
                let _ = tx.try_send(WatchItem::Raw(
                    json!({"type": "ERROR", "object": err.to_status()}),
                ));
                return Ok(rx);
            }
            Err(e) => return Err(ApiError::from_storage(e, Self::gr(res), "")),
        };
        let timeout = self.watch_timeout(p);
        let allow_bookmarks = p.allow_watch_bookmarks;
        let send_initial_end = p.send_initial_events && allow_bookmarks;
        let this = self.clone();
        let res = res.clone();
        tokio::spawn(async move {
            for ev in initial {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if send_initial_end && tx.send(bookmark(after, true)).await.is_err() {
                return;
            }
            let mut stream = stream;
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            loop {
                let next = tokio::select! {
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                    n = stream.next() => n,
                };
                let event = match next {
                    None | Some(Err(_)) => return,
                    Some(Ok(ev)) => ev,
                };
                let out = match event {
                    WatchEvent::Progress { revision } => {
                        allow_bookmarks.then(|| bookmark(revision, false))
                    }
                    other => this.transform_event(&res, &other, &sel),
                };
                if let Some(out) = out
                    && tx.send(out).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(rx)
    }

    fn watch_timeout(&self, p: &Params) -> Duration {
        let max = self.config.max_watch_timeout;
        match p.timeout_seconds {
            Some(s) => Duration::from_secs(s).min(max),
            None => {
                let min = self.config.min_watch_timeout.min(max);
                let span = (max - min).as_secs();
                min + Duration::from_secs(if span == 0 {
                    0
                } else {
                    rand::random_range(0..=span)
                })
            }
        }
    }
}

fn tracking_of(part: Part) -> Tracking {
    match part {
        Part::Main | Part::Status => Tracking::Update,
        Part::System => Tracking::Untracked,
    }
}

enum DeletePlan {
    /// Write this object (deletionTimestamp set); it goes away later.
    Mark(Value),
    /// Already marked: answer the object as it is.
    AlreadyDeleting,
    /// Remove the key now.
    Now,
}

/// A pod bound to a node and not finished is deleted gracefully: the kubelet finishes it.
fn is_graceful_pod(pod: &Value) -> bool {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    bound && phase != "Succeeded" && phase != "Failed"
}

/// Whether two objects are equal but for `metadata.resourceVersion` (compared in place:
/// every update asks, so nothing is copied).
fn values_equal_ignoring_rv(a: &Value, b: &Value) -> bool {
    fn maps_equal(
        a: &serde_json::Map<String, Value>,
        b: &serde_json::Map<String, Value>,
        eq: impl Fn(&str, &Value, &Value) -> bool,
        skip: Option<&str>,
    ) -> bool {
        let kept = |m: &serde_json::Map<String, Value>| {
            m.keys().filter(|k| Some(k.as_str()) != skip).count()
        };
        kept(a) == kept(b)
            && a.iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .all(|(k, va)| b.get(k).is_some_and(|vb| eq(k, va, vb)))
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => maps_equal(
            a,
            b,
            |k, va, vb| match (k, va.as_object(), vb.as_object()) {
                ("metadata", Some(ma), Some(mb)) => {
                    maps_equal(ma, mb, |_, x, y| x == y, Some("resourceVersion"))
                }
                _ => va == vb,
            },
            None,
        ),
        _ => a == b,
    }
}

/// The object `prev` as last seen, stamped with the revision that removed it.
fn gone_object(res: &Resource, prev: &KeyValue, revision: Revision) -> Option<Arc<CachedObject>> {
    CachedObject::from_stored(res, &prev.key, &prev.value, revision)
        .ok()
        .map(Arc::new)
}

impl Rest {
    /// Turns a storage event into the event a watcher with `sel` sees: an object entering
    /// the selection is ADDED, leaving it is DELETED (upstream's cacheWatcher rules).
    /// The new version comes from the shared cache, so all watchers share its encoding.
    fn transform_event(
        &self,
        res: &Resource,
        ev: &WatchEvent,
        sel: &Selection,
    ) -> Option<WatchItem> {
        match ev {
            WatchEvent::Put { kv, prev } => {
                let new = self.cache.get_or_build(res, kv).ok()?;
                let new_in = sel.matches_cached(&new);
                let old_in = match prev {
                    None => false,
                    Some(_) if sel.is_everything() => true,
                    Some(p) => CachedObject::from_stored(res, &p.key, &p.value, p.mod_revision)
                        .is_ok_and(|o| sel.matches_cached(&o)),
                };
                match (old_in, new_in) {
                    (true, true) => Some(WatchItem::Object {
                        event_type: "MODIFIED",
                        object: new,
                    }),
                    (false, true) => Some(WatchItem::Object {
                        event_type: "ADDED",
                        object: new,
                    }),
                    (true, false) => {
                        let gone = gone_object(res, prev.as_ref()?, kv.mod_revision)?;
                        Some(WatchItem::Object {
                            event_type: "DELETED",
                            object: gone,
                        })
                    }
                    (false, false) => None,
                }
            }
            WatchEvent::Delete { prev, revision } => {
                // Every watcher of this key sees the same tombstone: cache it in the
                // key's slot, which the live object no longer needs.
                let gone = match self.cache.lookup(&prev.key, *revision) {
                    Some(hit) => hit,
                    None => {
                        let built = gone_object(res, prev, *revision)?;
                        self.cache.insert(&prev.key, built.clone());
                        built
                    }
                };
                sel.matches_cached(&gone).then_some(WatchItem::Object {
                    event_type: "DELETED",
                    object: gone,
                })
            }
            WatchEvent::Progress { .. } => None,
        }
    }
}

/// Checks that the string at `key` in `map` is `want` (a 400 with `mismatch(found)`
/// when not), or sets it to `want` when it is absent (or not a string).
fn require_or_fill(
    map: &mut serde_json::Map<String, Value>,
    key: &str,
    want: &str,
    mismatch: impl FnOnce(&str) -> String,
) -> Result<(), ApiError> {
    match map.get(key).and_then(Value::as_str) {
        Some(found) if found != want => Err(ApiError::bad_request(mismatch(found))),
        Some(_) => Ok(()),
        None => {
            map.insert(key.into(), json!(want));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_only_the_top_level_resource_version() {
        let a = json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"x": 1}});
        let same = json!({"metadata": {"name": "p", "resourceVersion": "2"}, "spec": {"x": 1}});
        let no_rv = json!({"metadata": {"name": "p"}, "spec": {"x": 1}});
        assert!(values_equal_ignoring_rv(&a, &same));
        assert!(values_equal_ignoring_rv(&a, &no_rv));
        assert!(values_equal_ignoring_rv(&no_rv, &a));
        for different in [
            json!({"metadata": {"name": "q", "resourceVersion": "1"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"x": 2}}),
            json!({"metadata": {"name": "p", "resourceVersion": "1"}}),
            json!({"metadata": {"name": "p", "uid": "u"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "p"}, "spec": {"x": 1, "resourceVersion": "1"}}),
            json!({"metadata": null, "spec": {"x": 1}}),
        ] {
            assert!(!values_equal_ignoring_rv(&a, &different), "{different}");
            assert!(!values_equal_ignoring_rv(&different, &a), "{different}");
        }
        assert!(values_equal_ignoring_rv(&json!(1), &json!(1)));
    }

    #[test]
    fn metadata_decodes_with_or_without_its_managers() {
        let obj = json!({"metadata": {"name": "p", "uid": "u", "labels": {"a": "1"},
            "managedFields": [{"manager": "m", "operation": "Update", "fieldsV1": {"f:x": {}}}]}});
        let full = meta_of(&obj).unwrap();
        assert_eq!(full.managed_fields.as_ref().map(Vec::len), Some(1));
        let without = meta_without_managers(&obj).unwrap();
        assert_eq!(
            without,
            ObjectMeta {
                managed_fields: None,
                ..full
            }
        );
        for plain in [json!({}), json!({"metadata": null})] {
            assert_eq!(
                meta_without_managers(&plain).unwrap(),
                ObjectMeta::default()
            );
        }
        let bad = json!({"metadata": {"name": 5}});
        assert_eq!(meta_without_managers(&bad).unwrap_err().code, 400);
    }

    #[test]
    fn field_values_render_as_upstream_attributes() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"nodeName": "n1", "hostNetwork": true},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]},
        });
        assert_eq!(field_value(&pod, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(
            field_value(&pod, "spec.hostNetwork").as_deref(),
            Some("true")
        );
        assert_eq!(
            field_value(&pod, "status.podIPs").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(field_value(&pod, "spec.schedulerName"), None);
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert_eq!(
            field_value(&node, "spec.unschedulable").as_deref(),
            Some("false")
        );
        let event = json!({"source": {"component": "kubelet"}, "involvedObject": {"kind": "Pod"}});
        assert_eq!(field_value(&event, "source").as_deref(), Some("kubelet"));
        assert_eq!(
            field_value(&event, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
    }

    #[test]
    fn uids_are_random_version_4() {
        let a = uuid::Uuid::parse_str(&new_uid()).unwrap();
        let b = uuid::Uuid::parse_str(&new_uid()).unwrap();
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
    }
}
