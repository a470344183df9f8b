//! The direct transport's HTTP/2 connection on its own, under a test service: what
//! gRPC clients rely on (headers, trailers, status codes, flow control both ways,
//! concurrent streams, resets, shutdown) through the `h2` client, and the protocol
//! errors and window accounting through raw frames. Every wait is bounded; no timing
//! is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bosun_store_engine::grpc::conn::{self, Conn, Route, StreamEnds, UnaryFuture};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::Status;

const WAIT: Duration = Duration::from_secs(30);
const MAX_MESSAGE: usize = 64 << 10;

/// Unary: `Echo` answers its request, `Big` answers a message of the size its request
/// names (as 8 bytes), `Fail` answers a status, `Never` never answers. Streaming: `Stream` echoes each
/// message; `Hold` takes none until `release` has a permit.
struct TestService {
    release: Semaphore,
    /// Streaming sessions whose inbound has ended (the client finished or reset).
    inbound_ended: AtomicUsize,
    hold_capacity: usize,
}

impl conn::Service for TestService {
    fn route(&self, path: &[u8]) -> Option<Route> {
        Some(match path {
            b"/test.T/Echo" => Route::Unary(0),
            b"/test.T/Big" => Route::Unary(1),
            b"/test.T/Fail" => Route::Unary(2),
            b"/test.T/Never" => Route::Unary(3),
            b"/test.T/Stream" => Route::Streaming(0),
            b"/test.T/Hold" => Route::Streaming(1),
            _ => return None,
        })
    }

    fn unary(self: &Arc<Self>, method: u8, message: Bytes) -> UnaryFuture {
        Box::pin(async move {
            match method {
                0 => Ok(message.to_vec()),
                1 => {
                    let n = u64::from_be_bytes(message[..8].try_into().unwrap()) as usize;
                    Ok((0..n).map(|i| (i % 251) as u8).collect())
                }
                2 => Err(Status::invalid_argument(
                    "bad 100% \"naïve\" input\nline two",
                )),
                _ => std::future::pending().await,
            }
        })
    }

    fn open(self: &Arc<Self>, method: u8) -> StreamEnds {
        let capacity = if method == 0 { 16 } else { self.hold_capacity };
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(capacity);
        let (out_tx, out_rx) = mpsc::channel::<Result<Vec<u8>, Status>>(16);
        let svc = self.clone();
        tokio::spawn(async move {
            if method == 1 {
                let _ = svc.release.acquire().await;
            }
            while let Some(m) = in_rx.recv().await {
                if method == 0 && out_tx.send(Ok(m.to_vec())).await.is_err() {
                    break;
                }
            }
            svc.inbound_ended.fetch_add(1, Ordering::SeqCst);
        });
        StreamEnds {
            inbound: in_tx,
            outbound: Box::new(RawOutbound(out_rx)),
        }
    }
}

/// Responses already encoded (the test messages are raw bytes, not protobuf).
struct RawOutbound(mpsc::Receiver<Result<Vec<u8>, Status>>);

impl conn::Outbound for RawOutbound {
    fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
        out: &mut BytesMut,
    ) -> std::task::Poll<Option<Result<(), Status>>> {
        self.0
            .poll_recv(cx)
            .map(|m| m.map(|r| r.map(|m| conn::frame_message(out, &m))))
    }
}

struct Server {
    addr: std::net::SocketAddr,
    svc: Arc<TestService>,
    stop: Option<oneshot::Sender<()>>,
    conns: tokio::task::JoinHandle<()>,
}

async fn start(hold_capacity: usize) -> Server {
    let svc = Arc::new(TestService {
        release: Semaphore::new(0),
        inbound_ended: AtomicUsize::new(0),
        hold_capacity,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
    let s = svc.clone();
    let conns = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                a = listener.accept() => {
                    let (io, _) = a.unwrap();
                    let mut stop = stop_all.subscribe();
                    tasks.spawn(Conn::new(io, s.clone(), MAX_MESSAGE).run(async move {
                        let _ = stop.recv().await;
                    }));
                }
                _ = &mut stop_rx => break,
            }
        }
        let _ = stop_all.send(());
        while tasks.join_next().await.is_some() {}
    });
    Server {
        addr,
        svc,
        stop: Some(stop_tx),
        conns,
    }
}

