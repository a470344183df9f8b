//! ImageLocality (upstream imagelocality/image_locality.go): favours nodes that
//! already have the pod's images, scaled by how widely each image is spread.
//!
//! For each container image (init containers and containers) present on the node:
//! `sum += int64(size * numNodesWithImage / totalNumNodes)`. Then, with
//! `minThreshold = 23 MiB` and `maxThreshold = 1000 MiB * numContainers`, the sum is
//! clamped to `[min, max]` and `score = 100 * (sum - min) / (max - min)`.
//! Images are matched by upstream's `normalizedImageName` (`:latest` when untagged).

use crate::cache::Snapshot;
use crate::framework::{
    CycleState, MAX_NODE_SCORE, Normalization, Plugin, PreScorePlugin, ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

pub const NAME: &str = "ImageLocality";
const PRE_SCORE_KEY: &str = "PreScoreImageLocality";
const MB: i64 = 1024 * 1024;
/// Upstream's `minThreshold`.
pub const MIN_THRESHOLD_BYTES: i64 = 23 * MB;
/// Upstream's `maxContainerThreshold`, per container.
pub const MAX_CONTAINER_THRESHOLD_BYTES: i64 = 1000 * MB;

#[derive(Debug, Default)]
pub struct ImageLocality;

impl Plugin for ImageLocality {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

/// Per pod image: the fraction of all nodes that have it.
struct PreScoreState {
    spreads: Vec<f64>,
}

fn spreads(pod: &PodInfo, snap: &Snapshot) -> Vec<f64> {
    let total = snap.n_nodes().max(1) as f64;
    pod.images
        .iter()
        .map(|i| f64::from(snap.image_num_nodes(i)) / total)
        .collect()
}

fn node_score(pod: &PodInfo, node: &NodeInfo, spreads: &[f64]) -> i64 {
    let sum: i64 = pod
        .images
        .iter()
        .zip(spreads)
        .filter_map(|(image, spread)| {
            node.images
                .get(image)
                .map(|&size| (size as f64 * spread) as i64)
        })
        .sum();
    calculate_priority(sum, pod.n_containers)
}

/// Upstream's `calculatePriority`.
pub fn calculate_priority(sum_scores: i64, n_containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD_BYTES * n_containers as i64;
    if max_threshold <= MIN_THRESHOLD_BYTES {
        // No containers: upstream would divide by a negative range; nothing to favour.
        return 0;
    }
    let sum = sum_scores.clamp(MIN_THRESHOLD_BYTES, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD_BYTES) / (max_threshold - MIN_THRESHOLD_BYTES)
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        _: &[u32],
    ) -> Status {
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                spreads: spreads(pod, snap),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn normalization(&self) -> Normalization {
        Normalization::Identity
    }

    /// Without PreScore state the spread is unknown; counts the image as on this node
    /// only, which is what PreScore computes for a one-node snapshot.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => Ok(node_score(pod, node, &s.spreads)),
            None => Err(Status::error("ImageLocality: PreScore state missing")),
        }
    }

    fn score_batch(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[u32],
        out: &mut [i64],
    ) -> Result<(), Status> {
        let s = state
            .read::<PreScoreState>(PRE_SCORE_KEY)
            .ok_or_else(|| Status::error("ImageLocality: PreScore state missing"))?;
        for (slot, &idx) in out.iter_mut().zip(nodes) {
            *slot = node_score(pod, snap.node(idx), &s.spreads);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::testutil::{node, pod, score_all, snapshot};

    fn nodes() -> Snapshot {
        snapshot(vec![
            node(
                NodeBuilder::new("n1")
                    .image(&["gcr.io/40:latest", "gcr.io/40:v1"], 40 * MB)
                    .image(&["gcr.io/300:latest"], 300 * MB)
                    .image(&["gcr.io/2000:latest"], 2000 * MB)
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("n2")
                    .image(&["gcr.io/250:latest"], 250 * MB)
                    .image(&["gcr.io/10:v1"], 10 * MB)
                    .build(),
                vec![],
            ),
        ])
    }

    fn scores(p: PodBuilder) -> Vec<i64> {
        let snap = nodes();
        let p = pod(p.build());
        let mut state = CycleState::new();
        assert!(
            ImageLocality
                .pre_score(&mut state, &p, &snap, &[0, 1])
                .is_success()
        );
        let (raw, norm) = score_all(&ImageLocality, &state, &p, &snap);
        assert_eq!(raw, norm, "no normalisation");
        raw
    }

    /// Upstream image_locality_test.go cases, worked by hand with the formula in the
    /// module docs (each image is on 1 of 2 nodes: spread 0.5).
    #[test]
    fn golden() {
        // n1: 40MB*0.5 + 300MB*0.5 = 170MB; max = 2*1000MB;
        // 100*(170-23)/(2000-23) = 14700/1977 = 7. n2: clamped to 23MB -> 0.
        assert_eq!(
            scores(
                PodBuilder::new("p")
                    .image("gcr.io/40")
                    .container("", "")
                    .image("gcr.io/300")
            ),
            [7, 0]
        );
        // n2: 250MB*0.5 = 125MB, 10MB*0.5 = 5MB: 130MB; 100*(130-23)/1977 = 5.
        assert_eq!(
            scores(
                PodBuilder::new("p")
                    .image("gcr.io/250")
                    .container("", "")
                    .image("gcr.io/10:v1")
            ),
            [0, 5]
        );
        // n1: 2000MB*0.5 = 1000MB; max = 1000MB (one container): 100.
        assert_eq!(scores(PodBuilder::new("p").image("gcr.io/2000")), [100, 0]);
        // Untagged image matches `:latest` only; `gcr.io/10` -> `gcr.io/10:latest`, absent.
        assert_eq!(scores(PodBuilder::new("p").image("gcr.io/10")), [0, 0]);
    }

    #[test]
    fn calculate_priority_bounds() {
        assert_eq!(calculate_priority(0, 1), 0);
        assert_eq!(calculate_priority(i64::MAX / 2, 1), 100);
        assert_eq!(calculate_priority(5 * MB, 0), 0);
    }
}
