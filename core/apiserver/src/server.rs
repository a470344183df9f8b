//! The HTTP front: authentication, routing, content negotiation (JSON, YAML, Table),
//! bounded bodies, subresources and watch streaming, served over HTTP/1.1 and HTTP/2,
//! with TLS unless plain HTTP is asked for.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_api::patch::{PatchType, apply_patch};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::alloc::{AllocConfig, Allocators};
use crate::discovery;
use crate::error::ApiError;
use crate::metrics::{Metrics, RequestLabels};
use crate::request::{ResourcePath, Route, parse_query, route};
use crate::resources::Resource;
use crate::rest::{Params, Part, Rest, RestConfig, WatchItem};
use crate::storage::Storage;

/// Kubernetes' request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a graceful shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// kube-apiserver's defaults of `--max-requests-inflight` and
/// `--max-mutating-requests-inflight`; watches do not count.
pub const MAX_INFLIGHT_READS: usize = 400;
pub const MAX_INFLIGHT_MUTATIONS: usize = 200;
/// Rounds (one second apart) a terminating namespace waits for its content.
const NAMESPACE_FINALIZE_ROUNDS: usize = 120;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// API server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Bearer token clients must present; `None` disables authentication.
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub rest: RestConfig,
    pub alloc: AllocConfig,
    /// Address advertised in `/api` discovery (`host:port`).
    pub advertise: String,
    /// Requests served at once before the server answers 429 (reads, mutations).
    pub max_inflight_reads: usize,
    pub max_inflight_mutations: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            max_body_bytes: MAX_BODY_BYTES,
            rest: RestConfig::default(),
            alloc: AllocConfig::default(),
            advertise: "127.0.0.1:6443".into(),
            max_inflight_reads: MAX_INFLIGHT_READS,
            max_inflight_mutations: MAX_INFLIGHT_MUTATIONS,
        }
    }
}

/// The API server: REST store, metrics and settings; `handle` serves one request.
pub struct ApiServer {
    pub rest: Arc<Rest>,
    pub metrics: Arc<Metrics>,
    /// In-flight limits: non-long-running reads and mutations.
    pub inflight_reads: Arc<tokio::sync::Semaphore>,
    pub inflight_mutations: Arc<tokio::sync::Semaphore>,
    config: ServerConfig,
}

/// How the client wants the answer encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Json,
    Yaml,
    Table { include_object: IncludeObject },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IncludeObject {
    None,
    Metadata,
    Object,
}

