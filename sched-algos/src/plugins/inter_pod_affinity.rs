//! InterPodAffinity (upstream interpodaffinity/: plugin.go, filtering.go, scoring.go).
//!
//! PreFilter counts, per topology pair `(key, value)`:
//! - `existing_anti_affinity`: for each existing pod with required anti-affinity (only
//!   nodes listed by [`Snapshot::nodes_with_required_anti_affinity_pods`] are visited),
//!   each of its terms that matches the incoming pod (the term's namespace selector
//!   read against the incoming pod's namespace labels) counts once at its node's value;
//! - `affinity`: each existing pod that matches *all* the incoming pod's required
//!   affinity terms counts once per term at its node's value;
//! - `anti_affinity`: each incoming required anti-affinity term an existing pod
//!   matches counts once at that pod's node's value.
//!
//! The incoming pod's terms have their namespace selector resolved to namespace names
//! first (upstream's `mergeAffinityTermNamespacesIfNotEmpty`). With no counts of
//! existing anti-affinity and no required terms, PreFilter returns Skip. The two
//! incoming counts visit every pod, as upstream does, but only when the pod has
//! required terms; the existing count visits only pods with required anti-affinity.
//!
//! Filter, in upstream's order:
//! 1. affinity: every term's topology key must be on the node and some matching pod
//!    must be in the node's domain, except that when no existing pod matches at all and
//!    the pod matches its own terms, any node with all the keys passes (the first pod
//!    of a self-affine group): `UnschedulableAndUnresolvable`, "node(s) didn't match
//!    pod affinity rules";
//! 2. anti-affinity: no matching pod in the node's domain of any term:
//!    `Unschedulable`, "node(s) didn't match pod anti-affinity rules";
//! 3. existing anti-affinity: no positive count on any of the node's label pairs:
//!    `Unschedulable`, "node(s) didn't satisfy existing pods anti-affinity rules".
//!
//! PreScore sums into `score[key][value]`: the incoming pod's preferred affinity
//! (`+weight`) and anti-affinity (`-weight`) terms matched by existing pods; existing
//! pods' required affinity terms matched by the incoming pod (`+hardPodAffinityWeight`);
//! existing pods' preferred affinity (`+weight`) and anti-affinity (`-weight`) terms
//! matched by the incoming pod. Without preferred terms of its own, only nodes with
//! pods that have affinity are visited. Nothing counted: Skip. Score is the sum over
//! the node's labels; NormalizeScore maps `[min, max]` onto `[0, 100]` as
//! `int(100 * (s - min) / (max - min))` in floating point (all 0 when `max == min`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use crate::affinity::{AffinityTerm, WeightedAffinityTerm};
use crate::cache::{NO_DOMAIN, Snapshot, TopologyColumn};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Plugin, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin,
};
use crate::memo::Contributions;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::status::{Code, Status};

pub const NAME: &str = "InterPodAffinity";
const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// Upstream's `ErrReasonAffinityRulesNotMatch`.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// Upstream's `ErrReasonAntiAffinityRulesNotMatch`.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";
/// Upstream's `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// Upstream's bound on `hardPodAffinityWeight`.
pub const MAX_HARD_POD_AFFINITY_WEIGHT: i64 = 100;

/// `InterPodAffinityArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InterPodAffinityArgs {
    /// Score weight of an existing pod's required affinity term the incoming pod
    /// matches; 0..=100, default 1.
    pub hard_pod_affinity_weight: i64,
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

/// Counts per topology pair, one vector per topology key indexed by the key's domain
/// ids ([`Snapshot::topology`]), so that the per-node lookup is an index. Emptiness
/// means "nothing counted", as for upstream's `topologyToMatchedTermCount` with its
/// zero entries removed.
#[derive(Clone, Debug, Default)]
pub struct TopologyCounts {
    keys: Vec<KeyCounts>,
    /// Domains with a non-zero count, over all keys.
    nonzero: usize,
}

#[derive(Clone, Debug)]
struct KeyCounts {
    key: String,
    domains: Arc<TopologyColumn>,
    counts: Vec<i64>,
}

/// A node as Filter sees it: by index in the PreFilter snapshot (batch) or by its
/// labels (a node object, as preemption's what-if passes).
#[derive(Clone, Copy)]
enum NodeRef<'a> {
    Index(u32),
    Labels(&'a BTreeMap<String, String>),
}

