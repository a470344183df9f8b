//! Watch streams: the newline-delimited JSON of `?watch=1`, split into lines by a
//! bounded [`LineDecoder`] and decoded into [`WatchEvent`]s.

use crate::error::{Error, Result};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// One event of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K> {
    /// `ADDED`: the object was created (or is part of the initial state).
    Added(K),
    /// `MODIFIED`: the new state of the object.
    Modified(K),
    /// `DELETED`: the last state of the object.
    Deleted(K),
    /// `BOOKMARK`: everything up to this resource version has been sent.
    Bookmark {
        /// The resource version to resume from.
        resource_version: String,
    },
    /// `ERROR`: the watch failed; a 410 (reason `Expired`) means relist.
    Error(Box<Status>),
}

/// A stream of watch events; ends when the server closes the watch.
pub type WatchStream<K> = BoxStream<'static, Result<WatchEvent<K>>>;

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    object: &'a RawValue,
}

#[derive(Deserialize)]
struct BookmarkObject {
    metadata: BookmarkMeta,
}

#[derive(Deserialize)]
struct BookmarkMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
}

/// Decodes one watch line (`{"type":"ADDED","object":{...}}`).
pub fn decode_event<K: DeserializeOwned>(line: &[u8]) -> Result<WatchEvent<K>> {
    let dec = |context| move |source| Error::Decode { context, source };
    let raw: RawEvent<'_> = serde_json::from_slice(line).map_err(dec("watch event"))?;
    let obj = raw.object.get();
    Ok(match raw.kind {
        "ADDED" => WatchEvent::Added(serde_json::from_str(obj).map_err(dec("watch object"))?),
        "MODIFIED" => WatchEvent::Modified(serde_json::from_str(obj).map_err(dec("watch object"))?),
        "DELETED" => WatchEvent::Deleted(serde_json::from_str(obj).map_err(dec("watch object"))?),
        "BOOKMARK" => {
            let b: BookmarkObject = serde_json::from_str(obj).map_err(dec("bookmark"))?;
            WatchEvent::Bookmark {
                resource_version: b.metadata.resource_version,
            }
        }
        "ERROR" => WatchEvent::Error(Box::new(
            serde_json::from_str(obj).map_err(dec("watch error status"))?,
        )),
        other => {
            return Err(Error::Decode {
                context: "watch event type",
                source: serde::de::Error::custom(format!("unknown watch event type {other:?}")),
            });
        }
    })
}

