//! FGDScore: Fragmentation Gradient Descent (Weng et al., "Beware of Fragmentation:
//! Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC
//! '23, section 4), as the paper's artifact computes it (its kube-scheduler score
//! plugin `FGDScorePlugin`, in the simulator of alibaba/clusterdata's GPU trace).
//! Bosun-specific; no upstream equivalent.
//!
//! Fragmentation `F_n(M)` of node `n` is measured against the target workload's task
//! mix `M` as [`fragmentation`](crate::fragmentation) defines it. For each feasible
//! node the plugin places the pod hypothetically and computes `F'_n(M)`:
//! - a fraction `f` of a GPU: on each device with room (one device per distinct free
//!   amount, the lowest-indexed), keeping the device with the smallest `F'_n(M)`
//!   (lowest index on ties): the device the policy gives the pod on that node;
//! - `Whole(k)`: the `k` lowest-indexed entirely free devices (free whole devices are
//!   alike to fragmentation);
//! - no GPU: only CPU, memory and the pod count change.
//!
//! `score = floor(100 * sigmoid((F_n(M) - F'_n(M)) / 1000))`, `F` in milli-GPU,
//! `sigmoid(x) = 1 / (1 + e^-x)`: the artifact's normalisation. The node whose
//! fragmentation grows least (the steepest descent) scores highest; 50 is no change,
//! below 50 an increase. A pod requesting nothing scores 100 everywhere, as in the
//! artifact; a GPU pod on a node with no room on its devices (which GpuDeviceFit
//! rejects) scores 0.
//!
//! Reserve records the devices the pod gets on the selected node under
//! [`RESERVED_DEVICES_KEY`], so that the caller pins the pod to them
//! ([`reserved_pod`](crate::schedule::reserved_pod)). The harness's simulation does;
//! the scheduler service does not run Reserve yet (it would have to write the
//! [`GPU_DEVICES_ANNOTATION`](super::gpu_device::GPU_DEVICES_ANNOTATION) before
//! binding), so there the node's own device rule applies.
//!
//! Args (`FGDScoreArgs`): `taskMix`, the classes of `M` with integer weights (pod
//! counts); required and non-empty. The harness derives it from the workload's pods,
//! as the artifact derives its "typical pods" from the trace.

use serde::{Deserialize, Serialize};

use crate::cache::Snapshot;
use crate::fragmentation::{MAX_TASK_CLASSES, NodeGpuView, TaskClass, TaskMix};
use crate::framework::{
    CycleState, MAX_NODE_SCORE, MIN_NODE_SCORE, Plugin, ReservePlugin, ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::plugins::gpu_device::{
    GPU_MILLI_PER_DEVICE, GPU_MODEL_LABEL, GpuDemand, MAX_GPU_DEVICES, RESERVED_DEVICES_KEY,
    ReservedDevices,
};
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::status::Status;

pub const NAME: &str = "FGDScore";

/// One task class of `FGDScoreArgs.taskMix`. GPU: `gpus` whole devices, or a fraction
/// `gpuMilli` of one device (1..=1000), or neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskClassArgs {
    #[serde(default)]
    pub milli_cpu: i64,
    /// Bytes.
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub gpu_milli: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_models: Vec<String>,
    /// Popularity, e.g. a pod count; the class's share is `weight / sum(weight)`.
    pub weight: u64,
}

/// `FGDScoreArgs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FgdArgs {
    pub task_mix: Vec<TaskClassArgs>,
}

impl FgdArgs {
    /// The args describing `mix`.
    pub fn from_mix(mix: &TaskMix) -> FgdArgs {
        let task_mix = mix
            .classes()
            .map(|(c, weight)| {
                let (gpus, gpu_milli) = match c.gpu {
                    GpuDemand::None => (0, 0),
                    GpuDemand::Whole(k) => (k, 0),
                    GpuDemand::Fraction(f) => (0, f),
                };
                TaskClassArgs {
                    milli_cpu: c.milli_cpu,
                    memory: c.memory,
                    gpus,
                    gpu_milli,
                    gpu_models: c.gpu_models.clone(),
                    weight,
                }
            })
            .collect();
        FgdArgs { task_mix }
    }

