//! Placement quality of a simulated run, computed from the simulator's account of the
//! cluster ([`ClusterState`]), never from times: the same placements give the same
//! figures, bit for bit.
//!
//! - Allocation: requested / capacity over live nodes, for CPU, memory and GPU.
//! - Load spread: the coefficient of variation (stddev / mean) of per-node CPU
//!   allocation, and its extremes.
//! - GPU fragmentation, as the FGD paper (Weng et al., ATC'23, section 3) defines it:
//!   for node `n` and task class `m` of the workload's mix `M` (classes by request,
//!   with their frequencies `p_m`), `F_n(m)` is the free GPU capacity of `n` that `m`
//!   cannot use: all of it if `m` cannot run on `n` at all (CPU, memory, GPU model,
//!   no device with room) or requests no GPU; otherwise the free capacity of the
//!   devices with less room than `m` needs per device. The cluster's fragmentation is
//!   `sum_n sum_m p_m F_n(m)`, reported as a fraction of GPU capacity
//!   (`gpu_frag_frac`) and of unallocated GPU (`gpu_frag_of_unallocated_frac`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{GpuRequest, NodeSpec, PodSpec};
use crate::sim::cluster::{ClusterState, assign_devices, per_device_milli};

/// Bound on the task classes of a fragmentation mix (the most frequent are kept).
pub const MAX_TASK_CLASSES: usize = 128;

/// How many pods went where. The driver checks that these add up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pods_initial: usize,
    pub pods_initial_placed: usize,
    pub pods_initial_unschedulable: usize,
    /// Pods given to the algorithm (measured or not).
    pub pods_to_schedule: usize,
    pub pods_placed: usize,
    /// No node fits (retried on cluster events in a later slice; counted now).
    pub pods_unschedulable: usize,
    /// Of the unschedulable, those PostFilter (preemption) nominated a node for.
    pub pods_preemption_nominated: usize,
    /// Placed by the scheduler on a node where no GPU device had room (the device
    /// plugin would refuse them); forgotten, not placed.
    pub pods_failed_gpu_device: usize,
    /// A plugin returned an error for these.
    pub pods_scheduler_error: usize,
    /// Of `pods_to_schedule`, those whose latency is measured.
    pub pods_measured: usize,
    pub pods_measured_placed: usize,
    pub pods_deleted_by_churn: usize,
    pub pods_evicted_by_churn: usize,
    pub nodes_recreated_by_churn: usize,
    pub pods_running_end: usize,
    pub nodes_end: usize,
}

impl Counts {
    /// The identities every run must satisfy; the first that fails, as a message.
    pub fn check(&self) -> Result<(), String> {
        let c = self;
        let checks = [
            (
                c.pods_initial == c.pods_initial_placed + c.pods_initial_unschedulable,
                "initial = placed + unschedulable",
            ),
            (
                c.pods_to_schedule
                    == c.pods_placed
                        + c.pods_unschedulable
                        + c.pods_failed_gpu_device
                        + c.pods_scheduler_error,
                "to_schedule = placed + unschedulable + failed_gpu_device + scheduler_error",
            ),
            (
                c.pods_preemption_nominated <= c.pods_unschedulable,
                "nominated <= unschedulable",
            ),
            (
                c.pods_measured <= c.pods_to_schedule && c.pods_measured_placed <= c.pods_placed,
                "measured within scheduled",
            ),
            (
                c.pods_running_end + c.pods_deleted_by_churn + c.pods_evicted_by_churn
                    == c.pods_initial_placed + c.pods_placed,
                "running + deleted + evicted = initial placed + placed",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("counts do not add up ({what}): {c:?}")),
            None => Ok(()),
        }
    }
}

/// Cluster-wide placement quality at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Quality {
    pub cpu_alloc_frac: f64,
    pub memory_alloc_frac: f64,
    /// Load spread: stddev / mean of per-node CPU allocation (0 = perfectly even).
    pub cpu_alloc_cv: f64,
    pub cpu_alloc_node_max_frac: f64,
    pub cpu_alloc_node_min_frac: f64,
    pub nodes_used: usize,
    pub pods_per_node_max: u32,
    /// The cluster when the first measured pod failed, if one did.
    pub first_failure: Option<FirstFailure>,
    /// Only when the cluster has GPUs.
    pub gpu: Option<GpuQuality>,
}

/// "Allocation rate when the first pod fails".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FirstFailure {
    pub pod: String,
    /// Measured pods given to the algorithm up to and including this one.
    pub pods_arrived: usize,
    pub cpu_alloc_frac: f64,
    pub memory_alloc_frac: f64,
    pub gpu_alloc_frac: Option<f64>,
    /// GPU requested by the pods arrived so far, over capacity.
    pub arrived_gpu_frac: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuQuality {
    pub gpu_capacity_milli: u64,
    pub gpu_alloc_frac: f64,
    pub unallocated_gpu_frac: f64,
    pub gpu_frag_frac: f64,
    pub gpu_frag_of_unallocated_frac: f64,
}

