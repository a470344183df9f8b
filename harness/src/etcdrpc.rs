//! A lean unary gRPC client for the etcd v3 KV service, used by the store load
//! generator's clients (`bosun bench store`).
//!
//! The generator shares the machine's cores with the server it measures, so every
//! microsecond it spends per request is taken from the server. This client therefore
//! runs its own HTTP/2 connection loop (RFC 9113), much as the store's direct server
//! does: one task per connection takes the calls its callers queue, writes each as a
//! HEADERS frame (a header block encoded once per method at connect) and its DATA, all
//! calls that are ready in one `write`, and hands each answer back whole. A call costs
//! its caller a channel send and a wake-up; there is no stream state shared under a
//! lock, no header map and no task per call.
//!
//! It speaks plain gRPC over HTTP/2 without TLS (`http://` endpoints), unary calls
//! only, without compression; the watch workload keeps `etcd-client` for its streams.
//! Flow control is kept both ways: request data goes out only within the server's
//! windows, and every byte received is credited back as it arrives (an answer is
//! bounded by [`MAX_RESPONSE_BYTES`] instead).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bosun_store_engine::grpc::frame::{self, *};
use bosun_store_engine::grpc::hpack::{self, Decoder};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub use bosun_store_engine::proto::etcdserverpb as pb;

/// Largest response message accepted (etcd's default limit on the client side is
/// larger; the generator's ranges stay far below this).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Calls queued on one connection before callers wait (on top of the streams open).
pub const CALL_QUEUE: usize = 1024;
/// gRPC's message prefix: a compressed flag and a big-endian length.
const PREFIX_BYTES: usize = 5;

/// The receive window of each stream, advertised in SETTINGS.
const STREAM_WINDOW: usize = 1 << 20;
/// The connection's receive window, raised from the default 64 KiB at the start.
const CONN_WINDOW: usize = 16 << 20;
/// Streams open at once when the server sets no lower limit.
const MAX_STREAMS: usize = 1024;
/// The dynamic table kept for the server's header blocks (the protocol's default).
const HEADER_TABLE_BYTES: usize = 4096;
/// Bound on one header block with its CONTINUATION frames, before decoding.
const MAX_HEADER_BLOCK_BYTES: usize = 64 << 10;
/// Output waiting for the socket beyond which no more calls are taken.
const WRITE_HIGH_WATER: usize = 256 << 10;
/// Rounds of work before the connection's task yields to others.
const ROUNDS_PER_POLL: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("endpoint {0:?}: use http://HOST:PORT")]
    Endpoint(String),
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("stream reset by the server (HTTP/2 error {0:#x})")]
    Reset(u32),
    #[error("grpc status {code}: {message}")]
    Status { code: u32, message: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The unary methods the generator calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Put = 0,
    Range = 1,
    Txn = 2,
}

const PATHS: [&str; 3] = [
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Txn",
];

/// One call handed to the connection: its method, its request message framed, and
/// where its answer goes (the response message framed, or the call's error).
struct Call {
    method: Method,
    body: Bytes,
    reply: oneshot::Sender<Result<Bytes, RpcError>>,
}

/// One HTTP/2 connection to an etcd v3 endpoint; clones share it, each call is a
/// stream of its own. The connection's task ends when every clone is dropped and the
/// calls in flight are answered, or when the connection fails (calls then fail with
/// its error).
#[derive(Clone)]
pub struct KvConn {
    calls: mpsc::Sender<Call>,
}

impl KvConn {
    /// Connects to `endpoint` (`http://HOST:PORT`) with `TCP_NODELAY`, as gRPC does.
    pub async fn connect(endpoint: &str) -> Result<KvConn, RpcError> {
        let bad = || RpcError::Endpoint(endpoint.to_string());
        let authority = endpoint
            .strip_prefix("http://")
            .ok_or_else(bad)?
            .trim_end_matches('/');
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let (calls, rx) = mpsc::channel(CALL_QUEUE);
        tokio::spawn(Conn::new(tcp, rx, authority).run());
        Ok(KvConn { calls })
    }

    pub async fn put(&self, req: &pb::PutRequest) -> Result<pb::PutResponse, RpcError> {
        self.call(Method::Put, req).await
    }

