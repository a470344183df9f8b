//! The scheduler's cache of nodes and pods, and the snapshots it hands to each cycle.
//!
//! The cache is the single writer: informer events (`add_node`, `add_pod`, ...) and the
//! scheduler's own `assume_pod` / `forget_pod` mutate it. Every mutation of a node bumps
//! the cache's generation and stamps it on the node. [`Cache::update_snapshot`] then
//! refreshes a [`Snapshot`] by visiting only the nodes whose generation is newer than
//! the snapshot's (upstream's `UpdateSnapshot`), so a cycle costs O(changed nodes), not
//! O(nodes). Nodes are shared copy-on-write (`Arc`): the cache clones a node only when
//! it changes one a snapshot still holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as corev1;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::resource::ResourceError;

/// A cache operation that does not fit the cache's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("node has no name")]
    NodeWithoutName,
    #[error("node {0:?}: {1}")]
    Node(String, ResourceError),
    #[error("node {0:?} is not in the cache")]
    NodeNotFound(String),
    #[error("pod {0:?} has no node name")]
    PodWithoutNode(String),
    #[error("pod {0:?} is already in the cache")]
    PodExists(String),
    #[error("pod {0:?} is not in the cache")]
    PodNotFound(String),
    #[error("pod {0:?} is not assumed")]
    PodNotAssumed(String),
}

#[derive(Clone, Debug)]
struct NodeEntry {
    info: Arc<NodeInfo>,
    /// False for a placeholder created by a pod that arrived before its node.
    has_node: bool,
}

#[derive(Clone, Debug)]
struct PodEntry {
    pod: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// Nodes and pods, bound and assumed. See the module docs.
#[derive(Debug)]
pub struct Cache {
    nodes: HashMap<String, NodeEntry>,
    /// Names of the nodes with a Node object, in the order snapshots list them.
    order: Vec<String>,
    /// Node names by the generation of their last change (one entry per node).
    by_generation: BTreeMap<u64, String>,
    generation: u64,
    /// Bumped when the set of listed nodes changes: snapshots then rebuild their lists.
    layout_generation: u64,
    pods: HashMap<String, PodEntry>,
    /// Namespace labels by namespace name, shared with snapshots (copy-on-write).
    namespaces: Arc<NamespaceLabels>,
    /// Stamped on every snapshot this cache updates ([`Snapshot::origin`]).
    origin: u64,
    /// Bumped on every namespace change.
    namespaces_generation: u64,
}

/// Labels of each namespace, by namespace name (InterPodAffinity's namespace
/// selectors read them).
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

impl Default for Cache {
    fn default() -> Cache {
        Cache::new()
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            nodes: HashMap::new(),
            order: Vec::new(),
            by_generation: BTreeMap::new(),
            generation: 0,
            layout_generation: 0,
            pods: HashMap::new(),
            namespaces: Arc::default(),
            origin: next_origin(),
            namespaces_generation: 0,
        }
    }

    pub fn n_nodes(&self) -> usize {
        self.order.len()
    }

    pub fn n_pods(&self) -> usize {
        self.pods.len()
    }

    /// The current generation; strictly increases with every node change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds or replaces a namespace (only its name and labels are kept).
    pub fn add_namespace(&mut self, ns: &corev1::Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        Arc::make_mut(&mut self.namespaces).insert(name, labels);
        self.namespaces_generation += 1;
    }

    /// Removes a namespace; unknown names are ignored.
    pub fn remove_namespace(&mut self, name: &str) {
        if self.namespaces.contains_key(name) {
            Arc::make_mut(&mut self.namespaces).remove(name);
            self.namespaces_generation += 1;
        }
    }

    /// Adds or replaces a node, keeping its pods.
    pub fn add_node(&mut self, node: &corev1::Node) -> Result<(), CacheError> {
        let name = node
            .metadata
            .name
            .clone()
            .ok_or(CacheError::NodeWithoutName)?;
        let entry = self.nodes.entry(name.clone()).or_insert_with(|| NodeEntry {
            info: Arc::new(NodeInfo::default()),
            has_node: false,
        });
        if let Err(e) = Arc::make_mut(&mut entry.info).set_node(node) {
            // Drop a placeholder created just now for this bad node.
            if !entry.has_node && entry.info.pods.is_empty() {
                self.nodes.remove(&name);
            }
            return Err(CacheError::Node(name, e));
        }
        if !entry.has_node {
            entry.has_node = true;
            self.order.push(name.clone());
            self.layout_generation += 1;
        }
        self.touch(&name);
        Ok(())
    }

