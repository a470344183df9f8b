//! DefaultPreemption (upstream defaultpreemption/default_preemption.go and
//! pkg/scheduler/framework/preemption/preemption.go).
//!
//! When no node fits, PostFilter looks for a node where evicting lower-priority pods
//! makes the pod fit, and nominates it:
//! 1. Eligibility (`PodEligibleToPreemptOthers`): `preemptionPolicy: Never` is refused;
//!    a pod already nominated to a node that still holds a lower-priority pod being
//!    deleted by preemption waits (unless that node is now
//!    `UnschedulableAndUnresolvable`).
//! 2. Candidates (`findCandidates`, `DryRunPreemption`): the nodes whose filter status
//!    was `Unschedulable` (not `...AndUnresolvable`), in node order, until
//!    `max(n * minCandidateNodesPercentage / 100, minCandidateNodesAbsolute)` (at most
//!    n) candidates are found. Bosun starts at offset 0 where upstream starts at a
//!    random offset (which only spreads load), and runs sequentially.
//! 3. Victims per node (`SelectVictimsOnNode`): remove every pod of lower priority; if
//!    the pod still does not fit, the node's status is the failing filter's. Otherwise
//!    reprieve pods from the most important (higher priority, then earlier start)
//!    down: add it back, keep it if the pod still fits. "Fits" re-runs the profile's
//!    PreFilter and Filter plugins on a copy of the snapshot with the node replaced,
//!    so inter-pod affinity and topology spread see the removals (upstream does this
//!    incrementally with `PreFilterExtensions`; re-running costs one PreFilter per
//!    step and gives the same answer).
//! 4. Choice (`pickOneNodeForPreemption`): fewest PDB violations, then the lowest
//!    highest-victim priority, then the smallest sum of `priority + 2^31`, then the
//!    fewest victims, then the latest start time of the earliest-started
//!    highest-priority victim (a pod without `status.startTime` counts as started
//!    "now", i.e. latest), then the first candidate.
//!
//! Not modelled: PodDisruptionBudgets (the snapshot has none: every victim is
//! non-violating), nominated pods of other preemptors in Filter, extenders.
//!
//! Messages are upstream's, prefixed `preemption: `; with no candidate the message is
//! the FitError of the dry run: `0/N nodes are available: <per-node reasons>, <k>
//! Preemption is not helpful for scheduling.` for the nodes not tried.

use std::sync::Arc;

use serde::Deserialize;

use crate::cache::Snapshot;
use crate::framework::{CycleState, Plugin, PostFilterPlugin, PostFilterResult};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::profile::Profile;
use crate::registry::ConfigError;
use crate::schedule::{Diagnosis, FitError};
use crate::status::{Code, Status};

pub const NAME: &str = "DefaultPreemption";
/// Upstream's message for a node with no lower-priority pod.
pub const NO_VICTIMS_MSG: &str = "No preemption victims found for incoming pod";
/// Upstream's status for the nodes preemption did not try.
pub const NOT_HELPFUL_MSG: &str = "Preemption is not helpful for scheduling";

/// `DefaultPreemptionArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DefaultPreemptionArgs {
    /// 0..=100, default 10.
    pub min_candidate_nodes_percentage: i64,
    /// >= 0, default 100.
    pub min_candidate_nodes_absolute: i64,
}