    pub async fn range(&self, req: &pb::RangeRequest) -> Result<pb::RangeResponse, RpcError> {
        self.call(Method::Range, req).await
    }

    pub async fn txn(&self, req: &pb::TxnRequest) -> Result<pb::TxnResponse, RpcError> {
        self.call(Method::Txn, req).await
    }

    async fn call<Q: Message, R: Message + Default>(
        &self,
        method: Method,
        req: &Q,
    ) -> Result<R, RpcError> {
        let len = req.encoded_len();
        let mut body = BytesMut::with_capacity(PREFIX_BYTES + len);
        body.put_u8(0);
        body.put_u32(len as u32);
        req.encode_raw(&mut body);
        let (reply, answer) = oneshot::channel();
        let call = Call {
            method,
            body: body.freeze(),
            reply,
        };
        let closed = || RpcError::Closed("the connection's task has ended".into());
        self.calls.send(call).await.map_err(|_| closed())?;
        decode_message(answer.await.map_err(|_| closed())??)
    }
}

/// A call in flight.
struct Stream {
    reply: oneshot::Sender<Result<Bytes, RpcError>>,
    /// Request bytes not yet sent (a DATA frame at a time, within the windows).
    body: Bytes,
    send_window: i64,
    /// The response headers have arrived; what follows is data, then trailers.
    got_headers: bool,
    message: BytesMut,
    /// Bytes received since this stream's window was last topped up.
    recv_unacked: usize,
}

/// The connection's task state.
struct Conn {
    io: TcpStream,
    calls: mpsc::Receiver<Call>,
    /// Every [`KvConn`] is gone: no more calls will come.
    calls_done: bool,
    /// Each method's request header block (literals, so no encoder state).
    blocks: [Vec<u8>; 3],
    decoder: Decoder,
    streams: HashMap<u32, Stream>,
    /// Streams with request bytes still to send, served in turn.
    send_queue: VecDeque<u32>,
    next_id: u32,
    /// The server's SETTINGS.
    peer_max_streams: usize,
    peer_initial_window: i64,
    peer_max_frame: usize,
    conn_send_window: i64,
    conn_recv_unacked: usize,
    /// The response header block being put together from its frames.
    header_block: HeaderBlock,
    /// The server has sent GOAWAY: no new streams.
    going_away: bool,
    rbuf: BytesMut,
    /// Where reads land before they join `rbuf` (zeroed once, so reads need no
    /// uninitialised memory).
    scratch: Box<[u8]>,
    /// Output; `wbuf[wpos..]` is still to be written.
    wbuf: Vec<u8>,
    wpos: usize,
}

/// Why the connection ends: the message every call still open fails with.
struct ConnError(String);

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> ConnError {
        ConnError(e.to_string())
    }
}

fn protocol(what: &str) -> ConnError {
    ConnError(format!("protocol error: {what}"))
}

/// A header block's fields as the client needs them.
#[derive(Default)]
struct Fields {
    status: Option<Vec<u8>>,
    grpc_status: Option<Vec<u8>>,
    grpc_message: Option<Vec<u8>>,
}

