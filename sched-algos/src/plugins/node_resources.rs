//! NodeResourcesFit and NodeResourcesBalancedAllocation (upstream noderesources/:
//! fit.go, resource_allocation.go, least_allocated.go, most_allocated.go,
//! requested_to_capacity_ratio.go, balanced_allocation.go).
//!
//! Fit filter: "Too many pods" when `pods + 1 > allowed`; then, unless the pod requests
//! nothing, `"Insufficient cpu|memory|ephemeral-storage|<scalar>"` for each resource with
//! `request > allocatable - requested` (scalars skipping ignored extended resources).
//! All reasons are kept, status `Unschedulable`.
//!
//! Scoring reads, per configured resource, `allocatable` and `requested + podRequest`,
//! where the node's CPU/memory requested and the pod's CPU/memory request use the
//! non-zero defaults (100m, 200Mi) for Fit and the exact values for
//! BalancedAllocation; a scalar resource the pod does not request, or a resource the
//! node has 0 of, is left out. Then:
//! - LeastAllocated: `sum_i(w_i * (alloc - req) * 100 / alloc) / sum_i(w_i)` (0 if
//!   `req > alloc`), integer division throughout.
//! - MostAllocated: `sum_i(w_i * min(req, alloc) * 100 / alloc) / sum_i(w_i)`.
//! - RequestedToCapacityRatio: a broken-linear function of `req * 100 / alloc` (100 if
//!   `req > alloc`) through the shape points (scores x10); only resources with a
//!   positive score count; `round(sum / weightSum)`.
//! - BalancedAllocation: fractions `min(req / alloc, 1)`; `std` = `|f1 - f2| / 2` for
//!   two, the population standard deviation for more, 0 for one; `int((1 - std) * 100)`.
//!   Skipped for best-effort pods (all requests 0), upstream issue #129138.

use std::borrow::Cow;

use serde::Deserialize;

use crate::cache::{NodeColumns, Snapshot};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Normalization, Plugin, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::resource::{
    CPU, EPHEMERAL_STORAGE, MEMORY, is_extended_resource_name, is_scalar_resource_name,
};
use crate::status::{Code, Status};

pub const FIT_NAME: &str = "NodeResourcesFit";
pub const BALANCED_NAME: &str = "NodeResourcesBalancedAllocation";
/// A bound on the resources one scoring strategy weighs.
pub const MAX_SCORING_RESOURCES: usize = 16;
/// Upstream's `MaxCustomPriorityScore`: shape scores are 0..=10.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// Upstream's `maxUtilization`.
const MAX_UTILIZATION: i64 = 100;
const FIT_PRE_SCORE_KEY: &str = "PreScoreNodeResourcesFit";
const BALANCED_PRE_SCORE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

/// `ResourceSpec`: a resource name and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

/// `UtilizationShapePoint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedToCapacityRatioParam {
    pub shape: Vec<ShapePoint>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum StrategyType {
    #[default]
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

/// `ScoringStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringStrategy {
    #[serde(rename = "type", default)]
    pub strategy: StrategyType,
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

impl Default for ScoringStrategy {
    fn default() -> ScoringStrategy {
        ScoringStrategy {
            strategy: StrategyType::LeastAllocated,
            resources: default_resources(),
            requested_to_capacity_ratio: None,
        }
    }
}

/// Upstream's defaults: cpu and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: CPU.to_owned(),
            weight: 1,
        },
        ResourceSpec {
            name: MEMORY.to_owned(),
            weight: 1,
        },
    ]
}

/// `NodeResourcesFitArgs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FitArgs {
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

/// `NodeResourcesBalancedAllocationArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalancedAllocationArgs {
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
}

impl Default for BalancedAllocationArgs {
    fn default() -> BalancedAllocationArgs {
        BalancedAllocationArgs {
            resources: default_resources(),
        }
    }
}

/// Which column a configured resource reads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Cpu,
    Memory,
    EphemeralStorage,
    Scalar(String),
    /// Not a resource the scheduler tracks: always left out.
    Untracked,
}

impl Kind {
    fn of(name: &str) -> Kind {
        match name {
            CPU => Kind::Cpu,
            MEMORY => Kind::Memory,
            EPHEMERAL_STORAGE => Kind::EphemeralStorage,
            n if is_scalar_resource_name(n) => Kind::Scalar(n.to_owned()),
            _ => Kind::Untracked,
        }
    }
}

