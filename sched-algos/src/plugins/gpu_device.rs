//! GpuDeviceFit: a pod's GPU request must fit the node's physical devices, not only
//! the node's milli-GPU sum (which `NodeResourcesFit` checks). Bosun-specific, no
//! upstream equivalent; the device model is the one of the FGD paper's simulator
//! (Weng et al., "Beware of Fragmentation", USENIX ATC '23) and of the harness.
//!
//! # Device model
//!
//! - A node has `N` devices of [`GPU_MILLI_PER_DEVICE`] milli-GPU each, `N` being its
//!   allocatable [`GPU_RESOURCE`] (clamped to [`MAX_GPU_DEVICES`]). A node with `N = 0`
//!   is not modelled: the filter passes and `NodeResourcesFit` judges the milli-GPU sum.
//! - A pod requesting `k > 0` [`GPU_RESOURCE`] needs `k` entirely free devices
//!   ([`GpuDemand::Whole`]). A pod requesting only [`GPU_MILLI_RESOURCE`] = `m > 0`
//!   shares one device with at least `m` free ([`GpuDemand::Fraction`]). Other pods
//!   pass.
//! - Packing rule (deterministic, identical to the harness's `sim::cluster::
//!   assign_devices`): a fraction goes to the device with the least free milli-GPU that
//!   still holds it (best fit, i.e. the most-used device that fits; lowest index on
//!   ties); `Whole(k)` takes the `k` lowest-indexed entirely free devices.
//!
//! - A pod pinned to devices ([`PodInfo::gpu_device_mask`], the
//!   [`GPU_DEVICES_ANNOTATION`]) gets them when they suit its demand and have room
//!   (`Whole(k)`: `k` entirely free devices; a fraction: one device with room), and
//!   the rule above otherwise. Placement policies that care which device a pod gets
//!   (FGD) choose at Reserve and record the choice under [`RESERVED_DEVICES_KEY`]; the
//!   caller pins the pod to it before assuming it.
//!
//! [`NodeInfo`] keeps a [`GpuDevices`] updated as pods are added and removed, replaying
//! these rules in the order pods arrive, so Filter is O(devices). A cache fed in bind
//! order therefore holds the same per-device usage as the harness's cluster.
//!
//! Rejection: `Unschedulable` with [`ERR_REASON_GPU_DEVICE`] ("Insufficient gpu device
//! capacity") when the devices are taken; `UnschedulableAndUnresolvable` with the same
//! reason when the pod could not fit even on the empty node (more whole GPUs than
//! devices, a fraction above one device), since preemption cannot help there.

use crate::framework::{CycleState, FilterPlugin, Plugin};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::resource::Resource;
use crate::status::{Code, Status};

pub const NAME: &str = "GpuDeviceFit";
/// Why a node is rejected.
pub const ERR_REASON_GPU_DEVICE: &str = "Insufficient gpu device capacity";
/// Whole GPU devices (the NVIDIA device plugin's resource).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// GPU requests and capacity in milli-GPU, [`GPU_MILLI_PER_DEVICE`] per device.
pub const GPU_MILLI_RESOURCE: &str = "bosun.io/gpu-milli";
/// Milli-GPU in one physical device.
pub const GPU_MILLI_PER_DEVICE: u32 = 1000;
/// Devices modelled per node (a bit each in a `u64`); openb nodes have at most 8.
pub const MAX_GPU_DEVICES: usize = 64;
/// Node label holding the GPU model (the harness's mapping of the openb traces).
pub const GPU_MODEL_LABEL: &str = "gpu-model";
/// Pod annotation: the device indexes the scheduler chose, comma-separated (`"0,3"`),
/// as GPU-sharing schedulers hand their choice to the device plugin.
pub const GPU_DEVICES_ANNOTATION: &str = "bosun.io/gpu-devices";
/// [`CycleState`] key under which a Reserve plugin records the devices it chose for
/// the pod on the selected node, as a [`ReservedDevices`].
pub const RESERVED_DEVICES_KEY: &str = "GpuDevices/reserved";

const _: () = assert!(MAX_GPU_DEVICES <= u64::BITS as usize);

/// What a pod asks of a node's GPU devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GpuDemand {
    None,
    /// `k` entirely free devices.
    Whole(u32),
    /// Milli-GPU on one device (may exceed a device, and then never fits).
    Fraction(u32),
}