    /// Same as [`add_node`](Cache::add_node): nodes are replaced whole.
    pub fn update_node(&mut self, node: &corev1::Node) -> Result<(), CacheError> {
        self.add_node(node)
    }

    /// Removes a node from the listed nodes. Its pods stay accounted (upstream keeps
    /// a node whose pods are not yet deleted) until they are removed.
    pub fn remove_node(&mut self, name: &str) -> Result<(), CacheError> {
        let entry = self.nodes.get_mut(name).filter(|e| e.has_node);
        let entry = entry.ok_or_else(|| CacheError::NodeNotFound(name.to_owned()))?;
        entry.has_node = false;
        let empty = entry.info.pods.is_empty();
        let generation = entry.info.generation;
        self.order.retain(|n| n != name);
        self.layout_generation += 1;
        if empty {
            self.nodes.remove(name);
            self.by_generation.remove(&generation);
        }
        Ok(())
    }

    /// Adds a bound pod (`spec.nodeName` set). A pod this cache assumed is confirmed,
    /// moving it if it was bound elsewhere than assumed.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) -> Result<(), CacheError> {
        if pod.node_name.is_empty() {
            return Err(CacheError::PodWithoutNode(pod.key()));
        }
        match self.pods.get(&pod.uid) {
            Some(e) if e.assumed => {
                let uid = pod.uid.clone();
                self.remove_pod(&uid)?;
            }
            Some(_) => return Err(CacheError::PodExists(pod.key())),
            None => {}
        }
        let node = pod.node_name.clone();
        self.place(pod, &node, false);
        Ok(())
    }

    /// Replaces a bound pod (its requests or node may have changed).
    pub fn update_pod(&mut self, pod: Arc<PodInfo>) -> Result<(), CacheError> {
        self.remove_pod(&pod.uid)?;
        self.add_pod(pod)
    }

    /// Removes a pod, bound or assumed, by UID.
    pub fn remove_pod(&mut self, uid: &str) -> Result<Arc<PodInfo>, CacheError> {
        let entry = self
            .pods
            .remove(uid)
            .ok_or_else(|| CacheError::PodNotFound(uid.to_owned()))?;
        let node = self
            .nodes
            .get_mut(&entry.node)
            .expect("a cached pod's node is cached");
        let removed = Arc::make_mut(&mut node.info).remove_pod(uid);
        assert!(
            removed.is_some(),
            "pod {uid} missing from node {}",
            entry.node
        );
        if !node.has_node && node.info.pods.is_empty() {
            let generation = node.info.generation;
            self.nodes.remove(&entry.node);
            self.by_generation.remove(&generation);
        } else {
            self.touch(&entry.node);
        }
        Ok(entry.pod)
    }

    /// Accounts `pod` on `node_name` before its binding is confirmed (upstream's
    /// `AssumePod`), so the next cycle sees the node's resources as taken.
    pub fn assume_pod(&mut self, pod: Arc<PodInfo>, node_name: &str) -> Result<(), CacheError> {
        if self.pods.contains_key(&pod.uid) {
            return Err(CacheError::PodExists(pod.key()));
        }
        if !self.nodes.get(node_name).is_some_and(|e| e.has_node) {
            return Err(CacheError::NodeNotFound(node_name.to_owned()));
        }
        self.place(pod, node_name, true);
        Ok(())
    }

    /// Undoes [`assume_pod`](Cache::assume_pod) after a failed binding.
    pub fn forget_pod(&mut self, uid: &str) -> Result<(), CacheError> {
        match self.pods.get(uid) {
            Some(e) if e.assumed => self.remove_pod(uid).map(drop),
            Some(_) => Err(CacheError::PodNotAssumed(uid.to_owned())),
            None => Err(CacheError::PodNotFound(uid.to_owned())),
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|e| e.assumed)
    }

    fn place(&mut self, pod: Arc<PodInfo>, node_name: &str, assumed: bool) {
        let entry = self
            .nodes
            .entry(node_name.to_owned())
            .or_insert_with(|| NodeEntry {
                info: Arc::new(NodeInfo {
                    name: node_name.to_owned(),
                    ..NodeInfo::default()
                }),
                has_node: false,
            });
        Arc::make_mut(&mut entry.info).add_pod(Arc::clone(&pod));
        self.pods.insert(
            pod.uid.clone(),
            PodEntry {
                pod,
                node: node_name.to_owned(),
                assumed,
            },
        );
        self.touch(node_name);
    }

    /// Stamps a new generation on a node.
    fn touch(&mut self, name: &str) {
        self.generation += 1;
        let entry = self.nodes.get_mut(name).expect("touched node exists");
        let info = Arc::make_mut(&mut entry.info);
        self.by_generation.remove(&info.generation);
        info.generation = self.generation;
        self.by_generation.insert(self.generation, name.to_owned());
    }

    /// Brings `snap` up to date, visiting only nodes changed since its generation (or
    /// every node when the set of nodes changed).
    pub fn update_snapshot(&self, snap: &mut Snapshot) {
        if snap.layout_generation != self.layout_generation {
            let nodes = self
                .order
                .iter()
                .map(|n| Arc::clone(&self.nodes[n].info))
                .collect();
            *snap = Snapshot::from_nodes(nodes);
            snap.layout_generation = self.layout_generation;
            snap.image_generation = self.generation;
            snap.changes_floor = self.generation;
        } else {
            for name in self
                .by_generation
                .range(snap.generation + 1..)
                .map(|(_, n)| n)
            {
                if let Some(&idx) = snap.index.get(name) {
                    let info = Arc::clone(&self.nodes[name].info);
                    if snap.changes.len() == CHANGE_LOG_LEN
                        && let Some((g, _)) = snap.changes.pop_front()
                    {
                        snap.changes_floor = g;
                    }
                    snap.changes.push_back((info.generation, idx));
                    snap.replace(idx, info);
                }
            }
        }
        snap.generation = self.generation;
        snap.namespaces = Arc::clone(&self.namespaces);
        snap.namespaces_generation = self.namespaces_generation;
        snap.origin = self.origin;
    }

    /// A fresh snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            layout_generation: u64::MAX,
            ..Snapshot::default()
        };
        self.update_snapshot(&mut snap);
        snap
    }
}