/// The per-resource arithmetic shared by Fit's scoring and BalancedAllocation
/// (upstream's `resourceAllocationScorer`).
#[derive(Clone, Debug)]
struct Allocation {
    kinds: Vec<Kind>,
    weights: Vec<i64>,
    /// Exact requests (BalancedAllocation) instead of the non-zero defaults (Fit).
    use_requested: bool,
    /// Whether every kind is in the columns (no scalar): the batch fast path.
    columns_only: bool,
}

impl Allocation {
    fn new(
        plugin: &str,
        resources: &[ResourceSpec],
        use_requested: bool,
        need_weights: bool,
    ) -> Result<Allocation, ConfigError> {
        if resources.is_empty() || resources.len() > MAX_SCORING_RESOURCES {
            return Err(invalid(
                plugin,
                format!("between 1 and {MAX_SCORING_RESOURCES} resources are needed"),
            ));
        }
        for r in resources {
            if need_weights && !(1..=100).contains(&r.weight) {
                return Err(invalid(
                    plugin,
                    format!("resource {:?} weight {} not in 1..=100", r.name, r.weight),
                ));
            }
        }
        let kinds: Vec<Kind> = resources.iter().map(|r| Kind::of(&r.name)).collect();
        Ok(Allocation {
            columns_only: kinds.iter().all(|k| !matches!(k, Kind::Scalar(_))),
            kinds,
            weights: resources.iter().map(|r| r.weight).collect(),
            use_requested,
        })
    }

    /// The pod's requests as PreScore stored them under `key`, or computed now when
    /// PreScore did not run (Score may be called on its own).
    fn requests_in<'a>(
        &self,
        state: &'a CycleState,
        key: &'static str,
        pod: &PodInfo,
    ) -> Cow<'a, [i64]> {
        match state.read::<PodRequests>(key) {
            Some(r) => Cow::Borrowed(&r.0),
            None => Cow::Owned(self.pod_requests(pod)),
        }
    }

    /// The pod's request per configured resource (upstream's
    /// `calculatePodResourceRequestList`).
    fn pod_requests(&self, pod: &PodInfo) -> Vec<i64> {
        self.kinds
            .iter()
            .map(|k| match k {
                Kind::Cpu if self.use_requested => pod.requests.milli_cpu,
                Kind::Cpu => pod.non_zero_milli_cpu,
                Kind::Memory if self.use_requested => pod.requests.memory,
                Kind::Memory => pod.non_zero_memory,
                Kind::EphemeralStorage => pod.requests.ephemeral_storage,
                Kind::Scalar(n) => pod.requests.scalar(n),
                Kind::Untracked => 0,
            })
            .collect()
    }

    /// `(allocatable, requested + pod)` per resource into the two arrays, 0/0 for
    /// resources left out (upstream's `calculateResourceAllocatableRequest`).
    fn fill_node(&self, node: &NodeInfo, pod_req: &[i64], alloc: &mut [i64], req: &mut [i64]) {
        for (i, k) in self.kinds.iter().enumerate() {
            let (a, r) = match k {
                Kind::Cpu if self.use_requested => {
                    (node.allocatable.milli_cpu, node.requested.milli_cpu)
                }
                Kind::Cpu => (node.allocatable.milli_cpu, node.non_zero_milli_cpu),
                Kind::Memory if self.use_requested => {
                    (node.allocatable.memory, node.requested.memory)
                }
                Kind::Memory => (node.allocatable.memory, node.non_zero_memory),
                Kind::EphemeralStorage => (
                    node.allocatable.ephemeral_storage,
                    node.requested.ephemeral_storage,
                ),
                Kind::Scalar(_) if pod_req[i] == 0 => (0, 0),
                Kind::Scalar(n) => (node.allocatable.scalar(n), node.requested.scalar(n)),
                Kind::Untracked => (0, 0),
            };
            alloc[i] = a;
            req[i] = if a == 0 { 0 } else { r + pod_req[i] };
        }
    }

    /// The (allocatable, requested) columns each resource reads; empty slices for
    /// resources left out. Only when `columns_only`.
    fn column_sources<'c>(
        &self,
        c: &'c NodeColumns,
    ) -> [(&'c [i64], &'c [i64]); MAX_SCORING_RESOURCES] {
        let mut src: [(&[i64], &[i64]); MAX_SCORING_RESOURCES] =
            [(&[], &[]); MAX_SCORING_RESOURCES];
        for (i, k) in self.kinds.iter().enumerate() {
            src[i] = match k {
                Kind::Cpu if self.use_requested => (&c.alloc_milli_cpu, &c.req_milli_cpu),
                Kind::Cpu => (&c.alloc_milli_cpu, &c.non_zero_milli_cpu),
                Kind::Memory if self.use_requested => (&c.alloc_memory, &c.req_memory),
                Kind::Memory => (&c.alloc_memory, &c.non_zero_memory),
                Kind::EphemeralStorage => (&c.alloc_ephemeral_storage, &c.req_ephemeral_storage),
                Kind::Scalar(_) | Kind::Untracked => (&[], &[]),
            };
        }
        src
    }

    /// Scores `nodes` with `scorer(requested, allocatable)`.
    fn score_batch(
        &self,
        snap: &Snapshot,
        pod_req: &[i64],
        nodes: &[u32],
        out: &mut [i64],
        scorer: impl Fn(&[i64], &[i64]) -> i64,
    ) {
        let n = self.kinds.len();
        let mut alloc = [0_i64; MAX_SCORING_RESOURCES];
        let mut req = [0_i64; MAX_SCORING_RESOURCES];
        if !self.columns_only {
            for (slot, &idx) in out.iter_mut().zip(nodes) {
                self.fill_node(snap.node(idx), pod_req, &mut alloc[..n], &mut req[..n]);
                *slot = scorer(&req[..n], &alloc[..n]);
            }
            return;
        }
        let src = self.column_sources(snap.columns());
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            let idx = idx as usize;
            for i in 0..n {
                let (a_col, r_col) = src[i];
                let a = a_col.get(idx).copied().unwrap_or(0);
                alloc[i] = a;
                req[i] = if a == 0 { 0 } else { r_col[idx] + pod_req[i] };
            }
            *slot = scorer(&req[..n], &alloc[..n]);
        }
    }

    fn score_node(
        &self,
        node: &NodeInfo,
        pod_req: &[i64],
        scorer: impl Fn(&[i64], &[i64]) -> i64,
    ) -> i64 {
        let n = self.kinds.len();
        let mut alloc = [0_i64; MAX_SCORING_RESOURCES];
        let mut req = [0_i64; MAX_SCORING_RESOURCES];
        self.fill_node(node, pod_req, &mut alloc[..n], &mut req[..n]);
        scorer(&req[..n], &alloc[..n])
    }
}

