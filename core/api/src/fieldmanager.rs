//! Field management: who owns which field of an object (`metadata.managedFields`), and
//! server-side apply. A port of the parts of `sigs.k8s.io/structured-merge-diff` (`merge`,
//! `typed`, `fieldpath`) and `k8s.io/apimachinery/pkg/util/managedfields/internal` that
//! kube-apiserver runs on every write.
//!
//! The API server decodes the live object's entries into [`Managed`], then calls
//! [`update`] for a create, an update or a non-apply patch (the request's manager takes the
//! fields it changed from everyone else) or [`apply`] for an apply patch (the applied
//! configuration is the manager's whole intent: it is merged in, fields the manager applied
//! before and no longer does are removed unless someone else owns them, and changing a
//! value another manager owns is a [`Conflict`] unless forced). [`Managed::encode`] gives
//! the entries back. Everything here is pure: the caller passes the time in.
//!
//! The schema is the strategic merge patch metadata of [`crate::patch::schema_for`], read
//! the way the OpenAPI list types read: merging lists are associative lists or sets, other
//! lists are atomic, maps are granular unless marked atomic.
//!
//! Layout: `fieldpath` holds paths, sets and the `FieldsV1` format; `typed` the walks over
//! objects (field sets, comparison, merge, removal).

pub mod fieldpath;
mod typed;

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

pub use fieldpath::{FieldsError, Path, PathElement, Set};
pub use typed::ShapeError;
use typed::Ty;

use crate::patch::PatchSchema;

/// Upstream `FieldManagerMaxLength`: the longest `fieldManager` a request may name.
pub const MAX_FIELD_MANAGER_LEN: usize = 128;

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream `DefaultMaxUpdateManagers`: beyond this many update entries, the oldest are
/// folded into one [`ANCIENT_CHANGES_MANAGER`] entry, so the list stays bounded.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager the oldest update entries are folded into.
pub const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// The manager whose applies keep [`LAST_APPLIED_ANNOTATION`] in step, so that a
/// client-side apply after a server-side one still works (upstream `lastAppliedUpdater`).
pub const KUBECTL_MANAGER: &str = "kubectl";

/// The operation a managed fields entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// What makes two entries the same manager (upstream `BuildManagerIdentifier`): appliers
/// are one manager across API versions, updaters are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for [`Operation::Apply`].
    pub api_version: String,
    /// `status`, `scale`, or empty for the main resource.
    pub subresource: String,
}

impl ManagerId {
    pub fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Self {
        ManagerId {
            manager: manager.to_owned(),
            operation,
            api_version: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.to_owned(),
            },
            subresource: subresource.to_owned(),
        }
    }
}

impl fmt::Display for ManagerId {
    /// Upstream `printManager`, as conflict messages name managers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.manager)?;
        if !self.subresource.is_empty() {
            write!(f, " with subresource {:?}", self.subresource)?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version)?;
        }
        Ok(())
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: ManagerId,
    pub api_version: String,
    /// RFC 3339, whole seconds.
    pub time: Option<String>,
    pub fields: Fields,
}

impl Entry {
    /// Upstream's order of entries: operation, time, manager, API version, subresource.
    fn order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
        (
            a.id.operation,
            &a.time,
            &a.id.manager,
            &a.api_version,
            &a.id.subresource,
        )
            .cmp(&(
                b.id.operation,
                &b.time,
                &b.id.manager,
                &b.api_version,
                &b.id.subresource,
            ))
    }

    /// The entry's JSON, with `fields_v1` as its fields.
    fn to_json(&self, fields_v1: Value) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.id.manager));
        m.insert("operation".into(), json!(self.id.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fields_v1);
        if !self.id.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.id.subresource));
        }
        Value::Object(m)
    }
}

/// A manager's fields. Entries read from a stored object stay `fieldsV1` JSON until a
/// write touches one of their fields: most writes change a few fields of one manager, and
/// decoding and re-encoding every entry would cost more than the write's own admission.
#[derive(Clone, Debug)]
pub struct Fields(FieldsRepr);

#[derive(Clone, Debug)]
enum FieldsRepr {
    /// `fieldsV1` as stored (an object; written by [`Managed::encode`]).
    Stored(Map<String, Value>),
    Decoded(Set),
}

impl From<Set> for Fields {
    fn from(set: Set) -> Fields {
        Fields(FieldsRepr::Decoded(set))
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.set() == other.set()
    }
}