async fn client(addr: std::net::SocketAddr, window: u32) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn request(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// A unary call with a `grpc-timeout` header.
async fn unary_within(
    client: &h2::client::SendRequest<Bytes>,
    path: &str,
    timeout: &'static str,
    body: Bytes,
) -> Answer {
    let mut req = request(path);
    req.headers_mut()
        .insert("grpc-timeout", http::HeaderValue::from_static(timeout));
    let mut ready = client.clone().ready().await.unwrap();
    let (resp, mut send) = ready.send_request(req, false).unwrap();
    send.send_data(body, true).unwrap();
    read_answer(resp).await
}

fn framed(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(message.len() as u32);
    b.put_slice(message);
    b.freeze()
}

/// A call's outcome: the response messages and the grpc-status and grpc-message.
#[derive(Debug)]
struct Answer {
    messages: Vec<Vec<u8>>,
    status: String,
    message: String,
}

async fn read_answer(resp: h2::client::ResponseFuture) -> Answer {
    let resp = tokio::time::timeout(WAIT, resp).await.unwrap().unwrap();
    let (parts, mut body) = resp.into_parts();
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["content-type"], "application/grpc");
    let mut data = BytesMut::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        data.extend_from_slice(&chunk);
    }
    let trailers = tokio::time::timeout(WAIT, body.trailers())
        .await
        .unwrap()
        .unwrap();
    // A trailers-only answer carries the status in its headers.
    let fields = trailers.unwrap_or(parts.headers);
    let mut messages = Vec::new();
    while !data.is_empty() {
        assert_eq!(data.get_u8(), 0, "uncompressed");
        let n = data.get_u32() as usize;
        messages.push(data.split_to(n).to_vec());
    }
    Answer {
        messages,
        status: fields["grpc-status"].to_str().unwrap().to_string(),
        message: fields
            .get("grpc-message")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
    }
}

/// Opens a `Stream` call and waits for its response headers.
async fn open_stream(
    client: &h2::client::SendRequest<Bytes>,
) -> (h2::SendStream<Bytes>, h2::RecvStream) {
    let mut ready = client.clone().ready().await.unwrap();
    let (resp, send) = ready
        .send_request(request("/test.T/Stream"), false)
        .unwrap();
    let resp = tokio::time::timeout(WAIT, resp).await.unwrap().unwrap();
    (send, resp.into_body())
}