fn invalid(plugin: &str, message: String) -> ConfigError {
    ConfigError::InvalidArgs {
        plugin: plugin.to_owned(),
        message,
    }
}

/// Upstream's `leastRequestedScore`.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// Upstream's `mostRequestedScore`.
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

fn weighted(weights: &[i64], requested: &[i64], alloc: &[i64], f: impl Fn(i64, i64) -> i64) -> i64 {
    let (mut node_score, mut weight_sum) = (0, 0);
    for i in 0..requested.len() {
        if alloc[i] == 0 {
            continue;
        }
        node_score += f(requested[i], alloc[i]) * weights[i];
        weight_sum += weights[i];
    }
    if weight_sum == 0 {
        0
    } else {
        node_score / weight_sum
    }
}

/// Upstream's `helper.BuildBrokenLinearFunction` over points with scores already
/// scaled to 0..=100.
pub fn broken_linear(shape: &[ShapePoint], p: i64) -> i64 {
    for (i, pt) in shape.iter().enumerate() {
        if p <= pt.utilization {
            if i == 0 {
                return pt.score;
            }
            let prev = shape[i - 1];
            return prev.score
                + (pt.score - prev.score) * (p - prev.utilization)
                    / (pt.utilization - prev.utilization);
        }
    }
    shape.last().map_or(0, |pt| pt.score)
}

