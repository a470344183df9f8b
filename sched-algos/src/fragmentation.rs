//! GPU fragmentation of a node measured against a workload's task mix, as the FGD paper
//! defines it (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads
//! with Fragmentation Gradient Descent", USENIX ATC '23, section 3) and its simulator
//! computes it (`NodeGpuShareFragAmount`). Shared by the
//! [`FGDScore`](crate::plugins::fgd) plugin and the harness's quality metrics, so the
//! policy minimises exactly what the reports measure.
//!
//! - The task mix `M` is a set of task classes `m` (requests: CPU, memory, GPU demand,
//!   allowed GPU models) with popularities `p_m = w_m / sum(w)` (integer weights, e.g.
//!   pod counts).
//! - `F_n(m)`, the free GPU of node `n` that a task of class `m` cannot use, in
//!   milli-GPU:
//!   - all of the node's free GPU (`sum_d free_d`) if `m` requests no GPU, or if `m`
//!     cannot run on `n` at all: not enough CPU or memory, no room for another pod, a
//!     GPU model `m` does not accept, or no device assignment (a fraction `f` needs one
//!     device with `free_d >= f`, `Whole(k)` needs `k` entirely free devices);
//!   - otherwise the free GPU of the devices with less room than `m` takes per device:
//!     `sum_{d : free_d < need_m} free_d`, `need_m` being its fraction or a whole device.
//! - `F_n(M) = sum_m p_m F_n(m)`: the fragment expected if the next task is drawn from
//!   `M`.
//!
//! Weights are integers, so [`TaskMix::weighted_frag`] (`sum_m w_m F_n(m)`) is exact and
//! the same state always gives the same figure, bit for bit.

use std::collections::BTreeMap;

use crate::plugins::gpu_device::{GPU_MILLI_PER_DEVICE, GpuDemand, MAX_GPU_DEVICES};

/// Bound on the task classes of a mix (the heaviest are kept). One bit each in a `u128`.
pub const MAX_TASK_CLASSES: usize = 128;

const _: () = assert!(MAX_TASK_CLASSES <= u128::BITS as usize);

/// What a task of one class requests. Memory in bytes, CPU in millicores, as in
/// [`Resource`](crate::Resource).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskClass {
    pub milli_cpu: i64,
    pub memory: i64,
    pub gpu: GpuDemand,
    /// Allowed GPU models; empty means any.
    pub gpu_models: Vec<String>,
}

/// The part of a node fragmentation depends on.
#[derive(Clone, Copy, Debug)]
pub struct NodeGpuView<'a> {
    pub free_milli_cpu: i64,
    pub free_memory: i64,
    /// Whether the node admits one more pod.
    pub pod_room: bool,
    /// Free milli-GPU per device, each at most [`GPU_MILLI_PER_DEVICE`].
    pub device_free_milli: &'a [u32],
}

/// A workload's task classes and their weights (the FGD paper's `M`). See the module
/// docs. Classes are kept heaviest first, equal weights in class order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskMix {
    classes: Vec<TaskClass>,
    weights: Vec<u64>,
    total_weight: u64,
    /// The summed weight of the classes requesting no GPU.
    no_gpu_weight: u64,
    /// The classes requesting GPU, by increasing per-device need: what
    /// [`TaskMix::weighted_frag`] walks.
    gpu_classes: Vec<GpuClass>,
    /// Whether some class restricts GPU models.
    any_models: bool,
}

/// A GPU class as the fragmentation loop reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GpuClass {
    /// Milli-GPU it takes per device.
    need: u32,
    /// Whole devices it needs; 0 for a fraction.
    whole: u32,
    milli_cpu: i64,
    memory: i64,
    weight: u64,
    /// Its index in `classes` (its bit in an `allowed` mask).
    index: u32,
}