impl Default for DefaultPreemptionArgs {
    fn default() -> Self {
        DefaultPreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

#[derive(Debug)]
pub struct DefaultPreemption {
    args: DefaultPreemptionArgs,
}

/// A node and the pods to evict there, most important first.
struct Candidate {
    node_idx: u32,
    victims: Vec<Arc<PodInfo>>,
}

impl DefaultPreemption {
    pub fn new(args: &DefaultPreemptionArgs) -> Result<DefaultPreemption, ConfigError> {
        let a = args;
        let pct_ok = (0..=100).contains(&a.min_candidate_nodes_percentage);
        let abs_ok = a.min_candidate_nodes_absolute >= 0;
        let both_zero =
            a.min_candidate_nodes_percentage == 0 && a.min_candidate_nodes_absolute == 0;
        if !pct_ok || !abs_ok || both_zero {
            return Err(ConfigError::InvalidArgs {
                plugin: NAME.to_owned(),
                message: format!(
                    "minCandidateNodesPercentage {} must be in [0, 100], minCandidateNodesAbsolute {} >= 0, not both 0",
                    a.min_candidate_nodes_percentage, a.min_candidate_nodes_absolute
                ),
            });
        }
        Ok(DefaultPreemption { args: args.clone() })
    }

    /// Upstream's `calculateNumCandidates`.
    pub fn num_candidates(&self, n_nodes: usize) -> usize {
        let n = n_nodes as i64 * self.args.min_candidate_nodes_percentage / 100;
        n.max(self.args.min_candidate_nodes_absolute)
            .min(n_nodes as i64) as usize
    }

    fn preempt(
        &self,
        profile: &Profile,
        pod: &PodInfo,
        snap: &Snapshot,
        statuses: &[(u32, Status)],
    ) -> (Option<PostFilterResult>, Status) {
        if let Err(msg) = eligible(pod, snap, statuses) {
            return (None, Status::new(Code::Unschedulable, msg));
        }
        let potential: Vec<u32> = statuses
            .iter()
            .filter(|(_, s)| s.code() == Code::Unschedulable)
            .map(|(idx, _)| *idx)
            .collect();
        let clear = PostFilterResult {
            nominated_node_name: Some(String::new()),
            victims: Vec::new(),
        };
        let mut node_statuses = Vec::new();
        let mut candidates = Vec::new();
        if !potential.is_empty() {
            let want = self.num_candidates(potential.len());
            let mut what_if = snap.clone();
            for &idx in &potential {
                match select_victims(profile, pod, &mut what_if, idx) {
                    Ok(victims) => candidates.push(Candidate {
                        node_idx: idx,
                        victims,
                    }),
                    Err(s) => node_statuses.push((idx, s)),
                }
                if candidates.len() >= want {
                    break;
                }
            }
        }
        if candidates.is_empty() {
            node_statuses.sort_by_key(|(idx, _)| *idx);
            let err = FitError {
                pod: pod.key(),
                num_all_nodes: snap.n_nodes(),
                diagnosis: Diagnosis {
                    node_statuses,
                    absent_nodes_status: Some(Status::new(
                        Code::UnschedulableAndUnresolvable,
                        NOT_HELPFUL_MSG,
                    )),
                    ..Diagnosis::default()
                },
                post_filter_result: None,
            };
            return (
                Some(clear),
                Status::new(Code::Unschedulable, err.to_string()),
            );
        }
        let best = pick_one_node(&candidates);
        let c = &candidates[best];
        let result = PostFilterResult {
            nominated_node_name: Some(snap.node(c.node_idx).name.clone()),
            victims: c.victims.iter().map(|v| v.uid.clone()).collect(),
        };
        (Some(result), Status::success())
    }
}

/// Upstream's `PodEligibleToPreemptOthers`; `Err` carries the reason.
fn eligible(pod: &PodInfo, snap: &Snapshot, statuses: &[(u32, Status)]) -> Result<(), String> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or_default();
    let Some(idx) = (!nominated.is_empty())
        .then(|| snap.node_index(nominated))
        .flatten()
    else {
        return Ok(());
    };
    let unresolvable = statuses
        .iter()
        .any(|(i, s)| *i == idx && s.code() == Code::UnschedulableAndUnresolvable);
    if unresolvable {
        return Ok(());
    }
    let terminating = snap
        .node(idx)
        .pods
        .iter()
        .any(|p| p.priority < pod.priority && terminating_by_preemption(p));
    if terminating {
        return Err("not eligible due to a terminating pod on the nominated node.".into());
    }
    Ok(())
}

/// Upstream's `podTerminatingByPreemption`: deleting, with a `DisruptionTarget`
/// condition of reason `PreemptionByScheduler`.
fn terminating_by_preemption(p: &PodInfo) -> bool {
    p.is_terminating()
        && p.pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("PreemptionByScheduler")
            })
}

/// Start time for ordering; unset means "now", later than any recorded time.
fn start_ns(p: &PodInfo) -> i64 {
    p.start_time_ns().unwrap_or(i64::MAX)
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important_first(a: &Arc<PodInfo>, b: &Arc<PodInfo>) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_ns(a).cmp(&start_ns(b)))
}