/// One point of quality over arrived load (the FGD paper's x axis).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub arrived_gpu_frac: f64,
    pub pods_arrived: usize,
    pub pods_failed: usize,
    pub gpu_alloc_frac: f64,
    pub unallocated_gpu_frac: f64,
    pub gpu_frag_frac: f64,
}

/// A task class of the fragmentation mix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TaskClass {
    cpu_milli: u64,
    memory_mib: u64,
    gpu: (u8, u32),
    gpu_models: Vec<String>,
}

impl TaskClass {
    fn gpu(&self) -> GpuRequest {
        match self.gpu {
            (0, _) => GpuRequest::None,
            (1, n) => GpuRequest::Whole(n),
            (_, m) => GpuRequest::Fraction(m),
        }
    }
}

/// The workload's task classes and their frequencies (the FGD paper's `M`).
#[derive(Clone, Debug, Default)]
pub struct TaskMix {
    classes: Vec<(TaskClass, f64)>,
}

impl TaskMix {
    /// The [`MAX_TASK_CLASSES`] most frequent request classes of `pods`.
    pub fn of<'a>(pods: impl Iterator<Item = &'a PodSpec>) -> TaskMix {
        let mut counts: BTreeMap<TaskClass, u64> = BTreeMap::new();
        for p in pods {
            let gpu = match p.gpu {
                GpuRequest::None => (0, 0),
                GpuRequest::Whole(n) => (1, n),
                GpuRequest::Fraction(m) => (2, m),
            };
            let class = TaskClass {
                cpu_milli: p.cpu_milli,
                memory_mib: p.memory_mib,
                gpu,
                gpu_models: p.gpu_models.clone(),
            };
            *counts.entry(class).or_default() += 1;
        }
        let mut ranked: Vec<(TaskClass, u64)> = counts.into_iter().collect();
        // Most frequent first; the class order breaks ties, so the mix is deterministic.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(MAX_TASK_CLASSES);
        let total: u64 = ranked.iter().map(|c| c.1).sum();
        TaskMix {
            classes: ranked
                .into_iter()
                .map(|(c, n)| (c, n as f64 / total.max(1) as f64))
                .collect(),
        }
    }
}

/// Sums over live nodes: (cpu used, cpu cap, mem used, mem cap, gpu used, gpu cap).
fn totals(state: &ClusterState, specs: &[NodeSpec]) -> [u64; 6] {
    let mut t = [0u64; 6];
    for n in state.nodes.iter().filter(|n| n.alive) {
        let spec = &specs[n.spec_idx as usize];
        let gpu_cap = spec.gpu_milli_capacity();
        let gpu_free: u64 = n.gpu_free_milli.iter().map(|&f| u64::from(f)).sum();
        t[0] += n.cpu_milli_used;
        t[1] += spec.cpu_milli;
        t[2] += n.memory_mib_used;
        t[3] += spec.memory_mib;
        t[4] += gpu_cap - gpu_free;
        t[5] += gpu_cap;
    }
    t
}