impl KeyCounts {
    /// The node's domain id of this key; `None` when the node lacks the label (or,
    /// by labels, has a value no node had at PreFilter: a count of 0 either way).
    fn domain(&self, node: NodeRef<'_>) -> Option<usize> {
        match node {
            NodeRef::Index(i) => {
                let d = self.domains.domain_of[i as usize];
                (d != NO_DOMAIN).then_some(d as usize)
            }
            NodeRef::Labels(l) => l
                .get(&self.key)
                .and_then(|v| self.domains.id(v))
                .map(|d| d as usize),
        }
    }

    fn get(&self, node: NodeRef<'_>) -> i64 {
        self.domain(node)
            .and_then(|d| self.counts.get(d).copied())
            .unwrap_or(0)
    }
}

impl TopologyCounts {
    /// The counts of `key`, made (all zero) if missing.
    fn key_mut(&mut self, snap: &Snapshot, key: &str) -> &mut KeyCounts {
        let k = match self.keys.iter().position(|k| k.key == key) {
            Some(k) => k,
            None => {
                let domains = snap.topology(key);
                self.keys.push(KeyCounts {
                    key: key.to_owned(),
                    counts: vec![0; domains.n_values()],
                    domains,
                });
                self.keys.len() - 1
            }
        };
        &mut self.keys[k]
    }

    /// Adds `delta` at domain `d` of `key`.
    fn add_domain(&mut self, snap: &Snapshot, key: &str, d: u32, delta: i64) {
        let kc = self.key_mut(snap, key);
        let d = d as usize;
        if kc.counts.len() <= d {
            kc.counts.resize(d + 1, 0);
        }
        let c = &mut kc.counts[d];
        let before = *c != 0;
        *c += delta;
        match (before, *c != 0) {
            (false, true) => self.nonzero += 1,
            (true, false) => self.nonzero -= 1,
            _ => {}
        }
    }

    /// Takes the snapshot's current columns (domain ids are stable; a node's id may
    /// have changed with its labels).
    fn refresh_domains(&mut self, snap: &Snapshot) {
        for k in &mut self.keys {
            k.domains = snap.topology(&k.key);
        }
    }

    fn get(&self, key: &str, node: NodeRef<'_>) -> i64 {
        self.keys
            .iter()
            .find(|k| k.key == key)
            .map_or(0, |k| k.get(node))
    }

    /// Whether the node has `key`'s label.
    fn has_label(&self, key: &str, node: NodeRef<'_>) -> bool {
        match node {
            NodeRef::Labels(l) => l.contains_key(key),
            NodeRef::Index(i) => self
                .keys
                .iter()
                .find(|k| k.key == key)
                .is_some_and(|k| k.domains.domain_of[i as usize] != NO_DOMAIN),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nonzero == 0
    }

    /// Whether any of the node's label pairs has a positive count.
    fn any_positive_on(&self, node: NodeRef<'_>) -> bool {
        self.nonzero > 0 && self.keys.iter().any(|k| k.get(node) > 0)
    }
}

/// What Filter reads (upstream's `preFilterState`).
#[derive(Clone, Debug)]
struct PreFilterState {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    affinity_counts: TopologyCounts,
    anti_affinity_counts: TopologyCounts,
    existing_anti_affinity_counts: TopologyCounts,
    /// The pod matches all its own required affinity terms.
    self_affine: bool,
}

/// Upstream's `podMatchesAllAffinityTerms` (the incoming pod's terms have resolved
/// namespaces: no namespace labels needed).
fn matches_all(terms: &[AffinityTerm], pod: &PodInfo) -> bool {
    !terms.is_empty()
        && terms
            .iter()
            .all(|t| t.matches(&pod.namespace, &pod.labels, None))
}

#[derive(Debug)]
pub struct InterPodAffinity {
    args: InterPodAffinityArgs,
    /// PreFilter's counts, kept across cycles for the last pod shape.
    counts: std::sync::Mutex<Contributions<NodeTerms, [TopologyCounts; 3]>>,
    /// PreScore's score map, likewise.
    scores: std::sync::Mutex<Contributions<NodeScores, ScoreAgg>>,
}

/// Which PreFilter count a term match goes to.
const EXISTING_ANTI: usize = 0;
const AFFINITY: usize = 1;
const ANTI: usize = 2;

/// One node's part of PreFilter's counts: `(count, topology key, domain)`, each +1.
type NodeTerms = Vec<(usize, String, u32)>;

impl InterPodAffinity {
    pub fn new(args: &InterPodAffinityArgs) -> Result<InterPodAffinity, ConfigError> {
        if !(0..=MAX_HARD_POD_AFFINITY_WEIGHT).contains(&args.hard_pod_affinity_weight) {
            return Err(ConfigError::InvalidArgs {
                plugin: NAME.to_owned(),
                message: format!(
                    "hardPodAffinityWeight: Invalid value: {}: not in valid range [0-{MAX_HARD_POD_AFFINITY_WEIGHT}]",
                    args.hard_pod_affinity_weight
                ),
            });
        }
        Ok(InterPodAffinity {
            args: args.clone(),
            counts: Default::default(),
            scores: Default::default(),
        })
    }

