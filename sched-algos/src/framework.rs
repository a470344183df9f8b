//! The extension points: one trait per point, as in upstream's
//! pkg/scheduler/framework/interface.go, plus the per-cycle state they share.
//!
//! Contracts common to every trait:
//! - Plugins are pure: they read the pod, the snapshot and the cycle state, and return
//!   a verdict. They do no IO and read no clock (binding is returned as a decision).
//! - A plugin must be `Send + Sync`: Filter and Score run on rayon workers, concurrently
//!   for different nodes of the same cycle.
//! - Returning a [`Code::Error`](crate::Code::Error) status aborts the cycle with that error.
//!
//! Filter and Score have batch forms over a slice of node indexes, with per-node
//! defaults; a plugin overrides the batch form to run a tight loop over
//! [`NodeColumns`](crate::cache::NodeColumns) instead of one virtual call per node.

use std::any::Any;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::cache::Snapshot;
use crate::node_info::NodeInfo;
use crate::pod_info::{PodInfo, QueuedPodInfo};
use crate::status::Status;

/// The highest score a Score plugin may give after normalisation (upstream's
/// `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest (upstream's `MinNodeScore`).
pub const MIN_NODE_SCORE: i64 = 0;

/// Data plugins pass from one extension point to the next within one cycle (upstream's
/// `CycleState`), keyed by a static string, at most [`MAX_CYCLE_STATE_ENTRIES`] entries.
#[derive(Default)]
pub struct CycleState {
    entries: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
    /// Plugins whose PreFilter returned Skip: their Filter is not run.
    pub(crate) skip_filter: Vec<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not run.
    pub(crate) skip_score: Vec<&'static str>,
    /// The pods held in Permit, when the caller keeps any (the scheduler service).
    waiting_pods: Option<std::sync::Arc<crate::permit::WaitingPods>>,
}

/// A bound on [`CycleState`]: one entry per plugin and extension point is far below it.
pub const MAX_CYCLE_STATE_ENTRIES: usize = 64;

impl CycleState {
    pub fn new() -> CycleState {
        CycleState::default()
    }

    /// Stores `value` under `key`, replacing any previous value. Panics past
    /// [`MAX_CYCLE_STATE_ENTRIES`] distinct keys (a plugin bug).
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            e.1 = Box::new(value);
            return;
        }
        assert!(
            self.entries.len() < MAX_CYCLE_STATE_ENTRIES,
            "cycle state full"
        );
        self.entries.push((key, Box::new(value)));
    }

    /// The value under `key` if present and of type `T`.
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref())
    }

    pub fn is_filter_skipped(&self, plugin: &str) -> bool {
        self.skip_filter.contains(&plugin)
    }

    pub fn is_score_skipped(&self, plugin: &str) -> bool {
        self.skip_score.contains(&plugin)
    }

    /// The pods held in Permit (upstream's framework handle `GetWaitingPod`,
    /// `IterateOverWaitingPods`), when the caller runs a binding cycle that can hold
    /// them; None in simulations, which bind at once.
    pub fn waiting_pods(&self) -> Option<&std::sync::Arc<crate::permit::WaitingPods>> {
        self.waiting_pods.as_ref()
    }

    /// Gives this cycle's plugins the waiting pods.
    pub fn set_waiting_pods(&mut self, pods: std::sync::Arc<crate::permit::WaitingPods>) {
        self.waiting_pods = Some(pods);
    }
}

/// What every plugin has: a unique name (the registry key).
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Whether the plugin's verdicts are *node-local*, which lets the framework reuse
    /// them across cycles (see [`crate::memo`]). A node-local plugin promises that:
    /// - its Filter status and raw Score for a node depend only on the pod's
    ///   scheduling fields (those [`PodInfo::signature`] covers), on that node's
    ///   [`NodeInfo`], on the set of node names and on which images the nodes report;
    ///   never on the other nodes' pods;
    /// - its PreFilter and PreScore state depends only on the pod and those same
    ///   facts, and PreScore does not read its `feasible` argument.
    ///
    /// The default, `false`, is always safe: the framework then evaluates the plugin
    /// on every node every cycle.
    fn node_local(&self) -> bool {
        false
    }
}

/// How a Score plugin's NormalizeScore rewrites raw scores, so the framework can
/// keep normalised scores up to date when only a few nodes changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    /// `normalize_scores` leaves scores as they are.
    Identity,
    /// `normalize_scores` is [`default_normalize_score`] with `MAX_NODE_SCORE`.
    DefaultMax { reverse: bool },
    /// Anything else: the framework re-runs `normalize_scores` over every node.
    Custom,
}

/// Runs before a pod enters the active queue. Non-success parks the pod (`Pending` or
/// `UnschedulableAndUnresolvable`) until an event re-checks it.
pub trait PreEnqueuePlugin: Plugin {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status;
}

/// Orders the active queue; exactly one per profile.
pub trait QueueSortPlugin: Plugin {
    /// Whether `a` should be scheduled before `b`; a strict weak order.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;