    /// The mix these args describe, or why they are invalid.
    pub fn to_mix(&self) -> Result<TaskMix, String> {
        if self.task_mix.is_empty() || self.task_mix.len() > MAX_TASK_CLASSES {
            return Err(format!(
                "taskMix needs between 1 and {MAX_TASK_CLASSES} classes"
            ));
        }
        let mut classes = Vec::with_capacity(self.task_mix.len());
        for (i, c) in self.task_mix.iter().enumerate() {
            let gpu = match (c.gpus, c.gpu_milli) {
                (0, 0) => GpuDemand::None,
                (k, 0) => GpuDemand::Whole(k),
                (0, f) if f <= GPU_MILLI_PER_DEVICE => GpuDemand::Fraction(f),
                _ => {
                    return Err(format!(
                        "taskMix[{i}]: give gpus or gpuMilli (1..=1000), not both"
                    ));
                }
            };
            if c.milli_cpu < 0 || c.memory < 0 || c.weight == 0 {
                return Err(format!("taskMix[{i}]: negative request or zero weight"));
            }
            let class = TaskClass {
                milli_cpu: c.milli_cpu,
                memory: c.memory,
                gpu,
                gpu_models: c.gpu_models.clone(),
            };
            classes.push((class, c.weight));
        }
        Ok(TaskMix::from_weights(classes))
    }
}

/// FGDScore. See the module docs.
#[derive(Debug)]
pub struct FgdScore {
    mix: TaskMix,
}

/// Where the pod would go on one node and what that does to fragmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The plugin's score, `0..=100`.
    pub score: i64,
    /// The devices the pod gets (a bit mask; 0 without GPU devices).
    pub devices: u64,
}

impl FgdScore {
    pub fn new(args: &FgdArgs) -> Result<FgdScore, ConfigError> {
        let mix = args.to_mix().map_err(|message| ConfigError::InvalidArgs {
            plugin: NAME.to_owned(),
            message,
        })?;
        Ok(FgdScore { mix })
    }

    pub fn mix(&self) -> &TaskMix {
        &self.mix
    }

    /// The score of `pod` on `node` and the devices it would get there.
    pub fn place(&self, pod: &PodInfo, node: &NodeInfo) -> Placement {
        self.place_demand(pod, GpuDemand::of(&pod.requests), node)
    }

    /// [`place`](FgdScore::place) with the pod's GPU demand worked out.
    fn place_demand(&self, pod: &PodInfo, demand: GpuDemand, node: &NodeInfo) -> Placement {
        if pod.requests.is_empty_request() {
            return Placement {
                score: MAX_NODE_SCORE,
                devices: 0,
            };
        }
        let mut buf = [0u32; MAX_GPU_DEVICES];
        let free = node.gpu_devices.free_milli(&mut buf);
        let allowed = if self.mix.restricts_models() {
            let model = node.labels.get(GPU_MODEL_LABEL).map(String::as_str);
            self.mix.allowed_on(model)
        } else {
            u128::MAX
        };
        let free_cpu = node.allocatable.milli_cpu - node.requested.milli_cpu;
        let free_memory = node.allocatable.memory - node.requested.memory;
        let n_pods = node.pods.len() as i64;
        let allowed_pods = node.allocatable.allowed_pod_number;
        let before = NodeGpuView {
            free_milli_cpu: free_cpu,
            free_memory,
            pod_room: n_pods < allowed_pods,
            device_free_milli: free,
        };
        let before = self.mix.weighted_frag(&before, allowed);
        let after = |free: &[u32]| {
            let view = NodeGpuView {
                free_milli_cpu: free_cpu - pod.requests.milli_cpu,
                free_memory: free_memory - pod.requests.memory,
                pod_room: n_pods + 1 < allowed_pods,
                device_free_milli: free,
            };
            self.mix.weighted_frag(&view, allowed)
        };
        let best = match demand {
            _ if free.is_empty() => Some((after(free), 0)),
            GpuDemand::None => Some((after(free), 0)),
            GpuDemand::Whole(_) => node.gpu_devices.assign(demand).map(|mask| {
                for (d, f) in free.iter_mut().enumerate() {
                    if mask & (1 << d) != 0 {
                        *f = 0;
                    }
                }
                (after(free), mask)
            }),
            GpuDemand::Fraction(m) => best_device(free, m, after),
        };
        match best {
            Some((after, devices)) => Placement {
                score: sigmoid_score(before, after, self.mix.total_weight()),
                devices,
            },
            None => Placement {
                score: MIN_NODE_SCORE,
                devices: 0,
            },
        }
    }
}

