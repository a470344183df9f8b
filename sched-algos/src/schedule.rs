//! One scheduling cycle for one pod: [`schedule_one`] (upstream's `schedulePod`).
//!
//! PreFilter -> Filter over the candidate nodes in parallel (rayon, in chunks of
//! [`FILTER_CHUNK_NODES`], each chunk run plugin by plugin over its nodes) -> PreScore
//! -> Score with NormalizeScore and weights -> the highest total, ties broken by
//! reservoir sampling with the context's seeded RNG. Per-cycle scratch (node order,
//! statuses, score columns) lives in the context's bump arena, reset each cycle.
//! Pure: no IO, no clock; the same snapshot, pod, profile and seed give the same node.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;
use k8s_openapi::api::core::v1 as corev1;
use rayon::prelude::*;

use crate::cache::Snapshot;
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, MIN_NODE_SCORE, PostFilterResult,
};
use crate::memo::{MemoStats, MemoStore};
use crate::pod_info::PodInfo;
use crate::profile::{NodeSampling, Profile};
use crate::status::{Code, Status};

/// Nodes per rayon task in Filter and Score.
pub const FILTER_CHUNK_NODES: usize = 256;
/// Upstream's `minFeasibleNodesToFind`.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// Upstream's `NoNodeAvailableMsg`.
pub const NO_NODE_AVAILABLE_MSG: &str = "nodes are available";

/// The source of randomness for tie-breaking; injectable so runs replay.
pub trait TieBreakRng: Send {
    /// A uniform integer in `0..n`. `n >= 1`.
    fn below(&mut self, n: u64) -> u64;
}

/// SplitMix64: tiny, fast, and good enough to break ties uniformly.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TieBreakRng for SplitMix64 {
    fn below(&mut self, n: u64) -> u64 {
        assert!(n >= 1, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// What persists between cycles of one scheduler: the RNG, where sampling resumes,
/// and the scratch arena.
pub struct CycleContext {
    rng: Box<dyn TieBreakRng>,
    next_start_node_idx: usize,
    arena: Bump,
    memo: MemoStore,
}

impl CycleContext {
    pub fn new(rng: impl TieBreakRng + 'static) -> CycleContext {
        CycleContext {
            rng: Box::new(rng),
            next_start_node_idx: 0,
            arena: Bump::new(),
            memo: MemoStore::default(),
        }
    }

    /// Whether cycles may go through the [verdict memo](crate::memo) (the default).
    /// Off, every cycle evaluates every node; the decisions are the same.
    pub fn set_memo(&mut self, enabled: bool) {
        self.memo.set_enabled(enabled);
    }

    /// The memo's counters.
    pub fn memo_stats(&self) -> MemoStats {
        self.memo.stats()
    }

    /// A context with a [`SplitMix64`] seeded by `seed`.
    pub fn seeded(seed: u64) -> CycleContext {
        CycleContext::new(SplitMix64::new(seed))
    }
}

/// Where the pod should go.
pub struct Decision {
    pub node_idx: u32,
    pub node_name: String,
    /// Nodes whose filters ran (upstream's `EvaluatedNodes`).
    pub evaluated_nodes: usize,
    /// Nodes that passed every filter (upstream's `FeasibleNodes`).
    pub feasible_nodes: usize,
    /// The cycle's state, for Reserve, Permit, PreBind and Bind.
    pub state: CycleState,
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("node_name", &self.node_name)
            .field("evaluated_nodes", &self.evaluated_nodes)
            .field("feasible_nodes", &self.feasible_nodes)
            .finish_non_exhaustive()
    }
}

/// Why no node fits (upstream's `Diagnosis`).
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// The filter status of every rejected node, by node index, in node order.
    pub node_statuses: Vec<(u32, Status)>,
    /// The status of nodes not in `node_statuses` (excluded by PreFilter).
    pub absent_nodes_status: Option<Status>,
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
}