fn body_of(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(body_of(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    respond(
        err.code,
        "application/json",
        serde_json::to_vec(&err.to_status()).unwrap_or_default(),
    )
}

/// 429 with `Retry-After`, as upstream's max-in-flight filter answers.
fn too_many_requests() -> Response<Body> {
    let mut resp = error_response(&ApiError::too_many_requests(
        "Too many requests, please try again later.",
    ));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn success_status(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

impl ApiServer {
    /// Builds the server over `storage` and bootstraps the cluster's built-in objects
    /// (the four system namespaces and the `kubernetes` Service) when absent.
    pub async fn new(
        storage: Arc<dyn Storage>,
        config: ServerConfig,
    ) -> Result<Arc<Self>, ApiError> {
        let mut rest = Rest::new(storage, config.rest.clone());
        rest.alloc = Allocators::new(config.alloc.clone());
        let server = Arc::new(ApiServer {
            rest: Arc::new(rest),
            metrics: Arc::new(Metrics::default()),
            inflight_reads: Arc::new(tokio::sync::Semaphore::new(config.max_inflight_reads)),
            inflight_mutations: Arc::new(tokio::sync::Semaphore::new(
                config.max_inflight_mutations,
            )),
            config,
        });
        server.bootstrap().await?;
        Ok(server)
    }

    async fn bootstrap(&self) -> Result<(), ApiError> {
        let rest = &self.rest;
        let services = rest
            .registry
            .get("", "v1", "services")
            .cloned()
            .ok_or_else(|| ApiError::internal("no services"))?;
        let all = rest.list(&services, None, &Params::default()).await?;
        rest.alloc
            .rebuild(all["items"].as_array().into_iter().flatten());
        let namespaces = rest
            .registry
            .get("", "v1", "namespaces")
            .cloned()
            .ok_or_else(|| ApiError::internal("no namespaces"))?;
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match rest
                .create(&namespaces, None, obj, &Params::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        let ip = rest.alloc.first_ip();
        rest.alloc.reserve_ip(ip);
        let port: i64 = self
            .config
            .advertise
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(6443);
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ip.to_string(), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        });
        rest.alloc.release_service(&svc);
        match rest
            .create(&services, Some("default"), svc, &Params::default())
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => rest.alloc.reserve_ip(ip),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn authenticated<B>(&self, req: &Request<B>) -> bool {
        let Some(token) = self.config.token.as_deref() else {
            return true;
        };
        let Some(value) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        match value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            Some(given) => constant_time_eq(given.trim().as_bytes(), token.as_bytes()),
            None => false,
        }
    }

    /// Serves one request. Never panics on client input; every error is a `Status`.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        self.handle_parts(parts, body).await
    }

    /// As [`ApiServer::handle`], for any body type (tests drive it in-process).
    pub async fn handle_parts<B>(
        self: Arc<Self>,
        parts: http::request::Parts,
        body: B,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let start = Instant::now();
        let path = parts.uri.path().to_string();
        let query = parse_query(parts.uri.query());
        let route = route(&path);
        let public = matches!(route, Route::Health(_) | Route::Version);
        let probe = Request::from_parts(parts, ());
        if !public && !self.authenticated(&probe) {
            return error_response(&ApiError::unauthorized());
        }
        let (parts, ()) = probe.into_parts();
        let (resp, labels) = match route {
            Route::Resource(rp) => {
                let labels = request_labels(&parts.method, &rp, &query);
                // Upstream's max-in-flight filter: watches are long-running and exempt.
                let limiter = match labels.verb.as_str() {
                    "WATCH" => None,
                    "GET" | "LIST" => Some(&self.inflight_reads),
                    _ => Some(&self.inflight_mutations),
                };
                let permit = limiter.map(|l| l.clone().try_acquire_owned());
                let resp = match permit {
                    Some(Err(_)) => too_many_requests(),
                    _ => match self.clone().serve_resource(&parts, &rp, &query, body).await {
                        Ok(r) => r,
                        Err(e) => error_response(&e),
                    },
                };
                (resp, Some(labels))
            }
            other => (self.serve_non_resource(&parts, other), None),
        };
        if let Some(labels) = labels {
            let watch = labels.verb == "WATCH";
            if !watch {
                self.metrics.observe(
                    labels,
                    resp.status().as_u16(),
                    start.elapsed().as_secs_f64(),
                );
            }
        }
        resp
    }

    fn serve_non_resource(&self, parts: &http::request::Parts, route: Route) -> Response<Body> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return error_response(&ApiError::method_not_allowed());
        }
        let accept = header_str(parts, header::ACCEPT);
        let reg = &self.rest.registry;
        let json_resp = |v: Value| {
            respond(
                200,
                "application/json",
                serde_json::to_vec(&v).unwrap_or_default(),
            )
        };
        match route {
            Route::Version => json_resp(discovery::version()),
            Route::Health(_) => respond(200, "text/plain; charset=utf-8", "ok"),
            Route::Metrics => respond(200, "text/plain; version=0.0.4", self.metrics.render()),
            Route::Discovery {
                group: None,
                version: None,
                legacy,
            } => {
                if discovery::wants_aggregated(accept) {
                    let v = discovery::aggregated(reg, legacy);
                    respond(
                        200,
                        discovery::AGGREGATED_V2,
                        serde_json::to_vec(&v).unwrap_or_default(),
                    )
                } else if legacy {
                    json_resp(discovery::api_versions(&self.config.advertise))
                } else {
                    json_resp(discovery::api_group_list(reg))
                }
            }
            Route::Discovery {
                group: Some(g),
                version: None,
                ..
            } => match discovery::api_group(reg, &g) {
                Some(v) => json_resp(v),
                None => error_response(&ApiError::no_route()),
            },
            Route::Discovery {
                group,
                version: Some(v),
                ..
            } => match discovery::api_resource_list(reg, group.as_deref().unwrap_or(""), &v) {
                Some(v) => json_resp(v),
                None => error_response(&ApiError::no_route()),
            },
            Route::OpenApiV3(None) => json_resp(crate::openapi::index(reg)),
            Route::OpenApiV3(Some(path)) => match crate::openapi::document(reg, &path) {
                Some(v) => json_resp(v),
                None => error_response(&ApiError::no_route()),
            },
            _ => error_response(&ApiError::no_route()),
        }
    }

    async fn serve_resource<B>(
        self: Arc<Self>,
        parts: &http::request::Parts,
        rp: &ResourcePath,
        query: &[(String, String)],
        body: B,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let rest = self.rest.clone();
        let res = rest
            .registry
            .get(&rp.group, &rp.version, &rp.resource)
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        let info = res.info();
        if !info.namespaced && rp.namespace.is_some() {
            return Err(ApiError::no_route());
        }
        let mut params = Params::parse(query)?;
        params.user_agent_manager =
            bosun_api::fieldmanager::manager_from_user_agent(header_str(parts, header::USER_AGENT));
        let encoding = negotiate(parts, query)?;
        let ns = rp.namespace.as_deref();
        let method = &parts.method;
        let sub = rp.subresource.as_deref();
        let respond_obj = |code: u16, v: &Value| encode(code, &res, v, encoding);
        // A write's response is its cached wire form: no re-encoding for JSON clients.
        let respond_written = |code: u16, w: &crate::rest::Written| match encoding {
            Encoding::Json => Ok(respond(code, "application/json", w.cached.json.clone())),
            _ => encode(code, &res, &w.object, encoding),
        };
        match (method.as_str(), rp.name.as_deref(), sub) {
            ("GET", None, None) if params.watch => {
                self.serve_watch(&res, ns, &params, encoding).await
            }
            ("GET", None, None) => {
                let list = rest.list_cached(&res, ns, &params).await?;
                match encoding {
                    // The common path: the list's JSON is its items' cached wire bytes.
                    Encoding::Json => Ok(respond(200, "application/json", list.to_json())),
                    _ => respond_obj(200, &list.to_value()?),
                }
            }
            ("GET", Some(name), None | Some("status")) => {
                let obj = rest.get(&res, ns, name, &params).await?;
                respond_obj(200, &obj)
            }
            ("POST", None, None) => {
                if info.namespaced && ns.is_none() {
                    return Err(ApiError::method_not_allowed());
                }
                params.validate_write("CreateOptions", None)?;
                let obj = read_object(parts, body, self.config.max_body_bytes).await?;
                let created = rest.create(&res, ns, obj, &params).await?;
                respond_written(201, &created)
            }
            ("PUT", Some(name), None | Some("status")) => {
                params.validate_write("UpdateOptions", None)?;
                let obj = read_object(parts, body, self.config.max_body_bytes).await?;
                let part = if sub == Some("status") {
                    Part::Status
                } else {
                    Part::Main
                };
                let updated = rest.update(&res, ns, name, obj, part, &params).await?;
                respond_written(200, &updated)
            }
            ("PATCH", Some(name), None | Some("status")) => {
                let (patch_type, bytes) =
                    read_patch(parts, body, self.config.max_body_bytes).await?;
                params.validate_write("PatchOptions", Some(patch_type))?;
                let part = if sub == Some("status") {
                    Part::Status
                } else {
                    Part::Main
                };
                if patch_type == PatchType::Apply {
                    let (applied, created) =
                        rest.apply(&res, ns, name, &bytes, part, &params).await?;
                    return respond_written(if created { 201 } else { 200 }, &applied);
                }
                let patched = rest
                    .patch(&res, ns, name, (patch_type, &bytes), part, &params)
                    .await?;
                respond_written(200, &patched)
            }
            ("DELETE", Some(name), None) => {
                let opts = read_optional_object(parts, body, self.config.max_body_bytes).await?;
                let out = rest.delete(&res, ns, name, &opts, &params).await?;
                if info.plural == "namespaces" && !out.gone {
                    tokio::spawn(
                        rest.clone()
                            .finalize_namespace(name.to_string(), NAMESPACE_FINALIZE_ROUNDS),
                    );
                }
                respond_obj(if out.gone { 200 } else { 202 }, &out.object)
            }
            ("DELETE", None, None) => {
                let opts = read_optional_object(parts, body, self.config.max_body_bytes).await?;
                let list = rest.delete_collection(&res, ns, &opts, &params).await?;
                match encoding {
                    Encoding::Json => Ok(respond(200, "application/json", list.to_json())),
                    _ => respond_obj(200, &list.to_value()?),
                }
            }
            (_, Some(name), Some("scale")) if info.has_scale => {
                self.serve_scale(parts, &res, ns, name, &params, body).await
            }
            ("POST", Some(name), Some("binding")) if info.plural == "pods" => {
                let binding = read_object(parts, body, self.config.max_body_bytes).await?;
                self.bind(&res, ns, name, &binding, &params).await?;
                Ok(respond(
                    201,
                    "application/json",
                    serde_json::to_vec(&success_status(201)).unwrap_or_default(),
                ))
            }
            ("POST", Some(name), Some("eviction")) if info.plural == "pods" => {
                let eviction = read_object(parts, body, self.config.max_body_bytes).await?;
                let opts = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
                rest.delete(&res, ns, name, &opts, &params).await?;
                Ok(respond(
                    201,
                    "application/json",
                    serde_json::to_vec(&success_status(201)).unwrap_or_default(),
                ))
            }
            (_, _, Some(_)) if !known_subresource(&res, sub) => Err(ApiError::no_route()),
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    async fn serve_watch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        params: &Params,
        encoding: Encoding,
    ) -> Result<Response<Body>, ApiError> {
        let rx = self.rest.watch(res, ns, params).await?;
        let res = res.clone();
        self.metrics.long_running(1);
        let guard = WatchGuard(self.metrics.clone());
        let stream = futures_util::stream::unfold((rx, guard), move |(mut rx, guard)| {
            let res = res.clone();
            async move {
                let ev = rx.recv().await?;
                let line = encode_watch_event(&res, ev, encoding);
                Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(line))),
                    (rx, guard),
                ))
            }
        });
        let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }

    async fn bind(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        binding: &Value,
        params: &Params,
    ) -> Result<(), ApiError> {
        let target = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if target.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                "",
                name,
                &[bosun_api::validation::FieldError::required(
                    "target.name",
                    "",
                )],
            ));
        }
        let annotations = binding.pointer("/metadata/annotations").cloned();
        let target = target.to_string();
        let gr = res.ops.group_resource();
        self.rest
            .update_with(res, ns, name, params, move |current| {
                if current
                    .pointer("/metadata/deletionTimestamp")
                    .is_some_and(|v| !v.is_null())
                {
                    return Err(ApiError::conflict(
                        gr,
                        name,
                        "pod is being deleted, cannot be assigned to a host",
                    ));
                }
                let bound = current
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !bound.is_empty() {
                    return Err(ApiError::conflict(
                        gr,
                        name,
                        &format!("pod {name} is already assigned to node \"{bound}\""),
                    ));
                }
                let mut pod = current.clone();
                pod["spec"]["nodeName"] = json!(target);
                if let Some(Value::Object(a)) = &annotations {
                    for (k, v) in a {
                        pod["metadata"]["annotations"][k] = v.clone();
                    }
                }
                set_condition(&mut pod, "PodScheduled", "True");
                Ok(pod)
            })
            .await
            .map(|_| ())
    }

    async fn serve_scale<B>(
        &self,
        parts: &http::request::Parts,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        params: &Params,
        body: B,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let rest = &self.rest;
        let scale_json = |v: &Value| {
            respond(
                200,
                "application/json",
                serde_json::to_vec(&to_scale(v)).unwrap_or_default(),
            )
        };
        match parts.method.as_str() {
            "GET" => Ok(scale_json(&rest.get(res, ns, name, params).await?)),
            "PUT" => {
                let scale = read_object(parts, body, self.config.max_body_bytes).await?;
                let replicas = scale_replicas(&scale)?;
                let pinned = scale
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let gr = res.ops.group_resource();
                let updated = rest
                    .update_with(res, ns, name, params, move |current| {
                        if let Some(rv) = pinned.as_deref().filter(|s| !s.is_empty())
                            && current
                                .pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                                != Some(rv)
                        {
                            return Err(ApiError::modified(gr, name));
                        }
                        let mut obj = current.clone();
                        obj["spec"]["replicas"] = json!(replicas);
                        Ok(obj)
                    })
                    .await?;
                Ok(scale_json(&updated.object))
            }
            "PATCH" => {
                let (patch_type, bytes) =
                    read_patch(parts, body, self.config.max_body_bytes).await?;
                let updated = rest
                    .update_with(res, ns, name, params, move |current| {
                        let scale = to_scale(current);
                        let patched =
                            apply_patch(patch_type, &scale, &bytes, "autoscaling/v1", "Scale")
                                .map_err(|e| ApiError::bad_request(e.to_string()))?;
                        let replicas = scale_replicas(&patched)?;
                        let mut obj = current.clone();
                        obj["spec"]["replicas"] = json!(replicas);
                        Ok(obj)
                    })
                    .await?;
                Ok(scale_json(&updated.object))
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }
}

/// Decrements the open-watch gauge when a watch response ends.
struct WatchGuard(Arc<Metrics>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.long_running(-1);
    }
}

