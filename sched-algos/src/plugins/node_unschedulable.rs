//! NodeUnschedulable: `spec.unschedulable` nodes take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint
//! (upstream nodeunschedulable/node_unschedulable.go).

use crate::cache::{Snapshot, flags};
use crate::framework::{CycleState, FilterPlugin, Plugin};
use crate::node_info::NodeInfo;
use crate::pod_info::{PodInfo, Taint, TaintEffect, tolerations_tolerate};
use crate::status::{Code, Status};

pub const NAME: &str = "NodeUnschedulable";
/// Upstream's `ErrReasonUnschedulable`.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// Upstream's `v1.TaintNodeUnschedulable`.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

#[derive(Debug, Default)]
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

fn tolerates_unschedulable(pod: &PodInfo) -> bool {
    let taint = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_owned(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    };
    tolerations_tolerate(&pod.tolerations, &taint)
}

fn rejected() -> Status {
    Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_UNSCHEDULABLE).with_plugin(NAME)
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable || tolerates_unschedulable(pod) {
            return Status::success();
        }
        rejected()
    }

    fn filter_batch(
        &self,
        _: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        if tolerates_unschedulable(pod) {
            return;
        }
        let f = &snap.columns().flags;
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            if slot.is_none() && f[idx as usize] & flags::UNSCHEDULABLE != 0 {
                *slot = Some(rejected());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::testutil::{filter_all, node, pod, snapshot};

    #[test]
    fn golden() {
        let snap = snapshot(vec![
            node(NodeBuilder::new("ok").build(), vec![]),
            node(NodeBuilder::new("cordoned").unschedulable().build(), vec![]),
        ]);
        let state = CycleState::new();
        let plain = pod(PodBuilder::new("p").build());
        let out = filter_all(&NodeUnschedulable, &state, &plain, &snap);
        assert!(out[0].is_none());
        let s = out[1].as_ref().expect("rejected");
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_UNSCHEDULABLE);
        // Tolerating the unschedulable taint (any effect, Exists) admits the pod.
        let tolerant = pod(PodBuilder::new("t")
            .toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", "")
            .build());
        assert!(
            filter_all(&NodeUnschedulable, &state, &tolerant, &snap)
                .iter()
                .all(Option::is_none)
        );
        // A NoExecute-only toleration does not tolerate NoSchedule.
        let wrong = pod(PodBuilder::new("w")
            .toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", "NoExecute")
            .build());
        assert!(filter_all(&NodeUnschedulable, &state, &wrong, &snap)[1].is_some());
    }
}
