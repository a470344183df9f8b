//! `Api<K>` verbs against a recording server: methods, paths, content types,
//! bodies, auth, typed errors, body bounds and timeouts; and https with a
//! generated CA, checking that HTTP/2 is negotiated by ALPN and that another CA
//! is refused.

mod common;

use bosun_client::{
    Api, Client, Config, DeleteParams, DeleteResponse, Error, ListParams, Patch, WatchEvent,
    WatchParams,
};
use common::{Reply, Seen, TestServer, event, pod_json, status_json};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn success() -> Reply {
    Reply::Json(
        200,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}).to_string(),
    )
}

/// Answers by method and path, as kube-apiserver would.
fn handler() -> common::Handler {
    Arc::new(|s: &Seen| {
        let path = s.uri.split('?').next().unwrap_or("");
        match (s.method.as_str(), path) {
            (_, "/api/v1/namespaces/ns/pods/slow") => Reply::Hang,
            ("GET", "/api/v1/namespaces/ns/pods/missing") => {
                Reply::Json(404, status_json(404, "NotFound", "pods \"missing\" not found"))
            }
            ("GET", "/api/v1/namespaces/ns/pods") if s.is_watch() => Reply::Lines(vec![
                event("ADDED", pod_json("ns", "w", "5")),
                event("ERROR", serde_json::from_str(&status_json(410, "Expired", "too old")).unwrap()),
            ]),
            ("GET", "/api/v1/namespaces/ns/pods") => Reply::Json(
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                       "items": [pod_json("ns", "a", "6"), pod_json("ns", "b", "7")]})
                .to_string(),
            ),
            ("GET" | "PUT" | "PATCH", _) | ("POST", "/api/v1/namespaces/ns/pods") => {
                Reply::Json(200, pod_json("ns", "p", "9").to_string())
            }
            ("POST", "/api/v1/namespaces/ns/pods/p/binding") => success(),
            ("POST", "/api/v1/namespaces/ns/pods/p/eviction") => Reply::Json(
                429,
                status_json(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."),
            ),
            ("DELETE", "/api/v1/namespaces/ns/pods/p") => success(),
            ("DELETE", "/api/v1/namespaces/ns/pods/graceful") => Reply::Json(200, pod_json("ns", "graceful", "10").to_string()),
            ("DELETE", "/api/v1/namespaces/ns/pods") => Reply::Json(
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [pod_json("ns", "a", "6")]}).to_string(),
            ),
            _ => Reply::Json(500, status_json(500, "InternalError", "unscripted")),
        }
    })
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn verbs_send_the_right_requests() {
    let server = TestServer::start(handler()).await;
    let config = Config::new(&server.http_url())
        .unwrap()
        .with_bearer_token("t0k");
    let pods = Api::<Pod>::namespaced(Client::new(config).unwrap(), "ns");

    assert_eq!(
        pods.create(&pod("p"))
            .await
            .unwrap()
            .metadata
            .resource_version
            .as_deref(),
        Some("9")
    );
    pods.get("p").await.unwrap();
    pods.replace("p", &pod("p")).await.unwrap();
    pods.replace_status("p", &pod("p")).await.unwrap();
    pods.patch(
        "p",
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();
    pods.patch(
        "p",
        &Patch::Json(json!([{"op": "add", "path": "/metadata/labels/a", "value": "b"}])),
    )
    .await
    .unwrap();
    pods.patch_status(
        "p",
        &Patch::Strategic(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let del = pods
        .delete(
            "p",
            &DeleteParams::default()
                .grace_period(0)
                .precondition_uid("u1"),
        )
        .await
        .unwrap();
    assert!(matches!(del, DeleteResponse::Status(s) if s.status.as_deref() == Some("Success")));
    let del = pods
        .delete("graceful", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        matches!(del, DeleteResponse::Object(p) if p.metadata.name.as_deref() == Some("graceful"))
    );
    let dc = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .unwrap();
    assert!(matches!(dc, DeleteResponse::Object(l) if l.items.len() == 1));
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some("p".into()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some("n1".into()),
            ..Default::default()
        },
    };
    assert_eq!(
        pods.bind("p", &binding).await.unwrap().status.as_deref(),
        Some("Success")
    );
    let evict = pods.evict("p", &Eviction::default()).await.unwrap_err();
    assert_eq!(evict.code(), Some(429));
    assert_eq!(evict.reason(), Some("TooManyRequests"));

    let want = [
        ("POST /api/v1/namespaces/ns/pods", Some("application/json")),
        ("GET /api/v1/namespaces/ns/pods/p", None),
        ("PUT /api/v1/namespaces/ns/pods/p", Some("application/json")),
        (
            "PUT /api/v1/namespaces/ns/pods/p/status",
            Some("application/json"),
        ),
        (
            "PATCH /api/v1/namespaces/ns/pods/p",
            Some("application/merge-patch+json"),
        ),
        (
            "PATCH /api/v1/namespaces/ns/pods/p",
            Some("application/json-patch+json"),
        ),
        (
            "PATCH /api/v1/namespaces/ns/pods/p/status",
            Some("application/strategic-merge-patch+json"),
        ),
        (
            "DELETE /api/v1/namespaces/ns/pods/p",
            Some("application/json"),
        ),
        (
            "DELETE /api/v1/namespaces/ns/pods/graceful",
            Some("application/json"),
        ),
        (
            "DELETE /api/v1/namespaces/ns/pods?labelSelector=app%3Dx",
            Some("application/json"),
        ),
        (
            "POST /api/v1/namespaces/ns/pods/p/binding",
            Some("application/json"),
        ),
        (
            "POST /api/v1/namespaces/ns/pods/p/eviction",
            Some("application/json"),
        ),
    ];
    let seen = server.seen();
    assert_eq!(seen.len(), want.len());
    for (s, (line, ct)) in seen.iter().zip(want) {
        assert_eq!(s.line(), line);
        assert_eq!(s.content_type.as_deref(), ct, "{line}");
        assert_eq!(s.authorization.as_deref(), Some("Bearer t0k"), "{line}");
    }
    let body = |i: usize| serde_json::from_slice::<serde_json::Value>(&seen[i].body).unwrap();
    assert_eq!(body(0)["metadata"]["name"], "p");
    assert_eq!(body(5)[0]["op"], "add");
    assert_eq!(
        body(7),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}})
    );
    assert_eq!(body(10)["target"]["name"], "n1");
}