    fn compare(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> Ordering {
        if self.less(a, b) {
            Ordering::Less
        } else if self.less(b, a) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }
}

/// The nodes a PreFilter plugin restricts the pod to (upstream's `PreFilterResult`);
/// sorted, deduplicated node names. Results of several plugins intersect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Vec<String>,
}

/// Runs once per cycle before Filter. May restrict the candidate nodes, write cycle
/// state, return `Skip` (its Filter is then not run) or reject the pod outright.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);
}

/// Decides whether the pod can run on one node. Anything but `Success` rejects the
/// node; the first rejecting plugin's status is the node's status.
pub trait FilterPlugin: Plugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;

    /// Filters `nodes` (indexes into `snapshot`), writing a status into `out[i]` for
    /// each rejected `nodes[i]` whose `out[i]` is still `None`; entries already `Some`
    /// were rejected by an earlier plugin and must be left alone.
    /// `nodes.len() == out.len()`.
    fn filter_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        debug_assert_eq!(nodes.len(), out.len());
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            if slot.is_none() {
                let s = self.filter(state, pod, snapshot.node(idx));
                if !s.is_success() {
                    *slot = Some(s.with_plugin(self.name()));
                }
            }
        }
    }
}

/// What a PostFilter plugin (preemption) proposes: a node to nominate (`Some("")`
/// clears a previous nomination, as upstream's `NewPostFilterResultWithNominatedNode("")`)
/// and the pods to evict so the pod fits there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostFilterResult {
    pub nominated_node_name: Option<String>,
    /// UIDs of the victims on the nominated node, most important first; the caller
    /// deletes them (the algorithms do no IO).
    pub victims: Vec<String>,
}

/// Runs when no node fits, to make one fit (DefaultPreemption). `statuses` holds the
/// filter status of every rejected node by index. The status message is appended to
/// the `FitError` (`preemption: ...`).
pub trait PostFilterPlugin: Plugin {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &[(u32, Status)],
    ) -> (Option<PostFilterResult>, Status);

    /// The form the framework calls: with the profile, so that a plugin can re-run the
    /// profile's PreFilter and Filter plugins (preemption's what-if evaluation). The
    /// default ignores the profile.
    fn post_filter_in_profile(
        &self,
        _profile: &crate::profile::Profile,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &[(u32, Status)],
    ) -> (Option<PostFilterResult>, Status) {
        self.post_filter(state, pod, snapshot, statuses)
    }
}

/// Runs once per cycle before Score, over the feasible nodes; `Skip` means its Score
/// is not run.
pub trait PreScorePlugin: Plugin {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        feasible: &[u32],
    ) -> Status;
}

/// Ranks a feasible node. Raw scores may have any range if `normalize_scores` maps them
/// into `MIN_NODE_SCORE..=MAX_NODE_SCORE`; otherwise they must already be in it (the
/// framework checks and fails the cycle otherwise).
pub trait ScorePlugin: Plugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    /// Scores `nodes[i]` into `out[i]`. `nodes.len() == out.len()`.
    fn score_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        debug_assert_eq!(nodes.len(), out.len());
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            *slot = self.score(state, pod, snapshot.node(idx))?;
        }
        Ok(())
    }

    /// Rewrites all of this plugin's scores for the cycle at once (upstream's
    /// `ScoreExtensions().NormalizeScore`). The default leaves them as they are.
    fn normalize_scores(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }

    /// What `normalize_scores` does; must agree with it. The default, `Custom`, is
    /// always safe; a plugin that keeps the default `normalize_scores` may say
    /// `Identity`.
    fn normalization(&self) -> Normalization {
        Normalization::Custom
    }
}

/// Claims (and on failure releases) resources for the chosen node before binding.
/// `node` is the chosen node as the cycle's snapshot holds it (upstream's plugins read
/// it from the snapshot lister). `unreserve` must be idempotent: it runs when any later
/// step fails.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str);
}

/// Approves, rejects or delays binding. `Wait` comes with a timeout in milliseconds,
/// bounded by [`MAX_PERMIT_WAIT_MS`].
pub trait PermitPlugin: Plugin {
    fn permit(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> (Status, u64);
}

/// Upstream's `maxTimeout` for Permit waits: 15 minutes.
pub const MAX_PERMIT_WAIT_MS: u64 = 15 * 60 * 1000;

/// Prepares binding (volumes, claims). Returned as decisions; the caller does the IO.
pub trait PreBindPlugin: Plugin {
    fn pre_bind(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> Status;
}

/// The binding the caller should create (upstream's `v1.Binding` POST), or `Skip` to let
/// the next Bind plugin decide.
pub trait BindPlugin: Plugin {
    fn bind(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        node_name: &str,
    ) -> Result<k8s_openapi::api::core::v1::Binding, Status>;
}

/// Informational, after a successful bind.
pub trait PostBindPlugin: Plugin {
    fn post_bind(&self, state: &CycleState, pod: &PodInfo, node_name: &str);
}

/// The extension points one plugin instance serves; what a registry factory returns.
#[derive(Clone, Default)]
pub struct Extensions {
    pub name: &'static str,
    pub pre_enqueue: Option<Arc<dyn PreEnqueuePlugin>>,
    pub queue_sort: Option<Arc<dyn QueueSortPlugin>>,
    pub pre_filter: Option<Arc<dyn PreFilterPlugin>>,
    pub filter: Option<Arc<dyn FilterPlugin>>,
    pub post_filter: Option<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Option<Arc<dyn PreScorePlugin>>,
    pub score: Option<Arc<dyn ScorePlugin>>,
    pub reserve: Option<Arc<dyn ReservePlugin>>,
    pub permit: Option<Arc<dyn PermitPlugin>>,
    pub pre_bind: Option<Arc<dyn PreBindPlugin>>,
    pub bind: Option<Arc<dyn BindPlugin>>,
    pub post_bind: Option<Arc<dyn PostBindPlugin>>,
}

/// Builder methods: `Extensions::of(&p).filter(&p).score(&p)`.
impl Extensions {
    pub fn of<T: Plugin>(plugin: &T) -> Extensions {
        Extensions {
            name: plugin.name(),
            ..Extensions::default()
        }
    }