/// The device for a fraction `m` with the smallest fragmentation after placing it
/// (lowest index on ties; one device per distinct free amount is tried), as
/// `(weighted fragmentation, device mask)`; `None` when no device has room.
fn best_device(free: &mut [u32], m: u32, after: impl Fn(&[u32]) -> u64) -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64)> = None;
    for d in 0..free.len() {
        let f = free[d];
        if f < m || free[..d].contains(&f) {
            continue;
        }
        free[d] = f - m;
        let frag = after(free);
        free[d] = f;
        if best.is_none_or(|(b, _)| frag < b) {
            best = Some((frag, 1 << d));
        }
    }
    best
}

/// `floor(100 * sigmoid(delta / 1000))` with `delta = (before - after) / total_weight`
/// in milli-GPU.
fn sigmoid_score(before: u64, after: u64, total_weight: u64) -> i64 {
    let delta_milli = (before as f64 - after as f64) / total_weight as f64;
    let s = 1.0 / (1.0 + (-delta_milli / 1000.0).exp());
    ((MAX_NODE_SCORE as f64 * s) as i64).clamp(MIN_NODE_SCORE, MAX_NODE_SCORE)
}

impl Plugin for FgdScore {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl ScorePlugin for FgdScore {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(self.place(pod, node).score)
    }

    fn score_batch(
        &self,
        _: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let demand = GpuDemand::of(&pod.requests);
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            *slot = self.place_demand(pod, demand, snap.node(idx)).score;
        }
        Ok(())
    }
}

