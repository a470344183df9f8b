//! The decoded-object cache: every stored version of an object is decoded once into a
//! [`CachedObject`] holding its labels, its selectable field values and its final wire
//! JSON (with `resourceVersion` set). LISTs filter on the parsed labels and fields and
//! concatenate the wire bytes; watch events share one `CachedObject` among all watchers,
//! so an event is encoded once however many watchers receive it.
//!
//! Entries are keyed by storage key and carry the `mod_revision` they were built from; a
//! reader whose storage read returned another revision rebuilds the entry. The cache is
//! bounded by bytes: when a shard's share is exceeded the shard is cleared, which costs
//! only re-decoding.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bosun_api::labels::LabelSource;
use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::Resource;
use crate::storage::{KeyValue, Revision};

/// Default bound of the cache's wire bytes (512 MiB).
pub const DEFAULT_CACHE_BYTES: usize = 512 * 1024 * 1024;
const SHARDS: usize = 16;

/// An object's labels, sorted by key, in one allocation of pairs: a cache entry keeps
/// them for selectors, and a map would cost a whole tree node for the usual few.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The string labels of a `metadata.labels` map (others are not labels).
    pub fn of(labels: Option<&Value>) -> Labels {
        let Some(Value::Object(m)) = labels else {
            return Labels::default();
        };
        let mut pairs: Box<[(Box<str>, Box<str>)]> = m
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (Box::from(k.as_str()), Box::from(v))))
            .collect();
        // Already sorted unless serde_json keeps insertion order; then this sorts.
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Labels(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl LabelSource for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

/// One object version, decoded once.
#[derive(Debug)]
pub struct CachedObject {
    pub mod_revision: Revision,
    /// The object's JSON with `metadata.resourceVersion` set: what clients receive.
    pub json: Bytes,
    pub labels: Labels,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.name`, `metadata.namespace` and the resource's selectable fields.
    fields: Vec<(&'static str, Option<String>)>,
}

/// Prefix of every stored object: `metadata` is written first (see [`encode_stored`]),
/// so the wire form is the stored form with `resourceVersion` spliced in right here.
const STORED_PREFIX: &[u8] = b"{\"metadata\":{";

/// What a thread keeps of its encoding buffer between objects; a larger one (a
/// multi-megabyte object) is given back.
const SCRATCH_KEPT_BYTES: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes an object for storage: `metadata` first, without `resourceVersion` (the
/// revision is the key's `mod_revision`, known only after the write commits).
///
/// The result is exactly as long as the encoding: it is kept in the store for as long
/// as its revision is, so it is encoded into a per-thread buffer and then copied out,
/// rather than grown by doubling (which left up to half of every stored value unused).
pub fn encode_stored(obj: &Value) -> Result<Vec<u8>, ApiError> {
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        let encoded = encode_stored_into(obj, out).map(|()| out.as_slice().to_vec());
        if out.capacity() > SCRATCH_KEPT_BYTES {
            *out = Vec::new();
        }
        encoded
    })
}

fn encode_stored_into(obj: &Value, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let Some(map) = obj.as_object() else {
        return Err(ApiError::internal("object is not a JSON object"));
    };
    out.extend_from_slice(b"{\"metadata\":");
    match map.get("metadata") {
        // Written field by field, skipping the revision, rather than copied and trimmed.
        Some(Value::Object(meta)) => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in meta.iter().filter(|(k, _)| k.as_str() != "resourceVersion") {
                if !first {
                    out.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut *out, k).map_err(ApiError::internal)?;
                out.push(b':');
                serde_json::to_writer(&mut *out, v).map_err(ApiError::internal)?;
            }
            out.push(b'}');
        }
        Some(other) => serde_json::to_writer(&mut *out, other).map_err(ApiError::internal)?,
        None => out.extend_from_slice(b"{}"),
    }
    for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "metadata") {
        out.push(b',');
        serde_json::to_writer(&mut *out, k).map_err(ApiError::internal)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, v).map_err(ApiError::internal)?;
    }
    out.push(b'}');
    Ok(())
}

/// The wire JSON of a stored object at `rev`, when it is in [`encode_stored`]'s form.
fn splice_resource_version(stored: &[u8], rev: Revision) -> Option<Vec<u8>> {
    if !stored.starts_with(STORED_PREFIX) {
        return None;
    }
    let at = STORED_PREFIX.len();
    let rv = format!("\"resourceVersion\":\"{rev}\"");
    let mut out = Vec::with_capacity(stored.len() + rv.len() + 1);
    out.extend_from_slice(&stored[..at]);
    out.extend_from_slice(rv.as_bytes());
    if stored.get(at) != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(&stored[at..]);
    Some(out)
}

impl CachedObject {
    /// Builds the entry for `obj` as stored at `mod_revision`.
    pub fn build(
        res: &Resource,
        mod_revision: Revision,
        mut obj: Value,
    ) -> Result<CachedObject, ApiError> {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "resourceVersion".into(),
                Value::String(mod_revision.to_string()),
            );
        }
        let json = serde_json::to_vec(&obj)
            .map(Bytes::from)
            .map_err(ApiError::internal)?;
        Ok(Self::with_json(res, mod_revision, &obj, json))
    }

    /// An entry for `obj` exactly as given, its `resourceVersion` included: for answers
    /// that are assembled like a LIST's from objects that are not (or no longer) stored,
    /// such as what a collection delete removed.
    pub fn of_object(res: &Resource, obj: &Value) -> Result<CachedObject, ApiError> {
        let mod_revision = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        let json = serde_json::to_vec(obj)
            .map(Bytes::from)
            .map_err(ApiError::internal)?;
        Ok(Self::with_json(res, mod_revision, obj, json))
    }

    /// Builds the entry from the object and its stored bytes without re-encoding it:
    /// the wire JSON is the stored JSON with `resourceVersion` spliced in.
    pub fn from_value_and_stored(
        res: &Resource,
        mod_revision: Revision,
        obj: &Value,
        stored: &[u8],
    ) -> Result<CachedObject, ApiError> {
        match splice_resource_version(stored, mod_revision) {
            Some(json) => Ok(Self::with_json(res, mod_revision, obj, Bytes::from(json))),
            None => Self::build(res, mod_revision, obj.clone()),
        }
    }

    fn with_json(res: &Resource, mod_revision: Revision, obj: &Value, json: Bytes) -> CachedObject {
        let labels = Labels::of(obj.pointer("/metadata/labels"));
        let selectable = res.ops.selectable_fields().iter().copied();
        let fields = ["metadata.name", "metadata.namespace"]
            .into_iter()
            .chain(selectable)
            .map(|f| (f, crate::rest::field_value(obj, f)))
            .collect();
        let deleting = obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        CachedObject {
            mod_revision,
            json,
            labels,
            deleting,
            fields,
        }
    }

    /// Decodes a stored value (which carries no resourceVersion) as of `mod_revision`.
    pub fn from_stored(
        res: &Resource,
        key: &str,
        value: &[u8],
        mod_revision: Revision,
    ) -> Result<CachedObject, ApiError> {
        let obj: Value = serde_json::from_slice(value)
            .map_err(|e| ApiError::internal(format!("stored object {key} is corrupt: {e}")))?;
        Self::from_value_and_stored(res, mod_revision, &obj, value)
    }

    /// The value of a selectable field, as field selectors see it.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(f, _)| *f == name)
            .and_then(|(_, v)| v.clone())
    }

    /// The object as a JSON value (for tables, YAML, internal callers).
    pub fn value(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.json).map_err(ApiError::internal)
    }

    fn cost(&self) -> usize {
        self.json.len()
            + self
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + 128
    }
}

/// The cache shared by all requests.
pub struct ObjectCache {
    shards: Vec<Mutex<HashMap<String, Arc<CachedObject>>>>,
    shard_bytes: Vec<AtomicUsize>,
    max_shard_bytes: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl ObjectCache {
    pub fn new(max_bytes: usize) -> Self {
        ObjectCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_bytes: (0..SHARDS).map(|_| AtomicUsize::new(0)).collect(),
            max_shard_bytes: (max_bytes / SHARDS).max(1),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// The entry for `kv`, decoding it if the cache holds no entry of that revision.
    pub fn get_or_build(
        &self,
        res: &Resource,
        kv: &KeyValue,
    ) -> Result<Arc<CachedObject>, ApiError> {
        if let Some(hit) = self.lookup(&kv.key, kv.mod_revision) {
            return Ok(hit);
        }
        let built = Arc::new(CachedObject::from_stored(
            res,
            &kv.key,
            &kv.value,
            kv.mod_revision,
        )?);
        self.insert(&kv.key, built.clone());
        Ok(built)
    }

    /// The cached entry of `key` if it was built at `mod_revision`.
    pub fn lookup(&self, key: &str, mod_revision: Revision) -> Option<Arc<CachedObject>> {
        let shard = self.shards[self.shard(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard
            .get(key)
            .filter(|o| o.mod_revision == mod_revision)
            .cloned()
    }

    /// Records `obj` for `key` unless a newer version is already there.
    pub fn insert(&self, key: &str, obj: Arc<CachedObject>) {
        let i = self.shard(key);
        let mut shard = self.shards[i].lock().unwrap_or_else(|e| e.into_inner());
        if shard
            .get(key)
            .is_some_and(|old| old.mod_revision > obj.mod_revision)
        {
            return;
        }
        let cost = obj.cost();
        if self.shard_bytes[i].load(Ordering::Relaxed) + cost > self.max_shard_bytes {
            shard.clear();
            self.shard_bytes[i].store(0, Ordering::Relaxed);
        }
        if let Some(old) = shard.insert(key.to_string(), obj) {
            self.shard_bytes[i].fetch_sub(
                old.cost().min(self.shard_bytes[i].load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        self.shard_bytes[i].fetch_add(cost, Ordering::Relaxed);
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    fn kv(key: &str, rev: Revision, obj: &Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(serde_json::to_vec(obj).unwrap()),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        }
    }

    #[test]
    fn entries_follow_revisions_and_carry_wire_json() {
        let reg = Registry::builtin();
        let pods = reg.get("", "v1", "pods").unwrap();
        let cache = ObjectCache::new(1 << 20);
        let obj = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}}, "spec": {"nodeName": "n1"}});
        let first = cache
            .get_or_build(pods, &kv("/registry/pods/d/p", 5, &obj))
            .unwrap();
        let again = cache
            .get_or_build(pods, &kv("/registry/pods/d/p", 5, &obj))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again), "same revision: one decode");
        assert_eq!(first.value().unwrap()["metadata"]["resourceVersion"], "5");
        assert_eq!(first.labels.get("a"), Some("b"));
        assert_eq!(first.field("spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(first.field("metadata.namespace").as_deref(), Some("d"));
        let newer = cache
            .get_or_build(pods, &kv("/registry/pods/d/p", 6, &obj))
            .unwrap();
        assert_eq!(newer.mod_revision, 6);
        // An older version never replaces a newer one.
        cache.insert("/registry/pods/d/p", first);
        assert_eq!(
            cache.lookup("/registry/pods/d/p", 6).unwrap().mod_revision,
            6
        );
    }

    #[test]
    fn spliced_wire_json_equals_encoding_with_the_revision() {
        let reg = Registry::builtin();
        let pods = reg.get("", "v1", "pods").unwrap();
        for obj in [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "resourceVersion": "3"}, "spec": {"x": [1, {"metadata": {}}]}}),
            json!({"kind": "Pod", "metadata": {}, "data": {"metadata": "{"}}),
            json!({"kind": "Pod"}),
            json!({"metadata": {"resourceVersion": "9"}, "spec": {}}),
            json!({"metadata": {"a": 1, "resourceVersion": "9", "z": {"resourceVersion": "1"}}}),
        ] {
            let stored = encode_stored(&obj).unwrap();
            assert!(stored.starts_with(STORED_PREFIX));
            assert_eq!(stored.capacity(), stored.len(), "kept at its exact size");
            let back: Value = serde_json::from_slice(&stored).unwrap();
            assert!(
                back["metadata"].get("resourceVersion").is_none(),
                "stored form has no resourceVersion"
            );
            let cached = CachedObject::from_value_and_stored(pods, 42, &obj, &stored).unwrap();
            let mut want = obj.clone();
            if want.get("metadata").is_none() {
                want["metadata"] = json!({});
            }
            want["metadata"]["resourceVersion"] = json!("42");
            assert_eq!(cached.value().unwrap(), want);
        }
    }

    #[test]
    fn the_encoding_buffer_starts_clean_and_stays_small() {
        assert!(encode_stored(&json!([1, 2])).is_err());
        let big = json!({"metadata": {"name": "big"}, "data": {"x": "y".repeat(200_000)}});
        let stored = encode_stored(&big).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&stored).unwrap(), big);
        assert_eq!(
            SCRATCH.with_borrow(Vec::capacity),
            0,
            "a large buffer is given back"
        );
        let small = json!({"metadata": {"name": "small"}});
        let stored = encode_stored(&small).unwrap();
        assert_eq!(stored, br#"{"metadata":{"name":"small"}}"#);
        assert!(SCRATCH.with_borrow(Vec::capacity) <= SCRATCH_KEPT_BYTES);
    }

    #[test]
    fn the_byte_bound_holds() {
        let reg = Registry::builtin();
        let pods = reg.get("", "v1", "pods").unwrap();
        let cache = ObjectCache::new(SHARDS * 4096);
        for i in 0..1000 {
            let obj = json!({"metadata": {"name": format!("p{i}"), "annotations": {"x": "y".repeat(200)}}});
            cache
                .get_or_build(pods, &kv(&format!("/k/{i}"), i + 1, &obj))
                .unwrap();
        }
        let total: usize = cache
            .shard_bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum();
        assert!(total <= SHARDS * 4096, "{total}");
        assert!(cache.len() < 1000);
    }

    #[test]
    fn labels_look_up_by_key_and_match_selectors() {
        let labels = Labels::of(Some(&json!({"tier": "web", "app": "a", "n": 5, "z": ""})));
        assert_eq!(labels.len(), 3, "only string values are labels");
        assert_eq!(labels.get("app"), Some("a"));
        assert_eq!(labels.get("z"), Some(""));
        assert_eq!(labels.get("n"), None);
        assert_eq!(labels.get("missing"), None);
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app", "tier", "z"]);
        for (selector, expected) in [
            ("app=a,tier in (web,db)", true),
            ("app=a,tier notin (web)", false),
            ("!n,z", true),
            ("missing", false),
        ] {
            let sel: bosun_api::labels::LabelSelector = selector.parse().unwrap();
            assert_eq!(sel.matches(&labels), expected, "{selector}");
        }
        assert!(Labels::of(None).is_empty());
        assert!(Labels::of(Some(&json!("not a map"))).is_empty());
    }
}