async fn unary(client: &mut h2::client::SendRequest<Bytes>, path: &str, body: Bytes) -> Answer {
    let mut ready = client.clone().ready().await.unwrap();
    let (resp, mut send) = ready.send_request(request(path), false).unwrap();
    send.send_data(body, true).unwrap();
    read_answer(resp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_answer_with_headers_message_and_trailers() {
    let server = start(16).await;
    let mut c = client(server.addr, 65_535).await;
    let a = unary(&mut c, "/test.T/Echo", framed(b"hello")).await;
    assert_eq!(
        (a.messages, a.status.as_str()),
        (vec![b"hello".to_vec()], "0")
    );

    // An error is a trailers-only answer; its message percent-encoded.
    let a = unary(&mut c, "/test.T/Fail", framed(b"")).await;
    assert!(a.messages.is_empty());
    assert_eq!(a.status, "3");
    assert_eq!(a.message, "bad 100%25 \"na%C3%AFve\" input%0Aline two");

    let a = unary(&mut c, "/test.T/Nope", framed(b"")).await;
    assert_eq!(a.status, "12");
    assert!(a.message.contains("/test.T/Nope"), "{a:?}");

    // Too large, compressed, missing, and two messages: refused, connection intact.
    let big = vec![7u8; MAX_MESSAGE + 1];
    let a = unary(&mut c, "/test.T/Echo", framed(&big)).await;
    assert_eq!(a.status, "8", "{a:?}");
    let mut compressed = framed(b"x").to_vec();
    compressed[0] = 1;
    let a = unary(&mut c, "/test.T/Echo", compressed.into()).await;
    assert_eq!(a.status, "12", "{a:?}");
    let a = unary(&mut c, "/test.T/Echo", Bytes::new()).await;
    assert_eq!(a.status, "13", "{a:?}");
    let two = [framed(b"a"), framed(b"b")].concat();
    let a = unary(&mut c, "/test.T/Echo", two.into()).await;
    assert_eq!(a.status, "13", "{a:?}");

    // The largest message allowed, in many DATA frames.
    let max = vec![9u8; MAX_MESSAGE];
    let a = unary(&mut c, "/test.T/Echo", framed(&max)).await;
    assert_eq!((a.status.as_str(), a.messages), ("0", vec![max]));
}

/// A response far larger than the client's windows arrives whole, sent only as the
/// client returns credit (a 1 KiB stream window here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_respect_the_clients_windows() {
    let server = start(16).await;
    for window in [1024u32, 65_535] {
        let mut c = client(server.addr, window).await;
        let n = 3 * 1024 * 1024 + 17;
        let a = unary(&mut c, "/test.T/Big", framed(&(n as u64).to_be_bytes())).await;
        assert_eq!(a.status, "0");
        assert_eq!(a.messages.len(), 1);
        let expect: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        assert!(a.messages[0] == expect, "window {window}");
    }
}

/// Hundreds of calls in flight on one connection each get their own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_connection() {
    let server = start(16).await;
    let c = client(server.addr, 65_535).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..500u32 {
        let mut c = c.clone();
        calls.spawn(async move {
            let body = format!("call {i}").repeat(1 + i as usize % 50);
            let a = unary(&mut c, "/test.T/Echo", framed(body.as_bytes())).await;
            assert_eq!(a.status, "0");
            assert_eq!(a.messages, vec![body.into_bytes()]);
        });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_calls_echo_until_the_client_ends_or_resets() {
    let server = start(16).await;
    let c = client(server.addr, 65_535).await;
    // The response headers come before any message.
    let (mut send, mut body) = open_stream(&c).await;
    let mut got = BytesMut::new();
    for i in 0..200u32 {
        let m = format!("message {i}");
        send.send_data(framed(m.as_bytes()), false).unwrap();
        while got.len() < 5 + m.len() {
            let chunk = tokio::time::timeout(WAIT, body.data())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            got.extend_from_slice(&chunk);
        }
        let echoed = got.split_to(5 + m.len());
        assert_eq!(&echoed[5..], m.as_bytes());
    }
    send.send_data(Bytes::new(), true).unwrap();
    assert!(
        tokio::time::timeout(WAIT, body.data())
            .await
            .unwrap()
            .is_none()
    );
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    wait_for(|| server.svc.inbound_ended.load(Ordering::SeqCst) == 1).await;

    // A reset ends the session's inbound too.
    let (mut send, _body) = open_stream(&c).await;
    send.send_data(framed(b"one"), false).unwrap();
    send.send_reset(h2::Reason::CANCEL);
    wait_for(|| server.svc.inbound_ended.load(Ordering::SeqCst) == 2).await;
}

async fn wait_for(mut f: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition within the wait");
}

/// Shutdown: GOAWAY, the call in flight is answered, then the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_open_calls_then_closes() {
    let mut server = start(16).await;
    let c = client(server.addr, 65_535).await;
    let (mut send, mut body) = open_stream(&c).await;
    server.stop.take().unwrap().send(()).unwrap();
    // The stream stays open until the client ends it.
    send.send_data(framed(b"still here"), false).unwrap();
    let chunk = tokio::time::timeout(WAIT, body.data())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&chunk[5..], b"still here");
    send.send_data(Bytes::new(), true).unwrap();
    let trailers = tokio::time::timeout(WAIT, body.trailers())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    tokio::time::timeout(WAIT, server.conns)
        .await
        .unwrap()
        .unwrap();
}

// Raw frames.

struct Raw {
    io: TcpStream,
    buf: BytesMut,
}

#[derive(Debug, PartialEq)]
struct Frame {
    kind: u8,
    flags: u8,
    id: u32,
    payload: Bytes,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        let mut io = TcpStream::connect(addr).await.unwrap();
        io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Raw {
            io,
            buf: BytesMut::new(),
        };
        raw.send(4, 0, 0, &[]).await;
        raw
    }

    async fn send(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) {
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(payload);
        self.io.write_all(&f).await.unwrap();
    }

    /// Opens stream `id` on `path` with literal, unindexed headers.
    async fn open(&mut self, id: u32, path: &str, end_stream: bool) {
        let mut block = Vec::new();
        for (n, v) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "test"),
            ("content-type", "application/grpc"),
        ] {
            block.push(0x00);
            block.push(n.len() as u8);
            block.extend_from_slice(n.as_bytes());
            block.push(v.len() as u8);
            block.extend_from_slice(v.as_bytes());
        }
        let flags = 0x4 | if end_stream { 0x1 } else { 0 };
        self.send(1, flags, id, &block).await;
    }

    /// The next frame, or `None` once the server closes the connection.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let h = self.buf.split_to(9);
                    return Some(Frame {
                        kind: h[3],
                        flags: h[4],
                        id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
                        payload: self.buf.split_to(len).freeze(),
                    });
                }
            }
            let n = tokio::time::timeout(WAIT, self.io.read_buf(&mut self.buf))
                .await
                .expect("a frame within the wait")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    /// The next frame of `kind`, skipping any other.
    async fn until(&mut self, kind: u8) -> Frame {
        loop {
            let f = self.next().await.expect("connection open");
            if f.kind == kind {
                return f;
            }
        }
    }

    /// Frames until one matches, skipping SETTINGS, their ACKs and WINDOW_UPDATEs of
    /// the connection.
    async fn expect(&mut self, kind: u8) -> Frame {
        loop {
            let f = self.next().await.expect("connection open");
            if f.kind == kind {
                return f;
            }
            assert!(
                f.kind == 4 || (f.kind == 8 && f.id == 0),
                "unexpected frame {f:?}"
            );
        }
    }
}