/// Bit flags per node in [`NodeColumns::flags`].
pub mod flags {
    pub const UNSCHEDULABLE: u8 = 1;
    /// Has a NoSchedule or NoExecute taint.
    pub const HARD_TAINTS: u8 = 2;
    /// Has a PreferNoSchedule taint.
    pub const SOFT_TAINTS: u8 = 4;
    /// Has a host port in use.
    pub const PORTS_IN_USE: u8 = 8;
}

/// The hot numeric fields of every node, one column per field, indexed by node index:
/// the filter and score loops read these contiguously instead of chasing a pointer
/// per node.
#[derive(Clone, Debug, Default)]
pub struct NodeColumns {
    pub alloc_milli_cpu: Vec<i64>,
    pub alloc_memory: Vec<i64>,
    pub alloc_ephemeral_storage: Vec<i64>,
    pub allowed_pods: Vec<i64>,
    pub req_milli_cpu: Vec<i64>,
    pub req_memory: Vec<i64>,
    pub req_ephemeral_storage: Vec<i64>,
    pub non_zero_milli_cpu: Vec<i64>,
    pub non_zero_memory: Vec<i64>,
    pub n_pods: Vec<i64>,
    /// Free whole GPUs (`nvidia.com/gpu` allocatable minus requested).
    pub free_gpus: Vec<i64>,
    /// Free milli-GPU (`bosun.io/gpu-milli`), the fractional-GPU resource.
    pub free_gpu_milli: Vec<i64>,
    pub flags: Vec<u8>,
    /// The node's [`NodeInfo::generation`].
    pub generation: Vec<u64>,
}