impl TaskMix {
    /// The mix of `classes` (equal classes merged, zero weights dropped), keeping the
    /// [`MAX_TASK_CLASSES`] heaviest.
    pub fn from_weights(classes: impl IntoIterator<Item = (TaskClass, u64)>) -> TaskMix {
        let mut merged: BTreeMap<TaskClass, u64> = BTreeMap::new();
        for (class, w) in classes {
            if w > 0 {
                *merged.entry(class).or_default() += w;
            }
        }
        let mut ranked: Vec<(TaskClass, u64)> = merged.into_iter().collect();
        // Heaviest first; the class order breaks ties, so the mix is deterministic.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(MAX_TASK_CLASSES);
        let mut mix = TaskMix::default();
        for (index, (class, w)) in ranked.into_iter().enumerate() {
            let (need, whole) = match class.gpu {
                GpuDemand::None => (0, 0),
                GpuDemand::Whole(k) => (GPU_MILLI_PER_DEVICE, k),
                GpuDemand::Fraction(f) => (f, 0),
            };
            if need == 0 {
                mix.no_gpu_weight += w;
            } else {
                mix.gpu_classes.push(GpuClass {
                    need,
                    whole,
                    milli_cpu: class.milli_cpu,
                    memory: class.memory,
                    weight: w,
                    index: index as u32,
                });
            }
            mix.any_models |= !class.gpu_models.is_empty();
            mix.total_weight += w;
            mix.weights.push(w);
            mix.classes.push(class);
        }
        mix.gpu_classes.sort_by_key(|c| (c.need, c.index));
        mix
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// The classes with their weights, heaviest first.
    pub fn classes(&self) -> impl Iterator<Item = (&TaskClass, u64)> {
        self.classes.iter().zip(self.weights.iter().copied())
    }

    /// Whether some class accepts only some GPU models.
    pub fn restricts_models(&self) -> bool {
        self.any_models
    }

    /// Bit `m` is set when class `m` accepts a node of GPU model `model`.
    pub fn allowed_on(&self, model: Option<&str>) -> u128 {
        if !self.any_models {
            return u128::MAX;
        }
        let mut mask = 0u128;
        for (m, c) in self.classes.iter().enumerate() {
            let ok = c.gpu_models.is_empty()
                || model.is_some_and(|model| c.gpu_models.iter().any(|g| g == model));
            mask |= u128::from(ok) << m;
        }
        mask
    }

    /// `sum_m w_m F_n(m)` in milli-GPU times weight units, where bit `m` of `allowed`
    /// says whether class `m` accepts the node's GPU model ([`TaskMix::allowed_on`]).
    ///
    /// One pass over the GPU classes by increasing need, with the devices sorted by
    /// free amount: the free GPU of the devices below a class's need is a running
    /// prefix sum.
    pub fn weighted_frag(&self, node: &NodeGpuView<'_>, allowed: u128) -> u64 {
        let n = node.device_free_milli.len();
        assert!(n <= MAX_GPU_DEVICES, "{n} devices");
        let mut sorted = [0u32; MAX_GPU_DEVICES];
        let sorted = &mut sorted[..n];
        sorted.copy_from_slice(node.device_free_milli);
        sorted.sort_unstable();
        let total: u64 = sorted.iter().map(|&f| u64::from(f)).sum();
        if total == 0 {
            return 0;
        }
        if !node.pod_room {
            return total * self.total_weight;
        }
        let max_free = sorted[n - 1];
        let n_whole_free = sorted
            .iter()
            .rev()
            .take_while(|&&f| f == GPU_MILLI_PER_DEVICE)
            .count() as u32;
        let mut sum = self.no_gpu_weight * total;
        let (mut below, mut below_sum) = (0, 0u64);
        for c in &self.gpu_classes {
            while below < n && sorted[below] < c.need {
                below_sum += u64::from(sorted[below]);
                below += 1;
            }
            let fits_devices = if c.whole > 0 {
                c.whole <= n_whole_free
            } else {
                c.need <= max_free
            };
            let runs = fits_devices
                && allowed & (1u128 << c.index) != 0
                && c.milli_cpu <= node.free_milli_cpu
                && c.memory <= node.free_memory;
            sum += c.weight * if runs { below_sum } else { total };
        }
        sum
    }

    /// `F_n(M)` in milli-GPU; 0 for an empty mix.
    pub fn frag_milli(&self, node: &NodeGpuView<'_>, model: Option<&str>) -> f64 {
        if self.total_weight == 0 {
            return 0.0;
        }
        self.weighted_frag(node, self.allowed_on(model)) as f64 / self.total_weight as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(gpu: GpuDemand) -> TaskClass {
        TaskClass {
            milli_cpu: 1000,
            memory: 1 << 30,
            gpu,
            gpu_models: Vec::new(),
        }
    }

    fn view(free: &[u32]) -> NodeGpuView<'_> {
        NodeGpuView {
            free_milli_cpu: 16_000,
            free_memory: 64 << 30,
            pod_room: true,
            device_free_milli: free,
        }
    }

    /// FGD paper, section 3 (Fig. 5's example in milli-GPU): a node with 2 GPUs, one
    /// half used. A 0.6-GPU task cannot use the 0.5 left on device 0: fragment 500; a
    /// 0.4-GPU task can use everything: 0; a whole-GPU task cannot use device 0: 500;
    /// a 2-GPU task cannot run at all: 1500; a CPU-only task uses no GPU: 1500.
    #[test]
    fn fragment_per_task_class() {
        let free = [500, 1000];
        let cases = [
            (GpuDemand::Fraction(600), 500.0),
            (GpuDemand::Fraction(400), 0.0),
            (GpuDemand::Whole(1), 500.0),
            (GpuDemand::Whole(2), 1500.0),
            (GpuDemand::None, 1500.0),
        ];
        for (gpu, want) in cases {
            let mix = TaskMix::from_weights([(class(gpu), 1)]);
            assert_eq!(mix.frag_milli(&view(&free), None), want, "{gpu:?}");
        }
    }

    /// The mix weighs each class: 3 x Fraction(600) (500 each) + 1 x CPU-only (1500):
    /// (3 * 500 + 1500) / 4 = 750.
    #[test]
    fn mix_is_weighted_by_popularity() {
        let mix = TaskMix::from_weights([
            (class(GpuDemand::Fraction(600)), 2),
            (class(GpuDemand::None), 1),
            (class(GpuDemand::Fraction(600)), 1),
        ]);
        assert_eq!(mix.len(), 2, "equal classes merge");
        assert_eq!(mix.total_weight(), 4);
        assert_eq!(mix.classes().next().unwrap().1, 3, "heaviest first");
        assert_eq!(mix.weighted_frag(&view(&[500, 1000]), u128::MAX), 3000);
        assert_eq!(mix.frag_milli(&view(&[500, 1000]), None), 750.0);
    }

    /// A class that cannot run (CPU, memory, pod room, GPU model) sees all free GPU as
    /// fragment; a node without free GPU has none.
    #[test]
    fn classes_that_cannot_run_see_everything() {
        let free = [400, 1000];
        let mut small = class(GpuDemand::Fraction(300));
        let base = TaskMix::from_weights([(small.clone(), 1)]);
        assert_eq!(base.frag_milli(&view(&free), None), 0.0);
        let mut v = view(&free);
        v.free_milli_cpu = 999;
        assert_eq!(base.frag_milli(&v, None), 1400.0, "cpu");
        let mut v = view(&free);
        v.free_memory = (1 << 30) - 1;
        assert_eq!(base.frag_milli(&v, None), 1400.0, "memory");
        let mut v = view(&free);
        v.pod_room = false;
        assert_eq!(base.frag_milli(&v, None), 1400.0, "pod room");
        small.gpu_models = vec!["V100".into()];
        let models = TaskMix::from_weights([(small, 1)]);
        assert_eq!(models.frag_milli(&view(&free), Some("V100")), 0.0);
        assert_eq!(models.frag_milli(&view(&free), Some("T4")), 1400.0);
        assert_eq!(models.frag_milli(&view(&free), None), 1400.0);
        assert_eq!(base.frag_milli(&view(&[0, 0]), None), 0.0);
        assert_eq!(TaskMix::default().frag_milli(&view(&free), None), 0.0);
    }

    /// The module docs' definition, literally: the reference the one-pass loop is
    /// checked against.
    fn reference_frag(mix: &TaskMix, node: &NodeGpuView<'_>, model: Option<&str>) -> u64 {
        let free = node.device_free_milli;
        let total: u64 = free.iter().map(|&f| u64::from(f)).sum();
        let mut sum = 0;
        for (c, w) in mix.classes() {
            let model_ok = c.gpu_models.is_empty()
                || model.is_some_and(|m| c.gpu_models.iter().any(|g| g == m));
            let (need, fits) = match c.gpu {
                GpuDemand::None => (0, false),
                GpuDemand::Whole(k) => (
                    GPU_MILLI_PER_DEVICE,
                    free.iter().filter(|&&f| f == GPU_MILLI_PER_DEVICE).count() >= k as usize,
                ),
                GpuDemand::Fraction(m) => (m, free.iter().any(|&f| f >= m)),
            };
            let runs = need > 0
                && fits
                && model_ok
                && node.pod_room
                && c.milli_cpu <= node.free_milli_cpu
                && c.memory <= node.free_memory;
            let frag = if runs {
                free.iter()
                    .filter(|&&f| f < need)
                    .map(|&f| u64::from(f))
                    .sum()
            } else {
                total
            };
            sum += w * frag;
        }
        sum
    }

    #[test]
    fn one_pass_matches_the_definition() {
        use crate::schedule::SplitMix64;
        let mut rng = SplitMix64::new(11);
        let mut below = |n: u64| rng.next_u64() % n;
        let models = ["A", "B"];
        for case in 0..300 {
            let classes: Vec<(TaskClass, u64)> = (0..1 + below(20))
                .map(|_| {
                    let gpu = match below(3) {
                        0 => GpuDemand::None,
                        1 => GpuDemand::Whole(1 + below(4) as u32),
                        _ => GpuDemand::Fraction(100 * (1 + below(10) as u32)),
                    };
                    let gpu_models = match below(3) {
                        0 => vec![models[below(2) as usize].to_owned()],
                        _ => Vec::new(),
                    };
                    let class = TaskClass {
                        milli_cpu: 1000 * below(8) as i64,
                        memory: below(8) as i64,
                        gpu,
                        gpu_models,
                    };
                    (class, 1 + below(5))
                })
                .collect();
            let mix = TaskMix::from_weights(classes);
            let free: Vec<u32> = (0..below(9)).map(|_| 100 * below(11) as u32).collect();
            let node = NodeGpuView {
                free_milli_cpu: 1000 * below(8) as i64,
                free_memory: below(8) as i64,
                pod_room: below(5) > 0,
                device_free_milli: &free,
            };
            let model = [None, Some("A"), Some("B")][below(3) as usize];
            assert_eq!(
                mix.weighted_frag(&node, mix.allowed_on(model)),
                reference_frag(&mix, &node, model),
                "case {case}: {free:?}"
            );
        }
    }

    #[test]
    fn keeps_the_heaviest_classes() {
        let mix = TaskMix::from_weights(
            (0..200).map(|i| (class(GpuDemand::Fraction(i + 1)), 1 + i as u64 % 3)),
        );
        assert_eq!(mix.len(), MAX_TASK_CLASSES);
        let weights: Vec<u64> = mix.classes().map(|(_, w)| w).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(weights[0], 3);
    }
}