fn u32_of(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_end_the_connection_with_goaway() {
    let server = start(16).await;
    // Not HTTP/2 at all.
    let mut io = TcpStream::connect(server.addr).await.unwrap();
    io.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Raw {
        io,
        buf: BytesMut::new(),
    };
    let goaway = raw.expect(7).await;
    assert_eq!(u32_of(&goaway.payload[4..]), 0x1, "PROTOCOL_ERROR");
    assert_eq!(raw.next().await, None);

    // A header block that does not decode (index 0).
    let mut raw = Raw::connect(server.addr).await;
    raw.send(1, 0x5, 1, &[0x80]).await;
    let goaway = raw.expect(7).await;
    assert_eq!(u32_of(&goaway.payload[4..]), 0x9, "COMPRESSION_ERROR");
    assert_eq!(raw.next().await, None);

    // A frame over the 16 KiB limit.
    let mut raw = Raw::connect(server.addr).await;
    raw.open(1, "/test.T/Echo", false).await;
    raw.send(0, 0, 1, &vec![0u8; 16_385]).await;
    let goaway = raw.expect(7).await;
    assert_eq!(u32_of(&goaway.payload[4..]), 0x6, "FRAME_SIZE_ERROR");

    // PING is answered; an even stream id is an error.
    let mut raw = Raw::connect(server.addr).await;
    raw.send(6, 0, 0, b"12345678").await;
    let pong = raw.expect(6).await;
    assert_eq!((pong.flags, &pong.payload[..]), (1, &b"12345678"[..]));
    raw.open(2, "/test.T/Echo", true).await;
    let goaway = raw.expect(7).await;
    assert_eq!(u32_of(&goaway.payload[4..]), 0x1);
}

/// Inbound credit comes back only as the session takes messages: a session that takes
/// none holds its peer to the stream window, and data past it resets the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_credit_follows_the_session() {
    let server = start(1).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.open(1, "/test.T/Hold", false).await;
    let headers = raw.expect(1).await;
    assert_eq!(headers.id, 1);
    // 1 MiB of 16 KiB messages, the whole stream window: no WINDOW_UPDATE for stream
    // 1 while the session holds them.
    let message = framed(&vec![1u8; 16_384 - 5]);
    for _ in 0..conn::STREAM_WINDOW / 16_384 {
        raw.send(0, 0, 1, &message).await;
    }
    raw.send(6, 0, 0, b"syncsync").await;
    loop {
        let f = raw.next().await.unwrap();
        assert!(!(f.kind == 8 && f.id == 1), "credit returned early: {f:?}");
        if f.kind == 6 {
            break;
        }
    }
    // Past the window: the stream is reset.
    raw.open(3, "/test.T/Hold", false).await;
    raw.until(1).await;
    for _ in 0..conn::STREAM_WINDOW / 16_384 {
        raw.send(0, 0, 3, &message).await;
    }
    raw.send(0, 0, 3, &message).await;
    let rst = raw.until(3).await;
    assert_eq!(
        (rst.id, u32_of(&rst.payload)),
        (3, 0x3),
        "FLOW_CONTROL_ERROR"
    );
    // Once the session takes its messages, stream 1's credit comes back.
    server.svc.release.add_permits(1);
    loop {
        let f = raw.next().await.unwrap();
        if f.kind == 8 && f.id == 1 {
            assert!(u32_of(&f.payload) >= (conn::STREAM_WINDOW / 4) as u32);
            break;
        }
    }
}

