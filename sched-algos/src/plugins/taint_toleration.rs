//! TaintToleration (upstream tainttoleration/taint_toleration.go).
//!
//! Filter: the first NoSchedule/NoExecute taint the pod does not tolerate rejects the
//! node, `UnschedulableAndUnresolvable`, "node(s) had untolerated taint {key: value}".
//! Score: the number of PreferNoSchedule taints not tolerated by the pod's tolerations
//! with effect PreferNoSchedule or empty; normalised by `DefaultNormalizeScore(100,
//! reverse=true)`, so fewer intolerable taints score higher.

use crate::cache::{Snapshot, flags};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Normalization, Plugin, PreScorePlugin, ScorePlugin,
    default_normalize_score,
};
use crate::node_info::NodeInfo;
use crate::pod_info::{PodInfo, TaintEffect, Toleration, tolerations_tolerate};
use crate::status::{Code, Status};

pub const NAME: &str = "TaintToleration";
const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

#[derive(Debug, Default)]
pub struct TaintToleration;

impl Plugin for TaintToleration {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let untolerated = node
            .taints
            .iter()
            .filter(|t| t.effect.blocks_scheduling())
            .find(|t| !tolerations_tolerate(&pod.tolerations, t));
        match untolerated {
            None => Status::success(),
            Some(t) => Status::new(
                Code::UnschedulableAndUnresolvable,
                format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value),
            ),
        }
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
            if slot.is_none() && f[idx as usize] & flags::HARD_TAINTS != 0 {
                let s = self.filter(state, pod, snap.node(idx));
                if !s.is_success() {
                    *slot = Some(s.with_plugin(NAME));
                }
            }
        }
    }
}

/// The pod's tolerations that can tolerate a PreferNoSchedule taint.
struct PreScoreState {
    tolerations: Vec<Toleration>,
}

fn prefer_no_schedule_tolerations(pod: &PodInfo) -> Vec<Toleration> {
    pod.tolerations
        .iter()
        .filter(|t| {
            t.effect
                .as_ref()
                .is_none_or(|e| *e == TaintEffect::PreferNoSchedule)
        })
        .cloned()
        .collect()
}

fn count_intolerable(node: &NodeInfo, tolerations: &[Toleration]) -> i64 {
    node.taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
        .filter(|t| !tolerations_tolerate(tolerations, t))
        .count() as i64
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &Snapshot, _: &[u32]) -> Status {
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                tolerations: prefer_no_schedule_tolerations(pod),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn normalization(&self) -> Normalization {
        Normalization::DefaultMax { reverse: true }
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => count_intolerable(node, &s.tolerations),
            None => count_intolerable(node, &prefer_no_schedule_tolerations(pod)),
        })
    }

    fn score_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let owned;
        let tolerations = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => &s.tolerations,
            None => {
                owned = prefer_no_schedule_tolerations(pod);
                &owned
            }
        };
        let f = &snap.columns().flags;
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            *slot = if f[idx as usize] & flags::SOFT_TAINTS == 0 {
                0
            } else {
                count_intolerable(snap.node(idx), tolerations)
            };
        }
        Ok(())
    }

    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::testutil::{filter_all, node, pod, score_all, snapshot};

    #[test]
    fn filter_golden() {
        let snap = snapshot(vec![
            node(NodeBuilder::new("clean").build(), vec![]),
            node(
                NodeBuilder::new("gpu")
                    .taint("dedicated", "gpu", "NoSchedule")
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("evict")
                    .taint("maint", "", "NoExecute")
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("soft")
                    .taint("slow", "", "PreferNoSchedule")
                    .build(),
                vec![],
            ),
        ]);
        let state = CycleState::new();
        let plain = pod(PodBuilder::new("p").build());
        let out = filter_all(&TaintToleration, &state, &plain, &snap);
        assert!(out[0].is_none());
        let s = out[1].as_ref().expect("rejected");
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(
            s.message(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        assert_eq!(
            out[2].as_ref().map(Status::message).as_deref(),
            Some("node(s) had untolerated taint {maint: }")
        );
        assert!(out[3].is_none(), "PreferNoSchedule never filters");

        // (toleration key, operator, value, effect) -> fits "gpu" node?
        let cases = [
            (("dedicated", "Equal", "gpu", "NoSchedule"), true),
            (("dedicated", "", "gpu", ""), true),
            (("dedicated", "Equal", "cpu", "NoSchedule"), false),
            (("dedicated", "Exists", "", ""), true),
            (("", "Exists", "", ""), true),
            (("dedicated", "Exists", "", "NoExecute"), false),
            (("dedicated", "Bogus", "gpu", ""), false),
        ];
        for ((k, op, v, e), fits) in cases {
            let p = pod(PodBuilder::new("t").toleration(k, op, v, e).build());
            let out = filter_all(&TaintToleration, &state, &p, &snap);
            assert_eq!(out[1].is_none(), fits, "toleration {k} {op} {v} {e}");
        }
    }

    /// Upstream taint_toleration_test.go `TestTaintTolerationScore`: node1 has no
    /// intolerable PreferNoSchedule taint, node2 one, node3 two. Raw counts 0, 1, 2;
    /// reversed normalisation: 100 - 100*c/2 = 100, 50, 0.
    #[test]
    fn score_golden() {
        let snap = snapshot(vec![
            node(
                NodeBuilder::new("n1")
                    .taint("foo", "bar", "PreferNoSchedule")
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("n2")
                    .taint("foo", "bar", "PreferNoSchedule")
                    .taint("cpu-type", "arm64", "PreferNoSchedule")
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("n3")
                    .taint("cpu-type", "arm64", "PreferNoSchedule")
                    .taint("disk-type", "ssd", "PreferNoSchedule")
                    .taint("foo", "bar", "NoSchedule")
                    .build(),
                vec![],
            ),
        ]);
        let p = pod(PodBuilder::new("p")
            .toleration("foo", "Equal", "bar", "PreferNoSchedule")
            .build());
        let mut state = CycleState::new();
        assert!(
            TaintToleration
                .pre_score(&mut state, &p, &snap, &[0, 1, 2])
                .is_success()
        );
        let (raw, norm) = score_all(&TaintToleration, &state, &p, &snap);
        assert_eq!(raw, [0, 1, 2]);
        assert_eq!(norm, [100, 50, 0]);
        // No intolerable taints anywhere: all reversed to 100.
        let tolerant = pod(PodBuilder::new("t")
            .toleration("", "Exists", "", "")
            .build());
        let (_, norm) = score_all(&TaintToleration, &CycleState::new(), &tolerant, &snap);
        assert_eq!(norm, [100, 100, 100]);
    }
}