/// No node fits the pod. Renders as upstream's message, e.g. `0/5 nodes are
/// available: 3 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.`
#[derive(Clone, Debug)]
pub struct FitError {
    pub pod: String,
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
    /// What PostFilter (preemption) proposed, if anything.
    pub post_filter_result: Option<PostFilterResult>,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.diagnosis;
        write!(f, "0/{} {NO_NODE_AVAILABLE_MSG}:", self.num_all_nodes)?;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, s) in &d.node_statuses {
                for r in s.reasons() {
                    *counts.entry(r).or_default() += 1;
                }
            }
            let absent = self.num_all_nodes.saturating_sub(d.node_statuses.len());
            if let Some(s) = d.absent_nodes_status.as_ref().filter(|_| absent > 0) {
                for r in s.reasons() {
                    *counts.entry(r).or_default() += absent;
                }
            }
            // Upstream sorts the formatted "count reason" strings.
            let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            lines.sort();
            if !lines.is_empty() {
                write!(f, " {}.", lines.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}.", d.post_filter_msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Why a cycle produced no decision.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Upstream's `ErrNoNodesAvailable`.
    #[error("no nodes available to schedule pods")]
    NoNodes,
    /// No node fits; the pod goes to the unschedulable queue.
    #[error("{0}")]
    Fit(Box<FitError>),
    /// A plugin failed (`Code::Error` or an unexpected code); the pod backs off.
    #[error("running {point} plugin {}: {}", .status.plugin(), .status.message())]
    Plugin { point: &'static str, status: Status },
}

/// Upstream's `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(sampling: NodeSampling, n_nodes: usize) -> usize {
    let NodeSampling::Percentage(pct) = sampling else {
        return n_nodes;
    };
    if n_nodes < MIN_FEASIBLE_NODES_TO_FIND || pct >= 100 {
        return n_nodes;
    }
    let mut pct = pct as usize;
    if pct == 0 {
        pct = 50_usize
            .saturating_sub(n_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    (n_nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Runs one cycle. See the module docs.
pub fn schedule_one(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &PodInfo,
    ctx: &mut CycleContext,
) -> Result<Decision, ScheduleError> {
    ctx.arena.reset();
    let scored = evaluate(
        profile,
        snapshot,
        pod,
        &mut ctx.next_start_node_idx,
        &ctx.arena,
        Some((&mut ctx.memo, ctx.rng.as_mut())),
    )?;
    if let Some((node_idx, feasible_nodes)) = scored.decided {
        return Ok(Decision {
            node_idx,
            node_name: snapshot.node(node_idx).name.clone(),
            evaluated_nodes: scored.evaluated_nodes,
            feasible_nodes,
            state: scored.state,
        });
    }
    let node_idx = match &scored.totals {
        // Upstream skips scoring when only one node fits.
        None => scored.feasible[0],
        Some(totals) => scored.feasible[select_host(totals, ctx.rng.as_mut())],
    };
    Ok(Decision {
        node_idx,
        node_name: snapshot.node(node_idx).name.clone(),
        evaluated_nodes: scored.evaluated_nodes,
        feasible_nodes: scored.feasible.len(),
        state: scored.state,
    })
}

/// One cycle up to, not including, selecting the node: the feasible nodes and their
/// weighted total scores. What batch placers rank nodes by.
#[derive(Default)]
pub struct ScoredNodes {
    /// Node indexes that passed every filter, in filter order.
    pub feasible: Vec<u32>,
    /// The total score of each feasible node, in the same order, each in
    /// `0..=`[`Profile::max_total_score`]; all 0 when only one node is feasible
    /// (upstream then skips scoring).
    pub totals: Vec<i64>,
    /// Nodes whose filters ran (upstream's `EvaluatedNodes`).
    pub evaluated_nodes: usize,
    /// The cycle's state after PreScore.
    pub state: CycleState,
}

/// Runs PreFilter, Filter, PreScore and Score for `pod` as [`schedule_one`] does (node
/// sampling and PostFilter included) and returns the ranking instead of a node.
pub fn score_nodes(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &PodInfo,
    ctx: &mut CycleContext,
) -> Result<ScoredNodes, ScheduleError> {
    ctx.arena.reset();
    // Every feasible node's total is wanted: no memo.
    let scored = evaluate(
        profile,
        snapshot,
        pod,
        &mut ctx.next_start_node_idx,
        &ctx.arena,
        None,
    )?;
    let totals = match scored.totals {
        Some(t) => t.to_vec(),
        None => vec![0; scored.feasible.len()],
    };
    Ok(ScoredNodes {
        feasible: scored.feasible,
        totals,
        evaluated_nodes: scored.evaluated_nodes,
        state: scored.state,
    })
}

/// What [`evaluate`] found: `totals` is `None` when scoring was skipped.
struct Evaluated<'a> {
    /// The node and the number of feasible nodes when the verdict memo decided (then
    /// `feasible` and `totals` are empty).
    decided: Option<(u32, usize)>,
    feasible: Vec<u32>,
    totals: Option<BumpVec<'a, i64>>,
    evaluated_nodes: usize,
    state: CycleState,
}

/// PreFilter, Filter (with PostFilter when nothing fits), PreScore and Score.
fn evaluate<'a>(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &PodInfo,
    next_start_node_idx: &mut usize,
    arena: &'a Bump,
    memo: Option<(&mut MemoStore, &mut dyn TieBreakRng)>,
) -> Result<Evaluated<'a>, ScheduleError> {
    let n_all = snapshot.n_nodes();
    if n_all == 0 {
        return Err(ScheduleError::NoNodes);
    }
    let mut state = CycleState::new();
    let mut diagnosis = Diagnosis::default();
    let fit_error = |diagnosis| FitError {
        pod: pod.key(),
        num_all_nodes: n_all,
        diagnosis,
        post_filter_result: None,
    };
    let restricted =
        match run_pre_filter(profile, &mut state, pod, snapshot, arena, &mut diagnosis)? {
            Some(c) => c,
            None => {
                return Err(post_filter(
                    profile,
                    &state,
                    pod,
                    snapshot,
                    fit_error(diagnosis),
                ));
            }
        };
    let n_candidates = restricted.as_ref().map_or(n_all, |c| c.len());
    let to_find = num_feasible_nodes_to_find(profile.node_sampling, n_candidates);
    if let Some((store, rng)) = memo
        && to_find >= n_all
        && restricted.is_none()
        && let Some(decided) = crate::memo::run(store, profile, &mut state, pod, snapshot, rng)?
    {
        return Ok(Evaluated {
            decided: Some(decided),
            feasible: Vec::new(),
            totals: None,
            evaluated_nodes: n_all,
            state,
        });
    }
    let candidates = restricted.unwrap_or_else(|| {
        let mut all = BumpVec::with_capacity_in(n_all, arena);
        all.extend(0..n_all as u32);
        all
    });
    let start = if to_find < candidates.len() {
        *next_start_node_idx % candidates.len().max(1)
    } else {
        0
    };
    let filtered = run_filters(
        profile,
        &state,
        pod,
        snapshot,
        &candidates,
        start,
        to_find,
        arena,
    )?;
    if to_find < candidates.len() {
        *next_start_node_idx = (start + filtered.processed) % n_all;
    }
    if filtered.feasible.is_empty() {
        diagnosis.node_statuses = filtered.rejected;
        diagnosis
            .unschedulable_plugins
            .extend(diagnosis.node_statuses.iter().map(|(_, s)| s.plugin()));
        return Err(post_filter(
            profile,
            &state,
            pod,
            snapshot,
            fit_error(diagnosis),
        ));
    }
    let totals = if filtered.feasible.len() == 1 {
        None
    } else {
        let feasible = &filtered.feasible[..];
        run_pre_score(profile, &mut state, pod, snapshot, feasible)?;
        Some(run_score(profile, &state, pod, snapshot, feasible, arena)?)
    };
    Ok(Evaluated {
        decided: None,
        feasible: filtered.feasible,
        totals,
        evaluated_nodes: filtered.processed,
        state,
    })
}

/// Runs PreFilter; `Some(None)`: every node is a candidate; `Some(Some(list))`: the
/// candidate node indexes PreFilter results allow; `None`: the pod is rejected (the
/// diagnosis then says why).
fn run_pre_filter<'a>(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    arena: &'a Bump,
    diagnosis: &mut Diagnosis,
) -> Result<Option<Option<BumpVec<'a, u32>>>, ScheduleError> {
    let mut restricted: Option<Vec<String>> = None;
    let mut with_nodes: BTreeSet<&'static str> = BTreeSet::new();
    for pl in &profile.pre_filter {
        let (result, s) = pl.pre_filter(state, pod, snap);
        let s = s.with_plugin(pl.name());
        if s.is_skip() {
            state.skip_filter.push(pl.name());
            continue;
        }
        if s.is_rejected() {
            diagnosis.unschedulable_plugins.insert(pl.name());
            diagnosis.pre_filter_msg = s.message();
            diagnosis.absent_nodes_status = Some(s);
            return Ok(None);
        }
        if !s.is_success() {
            return Err(ScheduleError::Plugin {
                point: "PreFilter",
                status: s,
            });
        }
        let Some(r) = result else { continue };
        with_nodes.insert(pl.name());
        restricted = Some(match restricted {
            None => r.node_names,
            Some(prev) => prev
                .into_iter()
                .filter(|n| r.node_names.contains(n))
                .collect(),
        });
        if restricted.as_ref().is_some_and(Vec::is_empty) {
            let names: Vec<&str> = with_nodes.iter().copied().collect();
            let msg = match names.as_slice() {
                [one] => format!("node(s) didn't satisfy plugin {one}"),
                _ => format!(
                    "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                    names.join(" ")
                ),
            };
            diagnosis.unschedulable_plugins.extend(&with_nodes);
            let s = Status::new(Code::UnschedulableAndUnresolvable, msg);
            diagnosis.pre_filter_msg = s.message();
            diagnosis.absent_nodes_status = Some(s);
            return Ok(None);
        }
    }
    let mut candidates = BumpVec::new_in(arena);
    match restricted {
        None => return Ok(Some(None)),
        Some(names) => {
            candidates.extend(names.iter().filter_map(|n| snap.node_index(n)));
            candidates.sort_unstable();
            let plugins: Vec<&str> = with_nodes.iter().copied().collect();
            diagnosis.absent_nodes_status = Some(Status::new(
                Code::UnschedulableAndUnresolvable,
                format!("node(s) didn't satisfy plugin(s) [{}]", plugins.join(" ")),
            ));
            diagnosis.unschedulable_plugins.extend(&with_nodes);
        }
    }
    Ok(Some(Some(candidates)))
}

