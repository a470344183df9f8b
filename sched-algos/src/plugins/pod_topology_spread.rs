//! PodTopologySpread (upstream podtopologyspread/: plugin.go, common.go, filtering.go,
//! scoring.go).
//!
//! Constraints: the pod's own `topologySpreadConstraints` of the extension point's
//! action (`DoNotSchedule` for Filter, `ScheduleAnyway` for Score), or, when it has
//! none, the default constraints (`defaultingType: System`: hostname maxSkew 3 and
//! zone maxSkew 5, both ScheduleAnyway; `List`: `defaultConstraints`) with the pod's
//! default selector. Upstream builds that selector from the Services, ReplicaSets,
//! ReplicationControllers and StatefulSets selecting the pod; the snapshot holds none
//! of those, so **the caller provides it** as
//! [`PodInfo::default_spread_selector`]; without it there are no default constraints.
//! `matchLabelKeys` adds `key = value` for each key the pod has; `minDomains` defaults
//! to 1, `nodeAffinityPolicy` to Honor, `nodeTaintsPolicy` to Ignore.
//!
//! Counting (`countPodsMatchSelector`): pods in the incoming pod's namespace, not
//! terminating, matching the selector; an empty selector counts nothing.
//!
//! PreFilter: for every node that has all the constraints' keys, for each constraint
//! whose inclusion policies admit the node (Honor affinity: the pod's nodeSelector and
//! required node affinity match; Honor taints: no untolerated NoSchedule/NoExecute
//! taint), the node's matching pods add to `domain -> count`. No constraints: Skip.
//! Filter, per constraint in order: no key on the node ->
//! `UnschedulableAndUnresolvable` "... (missing required label)"; then with `min` the
//! smallest domain count (0 when fewer domains than `minDomains`),
//! `count(domain) + selfMatch - min > maxSkew` -> `Unschedulable`.
//!
//! PreScore over the feasible nodes: nodes missing a key are ignored (only when the
//! constraints are the pod's own or not system defaults); each constraint's domains
//! are the feasible nodes' values (hostname: counted per node at Score), with weight
//! `ln(#domains + 2)` (hostname: `ln(#scored nodes + 2)`). Every node passing the
//! inclusion policies adds its matching pods to its domain if that domain is a
//! feasible one. Score: `round(sum_i(count_i * weight_i + maxSkew_i - 1))` over the
//! constraints whose key the node has. NormalizeScore: ignored nodes 0; otherwise
//! `100 * (max + min - s) / max` over the scored nodes (100 for all when `max == 0`).
//! NormalizeScore relies on the framework passing scores in the order of the feasible
//! nodes given to PreScore (as [`schedule_one`](crate::schedule_one) does).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bosun_api::labels::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1 as corev1;
use serde::Deserialize;

use crate::cache::{NO_DOMAIN, Snapshot, TopologyColumn, flags};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Plugin, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin,
};
use crate::memo::Contributions;
use crate::node_info::NodeInfo;
use crate::plugins::node_affinity::pod_matches_node;
use crate::pod_info::{PodInfo, tolerations_tolerate};
use crate::registry::ConfigError;
use crate::status::{Code, Status};

pub const NAME: &str = "PodTopologySpread";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
/// `v1.LabelHostname`.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// `v1.LabelTopologyZone`.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
/// Upstream's `ErrReasonConstraintsNotMatch`.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// Upstream's `ErrReasonNodeLabelNotMatch`.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// A bound on constraints per pod or in `defaultConstraints`.
pub const MAX_CONSTRAINTS: usize = 32;

/// One `defaultConstraints` entry (a `TopologySpreadConstraint` without selector).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub when_unsatisfiable: String,
}

/// `PodTopologySpreadArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodTopologySpreadArgs {
    pub default_constraints: Vec<DefaultConstraint>,
    /// `System` (default) or `List`.
    pub defaulting_type: String,
}

impl Default for PodTopologySpreadArgs {
    fn default() -> Self {
        PodTopologySpreadArgs {
            default_constraints: Vec::new(),
            defaulting_type: "System".to_owned(),
        }
    }
}

/// Upstream's `systemDefaultConstraints`.
pub fn system_default_constraints() -> Vec<DefaultConstraint> {
    vec![
        DefaultConstraint {
            max_skew: 3,
            topology_key: LABEL_HOSTNAME.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
        },
        DefaultConstraint {
            max_skew: 5,
            topology_key: LABEL_TOPOLOGY_ZONE.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
        },
    ]
}