fn ratio_score(shape: &[ShapePoint], weights: &[i64], requested: &[i64], alloc: &[i64]) -> i64 {
    let (mut node_score, mut weight_sum) = (0_i64, 0_i64);
    for i in 0..requested.len() {
        if alloc[i] == 0 {
            continue;
        }
        let utilization = if requested[i] > alloc[i] {
            MAX_UTILIZATION
        } else {
            requested[i] * MAX_UTILIZATION / alloc[i]
        };
        let s = broken_linear(shape, utilization);
        if s > 0 {
            node_score += s * weights[i];
            weight_sum += weights[i];
        }
    }
    if weight_sum == 0 {
        return 0;
    }
    (node_score as f64 / weight_sum as f64).round() as i64
}

/// Upstream's `balancedResourceScorer`.
pub fn balanced_score(requested: &[i64], alloc: &[i64]) -> i64 {
    let mut fractions = [0.0_f64; MAX_SCORING_RESOURCES];
    let (mut n, mut total) = (0, 0.0);
    for i in 0..requested.len() {
        if alloc[i] == 0 {
            continue;
        }
        let f = (requested[i] as f64 / alloc[i] as f64).min(1.0);
        total += f;
        fractions[n] = f;
        n += 1;
    }
    let std = match n {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = total / n as f64;
            let sum: f64 = fractions[..n].iter().map(|f| (f - mean) * (f - mean)).sum();
            (sum / n as f64).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[derive(Clone, Debug)]
enum Scorer {
    Least,
    Most,
    Ratio(Vec<ShapePoint>),
}

/// NodeResourcesFit. See the module docs.
#[derive(Debug)]
pub struct Fit {
    ignored_resources: Vec<String>,
    ignored_groups: Vec<String>,
    allocation: Allocation,
    scorer: Scorer,
}

impl Fit {
    pub fn new(args: &FitArgs) -> Result<Fit, ConfigError> {
        let strategy = args.scoring_strategy.clone().unwrap_or_default();
        let scorer = match strategy.strategy {
            StrategyType::LeastAllocated => Scorer::Least,
            StrategyType::MostAllocated => Scorer::Most,
            StrategyType::RequestedToCapacityRatio => {
                let shape = strategy
                    .requested_to_capacity_ratio
                    .as_ref()
                    .map(|r| r.shape.clone())
                    .unwrap_or_default();
                Scorer::Ratio(validate_shape(&shape)?)
            }
        };
        Ok(Fit {
            ignored_resources: args.ignored_resources.clone(),
            ignored_groups: args.ignored_resource_groups.clone(),
            allocation: Allocation::new(FIT_NAME, &strategy.resources, false, true)?,
            scorer,
        })
    }

    fn ignored(&self, name: &str) -> bool {
        is_extended_resource_name(name)
            && (self.ignored_resources.iter().any(|r| r == name)
                || self
                    .ignored_groups
                    .iter()
                    .any(|g| name.split('/').next() == Some(g.as_str())))
    }

    fn score_fn(&self) -> impl Fn(&[i64], &[i64]) -> i64 + '_ {
        move |req: &[i64], alloc: &[i64]| match &self.scorer {
            Scorer::Least => weighted(&self.allocation.weights, req, alloc, least_requested_score),
            Scorer::Most => weighted(&self.allocation.weights, req, alloc, most_requested_score),
            Scorer::Ratio(shape) => ratio_score(shape, &self.allocation.weights, req, alloc),
        }
    }
}

/// Checks shape points as upstream's validation does and scales scores to 0..=100.
fn validate_shape(shape: &[ShapePoint]) -> Result<Vec<ShapePoint>, ConfigError> {
    if shape.is_empty() {
        return Err(invalid(
            FIT_NAME,
            "requestedToCapacityRatio.shape: at least one point".into(),
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=MAX_UTILIZATION).contains(&p.utilization)
            || !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&p.score)
        {
            return Err(invalid(
                FIT_NAME,
                format!("shape point {i} out of range: {p:?}"),
            ));
        }
        if i > 0 && p.utilization <= shape[i - 1].utilization {
            return Err(invalid(
                FIT_NAME,
                "shape utilization values must be sorted in increasing order".into(),
            ));
        }
    }
    Ok(shape
        .iter()
        .map(|p| ShapePoint {
            utilization: p.utilization,
            score: p.score * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
        })
        .collect())
}

impl Plugin for Fit {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        FIT_NAME
    }
}

impl PreFilterPlugin for Fit {
    /// The pod's requests are precomputed in `PodInfo`; nothing to do.
    fn pre_filter(
        &self,
        _: &mut CycleState,
        _: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        (None, Status::success())
    }
}