impl GpuDemand {
    /// From a pod's requests: [`GPU_RESOURCE`] wins over [`GPU_MILLI_RESOURCE`].
    pub fn of(requests: &Resource) -> GpuDemand {
        let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let whole = requests.scalar(GPU_RESOURCE);
        let milli = requests.scalar(GPU_MILLI_RESOURCE);
        if whole > 0 {
            GpuDemand::Whole(clamp(whole))
        } else if milli > 0 {
            GpuDemand::Fraction(clamp(milli))
        } else {
            GpuDemand::None
        }
    }

    /// Milli-GPU taken from each device the pod holds.
    pub fn per_device_milli(self) -> u32 {
        match self {
            GpuDemand::None => 0,
            GpuDemand::Whole(_) => GPU_MILLI_PER_DEVICE,
            GpuDemand::Fraction(m) => m,
        }
    }
}

/// The devices a Reserve plugin chose for the pod (a bit mask), stored under
/// [`RESERVED_DEVICES_KEY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedDevices(pub u64);

/// The devices a Reserve plugin chose in this cycle, if any.
pub fn reserved_devices(state: &CycleState) -> Option<u64> {
    state
        .read::<ReservedDevices>(RESERVED_DEVICES_KEY)
        .map(|r| r.0)
}

/// Parses a [`GPU_DEVICES_ANNOTATION`] value (`"0,3"`) into a mask; `None` if it is
/// malformed or names a device index of [`MAX_GPU_DEVICES`] or more.
pub fn parse_device_list(value: &str) -> Option<u64> {
    let mut mask = 0u64;
    for part in value.split(',') {
        let d: usize = part.trim().parse().ok()?;
        if d >= MAX_GPU_DEVICES {
            return None;
        }
        mask |= 1 << d;
    }
    Some(mask)
}

/// The [`GPU_DEVICES_ANNOTATION`] value of a mask: indexes in increasing order.
pub fn format_device_list(mask: u64) -> String {
    let indexes: Vec<String> = (0..MAX_GPU_DEVICES)
        .filter(|d| mask & (1 << d) != 0)
        .map(|d| d.to_string())
        .collect();
    indexes.join(",")
}

/// A GPU pod on the node and the devices (bit mask) it holds; an empty mask when it
/// fitted no device (bound around the scheduler, or its node was not yet known).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    uid: String,
    demand: GpuDemand,
    devices: u64,
}

/// Per-device usage of one node. Invariant: `used_milli[d]` is the sum of
/// `demand.per_device_milli()` over the holders whose mask has bit `d`, and is at most
/// [`GPU_MILLI_PER_DEVICE`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuDevices {
    used_milli: Vec<u32>,
    holders: Vec<Holder>,
}

impl GpuDevices {
    /// The device count of a node with this allocatable, clamped to [`MAX_GPU_DEVICES`].
    pub fn device_count(allocatable: &Resource) -> usize {
        let n = allocatable.scalar(GPU_RESOURCE).max(0);
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(MAX_GPU_DEVICES)
    }

    pub fn n_devices(&self) -> usize {
        self.used_milli.len()
    }

    /// Used milli-GPU per device.
    pub fn used_milli(&self) -> &[u32] {
        &self.used_milli
    }