struct Filtered {
    feasible: Vec<u32>,
    /// Filled only when nothing is feasible (the diagnosis needs it then).
    rejected: Vec<(u32, Status)>,
    processed: usize,
}

/// Filters candidates starting at `start` (wrapping) until `to_find` feasible nodes are
/// found or all were tried.
#[allow(clippy::too_many_arguments)]
fn run_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    candidates: &[u32],
    start: usize,
    to_find: usize,
    arena: &Bump,
) -> Result<Filtered, ScheduleError> {
    let n = candidates.len();
    let mut order = BumpVec::with_capacity_in(n, arena);
    order.extend((0..n).map(|i| candidates[(start + i) % n]));
    let mut statuses: BumpVec<Option<Status>> = BumpVec::with_capacity_in(n, arena);
    statuses.resize(n, None);
    let plugins: Vec<&dyn FilterPlugin> = profile
        .filter
        .iter()
        .filter(|p| !state.is_filter_skipped(p.name()))
        .map(|p| &**p)
        .collect();
    let mut feasible = Vec::with_capacity(to_find.min(n));
    let mut done = 0;
    while done < n && feasible.len() < to_find {
        // All nodes in one round when scoring all; otherwise about what is still needed.
        let round = if to_find >= n {
            n
        } else {
            (to_find - feasible.len()).max(FILTER_CHUNK_NODES)
        };
        let end = (done + round).min(n);
        let (nodes, out) = (&order[done..end], &mut statuses[done..end]);
        let filter_chunk = |(nodes, out): (&[u32], &mut [Option<Status>])| {
            for pl in &plugins {
                pl.filter_batch(state, pod, snap, nodes, out);
            }
        };
        if run_sequentially(nodes.len()) {
            nodes
                .chunks(FILTER_CHUNK_NODES)
                .zip(out.chunks_mut(FILTER_CHUNK_NODES))
                .for_each(filter_chunk);
        } else {
            nodes
                .par_chunks(FILTER_CHUNK_NODES)
                .zip(out.par_chunks_mut(FILTER_CHUNK_NODES))
                .for_each(filter_chunk);
        }
        let mut i = done;
        while i < end {
            match &statuses[i] {
                None if feasible.len() < to_find => feasible.push(order[i]),
                None => {}
                Some(s) if s.code() == Code::Error || !s.is_rejected() => {
                    return Err(ScheduleError::Plugin {
                        point: "Filter",
                        status: s.clone(),
                    });
                }
                Some(_) => {}
            }
            i += 1;
            if feasible.len() == to_find {
                break;
            }
        }
        done = i;
    }
    let rejected = if feasible.is_empty() {
        let mut r: Vec<(u32, Status)> = (0..done)
            .filter_map(|i| statuses[i].take().map(|s| (order[i], s)))
            .collect();
        r.sort_by_key(|(idx, _)| *idx);
        r
    } else {
        Vec::new()
    };
    Ok(Filtered {
        feasible,
        rejected,
        processed: done,
    })
}

