//! The direct server's HTTP/2 connection (RFC 9113) carrying gRPC: one task per
//! connection reads every frame that has arrived, starts the calls they complete, and
//! writes every response that is ready in one `write`. Unary calls are futures polled by
//! the connection's own task (no task per request); streaming calls are channels to
//! and from a session task. Flow control is kept both ways: a stream's data is sent
//! only within the peer's windows, and a stream's inbound credit is returned only once
//! its messages are handed over, so a slow session bounds what its peer may send.
//!
//! A unary call's `grpc-timeout` is kept: past it the call is dropped and answered
//! DEADLINE_EXCEEDED. Streaming calls run until either side ends them.
//!
//! Served over prior-knowledge cleartext HTTP/2 (what gRPC clients speak to an
//! `http://` endpoint); no server push, no priorities (PRIORITY is read and ignored).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use super::frame::{self, *};
use super::hpack::{self, Decoder};

/// A unary call's answer: the response message encoded, or a status.
pub type UnaryFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send>>;

/// A streaming call's responses. `Ready(Some(Ok(())))` has appended one message to
/// `out` gRPC-framed (see [`frame_message`]); `None` ends the call with OK.
pub trait Outbound: Send {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut BytesMut,
    ) -> Poll<Option<Result<(), Status>>>;
}

impl<M: prost::Message + Send> Outbound for mpsc::Receiver<Result<M, Status>> {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut BytesMut,
    ) -> Poll<Option<Result<(), Status>>> {
        self.poll_recv(cx).map(|m| {
            m.map(|r| {
                r.map(|m| {
                    // Encoded straight into the stream's buffer, behind its prefix.
                    let len = m.encoded_len();
                    out.reserve(5 + len);
                    out.extend_from_slice(&[0]);
                    out.extend_from_slice(&(len as u32).to_be_bytes());
                    m.encode_raw(out);
                })
            })
        })
    }
}

/// A `grpc-timeout` value (gRPC over HTTP/2: at most 8 digits and a unit, `H`, `M`,
/// `S`, `m`, `u` or `n`); `None` when malformed.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Appends `message` with gRPC's prefix: an uncompressed flag and its length.
pub fn frame_message(out: &mut BytesMut, message: &[u8]) {
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
}

/// How a method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One request message, one response (the `u8` names the method to the service).
    Unary(u8),
    /// Messages both ways until either side ends.
    Streaming(u8),
}

/// The two ends of a streaming call as the connection sees them.
pub struct StreamEnds {
    /// Request messages, undecoded; dropped when the client ends its side.
    pub inbound: mpsc::Sender<Bytes>,
    pub outbound: Box<dyn Outbound>,
}

/// What the connection calls.
pub trait Service: Send + Sync + 'static {
    /// The method a `:path` names; `None` is answered UNIMPLEMENTED.
    fn route(&self, path: &[u8]) -> Option<Route>;
    /// Starts a unary call on its request message.
    fn unary(self: &Arc<Self>, method: u8, message: Bytes) -> UnaryFuture;
    /// Starts a streaming call.
    fn open(self: &Arc<Self>, method: u8) -> StreamEnds;
}

/// The largest frame accepted (the protocol's default; not raised in SETTINGS).
pub const MAX_FRAME_BYTES: usize = DEFAULT_MAX_FRAME;
/// The receive window of each stream, advertised in SETTINGS.
pub const STREAM_WINDOW: usize = 1 << 20;
/// The connection's receive window.
pub const CONN_WINDOW: usize = 4 << 20;
/// Concurrent streams per connection, advertised in SETTINGS; more are refused.
pub const MAX_STREAMS: usize = 1024;
/// The header list a request may carry (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MAX_HEADER_LIST_BYTES: usize = 16 << 10;
/// The dynamic table this side keeps for the peer's header blocks.
const HEADER_TABLE_BYTES: usize = 4096;
/// Bound on one header block with its CONTINUATION frames, before decoding.
const MAX_HEADER_BLOCK_BYTES: usize = 64 << 10;
/// Output waiting for the socket beyond which no more is produced (and no more
/// requests are read) until the peer reads.
const WRITE_HIGH_WATER: usize = 256 << 10;
/// Encoded messages buffered per stream ahead of its send window.
const STREAM_OUT_HIGH_WATER: usize = 64 << 10;
/// Output below this is held back for a yield before it is written.
const WRITE_COALESCE_BYTES: usize = 64 << 10;
/// Yields a small write waits at most.
const MAX_WRITE_DEFERRALS: u8 = 4;
/// Rounds of work before the task yields to others.
const ROUNDS_PER_POLL: usize = 32;
/// An error message longer than this is cut in trailers.
const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// A connection error: the GOAWAY code sent before closing.
#[derive(Debug)]
struct ConnError(u32);

