//! Inter-pod affinity terms as upstream's `framework.AffinityTerm` parses and matches
//! them (pkg/scheduler/framework/types.go: `newAffinityTerm`, `AffinityTerm.Matches`,
//! `getNamespacesFromPodAffinityTerm`).
//!
//! A term selects pods by label selector within a set of namespaces: the listed
//! `namespaces`, or those whose labels match `namespaceSelector`; with neither, the
//! namespace of the pod that owns the term. A nil label selector or nil namespace
//! selector selects nothing; an empty one (`{}`) selects everything.
//!
//! `matchLabelKeys` / `mismatchLabelKeys` are merged into the selector as
//! `key in (value)` / `key notin (value)` with the owning pod's label values (upstream
//! does this at pod creation in the API server; doing it again adds the same
//! requirement, so both orders agree).

use std::collections::BTreeMap;

use bosun_api::labels::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1 as corev1;

use crate::cache::Snapshot;

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// One parsed `PodAffinityTerm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    /// Sorted, deduplicated namespace names.
    pub namespaces: Vec<String>,
    pub namespace_selector: LabelSelector,
    pub selector: LabelSelector,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Parses a term owned by a pod in `owner_ns` with labels `owner_labels`.
    pub fn parse(
        term: &corev1::PodAffinityTerm,
        owner_ns: &str,
        owner_labels: &BTreeMap<String, String>,
    ) -> Result<AffinityTerm, String> {
        let mut selector =
            LabelSelector::from_k8s(term.label_selector.as_ref()).map_err(|e| e.to_string())?;
        let mut extra = Vec::new();
        let keyed = |keys: &Option<Vec<String>>, op: Operator, extra: &mut Vec<Requirement>| {
            for key in keys.iter().flatten() {
                if let Some(v) = owner_labels.get(key) {
                    let r = Requirement::new(key, op, vec![v.clone()], "");
                    extra.push(r.map_err(|e| e.to_string())?);
                }
            }
            Ok::<(), String>(())
        };
        // matchLabelKeys needs a label selector (API validation); without one the
        // selector stays nothing.
        if term.label_selector.is_some() {
            keyed(&term.match_label_keys, Operator::In, &mut extra)?;
            keyed(&term.mismatch_label_keys, Operator::NotIn, &mut extra)?;
        }
        if !extra.is_empty() {
            let mut reqs = selector.requirements().to_vec();
            for r in extra {
                if !reqs.contains(&r) {
                    reqs.push(r);
                }
            }
            selector = LabelSelector::from_requirements(reqs);
        }
        let namespace_selector =
            LabelSelector::from_k8s(term.namespace_selector.as_ref()).map_err(|e| e.to_string())?;
        let listed = term.namespaces.as_deref().unwrap_or_default();
        let mut namespaces: Vec<String> = if listed.is_empty() && term.namespace_selector.is_none()
        {
            vec![owner_ns.to_owned()]
        } else {
            listed.to_vec()
        };
        namespaces.sort();
        namespaces.dedup();
        Ok(AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Upstream's `AffinityTerm.Matches`: the pod is in one of the term's namespaces (by
    /// name, or by its namespace's labels `ns_labels`, `None` when unknown) and its
    /// labels match the selector.
    pub fn matches(
        &self,
        pod_ns: &str,
        pod_labels: &BTreeMap<String, String>,
        ns_labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let in_ns = self
            .namespaces
            .binary_search_by(|n| n.as_str().cmp(pod_ns))
            .is_ok()
            || self
                .namespace_selector
                .matches(ns_labels.unwrap_or(&NO_LABELS));
        in_ns && self.selector.matches(pod_labels)
    }

    /// Upstream's `mergeAffinityTermNamespacesIfNotEmpty`, for the incoming pod's own
    /// terms: a non-empty namespace selector is resolved against the snapshot's
    /// namespaces into names, and becomes nothing. An empty selector (everything) stays.
    pub fn with_resolved_namespaces(&self, snap: &Snapshot) -> AffinityTerm {
        let mut t = self.clone();
        if t.namespace_selector.is_everything() {
            return t;
        }
        for (name, labels) in snap.namespaces() {
            if t.namespace_selector.matches(labels) {
                t.namespaces.push(name.clone());
            }
        }
        t.namespaces.sort();
        t.namespaces.dedup();
        t.namespace_selector = LabelSelector::nothing();
        t
    }
}

/// A preferred term and its weight (1..=100 by API validation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

/// A pod's inter-pod affinity, parsed once (upstream's `PodInfo` term fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAffinityTerms {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Parse errors; a list that failed to parse is left empty, as upstream does.
    pub error: Option<String>,
}

impl PodAffinityTerms {
    pub fn parse(pod: &corev1::Pod) -> PodAffinityTerms {
        let mut out = PodAffinityTerms::default();
        let Some(aff) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
            return out;
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels = bosun_api::labels::labels_of(&pod.metadata);
        let mut errors = Vec::new();
        let mut required = |terms: Option<&Vec<corev1::PodAffinityTerm>>, what: &str| {
            let parsed: Result<Vec<AffinityTerm>, String> = terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::parse(t, ns, labels))
                .collect();
            parsed.unwrap_or_else(|e| {
                errors.push(format!("{what}: {e}"));
                Vec::new()
            })
        };
        let pa = aff.pod_affinity.as_ref();
        let paa = aff.pod_anti_affinity.as_ref();
        out.required_affinity = required(
            pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            "requiredAffinityTerms",
        );
        out.required_anti_affinity = required(
            paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            "requiredAntiAffinityTerms",
        );
        let mut preferred = |terms: Option<&Vec<corev1::WeightedPodAffinityTerm>>, what: &str| {
            let parsed: Result<Vec<WeightedAffinityTerm>, String> = terms
                .into_iter()
                .flatten()
                .map(|t| {
                    Ok(WeightedAffinityTerm {
                        term: AffinityTerm::parse(&t.pod_affinity_term, ns, labels)?,
                        weight: i64::from(t.weight),
                    })
                })
                .collect();
            parsed.unwrap_or_else(|e| {
                errors.push(format!("{what}: {e}"));
                Vec::new()
            })
        };
        out.preferred_affinity = preferred(
            pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            "preferredAffinityTerms",
        );
        out.preferred_anti_affinity = preferred(
            paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            "preferredAntiAffinityTerms",
        );
        if !errors.is_empty() {
            out.error = Some(errors.join("; "));
        }
        out
    }

    /// Upstream's `PodsWithAffinity` membership: any inter-pod (anti-)affinity term.
    pub fn has_any(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// Upstream's `PodsWithRequiredAntiAffinity` membership.
    pub fn has_required_anti_affinity(&self) -> bool {
        !self.required_anti_affinity.is_empty()
    }
}
