//! The verdict memo: the incremental form of a scheduling cycle.
//!
//! Pods of one shape scheduled one after another (a Deployment's replicas, a
//! benchmark's pod template) ask the same question of the same nodes, and between two
//! cycles only the nodes that changed, usually the one the previous pod went to, can
//! answer differently. When every Filter plugin active in a cycle is
//! [node-local](crate::framework::Plugin::node_local) and every node is to be
//! evaluated, the framework keeps, per (profile, [pod signature](PodInfo::signature),
//! snapshot lineage), each node's filter verdict, its raw scores and its weighted
//! total, and each cycle re-evaluates only the nodes that changed since the memo was
//! last brought up to date (the snapshot's change log names them,
//! [`Snapshot::changed_since`]).
//!
//! Every per-cycle step is proportional to the changed nodes, not to the cluster:
//! - the feasible nodes are kept as a sorted list, edited when a verdict flips;
//! - a `DefaultMax` plugin's highest raw score is kept with the number of nodes at it,
//!   and re-taken by a scan only when the last of them drops;
//! - the nodes tied at the highest total are kept in a Fenwick tree over node indexes,
//!   so the tie-breaking draw picks the `k`-th of them in `O(log n)`; the tree is
//!   rebuilt only when the top changes hands.
//!
//! Exactness: the decision is the one the full cycle makes, the same tie-breaking
//! draw included ([`select_host`](crate::schedule::select_host) draws once among the
//! ties, in node order, as the memo does). When a normalisation parameter moves every
//! total is recomputed; `Custom` normalisation re-runs over every feasible node each
//! cycle; a non-node-local Score plugin (inter-pod affinity, topology spread with
//! constraints) makes the cycle score every feasible node the usual way, with only
//! the filtering memoised. PreFilter and PreScore run every cycle, so the cycle
//! state that Reserve and Bind see is this cycle's. When no node fits, the full
//! cycle runs to build the diagnosis. Tests run both paths on random clusters and
//! compare every decision.
//!
//! Memory: at most [`MAX_MEMOS`] memos (least recently used evicted), each about
//! `nodes × (22 + 8 × score plugins)` bytes.

use std::sync::Arc;

use rayon::prelude::*;

use crate::cache::Snapshot;
use crate::framework::{CycleState, FilterPlugin, Normalization, default_normalize_one};
use crate::framework::{MAX_NODE_SCORE, MIN_NODE_SCORE};
use crate::pod_info::PodInfo;
use crate::profile::{Profile, WeightedScore};
use crate::schedule::{
    FILTER_CHUNK_NODES, ScheduleError, TieBreakRng, invalid_score, run_pre_score, run_sequentially,
    select_best,
};
use crate::status::{Code, Status};

/// Memos kept per [`MemoStore`]: one per recently seen pod shape.
pub const MAX_MEMOS: usize = 8;
/// Plugins per extension point a memo can track (bit masks).
pub const MAX_MEMO_PLUGINS: usize = 64;
/// A node generation no snapshot carries: "not evaluated yet".
const GEN_UNKNOWN: u64 = u64::MAX;

/// What a memo is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    profile: u64,
    pod: u64,
    origin: u64,
    layout: u64,
    images: u64,
    /// Active (not skipped) Filter plugins, by index in the profile.
    filters: u64,
}

struct Memo {
    key: Key,
    last_used: u64,
    /// The snapshot generation the memo was last brought up to date with; `None`
    /// before the first time.
    synced: Option<u64>,
    /// The generation each node had when it was last evaluated.
    node_gen: Vec<u64>,
    feasible: Vec<bool>,
    /// The feasible nodes, ascending.
    feasible_list: Vec<u32>,
    scores: Option<ScoreMemo>,
}

struct ScoreMemo {
    /// Active Score plugins, by index in the profile.
    mask: u64,
    /// Raw scores, one column per active plugin, indexed by node (meaningful for
    /// feasible nodes).
    raw: Vec<Vec<i64>>,
    /// Per active plugin, the highest raw score over feasible nodes and how many
    /// nodes have it (kept for `DefaultMax` plugins only).
    tops: Vec<Top>,
    /// `tops` follow the raw scores (false after a mixed cycle).
    tops_valid: bool,
    /// Per active plugin, the normalisation parameter the totals were computed with.
    params: Vec<i64>,
    /// Weighted normalised totals, indexed by node (meaningful for feasible nodes).
    totals: Vec<i64>,
    ties: TieSet,
}