impl ReservePlugin for FgdScore {
    /// Records the devices the pod gets on `node`, when it gets any.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let devices = self.place(pod, node).devices;
        if devices != 0 {
            state.write(RESERVED_DEVICES_KEY, ReservedDevices(devices));
        }
        Status::success()
    }

    fn unreserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::gpu_device::{GPU_MILLI_RESOURCE, GPU_RESOURCE, reserved_devices};
    use crate::plugins::testutil::{gpu_pod, node, pod, score_all, snapshot};

    fn gpu_node(name: &str, n_gpus: u32) -> NodeBuilder {
        NodeBuilder::new(name)
            .capacity("32", "128Gi", 110)
            .allocatable(GPU_RESOURCE, &n_gpus.to_string())
            .allocatable(GPU_MILLI_RESOURCE, &(n_gpus * 1000).to_string())
    }

    /// A mix of tasks of 1 CPU / 1 GiB with the given GPU demands and weights.
    fn plugin(mix: &[(GpuDemand, u64)]) -> FgdScore {
        let task_mix = mix
            .iter()
            .map(|&(gpu, weight)| {
                let (gpus, gpu_milli) = match gpu {
                    GpuDemand::None => (0, 0),
                    GpuDemand::Whole(k) => (k, 0),
                    GpuDemand::Fraction(f) => (0, f),
                };
                TaskClassArgs {
                    milli_cpu: 1000,
                    memory: 1 << 30,
                    gpus,
                    gpu_milli,
                    gpu_models: Vec::new(),
                    weight,
                }
            })
            .collect();
        FgdScore::new(&FgdArgs { task_mix }).unwrap()
    }

    use GpuDemand::{Fraction as F, None as N, Whole as W};

    /// Hand-worked scores. Mix M = {0.6 GPU: 1, 1 GPU: 1}. Node a has 2 GPUs, device 0
    /// half used (free [500, 1000]): F = (500 + 500) / 2 = 500.
    /// - A 0.4 pod on device 0 leaves [100, 1000]: F' = (100 + 100) / 2 = 100, delta +400,
    ///   100 * sigmoid(0.4) = 59.87 -> 59. On device 1 it leaves [500, 600]: the 0.6
    ///   class fits device 1 (500 is a fragment), the whole class no longer runs
    ///   (1100): F' = 800, delta -300 -> 42. Device 0 wins: 59, mask 0b01.
    /// - A whole-GPU pod takes device 1: [500, 0], both classes cannot use 500 or cannot
    ///   run: F' = 500, delta 0 -> 50.
    /// - A CPU-only pod changes no device: 50.
    ///
    /// Node b has 1 empty GPU: F = 0 (both classes fit entirely).
    /// - 0.4 leaves [600]: the 0.6 class fits (0), the whole class cannot run (600):
    ///   F' = 300, delta -300 -> 100 * sigmoid(-0.3) = 42.55 -> 42.
    /// - A whole GPU leaves nothing: F' = 0 -> 50.
    #[test]
    fn golden_scores_and_devices() {
        let p = plugin(&[(F(600), 1), (W(1), 1)]);
        let a = node(gpu_node("a", 2).build(), vec![gpu_pod("half", F(500))]);
        let b = node(gpu_node("b", 1).build(), vec![]);
        assert_eq!(a.gpu_devices.used_milli(), [500, 0]);
        let snap = snapshot(vec![a, b]);
        let state = CycleState::new();
        let cases = [
            (F(400), [59, 42], Some(0b01)),
            (W(1), [50, 50], Some(0b10)),
            (N, [50, 50], None),
        ];
        for (demand, want, devices_on_a) in cases {
            let incoming = pod(gpu_pod("incoming", demand));
            let (raw, normalized) = score_all(&p, &state, &incoming, &snap);
            assert_eq!(raw, want, "{demand:?}");
            assert_eq!(normalized, want, "{demand:?}: no normalisation");
            let mut reserved = CycleState::new();
            assert!(
                p.reserve(&mut reserved, &incoming, snap.node(0))
                    .is_success()
            );
            assert_eq!(reserved_devices(&reserved), devices_on_a, "{demand:?}");
        }
    }

    /// Placing a fraction on the fuller device is not always best: with free [600, 300]
    /// and M = {0.3 GPU}, a 0.25 pod on device 1 leaves [600, 50] (F' = 50) but on
    /// device 0 leaves [350, 300] (F' = 0). Best fit would take device 1; FGD takes 0.
    #[test]
    fn picks_the_device_that_fragments_least() {
        let p = plugin(&[(F(300), 1)]);
        let n = node(
            gpu_node("n", 2).build(),
            vec![gpu_pod("x", F(400)), gpu_pod("y", F(700))],
        );
        assert_eq!(n.gpu_devices.used_milli(), [400, 700]);
        let placement = p.place(&pod(gpu_pod("p", F(250))), &n);
        assert_eq!(placement.devices, 0b01);
        // F = 0 (both devices hold 0.3); F' = 0: delta 0 -> 50.
        assert_eq!(placement.score, 50);
        assert_eq!(n.gpu_devices.assign(F(250)), Some(0b10), "best fit differs");
    }

    #[test]
    fn no_room_scores_zero_and_empty_pods_score_max() {
        let p = plugin(&[(F(300), 1)]);
        let full = node(gpu_node("full", 1).build(), vec![gpu_pod("x", W(1))]);
        assert_eq!(p.place(&pod(gpu_pod("p", F(100))), &full).score, 0);
        let empty = pod(PodBuilder::new("empty").build());
        assert_eq!(p.place(&empty, &full).score, 100);
    }

    #[test]
    fn args_round_trip_and_are_checked() {
        let p = plugin(&[(F(300), 3), (W(2), 1), (N, 2)]);
        let args = FgdArgs::from_mix(p.mix());
        assert_eq!(args.to_mix().unwrap(), *p.mix());
        let yaml = serde_yaml::to_value(&args).unwrap();
        let back: FgdArgs = crate::registry::parse_args(NAME, Some(&yaml)).unwrap();
        assert_eq!(back, args);
        for bad in [
            "taskMix: []",
            "taskMix: [{gpus: 1, gpuMilli: 500, weight: 1}]",
            "taskMix: [{gpuMilli: 1001, weight: 1}]",
            "taskMix: [{milliCpu: 1, weight: 0}]",
        ] {
            let v: serde_yaml::Value = serde_yaml::from_str(bad).unwrap();
            let args: FgdArgs = crate::registry::parse_args(NAME, Some(&v)).unwrap();
            assert!(FgdScore::new(&args).is_err(), "{bad}");
        }
    }
}
