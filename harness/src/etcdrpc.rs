//! A lean unary gRPC client for the etcd v3 KV service, used by the store load
//! generator's clients (`bosun bench store`).
//!
//! The generator shares the machine's cores with the server it measures, so every
//! microsecond it spends per request is taken from the server. `etcd-client` (tonic)
//! sends each request through a buffer and a balancer task before it reaches the
//! HTTP/2 connection, and pipes the body from another task, so a request's headers
//! and body usually leave in two writes. Here each request is one HTTP/2 stream
//! opened straight on the shared connection ([`h2`]): headers and the whole body are
//! queued together, and the only task besides the callers is the connection's own.
//!
//! It speaks plain gRPC over HTTP/2 without TLS (`http://` endpoints), unary calls
//! only, without compression; the watch workload keeps `etcd-client` for its streams.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use prost::Message;
use tokio::net::TcpStream;

pub use bosun_store_engine::proto::etcdserverpb as pb;

/// Largest response message accepted (etcd's default limit on the client side is
/// larger; the generator's ranges stay far below this).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// gRPC's message prefix: a compressed flag and a big-endian length.
const PREFIX_BYTES: usize = 5;

const PUT: &str = "/etcdserverpb.KV/Put";
const RANGE: &str = "/etcdserverpb.KV/Range";
const TXN: &str = "/etcdserverpb.KV/Txn";

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("endpoint {0:?}: use http://HOST:PORT")]
    Endpoint(String),
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http/2: {0}")]
    H2(#[from] h2::Error),
    #[error("grpc status {code}: {message}")]
    Status { code: u32, message: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// One HTTP/2 connection to an etcd v3 endpoint; clones share it, each call is a
/// stream of its own.
#[derive(Clone)]
pub struct KvConn {
    send: SendRequest<Bytes>,
    authority: Authority,
}

impl KvConn {
    /// Connects to `endpoint` (`http://HOST:PORT`) with `TCP_NODELAY`, as gRPC does.
    pub async fn connect(endpoint: &str) -> Result<KvConn, RpcError> {
        let bad = || RpcError::Endpoint(endpoint.to_string());
        let rest = endpoint.strip_prefix("http://").ok_or_else(bad)?;
        let authority: Authority = rest.trim_end_matches('/').parse().map_err(|_| bad())?;
        let port = authority.port_u16().ok_or_else(bad)?;
        let tcp = TcpStream::connect((authority.host(), port)).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::handshake(tcp).await?;
        // The connection task ends when every clone is dropped or the peer goes away;
        // calls then fail with the connection's error.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(KvConn { send, authority })
    }

    pub async fn put(&self, req: &pb::PutRequest) -> Result<pb::PutResponse, RpcError> {
        self.call(PUT, req).await
    }

    pub async fn range(&self, req: &pb::RangeRequest) -> Result<pb::RangeResponse, RpcError> {
        self.call(RANGE, req).await
    }

    pub async fn txn(&self, req: &pb::TxnRequest) -> Result<pb::TxnResponse, RpcError> {
        self.call(TXN, req).await
    }

    async fn call<Q: Message, R: Message + Default>(
        &self,
        path: &'static str,
        req: &Q,
    ) -> Result<R, RpcError> {
        let len = req.encoded_len();
        let mut body = BytesMut::with_capacity(PREFIX_BYTES + len);
        body.put_u8(0);
        body.put_u32(len as u32);
        req.encode(&mut body)
            .map_err(|e| RpcError::Protocol(format!("encode: {e}")))?;

        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        uri.path_and_query = Some(PathAndQuery::from_static(path));
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_parts(uri).expect("scheme, authority and path");
        let headers = request.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));

        // Waits while the connection is at the server's concurrent-stream limit.
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body.freeze(), true)?;
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            return Err(RpcError::Protocol(format!(
                "HTTP status {}",
                response.status()
            )));
        }
        // A trailers-only answer (an error) carries its status in the headers.
        if response.headers().contains_key("grpc-status") {
            check_status(response.headers())?;
        }
        let mut recv = response.into_body();
        let mut message = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            if message.len() + chunk.len() > PREFIX_BYTES + MAX_RESPONSE_BYTES {
                return Err(RpcError::Protocol(format!(
                    "response larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            message.extend_from_slice(&chunk);
        }
        match recv.trailers().await? {
            Some(trailers) => check_status(&trailers)?,
            None => return Err(RpcError::Protocol("no grpc-status trailer".into())),
        }
        decode_message(message.freeze())
    }
}

/// `Ok` for grpc-status 0, else the status and its message.
fn check_status(headers: &HeaderMap) -> Result<(), RpcError> {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| RpcError::Protocol("missing or bad grpc-status".into()))?;
    if code == 0 {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    Err(RpcError::Status { code, message })
}

/// grpc-message is percent-encoded (gRPC over HTTP/2); a malformed escape stays as is.
fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let Some(hi) = raw.get(i + 1).copied().and_then(hex)
            && let Some(lo) = raw.get(i + 2).copied().and_then(hex)
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one length-prefixed, uncompressed message of a unary response.
fn decode_message<R: Message + Default>(mut data: Bytes) -> Result<R, RpcError> {
    if data.len() < PREFIX_BYTES {
        return Err(RpcError::Protocol(format!(
            "{} bytes of response, no message",
            data.len()
        )));
    }
    let compressed = data.get_u8();
    let len = data.get_u32() as usize;
    if compressed != 0 {
        return Err(RpcError::Protocol("compressed response".into()));
    }
    if len != data.len() {
        return Err(RpcError::Protocol(format!(
            "message of {len} bytes announced, {} received",
            data.len()
        )));
    }
    Ok(R::decode(data)?)
}

/// The end of the range holding every key that starts with `prefix` (etcd's
/// `GetPrefixRangeEnd`): the prefix with its last byte below 0xff incremented, or
/// `[0]` (no upper bound) when every byte is 0xff.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }

    #[test]
    fn a_response_message_must_match_its_prefix() {
        let resp = pb::PutResponse {
            header: Some(pb::ResponseHeader {
                revision: 7,
                ..Default::default()
            }),
            prev_kv: None,
        };
        let mut framed = BytesMut::new();
        framed.put_u8(0);
        framed.put_u32(resp.encoded_len() as u32);
        resp.encode(&mut framed).unwrap();
        let ok: pb::PutResponse = decode_message(framed.clone().freeze()).unwrap();
        assert_eq!(ok.header.unwrap().revision, 7);

        let short = framed.clone().freeze().slice(..framed.len() - 1);
        let err = decode_message::<pb::PutResponse>(short).unwrap_err();
        assert!(err.to_string().contains("announced"), "{err}");
        let mut compressed = framed.clone();
        compressed[0] = 1;
        let err = decode_message::<pb::PutResponse>(compressed.freeze()).unwrap_err();
        assert!(err.to_string().contains("compressed"), "{err}");
        let err = decode_message::<pb::PutResponse>(Bytes::from_static(b"\0\0")).unwrap_err();
        assert!(err.to_string().contains("no message"), "{err}");
    }

    #[test]
    fn a_non_zero_grpc_status_is_an_error_with_its_message() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(check_status(&h).is_ok());
        h.insert("grpc-status", HeaderValue::from_static("3"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("etcdserver:%20request is too large%2"),
        );
        let err = check_status(&h).unwrap_err();
        assert!(matches!(err, RpcError::Status { code: 3, .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("etcdserver: request is too large%2"),
            "{err}"
        );
        h.remove("grpc-status");
        assert!(check_status(&h).is_err());
    }
}
