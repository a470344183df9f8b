//! The served resources, with their typed logic erased behind [`ResourceOps`].
//!
//! The REST layer handles objects as JSON values and their `ObjectMeta`; everything
//! that needs the kind's type (decoding, defaulting, validation, printing) goes through
//! `ResourceOps`, implemented once for every [`ApiKind`] by [`Typed`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use bosun_api::kinds::{self, ApiKind, ResourceInfo};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::error::{ApiError, GroupResource};
use crate::table::{Column, PrintKind};

/// Kind-specific operations on JSON objects of one resource.
pub trait ResourceOps: Send + Sync {
    fn info(&self) -> &'static ResourceInfo;

    /// Field names usable in field selectors, beyond `metadata.name`/`metadata.namespace`.
    fn selectable_fields(&self) -> &'static [&'static str];

    /// Decodes a client's object into the kind's canonical JSON (unknown fields dropped),
    /// or a 400 naming the decoding problem.
    fn decode(&self, obj: Value) -> Result<Value, ApiError>;

    /// Decodes a new object, lets `prepare` set its system metadata on the typed form,
    /// then defaults it, resets client-owned fields and validates it.
    fn admit_create(
        &self,
        obj: Value,
        prepare: &mut dyn FnMut(&mut ObjectMeta) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError>;

    /// Defaults and validates `new` as an update of `old` (both canonical JSON).
    fn admit_update(&self, new: Value, old: &Value) -> Result<Value, ApiError>;

    /// Table columns, as upstream's printers.
    fn columns(&self) -> &'static [Column];

    /// One table row's cells for `obj`, at time `now`.
    fn row(&self, obj: &Value, now: Timestamp) -> Result<Vec<Value>, ApiError>;

    /// The group-resource, for messages.
    fn group_resource(&self) -> GroupResource<'static> {
        let info = self.info();
        GroupResource {
            group: info.group,
            resource: info.plural,
        }
    }
}

/// `ResourceOps` for a typed kind.
pub struct Typed<K>(PhantomData<fn() -> K>);

impl<K> Default for Typed<K> {
    fn default() -> Self {
        Typed(PhantomData)
    }
}

impl<K: ApiKind + PrintKind> Typed<K> {
    fn typed(&self, obj: Value) -> Result<K, ApiError> {
        serde_json::from_value(obj).map_err(|e| {
            ApiError::bad_request(format!("unable to decode {} object: {e}", K::INFO.kind))
        })
    }

    /// Decodes from a borrowed value, without copying the tree first.
    fn typed_ref(&self, obj: &Value) -> Result<K, ApiError> {
        K::deserialize(obj).map_err(|e| {
            ApiError::bad_request(format!("unable to decode {} object: {e}", K::INFO.kind))
        })
    }

    fn encode(&self, obj: &K) -> Result<Value, ApiError> {
        let mut v = serde_json::to_value(obj).map_err(ApiError::internal)?;
        // k8s-openapi writes apiVersion and kind itself; keep them explicit anyway.
        v["apiVersion"] = Value::String(K::API_VERSION.to_string());
        v["kind"] = Value::String(K::KIND.to_string());
        Ok(v)
    }

    fn name_of(obj: &K) -> String {
        obj.metadata().name.clone().unwrap_or_default()
    }
}

impl<K: ApiKind + PrintKind> ResourceOps for Typed<K> {
    fn info(&self) -> &'static ResourceInfo {
        &K::INFO
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        K::SELECTABLE_FIELDS
    }

    fn decode(&self, obj: Value) -> Result<Value, ApiError> {
        let typed = self.typed(obj)?;
        self.encode(&typed)
    }

    fn admit_create(
        &self,
        obj: Value,
        prepare: &mut dyn FnMut(&mut ObjectMeta) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut typed = self.typed(obj)?;
        prepare(typed.metadata_mut())?;
        typed.default_fields();
        typed.prepare_for_create();
        let errs = kinds::validate_create(&typed);
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                K::KIND,
                K::GROUP,
                &Self::name_of(&typed),
                &errs,
            ));
        }
        self.encode(&typed)
    }

    fn admit_update(&self, new: Value, old: &Value) -> Result<Value, ApiError> {
        let mut typed = self.typed(new)?;
        let old = self.typed_ref(old)?;
        typed.default_fields();
        let errs = kinds::validate_update(&typed, &old);
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                K::KIND,
                K::GROUP,
                &Self::name_of(&typed),
                &errs,
            ));
        }
        self.encode(&typed)
    }

    fn columns(&self) -> &'static [Column] {
        K::COLUMNS
    }

    fn row(&self, obj: &Value, now: Timestamp) -> Result<Vec<Value>, ApiError> {
        let typed = self.typed_ref(obj)?;
        Ok(typed.row(now))
    }
}

/// One served resource.
#[derive(Clone)]
pub struct Resource {
    pub ops: Arc<dyn ResourceOps>,
}

impl Resource {
    pub fn info(&self) -> &'static ResourceInfo {
        self.ops.info()
    }

    /// Storage key prefix of the resource (`/registry/pods/`), as kube-apiserver's.
    pub fn prefix(&self) -> String {
        let info = self.info();
        if info.group.is_empty() || info.group == "apps" {
            format!("/registry/{}/", info.plural)
        } else {
            format!("/registry/{}/{}/", info.group, info.plural)
        }
    }

    /// Storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("{}{ns}/{name}", self.prefix()),
            None => format!("{}{name}", self.prefix()),
        }
    }

    /// Prefix of a LIST or WATCH: the namespace's objects or all of them.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{}{ns}/", self.prefix()),
            None => self.prefix(),
        }
    }
}

/// Every served resource, looked up by group, version and plural.
pub struct Registry {
    resources: Vec<Resource>,
    by_path: HashMap<(String, String, String), usize>,
}

fn typed<K: ApiKind + PrintKind>() -> Resource {
    Resource {
        ops: Arc::new(Typed::<K>::default()),
    }
}

impl Registry {
    /// The built-in resources.
    pub fn builtin() -> Self {
        let resources = vec![
            typed::<Namespace>(),
            typed::<Node>(),
            typed::<Pod>(),
            typed::<Service>(),
            typed::<Endpoints>(),
            typed::<ConfigMap>(),
            typed::<Secret>(),
            typed::<Event>(),
            typed::<Deployment>(),
            typed::<ReplicaSet>(),
            typed::<EndpointSlice>(),
            typed::<EventsV1Event>(),
            typed::<Lease>(),
            typed::<PriorityClass>(),
        ];
        let by_path = resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let info = r.info();
                (
                    (
                        info.group.to_string(),
                        info.version.to_string(),
                        info.plural.to_string(),
                    ),
                    i,
                )
            })
            .collect();
        Registry { resources, by_path }
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        let key = (group.to_string(), version.to_string(), plural.to_string());
        self.by_path.get(&key).map(|&i| &self.resources[i])
    }

    pub fn all(&self) -> &[Resource] {
        &self.resources
    }

    /// Groups in discovery order, each with its versions (all `v1` today).
    pub fn groups(&self) -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = Vec::new();
        for r in &self.resources {
            let g = r.info().group;
            if !g.is_empty() && !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
    }

    /// Resources of one group and version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Resource> {
        self.resources
            .iter()
            .filter(move |r| r.info().group == group && r.info().version == version)
    }
}
