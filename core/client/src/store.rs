//! [`Store<K>`]: the informer's thread-safe local cache, keyed `namespace/name`
//! (or `name` for cluster-scoped objects), with named secondary indexes.

use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

/// Computes the values under which an object is indexed (e.g. its node name).
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// A change to the cache, as delivered to informer handlers.
#[derive(Debug)]
pub enum Event<K> {
    /// A new object.
    Added(Arc<K>),
    /// An object changed (or was re-listed).
    Updated {
        /// The previous cached state.
        old: Arc<K>,
        /// The new state.
        new: Arc<K>,
    },
    /// An object was deleted; its last known state.
    Deleted(Arc<K>),
}

impl<K> Clone for Event<K> {
    fn clone(&self) -> Self {
        match self {
            Event::Added(k) => Event::Added(k.clone()),
            Event::Updated { old, new } => Event::Updated {
                old: old.clone(),
                new: new.clone(),
            },
            Event::Deleted(k) => Event::Deleted(k.clone()),
        }
    }
}

impl<K: Metadata<Ty = ObjectMeta>> Event<K> {
    /// The object after the event (the last state for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Event::Added(k) | Event::Deleted(k) => k,
            Event::Updated { new, .. } => new,
        }
    }

    /// The cache key of the object.
    pub fn key(&self) -> String {
        key_of(self.object().metadata())
    }
}

/// Store errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// An index with this name is already registered.
    #[error("index {0:?} already registered")]
    DuplicateIndex(String),
    /// No index with this name.
    #[error("no index named {0:?}")]
    UnknownIndex(String),
}