impl NodeColumns {
    fn push(&mut self, n: &NodeInfo) {
        self.alloc_milli_cpu.push(0);
        self.alloc_memory.push(0);
        self.alloc_ephemeral_storage.push(0);
        self.allowed_pods.push(0);
        self.req_milli_cpu.push(0);
        self.req_memory.push(0);
        self.req_ephemeral_storage.push(0);
        self.non_zero_milli_cpu.push(0);
        self.non_zero_memory.push(0);
        self.n_pods.push(0);
        self.free_gpus.push(0);
        self.free_gpu_milli.push(0);
        self.flags.push(0);
        self.generation.push(0);
        self.set(self.flags.len() - 1, n);
    }

    fn set(&mut self, i: usize, n: &NodeInfo) {
        use crate::pod_info::TaintEffect;
        self.alloc_milli_cpu[i] = n.allocatable.milli_cpu;
        self.alloc_memory[i] = n.allocatable.memory;
        self.alloc_ephemeral_storage[i] = n.allocatable.ephemeral_storage;
        self.allowed_pods[i] = n.allocatable.allowed_pod_number;
        self.req_milli_cpu[i] = n.requested.milli_cpu;
        self.req_memory[i] = n.requested.memory;
        self.req_ephemeral_storage[i] = n.requested.ephemeral_storage;
        self.non_zero_milli_cpu[i] = n.non_zero_milli_cpu;
        self.non_zero_memory[i] = n.non_zero_memory;
        self.n_pods[i] = n.pods.len() as i64;
        let free = |name| n.allocatable.scalar(name) - n.requested.scalar(name);
        self.free_gpus[i] = free(crate::plugins::gpu_device::GPU_RESOURCE);
        self.free_gpu_milli[i] = free(crate::plugins::gpu_device::GPU_MILLI_RESOURCE);
        self.generation[i] = n.generation;
        let mut f = 0;
        if n.unschedulable {
            f |= flags::UNSCHEDULABLE;
        }
        if n.taints.iter().any(|t| t.effect.blocks_scheduling()) {
            f |= flags::HARD_TAINTS;
        }
        if n.taints
            .iter()
            .any(|t| t.effect == TaintEffect::PreferNoSchedule)
        {
            f |= flags::SOFT_TAINTS;
        }
        if !n.used_ports.is_empty() {
            f |= flags::PORTS_IN_USE;
        }
        self.flags[i] = f;
    }
}

/// An immutable view of the cluster for one or more scheduling cycles. Node indexes
/// (`u32`) are stable until the set of nodes changes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: Arc<HashMap<String, u32>>,
    cols: NodeColumns,
    /// How many listed nodes have each image (ImageLocality's spread).
    image_nodes: HashMap<String, u32>,
    /// Nodes with a pod that has inter-pod (anti-)affinity terms (upstream's
    /// `HavePodsWithAffinityList`).
    with_affinity: BTreeSet<u32>,
    /// Nodes with a pod that has required anti-affinity terms (upstream's
    /// `HavePodsWithRequiredAntiAffinityList`).
    with_required_anti_affinity: BTreeSet<u32>,
    namespaces: Arc<NamespaceLabels>,
    generation: u64,
    layout_generation: u64,
    /// See [`Snapshot::origin`].
    origin: u64,
    /// The generation of the last node change that changed a node's image list.
    image_generation: u64,
    /// The latest node changes `(generation, index)`, oldest first, at most
    /// [`CHANGE_LOG_LEN`]; every change after `changes_floor` is in it.
    changes: std::collections::VecDeque<(u64, u32)>,
    changes_floor: u64,
    /// Topology columns built so far, by label key ([`Snapshot::topology`]).
    topology: TopologyCache,
    /// See [`Snapshot::namespaces_generation`].
    namespaces_generation: u64,
}

/// A node's domain id in a [`TopologyColumn`] when it lacks the label.
pub const NO_DOMAIN: u32 = u32::MAX;
/// Topology keys a snapshot keeps columns for; past it, columns are built per call.
pub const MAX_TOPOLOGY_KEYS: usize = 64;

/// The domains of one topology key: every node's label value, interned to a small
/// integer, so that per-domain counts are vectors and the per-node lookup is an index.
#[derive(Clone, Debug, Default)]
pub struct TopologyColumn {
    /// Per node index: the id of its value, or [`NO_DOMAIN`].
    pub domain_of: Vec<u32>,
    /// The values, by id (ids are never reused, so a value may have no node left).
    pub values: Vec<String>,
    ids: HashMap<String, u32>,
}