pub(crate) fn run_pre_score(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    feasible: &[u32],
) -> Result<(), ScheduleError> {
    for pl in &profile.pre_score {
        let s = pl
            .pre_score(state, pod, snap, feasible)
            .with_plugin(pl.name());
        if s.is_skip() {
            state.skip_score.push(pl.name());
        } else if !s.is_success() {
            return Err(ScheduleError::Plugin {
                point: "PreScore",
                status: s,
            });
        }
    }
    Ok(())
}

/// Weighted total score per feasible node. All score plugins run in one parallel
/// region: each chunk of nodes is scored by every plugin into its own block of
/// `raw` (plugin `p` of a chunk of `len` nodes at `p * len`), then each plugin's
/// scores are gathered, normalised, range-checked and weighted.
pub(crate) fn run_score<'a>(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    feasible: &[u32],
    arena: &'a Bump,
) -> Result<BumpVec<'a, i64>, ScheduleError> {
    let n = feasible.len();
    let active: Vec<&crate::profile::WeightedScore> = profile
        .score
        .iter()
        .filter(|ws| !state.is_score_skipped(ws.plugin.name()))
        .collect();
    let np = active.len();
    let mut totals = BumpVec::with_capacity_in(n, arena);
    totals.resize(n, 0_i64);
    if np == 0 {
        return Ok(totals);
    }
    let mut raw = BumpVec::with_capacity_in(n * np, arena);
    raw.resize(n * np, 0_i64);
    let score_chunk = |nodes: &[u32], block: &mut [i64]| -> Result<(), Status> {
        for (p, ws) in active.iter().enumerate() {
            let out = &mut block[p * nodes.len()..(p + 1) * nodes.len()];
            ws.plugin
                .score_batch(state, pod, snap, nodes, out)
                .map_err(|s| s.with_plugin(ws.plugin.name()))?;
        }
        Ok(())
    };
    let result = if run_sequentially(n) {
        feasible
            .chunks(FILTER_CHUNK_NODES)
            .zip(raw.chunks_mut(FILTER_CHUNK_NODES * np))
            .try_for_each(|(nodes, block)| score_chunk(nodes, block))
    } else {
        feasible
            .par_chunks(FILTER_CHUNK_NODES)
            .zip(raw.par_chunks_mut(FILTER_CHUNK_NODES * np))
            .try_for_each(|(nodes, block)| score_chunk(nodes, block))
    };
    result.map_err(|status| ScheduleError::Plugin {
        point: "Score",
        status,
    })?;
    let mut scores = BumpVec::with_capacity_in(n, arena);
    for (p, ws) in active.iter().enumerate() {
        let pl = &*ws.plugin;
        scores.clear();
        for (c, block) in raw.chunks(FILTER_CHUNK_NODES * np).enumerate() {
            let len = (n - c * FILTER_CHUNK_NODES).min(FILTER_CHUNK_NODES);
            scores.extend_from_slice(&block[p * len..(p + 1) * len]);
        }
        let s = pl.normalize_scores(state, pod, &mut scores);
        if !s.is_success() {
            return Err(ScheduleError::Plugin {
                point: "NormalizeScore",
                status: s.with_plugin(pl.name()),
            });
        }
        for (total, &s) in totals.iter_mut().zip(scores.iter()) {
            if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&s) {
                return Err(invalid_score(pl.name(), s));
            }
            *total += s * ws.weight;
        }
    }
    Ok(totals)
}