    pub fn pre_enqueue<T: PreEnqueuePlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.pre_enqueue = Some(p.clone());
        self
    }

    pub fn queue_sort<T: QueueSortPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.queue_sort = Some(p.clone());
        self
    }

    pub fn pre_filter<T: PreFilterPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.pre_filter = Some(p.clone());
        self
    }

    pub fn filter<T: FilterPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.filter = Some(p.clone());
        self
    }

    pub fn post_filter<T: PostFilterPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.post_filter = Some(p.clone());
        self
    }

    pub fn pre_score<T: PreScorePlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.pre_score = Some(p.clone());
        self
    }

    pub fn score<T: ScorePlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.score = Some(p.clone());
        self
    }

    pub fn reserve<T: ReservePlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.reserve = Some(p.clone());
        self
    }

    pub fn permit<T: PermitPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.permit = Some(p.clone());
        self
    }

    pub fn pre_bind<T: PreBindPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.pre_bind = Some(p.clone());
        self
    }

    pub fn bind<T: BindPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.bind = Some(p.clone());
        self
    }

    pub fn post_bind<T: PostBindPlugin + 'static>(mut self, p: &Arc<T>) -> Self {
        self.post_bind = Some(p.clone());
        self
    }

    /// Whether this plugin serves the named extension point (config spelling,
    /// `"filter"`, `"score"`, ...). Unknown names are `false`.
    pub fn serves(&self, point: &str) -> bool {
        match point {
            "preEnqueue" => self.pre_enqueue.is_some(),
            "queueSort" => self.queue_sort.is_some(),
            "preFilter" => self.pre_filter.is_some(),
            "filter" => self.filter.is_some(),
            "postFilter" => self.post_filter.is_some(),
            "preScore" => self.pre_score.is_some(),
            "score" => self.score.is_some(),
            "reserve" => self.reserve.is_some(),
            "permit" => self.permit.is_some(),
            "preBind" => self.pre_bind.is_some(),
            "bind" => self.bind.is_some(),
            "postBind" => self.post_bind.is_some(),
            _ => false,
        }
    }
}

/// Upstream's `helper.DefaultNormalizeScore`: scales scores so the highest becomes
/// `max_priority` (integer division), and with `reverse` flips them; all-zero scores
/// become `max_priority` when reversed and stay 0 otherwise.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max_count = scores.iter().copied().max().unwrap_or(0).max(0);
    for s in scores.iter_mut() {
        *s = default_normalize_one(max_priority, reverse, max_count, *s);
    }
}

/// One score of [`default_normalize_score`], given the highest raw score clamped at 0.
pub fn default_normalize_one(max_priority: i64, reverse: bool, max_count: i64, score: i64) -> i64 {
    if max_count == 0 {
        return if reverse { max_priority } else { score };
    }
    let v = max_priority * score / max_count;
    if reverse { max_priority - v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's normalize_score_test.go cases.
    #[test]
    fn default_normalize_score_golden() {
        let check = |reverse: bool, input: &[i64], want: &[i64]| {
            let mut s = input.to_vec();
            default_normalize_score(MAX_NODE_SCORE, reverse, &mut s);
            assert_eq!(s, want, "reverse={reverse} input={input:?}");
        };
        check(false, &[10, 20, 30, 40, 100], &[10, 20, 30, 40, 100]);
        check(false, &[2, 4, 6, 8, 10], &[20, 40, 60, 80, 100]);
        check(true, &[2, 4, 6, 8, 10], &[80, 60, 40, 20, 0]);
        check(false, &[0, 0, 0], &[0, 0, 0]);
        check(true, &[0, 0, 0], &[100, 100, 100]);
        // 100*1/3 = 33 (integer division).
        check(false, &[1, 2, 3], &[33, 66, 100]);
    }

    #[test]
    fn cycle_state_round_trip() {
        let mut s = CycleState::new();
        s.write("a", 5_i64);
        s.write("a", 6_i64);
        assert_eq!(s.read::<i64>("a"), Some(&6));
        assert_eq!(s.read::<u8>("a"), None);
        assert_eq!(s.read::<i64>("b"), None);
    }
}
