//! NodePorts: a pod's host ports must be free on the node; `0.0.0.0` conflicts with
//! every IP of the same protocol and port (upstream nodeports/node_ports.go and
//! `HostPortInfo.CheckConflict`).

use crate::cache::{Snapshot, flags};
use crate::framework::{CycleState, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::{Code, Status};

pub const NAME: &str = "NodePorts";
/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

#[derive(Debug, Default)]
pub struct NodePorts;

impl Plugin for NodePorts {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for NodePorts {
    /// Skip when the pod wants no host port (upstream since 1.27).
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.host_ports.is_empty() {
            return (None, Status::skip());
        }
        (None, Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.host_ports.iter().any(|p| node.port_conflicts(p)) {
            return Status::new(Code::Unschedulable, ERR_REASON);
        }
        Status::success()
    }

    fn filter_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [Option<Status>],
    ) {
        let f = &snap.columns().flags;
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            // Only nodes with a port in use can conflict.
            if slot.is_none() && f[idx as usize] & flags::PORTS_IN_USE != 0 {
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

    /// Cases from upstream node_ports_test.go `TestNodePorts`.
    #[test]
    fn golden() {
        let used = |ip: &str, proto: &str, port: i32| {
            PodBuilder::new("used").host_port(ip, proto, port).build()
        };
        // (wanted (ip, proto, port), used on node, fits)
        type Port<'a> = (&'a str, &'a str, i32);
        let cases: &[(Port, Port, bool)] = &[
            (("", "UDP", 8080), ("", "UDP", 9090), true),
            (("", "UDP", 8080), ("", "UDP", 8080), false),
            (
                ("127.0.0.1", "TCP", 8080),
                ("127.0.0.1", "TCP", 8080),
                false,
            ),
            (("127.0.0.1", "TCP", 8080), ("127.0.0.1", "UDP", 8080), true),
            (("127.0.0.1", "TCP", 8080), ("127.0.0.2", "TCP", 8080), true),
            (("0.0.0.0", "TCP", 8001), ("127.0.0.1", "TCP", 8001), false),
            (("127.0.0.1", "TCP", 8001), ("0.0.0.0", "TCP", 8001), false),
            (("10.0.10.10", "TCP", 8001), ("0.0.0.0", "UDP", 8001), true),
            (("", "", 8001), ("0.0.0.0", "TCP", 8001), false),
        ];
        let state = CycleState::new();
        for &((wip, wproto, wport), (uip, uproto, uport), fits) in cases {
            let snap = snapshot(vec![node(
                NodeBuilder::new("n").build(),
                vec![used(uip, uproto, uport)],
            )]);
            let p = pod(PodBuilder::new("p").host_port(wip, wproto, wport).build());
            let (_, pre) = NodePorts.pre_filter(&mut CycleState::new(), &p, &snap);
            assert!(pre.is_success());
            let out = filter_all(&NodePorts, &state, &p, &snap);
            assert_eq!(
                out[0].is_none(),
                fits,
                "want {wip}/{wproto}/{wport} used {uip}/{uproto}/{uport}"
            );
            if let Some(s) = &out[0] {
                assert_eq!(s.code(), Code::Unschedulable);
                assert_eq!(s.message(), ERR_REASON);
            }
        }
        let no_ports = pod(PodBuilder::new("p").build());
        let snap = snapshot(vec![]);
        assert!(
            NodePorts
                .pre_filter(&mut CycleState::new(), &no_ports, &snap)
                .1
                .is_skip()
        );
    }
}
