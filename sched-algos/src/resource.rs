//! Resource amounts as the scheduler counts them (upstream's `framework.Resource`).
//!
//! CPU is in millicores, everything else in base units (bytes, counts). Scalar
//! resources (extended resources such as `nvidia.com/gpu`, `hugepages-*`,
//! `attachable-volumes-*`, prefixed native resources) are kept sorted by name.

use std::collections::BTreeMap;

use bosun_api::quantity::{self, Quantity};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

/// Upstream's `DefaultMilliCPURequest`: the CPU a container without a CPU request is
/// counted as using, for scoring only (pkg/scheduler/util/pod_resources.go).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest`: 200 MiB, as above.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// A resource list failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource {name:?}: invalid quantity {value:?}: {source}")]
pub struct ResourceError {
    pub name: String,
    pub value: String,
    #[source]
    pub source: quantity::QuantityError,
}

/// Up to this many scalar resources, [`Resource::scalar`] scans instead of searching.
const LINEAR_SCALAR_LOOKUP: usize = 8;

/// Amounts of every resource the scheduler tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Only meaningful for a node's allocatable (`pods`).
    pub allowed_pod_number: i64,
    /// Scalar resources, sorted by name, no duplicate names, no zero entries dropped
    /// (a zero request is kept so that "requested 0" differs from "not requested").
    pub scalar: Vec<(String, i64)>,
}

/// Upstream's `schedutil.IsScalarResourceName`: extended, hugepages, prefixed native
/// or attachable-volume resources.
pub fn is_scalar_resource_name(name: &str) -> bool {
    is_extended_resource_name(name)
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

/// Upstream's `v1helper.IsExtendedResourceName`: not native (has a domain other than
/// `kubernetes.io`) and not a quota `requests.` name. API validation has already
/// checked the name is qualified.
pub fn is_extended_resource_name(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

impl Resource {
    /// Builds from a k8s resource list (upstream's `NewResource`); unknown unprefixed
    /// names are ignored as upstream does.
    pub fn from_list(list: &BTreeMap<String, K8sQuantity>) -> Result<Resource, ResourceError> {
        let mut parsed = BTreeMap::new();
        for (name, q) in list {
            parsed.insert(name.clone(), parse(name, q)?);
        }
        Ok(Resource::from_quantities(&parsed))
    }

    /// Builds from exact quantities, rounding each once (CPU to millicores rounding up,
    /// others to units rounding up), as upstream's `Resource.Add` does.
    pub fn from_quantities(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list {
            match name.as_str() {
                CPU => r.milli_cpu += q.milli_value(),
                MEMORY => r.memory += q.value(),
                EPHEMERAL_STORAGE => r.ephemeral_storage += q.value(),
                PODS => r.allowed_pod_number += q.value(),
                other if is_scalar_resource_name(other) => r.add_scalar(other, q.value()),
                _ => {}
            }
        }
        r
    }

    /// The amount of scalar resource `name`, 0 when absent.
    pub fn scalar(&self, name: &str) -> i64 {
        // Nodes and pods carry a handful of scalar resources: comparing for equality
        // (lengths first) beats a binary search's ordered string compares there.
        if self.scalar.len() <= LINEAR_SCALAR_LOOKUP {
            return self
                .scalar
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v);
        }
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1,
            Err(_) => 0,
        }
    }

    /// The amount of resource `name` in its unit: millicores for `cpu`, the scalar
    /// amount for scalar resources, 0 for names the scheduler does not track.
    pub fn amount(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.allowed_pod_number,
            other => self.scalar(other),
        }
    }

    /// Adds `amount` to scalar resource `name`, inserting it in order if absent.
    pub fn add_scalar(&mut self, name: &str, amount: i64) {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1 += amount,
            Err(i) => self.scalar.insert(i, (name.to_owned(), amount)),
        }
    }

    /// `self += other`, field by field.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (name, amount) in &other.scalar {
            self.add_scalar(name, *amount);
        }
    }

    /// `self -= other`, field by field (scalar entries stay, possibly at 0).
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (name, amount) in &other.scalar {
            self.add_scalar(name, -amount);
        }
    }

    /// Whether nothing at all is requested (upstream's all-zero check in `fitsRequest`;
    /// a scalar entry, even at 0, counts as requested, as `len(ScalarResources)` does).
    pub fn is_empty_request(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.is_empty()
    }
}

pub(crate) fn parse(name: &str, q: &K8sQuantity) -> Result<Quantity, ResourceError> {
    quantity::parse_k8s(q).map_err(|source| ResourceError {
        name: name.to_owned(),
        value: q.0.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, K8sQuantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), K8sQuantity((*v).to_owned())))
            .collect()
    }

    #[test]
    fn from_list_rounds_and_classifies() {
        let r = Resource::from_list(&list(&[
            ("cpu", "1.5"),
            ("memory", "1Gi"),
            ("pods", "110"),
            ("nvidia.com/gpu", "2"),
            ("hugepages-2Mi", "4Mi"),
            ("foo", "3"),
        ]))
        .unwrap();
        assert_eq!(r.milli_cpu, 1500);
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.allowed_pod_number, 110);
        assert_eq!(r.scalar("nvidia.com/gpu"), 2);
        assert_eq!(r.scalar("hugepages-2Mi"), 4 << 20);
        assert_eq!(r.scalar("foo"), 0, "unprefixed unknown names are ignored");
        assert!(Resource::from_list(&list(&[("cpu", "x")])).is_err());
    }

    #[test]
    fn scalar_names_follow_upstream() {
        assert!(is_scalar_resource_name("example.com/foo"));
        assert!(is_scalar_resource_name("kubernetes.io/foo"));
        assert!(!is_extended_resource_name("kubernetes.io/foo"));
        assert!(!is_scalar_resource_name("requests.example.com/foo"));
        assert!(!is_scalar_resource_name("cpu"));
    }
}
