//! Bosun object model: the Kubernetes kinds Bosun serves, and the pure logic around them.
//!
//! Everything here is pure: no IO, no clocks (callers pass the time in), no globals.
//!
//! Layout:
//! - [`quantity`]: resource quantities (`100m`, `1.5Gi`, `2e3`): parse, canonical form, compare.
//! - [`labels`]: label selectors (string form, `matchLabels`/`matchExpressions`), matching.
//! - [`fields`]: field selectors (`metadata.name=x,spec.nodeName!=y`), matching.
//! - [`validation`]: field errors and the name, label and annotation validators.
//! - [`patch`]: JSON patch, JSON merge patch and strategic merge patch.
//! - [`fieldmanager`]: `managedFields` and server-side apply (merge, prune, conflicts).
//! - [`protobuf`]: Kubernetes' protobuf encoding of the served kinds (kubectl's generators send it).
//! - [`kinds`]: the kinds served, their REST names, defaulting and validation.

pub mod fieldmanager;
pub mod fields;
pub mod kinds;
pub mod labels;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod validation;

pub use k8s_openapi;