    fn pre_filter_state(&self, pod: &PodInfo, snap: &Snapshot) -> PreFilterState {
        let resolve = |terms: &[AffinityTerm]| -> Vec<AffinityTerm> {
            terms
                .iter()
                .map(|t| t.with_resolved_namespaces(snap))
                .collect()
        };
        let required_affinity = resolve(&pod.affinity.required_affinity);
        let required_anti_affinity = resolve(&pod.affinity.required_anti_affinity);
        let ns_labels = snap.namespace_labels(&pod.namespace);
        let has_required = !required_affinity.is_empty() || !required_anti_affinity.is_empty();
        let n_pods = &snap.columns().n_pods;
        let domain = |key: &str, idx: u32| snap.topology(key).domain_of[idx as usize];
        // What node `idx` adds to each count (upstream visits the same pods: those
        // with required anti-affinity for the first, every pod for the others).
        let node_terms = |idx: u32| -> NodeTerms {
            let mut out = NodeTerms::new();
            if n_pods[idx as usize] == 0 {
                return out;
            }
            let node = snap.node(idx);
            let mut push = |which: usize, key: &str| {
                let d = domain(key, idx);
                if d != NO_DOMAIN {
                    out.push((which, key.to_owned(), d));
                }
            };
            if node.n_pods_with_required_anti_affinity > 0 {
                for p in &node.pods {
                    for t in &p.affinity.required_anti_affinity {
                        if t.matches(&pod.namespace, &pod.labels, ns_labels) {
                            push(EXISTING_ANTI, &t.topology_key);
                        }
                    }
                }
            }
            if has_required {
                for p in &node.pods {
                    if matches_all(&required_affinity, p) {
                        for t in &required_affinity {
                            push(AFFINITY, &t.topology_key);
                        }
                    }
                    for t in &required_anti_affinity {
                        if t.matches(&p.namespace, &p.labels, None) {
                            push(ANTI, &t.topology_key);
                        }
                    }
                }
            }
            out
        };
        let apply = |agg: &mut [TopologyCounts; 3], terms: &NodeTerms, sign: i64| {
            for (which, key, d) in terms {
                agg[*which].add_domain(snap, key, *d, sign);
            }
        };
        // What the node parts depend on besides the node: the pod's namespace, labels
        // and required terms, and the namespaces (selectors). Not its resources: pods
        // of different sizes share the counts.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            pod.namespace.hash(&mut h);
            pod.labels.hash(&mut h);
            format!("{required_affinity:?}{required_anti_affinity:?}").hash(&mut h);
            snap.namespaces_generation().hash(&mut h);
            h.finish()
        };
        if !has_required
            && snap
                .nodes_with_required_anti_affinity_pods()
                .next()
                .is_none()
        {
            // Nothing to count (upstream's PreFilter then skips).
            return PreFilterState {
                self_affine: matches_all(&required_affinity, pod),
                required_affinity,
                required_anti_affinity,
                affinity_counts: TopologyCounts::default(),
                anti_affinity_counts: TopologyCounts::default(),
                existing_anti_affinity_counts: TopologyCounts::default(),
            };
        }
        let mut memo = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        memo.sync(key, snap, Default::default, node_terms, apply);
        for counts in memo.agg.iter_mut() {
            counts.refresh_domains(snap);
        }
        let [existing, mut affinity_counts, mut anti_affinity_counts] = memo.agg.clone();
        drop(memo);
        // Every term's key has a column, so that Filter can tell a missing label.
        for t in &required_affinity {
            affinity_counts.key_mut(snap, &t.topology_key);
        }
        for t in &required_anti_affinity {
            anti_affinity_counts.key_mut(snap, &t.topology_key);
        }
        PreFilterState {
            self_affine: matches_all(&required_affinity, pod),
            required_affinity,
            required_anti_affinity,
            affinity_counts,
            anti_affinity_counts,
            existing_anti_affinity_counts: existing,
        }
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if let Some(e) = &pod.affinity.error {
            return (None, Status::error(format!("parsing pod: {e}")));
        }
        let s = self.pre_filter_state(pod, snap);
        if s.existing_anti_affinity_counts.is_empty()
            && s.required_affinity.is_empty()
            && s.required_anti_affinity.is_empty()
        {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_KEY, s);
        (None, Status::success())
    }
}

