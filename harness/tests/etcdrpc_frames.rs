//! The generator's HTTP/2 client (`etcdrpc`) against a server scripted frame by frame:
//! answers split over CONTINUATION and padded DATA frames, trailers-only errors, resets,
//! GOAWAY, the server's stream windows and stream limit, and a server that goes away.
//! Each test runs on one thread, so calls queued in one poll are all queued before the
//! connection's task runs. Every wait is bounded; no timing is asserted.

use std::time::Duration;

use bosun_harness::etcdrpc::{KvConn, RpcError, pb};
use bosun_store_engine::grpc::frame::{
    ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PADDED, PING, PREFACE,
    RST_STREAM, SETTINGS, WINDOW_UPDATE,
};
use bosun_store_engine::grpc::hpack;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(30);

struct Frame {
    kind: u8,
    flags: u8,
    id: u32,
    payload: Vec<u8>,
}

/// The server's end of one connection.
struct Peer {
    tcp: TcpStream,
    /// Request bytes received so far, by stream not yet answered.
    bodies: std::collections::HashMap<u32, Vec<u8>>,
    /// The stream limit this server set, checked on every HEADERS.
    max_streams: usize,
}

impl Peer {
    /// Accepts one connection, reads the client's preface, sends `settings` and waits
    /// for the client to acknowledge them.
    async fn accept(listener: &TcpListener, settings: &[(u16, u32)]) -> Peer {
        let (tcp, _) = listener.accept().await.unwrap();
        let max_streams = settings
            .iter()
            .find(|(k, _)| *k == 0x3)
            .map_or(usize::MAX, |&(_, v)| v as usize);
        let mut peer = Peer {
            tcp,
            bodies: Default::default(),
            max_streams,
        };
        let mut preface = [0u8; 24];
        peer.tcp.read_exact(&mut preface).await.unwrap();
        assert_eq!(&preface[..], PREFACE);
        let mut payload = Vec::new();
        for (k, v) in settings {
            payload.extend_from_slice(&k.to_be_bytes());
            payload.extend_from_slice(&v.to_be_bytes());
        }
        peer.send(SETTINGS, 0, 0, &payload).await;
        loop {
            let f = peer.frame().await;
            if f.kind == SETTINGS && f.flags & ACK != 0 {
                return peer;
            }
        }
    }

    async fn frame(&mut self) -> Frame {
        let mut h = [0u8; 9];
        self.tcp.read_exact(&mut h).await.unwrap();
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let mut payload = vec![0; len];
        self.tcp.read_exact(&mut payload).await.unwrap();
        Frame {
            kind: h[3],
            flags: h[4],
            id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
            payload,
        }
    }

    async fn send(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(payload);
        self.tcp.write_all(&out).await.unwrap();
    }

    /// The next frame, keeping track of the requests it carries.
    async fn next(&mut self) -> Frame {
        let f = self.frame().await;
        match f.kind {
            HEADERS => {
                assert!(
                    self.bodies.len() < self.max_streams,
                    "stream {} opened with {} open, past the limit of {}",
                    f.id,
                    self.bodies.len(),
                    self.max_streams
                );
                self.bodies.insert(f.id, Vec::new());
            }
            DATA => {
                let b = self.bodies.get_mut(&f.id).expect("DATA after HEADERS");
                b.extend_from_slice(&f.payload);
            }
            _ => {}
        }
        f
    }

    /// Reads frames until one request is complete: its stream and message.
    async fn request(&mut self) -> (u32, pb::PutRequest) {
        loop {
            let f = self.next().await;
            if f.kind == DATA && f.flags & END_STREAM != 0 {
                let b = &self.bodies[&f.id];
                let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
                assert_eq!(len, b.len() - 5);
                return (f.id, pb::PutRequest::decode(&b[5..]).unwrap());
            }
        }
    }

    /// Answers `id` with a PutResponse at `revision`, as a gRPC server does.
    async fn answer(&mut self, id: u32, revision: i64) {
        self.bodies.remove(&id);
        self.send(HEADERS, END_HEADERS, id, &[0x88]).await; // :status 200
        self.send(DATA, 0, id, &framed(revision)).await;
        self.send(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &status_block("0", ""),
        )
        .await;
    }
}