fn known_subresource(res: &Resource, sub: Option<&str>) -> bool {
    let info = res.info();
    match sub {
        None => true,
        Some("status") => info.has_status,
        Some("scale") => info.has_scale,
        Some("binding" | "eviction") => info.plural == "pods",
        _ => false,
    }
}

fn set_condition(obj: &mut Value, ty: &str, status: &str) {
    let now = Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or(Timestamp::now())
        .to_string();
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    let conds = &mut obj["status"]["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
        }
        None => list.push(
            json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now}),
        ),
    }
}

/// The autoscaling/v1 Scale of a deployment or replica set.
fn to_scale(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .and_then(
            |s: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| {
                bosun_api::labels::LabelSelector::from_k8s(Some(&s)).ok()
            },
        )
        .map(|s| s.to_string())
        .unwrap_or_default();
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn scale_replicas(scale: &Value) -> Result<i64, ApiError> {
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .filter(|r| *r >= 0 && *r <= i64::from(i32::MAX))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    scale
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    &[bosun_api::validation::FieldError::invalid(
                        "spec.replicas",
                        &v.to_string(),
                        "must be greater than or equal to 0",
                    )],
                )
            }),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_str(parts: &http::request::Parts, name: header::HeaderName) -> &str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn request_labels(method: &Method, rp: &ResourcePath, query: &[(String, String)]) -> RequestLabels {
    let watch = query
        .iter()
        .any(|(k, v)| k == "watch" && matches!(v.as_str(), "1" | "true"));
    let verb = match (method.as_str(), rp.name.is_some()) {
        ("GET", false) if watch => "WATCH",
        ("GET", false) => "LIST",
        ("GET", true) => "GET",
        ("POST", _) => "POST",
        ("PUT", _) => "PUT",
        ("PATCH", _) => "PATCH",
        ("DELETE", false) => "DELETECOLLECTION",
        ("DELETE", true) => "DELETE",
        _ => "OTHER",
    };
    let scope = match (&rp.namespace, &rp.name) {
        (Some(_), _) => "namespace",
        (None, Some(_)) => "resource",
        (None, None) => "cluster",
    };
    RequestLabels {
        verb: verb.into(),
        group: rp.group.clone(),
        version: rp.version.clone(),
        resource: rp.resource.clone(),
        subresource: rp.subresource.clone().unwrap_or_default(),
        scope,
    }
}