fn satisfies_affinity(s: &PreFilterState, node: NodeRef<'_>) -> bool {
    let mut pods_exist = true;
    for t in &s.required_affinity {
        // All topology labels must exist on the node.
        if !s.affinity_counts.has_label(&t.topology_key, node) {
            return false;
        }
        if s.affinity_counts.get(&t.topology_key, node) <= 0 {
            pods_exist = false;
        }
    }
    pods_exist || (s.affinity_counts.is_empty() && s.self_affine)
}

fn satisfies_anti_affinity(s: &PreFilterState, node: NodeRef<'_>) -> bool {
    s.anti_affinity_counts.is_empty()
        || !s
            .required_anti_affinity
            .iter()
            .any(|t| s.anti_affinity_counts.get(&t.topology_key, node) > 0)
}

impl PreFilterState {
    /// Filter's verdict, in upstream's order.
    fn verdict(&self, node: NodeRef<'_>) -> Status {
        if !satisfies_affinity(self, node) {
            return Status::new(
                Code::UnschedulableAndUnresolvable,
                ERR_REASON_AFFINITY_RULES_NOT_MATCH,
            );
        }
        if !satisfies_anti_affinity(self, node) {
            return Status::new(
                Code::Unschedulable,
                ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
            );
        }
        if self.existing_anti_affinity_counts.any_positive_on(node) {
            return Status::new(
                Code::Unschedulable,
                ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
            );
        }
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        s.verdict(NodeRef::Labels(&node.labels))
    }

    fn filter_batch(
        &self,
        state: &CycleState,
        _pod: &PodInfo,
        _snap: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        super::filter_batch_by_index(
            state,
            PRE_FILTER_KEY,
            NAME,
            nodes,
            out,
            |s: &PreFilterState, idx| s.verdict(NodeRef::Index(idx)),
        );
    }
}

/// `topologyKey -> value -> score` (upstream's `scoreMap`); entries are kept at zero.
#[derive(Debug, Default)]
struct ScoreMap(HashMap<String, HashMap<String, i64>>);

impl ScoreMap {
    /// Upstream's `processTerm`: adds `weight * multiplier` at the node's value of the
    /// term's key if `pod` matches the term.
    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        term: &AffinityTerm,
        weight: i64,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        node_labels: &BTreeMap<String, String>,
        multiplier: i64,
    ) {
        if term.matches(&pod.namespace, &pod.labels, ns_labels)
            && let Some(v) = node_labels.get(&term.topology_key)
        {
            *self
                .0
                .entry(term.topology_key.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += weight * multiplier;
        }
    }
}

struct PreScoreState {
    /// `topologyKey -> domain id -> score` (upstream's `scoreMap`, by domain id).
    by_domain: Vec<(String, Arc<TopologyColumn>, Vec<i64>)>,
}

/// One node's part of PreScore's score map: `(topology key, domain, score)`.
type NodeScores = Vec<(String, u32, i64)>;

/// The score map summed over nodes, by topology key and domain id; `entries` counts
/// the parts, so that zero means upstream's map would be empty.
#[derive(Debug, Default)]
struct ScoreAgg {
    keys: Vec<(String, Vec<i64>)>,
    entries: i64,
}