impl Fields {
    /// The set (decoded; a stored entry that does not decode counts as empty).
    pub fn set(&self) -> Set {
        match &self.0 {
            FieldsRepr::Decoded(s) => s.clone(),
            FieldsRepr::Stored(m) => decode_stored(m),
        }
    }

    fn decoded(&mut self) -> &mut Set {
        if let FieldsRepr::Stored(m) = &self.0 {
            self.0 = FieldsRepr::Decoded(decode_stored(m));
        }
        match &mut self.0 {
            FieldsRepr::Decoded(s) => s,
            FieldsRepr::Stored(_) => unreachable!("decoded above"),
        }
    }

    pub fn touches(&self, other: &Set) -> bool {
        match &self.0 {
            FieldsRepr::Decoded(s) => s.intersects(other),
            FieldsRepr::Stored(m) => other.intersects_fields_v1(m),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match &self.0 {
            FieldsRepr::Decoded(s) => s.has(path),
            FieldsRepr::Stored(m) => decode_stored(m).has(path),
        }
    }

    pub fn subtract(&mut self, other: &Set) {
        if self.touches(other) {
            self.decoded().subtract(other);
        }
    }

    pub fn union_with(&mut self, other: &Set) {
        match &mut self.0 {
            // A writer adding to its own entry (most updates) edits the stored JSON
            // rather than decoding and re-encoding the entry.
            FieldsRepr::Stored(m) => other.add_to_fields_v1(m),
            FieldsRepr::Decoded(s) => s.union_with(other),
        }
    }

    pub fn intersection(&self, other: &Set) -> Set {
        if self.touches(other) {
            self.set().intersection(other)
        } else {
            Set::new()
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.0 {
            FieldsRepr::Decoded(s) => s.is_empty(),
            FieldsRepr::Stored(m) => m.is_empty(),
        }
    }

    pub fn to_fields_v1(&self) -> Value {
        match &self.0 {
            FieldsRepr::Decoded(s) => s.to_fields_v1(),
            FieldsRepr::Stored(m) => Value::Object(m.clone()),
        }
    }

    /// [`Fields::to_fields_v1`], moving a stored entry's JSON rather than copying it.
    pub fn into_fields_v1(self) -> Value {
        match self.0 {
            FieldsRepr::Decoded(s) => s.to_fields_v1(),
            FieldsRepr::Stored(m) => Value::Object(m),
        }
    }
}

fn not_a_list() -> ManagedFieldsError {
    ManagedFieldsError {
        index: 0,
        reason: "managedFields must be a list".to_owned(),
    }
}

fn decode_stored(m: &Map<String, Value>) -> Set {
    // Moving the map into a Value to parse it would need a clone anyway.
    Set::from_fields_v1(&Value::Object(m.clone())).unwrap_or_default()
}

/// Every manager of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    entries: Vec<Entry>,
}

/// A `managedFields` list that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid managedFields entry {index}: {reason}")]
pub struct ManagedFieldsError {
    pub index: usize,
    pub reason: String,
}

impl Managed {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, id: &ManagerId) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.id == id)
    }

    fn get_mut(&mut self, id: &ManagerId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| &e.id == id)
    }

    /// Whether `entries` is upstream's reset request: exactly one empty entry, which
    /// clears every manager (`metadata.managedFields: [{}]`).
    pub fn is_reset(entries: &Value) -> bool {
        matches!(entries.as_array().map(Vec::as_slice), Some([Value::Object(e)]) if e.is_empty())
    }

    /// Decodes a `metadata.managedFields` list (upstream `DecodeManagedFields`), checking
    /// every entry's fields: for lists a client sent.
    pub fn decode(entries: &Value) -> Result<Managed, ManagedFieldsError> {
        Managed::decode_with(entries, true)
    }

    /// Decodes the list of a stored object, which this module wrote: each entry's fields
    /// stay as stored until a write touches them.
    pub fn decode_stored(entries: &Value) -> Result<Managed, ManagedFieldsError> {
        Managed::decode_with(entries, false)
    }

    /// [`Managed::decode_stored`], taking the list: its `fieldsV1` objects move into the
    /// entries instead of being copied.
    pub fn decode_stored_owned(entries: Value) -> Result<Managed, ManagedFieldsError> {
        let Value::Array(list) = entries else {
            return Err(not_a_list());
        };
        let mut managed = Managed::default();
        for (index, entry) in list.into_iter().enumerate() {
            let (entry, fields) = match entry {
                Value::Object(mut m) => {
                    let fields = m.remove("fieldsV1").map(Cow::Owned);
                    (Value::Object(m), fields)
                }
                other => (other, None),
            };
            managed.push_decoded(index, &entry, fields, false)?;
        }
        Ok(managed)
    }

    fn decode_with(entries: &Value, check: bool) -> Result<Managed, ManagedFieldsError> {
        let mut managed = Managed::default();
        let Some(list) = entries.as_array() else {
            return Err(not_a_list());
        };
        for (index, entry) in list.iter().enumerate() {
            let fields = entry.get("fieldsV1").map(Cow::Borrowed);
            managed.push_decoded(index, entry, fields, check)?;
        }
        Ok(managed)
    }

    /// Appends one decoded entry; `fields` is its `fieldsV1`, given apart so that an owned
    /// list can hand it over without a copy.
    fn push_decoded(
        &mut self,
        index: usize,
        entry: &Value,
        fields: Option<Cow<'_, Value>>,
        check: bool,
    ) -> Result<(), ManagedFieldsError> {
        let err = |reason: String| ManagedFieldsError { index, reason };
        let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("");
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(err(format!("unknown operation {other:?}"))),
        };
        if text("fieldsType") != "FieldsV1" {
            return Err(err(format!(
                "unsupported fieldsType {:?}",
                text("fieldsType")
            )));
        }
        let fields = match fields {
            None | Some(Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null)) => {
                Fields::from(Set::new())
            }
            Some(Cow::Borrowed(Value::Object(m))) if !check => {
                Fields(FieldsRepr::Stored(m.clone()))
            }
            Some(Cow::Owned(Value::Object(m))) if !check => Fields(FieldsRepr::Stored(m)),
            Some(v) => Set::from_fields_v1(&v)
                .map_err(|e| err(e.to_string()))?
                .into(),
        };
        let id = ManagerId::new(
            text("manager"),
            operation,
            text("apiVersion"),
            text("subresource"),
        );
        if self.get(&id).is_some() {
            return Err(err(format!("duplicate entry for manager {id}")));
        }
        self.entries.push(Entry {
            id,
            api_version: text("apiVersion").to_owned(),
            time: entry.get("time").and_then(Value::as_str).map(str::to_owned),
            fields,
        });
        Ok(())
    }

    /// The `metadata.managedFields` list, in upstream's order (operation, time, manager,
    /// API version, subresource); `None` when no manager is left.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| Entry::order(a, b));
        let list = entries
            .into_iter()
            .map(|e| e.to_json(e.fields.to_fields_v1()))
            .collect();
        Some(Value::Array(list))
    }

    /// [`Managed::encode`], moving the entries' fields rather than copying them.
    pub fn into_encoded(mut self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.sort_by(Entry::order);
        let list = self
            .entries
            .into_iter()
            .map(|mut e| {
                let fields = std::mem::replace(&mut e.fields, Fields::from(Set::new()));
                e.to_json(fields.into_fields_v1())
            })
            .collect();
        Some(Value::Array(list))
    }

    /// Drops the fields nobody may own (upstream `stripMetaManager`) and empty entries,
    /// then caps the update entries (upstream `capManagersManager`).
    fn strip(&mut self) {
        for e in &mut self.entries {
            e.fields.subtract(&STRIP);
        }
        self.entries.retain(|e| !e.fields.is_empty());
        self.cap_update_managers();
    }

    /// Folds the oldest update entries into one [`ANCIENT_CHANGES_MANAGER`] entry until at
    /// most [`MAX_UPDATE_MANAGERS`] remain. Bosun serves each kind at one version, so there
    /// is one bucket (upstream keeps one per API version).
    fn cap_update_managers(&mut self) {
        let n_updates = self
            .entries
            .iter()
            .filter(|e| e.id.operation == Operation::Update)
            .count();
        if n_updates <= MAX_UPDATE_MANAGERS {
            return;
        }
        let (mut updates, applies): (Vec<Entry>, Vec<Entry>) = self
            .entries
            .drain(..)
            .partition(|e| e.id.operation == Operation::Update);
        updates.sort_by(|a, b| (&a.time, &a.id.manager).cmp(&(&b.time, &b.id.manager)));
        let n_fold = n_updates - MAX_UPDATE_MANAGERS + 1;
        let mut folded = updates.drain(..n_fold);
        let mut bucket = folded.next().expect("at least two entries to fold");
        for e in folded {
            bucket.fields.union_with(&e.fields.set());
            bucket.time = e.time;
            bucket.api_version = e.api_version;
        }
        bucket.id = ManagerId::new(
            ANCIENT_CHANGES_MANAGER,
            Operation::Update,
            &bucket.api_version,
            "",
        );
        self.entries = applies;
        self.entries.push(bucket);
        self.entries.extend(updates);
    }

    /// Everyone's fields together.
    fn union(&self) -> Set {
        let mut all = Set::new();
        for e in &self.entries {
            all.union_with(&e.fields.set());
        }
        all
    }
}