/// The highest value of a column and how many feasible nodes hold it.
#[derive(Clone, Copy, Debug, Default)]
struct Top {
    value: i64,
    count: u32,
}

impl Top {
    fn scan(col: &[i64], feasible: &[u32]) -> Top {
        let mut top = Top {
            value: i64::MIN,
            count: 0,
        };
        for &i in feasible {
            top.add(col[i as usize]);
        }
        top
    }

    fn add(&mut self, v: i64) {
        if v > self.value {
            *self = Top { value: v, count: 1 };
        } else if v == self.value {
            self.count += 1;
        }
    }

    /// Removes one node holding `v`; `false` when the top is then unknown.
    fn remove(&mut self, v: i64) -> bool {
        if v == self.value {
            self.count -= 1;
        }
        self.count > 0
    }
}

/// The feasible nodes tied at the highest total: membership per node and a Fenwick
/// tree of it, for the `k`-th member in node order.
#[derive(Default)]
struct TieSet {
    best: i64,
    member: Vec<bool>,
    /// Fenwick tree over `member`, 1-based.
    tree: Vec<u32>,
    count: u64,
    /// The set must be rebuilt before use.
    dirty: bool,
}

impl TieSet {
    fn new(n: usize) -> TieSet {
        TieSet {
            best: i64::MIN,
            member: vec![false; n],
            tree: vec![0; n + 1],
            count: 0,
            dirty: true,
        }
    }

    fn rebuild(&mut self, totals: &[i64], feasible: &[u32]) {
        self.best = feasible
            .iter()
            .map(|&i| totals[i as usize])
            .max()
            .unwrap_or(i64::MIN);
        self.member.fill(false);
        self.tree.fill(0);
        self.count = 0;
        for &i in feasible {
            if totals[i as usize] == self.best {
                self.member[i as usize] = true;
                self.tree[i as usize + 1] = 1;
                self.count += 1;
            }
        }
        // Linear-time Fenwick construction.
        let n = self.member.len();
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                self.tree[j] += self.tree[i];
            }
        }
        self.dirty = false;
    }

    fn add(&mut self, i: usize, delta: i32) {
        let mut j = i + 1;
        while j < self.tree.len() {
            self.tree[j] = self.tree[j].wrapping_add_signed(delta);
            j += j & j.wrapping_neg();
        }
    }

    /// Node `i` is now `feasible` with `total`.
    fn update(&mut self, i: usize, feasible: bool, total: i64) {
        if self.dirty {
            return;
        }
        if feasible && total > self.best {
            // A new top: the old members all drop out.
            self.dirty = true;
            return;
        }
        let want = feasible && total == self.best;
        if want != self.member[i] {
            self.member[i] = want;
            self.add(i, if want { 1 } else { -1 });
            if want {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
        if self.count == 0 {
            self.dirty = true;
        }
    }

    /// The `k`-th member (0-based) in node order.
    fn kth(&self, k: u64) -> usize {
        let n = self.member.len();
        let mut pos = 0;
        let mut rem = k + 1;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && u64::from(self.tree[next]) < rem {
                pos = next;
                rem -= u64::from(self.tree[next]);
            }
            step >>= 1;
        }
        pos
    }

    /// A member, uniformly: one draw when there is a tie, none otherwise.
    fn select(&mut self, totals: &[i64], feasible: &[u32], rng: &mut dyn TieBreakRng) -> u32 {
        if self.dirty {
            self.rebuild(totals, feasible);
        }
        let k = if self.count > 1 {
            rng.below(self.count)
        } else {
            0
        };
        self.kth(k) as u32
    }
}

/// The memos of one scheduler (lives in its [`CycleContext`](crate::CycleContext)).
#[derive(Default)]
pub struct MemoStore {
    memos: Vec<Memo>,
    tick: u64,
    disabled: bool,
    stats: MemoStats,
}

/// Counters, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// Cycles decided through a memo.
    pub cycles: u64,
    /// Node evaluations the memo ran (nodes found changed, summed over cycles).
    pub nodes_evaluated: u64,
    /// Full scans of the node generations (the change log did not reach back far
    /// enough, or the memo was new).
    pub full_scans: u64,
}