/// A parsed constraint (upstream's `topologySpreadConstraint`).
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: LabelSelector,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// Upstream's `matchNodeInclusionPolicies`.
    fn includes(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if self.honor_node_affinity && !pod_matches_node(pod, node) {
            return false;
        }
        if self.honor_node_taints
            && node
                .taints
                .iter()
                .any(|t| t.effect.blocks_scheduling() && !tolerations_tolerate(&pod.tolerations, t))
        {
            return false;
        }
        true
    }
}

/// What a node's PreFilter counts depend on besides the node: the pod's namespace,
/// its constraints (selectors with `matchLabelKeys` applied) and what the inclusion
/// policies read (node selector, required node affinity, tolerations). Not its
/// resources: pods of different sizes share the counts.
fn shape_key(pod: &PodInfo, constraints: &[Constraint]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    pod.namespace.hash(&mut h);
    format!(
        "{constraints:?}{:?}{:?}{:?}",
        pod.node_selector, pod.required_affinity, pod.tolerations
    )
    .hash(&mut h);
    h.finish()
}

/// Upstream's `countPodsMatchSelector`.
fn count_matching(node: &NodeInfo, selector: &LabelSelector, ns: &str) -> i64 {
    if selector.is_everything() {
        return 0;
    }
    node.pods
        .iter()
        .filter(|p| !p.is_terminating() && p.namespace == ns && selector.matches(&p.labels))
        .count() as i64
}

fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.labels.contains_key(&c.topology_key))
}

#[derive(Debug)]
pub struct PodTopologySpread {
    defaults: Vec<DefaultConstraint>,
    system_defaulted: bool,
    /// PreFilter's per-domain counts, kept across cycles for the last pod shape.
    counts: std::sync::Mutex<Contributions<NodeCounts, DomainCounts>>,
}

/// One node's part of PreFilter's counts: per constraint, its domain and matching
/// pods, `None` when the node is not eligible (a key missing, or excluded by the
/// inclusion policies).
type NodeCounts = Vec<Option<(u32, i64)>>;

/// Per constraint and domain id: matching pods, and eligible nodes (a domain exists
/// while it has one).
#[derive(Debug, Default)]
struct DomainCounts {
    pods: Vec<Vec<i64>>,
    nodes: Vec<Vec<u32>>,
}

impl PodTopologySpread {
    pub fn new(args: &PodTopologySpreadArgs) -> Result<PodTopologySpread, ConfigError> {
        let invalid = |message: String| ConfigError::InvalidArgs {
            plugin: NAME.to_owned(),
            message,
        };
        let system_defaulted = match args.defaulting_type.as_str() {
            "System" => {
                if !args.default_constraints.is_empty() {
                    return Err(invalid(
                        "defaultConstraints: must be empty when defaultingType is System".into(),
                    ));
                }
                true
            }
            "List" => false,
            other => {
                return Err(invalid(format!(
                    "defaultingType: Unsupported value: {other:?}"
                )));
            }
        };
        if args.default_constraints.len() > MAX_CONSTRAINTS {
            return Err(invalid(format!(
                "defaultConstraints: more than {MAX_CONSTRAINTS}"
            )));
        }
        for c in &args.default_constraints {
            if c.max_skew <= 0 {
                return Err(invalid(format!(
                    "defaultConstraints.maxSkew: {} <= 0",
                    c.max_skew
                )));
            }
        }
        Ok(PodTopologySpread {
            defaults: if system_defaulted {
                system_default_constraints()
            } else {
                args.default_constraints.clone()
            },
            system_defaulted,
            counts: Default::default(),
        })
    }

    /// The pod's constraints for `action` (upstream's `getConstraints` /
    /// `initPreScoreState` head).
    fn constraints(&self, pod: &PodInfo, action: &str) -> Result<Vec<Constraint>, String> {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if !own.is_empty() {
            return own
                .iter()
                .filter(|c| c.when_unsatisfiable == action)
                .map(|c| parse_constraint(c, pod))
                .collect();
        }
        let Some(selector) = &pod.default_spread_selector else {
            return Ok(Vec::new());
        };
        if selector.is_everything() {
            return Ok(Vec::new());
        }
        Ok(self
            .defaults
            .iter()
            .filter(|c| c.when_unsatisfiable == action)
            .map(|c| Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector: selector.clone(),
                min_domains: 1,
                honor_node_affinity: true,
                honor_node_taints: false,
            })
            .collect())
    }
}