/// The cache key of an object: `namespace/name`, or `name` when it has no namespace.
pub fn key_of(meta: &ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// The cache key for a namespace and name.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// A thread-safe cache of `Arc<K>` keyed by [`key_of`]. Clones share the cache.
///
/// Invariant: every index holds exactly the keys of the objects whose index
/// function returns that value, for the current object of each key.
pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

struct Index<K> {
    func: IndexFn<K>,
    /// value -> keys
    entries: HashMap<String, HashSet<String>>,
}

struct Inner<K> {
    items: HashMap<String, Arc<K>>,
    indexes: HashMap<String, Index<K>>,
}

impl<K> Index<K> {
    fn insert(&mut self, key: &str, obj: &K) {
        for v in (self.func)(obj) {
            self.entries.entry(v).or_default().insert(key.to_string());
        }
    }

    fn remove(&mut self, key: &str, obj: &K) {
        for v in (self.func)(obj) {
            if let Some(keys) = self.entries.get_mut(&v) {
                keys.remove(key);
                if keys.is_empty() {
                    self.entries.remove(&v);
                }
            }
        }
    }
}

impl<K> Inner<K> {
    fn put(&mut self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.items.insert(key.clone(), obj.clone());
        for idx in self.indexes.values_mut() {
            if let Some(o) = &old {
                idx.remove(&key, o);
            }
            idx.insert(&key, &obj);
        }
        old
    }

    fn take(&mut self, key: &str) -> Option<Arc<K>> {
        let old = self.items.remove(key)?;
        for idx in self.indexes.values_mut() {
            idx.remove(key, &old);
        }
        Some(old)
    }
}

impl<K: Metadata<Ty = ObjectMeta>> Default for Store<K> {
    fn default() -> Self {
        Store::new()
    }
}

impl<K: Metadata<Ty = ObjectMeta>> Store<K> {
    /// An empty store with no indexes.
    pub fn new() -> Store<K> {
        Store {
            inner: Arc::new(RwLock::new(Inner {
                items: HashMap::new(),
                indexes: HashMap::new(),
            })),
        }
    }

    // A panic while holding the lock leaves the maps consistent (every mutation
    // completes before user code runs, except index functions, which only read),
    // so a poisoned lock is still usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a secondary index; existing objects are indexed at once.
    pub fn add_index(
        &self,
        name: &str,
        func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.indexes.contains_key(name) {
            return Err(StoreError::DuplicateIndex(name.to_string()));
        }
        let mut idx = Index {
            func: Arc::new(func),
            entries: HashMap::new(),
        };
        for (k, obj) in &inner.items {
            idx.insert(k, obj);
        }
        inner.indexes.insert(name.to_string(), idx);
        Ok(())
    }

    /// The object under `key` (see [`key`]).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().items.get(key).cloned()
    }

    /// The object with this namespace and name.
    pub fn get_namespaced(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get(&key(namespace, name))
    }

    /// A snapshot of every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().items.values().cloned().collect()
    }

    /// A snapshot of every key.
    pub fn keys(&self) -> Vec<String> {
        self.read().items.keys().cloned().collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.read().items.len()
    }

    /// True when the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects indexed under `value` by index `index`.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, StoreError> {
        let inner = self.read();
        let idx = inner
            .indexes
            .get(index)
            .ok_or_else(|| StoreError::UnknownIndex(index.to_string()))?;
        Ok(idx
            .entries
            .get(value)
            .into_iter()
            .flatten()
            .filter_map(|k| inner.items.get(k).cloned())
            .collect())
    }

    /// The distinct values present in index `index`.
    pub fn index_values(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let inner = self.read();
        let idx = inner
            .indexes
            .get(index)
            .ok_or_else(|| StoreError::UnknownIndex(index.to_string()))?;
        Ok(idx.entries.keys().cloned().collect())
    }

    /// Inserts or replaces an object; returns the event it amounts to.
    pub fn apply(&self, obj: K) -> Event<K> {
        let obj = Arc::new(obj);
        let key = key_of(obj.metadata());
        match self.write().put(key, obj.clone()) {
            Some(old) => Event::Updated { old, new: obj },
            None => Event::Added(obj),
        }
    }

    /// Removes the object with `obj`'s key; returns the Deleted event carrying
    /// `obj`, the final state the server reported (as client-go does).
    pub fn delete(&self, obj: K) -> Event<K> {
        let key = key_of(obj.metadata());
        self.write().take(&key);
        Event::Deleted(Arc::new(obj))
    }

    /// Replaces the whole content (a relist), as client-go's `Replace`: objects
    /// present before become `Updated`, new ones `Added`, and the ones that
    /// vanished `Deleted` with their last cached state.
    pub fn replace(&self, objs: Vec<K>) -> Vec<Event<K>> {
        let mut inner = self.write();
        let mut events = Vec::with_capacity(objs.len());
        let mut seen = HashSet::with_capacity(objs.len());
        for obj in objs {
            let obj = Arc::new(obj);
            let key = key_of(obj.metadata());
            seen.insert(key.clone());
            events.push(match inner.put(key, obj.clone()) {
                Some(old) => Event::Updated { old, new: obj },
                None => Event::Added(obj),
            });
        }
        let gone: Vec<String> = inner
            .items
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(old) = inner.take(&k) {
                events.push(Event::Deleted(old));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, PodSpec};

    fn pod(ns: &str, name: &str, node: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn by_node(p: &Pod) -> Vec<String> {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    }

    fn names(mut v: Vec<Arc<Pod>>) -> Vec<String> {
        let mut out: Vec<String> = v.drain(..).map(|p| key_of(&p.metadata)).collect();
        out.sort();
        out
    }

    #[test]
    fn crud_and_index_follow_updates() {
        let s = Store::<Pod>::new();
        s.add_index("node", by_node).unwrap();
        assert_eq!(
            s.add_index("node", by_node),
            Err(StoreError::DuplicateIndex("node".into()))
        );
        assert!(matches!(
            s.apply(pod("a", "p1", Some("n1"))),
            Event::Added(_)
        ));
        s.apply(pod("a", "p2", Some("n1")));
        s.apply(pod("b", "p1", None));
        assert_eq!(s.len(), 3);
        assert_eq!(names(s.by_index("node", "n1").unwrap()), ["a/p1", "a/p2"]);

        // Moving a pod to another node moves it in the index.
        assert!(matches!(
            s.apply(pod("a", "p2", Some("n2"))),
            Event::Updated { .. }
        ));
        assert_eq!(names(s.by_index("node", "n1").unwrap()), ["a/p1"]);
        assert_eq!(names(s.by_index("node", "n2").unwrap()), ["a/p2"]);

        assert!(matches!(
            s.delete(pod("a", "p1", Some("n1"))),
            Event::Deleted(_)
        ));
        assert!(s.by_index("node", "n1").unwrap().is_empty());
        assert_eq!(s.index_values("node").unwrap(), ["n2"]);
        assert!(s.get("a/p1").is_none());
        assert!(s.get_namespaced(Some("b"), "p1").is_some());
        assert_eq!(
            s.by_index("zone", "x").unwrap_err(),
            StoreError::UnknownIndex("zone".into())
        );
    }

    #[test]
    fn index_added_later_covers_existing_objects() {
        let s = Store::<Pod>::new();
        s.apply(pod("a", "p1", Some("n1")));
        s.add_index("node", by_node).unwrap();
        assert_eq!(names(s.by_index("node", "n1").unwrap()), ["a/p1"]);
    }

    /// client-go `DeltaFIFO.Replace` + shared informer: survivors are updates,
    /// newcomers adds, and vanished objects deletes with their cached state.
    #[test]
    fn replace_synthesises_events() {
        let s = Store::<Pod>::new();
        s.add_index("node", by_node).unwrap();
        s.apply(pod("a", "keep", Some("n1")));
        s.apply(pod("a", "gone", Some("n1")));
        let events = s.replace(vec![pod("a", "keep", Some("n2")), pod("a", "new", None)]);
        let mut got: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Added(p) => format!("added {}", key_of(&p.metadata)),
                Event::Updated { old, new } => {
                    format!(
                        "updated {} {:?}->{:?}",
                        key_of(&new.metadata),
                        by_node(old),
                        by_node(new)
                    )
                }
                Event::Deleted(p) => format!("deleted {} {:?}", key_of(&p.metadata), by_node(p)),
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "added a/new",
                "deleted a/gone [\"n1\"]",
                "updated a/keep [\"n1\"]->[\"n2\"]"
            ]
        );
        assert_eq!(names(s.list()), ["a/keep", "a/new"]);
        assert!(s.by_index("node", "n1").unwrap().is_empty());
    }

    #[test]
    fn clones_share_state_across_threads() {
        let s = Store::<Pod>::new();
        let s2 = s.clone();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..100 {
                    s2.apply(pod("a", &format!("p{i}"), None));
                }
            });
        });
        assert_eq!(s.len(), 100);
        assert_eq!(key(None, "n1"), "n1");
    }
}
