//! A small in-test API server: hyper on loopback (optionally TLS with ALPN h2),
//! answering each request through a scripted handler and recording what it saw.

#![allow(dead_code)]

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub version: http::Version,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Bytes,
}

impl Seen {
    /// "METHOD /path?query".
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.uri.split_once('?')?.1;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }

    pub fn is_watch(&self) -> bool {
        self.query("watch").as_deref() == Some("1")
    }
}

/// A scripted answer.
pub enum Reply {
    /// A complete JSON body with this code.
    Json(u16, String),
    /// A 200 chunked stream of these lines (one chunk each), then end of body.
    Lines(Vec<String>),
    /// A 200 chunked stream of these lines that then stays open forever.
    LinesThenHang(Vec<String>),
    /// Never answer.
    Hang,
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Plain http server.
    pub async fn start(handler: Handler) -> TestServer {
        Self::start_inner(handler, None).await
    }

    /// https server with the given rustls config.
    pub async fn start_tls(handler: Handler, tls: rustls::ServerConfig) -> TestServer {
        Self::start_inner(
            handler,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))),
        )
        .await
    }

    async fn start_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (handler, seen, tls) = (handler.clone(), seen2.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        serve(req, handler.clone(), seen.clone())
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
            }
        });
        TestServer { addr, seen, task }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    req: Request<Incoming>,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let s = Seen {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        version: parts.version,
        content_type: header(http::header::CONTENT_TYPE),
        authorization: header(http::header::AUTHORIZATION),
        body,
    };
    seen.lock().unwrap().push(s.clone());
    let reply = handler(&s);
    let json = |code: u16, body: BoxBody<Bytes, Infallible>| {
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap()
    };
    Ok(match reply {
        Reply::Json(code, text) => json(code, Full::new(Bytes::from(text)).boxed()),
        Reply::Lines(lines) => json(200, lines_body(lines, false)),
        Reply::LinesThenHang(lines) => json(200, lines_body(lines, true)),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    })
}

fn lines_body(lines: Vec<String>, hang: bool) -> BoxBody<Bytes, Infallible> {
    let frames =
        stream::iter(lines).map(|l| Ok::<_, Infallible>(Frame::data(Bytes::from(l + "\n"))));
    if hang {
        BodyExt::boxed(StreamBody::new(frames.chain(stream::pending())))
    } else {
        BodyExt::boxed(StreamBody::new(frames))
    }
}

/// A pod JSON object.
pub fn pod_json(ns: &str, name: &str, rv: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"namespace": ns, "name": name, "resourceVersion": rv},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    })
}

/// A watch line.
pub fn event(kind: &str, object: serde_json::Value) -> String {
    serde_json::json!({"type": kind, "object": object}).to_string()
}

/// A `metav1.Status` failure body.
pub fn status_json(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    })
    .to_string()
}