fn parse_constraint(
    c: &corev1::TopologySpreadConstraint,
    pod: &PodInfo,
) -> Result<Constraint, String> {
    let mut selector =
        LabelSelector::from_k8s(c.label_selector.as_ref()).map_err(|e| e.to_string())?;
    let keys = c.match_label_keys.as_deref().unwrap_or_default();
    let mut extra = Vec::new();
    for k in keys {
        if let Some(v) = pod.labels.get(k) {
            extra.push(
                Requirement::new(k, Operator::Equals, vec![v.clone()], "")
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    if !extra.is_empty() {
        extra.extend(selector.requirements().iter().cloned());
        selector = LabelSelector::from_requirements(extra);
    }
    let honor = |p: &Option<String>, default: bool| match p.as_deref() {
        Some("Honor") => true,
        Some("Ignore") => false,
        _ => default,
    };
    Ok(Constraint {
        max_skew: i64::from(c.max_skew),
        topology_key: c.topology_key.clone(),
        selector,
        min_domains: c.min_domains.map_or(1, i64::from),
        honor_node_affinity: honor(&c.node_affinity_policy, true),
        honor_node_taints: honor(&c.node_taints_policy, false),
    })
}

/// What Filter reads (upstream's `preFilterState`).
struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: the domains of its key.
    domains: Vec<Arc<TopologyColumn>>,
    /// Per constraint: matching pods per domain id.
    counts: Vec<Vec<i64>>,
    /// Per constraint: the global minimum used for skew (0 below `minDomains`).
    min_match: Vec<i64>,
    /// Per constraint: whether the incoming pod matches its own selector.
    self_match: Vec<i64>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints = match self.constraints(pod, "DoNotSchedule") {
            Ok(c) => c,
            Err(e) => {
                return (
                    None,
                    Status::error(format!(
                        "obtaining pod's hard topology spread constraints: {e}"
                    )),
                );
            }
        };
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let domains: Vec<Arc<TopologyColumn>> = constraints
            .iter()
            .map(|c| snap.topology(&c.topology_key))
            .collect();
        let cols = snap.columns();
        // Whether inclusion needs the node itself (else every node passes it).
        let needs_node: Vec<bool> = constraints
            .iter()
            .map(|c| {
                (c.honor_node_affinity
                    && (!pod.node_selector.is_empty() || pod.required_affinity.is_some()))
                    || c.honor_node_taints
            })
            .collect();
        let node_counts = |idx: u32| -> NodeCounts {
            let idx = idx as usize;
            if domains.iter().any(|d| d.domain_of[idx] == NO_DOMAIN) {
                return vec![None; constraints.len()];
            }
            let (n_pods, hard_taints) = (cols.n_pods[idx], cols.flags[idx] & flags::HARD_TAINTS);
            let node = snap.node(idx as u32);
            constraints
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if needs_node[i]
                        && (hard_taints != 0 || c.honor_node_affinity)
                        && !c.includes(pod, node)
                    {
                        return None;
                    }
                    let n = if n_pods == 0 {
                        0
                    } else {
                        count_matching(node, &c.selector, &pod.namespace)
                    };
                    Some((domains[i].domain_of[idx], n))
                })
                .collect()
        };
        let apply = |agg: &mut DomainCounts, c: &NodeCounts, sign: i64| {
            for (i, part) in c.iter().enumerate() {
                let Some((d, n)) = *part else { continue };
                let d = d as usize;
                if agg.pods[i].len() <= d {
                    agg.pods[i].resize(d + 1, 0);
                    agg.nodes[i].resize(d + 1, 0);
                }
                agg.pods[i][d] += sign * n;
                agg.nodes[i][d] = agg.nodes[i][d].wrapping_add_signed(sign as i32);
            }
        };
        let mut memo = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        memo.sync(
            shape_key(pod, &constraints),
            snap,
            || DomainCounts {
                pods: vec![Vec::new(); constraints.len()],
                nodes: vec![Vec::new(); constraints.len()],
            },
            node_counts,
            apply,
        );
        let agg = &memo.agg;
        let min_match = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let present = agg.pods[i]
                    .iter()
                    .zip(&agg.nodes[i])
                    .filter(|(_, n)| **n > 0)
                    .map(|(p, _)| *p);
                if (present.clone().count() as i64) < c.min_domains {
                    0
                } else {
                    present.min().unwrap_or(0)
                }
            })
            .collect();
        let counts = agg.pods.clone();
        drop(memo);
        let self_match = constraints
            .iter()
            .map(|c| i64::from(c.selector.matches(&pod.labels)))
            .collect();
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                constraints,
                domains,
                counts,
                min_match,
                self_match,
            },
        );
        (None, Status::success())
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        s.verdict(|i| match node.labels.get(&s.constraints[i].topology_key) {
            None => Some(NO_DOMAIN),
            Some(v) => s.domains[i].id(v),
        })
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
            |s: &PreFilterState, idx| s.verdict(|i| Some(s.domains[i].domain_of[idx as usize])),
        );
    }
}

