//! [`Api<K>`]: typed verbs on one kind, in one namespace or across all of them.

use crate::client::{BodyLimit, Client};
use crate::error::{Error, Result};
use crate::params::{DeleteParams, ListParams, Patch, Query, WatchParams, encode_into};
use crate::watch::{WatchStream, event_stream};
use bytes::Bytes;
use http::Method;
use k8s_openapi::api::core::v1::{Binding, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Status};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::TypeId;
use std::marker::PhantomData;

/// What a kind must be for [`Api`] to serve it: any k8s-openapi top-level kind.
pub trait ApiResource:
    Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<K> ApiResource for K where
    K: Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// True when `K` is namespace-scoped.
pub fn is_namespaced<K: Resource + 'static>() -> bool {
    TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>()
}

/// The collection path of `K`: `/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/deployments`, ...
/// `namespace` is ignored for cluster-scoped kinds.
pub fn collection_path<K: Resource + 'static>(namespace: Option<&str>) -> String {
    let mut p = if K::GROUP.is_empty() {
        format!("/api/{}", K::VERSION)
    } else {
        format!("/apis/{}/{}", K::GROUP, K::VERSION)
    };
    if let Some(ns) = namespace.filter(|_| is_namespaced::<K>()) {
        p.push_str("/namespaces/");
        encode_into(&mut p, ns);
    }
    p.push('/');
    p.push_str(K::URL_PATH_SEGMENT);
    p
}

/// One page of a list: `metadata.resourceVersion`, `metadata.continue` and the items.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>", serialize = "K: Serialize"))]
pub struct ObjectList<K> {
    /// List metadata.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The objects (they usually lack `kind`/`apiVersion`).
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub items: Vec<K>,
}

fn null_as_empty<'de, D, K>(d: D) -> std::result::Result<Vec<K>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
{
    Ok(Option::<Vec<K>>::deserialize(d)?.unwrap_or_default())
}

impl<K> ObjectList<K> {
    /// `metadata.resourceVersion`, empty if absent.
    pub fn resource_version(&self) -> &str {
        self.metadata.resource_version.as_deref().unwrap_or("")
    }

    /// The continue token, if there are more pages.
    pub fn continue_token(&self) -> Option<&str> {
        self.metadata.continue_.as_deref().filter(|c| !c.is_empty())
    }
}

/// What a delete returns: the object (graceful deletion, finalizers) or a Status.
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteResponse<T> {
    /// The object, still present and marked for deletion, or its last state.
    Object(T),
    /// A `Status` (usually `Success`).
    Status(Box<Status>),
}

/// Typed access to one kind `K`, in one namespace or across all of them.
pub struct Api<K> {
    client: Client,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("kind", &std::any::type_name::<K>())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<K: Resource<Scope = NamespaceResourceScope>> Api<K> {
    /// A namespaced kind in one namespace.
    pub fn namespaced(client: Client, namespace: &str) -> Api<K> {
        Api {
            client,
            namespace: Some(namespace.to_string()),
            _kind: PhantomData,
        }
    }

    /// A namespaced kind in the client's default namespace.
    pub fn default_namespaced(client: Client) -> Api<K> {
        let ns = client.default_namespace().to_string();
        Api::namespaced(client, &ns)
    }
}

impl<K: Resource<Scope = ClusterResourceScope>> Api<K> {
    /// A cluster-scoped kind.
    pub fn cluster(client: Client) -> Api<K> {
        Api {
            client,
            namespace: None,
            _kind: PhantomData,
        }
    }
}

impl<K: ApiResource> Api<K> {
    /// All namespaces of a namespaced kind (list and watch only: single-object
    /// verbs need [`Api::namespaced`]), or a cluster-scoped kind.
    pub fn all(client: Client) -> Api<K> {
        Api {
            client,
            namespace: None,
            _kind: PhantomData,
        }
    }

    /// The namespace this handle is bound to.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection path for this handle.
    pub fn collection_path(&self) -> String {
        collection_path::<K>(self.namespace.as_deref())
    }