/// Streams past the advertised limit are refused, the connection kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_are_refused() {
    let server = start(1).await;
    let mut raw = Raw::connect(server.addr).await;
    let settings = raw.expect(4).await;
    let advertised = settings
        .payload
        .chunks(6)
        .find(|e| e[..2] == [0, 3])
        .map(|e| u32_of(&e[2..]))
        .unwrap();
    assert_eq!(advertised as usize, conn::MAX_STREAMS);
    for i in 0..conn::MAX_STREAMS as u32 {
        raw.open(1 + 2 * i, "/test.T/Hold", false).await;
    }
    let over = 1 + 2 * conn::MAX_STREAMS as u32;
    raw.open(over, "/test.T/Hold", false).await;
    let rst = raw.until(3).await;
    assert_eq!(
        (rst.id, u32_of(&rst.payload)),
        (over, 0x7),
        "REFUSED_STREAM"
    );
    raw.send(6, 0, 0, b"stillok!").await;
    assert_eq!(raw.until(6).await.payload, &b"stillok!"[..]);
}

/// Streams take the connection's window in turn: the one that has waited longest for
/// it gets the next credit, however many answers became ready after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_window_goes_to_the_stream_that_waited_first() {
    let server = start(16).await;
    let mut raw = Raw::connect(server.addr).await;
    // Stream windows of 1 MiB, so only the connection's 64 KiB window binds.
    let mut settings = vec![0, 4];
    settings.extend_from_slice(&(1u32 << 20).to_be_bytes());
    raw.send(4, 0, 0, &settings).await;
    let big = |n: u64| framed(&n.to_be_bytes());
    raw.open(1, "/test.T/Big", false).await;
    raw.send(0, 1, 1, &big(200_000)).await;
    let mut sent = 0;
    while sent < 65_535 {
        let f = raw.until(0).await;
        assert_eq!(f.id, 1);
        sent += f.payload.len();
    }
    assert_eq!(sent, 65_535, "no more than the connection's window");
    // Twenty more answers become ready while stream 1 waits; the PING's answer comes
    // after the round that readied them.
    for i in 1..=20u32 {
        raw.open(1 + 2 * i, "/test.T/Big", false).await;
        raw.send(0, 1, 1 + 2 * i, &big(1_000)).await;
    }
    raw.send(6, 0, 0, b"readynow").await;
    assert_eq!(raw.until(6).await.payload, &b"readynow"[..]);
    raw.send(8, 0, 0, &100u32.to_be_bytes()).await;
    let f = raw.until(0).await;
    assert_eq!((f.id, f.payload.len()), (1, 100), "stream 1 waited first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_call_past_its_grpc_timeout_is_answered_deadline_exceeded() {
    let server = start(16).await;
    let mut c = client(server.addr, 65_535).await;
    let a = unary_within(&c, "/test.T/Echo", "10S", framed(b"x")).await;
    assert_eq!((a.messages, a.status.as_str()), (vec![b"x".to_vec()], "0"));
    // A call that never answers ends with DEADLINE_EXCEEDED once its 20 ms are up
    // (read_answer waits at most WAIT: without the deadline it would fail there).
    let a = unary_within(&c, "/test.T/Never", "20m", framed(b"")).await;
    assert_eq!(a.status, "4", "{a:?}");
    let a = unary_within(&c, "/test.T/Echo", "1x", framed(b"x")).await;
    assert_eq!(a.status, "13", "{a:?}");
    assert!(a.message.contains("grpc-timeout"), "{a:?}");
    // The connection goes on.
    let a = unary(&mut c, "/test.T/Echo", framed(b"y")).await;
    assert_eq!(a.status, "0");
}

#[test]
fn grpc_timeouts_parse_in_every_unit() {
    use conn::parse_grpc_timeout as parse;
    assert_eq!(parse(b"2H"), Some(Duration::from_secs(7200)));
    assert_eq!(parse(b"3M"), Some(Duration::from_secs(180)));
    assert_eq!(parse(b"99999999S"), Some(Duration::from_secs(99_999_999)));
    assert_eq!(parse(b"4999m"), Some(Duration::from_millis(4999)));
    assert_eq!(parse(b"7u"), Some(Duration::from_micros(7)));
    assert_eq!(parse(b"0n"), Some(Duration::ZERO));
    for bad in [&b""[..], b"S", b"100000000S", b"1s", b"-1S", b"1.5S"] {
        assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}
