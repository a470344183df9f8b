//! TetrisAlignment: the multi-resource alignment score of Tetris (Grandl et al.,
//! "Multi-Resource Packing for Cluster Schedulers", SIGCOMM '14, section 3.1).
//! Bosun-specific; no upstream equivalent.
//!
//! Tetris places a task where its peak demand vector is best aligned with the
//! machine's available resources: the dot product of the two vectors, both normalised
//! by the machine's capacity, so that no resource dominates by its unit:
//!
//! `alignment = sum_r (pod_r / alloc_r) * ((alloc_r - req_r) / alloc_r)`
//!
//! over the configured resources the node has (`alloc_r > 0`), with exact requests and
//! the availability before placement (clamped at 0). The raw score is
//! `round(alignment * 1e6)`; NormalizeScore scales the best node to 100
//! (upstream's `DefaultNormalizeScore`), so a node with twice the alignment of another
//! scores twice as high. Args (`TetrisAlignmentArgs`): `resources`, default `cpu`,
//! `memory` and `bosun.io/gpu-milli`.

use serde::Deserialize;

use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, ScorePlugin, default_normalize_score};
use crate::node_info::NodeInfo;
use crate::plugins::dominant_share::{default_resources, validate_resources};
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::status::Status;

pub const NAME: &str = "TetrisAlignment";
/// Raw scores are the alignment times this.
pub const ALIGNMENT_SCALE: f64 = 1e6;

/// `TetrisAlignmentArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TetrisAlignmentArgs {
    #[serde(default = "default_resources")]
    pub resources: Vec<String>,
}

impl Default for TetrisAlignmentArgs {
    fn default() -> TetrisAlignmentArgs {
        TetrisAlignmentArgs {
            resources: default_resources(),
        }
    }
}

/// TetrisAlignment. See the module docs.
#[derive(Debug)]
pub struct TetrisAlignment {
    resources: Vec<String>,
}

impl TetrisAlignment {
    pub fn new(args: &TetrisAlignmentArgs) -> Result<TetrisAlignment, ConfigError> {
        validate_resources(NAME, &args.resources)?;
        Ok(TetrisAlignment {
            resources: args.resources.clone(),
        })
    }

    /// The alignment of `pod` with `node`'s available resources (see the module docs).
    pub fn alignment(&self, pod: &PodInfo, node: &NodeInfo) -> f64 {
        let mut sum = 0.0;
        for r in &self.resources {
            let alloc = node.allocatable.amount(r);
            let demand = pod.requests.amount(r);
            if alloc <= 0 || demand <= 0 {
                continue;
            }
            let available = (alloc - node.requested.amount(r)).max(0);
            let alloc = alloc as f64;
            sum += (demand as f64 / alloc) * (available as f64 / alloc);
        }
        sum
    }
}

impl Plugin for TetrisAlignment {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl ScorePlugin for TetrisAlignment {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok((self.alignment(pod, node) * ALIGNMENT_SCALE).round() as i64)
    }

    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::gpu_device::{GPU_MILLI_RESOURCE, GPU_RESOURCE};
    use crate::plugins::testutil::{node, pod, score_all, snapshot};

    /// Hand-worked. Pod: 1 CPU, 2 GiB, 500 milli-GPU.
    /// - a: 4 CPU / 8 GiB / 2 GPUs holding 1 CPU, 2 GiB, 1000 milli-GPU:
    ///   cpu 1/4 * 3/4 = 0.1875, memory 2/8 * 6/8 = 0.1875, gpu 500/2000 * 1000/2000 =
    ///   0.125: 0.5 -> 500000.
    /// - b: 8 CPU / 8 GiB / 2 GPUs holding 6 GiB: cpu 1/8 * 1 = 0.125, memory 2/8 * 2/8 =
    ///   0.0625, gpu 0.25 * 1 = 0.25: 0.4375 -> 437500.
    /// - c: 4 CPU / 4 GiB, no GPU, over-committed memory (5 GiB held: available 0):
    ///   cpu 1/4 * 1 = 0.25, memory 0, gpu left out: 250000.
    ///
    /// Normalised to the best (a): 100, 437500 * 100 / 500000 = 87, 50.
    #[test]
    fn golden() {
        let gpus = |b: NodeBuilder, n: u32| {
            b.allocatable(GPU_RESOURCE, &n.to_string())
                .allocatable(GPU_MILLI_RESOURCE, &(n * 1000).to_string())
        };
        let a = node(
            gpus(NodeBuilder::new("a").capacity("4", "8Gi", 110), 2).build(),
            vec![
                PodBuilder::new("a0")
                    .request("1", "2Gi")
                    .request_resource(GPU_MILLI_RESOURCE, "1000")
                    .build(),
            ],
        );
        let b = node(
            gpus(NodeBuilder::new("b").capacity("8", "8Gi", 110), 2).build(),
            vec![PodBuilder::new("b0").request("0", "6Gi").build()],
        );
        let c = node(
            NodeBuilder::new("c").capacity("4", "4Gi", 110).build(),
            vec![PodBuilder::new("c0").request("0", "5Gi").build()],
        );
        let incoming = pod(PodBuilder::new("p")
            .request("1", "2Gi")
            .request_resource(GPU_MILLI_RESOURCE, "500")
            .build());
        let plugin = TetrisAlignment::new(&TetrisAlignmentArgs::default()).unwrap();
        let (raw, normalized) = score_all(
            &plugin,
            &CycleState::new(),
            &incoming,
            &snapshot(vec![a, b, c]),
        );
        assert_eq!(raw, [500_000, 437_500, 250_000]);
        assert_eq!(normalized, [100, 87, 50]);
    }

    #[test]
    fn a_pod_requesting_nothing_scores_zero_everywhere() {
        let n = node(
            NodeBuilder::new("n").capacity("4", "4Gi", 110).build(),
            vec![],
        );
        let plugin = TetrisAlignment::new(&TetrisAlignmentArgs::default()).unwrap();
        let empty = pod(PodBuilder::new("e").build());
        let (raw, normalized) = score_all(&plugin, &CycleState::new(), &empty, &snapshot(vec![n]));
        assert_eq!((raw, normalized), (vec![0], vec![0]));
    }
}