    /// The path of one object (and optional subresource). Fails for an empty or
    /// `/`-containing name, and for a namespaced kind without a namespace.
    pub fn object_path(&self, name: &str, subresource: Option<&str>) -> Result<String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::InvalidRequest(format!(
                "invalid object name {name:?}"
            )));
        }
        if is_namespaced::<K>() && self.namespace.is_none() {
            return Err(Error::InvalidRequest(format!(
                "{} is namespaced: use Api::namespaced for {name:?}",
                K::KIND
            )));
        }
        let mut p = self.collection_path();
        p.push('/');
        encode_into(&mut p, name);
        if let Some(sub) = subresource {
            p.push('/');
            p.push_str(sub);
        }
        Ok(p)
    }

    /// GET one object.
    pub async fn get(&self, name: &str) -> Result<K> {
        let req = self
            .client
            .request(Method::GET, &self.object_path(name, None)?, None)?;
        self.client.send_json(req, BodyLimit::Object, "get").await
    }

    /// GET one object, `None` if it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of a list.
    pub async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>> {
        let mut q = Query::default();
        lp.append_query(&mut q);
        let path = format!("{}{}", self.collection_path(), q.into_string());
        let req = self.client.request(Method::GET, &path, None)?;
        self.client.send_json(req, BodyLimit::List, "list").await
    }

    /// Every page of a list, following `continue` tokens. The result carries the
    /// first page's resource version (all pages are of one snapshot) and no
    /// continue token. `max_items` bounds the total.
    pub async fn list_all(&self, lp: &ListParams, max_items: usize) -> Result<ObjectList<K>> {
        let mut lp = lp.clone();
        let mut out = self.list(&lp).await?;
        while let Some(token) = out.continue_token().map(str::to_string) {
            if out.items.len() > max_items {
                break;
            }
            lp.continue_token = Some(token);
            // The continue token pins the snapshot; a resourceVersion must not be
            // sent alongside it.
            lp.resource_version = None;
            lp.version_match = None;
            let page = self.list(&lp).await?;
            out.items.extend(page.items);
            out.metadata.continue_ = page.metadata.continue_;
        }
        if out.items.len() > max_items {
            return Err(Error::InvalidRequest(format!(
                "list of {} exceeds {max_items} items",
                K::URL_PATH_SEGMENT
            )));
        }
        out.metadata.continue_ = None;
        out.metadata.remaining_item_count = None;
        Ok(out)
    }

    /// POST a new object.
    pub async fn create(&self, obj: &K) -> Result<K> {
        self.write(
            Method::POST,
            self.collection_path(),
            obj,
            "application/json",
            "create",
        )
        .await
    }

    /// PUT (replace) an object; `metadata.resourceVersion` makes it conditional.
    pub async fn replace(&self, name: &str, obj: &K) -> Result<K> {
        let path = self.object_path(name, None)?;
        self.write(Method::PUT, path, obj, "application/json", "replace")
            .await
    }

    /// PUT the status subresource.
    pub async fn replace_status(&self, name: &str, obj: &K) -> Result<K> {
        let path = self.object_path(name, Some("status"))?;
        self.write(Method::PUT, path, obj, "application/json", "replace status")
            .await
    }

    /// PATCH an object; the patch variant sets the content type.
    pub async fn patch(&self, name: &str, patch: &Patch) -> Result<K> {
        let path = self.object_path(name, None)?;
        self.write(
            Method::PATCH,
            path,
            patch.body(),
            patch.content_type(),
            "patch",
        )
        .await
    }

    /// POST an already encoded JSON object and return the created object's JSON
    /// undecoded: for load generators and proxies, which need neither conversion.
    pub async fn create_bytes(&self, body: Bytes) -> Result<Bytes> {
        let req = self.client.request(
            Method::POST,
            &self.collection_path(),
            Some((body, "application/json")),
        )?;
        self.client.send_bytes(req, BodyLimit::Object).await
    }

    /// PATCH an object with an already encoded patch of `content_type` (one of
    /// [`Patch::content_type`]'s) and return the object's JSON undecoded.
    pub async fn patch_bytes(
        &self,
        name: &str,
        body: Bytes,
        content_type: &'static str,
    ) -> Result<Bytes> {
        let path = self.object_path(name, None)?;
        let req = self
            .client
            .request(Method::PATCH, &path, Some((body, content_type)))?;
        self.client.send_bytes(req, BodyLimit::Object).await
    }

    /// PATCH the status subresource.
    pub async fn patch_status(&self, name: &str, patch: &Patch) -> Result<K> {
        let path = self.object_path(name, Some("status"))?;
        self.write(
            Method::PATCH,
            path,
            patch.body(),
            patch.content_type(),
            "patch status",
        )
        .await
    }

    /// DELETE an object.
    pub async fn delete(&self, name: &str, dp: &DeleteParams) -> Result<DeleteResponse<K>> {
        let path = self.object_path(name, None)?;
        let body = encode(&dp.to_options())?;
        let req = self
            .client
            .request(Method::DELETE, &path, Some((body, "application/json")))?;
        let bytes = self.client.send_bytes(req, BodyLimit::Object).await?;
        object_or_status(&bytes, "delete")
    }

    /// DELETE a collection (selected by `lp`'s selectors).
    pub async fn delete_collection(
        &self,
        dp: &DeleteParams,
        lp: &ListParams,
    ) -> Result<DeleteResponse<ObjectList<K>>> {
        let mut q = Query::default();
        lp.append_query(&mut q);
        let path = format!("{}{}", self.collection_path(), q.into_string());
        let body = encode(&dp.to_options())?;
        let req = self
            .client
            .request(Method::DELETE, &path, Some((body, "application/json")))?;
        let bytes = self.client.send_bytes(req, BodyLimit::List).await?;
        object_or_status(&bytes, "delete collection")
    }

    /// Starts a watch from `resource_version` (empty: from "now", after the
    /// current state as ADDED events). The request timeout bounds only the wait
    /// for headers; `wp.timeout_seconds` asks the server to end the watch.
    pub async fn watch(&self, wp: &WatchParams, resource_version: &str) -> Result<WatchStream<K>> {
        let mut q = Query::default();
        wp.append_query(&mut q, resource_version);
        let path = format!("{}{}", self.collection_path(), q.into_string());
        let req = self.client.request(Method::GET, &path, None)?;
        let resp = self.client.send_streaming(req).await?;
        let max_line_bytes = self.client.config().max_watch_line_bytes;
        Ok(event_stream(resp.into_body(), max_line_bytes))
    }

    /// POST to a subresource of `name` (`binding`, `eviction`, ...) and decode
    /// the answer as `R` (often a `Status`).
    pub async fn create_subresource<B: Serialize, R: DeserializeOwned>(
        &self,
        subresource: &str,
        name: &str,
        body: &B,
    ) -> Result<R> {
        if subresource.is_empty() || subresource.contains(['/', '?', '#']) {
            return Err(Error::InvalidRequest(format!(
                "invalid subresource {subresource:?}"
            )));
        }
        let path = self.object_path(name, Some(subresource))?;
        self.write(
            Method::POST,
            path,
            body,
            "application/json",
            "create subresource",
        )
        .await
    }

    async fn write<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: &B,
        content_type: &'static str,
        context: &'static str,
    ) -> Result<R> {
        let bytes = encode(body)?;
        let req = self
            .client
            .request(method, &path, Some((bytes, content_type)))?;
        self.client.send_json(req, BodyLimit::Object, context).await
    }
}