/// The numbers `fits_request` compares for one node.
struct NodeFitView {
    n_pods: i64,
    allowed_pods: i64,
    free_milli_cpu: i64,
    free_memory: i64,
    free_ephemeral: i64,
}

impl Fit {
    /// Upstream's `fitsRequest`: the reasons the pod does not fit, empty when it fits.
    /// For each of the pod's scalar requests: the reason a node lacking it gets, or
    /// None when the request is zero or ignored. Computed once per pod and batch.
    fn scalar_reasons(&self, pod: &PodInfo) -> Vec<Option<std::borrow::Cow<'static, str>>> {
        pod.requests
            .scalar
            .iter()
            .map(|(name, amount)| {
                (*amount != 0 && !self.ignored(name)).then(|| insufficient_reason(name))
            })
            .collect()
    }

    /// Why `pod` does not fit the node `v` describes; `free_scalar(k, name)` is the
    /// node's free amount of the pod's `k`-th scalar request.
    fn insufficient(
        &self,
        pod: &PodInfo,
        v: &NodeFitView,
        mut free_scalar: impl FnMut(usize, &str) -> i64,
        scalar_reasons: &[Option<std::borrow::Cow<'static, str>>],
    ) -> Vec<std::borrow::Cow<'static, str>> {
        let mut reasons = Vec::new();
        if v.n_pods + 1 > v.allowed_pods {
            reasons.push("Too many pods".into());
        }
        let r = &pod.requests;
        if r.is_empty_request() {
            return reasons;
        }
        if r.milli_cpu > 0 && r.milli_cpu > v.free_milli_cpu {
            reasons.push("Insufficient cpu".into());
        }
        if r.memory > 0 && r.memory > v.free_memory {
            reasons.push("Insufficient memory".into());
        }
        if r.ephemeral_storage > 0 && r.ephemeral_storage > v.free_ephemeral {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (k, ((name, amount), reason)) in r.scalar.iter().zip(scalar_reasons).enumerate() {
            let Some(reason) = reason else {
                continue;
            };
            if *amount > free_scalar(k, name) {
                reasons.push(reason.clone());
            }
        }
        reasons
    }
}

/// Where Fit's batch filter reads a node's free amount of a scalar resource.
#[derive(Clone, Copy)]
enum ScalarSource {
    Gpus,
    GpuMilli,
    ByName,
}

/// Most reason strings kept for the process; past it, reasons are allocated per use.
const MAX_INTERNED_REASONS: usize = 1024;

/// `Insufficient <name>` for a scalar resource. A cluster has few resource names, so
/// each reason is allocated once for the process and then shared: a cycle in which
/// every node lacks a GPU allocates no strings for it.
fn insufficient_reason(name: &str) -> std::borrow::Cow<'static, str> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static REASONS: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut reasons = REASONS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(r) = reasons.get(name) {
        return std::borrow::Cow::Borrowed(r);
    }
    let reason = format!("Insufficient {name}");
    if reasons.len() >= MAX_INTERNED_REASONS {
        return reason.into();
    }
    // Leaked on purpose: at most MAX_INTERNED_REASONS short strings for the process.
    let leaked: &'static str = Box::leak(reason.into_boxed_str());
    reasons.insert(name.to_owned(), leaked);
    std::borrow::Cow::Borrowed(leaked)
}