impl MemoStore {
    pub fn set_enabled(&mut self, enabled: bool) {
        self.disabled = !enabled;
        if !enabled {
            self.memos.clear();
        }
    }

    pub fn enabled(&self) -> bool {
        !self.disabled
    }

    pub fn stats(&self) -> MemoStats {
        self.stats
    }

    /// The index of the memo for `key`, made (evicting the least recently used) if
    /// missing.
    fn index_of(&mut self, key: Key, n_nodes: usize) -> usize {
        self.tick += 1;
        let tick = self.tick;
        let i = match self.memos.iter().position(|m| m.key == key) {
            Some(i) => i,
            None => {
                let memo = Memo {
                    key,
                    last_used: tick,
                    synced: None,
                    node_gen: vec![GEN_UNKNOWN; n_nodes],
                    feasible: vec![false; n_nodes],
                    feasible_list: Vec::new(),
                    scores: None,
                };
                if self.memos.len() < MAX_MEMOS {
                    self.memos.push(memo);
                    self.memos.len() - 1
                } else {
                    let lru = (0..self.memos.len())
                        .min_by_key(|&i| self.memos[i].last_used)
                        .expect("memos is full");
                    self.memos[lru] = memo;
                    lru
                }
            }
        };
        self.memos[i].last_used = tick;
        i
    }

    fn forget(&mut self, key: Key) {
        self.memos.retain(|m| m.key != key);
    }
}

/// The memo key for this cycle (over the active node-local Filter plugins), or
/// `None` when the memo cannot serve it (too many plugins).
fn key(profile: &Profile, state: &CycleState, pod: &PodInfo, snap: &Snapshot) -> Option<Key> {
    if profile.filter.len() > MAX_MEMO_PLUGINS || profile.score.len() > MAX_MEMO_PLUGINS {
        return None;
    }
    let mut filters = 0_u64;
    for (i, pl) in profile.filter.iter().enumerate() {
        if !state.is_filter_skipped(pl.name()) && pl.node_local() {
            filters |= 1 << i;
        }
    }
    Some(Key {
        profile: profile_identity(profile),
        pod: pod.signature(),
        origin: snap.origin(),
        layout: snap.layout_generation(),
        images: snap.image_generation(),
        filters,
    })
}

/// The profile's plugin instances and weights, mixed into one word: a profile
/// rebuilt from the same configuration gets new instances, hence a new identity.
fn profile_identity(profile: &Profile) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    let mut mix = |x: u64| h = (h ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    for pl in &profile.pre_filter {
        mix(Arc::as_ptr(pl) as *const () as usize as u64);
    }
    for pl in &profile.filter {
        mix(Arc::as_ptr(pl) as *const () as usize as u64);
    }
    for pl in &profile.pre_score {
        mix(Arc::as_ptr(pl) as *const () as usize as u64);
    }
    for ws in &profile.score {
        mix(Arc::as_ptr(&ws.plugin) as *const () as usize as u64);
        mix(ws.weight as u64);
    }
    h
}