impl Api<Pod> {
    /// Binds a pod to a node (`pods/binding`), as the scheduler does.
    pub async fn bind(&self, name: &str, binding: &Binding) -> Result<Status> {
        self.create_subresource("binding", name, binding).await
    }

    /// Evicts a pod (`pods/eviction`), honouring PodDisruptionBudgets; a 429
    /// answer means a budget forbids it now.
    pub async fn evict(&self, name: &str, eviction: &Eviction) -> Result<Status> {
        self.create_subresource("eviction", name, eviction).await
    }
}

fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Bytes> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(Error::Encode)
}

/// Decodes a body that is either a `Status` or a `T`, by its `kind`.
fn object_or_status<T: DeserializeOwned>(
    bytes: &[u8],
    context: &'static str,
) -> Result<DeleteResponse<T>> {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(default, borrow)]
        kind: Option<&'a str>,
    }
    let dec = |source| Error::Decode { context, source };
    let kind: Kind<'_> = serde_json::from_slice(bytes).map_err(dec)?;
    if kind.kind == Some("Status") {
        Ok(DeleteResponse::Status(
            serde_json::from_slice(bytes).map_err(dec)?,
        ))
    } else {
        Ok(DeleteResponse::Object(
            serde_json::from_slice(bytes).map_err(dec)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
    use k8s_openapi::api::rbac::v1::ClusterRole;

    fn client() -> Client {
        Client::new(Config::new("http://127.0.0.1:1").unwrap()).unwrap()
    }

    /// Data-driven: kind, scope, namespace, name, subresource -> path (or error).
    /// Paths as in the Kubernetes API conventions, "API resource paths".
    #[test]
    fn url_building() {
        let c = client();
        let cases: Vec<(&str, Result<String>)> = vec![
            (
                "pods list ns",
                Ok(Api::<Pod>::namespaced(c.clone(), "ns1").collection_path()),
            ),
            (
                "pods list all",
                Ok(Api::<Pod>::all(c.clone()).collection_path()),
            ),
            (
                "pod get",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("p1", None),
            ),
            (
                "pod status",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("p1", Some("status")),
            ),
            (
                "pod binding",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("p1", Some("binding")),
            ),
            (
                "pod eviction",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("p1", Some("eviction")),
            ),
            (
                "pod get all-ns",
                Api::<Pod>::all(c.clone()).object_path("p1", None),
            ),
            (
                "pod empty name",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("", None),
            ),
            (
                "pod slash name",
                Api::<Pod>::namespaced(c.clone(), "ns1").object_path("a/b", None),
            ),
            (
                "node list",
                Ok(Api::<Node>::cluster(c.clone()).collection_path()),
            ),
            (
                "node get",
                Api::<Node>::cluster(c.clone()).object_path("n1", None),
            ),
            (
                "node all",
                Api::<Node>::all(c.clone()).object_path("n1", Some("status")),
            ),
            (
                "namespace get",
                Api::<Namespace>::cluster(c.clone()).object_path("kube-system", None),
            ),
            (
                "deploy ns",
                Api::<Deployment>::namespaced(c.clone(), "web").object_path("d", Some("scale")),
            ),
            (
                "deploy all",
                Ok(Api::<Deployment>::all(c.clone()).collection_path()),
            ),
            (
                "lease",
                Api::<Lease>::namespaced(c.clone(), "kube-node-lease").object_path("n1", None),
            ),
            (
                "configmap",
                Ok(Api::<ConfigMap>::namespaced(c.clone(), "a b").collection_path()),
            ),
            (
                "clusterrole",
                Api::<ClusterRole>::cluster(c.clone()).object_path("admin", None),
            ),
        ];
        let want = [
            "/api/v1/namespaces/ns1/pods",
            "/api/v1/pods",
            "/api/v1/namespaces/ns1/pods/p1",
            "/api/v1/namespaces/ns1/pods/p1/status",
            "/api/v1/namespaces/ns1/pods/p1/binding",
            "/api/v1/namespaces/ns1/pods/p1/eviction",
            "error",
            "error",
            "error",
            "/api/v1/nodes",
            "/api/v1/nodes/n1",
            "/api/v1/nodes/n1/status",
            "/api/v1/namespaces/kube-system",
            "/apis/apps/v1/namespaces/web/deployments/d/scale",
            "/apis/apps/v1/deployments",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            "/api/v1/namespaces/a%20b/configmaps",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
        ];
        assert_eq!(cases.len(), want.len());
        for ((label, got), want) in cases.into_iter().zip(want) {
            let got = got.unwrap_or_else(|_| "error".to_string());
            assert_eq!(got, want, "case {label}");
        }
    }

    #[test]
    fn delete_body_is_object_or_status() {
        let r: DeleteResponse<Pod> = object_or_status(
            br#"{"kind":"Status","apiVersion":"v1","status":"Success","details":{"name":"p"}}"#,
            "t",
        )
        .unwrap();
        assert!(matches!(r, DeleteResponse::Status(s) if s.status.as_deref() == Some("Success")));
        let r: DeleteResponse<Pod> = object_or_status(
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","deletionTimestamp":"2024-01-01T00:00:00Z"}}"#,
            "t",
        )
        .unwrap();
        assert!(matches!(r, DeleteResponse::Object(p) if p.metadata.name.as_deref() == Some("p")));
    }

    #[test]
    fn list_decodes_null_items_and_continue() {
        let l: ObjectList<Pod> = serde_json::from_str(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"abc"},"items":null}"#,
        )
        .unwrap();
        assert_eq!(l.resource_version(), "9");
        assert_eq!(l.continue_token(), Some("abc"));
        assert!(l.items.is_empty());
    }
}