impl Conn {
    fn new(io: TcpStream, calls: mpsc::Receiver<Call>, authority: &str) -> Conn {
        let blocks = PATHS.map(|path| {
            let mut b = Vec::new();
            b.push(0x83); // :method POST (static 3)
            b.push(0x86); // :scheme http (static 6)
            hpack::write_literal(&mut b, 4, b"", path.as_bytes()); // :path
            hpack::write_literal(&mut b, 1, b"", authority.as_bytes()); // :authority
            hpack::write_literal(&mut b, 31, b"", b"application/grpc"); // content-type
            hpack::write_literal(&mut b, 0, b"te", b"trailers");
            b
        });
        let mut wbuf = Vec::with_capacity(64 << 10);
        wbuf.extend_from_slice(PREFACE);
        settings_frame(
            &mut wbuf,
            &[
                (SETTINGS_HEADER_TABLE_SIZE, HEADER_TABLE_BYTES as u32),
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW as u32),
            ],
        );
        window_update(&mut wbuf, 0, CONN_WINDOW - DEFAULT_WINDOW as usize);
        Conn {
            io,
            calls,
            calls_done: false,
            blocks,
            decoder: Decoder::new(HEADER_TABLE_BYTES),
            streams: HashMap::new(),
            send_queue: VecDeque::new(),
            next_id: 1,
            peer_max_streams: MAX_STREAMS,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: DEFAULT_MAX_FRAME,
            conn_send_window: DEFAULT_WINDOW,
            conn_recv_unacked: 0,
            header_block: HeaderBlock::default(),
            going_away: false,
            rbuf: BytesMut::with_capacity(64 << 10),
            scratch: vec![0; 64 << 10].into_boxed_slice(),
            wbuf,
            wpos: 0,
        }
    }

    async fn run(mut self) {
        let result = std::future::poll_fn(|cx| self.poll_run(cx)).await;
        let why = match result {
            Ok(()) => "the connection has closed".to_string(),
            Err(ConnError(why)) => why,
        };
        for (_, s) in self.streams.drain() {
            let _ = s.reply.send(Err(RpcError::Closed(why.clone())));
        }
        // Calls still queued see their reply channel dropped: "task has ended".
    }

    /// Runs the connection: `Ready` once it is over.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            // Take new calls while streams and output room allow.
            while !self.calls_done
                && !self.going_away
                && self.streams.len() < self.peer_max_streams
                && self.wbuf.len() - self.wpos < WRITE_HIGH_WATER
            {
                match self.calls.poll_recv(cx) {
                    Poll::Ready(Some(call)) => {
                        progress = true;
                        self.open(call)?;
                    }
                    Poll::Ready(None) => self.calls_done = true,
                    Poll::Pending => break,
                }
            }
            if (self.calls_done || self.going_away) && self.streams.is_empty() {
                if self.going_away && !self.calls_done {
                    return Poll::Ready(Err(ConnError("the server sent GOAWAY".into())));
                }
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut self.scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    return Poll::Ready(Err(ConnError("the server closed the connection".into())));
                }
                Poll::Ready(Ok(())) => {
                    progress = true;
                    let n = buf.filled().len();
                    self.rbuf.extend_from_slice(&self.scratch[..n]);
                    self.on_bytes()?;
                }
            }
            self.send_data();
            while self.wpos < self.wbuf.len() {
                match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        progress = true;
                        self.wpos += n;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                }
            }
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Opens a stream for `call`: its HEADERS now, its body as the windows allow.
    fn open(&mut self, call: Call) -> Result<(), ConnError> {
        let id = self.next_id;
        if id > MAX_WINDOW as u32 {
            return Err(ConnError("stream ids exhausted".into()));
        }
        self.next_id += 2;
        let block = &self.blocks[call.method as usize];
        // Header blocks are about 80 bytes, well under any frame size.
        frame_header(&mut self.wbuf, block.len(), HEADERS, END_HEADERS, id);
        self.wbuf.extend_from_slice(block);
        self.streams.insert(
            id,
            Stream {
                reply: call.reply,
                body: call.body,
                send_window: self.peer_initial_window,
                got_headers: false,
                message: BytesMut::new(),
                recv_unacked: 0,
            },
        );
        self.send_queue.push_back(id);
        Ok(())
    }

    /// Sends request data within the windows, one frame per stream in turn.
    fn send_data(&mut self) {
        let mut blocked = 0;
        while blocked < self.send_queue.len() && self.conn_send_window > 0 {
            let id = self.send_queue.pop_front().expect("checked non-empty");
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            let n = s
                .body
                .len()
                .min(self.peer_max_frame)
                .min(s.send_window.max(0) as usize)
                .min(self.conn_send_window as usize);
            if n == 0 && !s.body.is_empty() {
                // Waiting for this stream's window.
                self.send_queue.push_back(id);
                blocked += 1;
                continue;
            }
            let chunk = s.body.split_to(n);
            s.send_window -= n as i64;
            self.conn_send_window -= n as i64;
            let flags = if s.body.is_empty() { END_STREAM } else { 0 };
            frame_header(&mut self.wbuf, n, DATA, flags, id);
            self.wbuf.extend_from_slice(&chunk);
            if !s.body.is_empty() {
                self.send_queue.push_back(id);
            }
        }
    }

    /// Handles every complete frame in the read buffer.
    fn on_bytes(&mut self) -> Result<(), ConnError> {
        loop {
            match next_frame(&mut self.rbuf, DEFAULT_MAX_FRAME) {
                Ok(Some((h, payload))) => self.on_frame(h, &payload)?,
                Ok(None) => return Ok(()),
                Err(_) => return Err(protocol("frame larger than advertised")),
            }
        }
    }

    fn on_frame(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let (kind, flags, id) = (h.kind, h.flags, h.id);
        let block = self
            .header_block
            .take(h, payload, MAX_HEADER_BLOCK_BYTES)
            .map_err(|BlockError(why)| protocol(why))?;
        match kind {
            DATA => self.on_data(flags, id, payload),
            HEADERS | CONTINUATION => match block {
                Some((id, flags, block)) => self.on_headers(id, flags & END_STREAM != 0, &block),
                None => Ok(()),
            },
            RST_STREAM => {
                if id == 0 || payload.len() != 4 {
                    return Err(protocol("bad RST_STREAM"));
                }
                let code = be_u32(payload, 0);
                if let Some(s) = self.streams.remove(&id) {
                    let _ = s.reply.send(Err(RpcError::Reset(code)));
                }
                Ok(())
            }
            SETTINGS => self.on_settings(flags, id, payload),
            PUSH_PROMISE => Err(protocol("PUSH_PROMISE after push was disabled")),
            PING => {
                if id != 0 || payload.len() != 8 {
                    return Err(protocol("bad PING"));
                }
                if flags & ACK == 0 {
                    frame_header(&mut self.wbuf, 8, PING, ACK, 0);
                    self.wbuf.extend_from_slice(payload);
                }
                Ok(())
            }
            GOAWAY => {
                if payload.len() < 8 {
                    return Err(protocol("short GOAWAY"));
                }
                // Streams above the last one the server processes will not be
                // answered; those at or below it run to their end.
                let last = be_u32(payload, 0) & 0x7fff_ffff;
                let code = be_u32(payload, 4);
                self.going_away = true;
                let dropped: Vec<u32> = self
                    .streams
                    .keys()
                    .filter(|&&s| s > last)
                    .copied()
                    .collect();
                for s in dropped {
                    let s = self.streams.remove(&s).expect("listed");
                    let _ = s.reply.send(Err(RpcError::Closed(format!(
                        "the server sent GOAWAY (HTTP/2 error {code:#x}) before this call"
                    ))));
                }
                Ok(())
            }
            WINDOW_UPDATE => {
                if payload.len() != 4 {
                    return Err(protocol("bad WINDOW_UPDATE"));
                }
                let n = (be_u32(payload, 0) & 0x7fff_ffff) as i64;
                if id == 0 {
                    self.conn_send_window += n;
                    if n == 0 || self.conn_send_window > MAX_WINDOW {
                        return Err(protocol("bad connection window update"));
                    }
                } else if let Some(s) = self.streams.get_mut(&id) {
                    s.send_window += n;
                    if n == 0 || s.send_window > MAX_WINDOW {
                        self.reset(id, "bad stream window update");
                    }
                }
                Ok(())
            }
            _ => Ok(()), // PRIORITY and unknown frame types are ignored.
        }
    }

    fn on_settings(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), ConnError> {
        if id != 0 {
            return Err(protocol("SETTINGS on a stream"));
        }
        if flags & ACK != 0 {
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(protocol("SETTINGS length"));
        }
        for (key, value) in settings(payload) {
            match key {
                SETTINGS_MAX_CONCURRENT_STREAMS => {
                    self.peer_max_streams = (value as usize).min(MAX_STREAMS)
                }
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    if value as i64 > MAX_WINDOW {
                        return Err(protocol("initial window too large"));
                    }
                    let delta = value as i64 - self.peer_initial_window;
                    self.peer_initial_window = value as i64;
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                    }
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(protocol("max frame size out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The header table size does not bind literals; the rest do not
                // constrain what this client sends.
                _ => {}
            }
        }
        frame_header(&mut self.wbuf, 0, SETTINGS, ACK, 0);
        Ok(())
    }

    fn on_data(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), ConnError> {
        if id == 0 {
            return Err(protocol("DATA on stream 0"));
        }
        // Everything received counts against the windows, padding included, and is
        // credited back at once: answers are bounded by MAX_RESPONSE_BYTES instead.
        let n = payload.len();
        self.conn_recv_unacked += n;
        if self.conn_recv_unacked >= CONN_WINDOW / 2 {
            window_update(&mut self.wbuf, 0, self.conn_recv_unacked);
            self.conn_recv_unacked = 0;
        }
        let data = strip_padding(flags, payload)?;
        let end_stream = flags & END_STREAM != 0;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(()); // A stream this side has reset or given up.
        };
        if !s.got_headers {
            self.reset(id, "DATA before the response headers");
            return Ok(());
        }
        if s.message.len() + data.len() > PREFIX_BYTES + MAX_RESPONSE_BYTES {
            self.reset(
                id,
                &format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
            );
            return Ok(());
        }
        s.message.extend_from_slice(data);
        if end_stream {
            let s = self.streams.remove(&id).expect("present");
            let _ = s
                .reply
                .send(Err(RpcError::Protocol("no grpc-status trailer".into())));
            return Ok(());
        }
        s.recv_unacked += n;
        if s.recv_unacked >= STREAM_WINDOW / 2 {
            window_update(&mut self.wbuf, id, s.recv_unacked);
            s.recv_unacked = 0;
        }
        Ok(())
    }

    fn on_headers(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<(), ConnError> {
        let mut fields = Fields::default();
        // The whole block is decoded even for a stream that is gone: the table must
        // stay in step with the server's.
        self.decoder
            .decode(block, |name, value| match name {
                b":status" => fields.status = Some(value.to_vec()),
                b"grpc-status" => fields.grpc_status = Some(value.to_vec()),
                b"grpc-message" => fields.grpc_message = Some(value.to_vec()),
                _ => {}
            })
            .map_err(|e| protocol(&format!("header block: {e}")))?;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if !s.got_headers {
            if fields.status.as_deref() != Some(b"200") {
                let status = fields.status.as_deref().map(String::from_utf8_lossy);
                self.reset(id, &format!("HTTP status {status:?}"));
                return Ok(());
            }
            s.got_headers = true;
            if !end_stream {
                return Ok(());
            }
            // Trailers-only: the status is in these headers.
        } else if !end_stream {
            self.reset(id, "response headers after the headers");
            return Ok(());
        }
        let s = self.streams.remove(&id).expect("present");
        let answer = check_status(&fields).map(|()| s.message.freeze());
        if !s.body.is_empty() {
            // Answered before the whole request was sent (a refusal).
            rst_stream(&mut self.wbuf, id, CANCEL);
        }
        let _ = s.reply.send(answer);
        Ok(())
    }

    /// Gives up on a stream: its call fails with `why`, the server is told.
    fn reset(&mut self, id: u32, why: &str) {
        if let Some(s) = self.streams.remove(&id) {
            let _ = s.reply.send(Err(RpcError::Protocol(why.to_string())));
        }
        rst_stream(&mut self.wbuf, id, CANCEL);
    }
}

fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], ConnError> {
    frame::strip_padding(flags, payload).ok_or_else(|| protocol("bad padding"))
}

/// `Ok` for grpc-status 0, else the status and its message.
fn check_status(fields: &Fields) -> Result<(), RpcError> {
    let code = fields
        .grpc_status
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| RpcError::Protocol("missing or bad grpc-status".into()))?;
    if code == 0 {
        return Ok(());
    }
    let message = fields
        .grpc_message
        .as_deref()
        .map(percent_decode)
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
        let mut f = Fields {
            grpc_status: Some(b"0".to_vec()),
            ..Fields::default()
        };
        assert!(check_status(&f).is_ok());
        f.grpc_status = Some(b"3".to_vec());
        f.grpc_message = Some(b"etcdserver:%20request is too large%2".to_vec());
        let err = check_status(&f).unwrap_err();
        assert!(matches!(err, RpcError::Status { code: 3, .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("etcdserver: request is too large%2"),
            "{err}"
        );
        f.grpc_status = None;
        assert!(check_status(&f).is_err());
    }
}