enum Kind {
    Unary(u8),
    Streaming {
        inbound: Option<mpsc::Sender<Bytes>>,
        /// Complete messages not yet handed over.
        queue: VecDeque<Bytes>,
        /// Waits for room in the session's queue.
        reserve: Option<ReserveFuture>,
        outbound: Option<Box<dyn Outbound>>,
    },
    /// The call has its answer already (an error); further data is dropped.
    Answered,
}

type ReserveFuture = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Bytes>, mpsc::error::SendError<()>>> + Send>,
>;

struct Stream {
    kind: Kind,
    /// The peer's window for this stream.
    send_window: i64,
    /// What the peer may still send on this stream before a WINDOW_UPDATE.
    recv_window: i64,
    /// Received bytes not yet credited back to the peer.
    recv_unacked: usize,
    /// Received bytes whose credit waits for the session's queue to drain.
    held: usize,
    recv_closed: bool,
    /// The request message being assembled.
    body: BytesMut,
    headers_sent: bool,
    /// gRPC-framed response bytes waiting for window.
    out: BytesMut,
    /// The call's end, sent once `out` is empty.
    trailers: Option<(Code, String)>,
    /// In `send_queue`.
    queued: bool,
    /// When a unary call's answer is due (the client's `grpc-timeout`).
    deadline: Option<tokio::time::Instant>,
}

impl Stream {
    fn answer(&mut self, status: Status) {
        self.trailers = Some((status.code(), status.message().to_string()));
        self.kind = Kind::Answered;
        self.body = BytesMut::new();
    }
}

type Completion = Pin<Box<dyn Future<Output = (u32, Result<Vec<u8>, Status>)> + Send>>;

pub struct Conn<S: Service> {
    io: TcpStream,
    svc: Arc<S>,
    max_message: usize,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    wpos: usize,
    hpack: Decoder,
    streams: HashMap<u32, Stream>,
    /// Streams with data or trailers to send, in turn (a stream may appear after it
    /// is gone: skipped).
    send_queue: VecDeque<u32>,
    unary: FuturesUnordered<Completion>,
    last_stream: u32,
    /// The request header block being put together from its frames.
    header_block: HeaderBlock,
    conn_send_window: i64,
    conn_recv_window: i64,
    conn_recv_unacked: usize,
    peer_initial_window: i64,
    peer_max_frame: usize,
    preface_seen: bool,
    read_closed: bool,
    going_away: bool,
    /// Yields a small write has waited, and its size at the last one.
    write_deferrals: u8,
    pending_at_deferral: usize,
}