#[tokio::test]
async fn errors_are_typed() {
    let server = TestServer::start(handler()).await;
    let config = Config::new(&server.http_url())
        .unwrap()
        .with_request_timeout(Duration::from_millis(300));
    let client = Client::new(config.clone()).unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "ns");

    let e = pods.get("missing").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.reason(), Some("NotFound"));
    assert!(matches!(pods.get_opt("missing").await, Ok(None)));
    assert!(matches!(pods.get("slow").await, Err(Error::Timeout(_))));
    assert!(matches!(
        pods.get("a/b").await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        Api::<Pod>::all(client).get("p").await,
        Err(Error::InvalidRequest(_))
    ));

    let mut small = config;
    small.max_list_bytes = 64;
    let pods = Api::<Pod>::namespaced(Client::new(small).unwrap(), "ns");
    assert!(matches!(
        pods.list(&ListParams::default()).await,
        Err(Error::BodyTooLarge { limit_bytes: 64 })
    ));

    let closed = Config::new("http://127.0.0.1:1").unwrap();
    let nodes = Api::<Node>::cluster(Client::new(closed).unwrap());
    assert!(matches!(nodes.get("n").await, Err(Error::Transport(_))));
}

#[tokio::test]
async fn list_and_watch_decode() {
    let server = TestServer::start(handler()).await;
    let pods = Api::<Pod>::namespaced(
        Client::new(Config::new(&server.http_url()).unwrap()).unwrap(),
        "ns",
    );
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.resource_version(), "7");
    assert_eq!(list.items.len(), 2);

    let stream = pods
        .watch(&WatchParams::default().timeout(30), "6")
        .await
        .unwrap();
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0], Ok(WatchEvent::Added(p)) if p.metadata.name.as_deref() == Some("w"))
    );
    assert!(matches!(&events[1], Ok(WatchEvent::Error(s)) if s.code == Some(410)));
    assert_eq!(
        server.seen()[1].line(),
        "GET /api/v1/namespaces/ns/pods?watch=1&resourceVersion=6&timeoutSeconds=30&allowWatchBookmarks=true"
    );
}

struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn make_pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca_cert.pem(),
        server,
    }
}

#[tokio::test]
async fn https_trusts_the_given_ca_and_negotiates_h2() {
    let pki = make_pki();
    let server = TestServer::start_tls(handler(), pki.server).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let config = Config::new(&url)
        .unwrap()
        .with_root_ca_pem(pki.ca_pem.as_bytes());
    let pods = Api::<Pod>::namespaced(Client::new(config).unwrap(), "ns");
    pods.get("p").await.unwrap();
    let stream = pods.watch(&WatchParams::default(), "6").await.unwrap();
    assert_eq!(stream.collect::<Vec<_>>().await.len(), 2);
    let seen = server.seen();
    assert!(
        seen.iter().all(|s| s.version == http::Version::HTTP_2),
        "{seen:?}"
    );

    // By name, through tls-server-name.
    let mut by_name = Config::new(&url)
        .unwrap()
        .with_root_ca_pem(pki.ca_pem.as_bytes());
    by_name.tls_server_name = Some("localhost".into());
    Api::<Pod>::namespaced(Client::new(by_name).unwrap(), "ns")
        .get("p")
        .await
        .unwrap();

    // Another CA is refused: no fallback to other roots.
    let other = Config::new(&url)
        .unwrap()
        .with_root_ca_pem(make_pki().ca_pem.as_bytes());
    let e = Api::<Pod>::namespaced(Client::new(other).unwrap(), "ns")
        .get("p")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");

    // insecure-skip-tls-verify accepts it.
    let mut insecure = Config::new(&url).unwrap();
    insecure.insecure_skip_tls_verify = true;
    Api::<Pod>::namespaced(Client::new(insecure).unwrap(), "ns")
        .get("p")
        .await
        .unwrap();
}

#[tokio::test]
async fn plain_http_is_http1_unless_prior_knowledge_asks_for_h2() {
    let server = TestServer::start(handler()).await;
    let http1 = Config::new(&server.http_url()).unwrap();
    Api::<Pod>::namespaced(Client::new(http1).unwrap(), "ns")
        .get("p")
        .await
        .unwrap();
    let h2c = Config::new(&server.http_url())
        .unwrap()
        .with_http2_prior_knowledge();
    let pods = Api::<Pod>::namespaced(Client::new(h2c).unwrap(), "ns");
    pods.get("p").await.unwrap();
    pods.create_bytes(bytes::Bytes::from_static(br#"{"metadata":{"name":"p"}}"#))
        .await
        .unwrap();
    let versions: Vec<http::Version> = server.seen().iter().map(|s| s.version).collect();
    assert_eq!(
        versions,
        [
            http::Version::HTTP_11,
            http::Version::HTTP_2,
            http::Version::HTTP_2
        ]
    );
}
