//! [`Client`]: one pooled HTTP/1.1 or HTTP/2 connection set to one API server,
//! with authentication, timeouts and bounded body reads.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::transport::Connector;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// How much of a non-Status error body is kept in the synthesised Status message.
const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Which response-size bound applies to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLimit {
    /// One object (or a Status).
    Object,
    /// A list page.
    List,
}

/// A handle to an API server. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: HyperClient<Connector, Full<Bytes>>,
    config: Config,
    auth: Option<HeaderValue>,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.config.base_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client. Must be called inside a tokio runtime only when requests
    /// are made; construction itself does no IO.
    pub fn new(config: Config) -> Result<Client> {
        let connector = Connector::new(&config)?;
        let http = HyperClient::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(false)
            .build(connector);
        let auth = match &config.bearer_token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    Error::InvalidRequest("bearer token is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| Error::InvalidRequest("user agent is not a valid header value".into()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                auth,
                user_agent,
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The namespace of the kubeconfig context (or `default`).
    pub fn default_namespace(&self) -> &str {
        &self.inner.config.default_namespace
    }

    /// Builds a request for `path_and_query` (starting with `/`) relative to the
    /// base URL. `body` is sent with `content_type`.
    pub(crate) fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Request<Full<Bytes>>> {
        let uri = format!("{}{}", self.inner.config.base_url, path_and_query);
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, self.inner.user_agent.clone());
        if let Some(auth) = &self.inner.auth {
            b = b.header(AUTHORIZATION, auth.clone());
        }
        let body = match body {
            Some((bytes, ct)) => {
                b = b.header(CONTENT_TYPE, ct);
                bytes
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body))
            .map_err(|e| Error::InvalidRequest(format!("cannot build request: {e}")))
    }

    /// Sends a request and decodes a 2xx JSON body as `T`, all within the request
    /// timeout and the body bound.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        req: Request<Full<Bytes>>,
        limit: BodyLimit,
        context: &'static str,
    ) -> Result<T> {
        let bytes = self.send_bytes(req, limit).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode { context, source })
    }

    /// Sends a request and returns the 2xx body, within the request timeout and
    /// the body bound. A non-2xx answer becomes [`Error::Api`].
    pub(crate) async fn send_bytes(
        &self,
        req: Request<Full<Bytes>>,
        limit: BodyLimit,
    ) -> Result<Bytes> {
        let timeout = self.inner.config.request_timeout;
        let limit_bytes = match limit {
            BodyLimit::Object => self.inner.config.max_object_bytes,
            BodyLimit::List => self.inner.config.max_list_bytes,
        };
        let fut = async {
            let resp = self.inner.http.request(req).await.map_err(transport)?;
            let status = resp.status();
            let body = read_body(resp.into_body(), limit_bytes).await?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(api_error(status, &body))
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Sends a streaming request (a watch): the timeout bounds only the wait for
    /// the response headers. A non-2xx answer becomes [`Error::Api`].
    pub(crate) async fn send_streaming(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>> {
        let timeout = self.inner.config.request_timeout;
        let resp = tokio::time::timeout(timeout, self.inner.http.request(req))
            .await
            .map_err(|_| Error::Timeout(timeout))?
            .map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = tokio::time::timeout(
            timeout,
            read_body(resp.into_body(), self.inner.config.max_object_bytes),
        )
        .await
        .map_err(|_| Error::Timeout(timeout))??;
        Err(api_error(status, &body))
    }
}

fn transport(e: impl std::error::Error) -> Error {
    // hyper-util's error hides the cause in `source()`: keep the whole chain.
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    Error::Transport(msg)
}

async fn read_body(body: Incoming, limit_bytes: usize) -> Result<Bytes> {
    match Limited::new(body, limit_bytes).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Error::BodyTooLarge { limit_bytes })
        }
        Err(e) => Err(Error::Transport(format!("reading body: {e}"))),
    }
}

/// Turns a non-2xx response into [`Error::Api`], decoding a `Status` body when
/// there is one and synthesising one otherwise.
pub(crate) fn api_error(code: StatusCode, body: &[u8]) -> Error {
    let mut status = serde_json::from_slice::<Status>(body)
        .ok()
        .filter(|s| s.code.is_some() || s.reason.is_some() || s.message.is_some())
        .unwrap_or_else(|| {
            let end = body.len().min(MAX_ERROR_MESSAGE_BYTES);
            Status {
                status: Some("Failure".to_string()),
                message: Some(String::from_utf8_lossy(&body[..end]).into_owned()),
                reason: code.canonical_reason().map(|r| r.replace(' ', "")),
                ..Status::default()
            }
        });
    if status.code.is_none() {
        status.code = Some(i32::from(code.as_u16()));
    }
    Error::Api(Box::new(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_decodes_status_or_synthesises_one() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#;
        let e = api_error(StatusCode::NOT_FOUND, body);
        assert!(e.is_not_found());
        assert_eq!(e.reason(), Some("NotFound"));
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(e.code(), Some(502));
        assert_eq!(e.reason(), Some("BadGateway"));
        assert_eq!(
            e.status().and_then(|s| s.message.as_deref()),
            Some("<html>bad gateway</html>")
        );
    }
}