/// A PutResponse at `revision`, gRPC-framed.
fn framed(revision: i64) -> Vec<u8> {
    let resp = pb::PutResponse {
        header: Some(pb::ResponseHeader {
            revision,
            ..Default::default()
        }),
        prev_kv: None,
    };
    let mut out = vec![0];
    out.extend_from_slice(&(resp.encoded_len() as u32).to_be_bytes());
    resp.encode(&mut out).unwrap();
    out
}

fn status_block(status: &str, message: &str) -> Vec<u8> {
    let mut b = Vec::new();
    hpack::write_literal(&mut b, 0, b"grpc-status", status.as_bytes());
    if !message.is_empty() {
        hpack::write_literal(&mut b, 0, b"grpc-message", message.as_bytes());
    }
    b
}

fn put(key: &str) -> pb::PutRequest {
    pb::PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        ..Default::default()
    }
}

/// A listener and a client connected to it, with the server's end once the client
/// has acknowledged `settings`.
async fn pair(settings: &[(u16, u32)]) -> (KvConn, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let conn = KvConn::connect(&url).await.unwrap();
    let peer = Peer::accept(&listener, settings).await;
    (conn, peer)
}

#[tokio::test]
async fn an_answer_over_continuation_and_padded_frames_is_reassembled() {
    let test = async {
        let (conn, mut peer) = pair(&[]).await;
        let server = async move {
            let (id, req) = peer.request().await;
            assert_eq!(req.key, b"k");
            // :status 200 and a content-type, the block split over two frames, the
            // first padded.
            let mut block = vec![0x88];
            hpack::write_literal(&mut block, 31, b"", b"application/grpc");
            let mut first = vec![3];
            first.extend_from_slice(&block[..4]);
            first.extend_from_slice(&[0, 0, 0]);
            peer.send(HEADERS, PADDED, id, &first).await;
            peer.send(CONTINUATION, END_HEADERS, id, &block[4..]).await;
            // The message in two DATA frames, the second padded.
            let message = framed(42);
            peer.send(DATA, 0, id, &message[..3]).await;
            let mut second = vec![5];
            second.extend_from_slice(&message[3..]);
            second.extend_from_slice(&[0; 5]);
            peer.send(DATA, PADDED, id, &second).await;
            peer.send(
                HEADERS,
                END_HEADERS | END_STREAM,
                id,
                &status_block("0", ""),
            )
            .await;

            // A trailers-only error with a percent-encoded message.
            let (id, _) = peer.request().await;
            let mut block = vec![0x88];
            block.extend_from_slice(&status_block("9", "not%20now"));
            peer.send(HEADERS, END_HEADERS | END_STREAM, id, &block)
                .await;
            peer
        };
        let client = async {
            let resp = conn.put(&put("k")).await.unwrap();
            assert_eq!(resp.header.unwrap().revision, 42);
            match conn.put(&put("k")).await {
                Err(RpcError::Status { code: 9, message }) => assert_eq!(message, "not now"),
                other => panic!("expected status 9, got {other:?}"),
            }
        };
        tokio::join!(server, client);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn a_reset_or_a_bad_status_fails_its_call_only() {
    let test = async {
        let (conn, mut peer) = pair(&[]).await;
        let server = async move {
            let (id, _) = peer.request().await;
            peer.send(RST_STREAM, 0, id, &2u32.to_be_bytes()).await;
            let (id, _) = peer.request().await;
            // :status 503 (literal, static name 8).
            let mut block = Vec::new();
            hpack::write_literal(&mut block, 8, b"", b"503");
            peer.send(HEADERS, END_HEADERS, id, &block).await;
            // The client gives that stream up.
            loop {
                let f = peer.frame().await;
                if f.kind == RST_STREAM {
                    assert_eq!(f.id, id);
                    break;
                }
            }
            let (id, _) = peer.request().await;
            peer.answer(id, 7).await;
            peer
        };
        let client = async {
            let err = conn.put(&put("a")).await.unwrap_err();
            assert!(matches!(err, RpcError::Reset(2)), "{err}");
            let err = conn.put(&put("b")).await.unwrap_err();
            assert!(err.to_string().contains("503"), "{err}");
            let resp = conn.put(&put("c")).await.unwrap();
            assert_eq!(resp.header.unwrap().revision, 7);
        };
        tokio::join!(server, client);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn goaway_fails_the_calls_past_its_last_stream_and_answers_the_rest() {
    let test = async {
        let (conn, mut peer) = pair(&[]).await;
        let server = async move {
            let (first, a) = peer.request().await;
            let (second, b) = peer.request().await;
            assert_eq!((first, second), (1, 3));
            assert_eq!((a.key.as_slice(), b.key.as_slice()), (&b"a"[..], &b"b"[..]));
            let mut goaway = 1u32.to_be_bytes().to_vec();
            goaway.extend_from_slice(&0u32.to_be_bytes());
            peer.send(GOAWAY, 0, 0, &goaway).await;
            peer.answer(1, 5).await;
            peer
        };
        let client = async {
            let (ra, rb) = (put("a"), put("b"));
            let (a, b) = tokio::join!(conn.put(&ra), conn.put(&rb));
            assert_eq!(a.unwrap().header.unwrap().revision, 5);
            let err = b.unwrap_err();
            assert!(
                matches!(&err, RpcError::Closed(m) if m.contains("GOAWAY")),
                "{err}"
            );
        };
        let (_peer, ()) = tokio::join!(server, client);
        // The connection is over once its last stream ends: later calls fail.
        let err = conn.put(&put("c")).await.unwrap_err();
        assert!(matches!(err, RpcError::Closed(_)), "{err}");
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn request_data_stays_within_the_servers_stream_window() {
    let test = async {
        // A 100-byte stream window: the request's 1 KiB value goes out as the server
        // grants room.
        let (conn, mut peer) = pair(&[(0x4, 100)]).await;
        let server = async move {
            let mut window = 100usize;
            let mut body = Vec::new();
            let id = loop {
                let f = peer.frame().await;
                match f.kind {
                    HEADERS => {}
                    DATA => {
                        assert!(
                            f.payload.len() <= window,
                            "{} bytes sent into a window of {window}",
                            f.payload.len()
                        );
                        window -= f.payload.len();
                        body.extend_from_slice(&f.payload);
                        if f.flags & END_STREAM != 0 {
                            break f.id;
                        }
                        if window == 0 {
                            window += 100;
                            peer.send(WINDOW_UPDATE, 0, f.id, &100u32.to_be_bytes())
                                .await;
                        }
                    }
                    _ => {}
                }
            };
            let req = pb::PutRequest::decode(&body[5..]).unwrap();
            assert_eq!(req.value.len(), 1024);
            peer.answer(id, 3).await;
            peer
        };
        let client = async {
            let mut req = put("big");
            req.value = vec![b'x'; 1024];
            assert_eq!(conn.put(&req).await.unwrap().header.unwrap().revision, 3);
        };
        tokio::join!(server, client);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn no_more_streams_open_than_the_server_allows() {
    let test = async {
        // One stream at a time. Both calls are queued before the connection's task
        // runs; the second may open only once the first is answered. A PING after
        // the first request makes the server read all the client wrote before it
        // (`Peer::next` checks every HEADERS against the limit).
        let (conn, mut peer) = pair(&[(0x3, 1)]).await;
        let server = async move {
            for round in 0..2 {
                let (id, _) = peer.request().await;
                peer.send(PING, 0, 0, b"12345678").await;
                loop {
                    let f = peer.next().await;
                    if f.kind == PING && f.flags & ACK != 0 {
                        assert_eq!(f.payload, b"12345678");
                        break;
                    }
                }
                peer.answer(id, round + 1).await;
            }
            peer
        };
        let client = async {
            let (ra, rb) = (put("a"), put("b"));
            let (a, b) = tokio::join!(conn.put(&ra), conn.put(&rb));
            let mut revs = [
                a.unwrap().header.unwrap().revision,
                b.unwrap().header.unwrap().revision,
            ];
            revs.sort();
            assert_eq!(revs, [1, 2]);
        };
        tokio::join!(server, client);
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}

#[tokio::test]
async fn a_server_that_closes_fails_the_calls_in_flight_and_later_ones() {
    let test = async {
        let (conn, mut peer) = pair(&[]).await;
        let server = async move {
            let _ = peer.request().await;
            drop(peer);
        };
        let client = async {
            let err = conn.put(&put("a")).await.unwrap_err();
            assert!(
                matches!(&err, RpcError::Closed(m) if m.contains("closed")),
                "{err}"
            );
        };
        tokio::join!(server, client);
        let err = conn.put(&put("b")).await.unwrap_err();
        assert!(matches!(err, RpcError::Closed(_)), "{err}");
    };
    tokio::time::timeout(WAIT, test).await.unwrap();
}
