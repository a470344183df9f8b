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

use serde::Deserialize;

use crate::affinity::{AffinityTerm, WeightedAffinityTerm};
use crate::cache::Snapshot;
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Plugin, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin,
};
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

/// Counts per topology pair; entries that reach zero are removed, as upstream's
/// `topologyToMatchedTermCount` does, so emptiness means "nothing counted".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyCounts {
    by_key: HashMap<String, HashMap<String, i64>>,
}

impl TopologyCounts {
    pub fn add(&mut self, key: &str, value: &str, delta: i64) {
        let values = self.by_key.entry(key.to_owned()).or_default();
        let c = values.entry(value.to_owned()).or_default();
        *c += delta;
        if *c == 0 {
            values.remove(value);
            if values.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    pub fn get(&self, key: &str, value: &str) -> i64 {
        self.by_key
            .get(key)
            .and_then(|v| v.get(value))
            .copied()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether any of the node's label pairs has a positive count.
    fn any_positive_on(&self, labels: &BTreeMap<String, String>) -> bool {
        self.by_key.iter().any(|(k, values)| {
            labels
                .get(k)
                .and_then(|v| values.get(v))
                .is_some_and(|&c| c > 0)
        })
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
}

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
        Ok(InterPodAffinity { args: args.clone() })
    }

    fn pre_filter_state(pod: &PodInfo, snap: &Snapshot) -> PreFilterState {
        let resolve = |terms: &[AffinityTerm]| -> Vec<AffinityTerm> {
            terms
                .iter()
                .map(|t| t.with_resolved_namespaces(snap))
                .collect()
        };
        let required_affinity = resolve(&pod.affinity.required_affinity);
        let required_anti_affinity = resolve(&pod.affinity.required_anti_affinity);
        let ns_labels = snap.namespace_labels(&pod.namespace);
        let mut existing = TopologyCounts::default();
        for idx in snap.nodes_with_required_anti_affinity_pods() {
            let node = snap.node(idx);
            for p in &node.pods {
                for t in &p.affinity.required_anti_affinity {
                    if t.matches(&pod.namespace, &pod.labels, ns_labels)
                        && let Some(v) = node.labels.get(&t.topology_key)
                    {
                        existing.add(&t.topology_key, v, 1);
                    }
                }
            }
        }
        let mut affinity_counts = TopologyCounts::default();
        let mut anti_affinity_counts = TopologyCounts::default();
        if !required_affinity.is_empty() || !required_anti_affinity.is_empty() {
            for node in snap.nodes() {
                for p in &node.pods {
                    if matches_all(&required_affinity, p) {
                        for t in &required_affinity {
                            if let Some(v) = node.labels.get(&t.topology_key) {
                                affinity_counts.add(&t.topology_key, v, 1);
                            }
                        }
                    }
                    for t in &required_anti_affinity {
                        if t.matches(&p.namespace, &p.labels, None)
                            && let Some(v) = node.labels.get(&t.topology_key)
                        {
                            anti_affinity_counts.add(&t.topology_key, v, 1);
                        }
                    }
                }
            }
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
        let s = Self::pre_filter_state(pod, snap);
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

fn satisfies_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    let mut pods_exist = true;
    for t in &s.required_affinity {
        match labels.get(&t.topology_key) {
            // All topology labels must exist on the node.
            None => return false,
            Some(v) => {
                if s.affinity_counts.get(&t.topology_key, v) <= 0 {
                    pods_exist = false;
                }
            }
        }
    }
    pods_exist || (s.affinity_counts.is_empty() && s.self_affine)
}

fn satisfies_anti_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    s.anti_affinity_counts.is_empty()
        || !s.required_anti_affinity.iter().any(|t| {
            labels
                .get(&t.topology_key)
                .is_some_and(|v| s.anti_affinity_counts.get(&t.topology_key, v) > 0)
        })
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        if !satisfies_affinity(s, &node.labels) {
            return Status::new(
                Code::UnschedulableAndUnresolvable,
                ERR_REASON_AFFINITY_RULES_NOT_MATCH,
            );
        }
        if !satisfies_anti_affinity(s, &node.labels) {
            return Status::new(
                Code::Unschedulable,
                ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
            );
        }
        if s.existing_anti_affinity_counts
            .any_positive_on(&node.labels)
        {
            return Status::new(
                Code::Unschedulable,
                ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
            );
        }
        Status::success()
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
    topology_score: ScoreMap,
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
        let mut score = ScoreMap::default();
        let mut visit = |node: &NodeInfo| {
            if node.labels.is_empty() {
                return;
            }
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
        };
        if has_constraints {
            snap.nodes().iter().for_each(|n| visit(n));
        } else {
            snap.nodes_with_affinity_pods()
                .for_each(|idx| visit(snap.node(idx)));
        }
        if score.0.is_empty() {
            return Status::skip();
        }
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                topology_score: score,
            },
        );
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
        Ok(s.topology_score
            .0
            .iter()
            .filter_map(|(k, values)| node.labels.get(k).and_then(|v| values.get(v)))
            .sum())
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