/// Picks the response encoding from `Accept` (and `includeObject` for tables).
fn negotiate(
    parts: &http::request::Parts,
    query: &[(String, String)],
) -> Result<Encoding, ApiError> {
    let accept = header_str(parts, header::ACCEPT);
    if accept.is_empty() {
        return Ok(Encoding::Json);
    }
    for part in accept.split(',') {
        let p = part.trim().replace(' ', "");
        let media = p.split(';').next().unwrap_or("");
        if p.contains("as=Table") && (media == "application/json" || media == "*/*") {
            let include_object = match query
                .iter()
                .find(|(k, _)| k == "includeObject")
                .map(|(_, v)| v.as_str())
            {
                Some("None") => IncludeObject::None,
                Some("Object") => IncludeObject::Object,
                _ => IncludeObject::Metadata,
            };
            return Ok(Encoding::Table { include_object });
        }
        if p.contains("as=") {
            // Other conversions (PartialObjectMetadata, ...) fall through to plain objects.
            continue;
        }
        match media {
            "application/json" | "*/*" | "application/*" | "application/json-patch+json" => {
                return Ok(Encoding::Json);
            }
            "application/yaml" => return Ok(Encoding::Yaml),
            _ => {}
        }
    }
    if accept.contains("application/json") || accept.contains("*/*") {
        return Ok(Encoding::Json);
    }
    Err(ApiError::not_acceptable(accept))
}