/// Below this many nodes, or with a one-thread pool, handing work to rayon costs more
/// (a wake-up and a context switch per region, and idle workers spinning in
/// `sched_yield`) than it saves: on the 1,213-node openb cluster, a quarter of a run's
/// CPU went to rayon's wake-ups and spinning at 512.
pub const PARALLEL_MIN_NODES: usize = 8 * FILTER_CHUNK_NODES;

pub(crate) fn run_sequentially(n_nodes: usize) -> bool {
    n_nodes < PARALLEL_MIN_NODES || rayon::current_num_threads() == 1
}

/// The error of a score out of range after normalisation (upstream's message).
pub(crate) fn invalid_score(plugin: &'static str, s: i64) -> ScheduleError {
    let msg = format!(
        "plugin {plugin:?} returns an invalid score {s}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing"
    );
    ScheduleError::Plugin {
        point: "Score",
        status: Status::error(msg).with_plugin(plugin),
    }
}

/// The index of a highest total; among ties, each equally likely, as upstream's
/// `selectHost`. `totals` must not be empty.
pub fn select_host(totals: &[i64], rng: &mut dyn TieBreakRng) -> usize {
    select_best(totals.len(), |i| totals[i], rng)
}

/// [`select_host`] over `total(0..n)`: one pass finds the highest total and how many
/// nodes tie at it, one draw picks the `k`-th of them (none when there is no tie), a
/// second pass finds it. Upstream samples the reservoir with a draw per tie; the
/// choice is uniform either way, and one draw keeps the memoised and the full cycle
/// in step.
pub(crate) fn select_best(
    n: usize,
    total: impl Fn(usize) -> i64,
    rng: &mut dyn TieBreakRng,
) -> usize {
    assert!(n > 0, "select_host over no nodes");
    let (mut best, mut n_ties) = (total(0), 1_u64);
    for i in 1..n {
        let s = total(i);
        if s > best {
            (best, n_ties) = (s, 1);
        } else if s == best {
            n_ties += 1;
        }
    }
    let mut k = if n_ties > 1 { rng.below(n_ties) } else { 0 };
    for i in 0..n {
        if total(i) == best {
            if k == 0 {
                return i;
            }
            k -= 1;
        }
    }
    unreachable!("the highest total is present")
}