impl TopologyColumn {
    fn build(key: &str, nodes: &[Arc<NodeInfo>]) -> TopologyColumn {
        let mut col = TopologyColumn {
            domain_of: vec![NO_DOMAIN; nodes.len()],
            ..TopologyColumn::default()
        };
        for (i, n) in nodes.iter().enumerate() {
            col.set(i, n.labels.get(key));
        }
        col
    }

    fn set(&mut self, idx: usize, value: Option<&String>) {
        self.domain_of[idx] = match value {
            None => NO_DOMAIN,
            Some(v) => self.id_or_insert(v),
        };
    }

    fn id_or_insert(&mut self, v: &str) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.to_owned());
        self.ids.insert(v.to_owned(), id);
        id
    }

    /// The id of a value, if some node ever had it.
    pub fn id(&self, value: &str) -> Option<u32> {
        self.ids.get(value).copied()
    }

    /// How many ids there are (the length of a per-domain vector).
    pub fn n_values(&self) -> usize {
        self.values.len()
    }
}

/// Lazily built topology columns; shared readers, one writer when a key is first
/// asked for.
#[derive(Default)]
struct TopologyCache(std::sync::RwLock<HashMap<String, Arc<TopologyColumn>>>);

impl TopologyCache {
    fn columns_mut(&mut self) -> &mut HashMap<String, Arc<TopologyColumn>> {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for TopologyCache {
    fn clone(&self) -> TopologyCache {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        TopologyCache(std::sync::RwLock::new(map))
    }
}

impl std::fmt::Debug for TopologyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        f.debug_set().entries(map.keys()).finish()
    }
}

/// Node changes a snapshot remembers for [`Snapshot::changed_since`].
pub const CHANGE_LOG_LEN: usize = 4096;