fn encode(
    code: u16,
    res: &Resource,
    v: &Value,
    encoding: Encoding,
) -> Result<Response<Body>, ApiError> {
    match encoding {
        Encoding::Json => Ok(respond(
            code,
            "application/json",
            serde_json::to_vec(v).map_err(ApiError::internal)?,
        )),
        Encoding::Yaml => Ok(respond(
            code,
            "application/yaml",
            serde_yaml::to_string(v).map_err(ApiError::internal)?,
        )),
        Encoding::Table { include_object } => {
            let is_list = v.get("items").is_some_and(Value::is_array);
            let objects: Vec<&Value> = if is_list {
                v["items"].as_array().into_iter().flatten().collect()
            } else {
                vec![v]
            };
            let rv = v
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            let mut table = to_table(res, &objects, include_object, true)?;
            table["metadata"] = json!({"resourceVersion": rv});
            if let Some(c) = v.pointer("/metadata/continue") {
                table["metadata"]["continue"] = c.clone();
            }
            if let Some(r) = v.pointer("/metadata/remainingItemCount") {
                table["metadata"]["remainingItemCount"] = r.clone();
            }
            Ok(respond(
                code,
                "application/json",
                serde_json::to_vec(&table).map_err(ApiError::internal)?,
            ))
        }
    }
}

