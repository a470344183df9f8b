//! FirstFit: the first feasible node in name order gets 100, every other node 0, so
//! a profile whose only score plugin is FirstFit places each pod on the lowest-named
//! node that passes the filters (first fit, the classic bin-packing heuristic; the
//! FGD paper's artifact has it as `FirstFitScore`). Bosun-specific.
//!
//! PreScore finds that node among the feasible ones; Score reads it back.

use crate::cache::Snapshot;
use crate::framework::{
    CycleState, MAX_NODE_SCORE, MIN_NODE_SCORE, Plugin, PreScorePlugin, ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

pub const NAME: &str = "FirstFit";
const PRE_SCORE_KEY: &str = "PreScoreFirstFit";

/// The name of the first feasible node.
struct First(String);

#[derive(Debug, Default)]
pub struct FirstFit;

impl Plugin for FirstFit {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreScorePlugin for FirstFit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        snapshot: &Snapshot,
        feasible: &[u32],
    ) -> Status {
        let first = feasible
            .iter()
            .map(|&idx| snapshot.node(idx).name.as_str())
            .min();
        match first {
            Some(name) => {
                state.write(PRE_SCORE_KEY, First(name.to_owned()));
                Status::success()
            }
            None => Status::skip(),
        }
    }
}

impl ScorePlugin for FirstFit {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let first = state
            .read::<First>(PRE_SCORE_KEY)
            .ok_or_else(|| Status::error(format!("reading {PRE_SCORE_KEY:?} from cycle state")))?;
        Ok(if first.0 == node.name {
            MAX_NODE_SCORE
        } else {
            MIN_NODE_SCORE
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::testutil::{node, pod, score_all, snapshot};

    #[test]
    fn the_lowest_name_among_the_feasible_wins() {
        let nodes = ["n3", "n1", "n2"].map(|n| {
            node(
                NodeBuilder::new(n).capacity("4", "4Gi", 110).build(),
                vec![],
            )
        });
        let snap = snapshot(nodes.into());
        let p = pod(PodBuilder::new("p").request("1", "1Gi").build());
        let mut state = CycleState::new();
        // n1 (index 1) is not feasible: n2 wins.
        assert!(
            FirstFit
                .pre_score(&mut state, &p, &snap, &[0, 2])
                .is_success()
        );
        let (raw, _) = score_all(&FirstFit, &state, &p, &snap);
        assert_eq!(raw, [0, 0, 100]);
        assert!(
            FirstFit
                .pre_score(&mut state, &p, &snap, &[0, 1, 2])
                .is_success()
        );
        assert_eq!(score_all(&FirstFit, &state, &p, &snap).0, [0, 100, 0]);
        assert!(
            FirstFit
                .score(&CycleState::new(), &p, snap.node(0))
                .is_err()
        );
    }
}