/// The response's leading headers: `:status: 200`, `content-type: application/grpc`.
fn response_headers(block: &mut Vec<u8>) {
    block.push(0x88);
    hpack::write_literal(
        block,
        hpack::STATIC_CONTENT_TYPE,
        b"content-type",
        b"application/grpc",
    );
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2).
fn percent_encode(msg: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for &b in msg.as_bytes().iter().take(MAX_STATUS_MESSAGE_BYTES) {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

fn trailer_fields(block: &mut Vec<u8>, code: Code, message: &str) {
    // gRPC's codes run 0-16: one or two digits, no allocation.
    let code = code as u8;
    let digits = [b'0' + code / 10, b'0' + code % 10];
    let code = if code < 10 { &digits[1..] } else { &digits[..] };
    hpack::write_literal(block, 0, b"grpc-status", code);
    if !message.is_empty() {
        hpack::write_literal(block, 0, b"grpc-message", &percent_encode(message));
    }
}

/// Appends a HEADERS frame whose block `fill` writes straight into `w` (the block is
/// small: never split), so no block is built apart and copied.
fn headers_frame(w: &mut Vec<u8>, id: u32, end_stream: bool, fill: impl FnOnce(&mut Vec<u8>)) {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    let start = w.len();
    frame_header(w, 0, HEADERS, flags, id);
    fill(w);
    let len = (w.len() - start - 9) as u32;
    w[start..start + 3].copy_from_slice(&len.to_be_bytes()[1..]);
}

impl<S: Service> Conn<S> {
    pub fn new(io: TcpStream, svc: Arc<S>, max_message: usize) -> Conn<S> {
        let mut wbuf = Vec::with_capacity(16 << 10);
        // Our SETTINGS, then the connection window raised to CONN_WINDOW.
        settings_frame(
            &mut wbuf,
            &[
                (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS as u32),
                (SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW as u32),
                (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES as u32),
            ],
        );
        window_update(&mut wbuf, 0, CONN_WINDOW - DEFAULT_WINDOW as usize);
        Conn {
            io,
            svc,
            max_message,
            rbuf: BytesMut::with_capacity(64 << 10),
            wbuf,
            wpos: 0,
            hpack: Decoder::new(HEADER_TABLE_BYTES),
            streams: HashMap::new(),
            send_queue: VecDeque::new(),
            unary: FuturesUnordered::new(),
            last_stream: 0,
            header_block: HeaderBlock::default(),
            conn_send_window: DEFAULT_WINDOW,
            conn_recv_window: CONN_WINDOW as i64,
            conn_recv_unacked: 0,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: MAX_FRAME_BYTES,
            preface_seen: false,
            read_closed: false,
            going_away: false,
            write_deferrals: 0,
            pending_at_deferral: 0,
        }
    }

    /// Serves the connection until the peer closes it, a protocol error, or (after
    /// `stop` completes) its last stream ends.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                r = std::future::poll_fn(|cx| self.poll_run(cx)) => match r {
                    // Let the tasks feeding this connection run before it writes.
                    Ok(false) => tokio::task::yield_now().await,
                    // Closed; or an I/O or protocol error, which ends this connection
                    // only (the peer has had its GOAWAY).
                    _ => return,
                },
                _ = &mut stop, if !self.going_away => self.go_away(),
            }
        }
    }

    /// Refuses new streams and closes once the open ones end.
    fn go_away(&mut self) {
        self.going_away = true;
        frame_header(&mut self.wbuf, 8, GOAWAY, 0, 0);
        self.wbuf.extend_from_slice(&self.last_stream.to_be_bytes());
        self.wbuf.extend_from_slice(&NO_ERROR.to_be_bytes());
    }

    /// One turn of the connection: `Ready(Ok(true))` once it is over, `Ready(Ok(false))`
    /// when it holds a small write back for a yield so that more answers join it.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            if !self.read_closed && self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
                match self.poll_read(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(0)) => self.read_closed = true,
                    Poll::Ready(Ok(_)) => {
                        progress = true;
                        if let Err(ConnError(code)) = self.on_bytes() {
                            return Poll::Ready(self.fail(code));
                        }
                    }
                }
            }
            if self.read_closed {
                // The peer is gone: nobody is left to answer.
                return Poll::Ready(Ok(true));
            }
            while let Poll::Ready(Some((id, result))) = self.unary.poll_next_unpin(cx) {
                progress = true;
                if let Some(s) = self.streams.get_mut(&id) {
                    match result {
                        Ok(message) => {
                            frame_message(&mut s.out, &message);
                            s.trailers = Some((Code::Ok, String::new()));
                        }
                        Err(status) => s.answer(status),
                    }
                }
            }
            progress |= self.poll_streams(cx);
            self.flush_streams();
            // Answers arrive one wake-up at a time (a watcher's event, a write group's
            // acknowledgements); writing each at once would be a system call per
            // answer. A small write waits for a yield, so the tasks already woken
            // add theirs first, and again while each yield brought more (a few
            // times at most).
            let pending = self.wbuf.len() - self.wpos;
            if pending > 0
                && pending < WRITE_COALESCE_BYTES
                && self.write_deferrals < MAX_WRITE_DEFERRALS
                && (self.write_deferrals == 0 || pending > self.pending_at_deferral)
            {
                self.write_deferrals += 1;
                self.pending_at_deferral = pending;
                return Poll::Ready(Ok(false));
            }
            while self.wpos < self.wbuf.len() {
                use tokio::io::AsyncWrite;
                match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.wpos += n;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                }
            }
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                self.write_deferrals = 0;
                if self.going_away && self.streams.is_empty() {
                    return Poll::Ready(Ok(true));
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reads what has arrived into the read buffer. Through `AsyncRead`, so a short
    /// read clears the socket's readiness (edge-triggered epoll: the socket is
    /// drained) and the next round waits without a `recvfrom` that would block.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        use tokio::io::{AsyncRead, ReadBuf};
        self.rbuf.reserve(MAX_FRAME_BYTES + 9);
        let mut buf = ReadBuf::uninit(self.rbuf.spare_capacity_mut());
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        // SAFETY: `ReadBuf` counts as filled only bytes the read initialised, and they
        // are the first `n` of the spare capacity, right after the buffer's length.
        unsafe { self.rbuf.set_len(self.rbuf.len() + n) };
        Poll::Ready(Ok(n))
    }

    /// Sends GOAWAY with `code` (best effort) and ends the connection.
    fn fail(&mut self, code: u32) -> io::Result<bool> {
        frame_header(&mut self.wbuf, 8, GOAWAY, 0, 0);
        self.wbuf.extend_from_slice(&self.last_stream.to_be_bytes());
        self.wbuf.extend_from_slice(&code.to_be_bytes());
        let _ = self.io.try_write(&self.wbuf[self.wpos..]);
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HTTP/2 connection error {code:#x}"),
        ))
    }

    /// Handles every complete frame in the read buffer.
    fn on_bytes(&mut self) -> Result<(), ConnError> {
        if !self.preface_seen {
            let n = self.rbuf.len().min(PREFACE.len());
            if self.rbuf[..n] != PREFACE[..n] {
                return Err(ConnError(PROTOCOL_ERROR));
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            self.rbuf.advance(PREFACE.len());
            self.preface_seen = true;
        }
        loop {
            match next_frame(&mut self.rbuf, MAX_FRAME_BYTES) {
                Ok(Some((h, payload))) => self.on_frame(h, payload)?,
                Ok(None) => return Ok(()),
                Err(_) => return Err(ConnError(FRAME_SIZE_ERROR)),
            }
        }
    }

    fn on_frame(&mut self, h: FrameHeader, payload: Bytes) -> Result<(), ConnError> {
        let (kind, flags, id) = (h.kind, h.flags, h.id);
        let block = self
            .header_block
            .take(h, &payload, MAX_HEADER_BLOCK_BYTES)
            .map_err(|_| ConnError(PROTOCOL_ERROR))?;
        match kind {
            DATA => self.on_data(flags, id, payload),
            HEADERS | CONTINUATION => match block {
                Some((id, flags, block)) => self.on_headers(id, flags, &block),
                None => Ok(()),
            },
            PRIORITY => {
                if payload.len() != 5 {
                    return Err(ConnError(FRAME_SIZE_ERROR));
                }
                Ok(())
            }
            RST_STREAM => {
                if id == 0 || payload.len() != 4 {
                    return Err(ConnError(PROTOCOL_ERROR));
                }
                // Dropping the stream drops its channels: the session sees the call end.
                self.remove_stream(id);
                Ok(())
            }
            SETTINGS => self.on_settings(flags, id, &payload),
            PUSH_PROMISE => Err(ConnError(PROTOCOL_ERROR)),
            PING => {
                if id != 0 || payload.len() != 8 {
                    return Err(ConnError(PROTOCOL_ERROR));
                }
                if flags & ACK == 0 {
                    frame_header(&mut self.wbuf, 8, PING, ACK, 0);
                    self.wbuf.extend_from_slice(&payload);
                }
                Ok(())
            }
            GOAWAY => {
                // The peer starts no more streams; those open run to their end.
                if !self.going_away {
                    self.going_away = true;
                }
                Ok(())
            }
            WINDOW_UPDATE => {
                if payload.len() != 4 {
                    return Err(ConnError(FRAME_SIZE_ERROR));
                }
                let n = (be_u32(&payload, 0) & 0x7fff_ffff) as i64;
                if id == 0 {
                    if n == 0 {
                        return Err(ConnError(PROTOCOL_ERROR));
                    }
                    self.conn_send_window += n;
                    if self.conn_send_window > MAX_WINDOW {
                        return Err(ConnError(FLOW_CONTROL_ERROR));
                    }
                } else if let Some(s) = self.streams.get_mut(&id) {
                    s.send_window += n;
                    if n == 0 || s.send_window > MAX_WINDOW {
                        let code = if n == 0 {
                            PROTOCOL_ERROR
                        } else {
                            FLOW_CONTROL_ERROR
                        };
                        self.remove_stream(id);
                        rst_stream(&mut self.wbuf, id, code);
                    }
                }
                Ok(())
            }
            _ => Ok(()), // Unknown frame types are ignored.
        }
    }

    fn on_settings(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), ConnError> {
        if id != 0 {
            return Err(ConnError(PROTOCOL_ERROR));
        }
        if flags & ACK != 0 {
            return if payload.is_empty() {
                Ok(())
            } else {
                Err(ConnError(FRAME_SIZE_ERROR))
            };
        }
        if !payload.len().is_multiple_of(6) {
            return Err(ConnError(FRAME_SIZE_ERROR));
        }
        for (key, value) in settings(payload) {
            match key {
                SETTINGS_ENABLE_PUSH if value > 1 => return Err(ConnError(PROTOCOL_ERROR)),
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    if value as i64 > MAX_WINDOW {
                        return Err(ConnError(FLOW_CONTROL_ERROR));
                    }
                    let delta = value as i64 - self.peer_initial_window;
                    self.peer_initial_window = value as i64;
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > MAX_WINDOW {
                            return Err(ConnError(FLOW_CONTROL_ERROR));
                        }
                    }
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(ConnError(PROTOCOL_ERROR));
                    }
                    self.peer_max_frame = value as usize;
                }
                // Header table size (responses never index), push, concurrency and
                // header list limits do not constrain what this server sends.
                _ => {}
            }
        }
        frame_header(&mut self.wbuf, 0, SETTINGS, ACK, 0);
        Ok(())
    }

    fn on_headers(&mut self, id: u32, flags: u8, block: &[u8]) -> Result<(), ConnError> {
        let mut path: Option<Vec<u8>> = None;
        let mut post = false;
        let mut grpc_content = false;
        let mut list_bytes = 0usize;
        let mut timeout: Option<Option<std::time::Duration>> = None;
        self.hpack
            .decode(block, |name, value| {
                list_bytes += name.len() + value.len() + 32;
                match name {
                    b":path" => path = Some(value.to_vec()),
                    b":method" => post = value == b"POST",
                    b"content-type" => grpc_content = value.starts_with(b"application/grpc"),
                    b"grpc-timeout" => timeout = Some(parse_grpc_timeout(value)),
                    _ => {}
                }
            })
            .map_err(|_| ConnError(COMPRESSION_ERROR))?;
        let end_stream = flags & END_STREAM != 0;
        if self.streams.contains_key(&id) {
            // Trailers from the client end its side.
            if !end_stream {
                return Err(ConnError(PROTOCOL_ERROR));
            }
            self.on_end_stream(id);
            return Ok(());
        }
        if id.is_multiple_of(2) || id <= self.last_stream {
            // A closed stream's trailers race a reset we sent: ignore them.
            return if !id.is_multiple_of(2) {
                Ok(())
            } else {
                Err(ConnError(PROTOCOL_ERROR))
            };
        }
        self.last_stream = id;
        if self.going_away || self.streams.len() >= MAX_STREAMS {
            rst_stream(&mut self.wbuf, id, REFUSED_STREAM);
            return Ok(());
        }
        let mut s = Stream {
            kind: Kind::Answered,
            send_window: self.peer_initial_window,
            recv_window: STREAM_WINDOW as i64,
            recv_unacked: 0,
            held: 0,
            recv_closed: false,
            body: BytesMut::new(),
            headers_sent: false,
            out: BytesMut::new(),
            trailers: None,
            queued: false,
            deadline: None,
        };
        let route = path.as_deref().and_then(|p| self.svc.route(p));
        if list_bytes > MAX_HEADER_LIST_BYTES {
            s.answer(Status::resource_exhausted("header list too large"));
        } else if timeout == Some(None) {
            s.answer(Status::internal("malformed grpc-timeout"));
        } else if !post || !grpc_content {
            s.answer(Status::internal(
                "expected a POST with content-type application/grpc",
            ));
        } else {
            match route {
                None => s.answer(Status::unimplemented(format!(
                    "unknown method {}",
                    String::from_utf8_lossy(path.as_deref().unwrap_or_default())
                ))),
                Some(Route::Unary(m)) => {
                    s.kind = Kind::Unary(m);
                    // Saturates: a timeout beyond the timer's range never fires.
                    s.deadline = timeout
                        .flatten()
                        .and_then(|t| tokio::time::Instant::now().checked_add(t));
                }
                Some(Route::Streaming(m)) => {
                    let ends = self.svc.open(m);
                    s.kind = Kind::Streaming {
                        inbound: Some(ends.inbound),
                        queue: VecDeque::new(),
                        reserve: None,
                        outbound: Some(ends.outbound),
                    };
                    // Streaming clients wait for the response headers before sending.
                    headers_frame(&mut self.wbuf, id, false, response_headers);
                    s.headers_sent = true;
                }
            }
        }
        self.streams.insert(id, s);
        if end_stream {
            self.on_end_stream(id);
        }
        Ok(())
    }

    fn on_data(&mut self, flags: u8, id: u32, payload: Bytes) -> Result<(), ConnError> {
        if id == 0 {
            return Err(ConnError(PROTOCOL_ERROR));
        }
        let flow_len = payload.len();
        self.conn_recv_window -= flow_len as i64;
        if self.conn_recv_window < 0 {
            return Err(ConnError(FLOW_CONTROL_ERROR));
        }
        let data = strip_padding(flags, &payload)?;
        let data = payload.slice_ref(data);
        let Some(s) = self.streams.get_mut(&id) else {
            if id > self.last_stream {
                return Err(ConnError(PROTOCOL_ERROR));
            }
            // Data for a stream already ended here (answered early, or reset): frames
            // on a stream this side reset are ignored (RFC 9113 5.4.2), but counted.
            self.credit_conn(flow_len);
            return Ok(());
        };
        if s.recv_closed {
            self.credit_conn(flow_len);
            self.remove_stream(id);
            rst_stream(&mut self.wbuf, id, STREAM_CLOSED);
            return Ok(());
        }
        s.recv_window -= flow_len as i64;
        if s.recv_window < 0 {
            self.credit_conn(flow_len);
            self.remove_stream(id);
            rst_stream(&mut self.wbuf, id, FLOW_CONTROL_ERROR);
            return Ok(());
        }
        let max_message = self.max_message;
        let mut credit_now = flow_len;
        match &mut s.kind {
            Kind::Answered => {}
            Kind::Unary(_) => {
                if s.body.len() + data.len() > max_message + 5 {
                    s.answer(Status::resource_exhausted(format!(
                        "grpc: received message larger than max ({} vs. {max_message})",
                        s.body.len() + data.len() - 5
                    )));
                } else {
                    s.body.extend_from_slice(&data);
                }
            }
            Kind::Streaming { queue, .. } => {
                s.body.extend_from_slice(&data);
                let mut refused = None;
                while s.body.len() >= 5 {
                    let len =
                        u32::from_be_bytes([s.body[1], s.body[2], s.body[3], s.body[4]]) as usize;
                    if s.body[0] != 0 {
                        refused = Some(Status::unimplemented(
                            "compressed messages are not supported",
                        ));
                        break;
                    }
                    if len > max_message {
                        refused = Some(Status::resource_exhausted(format!(
                            "grpc: received message larger than max ({len} vs. {max_message})"
                        )));
                        break;
                    }
                    if s.body.len() < 5 + len {
                        break;
                    }
                    let message = s.body.split_to(5 + len).freeze().slice(5..);
                    queue.push_back(message);
                }
                if let Some(status) = refused {
                    s.answer(status);
                } else if !queue.is_empty() {
                    // Credited once the session has taken the queue.
                    s.held += flow_len;
                    credit_now = 0;
                }
            }
        }
        if flags & END_STREAM != 0 {
            self.on_end_stream(id);
        }
        if credit_now > 0 {
            self.credit(id, credit_now);
        }
        Ok(())
    }

    fn credit_conn(&mut self, n: usize) {
        self.conn_recv_unacked += n;
        if self.conn_recv_unacked >= CONN_WINDOW / 4 {
            window_update(&mut self.wbuf, 0, self.conn_recv_unacked);
            self.conn_recv_window += self.conn_recv_unacked as i64;
            self.conn_recv_unacked = 0;
        }
    }

    /// Returns `n` received bytes of stream `id` to the peer's windows.
    fn credit(&mut self, id: u32, n: usize) {
        self.credit_conn(n);
        if let Some(s) = self.streams.get_mut(&id) {
            s.recv_unacked += n;
            if !s.recv_closed && s.recv_unacked >= STREAM_WINDOW / 4 {
                window_update(&mut self.wbuf, id, s.recv_unacked);
                s.recv_window += s.recv_unacked as i64;
                s.recv_unacked = 0;
            }
        }
    }

    /// The client has sent its last frame on `id`: a unary call starts now.
    fn on_end_stream(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.recv_closed = true;
        let Kind::Unary(method) = s.kind else {
            return;
        };
        let body = std::mem::take(&mut s.body);
        if body.len() < 5 {
            s.answer(Status::internal("missing request message"));
            return;
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body[0] != 0 {
            s.answer(Status::unimplemented(
                "compressed messages are not supported",
            ));
            return;
        }
        if body.len() != 5 + len {
            s.answer(Status::internal(
                "a unary call needs exactly one whole request message",
            ));
            return;
        }
        let message = body.freeze().slice(5..);
        let call = self.svc.unary(method, message);
        s.kind = Kind::Answered;
        match s.deadline {
            None => self.unary.push(Box::pin(async move { (id, call.await) })),
            // Past the client's deadline the call is dropped (a write already handed
            // to the engine still commits, as etcd's) and DEADLINE_EXCEEDED answered.
            Some(at) => self.unary.push(Box::pin(async move {
                let answer = tokio::time::timeout_at(at, call).await.unwrap_or_else(|_| {
                    Err(Status::deadline_exceeded("context deadline exceeded"))
                });
                (id, answer)
            })),
        }
    }

    /// Hands queued messages to sessions and takes their responses; true on progress.
    fn poll_streams(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut credits: Vec<(u32, usize)> = Vec::new();
        for (&id, s) in self.streams.iter_mut() {
            let Kind::Streaming {
                inbound,
                queue,
                reserve,
                outbound,
            } = &mut s.kind
            else {
                continue;
            };
            // Inbound: into the session's queue, waiting for room when it is full.
            while let Some(sender) = inbound.as_ref() {
                let Some(message) = queue.pop_front() else {
                    break;
                };
                if let Some(r) = reserve.as_mut() {
                    match r.as_mut().poll(cx) {
                        Poll::Pending => {
                            queue.push_front(message);
                            break;
                        }
                        Poll::Ready(Ok(permit)) => {
                            *reserve = None;
                            permit.send(message);
                            progress = true;
                            continue;
                        }
                        Poll::Ready(Err(_)) => {
                            *reserve = None;
                            *inbound = None;
                            break;
                        }
                    }
                }
                match sender.try_send(message) {
                    Ok(()) => progress = true,
                    Err(mpsc::error::TrySendError::Full(message)) => {
                        queue.push_front(message);
                        *reserve = Some(Box::pin(sender.clone().reserve_owned()));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => *inbound = None,
                }
            }
            if inbound.is_none() {
                queue.clear();
            }
            if queue.is_empty() {
                if s.held > 0 {
                    credits.push((id, s.held));
                    s.held = 0;
                }
                if s.recv_closed {
                    // The client is done sending: the session sees its inbound end.
                    *inbound = None;
                }
            }
            // Outbound: take responses while there is room to hold them.
            if let Some(out) = outbound.as_mut() {
                while s.out.len() < STREAM_OUT_HIGH_WATER {
                    match out.poll_next(cx, &mut s.out) {
                        Poll::Pending => break,
                        Poll::Ready(Some(Ok(()))) => progress = true,
                        Poll::Ready(Some(Err(status))) => {
                            s.trailers = Some((status.code(), status.message().to_string()));
                            *outbound = None;
                            progress = true;
                            break;
                        }
                        Poll::Ready(None) => {
                            s.trailers = Some((Code::Ok, String::new()));
                            *outbound = None;
                            progress = true;
                            break;
                        }
                    }
                }
            }
        }
        for (id, n) in credits {
            self.credit(id, n);
        }
        progress
    }

    /// Moves response bytes into the write buffer within the windows, and ends the
    /// streams whose answers are complete.
    fn flush_streams(&mut self) {
        // Streams with something to send join the queue's end; those already in it
        // keep their place, so a stream waiting for the connection's window is first
        // when it opens, however many answers come after it.
        for (&id, s) in self.streams.iter_mut() {
            if !s.queued && (!s.out.is_empty() || s.trailers.is_some()) {
                s.queued = true;
                self.send_queue.push_back(id);
            }
        }
        while let Some(id) = self.send_queue.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if !s.out.is_empty() {
                if self.conn_send_window <= 0 || self.wbuf.len() - self.wpos >= WRITE_HIGH_WATER {
                    // Blocked for every stream: this one stays first.
                    self.send_queue.push_front(id);
                    break;
                }
                if s.send_window <= 0 {
                    // Rejoins the queue once its WINDOW_UPDATE arrives.
                    s.queued = false;
                    continue;
                }
                if !s.headers_sent {
                    headers_frame(&mut self.wbuf, id, false, response_headers);
                    s.headers_sent = true;
                }
                // One frame, then the stream goes to the back: streams share the
                // connection's window in turn.
                let n = s
                    .out
                    .len()
                    .min(s.send_window as usize)
                    .min(self.conn_send_window as usize)
                    .min(self.peer_max_frame);
                frame_header(&mut self.wbuf, n, DATA, 0, id);
                self.wbuf.extend_from_slice(&s.out[..n]);
                s.out.advance(n);
                s.send_window -= n as i64;
                self.conn_send_window -= n as i64;
                if !s.out.is_empty() {
                    self.send_queue.push_back(id);
                    continue;
                }
            }
            s.queued = false;
            if let Some((code, message)) = s.trailers.take() {
                let headers_sent = s.headers_sent;
                headers_frame(&mut self.wbuf, id, true, |block| {
                    if !headers_sent {
                        response_headers(block);
                    }
                    trailer_fields(block, code, &message);
                });
                if !s.recv_closed {
                    // The call is over; the client need not send the rest.
                    rst_stream(&mut self.wbuf, id, NO_ERROR);
                }
                self.remove_stream(id);
            }
        }
    }

    /// Forgets a stream, returning the connection credit its undelivered data held.
    fn remove_stream(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(&id)
            && s.held > 0
        {
            self.credit_conn(s.held);
        }
    }
}

fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], ConnError> {
    frame::strip_padding(flags, payload).ok_or(ConnError(PROTOCOL_ERROR))
}
