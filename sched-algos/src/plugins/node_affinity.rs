//! NodeAffinity (upstream nodeaffinity/node_affinity.go).
//!
//! PreFilter: Skip when the pod has no nodeSelector, no required affinity and the
//! profile adds none; restricts the nodes when every required term names nodes by
//! `metadata.name`; "pod affinity terms conflict" when those names do not overlap.
//! Filter: the scheduler-enforced `addedAffinity`, then nodeSelector AND required
//! terms; failures are `UnschedulableAndUnresolvable`.
//! Score: the sum of the weights of the matching preferred terms (pod's plus
//! `addedAffinity`'s); normalised by `DefaultNormalizeScore(100, reverse=false)`.

use k8s_openapi::api::core::v1 as corev1;
use serde::Deserialize;

use crate::cache::Snapshot;
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, Normalization, Plugin, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, ScorePlugin, default_normalize_score,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::registry::ConfigError;
use crate::selectors::{NodeSelector, PreferredTerms};
use crate::status::{Code, Status};

pub const NAME: &str = "NodeAffinity";
/// Upstream's `ErrReasonPod`.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// Upstream's `errReasonEnforced`.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
/// Upstream's `errReasonConflict`.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

/// `NodeAffinityArgs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAffinityArgs {
    #[serde(default)]
    pub added_affinity: Option<corev1::NodeAffinity>,
}

#[derive(Debug, Default)]
pub struct NodeAffinity {
    added_required: Option<NodeSelector>,
    added_preferred: Option<PreferredTerms>,
}

impl NodeAffinity {
    pub fn new(args: &NodeAffinityArgs) -> Result<NodeAffinity, ConfigError> {
        let Some(added) = &args.added_affinity else {
            return Ok(NodeAffinity::default());
        };
        let added_required = added
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(NodeSelector::parse);
        let preferred = added
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
            .unwrap_or_default();
        let added_preferred =
            PreferredTerms::parse(preferred).map_err(|message| ConfigError::InvalidArgs {
                plugin: NAME.to_owned(),
                message,
            })?;
        Ok(NodeAffinity {
            added_required,
            added_preferred: (!added_preferred.terms.is_empty()).then_some(added_preferred),
        })
    }
}

impl Plugin for NodeAffinity {
    /// Reads only the pod and the node at hand.
    fn node_local(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.required_affinity.is_none()
            && self.added_required.is_none()
            && pod.node_selector.is_empty()
        {
            return (None, Status::skip());
        }
        match &pod.required_node_names {
            Some(names) if names.is_empty() => (
                None,
                Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_CONFLICT),
            ),
            Some(names) => (
                Some(PreFilterResult {
                    node_names: names.clone(),
                }),
                Status::success(),
            ),
            None => (None, Status::success()),
        }
    }
}