fn fit_status(reasons: Vec<std::borrow::Cow<'static, str>>) -> Status {
    if reasons.is_empty() {
        Status::success()
    } else {
        Status::with_reasons(Code::Unschedulable, reasons)
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let v = NodeFitView {
            n_pods: node.pods.len() as i64,
            allowed_pods: node.allocatable.allowed_pod_number,
            free_milli_cpu: node.allocatable.milli_cpu - node.requested.milli_cpu,
            free_memory: node.allocatable.memory - node.requested.memory,
            free_ephemeral: node.allocatable.ephemeral_storage - node.requested.ephemeral_storage,
        };
        let free =
            |_: usize, name: &str| node.allocatable.scalar(name) - node.requested.scalar(name);
        fit_status(self.insufficient(pod, &v, free, &self.scalar_reasons(pod)))
    }

    fn filter_batch(
        &self,
        _: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        use crate::plugins::gpu_device::{GPU_MILLI_RESOURCE, GPU_RESOURCE};
        let c = snap.columns();
        let scalar_reasons = self.scalar_reasons(pod);
        // Where each scalar request's free amount is read: a GPU column, or the
        // node's resource list.
        let sources: Vec<ScalarSource> = pod
            .requests
            .scalar
            .iter()
            .map(|(name, _)| match name.as_str() {
                GPU_RESOURCE => ScalarSource::Gpus,
                GPU_MILLI_RESOURCE => ScalarSource::GpuMilli,
                _ => ScalarSource::ByName,
            })
            .collect();
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            if slot.is_some() {
                continue;
            }
            let i = idx as usize;
            let v = NodeFitView {
                n_pods: c.n_pods[i],
                allowed_pods: c.allowed_pods[i],
                free_milli_cpu: c.alloc_milli_cpu[i] - c.req_milli_cpu[i],
                free_memory: c.alloc_memory[i] - c.req_memory[i],
                free_ephemeral: c.alloc_ephemeral_storage[i] - c.req_ephemeral_storage[i],
            };
            let free = |k: usize, name: &str| match sources[k] {
                ScalarSource::Gpus => c.free_gpus[i],
                ScalarSource::GpuMilli => c.free_gpu_milli[i],
                ScalarSource::ByName => {
                    let node = snap.node(idx);
                    node.allocatable.scalar(name) - node.requested.scalar(name)
                }
            };
            let reasons = self.insufficient(pod, &v, free, &scalar_reasons);
            if !reasons.is_empty() {
                *slot = Some(fit_status(reasons).with_plugin(FIT_NAME));
            }
        }
    }
}

struct PodRequests(Vec<i64>);

impl PreScorePlugin for Fit {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &Snapshot, _: &[u32]) -> Status {
        state.write(
            FIT_PRE_SCORE_KEY,
            PodRequests(self.allocation.pod_requests(pod)),
        );
        Status::success()
    }
}

impl ScorePlugin for Fit {
    fn normalization(&self) -> Normalization {
        Normalization::Identity
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let requests = self.allocation.requests_in(state, FIT_PRE_SCORE_KEY, pod);
        let req = &*requests;
        Ok(self.allocation.score_node(node, req, self.score_fn()))
    }

    fn score_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let requests = self.allocation.requests_in(state, FIT_PRE_SCORE_KEY, pod);
        let req = &*requests;
        // One match per batch, so each strategy's loop is monomorphised.
        let (a, w) = (&self.allocation, &self.allocation.weights);
        match &self.scorer {
            Scorer::Least => a.score_batch(snap, req, nodes, out, |r, al| {
                weighted(w, r, al, least_requested_score)
            }),
            Scorer::Most => a.score_batch(snap, req, nodes, out, |r, al| {
                weighted(w, r, al, most_requested_score)
            }),
            Scorer::Ratio(shape) => {
                a.score_batch(snap, req, nodes, out, |r, al| ratio_score(shape, w, r, al))
            }
        }
        Ok(())
    }
}

/// NodeResourcesBalancedAllocation. See the module docs.
#[derive(Debug)]
pub struct BalancedAllocation {
    allocation: Allocation,
}

impl BalancedAllocation {
    pub fn new(args: &BalancedAllocationArgs) -> Result<BalancedAllocation, ConfigError> {
        Ok(BalancedAllocation {
            allocation: Allocation::new(BALANCED_NAME, &args.resources, true, false)?,
        })
    }
}

impl Plugin for BalancedAllocation {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        BALANCED_NAME
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &Snapshot, _: &[u32]) -> Status {
        let req = self.allocation.pod_requests(pod);
        if req.iter().all(|&r| r == 0) {
            return Status::skip();
        }
        state.write(BALANCED_PRE_SCORE_KEY, PodRequests(req));
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn normalization(&self) -> Normalization {
        Normalization::Identity
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let requests = self
            .allocation
            .requests_in(state, BALANCED_PRE_SCORE_KEY, pod);
        let req = &*requests;
        Ok(self.allocation.score_node(node, req, balanced_score))
    }

    fn score_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let requests = self
            .allocation
            .requests_in(state, BALANCED_PRE_SCORE_KEY, pod);
        let req = &*requests;
        self.allocation
            .score_batch(snap, req, nodes, out, balanced_score);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
