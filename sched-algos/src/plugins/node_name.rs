//! NodeName: a pod with `spec.nodeName` fits only that node
//! (upstream nodename/node_name.go).

use crate::cache::Snapshot;
use crate::framework::{CycleState, FilterPlugin, Plugin};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::{Code, Status};

pub const NAME: &str = "NodeName";
/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

#[derive(Debug, Default)]
pub struct NodeName;

impl Plugin for NodeName {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            return Status::success();
        }
        Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON)
    }

    fn filter_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        // The common case: no node requested, nothing to check per node.
        if pod.node_name.is_empty() {
            return;
        }
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            if slot.is_none() {
                let s = self.filter(state, pod, snap.node(idx));
                if !s.is_success() {
                    *slot = Some(s.with_plugin(NAME));
                }
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
            node(NodeBuilder::new("a").build(), vec![]),
            node(NodeBuilder::new("b").build(), vec![]),
        ]);
        let state = CycleState::new();
        let any = pod(PodBuilder::new("p").build());
        assert!(
            filter_all(&NodeName, &state, &any, &snap)
                .iter()
                .all(Option::is_none)
        );
        let pinned = pod(PodBuilder::new("p").node_name("b").build());
        let out = filter_all(&NodeName, &state, &pinned, &snap);
        assert_eq!(
            out[0].as_ref().map(Status::message).as_deref(),
            Some(ERR_REASON)
        );
        assert_eq!(
            out[0].as_ref().map(Status::code),
            Some(Code::UnschedulableAndUnresolvable)
        );
        assert!(out[1].is_none());
    }
}