/// nodeSelector and required affinity (upstream's `RequiredNodeAffinity.Match`).
pub fn pod_matches_node(pod: &PodInfo, node: &NodeInfo) -> bool {
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    selector_ok
        && pod
            .required_affinity
            .as_ref()
            .is_none_or(|sel| sel.matches(&node.labels, &node.name))
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if let Some(added) = &self.added_required
            && !added.matches(&node.labels, &node.name)
        {
            return Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_ENFORCED);
        }
        if !pod_matches_node(pod, node) {
            return Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_POD);
        }
        Status::success()
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(&self, _: &mut CycleState, pod: &PodInfo, _: &Snapshot, _: &[u32]) -> Status {
        match &pod.preferred_affinity {
            Err(e) => Status::error(format!("parsing pod's preferred node affinity: {e}")),
            Ok(terms) if terms.terms.is_empty() && self.added_preferred.is_none() => Status::skip(),
            Ok(_) => Status::success(),
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn normalization(&self) -> Normalization {
        Normalization::DefaultMax { reverse: false }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let mut count = 0;
        if let Some(added) = &self.added_preferred {
            count += added.score(&node.labels, &node.name);
        }
        if let Ok(terms) = &pod.preferred_affinity {
            count += terms.score(&node.labels, &node.name);
        }
        Ok(count)
    }

    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NodeBuilder, PodBuilder, field_term, term};
    use crate::plugins::testutil::{filter_all, node, pod, score_all, snapshot};

    fn nodes() -> Snapshot {
        snapshot(vec![
            node(
                NodeBuilder::new("n1")
                    .label("zone", "a")
                    .label("gen", "3")
                    .build(),
                vec![],
            ),
            node(
                NodeBuilder::new("n2")
                    .label("zone", "b")
                    .label("gen", "5")
                    .build(),
                vec![],
            ),
            node(NodeBuilder::new("n3").label("zone", "c").build(), vec![]),
        ])
    }

    fn fits(pl: &NodeAffinity, p: &PodInfo) -> Vec<bool> {
        filter_all(pl, &CycleState::new(), p, &nodes())
            .iter()
            .map(Option::is_none)
            .collect()
    }

    #[test]
    fn filter_golden() {
        let pl = NodeAffinity::default();
        let cases: Vec<(PodBuilder, [bool; 3])> = vec![
            (PodBuilder::new("none"), [true, true, true]),
            (
                PodBuilder::new("sel").node_selector("zone", "b"),
                [false, true, false],
            ),
            (
                PodBuilder::new("in").required_term(term(&[("zone", "In", &["a", "c"])])),
                [true, false, true],
            ),
            (
                PodBuilder::new("notin").required_term(term(&[("zone", "NotIn", &["a"])])),
                [false, true, true],
            ),
            (
                PodBuilder::new("exists").required_term(term(&[("gen", "Exists", &[])])),
                [true, true, false],
            ),
            (
                PodBuilder::new("dne").required_term(term(&[("gen", "DoesNotExist", &[])])),
                [false, false, true],
            ),
            (
                PodBuilder::new("gt").required_term(term(&[("gen", "Gt", &["4"])])),
                [false, true, false],
            ),
            (
                PodBuilder::new("lt").required_term(term(&[("gen", "Lt", &["4"])])),
                [true, false, false],
            ),
            // Terms are ORed; expressions within a term ANDed.
            (
                PodBuilder::new("or")
                    .required_term(term(&[("zone", "In", &["a"])]))
                    .required_term(term(&[("zone", "In", &["c"])])),
                [true, false, true],
            ),
            (
                PodBuilder::new("and")
                    .required_term(term(&[("zone", "In", &["a", "b"]), ("gen", "Gt", &["4"])])),
                [false, true, false],
            ),
            // nodeSelector AND affinity.
            (
                PodBuilder::new("both")
                    .node_selector("zone", "a")
                    .required_term(term(&[("zone", "In", &["b"])])),
                [false, false, false],
            ),
            (
                PodBuilder::new("field").required_term(field_term(&[(
                    "metadata.name",
                    "In",
                    &["n2"],
                )])),
                [false, true, false],
            ),
            // An invalid term never matches (bad operator).
            (
                PodBuilder::new("bad").required_term(term(&[("zone", "Foo", &["a"])])),
                [false, false, false],
            ),
            // An empty term matches nothing.
            (
                PodBuilder::new("empty").required_term(term(&[])),
                [false, false, false],
            ),
        ];
        for (b, want) in cases {
            let p = pod(b.build());
            assert_eq!(fits(&pl, &p), want, "pod {}", p.name);
        }
        let p = pod(PodBuilder::new("sel").node_selector("zone", "b").build());
        let out = filter_all(&pl, &CycleState::new(), &p, &nodes());
        assert_eq!(
            out[0].as_ref().map(Status::message).as_deref(),
            Some(ERR_REASON_POD)
        );
        assert_eq!(
            out[0].as_ref().map(Status::code),
            Some(Code::UnschedulableAndUnresolvable)
        );
    }

    #[test]
    fn added_affinity_is_enforced() {
        let args: NodeAffinityArgs = serde_yaml::from_str(
            "addedAffinity:\n  requiredDuringSchedulingIgnoredDuringExecution:\n    nodeSelectorTerms:\n    - matchExpressions:\n      - {key: zone, operator: In, values: [a]}\n",
        )
        .unwrap();
        let pl = NodeAffinity::new(&args).unwrap();
        let p = pod(PodBuilder::new("p").build());
        let out = filter_all(&pl, &CycleState::new(), &p, &nodes());
        assert!(out[0].is_none());
        assert_eq!(
            out[1].as_ref().map(Status::message).as_deref(),
            Some(ERR_REASON_ENFORCED)
        );
        assert!(
            pl.pre_filter(&mut CycleState::new(), &p, &nodes())
                .1
                .is_success()
        );
    }

    #[test]
    fn pre_filter_golden() {
        let pl = NodeAffinity::default();
        let snap = nodes();
        let run = |b: PodBuilder| pl.pre_filter(&mut CycleState::new(), &pod(b.build()), &snap);
        assert!(run(PodBuilder::new("p")).1.is_skip());
        let (res, s) = run(PodBuilder::new("p").node_selector("zone", "a"));
        assert!(s.is_success() && res.is_none());
        let (res, _) = run(PodBuilder::new("p").required_term(field_term(&[(
            "metadata.name",
            "In",
            &["n1", "n2"],
        )])));
        assert_eq!(res.unwrap().node_names, ["n1", "n2"]);
        // A term without a name restriction makes every node eligible.
        let (res, _) = run(PodBuilder::new("p")
            .required_term(field_term(&[("metadata.name", "In", &["n1"])]))
            .required_term(term(&[("zone", "In", &["c"])])));
        assert!(res.is_none());
        // Intersection within a term is empty: conflict.
        let (_, s) = run(
            PodBuilder::new("p").required_term(corev1::NodeSelectorTerm {
                match_expressions: None,
                match_fields: field_term(&[
                    ("metadata.name", "In", &["n1"]),
                    ("metadata.name", "In", &["n2"]),
                ])
                .match_fields,
            }),
        );
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_CONFLICT);
    }

    /// Preferred weights: n1 matches (zone=a, 2) and (gen Exists, 5) = 7; n2 matches
    /// (gen Exists) = 5; n3 none = 0. DefaultNormalizeScore: 100*7/7 = 100,
    /// 100*5/7 = 71 (integer division), 0.
    #[test]
    fn score_golden() {
        let pl = NodeAffinity::default();
        let p = pod(PodBuilder::new("p")
            .preferred_term(2, term(&[("zone", "In", &["a"])]))
            .preferred_term(5, term(&[("gen", "Exists", &[])]))
            .preferred_term(0, term(&[("zone", "In", &["c"])]))
            .build());
        let snap = nodes();
        let mut state = CycleState::new();
        assert!(pl.pre_score(&mut state, &p, &snap, &[0, 1, 2]).is_success());
        let (raw, norm) = score_all(&pl, &state, &p, &snap);
        assert_eq!(raw, [7, 5, 0]);
        assert_eq!(norm, [100, 71, 0]);
        let none = pod(PodBuilder::new("n").build());
        assert!(pl.pre_score(&mut state, &none, &snap, &[0, 1, 2]).is_skip());
        let bad = pod(PodBuilder::new("b")
            .preferred_term(1, term(&[("zone", "Bogus", &["a"])]))
            .build());
        assert_eq!(
            pl.pre_score(&mut state, &bad, &snap, &[0]).code(),
            Code::Error
        );
    }
}