fn frac(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// GPU allocated over capacity, or `None` without GPUs.
pub fn gpu_alloc_frac(state: &ClusterState, specs: &[NodeSpec]) -> Option<f64> {
    let t = totals(state, specs);
    (t[5] > 0).then(|| frac(t[4], t[5]))
}

/// Cluster CPU and memory allocation fractions.
pub fn cpu_memory_alloc_frac(state: &ClusterState, specs: &[NodeSpec]) -> (f64, f64) {
    let t = totals(state, specs);
    (frac(t[0], t[1]), frac(t[2], t[3]))
}

/// GPU fragmentation in milli-GPU (see the module docs).
pub fn gpu_frag_milli(state: &ClusterState, specs: &[NodeSpec], mix: &TaskMix) -> f64 {
    let mut total = 0.0;
    for n in state
        .nodes
        .iter()
        .filter(|n| n.alive && !n.gpu_free_milli.is_empty())
    {
        let spec = &specs[n.spec_idx as usize];
        let free: u32 = n.gpu_free_milli.iter().sum();
        if free == 0 {
            continue;
        }
        for (class, p) in &mix.classes {
            total += p * f64::from(node_frag_milli(n, spec, class, free));
        }
    }
    total
}

fn node_frag_milli(
    n: &crate::sim::cluster::NodeState,
    spec: &NodeSpec,
    class: &TaskClass,
    free: u32,
) -> u32 {
    let gpu = class.gpu();
    if gpu == GpuRequest::None {
        return free;
    }
    let model_ok = class.gpu_models.is_empty()
        || spec
            .gpu_model
            .as_ref()
            .is_some_and(|m| class.gpu_models.contains(m));
    let can_run = model_ok
        && n.cpu_milli_used + class.cpu_milli <= spec.cpu_milli
        && n.memory_mib_used + class.memory_mib <= spec.memory_mib
        && n.n_pods < spec.max_pods
        && assign_devices(&n.gpu_free_milli, gpu).is_some();
    if !can_run {
        return free;
    }
    let need = per_device_milli(gpu);
    n.gpu_free_milli.iter().filter(|&&f| f < need).sum()
}

/// Quality at the end of a run.
pub fn quality(
    state: &ClusterState,
    specs: &[NodeSpec],
    mix: &TaskMix,
    first_failure: Option<FirstFailure>,
) -> Quality {
    let (cpu_alloc_frac, memory_alloc_frac) = cpu_memory_alloc_frac(state, specs);
    let per_node: Vec<f64> = state
        .nodes
        .iter()
        .filter(|n| n.alive)
        .map(|n| frac(n.cpu_milli_used, specs[n.spec_idx as usize].cpu_milli))
        .collect();
    let mean = per_node.iter().sum::<f64>() / per_node.len().max(1) as f64;
    let var = per_node
        .iter()
        .map(|x| (x - mean) * (x - mean))
        .sum::<f64>()
        / per_node.len().max(1) as f64;
    let alive = state.nodes.iter().filter(|n| n.alive);
    Quality {
        cpu_alloc_frac,
        memory_alloc_frac,
        cpu_alloc_cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        cpu_alloc_node_max_frac: per_node.iter().copied().fold(0.0, f64::max),
        cpu_alloc_node_min_frac: per_node.iter().copied().reduce(f64::min).unwrap_or(0.0),
        nodes_used: alive.clone().filter(|n| n.n_pods > 0).count(),
        pods_per_node_max: alive.map(|n| n.n_pods).max().unwrap_or(0),
        first_failure,
        gpu: gpu_quality(state, specs, mix),
    }
}

/// GPU figures, or `None` when the cluster has no GPUs.
pub fn gpu_quality(state: &ClusterState, specs: &[NodeSpec], mix: &TaskMix) -> Option<GpuQuality> {
    let t = totals(state, specs);
    if t[5] == 0 {
        return None;
    }
    let frag = gpu_frag_milli(state, specs, mix);
    let unallocated = t[5] - t[4];
    Some(GpuQuality {
        gpu_capacity_milli: t[5],
        gpu_alloc_frac: frac(t[4], t[5]),
        unallocated_gpu_frac: frac(unallocated, t[5]),
        gpu_frag_frac: frag / t[5] as f64,
        gpu_frag_of_unallocated_frac: if unallocated == 0 {
            0.0
        } else {
            frag / unallocated as f64
        },
    })
}

/// A curve point now; `arrived_gpu_milli` is what the pods arrived so far requested.
pub fn curve_point(
    state: &ClusterState,
    specs: &[NodeSpec],
    mix: &TaskMix,
    arrived_gpu_milli: u64,
    pods_arrived: usize,
    pods_failed: usize,
) -> Option<CurvePoint> {
    let g = gpu_quality(state, specs, mix)?;
    Some(CurvePoint {
        arrived_gpu_frac: arrived_gpu_milli as f64 / g.gpu_capacity_milli as f64,
        pods_arrived,
        pods_failed,
        gpu_alloc_frac: g.gpu_alloc_frac,
        unallocated_gpu_frac: g.unallocated_gpu_frac,
        gpu_frag_frac: g.gpu_frag_frac,
    })
}

/// The process's peak resident set (VmHWM) in bytes, where Linux reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::workload::Workload;

    /// FGD paper, section 3 (Fig. 5's example, in our units): a node with 2 GPUs, one
    /// half used. A 0.6-GPU task cannot use the 0.5 left on device 0: fragment 500.
    /// A whole-GPU task cannot either: 500. A CPU-only task: all 1500 free.
    #[test]
    fn fragmentation_of_one_node_per_task_class() {
        let mut node = NodeSpec::new("n", 16_000, 65_536);
        node.gpus = 2;
        let workload = Workload {
            nodes: vec![node.clone()],
            groups: Vec::new(),
            pods: Vec::new(),
            n_initial: 0,
            schedule: Vec::new(),
            has_gpus: true,
            curve_step_frac: None,
        };
        let mut state = ClusterState::new(&workload);
        state.nodes[0].gpu_free_milli = vec![500, 1000];
        let pod = |gpu| {
            let mut p = PodSpec::new("p", 1000, 1024);
            p.gpu = gpu;
            p
        };
        let cases = [
            (GpuRequest::Fraction(600), 500.0),
            (GpuRequest::Fraction(400), 0.0),
            (GpuRequest::Whole(1), 500.0),
            (GpuRequest::Whole(2), 1500.0),
            (GpuRequest::None, 1500.0),
        ];
        for (gpu, want) in cases {
            let mix = TaskMix::of([pod(gpu)].iter());
            let got = gpu_frag_milli(&state, &workload.nodes, &mix);
            assert_eq!(got, want, "{gpu:?}");
        }
        let g = gpu_quality(&state, &workload.nodes, &TaskMix::default()).unwrap();
        assert_eq!((g.gpu_capacity_milli, g.gpu_alloc_frac), (2000, 0.25));
    }
}