/// Upstream `stripMetaManager`'s set: type and identity fields belong to nobody.
static STRIP: LazyLock<Set> = LazyLock::new(strip_set);

fn strip_set() -> Set {
    let f = |name: &str| PathElement::Field(name.to_owned());
    let mut s = Set::new();
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(name)]);
    }
    s
}

/// The fields a write path resets, which nobody owns through it (upstream
/// `ResetFieldsStrategy`): `status` through the main resource, everything but `status`
/// through the status subresource.
pub fn reset_fields(has_status: bool, subresource: &str) -> Set {
    let mut s = Set::new();
    match subresource {
        "status" => {
            s.insert(&[PathElement::Field("spec".to_owned())]);
        }
        _ if has_status => s.insert(&[PathElement::Field("status".to_owned())]),
        _ => {}
    }
    s
}

/// What one write is: who makes it, through which resource, at what time.
#[derive(Clone, Debug)]
pub struct WriteInfo<'a> {
    pub schema: &'static PatchSchema,
    /// The `apiVersion` the object is served at.
    pub api_version: &'a str,
    pub manager: &'a str,
    pub subresource: &'a str,
    /// Fields this write path resets ([`reset_fields`]).
    pub reset: &'a Set,
    /// RFC 3339 with whole seconds, UTC.
    pub now: &'a str,
}