    /// Free milli-GPU per device into `out[..n_devices]`; returns that prefix.
    pub fn free_milli<'o>(&self, out: &'o mut [u32; MAX_GPU_DEVICES]) -> &'o mut [u32] {
        let n = self.used_milli.len();
        for (o, &used) in out.iter_mut().zip(&self.used_milli) {
            *o = GPU_MILLI_PER_DEVICE - used;
        }
        &mut out[..n]
    }

    /// Whether `demand` may take exactly the devices of `mask`: `Whole(k)` needs `k`
    /// entirely free devices, a fraction one device with room.
    pub fn can_take(&self, demand: GpuDemand, mask: u64) -> bool {
        let n = self.used_milli.len();
        if n < 64 && mask >> n != 0 {
            return false;
        }
        let count = mask.count_ones();
        let free = |d: usize| GPU_MILLI_PER_DEVICE - self.used_milli[d];
        let mut devices = (0..n).filter(|d| mask & (1 << d) != 0);
        match demand {
            GpuDemand::None => mask == 0,
            GpuDemand::Whole(k) => count == k && devices.all(|d| free(d) == GPU_MILLI_PER_DEVICE),
            GpuDemand::Fraction(m) => count == 1 && devices.all(|d| free(d) >= m),
        }
    }

    /// The devices `demand` would get (a bit mask; 0 for [`GpuDemand::None`]), or
    /// `None` if no assignment exists. See the module docs for the rule.
    pub fn assign(&self, demand: GpuDemand) -> Option<u64> {
        match demand {
            GpuDemand::None => Some(0),
            GpuDemand::Fraction(m) => self
                .used_milli
                .iter()
                .enumerate()
                .filter(|&(_, &used)| GPU_MILLI_PER_DEVICE - used >= m)
                .min_by_key(|&(d, &used)| (GPU_MILLI_PER_DEVICE - used, d))
                .map(|(d, _)| 1u64 << d),
            GpuDemand::Whole(k) => {
                let mut mask = 0u64;
                let mut n = 0u32;
                for (d, &used) in self.used_milli.iter().enumerate() {
                    if n == k {
                        break;
                    }
                    if used == 0 {
                        mask |= 1 << d;
                        n += 1;
                    }
                }
                (n == k).then_some(mask)
            }
        }
    }

    /// Whether `demand` could fit this node with no pods on it.
    pub fn fits_empty(&self, demand: GpuDemand) -> bool {
        match demand {
            GpuDemand::None => true,
            GpuDemand::Whole(k) => usize::try_from(k).is_ok_and(|k| k <= self.n_devices()),
            GpuDemand::Fraction(m) => self.n_devices() > 0 && m <= GPU_MILLI_PER_DEVICE,
        }
    }

    /// Accounts a pod: it takes the devices it is pinned to if it
    /// [`can_take`](Self::can_take) them, else those [`assign`](Self::assign) picks, or
    /// none if it fits nowhere. Pods without a GPU request are not recorded.
    pub fn add_pod(&mut self, uid: &str, requests: &Resource, pinned: Option<u64>) {
        let demand = GpuDemand::of(requests);
        if demand == GpuDemand::None {
            return;
        }
        let devices = match pinned.filter(|&mask| self.can_take(demand, mask)) {
            Some(mask) => mask,
            None => self.assign(demand).unwrap_or(0),
        };
        self.take(demand, devices);
        self.holders.push(Holder {
            uid: uid.to_owned(),
            demand,
            devices,
        });
    }

    /// Frees the devices of the pod with this UID, if it holds any record here.
    pub fn remove_pod(&mut self, uid: &str) {
        let Some(i) = self.holders.iter().position(|h| h.uid == uid) else {
            return;
        };
        let h = self.holders.swap_remove(i);
        let per_device = h.demand.per_device_milli();
        for (d, used) in self.used_milli.iter_mut().enumerate() {
            if h.devices & (1 << d) != 0 {
                assert!(
                    *used >= per_device,
                    "device {d} under-used: {used} < {per_device}"
                );
                *used -= per_device;
            }
        }
    }

    /// Starts over with `n_devices` empty devices and replays `pods` (UID, requests,
    /// pinned devices) in order; used when the node's device count changes.
    pub fn rebuild<'a>(
        &mut self,
        n_devices: usize,
        pods: impl IntoIterator<Item = (&'a str, &'a Resource, Option<u64>)>,
    ) {
        assert!(n_devices <= MAX_GPU_DEVICES);
        self.used_milli = vec![0; n_devices];
        self.holders.clear();
        for (uid, requests, pinned) in pods {
            self.add_pod(uid, requests, pinned);
        }
    }

    fn take(&mut self, demand: GpuDemand, devices: u64) {
        let per_device = demand.per_device_milli();
        for (d, used) in self.used_milli.iter_mut().enumerate() {
            if devices & (1 << d) != 0 {
                *used += per_device;
                assert!(*used <= GPU_MILLI_PER_DEVICE, "device {d} over-committed");
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct GpuDeviceFit;

impl Plugin for GpuDeviceFit {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for GpuDeviceFit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let devices = &node.gpu_devices;
        let demand = GpuDemand::of(&pod.requests);
        if demand == GpuDemand::None || devices.n_devices() == 0 {
            return Status::success();
        }
        if devices.assign(demand).is_some() {
            return Status::success();
        }
        let code = if devices.fits_empty(demand) {
            Code::Unschedulable
        } else {
            Code::UnschedulableAndUnresolvable
        };
        Status::new(code, ERR_REASON_GPU_DEVICE).with_plugin(NAME)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::testutil::{filter_all, gpu_pod, node, pod, snapshot};

    fn gpu_node(name: &str, n_gpus: u32) -> NodeBuilder {
        let b = NodeBuilder::new(name).capacity("96", "384Gi", 110);
        if n_gpus == 0 {
            return b;
        }
        b.allocatable(GPU_RESOURCE, &n_gpus.to_string())
            .allocatable(GPU_MILLI_RESOURCE, &(n_gpus * 1000).to_string())
    }

    use GpuDemand::{Fraction as F, None as N, Whole as W};

    /// One case: a node with `n_gpus` devices holding `placed` (in arrival order), the
    /// per-device usage that results, and whether each incoming demand passes.
    struct Case {
        n_gpus: u32,
        placed: &'static [GpuDemand],
        used: &'static [u32],
        incoming: &'static [(GpuDemand, Option<Code>)],
    }

    fn check(name: &str, c: &Case) {
        let pods = c
            .placed
            .iter()
            .enumerate()
            .map(|(i, &d)| gpu_pod(&format!("{name}-p{i}"), d))
            .collect();
        let info = node(gpu_node(name, c.n_gpus).build(), pods);
        assert_eq!(info.gpu_devices.used_milli(), c.used, "{name}: usage");
        let snap = snapshot(vec![info]);
        let state = CycleState::new();
        for &(demand, want) in c.incoming {
            let p = pod(gpu_pod("incoming", demand));
            let got = filter_all(&GpuDeviceFit, &state, &p, &snap).remove(0);
            assert_eq!(got.as_ref().map(Status::code), want, "{name}: {demand:?}");
            if let Some(s) = got {
                assert_eq!(s.message(), ERR_REASON_GPU_DEVICE);
            }
        }
    }

    const U: Option<Code> = Some(Code::Unschedulable);
    const UU: Option<Code> = Some(Code::UnschedulableAndUnresolvable);

    #[test]
    fn golden() {
        let cases: &[(&str, Case)] = &[
            (
                // Fractions pack onto the most-used device that fits (best fit), so a
                // second 0.5 joins the first rather than opening device 1.
                "fractions-pack",
                Case {
                    n_gpus: 2,
                    placed: &[F(500), F(500), F(300)],
                    used: &[1000, 300],
                    incoming: &[
                        (F(700), None),
                        (F(701), U),
                        (W(1), U),
                        (F(1001), UU),
                        (N, None),
                    ],
                },
            ),
            (
                // 3 x 0.4: the third does not fit device 0 (0.8 used), goes to 1.
                "fractions-best-fit",
                Case {
                    n_gpus: 2,
                    placed: &[F(400), F(400), F(400)],
                    used: &[800, 400],
                    incoming: &[(F(600), None), (F(601), U), (F(200), None)],
                },
            ),
            (
                // Whole pods take the lowest free devices; a fraction fills a hole.
                "whole-needs-free-devices",
                Case {
                    n_gpus: 4,
                    placed: &[W(2), F(100)],
                    used: &[1000, 1000, 100, 0],
                    incoming: &[(W(1), None), (W(2), U), (W(5), UU), (F(900), None)],
                },
            ),
            (
                // Mixed: the milli-GPU sum (2.6 of 4) leaves room that is spread over
                // devices, so no two whole devices are free.
                "mixed",
                Case {
                    n_gpus: 4,
                    placed: &[F(600), W(1), F(600), F(400)],
                    used: &[1000, 1000, 600, 0],
                    incoming: &[(W(1), None), (W(2), U), (F(400), None), (F(500), None)],
                },
            ),
            (
                // No devices modelled: pass, NodeResourcesFit judges the sum.
                "node-without-gpus",
                Case {
                    n_gpus: 0,
                    placed: &[F(300)],
                    used: &[],
                    incoming: &[(W(1), None), (F(300), None), (N, None)],
                },
            ),
            (
                // Pods without a GPU request pass on a full GPU node.
                "pod-without-gpu",
                Case {
                    n_gpus: 1,
                    placed: &[W(1), N],
                    used: &[1000],
                    incoming: &[(N, None), (F(1), U)],
                },
            ),
        ];
        for (name, c) in cases {
            check(name, c);
        }
    }

    /// The rule as the harness's `assign_devices` table states it
    /// (harness/src/sim/cluster.rs, `devices_best_fit_fractions_and_whole_needs_free_devices`).
    #[test]
    fn assignment_matches_harness_table() {
        let devices = |free: &[u32]| GpuDevices {
            used_milli: free.iter().map(|f| 1000 - f).collect(),
            holders: Vec::new(),
        };
        assert_eq!(devices(&[1000, 400, 600]).assign(F(300)), Some(0b010));
        assert_eq!(devices(&[1000, 400, 600]).assign(F(500)), Some(0b100));
        assert_eq!(devices(&[200, 200]).assign(F(300)), None);
        assert_eq!(devices(&[1000, 999, 1000]).assign(W(2)), Some(0b101));
        assert_eq!(devices(&[1000, 999]).assign(W(2)), None);
        assert_eq!(devices(&[]).assign(N), Some(0));
        // Ties go to the lowest index.
        assert_eq!(devices(&[500, 500]).assign(F(500)), Some(0b01));
    }

    /// A pin is honoured when the devices suit the demand and have room, and the
    /// best-fit rule applies otherwise; the annotation parses into a pin.
    #[test]
    fn pinned_pods_take_their_devices_when_they_can() {
        let mut info = node(gpu_node("n", 3).build(), vec![]);
        let pinned = |name: &str, demand, mask: Option<u64>| {
            let mut p = pod(gpu_pod(name, demand));
            p.gpu_device_mask = mask;
            Arc::new(p)
        };
        info.add_pod(pinned("a", F(300), Some(0b100)));
        assert_eq!(info.gpu_devices.used_milli(), [0, 0, 300]);
        // Device 2 has 700 left: a 0.8 pin is refused and best fit (device 0) applies.
        info.add_pod(pinned("b", F(800), Some(0b100)));
        assert_eq!(info.gpu_devices.used_milli(), [800, 0, 300]);
        // Whole pins need entirely free devices, as many as requested.
        let c = pinned("c", W(1), Some(0b100));
        info.add_pod(Arc::clone(&c));
        assert_eq!(info.gpu_devices.used_milli(), [800, 1000, 300]);
        info.remove_pod(&c.uid).unwrap();
        info.add_pod(pinned("d", W(1), Some(0b010)));
        assert_eq!(info.gpu_devices.used_milli(), [800, 1000, 300]);
        // Pins survive a rebuild (the node's device count changing).
        info.set_node(&gpu_node("n", 4).build()).unwrap();
        assert_eq!(info.gpu_devices.used_milli(), [800, 1000, 300, 0]);
        let devices = &info.gpu_devices;
        assert!(!devices.can_take(F(100), 0b1_0000), "no device 4");
        assert!(
            !devices.can_take(F(100), 0b0101),
            "a fraction takes one device"
        );
        assert!(devices.can_take(W(1), 0b1000));
        assert!(devices.can_take(N, 0));

        assert_eq!(parse_device_list("0, 3"), Some(0b1001));
        assert_eq!(parse_device_list("64"), None);
        assert_eq!(parse_device_list("x"), None);
        assert_eq!(format_device_list(0b1001), "0,3");
        let annotated = PodBuilder::new("x")
            .annotation(GPU_DEVICES_ANNOTATION, "2")
            .build();
        assert_eq!(pod(annotated).gpu_device_mask, Some(0b100));
    }

    #[test]
    fn remove_frees_the_pods_devices_and_set_node_rebuilds() {
        let a = pod(gpu_pod("a", F(600)));
        let b = pod(gpu_pod("b", F(300)));
        let w = pod(gpu_pod("w", W(1)));
        let mut info = node(gpu_node("n", 2).build(), vec![]);
        for p in [&a, &b, &w] {
            info.add_pod(Arc::new(p.clone()));
        }
        assert_eq!(info.gpu_devices.used_milli(), [900, 1000]);
        info.remove_pod(&a.uid).expect("a is here");
        assert_eq!(info.gpu_devices.used_milli(), [300, 1000]);
        info.remove_pod(&w.uid).expect("w is here");
        assert_eq!(info.gpu_devices.used_milli(), [300, 0]);
        // A pod that fits no device holds none, and freeing it frees nothing.
        let big = pod(gpu_pod("big", W(2)));
        info.add_pod(Arc::new(big.clone()));
        assert_eq!(info.gpu_devices.used_milli(), [300, 0]);
        info.remove_pod(&big.uid).expect("big is here");
        assert_eq!(info.gpu_devices.used_milli(), [300, 0]);
        // Pods known before their node (device count 0) get devices once it is set.
        let mut early = NodeInfo::default();
        early.add_pod(Arc::new(a.clone()));
        assert_eq!(early.gpu_devices.n_devices(), 0);
        early.set_node(&gpu_node("n", 2).build()).unwrap();
        assert_eq!(early.gpu_devices.used_milli(), [600, 0]);
    }
}
