//! The in-tree plugins, one per module, named as upstream names them.
//!
//! `InterPodAffinity` and `PodTopologySpread` read the snapshot's pods (PreFilter /
//! PreScore build per-cycle counts by topology pair; Filter / Score look up one node's
//! labels). `DefaultPreemption` is a PostFilter plugin that re-runs the profile's
//! PreFilter and Filter plugins on a private copy of the snapshot
//! ([`PostFilterPlugin::post_filter_in_profile`](crate::framework::PostFilterPlugin)).
//!
//! Bosun's own, for the placement policies the platform compares: `GpuDeviceFit`
//! (fractional GPUs on physical devices), `FGDScore` (fragmentation gradient descent),
//! `DominantShare` (DRF), `TetrisAlignment` (Tetris) and `FirstFit`.

pub mod default_binder;
pub mod default_preemption;
pub mod dominant_share;
pub mod fgd;
pub mod first_fit;
pub mod gpu_device;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod scheduling_gates;
pub mod taint_toleration;
pub mod tetris;

/// The batch Filter of a plugin whose verdict reads its PreFilter state (of type `T`,
/// under `key`) by node index: each node not yet rejected gets `verdict(state, idx)`;
/// a missing state fails every node, as the per-node Filter does.
pub(crate) fn filter_batch_by_index<T: std::any::Any>(
    state: &crate::framework::CycleState,
    key: &'static str,
    plugin: &'static str,
    nodes: &[u32],
    out: &mut [Option<crate::status::Status>],
    verdict: impl Fn(&T, u32) -> crate::status::Status,
) {
    let Some(s) = state.read::<T>(key) else {
        let e = crate::status::Status::error(format!("reading {key:?} from cycleState: not found"));
        out.fill(Some(e.with_plugin(plugin)));
        return;
    };
    for (slot, &idx) in out.iter_mut().zip(nodes) {
        if slot.is_none() {
            let st = verdict(s, idx);
            if !st.is_success() {
                *slot = Some(st.with_plugin(plugin));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1 as corev1;

    use crate::cache::Snapshot;
    use crate::framework::{CycleState, FilterPlugin, ScorePlugin};
    use crate::node_info::NodeInfo;
    use crate::pod_info::PodInfo;
    use crate::status::Status;

    pub fn pod(p: corev1::Pod) -> PodInfo {
        PodInfo::new(p).expect("valid pod")
    }

    pub fn node(n: corev1::Node, pods: Vec<corev1::Pod>) -> NodeInfo {
        let mut info = NodeInfo::new(&n).expect("valid node");
        for p in pods {
            info.add_pod(Arc::new(pod(p)));
        }
        info
    }

    pub fn snapshot(nodes: Vec<NodeInfo>) -> Snapshot {
        Snapshot::from_nodes(nodes.into_iter().map(Arc::new).collect())
    }

    /// A one-CPU pod asking for GPUs as the harness maps it (harness `model.rs`):
    /// whole GPUs request both resources, fractions only milli-GPU.
    pub fn gpu_pod(name: &str, demand: crate::plugins::gpu_device::GpuDemand) -> corev1::Pod {
        use crate::fixtures::PodBuilder;
        use crate::plugins::gpu_device::{GPU_MILLI_RESOURCE, GPU_RESOURCE, GpuDemand};
        let b = PodBuilder::new(name).request("1", "1Gi");
        match demand {
            GpuDemand::None => b,
            GpuDemand::Whole(k) => b
                .request_resource(GPU_RESOURCE, &k.to_string())
                .request_resource(GPU_MILLI_RESOURCE, &(k * 1000).to_string()),
            GpuDemand::Fraction(m) => b.request_resource(GPU_MILLI_RESOURCE, &m.to_string()),
        }
        .build()
    }

    /// Runs a filter's batch form over every node of the snapshot; `None` is Success.
    pub fn filter_all(
        plugin: &dyn FilterPlugin,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> Vec<Option<Status>> {
        let idxs: Vec<u32> = (0..snap.n_nodes() as u32).collect();
        let mut out = vec![None; idxs.len()];
        plugin.filter_batch(state, pod, snap, &idxs, &mut out);
        // The per-node form must agree with the batch form.
        for (i, &idx) in idxs.iter().enumerate() {
            let single = plugin.filter(state, pod, snap.node(idx));
            assert_eq!(
                single.code(),
                out[i].as_ref().map_or(crate::Code::Success, Status::code)
            );
        }
        out
    }

    /// Scores every node (batch form, checked against the per-node form), then
    /// normalises.
    pub fn score_all(
        plugin: &dyn ScorePlugin,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Vec<i64>, Vec<i64>) {
        let idxs: Vec<u32> = (0..snap.n_nodes() as u32).collect();
        let mut raw = vec![0; idxs.len()];
        plugin
            .score_batch(state, pod, snap, &idxs, &mut raw)
            .expect("score");
        for (i, &idx) in idxs.iter().enumerate() {
            assert_eq!(
                plugin.score(state, pod, snap.node(idx)).expect("score"),
                raw[i]
            );
        }
        let mut normalized = raw.clone();
        assert!(
            plugin
                .normalize_scores(state, pod, &mut normalized)
                .is_success()
        );
        (raw, normalized)
    }
}