/// What a write changed (added or modified) and removed, less the fields its path resets.
fn changes(c: typed::Comparison, reset: &Set) -> (Set, Set) {
    let mut removed = c.removed;
    removed.remove_recursive(reset);
    let mut changed = c.modified;
    changed.absorb(c.added);
    changed.remove_recursive(reset);
    (changed, removed)
}

/// Records an update (create, PUT, non-apply PATCH) from `live` to `new` in `managed`
/// (upstream `Updater.Update` under `managedFieldsUpdater`): the writer's entry gains every
/// field it added or changed, and every manager loses those and the removed ones. `live`
/// is `{}` for a create. Neither object's `metadata.managedFields` is looked at.
pub fn update(live: &Value, new: &Value, managed: &mut Managed, w: &WriteInfo<'_>) {
    let (changed, removed) = changes(typed::compare(live, new, Ty::Root(w.schema)), w.reset);
    let id = ManagerId::new(w.manager, Operation::Update, w.api_version, w.subresource);
    for e in &mut managed.entries {
        // The writer takes back what it changed, less what nobody owns, and `strip`
        // removes that from every entry below: its own entry need not lose the changed
        // fields first (which would decode a stored entry for nothing).
        if e.id != id {
            e.fields.subtract(&changed);
        }
        e.fields.subtract(&removed);
    }
    let mut own = changed;
    own.subtract(&STRIP);
    if !own.is_empty() {
        match managed.get_mut(&id) {
            Some(e) => {
                e.fields.union_with(&own);
                e.api_version = w.api_version.to_owned();
                e.time = Some(w.now.to_owned());
            }
            None => managed.entries.push(Entry {
                id,
                api_version: w.api_version.to_owned(),
                time: Some(w.now.to_owned()),
                fields: own.into(),
            }),
        }
    }
    managed.strip();
}

/// A field another manager owns, which an apply would change.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: Path,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The configuration does not fit the kind's list types (an item without its key, a
    /// duplicate item). 422 upstream.
    #[error("{0}")]
    Shape(#[from] ShapeError),
    /// Fields other managers own would change. 409 with one cause per conflict.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
}