/// Runs the cycle's Filter, Score and selection through the memo. `Ok(None)` when
/// the memo cannot serve the cycle or no node fits (the caller then runs the full
/// cycle); otherwise the chosen node and the number of feasible nodes.
pub(crate) fn run(
    store: &mut MemoStore,
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    rng: &mut dyn TieBreakRng,
) -> Result<Option<(u32, usize)>, ScheduleError> {
    if store.disabled {
        return Ok(None);
    }
    let Some(key) = key(profile, state, pod, snap) else {
        return Ok(None);
    };
    let result = run_keyed(store, key, profile, state, pod, snap, rng);
    if result.is_err() {
        // A plugin failed part-way: the memo may be half updated.
        store.forget(key);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_keyed(
    store: &mut MemoStore,
    key: Key,
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    rng: &mut dyn TieBreakRng,
) -> Result<Option<(u32, usize)>, ScheduleError> {
    let i = store.index_of(key, snap.n_nodes());
    let MemoStore { memos, stats, .. } = store;
    let memo = &mut memos[i];
    let changed = changed_nodes(memo, snap, stats);
    stats.nodes_evaluated += changed.len() as u64;
    let was_feasible = refilter(memo, profile, state, pod, snap, &changed)?;
    memo.synced = Some(snap.generation());
    // The other active Filter plugins run every cycle, on the nodes the memoised ones
    // let through.
    let others: Vec<&dyn FilterPlugin> = profile
        .filter
        .iter()
        .filter(|p| !state.is_filter_skipped(p.name()) && !p.node_local())
        .map(|p| &**p)
        .collect();
    let passed: Option<Vec<u32>> = if others.is_empty() {
        None
    } else {
        let statuses = filter_nodes(&others, state, pod, snap, &memo.feasible_list)?;
        Some(
            memo.feasible_list
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| s.is_none())
                .map(|(&i, _)| i)
                .collect(),
        )
    };
    let n_feasible = passed.as_ref().map_or(memo.feasible_list.len(), Vec::len);
    if n_feasible < 2 {
        // Scoring is skipped, so the score memo would miss these changes.
        memo.scores = None;
        let only = passed.as_deref().unwrap_or(&memo.feasible_list).first();
        return Ok(only.map(|&idx| {
            stats.cycles += 1;
            (idx, 1)
        }));
    }
    let feasible: &[u32] = passed.as_deref().unwrap_or(&memo.feasible_list);
    run_pre_score(profile, state, pod, snap, feasible)?;
    let active: Vec<(usize, &WeightedScore)> = profile
        .score
        .iter()
        .enumerate()
        .filter(|(_, ws)| !state.is_score_skipped(ws.plugin.name()))
        .collect();
    let local: Vec<(usize, &WeightedScore)> = active
        .iter()
        .copied()
        .filter(|(_, ws)| ws.plugin.node_local())
        .collect();
    let idx = if passed.is_some() || local.len() < active.len() {
        // Mixed: node-local raw scores from the memo, the rest computed now, every
        // column normalised over this cycle's feasible nodes.
        let feasible = passed.as_deref().unwrap_or(&memo.feasible_list).to_vec();
        update_raw(memo, &local, state, pod, snap, &changed)?;
        let scores = memo.scores.as_mut().expect("raw updated");
        // The incremental totals no longer follow; the next all-local cycle rebuilds.
        scores.tops_valid = false;
        scores.params.fill(i64::MIN);
        scores.ties.dirty = true;
        let others: Vec<(usize, &WeightedScore)> = active
            .iter()
            .copied()
            .filter(|(_, ws)| !ws.plugin.node_local())
            .collect();
        let fresh_cols = score_compact(&others, state, pod, snap, &feasible)?;
        let mut totals = vec![0_i64; feasible.len()];
        let mut col = Vec::with_capacity(feasible.len());
        for (i, ws) in &active {
            let pl = &*ws.plugin;
            col.clear();
            match local.iter().position(|(j, _)| j == i) {
                Some(p) => col.extend(feasible.iter().map(|&n| scores.raw[p][n as usize])),
                None => {
                    let q = others.iter().position(|(j, _)| j == i).expect("partition");
                    col.extend_from_slice(&fresh_cols[q]);
                }
            }
            let s = pl.normalize_scores(state, pod, &mut col);
            if !s.is_success() {
                return Err(ScheduleError::Plugin {
                    point: "NormalizeScore",
                    status: s.with_plugin(pl.name()),
                });
            }
            for (t, &v) in totals.iter_mut().zip(&col) {
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&v) {
                    return Err(invalid_score(pl.name(), v));
                }
                *t += v * ws.weight;
            }
        }
        feasible[select_best(totals.len(), |k| totals[k], rng)]
    } else {
        // All node-local: totals and ties kept incrementally.
        rescore(memo, &active, state, pod, snap, &changed, &was_feasible)?;
        let scores = memo.scores.as_mut().expect("rescored");
        scores.ties.select(&scores.totals, &memo.feasible_list, rng)
    };
    stats.cycles += 1;
    Ok(Some((idx, n_feasible)))
}

/// The nodes whose generation differs from the memo's, ascending: from the snapshot's
/// change log when it reaches back to the memo's last sync, else by a scan.
fn changed_nodes(memo: &Memo, snap: &Snapshot, stats: &mut MemoStats) -> Vec<u32> {
    let gens = &snap.columns().generation;
    let stale = |i: u32| memo.node_gen[i as usize] != gens[i as usize];
    let logged = memo
        .synced
        .filter(|&g| g <= snap.generation())
        .and_then(|g| snap.changed_since(g));
    match logged {
        Some(it) => {
            let mut changed: Vec<u32> = it.filter(|&i| stale(i)).collect();
            changed.sort_unstable();
            changed.dedup();
            changed
        }
        None => {
            stats.full_scans += 1;
            (0..snap.n_nodes() as u32).filter(|&i| stale(i)).collect()
        }
    }
}