impl PreFilterState {
    /// The Filter verdict for a node whose domain id per constraint `domain(i)` gives
    /// (`Some(NO_DOMAIN)`: no label; `None`: a value no node had at PreFilter).
    fn verdict(&self, domain: impl Fn(usize) -> Option<u32>) -> Status {
        for (i, c) in self.constraints.iter().enumerate() {
            let d = domain(i);
            if d == Some(NO_DOMAIN) {
                return Status::new(
                    Code::UnschedulableAndUnresolvable,
                    ERR_REASON_NODE_LABEL_NOT_MATCH,
                );
            }
            let matching = d
                .and_then(|d| self.counts[i].get(d as usize).copied())
                .unwrap_or(0);
            if matching + self.self_match[i] - self.min_match[i] > c.max_skew {
                return Status::new(Code::Unschedulable, ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

/// What Score and NormalizeScore read (upstream's `preScoreState`).
struct PreScoreState {
    constraints: Vec<Constraint>,
    /// Node indexes that miss a key (score 0).
    ignored: HashSet<u32>,
    /// `ignored` by position in the feasible list, for NormalizeScore.
    ignored_at: Vec<bool>,
    /// Per constraint: matching pods per domain of a feasible node (hostname: empty).
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[u32],
    ) -> Status {
        if snap.n_nodes() == 0 || feasible.is_empty() {
            return Status::skip();
        }
        let constraints = match self.constraints(pod, "ScheduleAnyway") {
            Ok(c) => c,
            Err(e) => return Status::error(format!("calculating preScoreState: {e}")),
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        let has_own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let require_all = has_own || !self.system_defaulted;
        let mut ignored = HashSet::new();
        let mut ignored_at = Vec::with_capacity(feasible.len());
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for &idx in feasible {
            let node = snap.node(idx);
            let ignore = require_all && !has_all_keys(node, &constraints);
            ignored_at.push(ignore);
            if ignore {
                ignored.insert(idx);
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key != LABEL_HOSTNAME {
                    let value = node
                        .labels
                        .get(&c.topology_key)
                        .cloned()
                        .unwrap_or_default();
                    counts[i].entry(value).or_insert(0);
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&counts)
            .map(|(c, m)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    feasible.len() - ignored.len()
                } else {
                    m.len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        for node in snap.nodes() {
            if require_all && !has_all_keys(node, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(pod, node) {
                    continue;
                }
                let value = node.labels.get(&c.topology_key).map_or("", String::as_str);
                if let Some(total) = counts[i].get_mut(value) {
                    *total += count_matching(node, &c.selector, &pod.namespace);
                }
            }
        }
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                constraints,
                ignored,
                ignored_at,
                counts,
                weights,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Err(Status::error(format!(
                "reading {PRE_SCORE_KEY:?} from cycleState: not found"
            )));
        };
        // `ignored` is by index; a NodeInfo alone carries only its name, so look the
        // name up among ignored nodes only when there are any.
        if !s.ignored.is_empty() && !has_all_keys(node, &s.constraints) {
            return Ok(0);
        }
        let mut score = 0.0_f64;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                count_matching(node, &c.selector, &pod.namespace)
            } else {
                s.counts[i].get(value).copied().unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize_scores(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Status::success();
        };
        if s.ignored_at.len() != scores.len() {
            return Status::error("normalize: scores do not match the feasible nodes of PreScore");
        }
        let (mut min, mut max) = (i64::MAX, 0_i64);
        for (&sc, &ig) in scores.iter().zip(&s.ignored_at) {
            if !ig {
                min = min.min(sc);
                max = max.max(sc);
            }
        }
        for (sc, &ig) in scores.iter_mut().zip(&s.ignored_at) {
            *sc = if ig {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *sc) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests;
