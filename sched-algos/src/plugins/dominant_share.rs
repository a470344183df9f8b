//! DominantShare: placement by dominant resource share, after Dominant Resource
//! Fairness (Ghodsi et al., "Dominant Resource Fairness: Fair Allocation of Multiple
//! Resource Types", NSDI '11). Bosun-specific; no upstream equivalent.
//!
//! DRF allocates to the user whose dominant share (the largest, over resources, of the
//! share of a resource's capacity they hold) is lowest, which by progressive filling
//! equalises dominant shares. Applied to placement, nodes take the users' role: a
//! node's dominant share is `max_r requested_r / allocatable_r`, and the pod goes to
//! the node whose dominant share *after* placing it is lowest, which keeps the nodes'
//! dominant shares balanced (min-max) rather than their mean (LeastAllocated):
//!
//! `score = min_r floor(100 * (alloc_r - (req_r + pod_r)) / alloc_r)`
//!       `= floor(100 * (1 - max_r (req_r + pod_r) / alloc_r))`
//!
//! over the configured resources `r` the node has (`alloc_r > 0`), with exact requests
//! (no non-zero defaults), 0 when a resource would be over-committed or the node has
//! none of the resources. Args (`DominantShareArgs`): `resources`, default `cpu`,
//! `memory` and [`GPU_MILLI_RESOURCE`].

use serde::Deserialize;

use crate::framework::{CycleState, Plugin, ScorePlugin};
use crate::node_info::NodeInfo;
use crate::plugins::gpu_device::GPU_MILLI_RESOURCE;
use crate::plugins::node_resources::{MAX_SCORING_RESOURCES, least_requested_score};
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::resource::{CPU, EPHEMERAL_STORAGE, MEMORY, is_scalar_resource_name};
use crate::status::Status;

pub const NAME: &str = "DominantShare";

/// The resources multi-resource plugins weigh by default: CPU, memory and GPU (in
/// milli-GPU, which whole-GPU pods request too).
pub fn default_resources() -> Vec<String> {
    vec![CPU.into(), MEMORY.into(), GPU_MILLI_RESOURCE.into()]
}

/// Checks a multi-resource plugin's `resources`: 1 to [`MAX_SCORING_RESOURCES`]
/// distinct names the scheduler tracks.
pub fn validate_resources(plugin: &str, resources: &[String]) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::InvalidArgs {
        plugin: plugin.to_owned(),
        message,
    };
    if resources.is_empty() || resources.len() > MAX_SCORING_RESOURCES {
        return Err(invalid(format!(
            "between 1 and {MAX_SCORING_RESOURCES} resources are needed"
        )));
    }
    for (i, r) in resources.iter().enumerate() {
        let tracked =
            [CPU, MEMORY, EPHEMERAL_STORAGE].contains(&r.as_str()) || is_scalar_resource_name(r);
        if !tracked {
            return Err(invalid(format!("resource {r:?} is not tracked")));
        }
        if resources[..i].contains(r) {
            return Err(invalid(format!("resource {r:?} given twice")));
        }
    }
    Ok(())
}

/// `DominantShareArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DominantShareArgs {
    #[serde(default = "default_resources")]
    pub resources: Vec<String>,
}

impl Default for DominantShareArgs {
    fn default() -> DominantShareArgs {
        DominantShareArgs {
            resources: default_resources(),
        }
    }
}

/// DominantShare. See the module docs.
#[derive(Debug)]
pub struct DominantShare {
    resources: Vec<String>,
}

impl DominantShare {
    pub fn new(args: &DominantShareArgs) -> Result<DominantShare, ConfigError> {
        validate_resources(NAME, &args.resources)?;
        Ok(DominantShare {
            resources: args.resources.clone(),
        })
    }
}

impl Plugin for DominantShare {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl ScorePlugin for DominantShare {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let mut score = None;
        for r in &self.resources {
            let alloc = node.allocatable.amount(r);
            if alloc <= 0 {
                continue;
            }
            let requested = node.requested.amount(r) + pod.requests.amount(r);
            let s = least_requested_score(requested, alloc);
            score = Some(score.map_or(s, |best: i64| best.min(s)));
        }
        Ok(score.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder};
    use crate::plugins::gpu_device::GPU_RESOURCE;
    use crate::plugins::testutil::{node, pod, score_all, snapshot};

    /// Hand-worked. Pod: 1 CPU, 2 GiB, 500 milli-GPU.
    /// - a: 4 CPU / 8 GiB / 2 GPUs, holding 1 CPU, 2 GiB, 0 GPU. After: cpu 2/4,
    ///   memory 4/8, gpu 500/2000: dominant share 0.5 -> 50.
    /// - b: 8 CPU / 8 GiB / 4 GPUs, holding 0 CPU, 5 GiB, 1000 milli-GPU. After: cpu 1/8,
    ///   memory 7/8, gpu 1500/4000: dominant 0.875 -> 100 * 1/8 = 12.5 -> 12.
    /// - c: 16 CPU / 64 GiB, no GPU (gpu left out). After: cpu 1/16 (93.75 -> 93),
    ///   memory 2/64 (96.875 -> 96): min 93.
    #[test]
    fn golden() {
        let gpus = |b: NodeBuilder, n: u32| {
            b.allocatable(GPU_RESOURCE, &n.to_string())
                .allocatable(GPU_MILLI_RESOURCE, &(n * 1000).to_string())
        };
        let a = node(
            gpus(NodeBuilder::new("a").capacity("4", "8Gi", 110), 2).build(),
            vec![PodBuilder::new("a0").request("1", "2Gi").build()],
        );
        let b = node(
            gpus(NodeBuilder::new("b").capacity("8", "8Gi", 110), 4).build(),
            vec![
                PodBuilder::new("b0")
                    .request("0", "5Gi")
                    .request_resource(GPU_MILLI_RESOURCE, "1000")
                    .build(),
            ],
        );
        let c = node(
            NodeBuilder::new("c").capacity("16", "64Gi", 110).build(),
            vec![],
        );
        let incoming = pod(PodBuilder::new("p")
            .request("1", "2Gi")
            .request_resource(GPU_MILLI_RESOURCE, "500")
            .build());
        let plugin = DominantShare::new(&DominantShareArgs::default()).unwrap();
        let (raw, normalized) = score_all(
            &plugin,
            &CycleState::new(),
            &incoming,
            &snapshot(vec![a, b, c]),
        );
        assert_eq!(raw, [50, 12, 93]);
        assert_eq!(normalized, raw);
    }

    #[test]
    fn args_are_checked() {
        for bad in [
            vec![],
            vec!["cpu".into(), "cpu".into()],
            vec!["bogus".into()],
        ] {
            assert!(DominantShare::new(&DominantShareArgs { resources: bad }).is_err());
        }
    }
}