/// Re-runs the active Filter plugins on the changed nodes; returns whether each was
/// feasible before.
fn refilter(
    memo: &mut Memo,
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    changed: &[u32],
) -> Result<Vec<bool>, ScheduleError> {
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let plugins: Vec<&dyn FilterPlugin> = profile
        .filter
        .iter()
        .filter(|p| !state.is_filter_skipped(p.name()) && p.node_local())
        .map(|p| &**p)
        .collect();
    let statuses = filter_nodes(&plugins, state, pod, snap, changed)?;
    let gens = &snap.columns().generation;
    let was: Vec<bool> = changed.iter().map(|&i| memo.feasible[i as usize]).collect();
    let mut flips = 0;
    for (&i, s) in changed.iter().zip(&statuses) {
        let i = i as usize;
        let ok = s.is_none();
        flips += usize::from(memo.feasible[i] != ok);
        memo.feasible[i] = ok;
        memo.node_gen[i] = gens[i];
    }
    if flips > 64 {
        memo.feasible_list = (0..memo.feasible.len() as u32)
            .filter(|&i| memo.feasible[i as usize])
            .collect();
    } else if flips > 0 {
        for (&i, &before) in changed.iter().zip(&was) {
            let now = memo.feasible[i as usize];
            if before == now {
                continue;
            }
            let pos = memo.feasible_list.binary_search(&i);
            match (now, pos) {
                (true, Err(p)) => memo.feasible_list.insert(p, i),
                (false, Ok(p)) => {
                    memo.feasible_list.remove(p);
                }
                _ => unreachable!("feasible list out of step"),
            }
        }
    }
    Ok(was)
}

/// Runs `plugins` on `nodes` (in parallel chunks when there are many); the status of
/// each rejected node, `None` for the others.
fn filter_nodes(
    plugins: &[&dyn FilterPlugin],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    nodes: &[u32],
) -> Result<Vec<Option<Status>>, ScheduleError> {
    let mut statuses: Vec<Option<Status>> = vec![None; nodes.len()];
    let filter_chunk = |(nodes, out): (&[u32], &mut [Option<Status>])| {
        for pl in plugins {
            pl.filter_batch(state, pod, snap, nodes, out);
        }
    };
    if run_sequentially(nodes.len()) {
        nodes
            .chunks(FILTER_CHUNK_NODES)
            .zip(statuses.chunks_mut(FILTER_CHUNK_NODES))
            .for_each(filter_chunk);
    } else {
        nodes
            .par_chunks(FILTER_CHUNK_NODES)
            .zip(statuses.par_chunks_mut(FILTER_CHUNK_NODES))
            .for_each(filter_chunk);
    }
    if let Some(s) = statuses
        .iter()
        .flatten()
        .find(|s| s.code() == Code::Error || !s.is_rejected())
    {
        return Err(ScheduleError::Plugin {
            point: "Filter",
            status: s.clone(),
        });
    }
    Ok(statuses)
}