/// Splits a byte stream into lines, each at most `max_line_bytes` long.
/// Empty lines are skipped. Pure: no IO, so it is tested on its own.
#[derive(Debug)]
pub struct LineDecoder {
    buf: BytesMut,
    max_line_bytes: usize,
    /// Bytes of `buf` already scanned for a newline.
    scanned: usize,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineDecoder {
        LineDecoder {
            buf: BytesMut::new(),
            max_line_bytes,
            scanned: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line (without its newline), `Ok(None)` if more bytes
    /// are needed, or an error when a line exceeds the bound.
    pub fn next_line(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_line_bytes {
                    return Err(Error::BodyTooLarge {
                        limit_bytes: self.max_line_bytes,
                    });
                }
                return Ok(None);
            };
            let end = self.scanned + pos;
            self.scanned = 0;
            if end > self.max_line_bytes {
                return Err(Error::BodyTooLarge {
                    limit_bytes: self.max_line_bytes,
                });
            }
            let line = self.buf.split_to(end).freeze();
            self.buf.advance(1);
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
    }

    /// What is left when the stream ends: a last line without a newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.buf.split().freeze();
        self.scanned = 0;
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

struct State {
    body: Option<Incoming>,
    lines: LineDecoder,
}

/// Turns a watch response body into a stream of events. The stream ends after
/// the body ends, or after the first error.
pub(crate) fn event_stream<K: DeserializeOwned + Send + 'static>(
    body: Incoming,
    max_line_bytes: usize,
) -> WatchStream<K> {
    let state = State {
        body: Some(body),
        lines: LineDecoder::new(max_line_bytes),
    };
    stream::unfold(state, |mut st| async move {
        let line = match next_line(&mut st).await {
            Ok(Some(line)) => line,
            Ok(None) => return None,
            Err(e) => {
                st.body = None;
                return Some((Err(e), st));
            }
        };
        let ev = decode_event::<K>(&line);
        if ev.is_err() {
            st.body = None;
        }
        Some((ev, st))
    })
    .boxed()
}

async fn next_line(st: &mut State) -> Result<Option<Bytes>> {
    loop {
        if let Some(line) = st.lines.next_line()? {
            return Ok(Some(line));
        }
        let Some(body) = st.body.as_mut() else {
            return Ok(None);
        };
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    st.lines.push(&data);
                }
            }
            Some(Err(e)) => return Err(Error::Transport(format!("watch body: {e}"))),
            None => {
                st.body = None;
                return Ok(st.lines.finish());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn lines_split_across_chunks() {
        let mut d = LineDecoder::new(64);
        d.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(d.next_line().unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(d.next_line().unwrap(), None);
        d.push(b":2}\n\n  \n{\"c\":3}");
        assert_eq!(d.next_line().unwrap().as_deref(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(d.next_line().unwrap(), None);
        assert_eq!(d.finish().as_deref(), Some(&b"{\"c\":3}"[..]));
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn line_bound_is_enforced() {
        let mut d = LineDecoder::new(4);
        d.push(b"12345");
        assert!(matches!(
            d.next_line(),
            Err(Error::BodyTooLarge { limit_bytes: 4 })
        ));
        let mut d = LineDecoder::new(4);
        d.push(b"1234\n12345\n");
        assert_eq!(d.next_line().unwrap().as_deref(), Some(&b"1234"[..]));
        assert!(d.next_line().is_err());
    }

    /// Data-driven: each watch line with the event it must decode to, as
    /// kube-apiserver writes them (`k8s.io/apimachinery/pkg/watch`).
    #[test]
    fn watch_lines_decode() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"ns","resourceVersion":"5"}}}"#,
                "added a 5",
            ),
            (
                r#"{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"ns","resourceVersion":"6"},"spec":{"nodeName":"n1","containers":[]}}}"#,
                "modified a 6",
            ),
            (
                r#"{"type":"DELETED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"7"}}}"#,
                "deleted a 7",
            ),
            (
                r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
                "bookmark 12",
            ),
            (
                r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
                "error 410 Expired gone",
            ),
            (
                r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"internal","reason":"InternalError","code":500}}"#,
                "error 500 InternalError",
            ),
            (r#"{"type":"UNKNOWN","object":{}}"#, "decode error"),
            (
                r#"{"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{}}}"#,
                "decode error",
            ),
            (r#"{"type":"ADDED""#, "decode error"),
        ];
        for (line, want) in cases {
            assert_eq!(
                &describe(decode_event::<Pod>(line.as_bytes())),
                want,
                "line: {line}"
            );
        }
    }

    fn describe(ev: Result<WatchEvent<Pod>>) -> String {
        let obj = |p: &Pod| {
            format!(
                "{} {}",
                p.metadata.name.as_deref().unwrap_or(""),
                p.metadata.resource_version.as_deref().unwrap_or("")
            )
        };
        match ev {
            Ok(WatchEvent::Added(p)) => format!("added {}", obj(&p)),
            Ok(WatchEvent::Modified(p)) => format!("modified {}", obj(&p)),
            Ok(WatchEvent::Deleted(p)) => format!("deleted {}", obj(&p)),
            Ok(WatchEvent::Bookmark { resource_version }) => format!("bookmark {resource_version}"),
            Ok(WatchEvent::Error(s)) => format!(
                "error {} {}{}",
                s.code.unwrap_or_default(),
                s.reason.as_deref().unwrap_or(""),
                if crate::error::status_is_gone(&s) {
                    " gone"
                } else {
                    ""
                }
            ),
            Err(Error::Decode { .. }) => "decode error".to_string(),
            Err(e) => format!("other error {e}"),
        }
    }
}