/// Source of [`Snapshot::origin`] values; 0 is never handed out.
static NEXT_ORIGIN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_origin() -> u64 {
    NEXT_ORIGIN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Snapshot {
    /// A snapshot of exactly these nodes, in this order (for tests and benches; the
    /// scheduler gets its snapshots from [`Cache::update_snapshot`]).
    pub fn from_nodes(nodes: Vec<Arc<NodeInfo>>) -> Snapshot {
        assert!(nodes.len() < u32::MAX as usize, "node index must fit u32");
        let mut snap = Snapshot::default();
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            index.insert(n.name.clone(), i as u32);
            snap.cols.push(n);
            snap.index_affinity(i as u32, n);
            for image in n.images.keys() {
                *snap.image_nodes.entry(image.clone()).or_default() += 1;
            }
        }
        snap.nodes = nodes;
        snap.index = Arc::new(index);
        snap.origin = next_origin();
        snap
    }

    /// The same snapshot with these namespace labels (for tests and benches; the cache
    /// keeps them up to date otherwise).
    pub fn with_namespaces(mut self, namespaces: NamespaceLabels) -> Snapshot {
        self.namespaces = Arc::new(namespaces);
        self.namespaces_generation = next_origin();
        self
    }

    fn index_affinity(&mut self, idx: u32, n: &NodeInfo) {
        if n.n_pods_with_affinity > 0 {
            self.with_affinity.insert(idx);
        } else {
            self.with_affinity.remove(&idx);
        }
        if n.n_pods_with_required_anti_affinity > 0 {
            self.with_required_anti_affinity.insert(idx);
        } else {
            self.with_required_anti_affinity.remove(&idx);
        }
    }

    /// Replaces the node at `idx` (same name), keeping every derived index right; for
    /// what-if evaluation (preemption) on a private copy of a snapshot.
    pub fn replace_node(&mut self, idx: u32, info: Arc<NodeInfo>) {
        assert_eq!(
            self.nodes[idx as usize].name, info.name,
            "replace_node keeps the node"
        );
        self.replace(idx, info);
        // The replacement need not carry a cache-stamped generation: this is a new
        // lineage of node contents.
        self.origin = next_origin();
    }

    fn replace(&mut self, idx: u32, info: Arc<NodeInfo>) {
        let i = idx as usize;
        for image in self.nodes[i].images.keys() {
            let count = self.image_nodes.get_mut(image).expect("counted image");
            *count -= 1;
            if *count == 0 {
                self.image_nodes.remove(image);
            }
        }
        for image in info.images.keys() {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
        if !self.nodes[i].images.keys().eq(info.images.keys()) {
            self.image_generation = self.image_generation.max(info.generation);
        }
        if self.nodes[i].labels != info.labels {
            for (key, col) in self.topology.columns_mut() {
                Arc::make_mut(col).set(i, info.labels.get(key));
            }
        }
        self.cols.set(i, &info);
        self.index_affinity(idx, &info);
        self.nodes[i] = info;
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The node at `idx`. Panics if `idx >= n_nodes()`.
    pub fn node(&self, idx: u32) -> &NodeInfo {
        &self.nodes[idx as usize]
    }

    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    pub fn node_index(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn columns(&self) -> &NodeColumns {
        &self.cols
    }

    /// How many nodes report this (normalised) image.
    pub fn image_num_nodes(&self, image: &str) -> u32 {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Labels of every known namespace, by name.
    pub fn namespaces(&self) -> &NamespaceLabels {
        &self.namespaces
    }

    /// The labels of a namespace, `None` when the snapshot does not know it.
    pub fn namespace_labels(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(ns)
    }

    /// Indexes of nodes with a pod that has inter-pod (anti-)affinity, ascending.
    pub fn nodes_with_affinity_pods(&self) -> impl Iterator<Item = u32> + '_ {
        self.with_affinity.iter().copied()
    }

    /// Indexes of nodes with a pod that has required anti-affinity, ascending.
    pub fn nodes_with_required_anti_affinity_pods(&self) -> impl Iterator<Item = u32> + '_ {
        self.with_required_anti_affinity.iter().copied()
    }

    /// The cache generation this snapshot reflects.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Which lineage of node contents this snapshot belongs to: every snapshot a
    /// [`Cache`] updates carries the cache's origin, whose node generations it stamps;
    /// every [`Snapshot::from_nodes`] and every [`Snapshot::replace_node`] starts a new
    /// one. Within one origin and layout, a node index with an unchanged
    /// [`NodeInfo::generation`] has unchanged contents.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The indexes of the nodes changed after snapshot generation `generation` (with
    /// repeats when a node changed more than once), or `None` when the change log does
    /// not reach back that far.
    pub fn changed_since(&self, generation: u64) -> Option<impl Iterator<Item = u32> + '_> {
        if generation < self.changes_floor || generation > self.generation {
            return None;
        }
        Some(
            self.changes
                .iter()
                .rev()
                .take_while(move |(g, _)| *g > generation)
                .map(|(_, i)| *i),
        )
    }

    /// The domains of topology key `key` over this snapshot's nodes; built on first
    /// use (`O(nodes)`), then kept up to date as nodes change.
    pub fn topology(&self, key: &str) -> Arc<TopologyColumn> {
        let cache = &self.topology.0;
        if let Some(col) = cache.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Arc::clone(col);
        }
        let col = Arc::new(TopologyColumn::build(key, &self.nodes));
        let mut map = cache.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TOPOLOGY_KEYS {
            return col;
        }
        Arc::clone(map.entry(key.to_owned()).or_insert(col))
    }

    /// Changes (within one origin) whenever the namespace labels change.
    pub fn namespaces_generation(&self) -> u64 {
        self.namespaces_generation
    }

    /// Bumped (within one origin) whenever a node's image list changes.
    pub fn image_generation(&self) -> u64 {
        self.image_generation
    }

    /// Bumped (within one origin) whenever the list of nodes changes.
    pub fn layout_generation(&self) -> u64 {
        self.layout_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};

    fn pod(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let mut b = PodBuilder::new(name).request(cpu, "1Gi");
        if !node.is_empty() {
            b = b.node_name(node);
        }
        Arc::new(PodInfo::new(b.build()).unwrap())
    }

    fn cache_with(n: usize) -> Cache {
        let mut c = Cache::new();
        for i in 0..n {
            c.add_node(
                &NodeBuilder::new(&format!("n{i}"))
                    .capacity("4", "8Gi", 110)
                    .image(&["img:1"], 100)
                    .build(),
            )
            .unwrap();
        }
        c
    }

    #[test]
    fn incremental_snapshot_copies_only_changed_nodes() {
        let mut c = cache_with(4);
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.n_nodes(), 4);
        assert_eq!(snap.image_num_nodes("img:1"), 4);
        let before: Vec<Arc<NodeInfo>> = snap.nodes().to_vec();
        c.assume_pod(pod("a", "", "1"), "n2").unwrap();
        c.update_snapshot(&mut snap);
        for (i, (old, new)) in before.iter().zip(snap.nodes()).enumerate() {
            assert_eq!(Arc::ptr_eq(old, new), i != 2, "node {i}");
        }
        assert_eq!(snap.columns().req_milli_cpu, [0, 0, 1000, 0]);
        assert_eq!(snap.columns().n_pods, [0, 0, 1, 0]);
        assert_eq!(snap.node(2).generation, c.generation());
        assert_eq!(snap.generation(), c.generation());
        // A fresh snapshot equals the incrementally maintained one.
        let fresh = c.snapshot();
        assert_eq!(fresh.columns().req_milli_cpu, snap.columns().req_milli_cpu);
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = cache_with(2);
        c.assume_pod(pod("a", "", "1"), "n0").unwrap();
        assert!(c.is_assumed("uid-a"));
        assert_eq!(
            c.assume_pod(pod("a", "", "1"), "n0"),
            Err(CacheError::PodExists("default/a".into()))
        );
        assert_eq!(
            c.assume_pod(pod("b", "", "1"), "zz"),
            Err(CacheError::NodeNotFound("zz".into()))
        );
        // The binding lands elsewhere than assumed: the pod moves.
        c.add_pod(pod("a", "n1", "1")).unwrap();
        assert!(!c.is_assumed("uid-a"));
        let snap = c.snapshot();
        assert_eq!(snap.columns().req_milli_cpu, [0, 1000]);
        assert_eq!(
            c.forget_pod("uid-a"),
            Err(CacheError::PodNotAssumed("uid-a".into()))
        );
        c.assume_pod(pod("b", "", "2"), "n0").unwrap();
        c.forget_pod("uid-b").unwrap();
        assert_eq!(c.snapshot().columns().req_milli_cpu, [0, 1000]);
        assert_eq!(
            c.add_pod(pod("c", "", "1")),
            Err(CacheError::PodWithoutNode("default/c".into()))
        );
    }

    #[test]
    fn nodes_come_and_go() {
        let mut c = cache_with(3);
        let mut snap = c.snapshot();
        // A pod arriving before its node is kept on a placeholder, not listed.
        c.add_pod(pod("early", "n9", "1")).unwrap();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.n_nodes(), 3);
        c.add_node(&NodeBuilder::new("n9").capacity("4", "8Gi", 110).build())
            .unwrap();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.n_nodes(), 4);
        assert_eq!(
            snap.node(snap.node_index("n9").unwrap())
                .requested
                .milli_cpu,
            1000
        );
        // Removing a node with pods unlists it; its pods can still be removed.
        c.remove_node("n9").unwrap();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.n_nodes(), 3);
        assert!(snap.node_index("n9").is_none());
        c.remove_pod("uid-early").unwrap();
        assert_eq!(
            c.remove_node("n9"),
            Err(CacheError::NodeNotFound("n9".into()))
        );
        c.remove_node("n0").unwrap();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.image_num_nodes("img:1"), 2);
        // Updating a node keeps its pods.
        c.add_pod(pod("x", "n1", "3")).unwrap();
        c.update_node(
            &NodeBuilder::new("n1")
                .capacity("8", "8Gi", 110)
                .unschedulable()
                .build(),
        )
        .unwrap();
        c.update_snapshot(&mut snap);
        let i = snap.node_index("n1").unwrap() as usize;
        assert_eq!(snap.columns().alloc_milli_cpu[i], 8000);
        assert_eq!(snap.columns().req_milli_cpu[i], 3000);
        assert_eq!(
            snap.columns().flags[i] & flags::UNSCHEDULABLE,
            flags::UNSCHEDULABLE
        );
        assert_eq!(
            snap.image_num_nodes("img:1"),
            1,
            "n1's update dropped its image"
        );
    }
}