/// Runs PostFilter plugins on a fit error (upstream's `RunPostFilterPlugins`): the first
/// success or `UnschedulableAndUnresolvable` ends the run; rejections accumulate.
fn post_filter(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    mut err: FitError,
) -> ScheduleError {
    if profile.post_filter.is_empty() {
        return ScheduleError::Fit(Box::new(err));
    }
    let mut reasons = Vec::new();
    for pl in &profile.post_filter {
        let (result, s) =
            pl.post_filter_in_profile(profile, state, pod, snap, &err.diagnosis.node_statuses);
        if s.is_success() || s.code() == Code::UnschedulableAndUnresolvable {
            err.diagnosis.post_filter_msg = s.message();
            err.post_filter_result = result;
            return ScheduleError::Fit(Box::new(err));
        }
        if !s.is_rejected() {
            return ScheduleError::Plugin {
                point: "PostFilter",
                status: s.with_plugin(pl.name()),
            };
        }
        if result.is_some() {
            err.post_filter_result = result;
        }
        reasons.extend(s.reasons().iter().cloned());
    }
    err.diagnosis.post_filter_msg = reasons.join(", ");
    ScheduleError::Fit(Box::new(err))
}

/// Runs the Reserve plugins on the chosen `node` in order (upstream's
/// `RunReservePluginsReserve`); when one fails, runs every Unreserve in reverse order
/// and returns its status.
pub fn run_reserve(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &crate::node_info::NodeInfo,
) -> Result<(), Status> {
    for pl in &profile.reserve {
        let s = pl.reserve(state, pod, node);
        if !s.is_success() {
            for undo in profile.reserve.iter().rev() {
                undo.unreserve(state, pod, &node.name);
            }
            return Err(s.with_plugin(pl.name()));
        }
    }
    Ok(())
}

/// The pod as the caller should assume it on `node` after [`run_reserve`]: pinned to
/// the GPU devices a Reserve plugin chose, else to those the node's device rule gives
/// it now (a copy), so that the pod keeps its devices whenever the node's accounting
/// is replayed (confirming a binding re-adds the pod); `pod` itself when it needs no
/// device.
pub fn reserved_pod(
    state: &CycleState,
    pod: &Arc<PodInfo>,
    node: &crate::node_info::NodeInfo,
) -> Arc<PodInfo> {
    use crate::plugins::gpu_device::{GpuDemand, reserved_devices};
    let mask = reserved_devices(state).or_else(|| {
        node.gpu_devices
            .assign(GpuDemand::of(&pod.requests))
            .filter(|&m| m != 0)
    });
    match mask {
        Some(mask) => {
            let mut pinned = PodInfo::clone(pod);
            pinned.gpu_device_mask = Some(mask);
            Arc::new(pinned)
        }
        None => Arc::clone(pod),
    }
}

/// Runs the Bind plugins in order; the first that does not Skip decides.
pub fn run_bind(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    node_name: &str,
) -> Result<corev1::Binding, Status> {
    for pl in &profile.bind {
        match pl.bind(state, pod, node_name) {
            Err(s) if s.is_skip() => continue,
            Err(s) => return Err(s.with_plugin(pl.name())),
            Ok(b) => return Ok(b),
        }
    }
    Err(Status::error("all bind plugins skipped"))
}

#[cfg(test)]
mod tests;