/// Upstream `getConflictMessage`.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.path
        );
    }
    let mut lines = Vec::new();
    let mut last: Option<&ManagerId> = None;
    for c in conflicts {
        if last != Some(&c.manager) {
            lines.push(format!("conflicts with {}:", c.manager));
            last = Some(&c.manager);
        }
        lines.push(format!("- {}", c.path));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Applies `config` (the manager's whole intent) to `live` (`{}` when the object does not
/// exist yet) and returns the new object with the new managers (upstream `Updater.Apply`
/// under kube-apiserver's field manager). Without `force`, changing a field another
/// manager owns is an [`ApplyError::Conflicts`] and nothing changes; with it the applier
/// takes the field over. The `kubectl` manager may take over what its client-side apply
/// configuration owns without forcing, and keeps that annotation in step (upstream
/// `lastAppliedManager` and `lastAppliedUpdater`).
pub fn apply(
    live: &Value,
    config: &Value,
    managed: &Managed,
    w: &WriteInfo<'_>,
    force: bool,
) -> Result<(Value, Managed), ApplyError> {
    match apply_once(live, config, managed, w, force) {
        Err(ApplyError::Conflicts(conflicts)) if w.manager == KUBECTL_MANAGER && !force => {
            let Some(allowed) = allowed_by_last_applied(live, w) else {
                return Err(ApplyError::Conflicts(conflicts));
            };
            let left: Vec<Conflict> = conflicts
                .into_iter()
                .filter(|c| !allowed.has(&c.path.0))
                .collect();
            if !left.is_empty() {
                return Err(ApplyError::Conflicts(left));
            }
            apply_once(live, config, managed, w, true)
        }
        other => other,
    }
    .map(|(mut obj, managed)| {
        if w.manager == KUBECTL_MANAGER {
            sync_last_applied(&mut obj, config);
        }
        (obj, managed)
    })
}

fn apply_once(
    live: &Value,
    config: &Value,
    managed: &Managed,
    w: &WriteInfo<'_>,
    force: bool,
) -> Result<(Value, Managed), ApplyError> {
    let root = Ty::Root(w.schema);
    let mut applied = typed::to_field_set(config, root, true)?;
    applied.remove_recursive(w.reset);
    let merged = typed::merge(live, config, root);
    let id = ManagerId::new(w.manager, Operation::Apply, w.api_version, w.subresource);
    let mut managed = managed.clone();
    let last = managed.get(&id).map(|e| e.fields.set());
    match managed.get_mut(&id) {
        Some(e) => {
            e.fields = applied.into();
            e.api_version = w.api_version.to_owned();
        }
        None => managed.entries.push(Entry {
            id: id.clone(),
            api_version: w.api_version.to_owned(),
            time: None,
            fields: applied.into(),
        }),
    }
    // Upstream `prune`: what the manager applied last time and no longer does goes, unless
    // another manager (or this configuration) still owns it.
    let new = match last.filter(|l| !l.is_empty()) {
        Some(last) => {
            let owned = managed.union().with_named_fields_as_members();
            let gone = last.with_named_fields_as_members().difference(&owned);
            typed::remove_items(&merged, &gone, root).unwrap_or_else(|| json!({}))
        }
        None => merged,
    };
    let (changed, removed) = changes(typed::compare(live, &new, root), w.reset);
    let mut conflicts = Vec::new();
    for e in managed.entries.iter().filter(|e| e.id != id) {
        let clash = e.fields.intersection(&changed);
        conflicts.extend(clash.paths().into_iter().map(|path| Conflict {
            manager: e.id.clone(),
            path,
        }));
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.manager.manager.cmp(&b.manager.manager));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for e in managed.entries.iter_mut().filter(|e| e.id != id) {
        e.fields.subtract(&changed);
        e.fields.subtract(&removed);
    }
    if let Some(e) = managed.get_mut(&id)
        && (e.time.is_none() || new != *live)
    {
        e.time = Some(w.now.to_owned());
    }
    managed.strip();
    Ok((new, managed))
}

/// The fields of the client-side apply configuration that still hold their applied value
/// (upstream `allowedConflictsFromLastApplied`); `None` without a usable annotation.
fn allowed_by_last_applied(live: &Value, w: &WriteInfo<'_>) -> Option<Set> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(w.api_version) {
        return None;
    }
    let root = Ty::Root(w.schema);
    let set = typed::to_field_set(&last, root, false).ok()?;
    let c = typed::compare(&last, live, root);
    Some(
        set.difference(&c.modified)
            .difference(&c.added)
            .difference(&c.removed),
    )
}

/// Upstream `lastAppliedUpdater`: when the object carries a client-side apply annotation,
/// it becomes the applied configuration (without the annotation), so a later client-side
/// apply diffs against what was applied server-side.
fn sync_last_applied(obj: &mut Value, config: &Value) {
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED_ANNOTATION) {
        return;
    }
    let mut config = config.clone();
    if let Some(a) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut text = config.to_string();
    text.push('\n');
    annotations.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::String(text));
}

/// The manager a request without `fieldManager` is recorded under (upstream
/// `prefixFromUserAgent`): the User-Agent up to its first `/`, printable characters only,
/// at most [`MAX_FIELD_MANAGER_LEN`] bytes.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let head = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in head.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_FIELD_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
