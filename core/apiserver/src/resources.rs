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

    /// Whether the kind's defaulting writes metadata ([`ApiKind::DEFAULTS_METADATA`]).
    fn defaults_metadata(&self) -> bool;

    /// Admits an update that changes nothing but metadata (labels, annotations,
    /// finalizers, owners; see [`same_but_metadata`]) from `old_meta` to `new_meta`,
    /// which `new` holds in its canonical form. Everything else is the stored object,
    /// defaulted and validated when it was written, so only the metadata is validated,
    /// with the outcome of [`ResourceOps::admit_update`] and without decoding the rest.
    fn admit_metadata_update(
        &self,
        new: Value,
        new_meta: &ObjectMeta,
        old_meta: &ObjectMeta,
    ) -> Result<Value, ApiError>;

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
        Self::set_type(&mut v);
        Ok(v)
    }

    /// Sets the kind's `apiVersion` and `kind` on an object's JSON.
    fn set_type(obj: &mut Value) {
        obj["apiVersion"] = Value::String(K::API_VERSION.to_string());
        obj["kind"] = Value::String(K::KIND.to_string());
    }

    fn name_of(obj: &K) -> String {
        obj.metadata().name.clone().unwrap_or_default()
    }
}

/// Whether two objects differ in nothing but `metadata`.
pub fn same_but_metadata(a: &Value, b: &Value) -> bool {
    fn rest(m: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
        m.iter().filter(|(k, _)| k.as_str() != "metadata")
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => rest(a).eq(rest(b)),
        _ => false,
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

    fn defaults_metadata(&self) -> bool {
        K::DEFAULTS_METADATA
    }

    fn admit_metadata_update(
        &self,
        mut new: Value,
        new_meta: &ObjectMeta,
        old_meta: &ObjectMeta,
    ) -> Result<Value, ApiError> {
        let errs = kinds::validate_metadata_update::<K>(new_meta, old_meta);
        if !errs.is_empty() {
            let name = new_meta.name.as_deref().unwrap_or_default();
            return Err(ApiError::invalid(K::KIND, K::GROUP, name, &errs));
        }
        Self::set_type(&mut new);
        Ok(new)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `obj` admitted and stored (at revision 5), as an update reads it back.
    fn created<K: ApiKind + PrintKind>(ops: &Typed<K>, obj: Value) -> Value {
        let mut stored = ops
            .admit_create(obj, &mut |m| {
                m.uid = Some("u".into());
                m.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    Timestamp::UNIX_EPOCH,
                ));
                Ok(())
            })
            .unwrap();
        stored["metadata"]["resourceVersion"] = json!("5");
        stored
    }

    /// The metadata-only admission as the REST layer runs it: both metadata decoded and
    /// the new one written back in canonical form first.
    fn metadata_path<K: ApiKind + PrintKind>(
        ops: &Typed<K>,
        new: &Value,
        old: &Value,
    ) -> Result<Value, ApiError> {
        use serde::Deserialize;
        let meta = |v: &Value| ObjectMeta::deserialize(&v["metadata"]).unwrap();
        let (new_meta, old_meta) = (meta(new), meta(old));
        let mut new = new.clone();
        new["metadata"] = serde_json::to_value(&new_meta).unwrap();
        ops.admit_metadata_update(new, &new_meta, &old_meta)
    }

    /// An update that changes only metadata, admitted by its metadata alone, has the
    /// outcome of the whole typed round trip: the same object, or the same refusal.
    #[test]
    fn metadata_only_updates_admit_as_the_typed_path_does() {
        let pods = Typed::<Pod>::default();
        let old = created(
            &pods,
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "d", "labels": {"a": "1"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        let changed = |f: &dyn Fn(&mut Value)| {
            let mut new = old.clone();
            f(&mut new);
            new
        };
        let accepted = [
            changed(&|v| v["metadata"]["labels"]["b"] = json!("2")),
            changed(&|v| v["metadata"]["annotations"] = json!({"note": "n", "empty": ""})),
            changed(&|v| v["metadata"]["finalizers"] = json!(["x.io/y"])),
            changed(&|v| {
                v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                    "kind": "ReplicaSet", "name": "r", "uid": "ru", "controller": true}])
            }),
            // Metadata in a non-canonical form (an empty map the typed form drops).
            changed(&|v| v["metadata"]["labels"] = json!({})),
            old.clone(),
        ];
        for new in accepted {
            assert!(same_but_metadata(&new, &old));
            let short = metadata_path(&pods, &new, &old).unwrap();
            assert_eq!(short, pods.admit_update(new, &old).unwrap());
        }
        let refused = [
            changed(&|v| v["metadata"]["labels"]["b"] = json!("not valid!")),
            changed(&|v| v["metadata"]["name"] = json!("q")),
            changed(&|v| v["metadata"]["uid"] = json!("other")),
        ];
        for new in refused {
            let short = metadata_path(&pods, &new, &old).unwrap_err();
            let typed = pods.admit_update(new, &old).unwrap_err();
            assert_eq!(
                (short.code, short.to_string()),
                (typed.code, typed.to_string())
            );
            assert_eq!(short.code, 422);
        }
        // A spec change is no metadata-only update.
        let new = changed(&|v| v["spec"]["containers"][0]["image"] = json!("j"));
        assert!(!same_but_metadata(&new, &old));
    }

    /// A namespace defaults a label from its name: its metadata-only updates must run the
    /// kind's defaulting, which the typed path does.
    #[test]
    fn kinds_that_default_metadata_say_so() {
        let namespaces = Typed::<Namespace>::default();
        assert!(namespaces.defaults_metadata());
        assert!(!Typed::<Pod>::default().defaults_metadata());
        let old = created(
            &namespaces,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}),
        );
        assert_eq!(
            old["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "n"
        );
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"team": "t"});
        let admitted = namespaces.admit_update(new, &old).unwrap();
        assert_eq!(
            admitted["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "n", "team": "t"})
        );
    }
}
