//! Node selector terms as upstream's `component-helpers/scheduling/corev1/nodeaffinity`
//! parses and matches them: terms are ORed, a term's expressions and fields are ANDed,
//! an empty term matches nothing, and a term that fails to parse never matches.

use std::collections::BTreeMap;

use bosun_api::labels::{Operator, Requirement};
use k8s_openapi::api::core::v1 as corev1;

/// The one node field a selector may name (`metav1.ObjectNameField`).
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// One field requirement: `metadata.name` equal or not equal to one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub key: String,
    pub equal: bool,
    pub value: String,
}

/// One parsed `NodeSelectorTerm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSelectorTerm {
    /// `None` when the term has no `matchExpressions` (labels not checked).
    pub labels: Option<Vec<Requirement>>,
    /// `None` when the term has no `matchFields`.
    pub fields: Option<Vec<FieldRequirement>>,
    /// The parse error, if any: such a term never matches.
    pub error: Option<String>,
}

impl NodeSelectorTerm {
    /// Parses a term; `None` for an empty term (which upstream drops: it selects nothing).
    pub fn parse(term: &corev1::NodeSelectorTerm) -> Option<NodeSelectorTerm> {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let mut parsed = NodeSelectorTerm {
            labels: None,
            fields: None,
            error: None,
        };
        if !exprs.is_empty() {
            match exprs.iter().map(label_requirement).collect() {
                Ok(reqs) => parsed.labels = Some(reqs),
                Err(e) => parsed.error = Some(e),
            }
        }
        if !fields.is_empty() {
            match fields.iter().map(field_requirement).collect() {
                Ok(reqs) => parsed.fields = Some(reqs),
                Err(e) => parsed.error = Some(e),
            }
        }
        Some(parsed)
    }

    /// Whether a node with these labels and this name satisfies the term.
    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Some(reqs) = &self.labels
            && !reqs.iter().all(|r| r.matches(labels))
        {
            return false;
        }
        if let Some(reqs) = &self.fields {
            // Upstream's fields.Set has only metadata.name; a missing field reads as "".
            let all = reqs.iter().all(|r| {
                let actual = if r.key == OBJECT_NAME_FIELD {
                    node_name
                } else {
                    ""
                };
                (actual == r.value) == r.equal
            });
            // Upstream skips field matching when the node has no fields (no name).
            if !node_name.is_empty() && !all {
                return false;
            }
        }
        true
    }
}

fn label_requirement(expr: &corev1::NodeSelectorRequirement) -> Result<Requirement, String> {
    let op = match expr.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        other => return Err(format!("{other:?} is not a valid node selector operator")),
    };
    let values = expr.values.clone().unwrap_or_default();
    Requirement::new(&expr.key, op, values, "").map_err(|e| e.to_string())
}

fn field_requirement(expr: &corev1::NodeSelectorRequirement) -> Result<FieldRequirement, String> {
    let equal = match expr.operator.as_str() {
        "In" => true,
        "NotIn" => false,
        other => {
            return Err(format!(
                "{other:?} is not a valid node field selector operator"
            ));
        }
    };
    let values = expr.values.as_deref().unwrap_or_default();
    let [value] = values else {
        return Err(format!(
            "unexpected number of value ({}) for node field selector operator {:?}",
            values.len(),
            expr.operator
        ));
    };
    Ok(FieldRequirement {
        key: expr.key.clone(),
        equal,
        value: value.clone(),
    })
}

/// A required `NodeSelector`: ORed terms; no terms means nothing matches.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeSelector {
    pub terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    pub fn parse(sel: &corev1::NodeSelector) -> NodeSelector {
        NodeSelector {
            terms: sel
                .node_selector_terms
                .iter()
                .filter_map(NodeSelectorTerm::parse)
                .collect(),
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        self.terms.iter().any(|t| t.matches(labels, node_name))
    }
}

/// Preferred terms with their weights (upstream's `PreferredSchedulingTerms`): terms of
/// weight 0 and empty terms are dropped; any parse error fails the whole list.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreferredTerms {
    pub terms: Vec<(i64, NodeSelectorTerm)>,
}

impl PreferredTerms {
    pub fn parse(terms: &[corev1::PreferredSchedulingTerm]) -> Result<PreferredTerms, String> {
        let mut out = Vec::with_capacity(terms.len());
        let mut errors = Vec::new();
        for t in terms {
            if t.weight == 0 {
                continue;
            }
            let Some(term) = NodeSelectorTerm::parse(&t.preference) else {
                continue;
            };
            match &term.error {
                Some(e) => errors.push(e.clone()),
                None => out.push((i64::from(t.weight), term)),
            }
        }
        if errors.is_empty() {
            Ok(PreferredTerms { terms: out })
        } else {
            Err(errors.join(", "))
        }
    }

    /// The sum of the weights of the terms the node matches.
    pub fn score(&self, labels: &BTreeMap<String, String>, node_name: &str) -> i64 {
        self.terms
            .iter()
            .filter(|(_, t)| t.matches(labels, node_name))
            .map(|(w, _)| w)
            .sum()
    }
}