impl InterPodAffinity {
    /// Upstream's `processExistingPod`.
    #[allow(clippy::too_many_arguments)]
    fn process_existing_pod(
        &self,
        score: &mut ScoreMap,
        preferred: &[WeightedAffinityTerm],
        preferred_anti: &[WeightedAffinityTerm],
        incoming: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        existing: &PodInfo,
        node_labels: &BTreeMap<String, String>,
    ) {
        for t in preferred {
            score.process(&t.term, t.weight, existing, None, node_labels, 1);
        }
        for t in preferred_anti {
            score.process(&t.term, t.weight, existing, None, node_labels, -1);
        }
        let hard = self.args.hard_pod_affinity_weight;
        if hard > 0 {
            for t in &existing.affinity.required_affinity {
                score.process(t, hard, incoming, ns_labels, node_labels, 1);
            }
        }
        for t in &existing.affinity.preferred_affinity {
            score.process(&t.term, t.weight, incoming, ns_labels, node_labels, 1);
        }
        for t in &existing.affinity.preferred_anti_affinity {
            score.process(&t.term, t.weight, incoming, ns_labels, node_labels, -1);
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[u32],
    ) -> Status {
        if feasible.is_empty() {
            return Status::skip();
        }
        if let Some(e) = &pod.affinity.error {
            return Status::error(format!("failed to parse pod: {e}"));
        }
        let has_constraints = !pod.affinity.preferred_affinity.is_empty()
            || !pod.affinity.preferred_anti_affinity.is_empty();
        if self.args.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        // Upstream visits only the nodes hosting pods with affinity when the pod has no
        // preferred terms (`HavePodsWithAffinityList`); with none, the map is empty.
        if !has_constraints && snap.nodes_with_affinity_pods().next().is_none() {
            return Status::skip();
        }
        let resolve = |terms: &[WeightedAffinityTerm]| -> Vec<WeightedAffinityTerm> {
            terms
                .iter()
                .map(|t| WeightedAffinityTerm {
                    term: t.term.with_resolved_namespaces(snap),
                    weight: t.weight,
                })
                .collect()
        };
        let preferred = resolve(&pod.affinity.preferred_affinity);
        let preferred_anti = resolve(&pod.affinity.preferred_anti_affinity);
        let ns_labels = snap.namespace_labels(&pod.namespace);
        // One node's part of the score map: upstream's visit of the node's pods, as
        // `(key, domain, score)` entries (an entry exists as soon as a term matched).
        let node_scores = |idx: u32| -> NodeScores {
            let node = snap.node(idx);
            if node.labels.is_empty() || node.pods.is_empty() {
                return NodeScores::new();
            }
            let mut score = ScoreMap::default();
            for p in &node.pods {
                if has_constraints || p.affinity.has_any() {
                    self.process_existing_pod(
                        &mut score,
                        &preferred,
                        &preferred_anti,
                        pod,
                        ns_labels,
                        p,
                        &node.labels,
                    );
                }
            }
            score
                .0
                .into_iter()
                .flat_map(|(key, values)| {
                    let d = snap.topology(&key).domain_of[idx as usize];
                    values.into_values().map(move |v| (key.clone(), d, v))
                })
                .collect()
        };
        let apply = |agg: &mut ScoreAgg, part: &NodeScores, sign: i64| {
            for (key, d, v) in part {
                agg.entries += sign;
                let col = match agg.keys.iter().position(|(k, _)| k == key) {
                    Some(k) => &mut agg.keys[k].1,
                    None => {
                        agg.keys.push((key.clone(), Vec::new()));
                        &mut agg.keys.last_mut().expect("just pushed").1
                    }
                };
                let d = *d as usize;
                if col.len() <= d {
                    col.resize(d + 1, 0);
                }
                col[d] += sign * v;
            }
        };
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            pod.namespace.hash(&mut h);
            pod.labels.hash(&mut h);
            format!("{preferred:?}{preferred_anti:?}").hash(&mut h);
            snap.namespaces_generation().hash(&mut h);
            h.finish()
        };
        let mut memo = self.scores.lock().unwrap_or_else(|e| e.into_inner());
        memo.sync(key, snap, ScoreAgg::default, node_scores, apply);
        if memo.agg.entries == 0 {
            return Status::skip();
        }
        let by_domain = memo
            .agg
            .keys
            .iter()
            .map(|(key, v)| (key.clone(), snap.topology(key), v.clone()))
            .collect();
        drop(memo);
        state.write(PRE_SCORE_KEY, PreScoreState { by_domain });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Err(Status::error(format!(
                "reading {PRE_SCORE_KEY:?} from cycleState: not found"
            )));
        };
        Ok(s.by_domain
            .iter()
            .filter_map(|(key, domains, v)| {
                let d = domains.id(node.labels.get(key)?)?;
                v.get(d as usize).copied()
            })
            .sum())
    }

    fn score_batch(
        &self,
        state: &CycleState,
        _pod: &PodInfo,
        _snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Err(Status::error(format!(
                "reading {PRE_SCORE_KEY:?} from cycleState: not found"
            )));
        };
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            *slot = s
                .by_domain
                .iter()
                .map(|(_, domains, v)| match domains.domain_of[idx as usize] {
                    NO_DOMAIN => 0,
                    d => v.get(d as usize).copied().unwrap_or(0),
                })
                .sum();
        }
        Ok(())
    }

    fn normalize_scores(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        if state.read::<PreScoreState>(PRE_SCORE_KEY).is_none() {
            return Status::success();
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests;
