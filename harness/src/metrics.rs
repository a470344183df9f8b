//! Placement quality of a simulated run, computed from the simulator's account of the
//! cluster ([`ClusterState`]), never from times: the same placements give the same
//! figures, bit for bit.
//!
//! - Allocation: requested / capacity over live nodes, for CPU, memory and GPU.
//! - Load spread: the coefficient of variation (stddev / mean) of per-node CPU
//!   allocation, and its extremes.
//! - GPU fragmentation, as the FGD paper (Weng et al., ATC'23, section 3) defines it
//!   ([`bosun_sched_algos::fragmentation`], shared with the FGD score plugin): for node
//!   `n` and task class `m` of the workload's mix `M` (classes by request, with their
//!   frequencies `p_m`), `F_n(m)` is the free GPU capacity of `n` that `m` cannot use:
//!   all of it if `m` cannot run on `n` at all (CPU, memory, pod count, GPU model, no
//!   device with room) or requests no GPU; otherwise the free capacity of the devices
//!   with less room than `m` needs per device. The cluster's fragmentation is
//!   `sum_n sum_m p_m F_n(m)`, reported as a fraction of GPU capacity
//!   (`gpu_frag_frac`) and of unallocated GPU (`gpu_frag_of_unallocated_frac`).

use bosun_sched_algos::fragmentation::{NodeGpuView, TaskClass};
use bosun_sched_algos::plugins::gpu_device::GpuDemand;
use serde::Serialize;

use crate::model::{GpuRequest, NodeSpec, PodSpec};
use crate::sim::cluster::ClusterState;

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

/// The task mix `M` of the fragmentation figures.
pub use bosun_sched_algos::fragmentation::{MAX_TASK_CLASSES, TaskMix};

/// The mix of `pods`: one class per distinct request (CPU, memory, GPU demand, GPU
/// models) weighted by its pod count, the [`MAX_TASK_CLASSES`] most frequent kept.
pub fn task_mix<'a>(pods: impl Iterator<Item = &'a PodSpec>) -> TaskMix {
    TaskMix::from_weights(pods.map(|p| (task_class(p), 1)))
}

/// A pod's task class, in the scheduler's units (memory in bytes).
pub fn task_class(p: &PodSpec) -> TaskClass {
    TaskClass {
        milli_cpu: p.cpu_milli as i64,
        memory: (p.memory_mib << 20) as i64,
        gpu: gpu_demand(p.gpu),
        gpu_models: p.gpu_models.clone(),
    }
}

/// The scheduler's name for a GPU request.
pub fn gpu_demand(gpu: GpuRequest) -> GpuDemand {
    match gpu {
        GpuRequest::None => GpuDemand::None,
        GpuRequest::Whole(n) => GpuDemand::Whole(n),
        GpuRequest::Fraction(m) => GpuDemand::Fraction(m),
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
        let view = NodeGpuView {
            free_milli_cpu: spec.cpu_milli as i64 - n.cpu_milli_used as i64,
            free_memory: ((spec.memory_mib as i64) - (n.memory_mib_used as i64)) << 20,
            pod_room: n.n_pods < spec.max_pods,
            device_free_milli: &n.gpu_free_milli,
        };
        total += mix.frag_milli(&view, spec.gpu_model.as_deref());
    }
    total
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

/// CPU time (user and system, every thread) the process has used so far, in
/// milliseconds, where Linux reports it (`/proc/self/stat`, in 1/100 s ticks).
pub fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at `state`, the
    // third; utime and stime are the 14th and 15th.
    let mut fields = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((utime + stime) as f64 * 10.0)
}

/// CPU time the hypervisor ran something else while this machine's CPUs had work
/// ("steal", summed over CPUs) since boot, in ms; `None` where `/proc/stat` does not say.
/// On a shared VM this is what turns a steady run's latency tail into stalls.
pub fn machine_steal_ms() -> Option<f64> {
    steal_ms_of(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn steal_ms_of(proc_stat: &str) -> Option<f64> {
    // `cpu  user nice system idle iowait irq softirq steal ...`, in USER_HZ (100) ticks.
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let steal: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(steal as f64 * 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::workload::Workload;

    #[test]
    fn steal_is_the_eighth_counter_of_the_machine_line() {
        let stat = "cpu  6093818 263567 721554 1665024 85289 0 21456 63557 0 0\n\
                    cpu0 3046909 131783 360777 832512 42644 0 10728 31778 0 0\n";
        assert_eq!(steal_ms_of(stat), Some(635_570.0));
        assert_eq!(steal_ms_of("cpu  1 2 3\n"), None);
        assert!(machine_steal_ms().is_some(), "Linux reports /proc/stat");
    }

    #[test]
    fn process_cpu_time_is_read_and_never_goes_back() {
        let before = process_cpu_ms().expect("Linux reports /proc/self/stat");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let after = process_cpu_ms().expect("still there");
        assert!(before >= 0.0 && after >= before, "{before} then {after}");
    }

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
            let mix = task_mix([pod(gpu)].iter());
            let got = gpu_frag_milli(&state, &workload.nodes, &mix);
            assert_eq!(got, want, "{gpu:?}");
        }
        let g = gpu_quality(&state, &workload.nodes, &TaskMix::default()).unwrap();
        assert_eq!((g.gpu_capacity_milli, g.gpu_alloc_frac), (2000, 0.25));
    }
}