/// A `meta.k8s.io/v1` Table of `objects`.
fn to_table(
    res: &Resource,
    objects: &[&Value],
    include: IncludeObject,
    with_columns: bool,
) -> Result<Value, ApiError> {
    let now = Timestamp::now();
    let mut rows = Vec::with_capacity(objects.len());
    for obj in objects {
        let cells = res.ops.row(obj, now)?;
        let object = match include {
            IncludeObject::None => Value::Null,
            IncludeObject::Object => (*obj).clone(),
            IncludeObject::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            }),
        };
        let mut row = json!({"cells": cells});
        if !object.is_null() {
            row["object"] = object;
        }
        rows.push(row);
    }
    let columns: Vec<Value> = if with_columns {
        res.ops.columns().iter().map(|c| c.to_json()).collect()
    } else {
        Vec::new()
    };
    Ok(
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows}),
    )
}

fn encode_watch_event(res: &Resource, item: WatchItem, encoding: Encoding) -> Vec<u8> {
    let Encoding::Table { include_object } = encoding else {
        return item.to_json_line();
    };
    let mut ev = item.to_value();
    let ty = ev["type"].as_str().unwrap_or("");
    if ty != "BOOKMARK"
        && ty != "ERROR"
        && let Ok(mut t) = to_table(res, &[&ev["object"]], include_object, true)
    {
        let rv = ev
            .pointer("/object/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        t["metadata"] = json!({"resourceVersion": rv});
        ev["object"] = t;
    }
    let mut line = serde_json::to_vec(&ev).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads a body with a bound; over the bound is 413.
async fn read_body<B>(parts: &http::request::Parts, body: B, max: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max
    {
        return Err(ApiError::too_large(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(max))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn media_type(parts: &http::request::Parts) -> String {
    header_str(parts, header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a JSON or YAML object body.
async fn read_object<B>(
    parts: &http::request::Parts,
    body: B,
    max: usize,
) -> Result<Value, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let media = media_type(parts);
    let bytes = read_body(parts, body, max).await?;
    decode_object(&media, &bytes)
}

fn decode_object(media: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let v: Value = match media {
        "" | "application/json" | "*/*" => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?,
        bosun_api::protobuf::MEDIA_TYPE => {
            bosun_api::protobuf::decode(bytes).map_err(|e| match e {
                bosun_api::protobuf::ProtoError::UnknownKind { .. }
                | bosun_api::protobuf::ProtoError::Unsupported { .. } => {
                    ApiError::unsupported_media_type(&format!("{media}: {e}"))
                }
                other => ApiError::bad_request(format!("decoding the protobuf body: {other}")),
            })?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    Ok(v)
}

/// DeleteOptions bodies are optional.
async fn read_optional_object<B>(
    parts: &http::request::Parts,
    body: B,
    max: usize,
) -> Result<Value, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let media = media_type(parts);
    let bytes = read_body(parts, body, max).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    decode_object(&media, &bytes)
}

async fn read_patch<B>(
    parts: &http::request::Parts,
    body: B,
    max: usize,
) -> Result<(PatchType, Vec<u8>), ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let ct = header_str(parts, header::CONTENT_TYPE).to_string();
    let patch_type =
        PatchType::from_content_type(&ct).ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
    let bytes = read_body(parts, body, max).await?;
    Ok((patch_type, bytes.to_vec()))
}

/// Serves `server` on `listener` until `shutdown` completes, then stops accepting and
/// gives open connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let acceptor = acceptor.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        serve_connection(server, TokioIo::new(tls_stream), stop, peer).await
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
                None => serve_connection(server, TokioIo::new(stream), stop, peer).await,
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

async fn serve_connection<I>(
    server: Arc<ApiServer>,
    io: I,
    mut stop: tokio::sync::watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.handle(req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_encoding() {
        let parts = |accept: &str| {
            let (p, ()) = Request::builder()
                .header(header::ACCEPT, accept)
                .body(())
                .unwrap()
                .into_parts();
            p
        };
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(&parts(kubectl_get), &[]).unwrap(),
            Encoding::Table {
                include_object: IncludeObject::Metadata
            }
        );
        assert_eq!(
            negotiate(&parts("application/json"), &[]).unwrap(),
            Encoding::Json
        );
        assert_eq!(
            negotiate(&parts("application/yaml"), &[]).unwrap(),
            Encoding::Yaml
        );
        assert_eq!(negotiate(&parts("*/*"), &[]).unwrap(), Encoding::Json);
        assert_eq!(
            negotiate(&parts("application/vnd.kubernetes.protobuf"), &[])
                .unwrap_err()
                .code,
            406
        );
        let pom = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(negotiate(&parts(pom), &[]).unwrap(), Encoding::Json);
    }

    #[test]
    fn bodies_decode_json_and_yaml_and_reject_the_rest() {
        assert_eq!(
            decode_object("application/json", br#"{"a":1}"#).unwrap()["a"],
            1
        );
        assert_eq!(
            decode_object("application/yaml", b"a: 1\n").unwrap()["a"],
            1
        );
        assert_eq!(
            decode_object("application/json", b"{nope")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_object("application/yaml", b"a: [1\n")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_object("application/json", b"[1]").unwrap_err().code,
            400
        );
        assert_eq!(
            decode_object("application/vnd.kubernetes.protobuf", b"x")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_object("application/cbor", b"x").unwrap_err().code,
            415
        );
    }
}