/// Re-runs the profile's PreFilter and Filter plugins for `pod` on node `idx` of `snap`.
pub fn fits_on_node(profile: &Profile, pod: &PodInfo, snap: &Snapshot, idx: u32) -> Status {
    let mut state = CycleState::new();
    let node = snap.node(idx);
    for pl in &profile.pre_filter {
        let (result, s) = pl.pre_filter(&mut state, pod, snap);
        if s.is_skip() {
            state.skip_filter.push(pl.name());
            continue;
        }
        if !s.is_success() {
            return s.with_plugin(pl.name());
        }
        if let Some(r) = result
            && !r.node_names.contains(&node.name)
        {
            return Status::new(
                Code::UnschedulableAndUnresolvable,
                format!("node(s) didn't satisfy plugin(s) [{}]", pl.name()),
            )
            .with_plugin(pl.name());
        }
    }
    for pl in &profile.filter {
        if state.is_filter_skipped(pl.name()) {
            continue;
        }
        let s = pl.filter(&state, pod, node);
        if !s.is_success() {
            return s.with_plugin(pl.name());
        }
    }
    Status::success()
}

/// Upstream's `SelectVictimsOnNode` (no PDBs). `snap` is a private copy; node `idx` is
/// restored before returning.
fn select_victims(
    profile: &Profile,
    pod: &PodInfo,
    snap: &mut Snapshot,
    idx: u32,
) -> Result<Vec<Arc<PodInfo>>, Status> {
    let original = Arc::clone(&snap.nodes()[idx as usize]);
    let mut potential: Vec<Arc<PodInfo>> = original
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            NO_VICTIMS_MSG,
        ));
    }
    let mut info: NodeInfo = (*original).clone();
    for v in &potential {
        info.remove_pod(&v.uid).expect("victim is on the node");
    }
    let check = |info: &NodeInfo, snap: &mut Snapshot| {
        snap.replace_node(idx, Arc::new(info.clone()));
        fits_on_node(profile, pod, snap, idx)
    };
    let s = check(&info, snap);
    if !s.is_success() {
        snap.replace_node(idx, original);
        return Err(s);
    }
    potential.sort_by(more_important_first);
    let mut victims = Vec::new();
    for p in potential {
        info.add_pod(Arc::clone(&p));
        if !check(&info, snap).is_success() {
            info.remove_pod(&p.uid).expect("just added");
            victims.push(p);
        }
    }
    snap.replace_node(idx, original);
    if victims.is_empty() {
        return Err(Status::error(format!(
            "expected at least one victim pod on node {:?}",
            snap.node(idx).name
        )));
    }
    Ok(victims)
}

/// Upstream's `GetEarliestPodStartTime`: the earliest start among the victims of the
/// highest priority.
fn earliest_start_of_highest(victims: &[Arc<PodInfo>]) -> i64 {
    let top = victims.iter().map(|v| v.priority).max().unwrap_or(0);
    victims
        .iter()
        .filter(|v| v.priority == top)
        .map(|v| start_ns(v))
        .min()
        .unwrap_or(i64::MIN)
}

/// Upstream's `pickOneNodeForPreemption` with its default score functions; the index
/// into `candidates`.
fn pick_one_node(candidates: &[Candidate]) -> usize {
    type ScoreFn = fn(&Candidate) -> i64;
    let score_fns: [ScoreFn; 5] = [
        // Fewest PDB violations: none are modelled.
        |_| 0,
        |c| -i64::from(c.victims[0].priority),
        |c| {
            -c.victims
                .iter()
                .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
                .sum::<i64>()
        },
        |c| -(c.victims.len() as i64),
        |c| earliest_start_of_highest(&c.victims),
    ];
    let mut all: Vec<usize> = (0..candidates.len()).collect();
    for f in score_fns {
        let best = all
            .iter()
            .map(|&i| f(&candidates[i]))
            .max()
            .unwrap_or(i64::MIN);
        all.retain(|&i| f(&candidates[i]) == best);
        if all.len() == 1 {
            break;
        }
    }
    all[0]
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PostFilterPlugin for DefaultPreemption {
    /// Without the profile preemption cannot re-run filters: an `Error`.
    fn post_filter(
        &self,
        _: &CycleState,
        _: &PodInfo,
        _: &Snapshot,
        _: &[(u32, Status)],
    ) -> (Option<PostFilterResult>, Status) {
        (
            None,
            Status::error("DefaultPreemption runs through post_filter_in_profile"),
        )
    }

    fn post_filter_in_profile(
        &self,
        profile: &Profile,
        _state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        statuses: &[(u32, Status)],
    ) -> (Option<PostFilterResult>, Status) {
        let (result, s) = self.preempt(profile, pod, snap, statuses);
        let msg = s.message();
        if msg.is_empty() {
            return (result, s);
        }
        (result, Status::new(s.code(), format!("preemption: {msg}")))
    }
}

#[cfg(test)]
mod tests;