/// Brings the raw scores of the `active` (node-local) plugins up to date on the
/// memo's feasible nodes: the changed ones, or all when the active plugins changed.
/// Returns whether the score memo is fresh, the nodes scored, and the old raw
/// scores of the changed nodes for `DefaultMax` plugins (when not fresh).
#[allow(clippy::type_complexity)]
fn update_raw(
    memo: &mut Memo,
    active: &[(usize, &WeightedScore)],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    changed: &[u32],
) -> Result<(bool, Vec<u32>, Vec<Vec<i64>>), ScheduleError> {
    let n = snap.n_nodes();
    let np = active.len();
    let mask = active.iter().fold(0_u64, |m, (i, _)| m | 1 << i);
    let fresh = memo.scores.as_ref().is_none_or(|s| s.mask != mask);
    if fresh {
        memo.scores = Some(ScoreMemo {
            mask,
            raw: vec![vec![0; n]; np],
            tops: vec![Top::default(); np],
            tops_valid: false,
            params: vec![i64::MIN; np],
            totals: vec![0; n],
            ties: TieSet::new(n),
        });
    }
    let scores = memo.scores.as_mut().expect("just set");
    let to_score: Vec<u32> = if fresh {
        memo.feasible_list.clone()
    } else {
        changed
            .iter()
            .copied()
            .filter(|&i| memo.feasible[i as usize])
            .collect()
    };
    let old_raw: Vec<Vec<i64>> = if fresh {
        Vec::new()
    } else {
        (0..np)
            .map(|p| match active[p].1.plugin.normalization() {
                Normalization::DefaultMax { .. } => {
                    changed.iter().map(|&i| scores.raw[p][i as usize]).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    };
    score_raw(active, state, pod, snap, &to_score, &mut scores.raw)?;
    Ok((fresh, to_score, old_raw))
}

/// Brings raw scores, tops, totals and ties up to date for the changed nodes (for
/// every feasible node when the active plugins changed or a normalisation parameter
/// moved).
fn rescore(
    memo: &mut Memo,
    active: &[(usize, &WeightedScore)],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    changed: &[u32],
    was_feasible: &[bool],
) -> Result<(), ScheduleError> {
    let np = active.len();
    let (fresh, to_score, old_raw) = update_raw(memo, active, state, pod, snap, changed)?;
    let feasible = &memo.feasible_list;
    let scores = memo.scores.as_mut().expect("raw updated");
    let kinds: Vec<Normalization> = active
        .iter()
        .map(|(_, ws)| ws.plugin.normalization())
        .collect();
    let mut all_totals = fresh;
    for p in 0..np {
        let param = match kinds[p] {
            Normalization::Identity => 0,
            Normalization::DefaultMax { .. } => {
                let col = &scores.raw[p];
                let top = &mut scores.tops[p];
                let mut known = !fresh && scores.tops_valid;
                if known {
                    for (k, &i) in changed.iter().enumerate() {
                        if was_feasible[k] && !top.remove(old_raw[p][k]) {
                            known = false;
                            break;
                        }
                        if memo.feasible[i as usize] {
                            top.add(col[i as usize]);
                        }
                    }
                }
                if !known {
                    *top = Top::scan(col, feasible);
                }
                top.value.max(0)
            }
            Normalization::Custom => {
                all_totals = true;
                0
            }
        };
        if scores.params[p] != param {
            scores.params[p] = param;
            all_totals = true;
        }
    }
    scores.tops_valid = true;
    let update: &[u32] = if all_totals { feasible } else { &to_score };
    for &i in update {
        scores.totals[i as usize] = 0;
    }
    let mut normalized = Vec::with_capacity(update.len());
    for (p, (_, ws)) in active.iter().enumerate() {
        let pl = &*ws.plugin;
        let col = &scores.raw[p];
        normalized.clear();
        normalized.extend(update.iter().map(|&i| col[i as usize]));
        match kinds[p] {
            Normalization::Identity => {}
            Normalization::DefaultMax { reverse } => {
                let max = scores.params[p];
                for s in &mut normalized {
                    *s = default_normalize_one(MAX_NODE_SCORE, reverse, max, *s);
                }
            }
            Normalization::Custom => {
                // `update` is every feasible node here (Custom forces all totals).
                let s = pl.normalize_scores(state, pod, &mut normalized);
                if !s.is_success() {
                    return Err(ScheduleError::Plugin {
                        point: "NormalizeScore",
                        status: s.with_plugin(pl.name()),
                    });
                }
            }
        }
        for (&i, &s) in update.iter().zip(&normalized) {
            if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&s) {
                return Err(invalid_score(pl.name(), s));
            }
            scores.totals[i as usize] += s * ws.weight;
        }
    }
    if all_totals {
        scores.ties.dirty = true;
    } else {
        for &i in changed {
            let i = i as usize;
            scores.ties.update(i, memo.feasible[i], scores.totals[i]);
        }
    }
    Ok(())
}

/// Raw scores of every active plugin on `nodes`: one column per plugin, aligned with
/// `nodes`.
fn score_compact(
    active: &[(usize, &WeightedScore)],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    nodes: &[u32],
) -> Result<Vec<Vec<i64>>, ScheduleError> {
    let mut cols = vec![Vec::with_capacity(nodes.len()); active.len()];
    score_blocks(active, state, pod, snap, nodes, |chunk, p, scores| {
        debug_assert_eq!(chunk.len(), scores.len());
        cols[p].extend_from_slice(scores);
    })?;
    Ok(cols)
}

/// Raw scores of every active plugin on `nodes`, written into `raw[p][node]`.
fn score_raw(
    active: &[(usize, &WeightedScore)],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    nodes: &[u32],
    raw: &mut [Vec<i64>],
) -> Result<(), ScheduleError> {
    score_blocks(active, state, pod, snap, nodes, |chunk, p, scores| {
        for (&i, &s) in chunk.iter().zip(scores) {
            raw[p][i as usize] = s;
        }
    })
}

/// Scores `nodes` with every active plugin, in parallel chunks when there are many,
/// then hands each chunk's scores per plugin to `sink(chunk, plugin, scores)` in
/// node order.
fn score_blocks(
    active: &[(usize, &WeightedScore)],
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    nodes: &[u32],
    mut sink: impl FnMut(&[u32], usize, &[i64]),
) -> Result<(), ScheduleError> {
    if nodes.is_empty() || active.is_empty() {
        return Ok(());
    }
    let np = active.len();
    // Plugin-major blocks per chunk: plugin `p` of a chunk of `len` nodes at `p * len`.
    let mut block = vec![0_i64; nodes.len() * np];
    let score_chunk = |(nodes, block): (&[u32], &mut [i64])| -> Result<(), Status> {
        for (p, (_, ws)) in active.iter().enumerate() {
            let out = &mut block[p * nodes.len()..(p + 1) * nodes.len()];
            ws.plugin
                .score_batch(state, pod, snap, nodes, out)
                .map_err(|s| s.with_plugin(ws.plugin.name()))?;
        }
        Ok(())
    };
    let result = if run_sequentially(nodes.len()) {
        nodes
            .chunks(FILTER_CHUNK_NODES)
            .zip(block.chunks_mut(FILTER_CHUNK_NODES * np))
            .try_for_each(score_chunk)
    } else {
        nodes
            .par_chunks(FILTER_CHUNK_NODES)
            .zip(block.par_chunks_mut(FILTER_CHUNK_NODES * np))
            .try_for_each(score_chunk)
    };
    result.map_err(|status| ScheduleError::Plugin {
        point: "Score",
        status,
    })?;
    for (chunk, b) in nodes
        .chunks(FILTER_CHUNK_NODES)
        .zip(block.chunks(FILTER_CHUNK_NODES * np))
    {
        for p in 0..np {
            sink(chunk, p, &b[p * chunk.len()..(p + 1) * chunk.len()]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tie_set_kth_follows_node_order() {
        let totals = vec![5, 9, 9, 1, 9, 3, 9];
        let feasible: Vec<u32> = vec![0, 1, 2, 3, 4, 6];
        let mut t = TieSet::new(totals.len());
        t.rebuild(&totals, &feasible);
        assert_eq!(t.count, 4);
        let members: Vec<usize> = (0..4).map(|k| t.kth(k)).collect();
        assert_eq!(members, vec![1, 2, 4, 6]);
        // Node 2 drops, node 0 joins the top.
        t.update(2, true, 4);
        t.update(0, true, 9);
        let members: Vec<usize> = (0..t.count).map(|k| t.kth(k)).collect();
        assert_eq!(members, vec![0, 1, 4, 6]);
        // Node 5 becomes feasible above the top: rebuilt on next use.
        t.update(5, true, 10);
        assert!(t.dirty);
    }

    /// The aggregate kept incrementally equals the one computed from scratch, through
    /// pods added and removed, node updates and nodes joining.
    #[test]
    fn contributions_follow_the_cluster() {
        use crate::fixtures::{NodeBuilder, PodBuilder};
        use crate::{Cache, PodInfo, Snapshot};
        let mut cache = Cache::new();
        let node = |i: usize, cpu: &str| {
            NodeBuilder::new(&format!("n{i}"))
                .capacity(cpu, "8Gi", 110)
                .build()
        };
        for i in 0..20 {
            cache.add_node(&node(i, "4")).unwrap();
        }
        let mut snap = Snapshot::default();
        let mut kept: Contributions<i64, i64> = Contributions::default();
        // Contribution: pods on the node times its index, plus its cpu in cores.
        let contribution = |snap: &Snapshot, i: u32| {
            let n = snap.node(i);
            n.pods.len() as i64 * i64::from(i) + n.allocatable.milli_cpu / 1000
        };
        let mut uids = Vec::new();
        for step in 0..200_usize {
            match step % 7 {
                0..=3 => {
                    let pod = PodBuilder::new(&format!("p{step}"))
                        .node_name(&format!("n{}", step * 7 % 20))
                        .build();
                    let info = std::sync::Arc::new(PodInfo::new(pod).unwrap());
                    uids.push(info.uid.clone());
                    cache.add_pod(info).unwrap();
                }
                4 if !uids.is_empty() => {
                    let uid = uids.swap_remove(step % uids.len());
                    cache.remove_pod(&uid).unwrap();
                }
                5 => cache
                    .update_node(&node(step % 20, if step % 2 == 0 { "8" } else { "2" }))
                    .unwrap(),
                6 if step % 3 == 0 => cache.add_node(&node(20 + step, "1")).unwrap(),
                _ => {}
            }
            cache.update_snapshot(&mut snap);
            kept.sync(
                7,
                &snap,
                || 0,
                |i| contribution(&snap, i),
                |agg, c, sign| *agg += sign * c,
            );
            let expect: i64 = (0..snap.n_nodes() as u32)
                .map(|i| contribution(&snap, i))
                .sum();
            assert_eq!(kept.agg, expect, "step {step}");
        }
    }

    #[test]
    fn top_tracks_count_at_max() {
        let col = vec![3, 7, 7, 2];
        let mut top = Top::scan(&col, &[0, 1, 2, 3]);
        assert_eq!((top.value, top.count), (7, 2));
        assert!(top.remove(7));
        assert!(!top.remove(7), "last holder gone: unknown");
        top.add(8);
        assert_eq!((top.value, top.count), (8, 1));
    }
}

/// Per-node contributions to an aggregate, kept across cycles: for PreFilter states
/// that sum something over every node (topology spread's per-domain counts). Each
/// node's contribution is a function of the caller's `key` (the pod's shape) and the
/// node's contents; [`Contributions::sync`] recomputes only the nodes changed since
/// the last sync (the snapshot's change log), subtracting their old contribution
/// from the aggregate and adding the new one, and rebuilds everything when the key or
/// the snapshot lineage changes.
#[derive(Debug, Default)]
pub struct Contributions<T, A> {
    /// (caller key, snapshot origin, layout generation); `None`: nothing kept.
    key: Option<(u64, u64, u64)>,
    synced: u64,
    node_gen: Vec<u64>,
    contrib: Vec<T>,
    /// The aggregate of every node's contribution.
    pub agg: A,
}

impl<T, A> Contributions<T, A> {
    /// Brings the aggregate up to date with `snap` for `key`. `fresh` makes an empty
    /// aggregate, `compute` one node's contribution, `apply(agg, c, sign)` adds
    /// (`sign` 1) or removes (`-1`) a contribution.
    pub fn sync(
        &mut self,
        key: u64,
        snap: &Snapshot,
        fresh: impl FnOnce() -> A,
        mut compute: impl FnMut(u32) -> T,
        mut apply: impl FnMut(&mut A, &T, i64),
    ) {
        let full_key = (key, snap.origin(), snap.layout_generation());
        let gens = &snap.columns().generation;
        let logged = (self.key == Some(full_key) && self.synced <= snap.generation())
            .then(|| snap.changed_since(self.synced))
            .flatten();
        match logged {
            Some(changed) => {
                let mut changed: Vec<u32> = changed
                    .filter(|&i| self.node_gen[i as usize] != gens[i as usize])
                    .collect();
                changed.sort_unstable();
                changed.dedup();
                for i in changed {
                    let c = compute(i);
                    apply(&mut self.agg, &self.contrib[i as usize], -1);
                    apply(&mut self.agg, &c, 1);
                    self.contrib[i as usize] = c;
                    self.node_gen[i as usize] = gens[i as usize];
                }
            }
            None => {
                self.agg = fresh();
                self.contrib = (0..snap.n_nodes() as u32).map(&mut compute).collect();
                for c in &self.contrib {
                    apply(&mut self.agg, c, 1);
                }
                self.node_gen = gens.clone();
                self.key = Some(full_key);
            }
        }
        self.synced = snap.generation();
    }
}
