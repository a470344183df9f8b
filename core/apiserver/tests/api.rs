//! The API server over loopback HTTP, driven request by request: error statuses, the
//! store left unchanged by bad input, pagination, selectors, watch, finalizers, graceful
//! deletion, binding, status and scale subresources, managed fields and server-side apply.

use std::sync::Arc;
use std::time::Duration;

use bosun_apiserver::server::{ApiServer, ServerConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig, Storage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const TOKEN: &str = "test-token";

struct TestApi {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    storage: Arc<MemoryStorage>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApi {
    async fn start() -> TestApi {
        let storage = MemoryStorage::new(MemoryStorageConfig {
            progress_interval: Duration::from_millis(200),
            ..MemoryStorageConfig::default()
        });
        let config = ServerConfig {
            token: Some(TOKEN.into()),
            ..ServerConfig::default()
        };
        let server = ApiServer::new(storage.clone(), config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(bosun_apiserver::serve(server, listener, None, async {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        TestApi {
            base,
            client,
            storage,
            stop: Some(stop),
        }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> (u16, Bytes) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let code = resp.status().as_u16();
        (code, resp.into_body().collect().await.unwrap().to_bytes())
    }

    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let ct = match method {
            "PATCH" => "application/merge-patch+json",
            _ => "application/json",
        };
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let (code, body) = self.raw(method, path, ct, bytes, Some(TOKEN)).await;
        (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.req(method, path, body).await;
        assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
        v
    }

    /// A request with a raw body and content type, answered as JSON.
    async fn send(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let (code, body) = self
            .raw(
                method,
                path,
                content_type,
                body.as_bytes().to_vec(),
                Some(TOKEN),
            )
            .await;
        (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// A server-side apply of `body` (YAML or JSON) with the query `query`.
    async fn apply(&self, path: &str, query: &str, body: &str) -> (u16, Value) {
        self.send("PATCH", &format!("{path}?{query}"), APPLY, body)
            .await
    }

    async fn revision(&self) -> i64 {
        self.storage.current_revision().await.unwrap()
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    })
}

/// (what, method, path, content type, body, token, expected code, expected reason).
type BadCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Vec<u8>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test]
async fn bad_input_gets_the_right_status_and_changes_nothing() {
    let api = TestApi::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    let good = serde_json::to_vec(&pod("ok", json!({}))).unwrap();
    let huge = {
        let mut p = pod("huge", json!({}));
        p["metadata"]["annotations"] = json!({"a": "x".repeat(10 * 1024 * 1024)});
        serde_json::to_vec(&p).unwrap()
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = pod("p", json!({}));
        f(&mut p);
        serde_json::to_vec(&p).unwrap()
    };
    let cases: Vec<BadCase> = vec![
        (
            "malformed JSON",
            "POST",
            pods,
            "application/json",
            b"{\"kind\": ".to_vec(),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "malformed YAML",
            "POST",
            pods,
            "application/yaml",
            b"kind: [Pod\n".to_vec(),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "wrong apiVersion",
            "POST",
            pods,
            "application/json",
            with(&|p| p["apiVersion"] = json!("apps/v1")),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "wrong kind",
            "POST",
            pods,
            "application/json",
            with(&|p| p["kind"] = json!("Service")),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "wrong field type",
            "POST",
            pods,
            "application/json",
            with(&|p| p["spec"]["containers"] = json!("x")),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "invalid name",
            "POST",
            pods,
            "application/json",
            with(&|p| p["metadata"]["name"] = json!("Not_Valid")),
            Some(TOKEN),
            422,
            "Invalid",
        ),
        (
            "invalid label",
            "POST",
            pods,
            "application/json",
            with(&|p| p["metadata"]["labels"] = json!({"bad key!": "v"})),
            Some(TOKEN),
            422,
            "Invalid",
        ),
        (
            "invalid quantity",
            "POST",
            pods,
            "application/json",
            with(&|p| {
                p["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "12 GB"}})
            }),
            Some(TOKEN),
            422,
            "Invalid",
        ),
        (
            "no containers",
            "POST",
            pods,
            "application/json",
            with(&|p| p["spec"]["containers"] = json!([])),
            Some(TOKEN),
            422,
            "Invalid",
        ),
        (
            "10 MiB body",
            "POST",
            pods,
            "application/json",
            huge,
            Some(TOKEN),
            413,
            "RequestEntityTooLarge",
        ),
        (
            "protobuf garbage",
            "POST",
            pods,
            "application/vnd.kubernetes.protobuf",
            good.clone(),
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "CBOR body",
            "POST",
            pods,
            "application/cbor",
            good.clone(),
            Some(TOKEN),
            415,
            "UnsupportedMediaType",
        ),
        (
            "unknown resource",
            "POST",
            "/api/v1/namespaces/default/widgets",
            "application/json",
            good.clone(),
            Some(TOKEN),
            404,
            "NotFound",
        ),
        (
            "unknown group",
            "GET",
            "/apis/nope.io/v1/things",
            "",
            vec![],
            Some(TOKEN),
            404,
            "NotFound",
        ),
        (
            "PUT on a collection",
            "PUT",
            pods,
            "application/json",
            good.clone(),
            Some(TOKEN),
            405,
            "MethodNotAllowed",
        ),
        (
            "POST on an object",
            "POST",
            "/api/v1/namespaces/default/pods/x",
            "application/json",
            good.clone(),
            Some(TOKEN),
            405,
            "MethodNotAllowed",
        ),
        (
            "missing namespace",
            "POST",
            "/api/v1/namespaces/nope/pods",
            "application/json",
            good.clone(),
            Some(TOKEN),
            404,
            "NotFound",
        ),
        (
            "missing token",
            "POST",
            pods,
            "application/json",
            good.clone(),
            None,
            401,
            "Unauthorized",
        ),
        (
            "wrong token",
            "POST",
            pods,
            "application/json",
            good.clone(),
            Some("nope"),
            401,
            "Unauthorized",
        ),
        (
            "bad label selector",
            "GET",
            "/api/v1/pods?labelSelector=a%20in%20(",
            "",
            vec![],
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "unsupported field selector",
            "GET",
            "/api/v1/pods?fieldSelector=spec.foo%3Dx",
            "",
            vec![],
            Some(TOKEN),
            400,
            "BadRequest",
        ),
        (
            "bad limit",
            "GET",
            "/api/v1/pods?limit=x",
            "",
            vec![],
            Some(TOKEN),
            400,
            "BadRequest",
        ),
    ];
    for (what, method, path, ct, body, token, code, reason) in cases {
        let before = api.revision().await;
        let (got, body) = api.raw(method, path, ct, body, token).await;
        let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(got, code, "{what}: {status}");
        assert_eq!(status["kind"], "Status", "{what}: {status}");
        assert_eq!(status["reason"], reason, "{what}: {status}");
        assert_eq!(status["code"], code, "{what}");
        assert_eq!(api.revision().await, before, "{what} changed the store");
    }
    // Invalid answers name each bad field.
    let (_, status) = api.req("POST", pods, Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [{"name": "C"}]}}))).await;
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.containers[0].name") && fields.contains(&"spec.containers[0].image"),
        "{status}"
    );

    // A stale resourceVersion is a conflict and writes nothing.
    let created = api.ok("POST", pods, Some(pod("a", json!({})))).await;
    let stale = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    api.ok(
        "PATCH",
        "/api/v1/namespaces/default/pods/a",
        Some(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await;
    let mut update = created.clone();
    update["metadata"]["labels"] = json!({"y": "2"});
    update["metadata"]["resourceVersion"] = json!(stale);
    let before = api.revision().await;
    let (code, status) = api
        .req("PUT", "/api/v1/namespaces/default/pods/a", Some(update))
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    assert_eq!(api.revision().await, before);
    // A patch of metadata alone is validated as any update: a bad label, or a changed
    // uid, is Invalid and writes nothing.
    for patch in [
        json!({"metadata": {"labels": {"x": "not valid!"}}}),
        json!({"metadata": {"uid": "another"}}),
    ] {
        let (code, status) = api
            .req("PATCH", "/api/v1/namespaces/default/pods/a", Some(patch))
            .await;
        assert_eq!(
            (code, status["reason"].as_str()),
            (422, Some("Invalid")),
            "{status}"
        );
        assert_eq!(api.revision().await, before);
    }
    let (code, status) = api.req("POST", pods, Some(pod("a", json!({})))).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
}

#[tokio::test]
async fn lists_paginate_and_filter() {
    let api = TestApi::start().await;
    for i in 0..25 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        api.ok(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod(&format!("p{i:02}"), json!({"tier": tier}))),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut cont = String::new();
    let mut pages = 0;
    loop {
        let page = api
            .ok(
                "GET",
                &format!("/api/v1/namespaces/default/pods?limit=10&continue={cont}"),
                None,
            )
            .await;
        pages += 1;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(c) => {
                let remaining = page["metadata"]["remainingItemCount"].as_i64().unwrap();
                assert_eq!(remaining as usize, 25 - names.len());
                cont = c.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(names, want);

    let odd = api
        .ok("GET", "/api/v1/pods?labelSelector=tier%3Dodd", None)
        .await;
    assert_eq!(odd["items"].as_array().unwrap().len(), 12);
    let sel = api.ok("GET", "/api/v1/pods?labelSelector=tier%20in%20(odd)&fieldSelector=metadata.name%21%3Dp01&limit=5", None).await;
    let got: Vec<&str> = sel["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["p03", "p05", "p07", "p09", "p11"]);
    let phase = api
        .ok(
            "GET",
            "/api/v1/pods?fieldSelector=status.phase%3DPending",
            None,
        )
        .await;
    assert_eq!(phase["items"].as_array().unwrap().len(), 25);
    let exact_old = odd["metadata"]["resourceVersion"].as_str().unwrap();
    api.ok("DELETE", "/api/v1/namespaces/default/pods/p01", None)
        .await;
    let then = api.ok("GET", &format!("/api/v1/pods?resourceVersion={exact_old}&resourceVersionMatch=Exact&labelSelector=tier%3Dodd"), None).await;
    assert_eq!(
        then["items"].as_array().unwrap().len(),
        12,
        "an exact read sees the past"
    );
    let (code, _) = api
        .req("GET", "/api/v1/pods?resourceVersion=999999", None)
        .await;
    assert_eq!(code, 504);
}

/// Reads watch events (one JSON object per line) until `n` arrived.
async fn read_events(body: &mut hyper::body::Incoming, buf: &mut Vec<u8>, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line).unwrap());
            if out.len() == n {
                return out;
            }
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("watch stalled");
        match frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    buf.extend_from_slice(d);
                }
            }
            _ => panic!("watch ended after {out:?}"),
        }
    }
    out
}

#[tokio::test]
async fn watch_follows_selectors_and_sends_bookmarks() {
    let api = TestApi::start().await;
    let list = api.ok("GET", "/api/v1/namespaces/default/pods", None).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let req = http::Request::builder()
        .uri(format!("{}/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&labelSelector=app%3Dweb&allowWatchBookmarks=true", api.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = api.client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut buf = Vec::new();

    api.ok(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(pod("w", json!({"app": "web"}))),
    )
    .await;
    api.ok(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(pod("other", json!({"app": "db"}))),
    )
    .await;
    api.ok(
        "PATCH",
        "/api/v1/namespaces/default/pods/w",
        Some(json!({"metadata": {"labels": {"v": "2"}}})),
    )
    .await;
    // Leaving the selector is a DELETED for this watcher; coming back is ADDED.
    api.ok(
        "PATCH",
        "/api/v1/namespaces/default/pods/w",
        Some(json!({"metadata": {"labels": {"app": "moved"}}})),
    )
    .await;
    api.ok(
        "PATCH",
        "/api/v1/namespaces/default/pods/w",
        Some(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await;
    api.ok("DELETE", "/api/v1/namespaces/default/pods/w", None)
        .await;
    let mut data = Vec::new();
    let mut bookmark = None;
    while data.len() < 5 {
        let ev = read_events(&mut body, &mut buf, 1).await.remove(0);
        if ev["type"] == "BOOKMARK" {
            bookmark = Some(ev);
            continue;
        }
        data.push((
            ev["type"].as_str().unwrap().to_string(),
            ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    let want: Vec<(String, String)> = ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
        .iter()
        .map(|t| (t.to_string(), "w".to_string()))
        .collect();
    assert_eq!(data, want);
    // Progress from storage becomes a BOOKMARK carrying only a resourceVersion.
    let bookmark = match bookmark {
        Some(b) => b,
        None => loop {
            let ev = read_events(&mut body, &mut buf, 1).await.remove(0);
            if ev["type"] == "BOOKMARK" {
                break ev;
            }
        },
    };
    assert_eq!(bookmark["object"]["kind"], "Pod");
    assert!(
        bookmark["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );

    // A compacted resourceVersion is a 410 Expired ERROR event.
    let now = api.revision().await;
    api.storage.compact(now).await.unwrap();
    let (code, raw) = api
        .raw(
            "GET",
            &format!("/api/v1/pods?watch=1&resourceVersion={}", now - 3),
            "",
            vec![],
            Some(TOKEN),
        )
        .await;
    assert_eq!(code, 200);
    let ev: Value = serde_json::from_slice(raw.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test]
async fn finalizers_graceful_pods_binding_and_status() {
    let api = TestApi::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    api.ok("POST", cms, Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": ["example.com/keep"]}}))).await;
    let (code, obj) = api.req("DELETE", &format!("{cms}/f"), None).await;
    assert_eq!(code, 202);
    assert!(obj["metadata"]["deletionTimestamp"].is_string());
    api.ok("GET", &format!("{cms}/f"), None).await;
    api.ok(
        "PATCH",
        &format!("{cms}/f"),
        Some(json!({"metadata": {"finalizers": null}})),
    )
    .await;
    assert_eq!(api.req("GET", &format!("{cms}/f"), None).await.0, 404);

    // Binding, then graceful deletion of a bound pod.
    let pods = "/api/v1/namespaces/default/pods";
    api.ok("POST", pods, Some(pod("b", json!({})))).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"}, "target": {"kind": "Node", "name": "n1"}});
    api.ok("POST", &format!("{pods}/b/binding"), Some(binding.clone()))
        .await;
    let bound = api.ok("GET", &format!("{pods}/b"), None).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
    let (code, status) = api
        .req("POST", &format!("{pods}/b/binding"), Some(binding))
        .await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    let (code, obj) = api.req("DELETE", &format!("{pods}/b"), None).await;
    assert_eq!(code, 202);
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, _) = api
        .req("DELETE", &format!("{pods}/b?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(api.req("GET", &format!("{pods}/b"), None).await.0, 404);

    // Status and spec are written separately; generation follows the spec.
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let created = api.ok("POST", deploys, Some(deploy)).await;
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["spec"]["replicas"], 1);
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 3, "readyReplicas": 3});
    with_status["spec"]["replicas"] = json!(9);
    let after = api
        .ok("PUT", &format!("{deploys}/d/status"), Some(with_status))
        .await;
    assert_eq!(after["status"]["replicas"], 3);
    assert_eq!(
        after["spec"]["replicas"], 1,
        "status writes leave spec alone"
    );
    assert_eq!(after["metadata"]["generation"], 1);
    let mut main = after.clone();
    main["status"] = json!({"replicas": 0});
    main["spec"]["replicas"] = json!(4);
    let after = api.ok("PUT", &format!("{deploys}/d"), Some(main)).await;
    assert_eq!(
        after["status"]["replicas"], 3,
        "main writes leave status alone"
    );
    assert_eq!(after["metadata"]["generation"], 2);
    let scale = api.ok("GET", &format!("{deploys}/d/scale"), None).await;
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(4))
    );
    assert_eq!(scale["status"]["selector"], "a=b");
    let (code, _) = api
        .req(
            "PATCH",
            &format!("{deploys}/d/scale"),
            Some(json!({"spec": {"replicas": -1}})),
        )
        .await;
    assert_eq!(code, 422);

    let metrics = api.raw("GET", "/metrics", "", vec![], Some(TOKEN)).await.1;
    let text = String::from_utf8_lossy(&metrics);
    assert!(text.contains("apiserver_request_total{component=\"apiserver\",group=\"apps\",resource=\"deployments\""), "{text}");
}

#[tokio::test]
async fn generate_name_dry_run_and_strict_field_validation() {
    let api = TestApi::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    let mut p = pod("", json!({}));
    p["metadata"] = json!({"generateName": "web-"});
    let created = api.ok("POST", pods, Some(p)).await;
    let name = created["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 5,
        "{name}"
    );

    let before = api.revision().await;
    let dry = api
        .ok(
            "POST",
            &format!("{pods}?dryRun=All"),
            Some(pod("dry", json!({}))),
        )
        .await;
    assert_eq!(dry["metadata"]["name"], "dry");
    assert_eq!(
        dry["spec"]["restartPolicy"], "Always",
        "dry runs are defaulted"
    );
    assert_eq!(api.revision().await, before, "a dry run writes nothing");
    assert_eq!(api.req("GET", &format!("{pods}/dry"), None).await.0, 404);

    let mut unknown = pod("u", json!({}));
    unknown["spec"]["bogus"] = json!(1);
    unknown["spec"]["containers"][0]["alsoBogus"] = json!("x");
    let (code, status) = api
        .req(
            "POST",
            &format!("{pods}?fieldValidation=Strict"),
            Some(unknown.clone()),
        )
        .await;
    assert_eq!(code, 400);
    let msg = status["message"].as_str().unwrap();
    assert!(
        msg.contains(r#"unknown field "spec.bogus""#)
            && msg.contains(r#"unknown field "spec.containers[0].alsoBogus""#),
        "{msg}"
    );
    assert_eq!(api.revision().await, before);
    // Without Strict, unknown fields are dropped.
    let created = api.ok("POST", pods, Some(unknown)).await;
    assert!(created["spec"].get("bogus").is_none());
}

#[tokio::test]
async fn requests_over_the_inflight_limit_get_429_and_watches_are_exempt() {
    let storage = MemoryStorage::new(MemoryStorageConfig::default());
    let config = ServerConfig {
        token: Some(TOKEN.into()),
        max_inflight_mutations: 1,
        ..ServerConfig::default()
    };
    let server = ApiServer::new(storage.clone(), config).await.unwrap();
    // Occupy the only mutation slot, as a slow request would.
    let held = server
        .inflight_mutations
        .clone()
        .try_acquire_owned()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bosun_apiserver::serve(server, listener, None, async {
        let _ = stopped.await;
    }));
    let api = TestApi {
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
        storage,
        stop: Some(stop),
    };
    let before = api.revision().await;
    let (code, status) = api
        .req(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("x", json!({}))),
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(api.revision().await, before);
    // Reads have their own budget.
    api.ok("GET", "/api/v1/namespaces/default/pods", None).await;
    drop(held);
    api.ok(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(pod("x", json!({}))),
    )
    .await;
}

const APPLY: &str = "application/apply-patch+yaml";

/// An applied Deployment configuration, as a user keeps it in a file.
fn web_config(image: &str, extra_label: Option<&str>, replicas: Option<u32>) -> String {
    let label = extra_label.map_or(String::new(), |l| format!("\n    {l}"));
    let replicas = replicas.map_or(String::new(), |r| format!("\n  replicas: {r}"));
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{label}
spec:{replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"
    )
}

/// The managedFields entry of `manager`, or Null.
fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .unwrap_or(&Value::Null)
}

/// Server-side apply as kube-apiserver answers it (KEP-555 and the `TestApply*` cases of
/// `test/integration/apiserver/apply`): upsert, merge by list keys, removal of fields the
/// manager stops applying, conflicts and force.
#[tokio::test]
async fn server_side_apply_creates_merges_prunes_conflicts_and_forces() {
    let api = TestApi::start().await;
    let web = "/apis/apps/v1/namespaces/default/deployments/web";

    // No fieldManager: 422 on PatchOptions, as upstream, and nothing is created.
    let before = api.revision().await;
    let (code, status) = api
        .apply(web, "", &web_config("nginx:1.26", None, Some(2)))
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(api.revision().await, before);
    assert_eq!(api.req("GET", web, None).await.0, 404);

    // Apply creates (201) and records an Apply entry with list items by key.
    let (code, created) = api
        .apply(
            web,
            "fieldManager=alice",
            &web_config("nginx:1.26", Some("tier: fe"), Some(2)),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(
        created["spec"]["strategy"]["type"], "RollingUpdate",
        "defaulted"
    );
    let alice = entry(&created, "alice");
    assert_eq!(alice["operation"], "Apply");
    assert_eq!(alice["apiVersion"], "apps/v1");
    assert_eq!(alice["fieldsType"], "FieldsV1");
    let containers = &alice["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert_eq!(
        containers["k:{\"name\":\"nginx\"}"],
        json!({".": {}, "f:name": {}, "f:image": {},
               "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}})
    );
    assert!(
        alice["fieldsV1"]["f:spec"].get("f:strategy").is_none(),
        "defaults belong to nobody: {alice}"
    );

    // Another client labels it through a merge patch (an Update entry).
    let (code, labelled) = api
        .send(
            "PATCH",
            &format!("{web}?fieldManager=labeler"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"team":"a"}}}"#,
        )
        .await;
    assert_eq!(code, 200, "{labelled}");
    assert_eq!(entry(&labelled, "labeler")["operation"], "Update");
    assert_eq!(
        entry(&labelled, "labeler")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // Re-apply with a new image, without the tier label and without replicas: the image
    // changes, what alice stopped applying goes (replicas comes back as its default), the
    // other manager's label and the unrelated container stay.
    let (code, reapplied) = api
        .apply(
            web,
            "fieldManager=alice",
            &web_config("nginx:1.27", None, None),
        )
        .await;
    assert_eq!(code, 200, "{reapplied}");
    let c = &reapplied["spec"]["template"]["spec"]["containers"];
    assert_eq!(c[0]["image"], "nginx:1.27");
    assert_eq!(c[1]["name"], "sidecar");
    assert_eq!(
        reapplied["metadata"]["labels"],
        json!({"app": "web", "team": "a"})
    );
    assert_eq!(reapplied["spec"]["replicas"], 1);
    assert_eq!(reapplied["metadata"]["generation"], 2);

    // A scaler owns replicas; alice applying another value conflicts and writes nothing.
    api.send(
        "PATCH",
        &format!("{web}?fieldManager=scaler"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":5}}"#,
    )
    .await;
    let before = api.revision().await;
    let (code, status) = api
        .apply(
            web,
            "fieldManager=alice",
            &web_config("nginx:1.27", None, Some(3)),
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"scaler\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"type": "FieldManagerConflict", "message": "conflict with \"scaler\" using apps/v1",
                "field": ".spec.replicas"}])
    );
    assert_eq!(api.revision().await, before);
    assert_eq!(api.ok("GET", web, None).await["spec"]["replicas"], 5);

    // Applying the value the scaler set is no conflict: both own it.
    let (code, shared) = api
        .apply(
            web,
            "fieldManager=alice",
            &web_config("nginx:1.27", None, Some(5)),
        )
        .await;
    assert_eq!(code, 200, "{shared}");
    assert!(entry(&shared, "scaler")["fieldsV1"]["f:spec"]["f:replicas"].is_object());

    // A dry run answers what force would write and writes nothing.
    let before = api.revision().await;
    let (code, dry) = api
        .apply(
            web,
            "fieldManager=alice&force=true&dryRun=All",
            &web_config("nginx:1.27", None, Some(3)),
        )
        .await;
    assert_eq!(
        (code, dry["spec"]["replicas"].as_i64()),
        (200, Some(3)),
        "{dry}"
    );
    assert_eq!(api.revision().await, before);
    assert_eq!(api.ok("GET", web, None).await["spec"]["replicas"], 5);

    // Force takes the field over.
    let (code, forced) = api
        .apply(
            web,
            "fieldManager=alice&force=true",
            &web_config("nginx:1.27", None, Some(3)),
        )
        .await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(
        entry(&forced, "scaler").is_null(),
        "the scaler owned nothing else: {forced}"
    );
    assert!(entry(&forced, "alice")["fieldsV1"]["f:spec"]["f:replicas"].is_object());
}

#[tokio::test]
async fn invalid_apply_requests_get_a_status_and_write_nothing() {
    let api = TestApi::start().await;
    let cm = "/api/v1/namespaces/default/configmaps/c";
    let web = "/apis/apps/v1/namespaces/default/deployments/web";
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
    let long = format!("fieldManager={}", "m".repeat(129));
    let cases: &[(&str, &str, &str, &str, u16)] = &[
        ("not YAML", cm, "fieldManager=m", "a: [", 400),
        ("not an object", cm, "fieldManager=m", "[1, 2]", 400),
        (
            "wrong version",
            cm,
            "fieldManager=m",
            "apiVersion: v2\nkind: ConfigMap\n",
            400,
        ),
        (
            "wrong kind",
            cm,
            "fieldManager=m",
            "apiVersion: v1\nkind: Secret\n",
            400,
        ),
        (
            "other name",
            cm,
            "fieldManager=m",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n",
            400,
        ),
        (
            "managedFields",
            cm,
            "fieldManager=m",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, managedFields: [{manager: x}]}\n",
            400,
        ),
        (
            "unknown field",
            cm,
            "fieldManager=m",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbogus: 1\n",
            400,
        ),
        (
            "container without its key",
            web,
            "fieldManager=m",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{image: x}]}}}\n",
            400,
        ),
        (
            "force is not a boolean",
            cm,
            "fieldManager=m&force=maybe",
            good,
            400,
        ),
        ("manager too long", cm, &long, good, 422),
    ];
    let before = api.revision().await;
    for &(what, path, query, body, want) in cases {
        let (code, status) = api.apply(path, query, body).await;
        assert_eq!(code, want, "{what}: {status}");
        assert_eq!(status["kind"], "Status", "{what}");
        assert!(
            !status["message"].as_str().unwrap_or("").is_empty(),
            "{what}"
        );
    }
    assert_eq!(api.revision().await, before, "nothing was written");
    // force belongs to apply patches only.
    let (code, status) = api
        .send(
            "PATCH",
            &format!("{cm}?force=true"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("force: Forbidden"),
        "{status}"
    );
}

/// Every write records its manager; `managedFields: [{}]` clears them and a write that
/// leaves them out (or sends `[]`) keeps them, as upstream.
#[tokio::test]
async fn writes_record_managers_and_managed_fields_can_be_cleared() {
    let api = TestApi::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = format!("{cms}/c");
    let created = api
        .ok(
            "POST",
            &format!("{cms}?fieldManager=creator"),
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}})),
        )
        .await;
    let creator = entry(&created, "creator");
    assert_eq!(creator["operation"], "Update");
    assert_eq!(
        creator["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    assert!(creator["time"].as_str().unwrap().ends_with('Z'));

    // A PUT without managedFields keeps them and moves what it changed to its manager
    // (no User-Agent here: upstream's "unknown").
    let mut replaced = created.clone();
    replaced["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    replaced["data"]["k"] = json!("w");
    let replaced = api.ok("PUT", &cm, Some(replaced)).await;
    assert_eq!(
        entry(&replaced, "unknown")["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
    assert_eq!(
        entry(&replaced, "creator")["fieldsV1"],
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );

    // An unchanged write is no write.
    let before = api.revision().await;
    api.ok("PUT", &cm, Some(replaced.clone())).await;
    assert_eq!(api.revision().await, before);

    // `[]` does not clear; `[{}]` does.
    let kept = api
        .ok(
            "PATCH",
            &cm,
            Some(json!({"metadata": {"managedFields": []}})),
        )
        .await;
    assert_eq!(
        kept["metadata"]["managedFields"],
        replaced["metadata"]["managedFields"]
    );
    let cleared = api
        .ok(
            "PATCH",
            &cm,
            Some(json!({"metadata": {"managedFields": [{}]}})),
        )
        .await;
    assert!(
        cleared["metadata"].get("managedFields").is_none(),
        "{cleared}"
    );
    assert!(
        api.ok("GET", &cm, None).await["metadata"]
            .get("managedFields")
            .is_none()
    );
}

/// A collection delete and a namespace's cleanup walk the collection page by page (500
/// objects at a time); with more objects than one page, both still reach every one, and
/// the collection delete answers with every object it deleted.
#[tokio::test]
async fn collection_and_namespace_deletes_reach_past_one_page() {
    let api = TestApi::start().await;
    api.ok(
        "POST",
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "bulk"}})),
    )
    .await;
    let configmaps = "/api/v1/namespaces/bulk/configmaps";
    for i in 0..1_100 {
        let half = if i < 600 { "a" } else { "b" };
        let cm = json!({
            "metadata": {"name": format!("cm-{i:04}"), "labels": {"half": half}},
            "data": {"i": i.to_string()},
        });
        api.ok("POST", configmaps, Some(cm)).await;
    }

    let deleted = api
        .ok(
            "DELETE",
            &format!("{configmaps}?labelSelector=half%3Da"),
            None,
        )
        .await;
    let items = deleted["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        600,
        "every matching object, past the first page"
    );
    assert!(items.iter().all(|o| o["metadata"]["labels"]["half"] == "a"));
    assert!(
        items
            .iter()
            .all(|o| o["metadata"]["resourceVersion"].is_string())
    );
    assert_eq!(deleted["kind"], "ConfigMapList");
    assert!(
        deleted["metadata"]["resourceVersion"].is_string(),
        "{}",
        deleted["metadata"]
    );
    let left = api.ok("GET", configmaps, None).await;
    let left = left["items"].as_array().unwrap();
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|o| o["metadata"]["labels"]["half"] == "b"));

    api.ok("DELETE", "/api/v1/namespaces/bulk", None).await;
    let mut gone = false;
    for _ in 0..200 {
        if api.req("GET", "/api/v1/namespaces/bulk", None).await.0 == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the namespace is removed once its 500 objects are");
    let left = api
        .storage
        .list("/registry/configmaps/bulk/", Default::default())
        .await
        .unwrap();
    assert!(
        left.items.is_empty(),
        "{} configmaps left",
        left.items.len()
    );
}
