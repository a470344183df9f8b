//! HTTP/2 framing (RFC 9113) shared by the direct server ([`super::conn`]) and the load
//! generator's client: the connection preface, frame types, flags and error codes, and
//! the few frames both sides write; splitting frames off the read buffer and putting
//! header blocks together.

use std::borrow::Cow;

use bytes::{Buf, Bytes, BytesMut};

/// What a client sends first on a prior-knowledge connection.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes of a frame's header.
pub const HEADER_BYTES: usize = 9;
/// The largest frame either side accepts unless raised by SETTINGS (both keep it).
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// Every window starts here until SETTINGS or WINDOW_UPDATE change it.
pub const DEFAULT_WINDOW: i64 = 65_535;
/// The largest window the protocol allows.
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;

/// SETTINGS identifiers.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// A frame's header as read: payload length, type, flags, stream (reserved bit cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub id: u32,
}

impl FrameHeader {
    pub fn parse(h: &[u8; HEADER_BYTES]) -> FrameHeader {
        FrameHeader {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize,
            kind: h[3],
            flags: h[4],
            id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        }
    }
}

/// Splits the next whole frame off the read buffer: `Ok(None)` until all of it has
/// arrived, `Err(len)` for a frame longer than `max_len` (FRAME_SIZE_ERROR).
pub fn next_frame(
    rbuf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<(FrameHeader, Bytes)>, usize> {
    if rbuf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let h = FrameHeader::parse(rbuf[..HEADER_BYTES].try_into().expect("9 bytes"));
    if h.len > max_len {
        return Err(h.len);
    }
    if rbuf.len() < HEADER_BYTES + h.len {
        return Ok(None);
    }
    rbuf.advance(HEADER_BYTES);
    Ok(Some((h, rbuf.split_to(h.len).freeze())))
}

/// A header block begun and not ended: its stream, its HEADERS flags, its bytes so far.
type OpenBlock = (u32, u8, Vec<u8>);

/// A whole header block: its stream, its HEADERS flags (END_STREAM among them), the
/// block with padding and priority stripped.
pub type WholeBlock<'a> = (u32, u8, Cow<'a, [u8]>);

/// A header block arriving as a HEADERS frame and its CONTINUATION frames (RFC 9113
/// 4.3), which no other frame may come between.
#[derive(Debug, Default)]
pub struct HeaderBlock {
    open: Option<OpenBlock>,
}

/// Why a header block is refused: a connection error (PROTOCOL_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockError(pub &'static str);

impl HeaderBlock {
    /// Takes every frame in turn. HEADERS and CONTINUATION frames go into the block,
    /// which comes back once it is whole; `None` while it goes on and for every other
    /// kind of frame. A block longer than `max_bytes` is refused, as is anything that
    /// interrupts one.
    pub fn take<'a>(
        &mut self,
        h: FrameHeader,
        payload: &'a [u8],
        max_bytes: usize,
    ) -> Result<Option<WholeBlock<'a>>, BlockError> {
        if let Some((id, _, _)) = &self.open
            && (h.kind != CONTINUATION || h.id != *id)
        {
            return Err(BlockError("header block interrupted"));
        }
        match h.kind {
            HEADERS => {
                if h.id == 0 {
                    return Err(BlockError("HEADERS on stream 0"));
                }
                let block = strip_padding(h.flags, payload).ok_or(BlockError("bad padding"))?;
                let block = if h.flags & PRIORITY_FLAG != 0 {
                    block.get(5..).ok_or(BlockError("short HEADERS"))?
                } else {
                    block
                };
                if h.flags & END_HEADERS != 0 {
                    Ok(Some((h.id, h.flags, Cow::Borrowed(block))))
                } else {
                    self.open = Some((h.id, h.flags, block.to_vec()));
                    Ok(None)
                }
            }
            CONTINUATION => {
                let Some((id, flags, mut block)) = self.open.take() else {
                    return Err(BlockError("CONTINUATION without HEADERS"));
                };
                block.extend_from_slice(payload);
                if block.len() > max_bytes {
                    return Err(BlockError("header block too large"));
                }
                if h.flags & END_HEADERS != 0 {
                    Ok(Some((id, flags, Cow::Owned(block))))
                } else {
                    self.open = Some((id, flags, block));
                    Ok(None)
                }
            }
            _ => Ok(None),
        }
    }
}

/// Appends a frame header; the caller appends `len` bytes of payload.
pub fn frame_header(w: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    debug_assert!(len < 1 << 24);
    w.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    w.push(kind);
    w.push(flags);
    w.extend_from_slice(&id.to_be_bytes());
}

pub fn rst_stream(w: &mut Vec<u8>, id: u32, code: u32) {
    frame_header(w, 4, RST_STREAM, 0, id);
    w.extend_from_slice(&code.to_be_bytes());
}

pub fn window_update(w: &mut Vec<u8>, id: u32, n: usize) {
    frame_header(w, 4, WINDOW_UPDATE, 0, id);
    w.extend_from_slice(&(n as u32).to_be_bytes());
}

/// A 4-byte big-endian field at `at` (a WINDOW_UPDATE's increment, an error code).
pub fn be_u32(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([
        payload[at],
        payload[at + 1],
        payload[at + 2],
        payload[at + 3],
    ])
}

/// A SETTINGS payload's entries (identifier, value); the caller has checked that its
/// length is a multiple of 6.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload
        .chunks_exact(6)
        .map(|e| (u16::from_be_bytes([e[0], e[1]]), be_u32(e, 2)))
}

/// Appends a SETTINGS frame with `entries`.
pub fn settings_frame(w: &mut Vec<u8>, entries: &[(u16, u32)]) {
    frame_header(w, 6 * entries.len(), SETTINGS, 0, 0);
    for (key, value) in entries {
        w.extend_from_slice(&key.to_be_bytes());
        w.extend_from_slice(&value.to_be_bytes());
    }
}

/// A DATA or HEADERS payload without its padding; `None` when the padding does not
/// fit the frame (a protocol error).
pub fn strip_padding(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    if flags & PADDED == 0 {
        return Some(payload);
    }
    let (&pad, rest) = payload.split_first()?;
    rest.len().checked_sub(pad as usize).map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_padding_is_checked() {
        let mut w = Vec::new();
        frame_header(&mut w, 70_000, HEADERS, END_HEADERS, 0x8000_0003);
        let h = FrameHeader::parse(w[..].try_into().unwrap());
        assert_eq!(
            h,
            FrameHeader {
                len: 70_000,
                kind: HEADERS,
                flags: END_HEADERS,
                id: 3
            }
        );
        assert_eq!(strip_padding(0, b"abc"), Some(&b"abc"[..]));
        assert_eq!(strip_padding(PADDED, b"\x02abc"), Some(&b"a"[..]));
        assert_eq!(strip_padding(PADDED, b"\x03abc"), Some(&b""[..]));
        assert_eq!(strip_padding(PADDED, b"\x04abc"), None);
        assert_eq!(strip_padding(PADDED, b""), None);

        let mut w = Vec::new();
        settings_frame(
            &mut w,
            &[
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),
            ],
        );
        let h = FrameHeader::parse(w[..HEADER_BYTES].try_into().unwrap());
        assert_eq!((h.len, h.kind, h.id), (12, SETTINGS, 0));
        let entries: Vec<_> = settings(&w[HEADER_BYTES..]).collect();
        assert_eq!(
            entries,
            [
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)
            ]
        );
    }

    fn header(kind: u8, flags: u8, id: u32, len: usize) -> FrameHeader {
        FrameHeader {
            len,
            kind,
            flags,
            id,
        }
    }

    #[test]
    fn frames_are_split_off_whole() {
        let mut w = Vec::new();
        frame_header(&mut w, 3, DATA, END_STREAM, 1);
        w.extend_from_slice(b"abc");
        let mut rbuf = BytesMut::from(&w[..w.len() - 1]);
        assert_eq!(next_frame(&mut rbuf, 16), Ok(None));
        rbuf.extend_from_slice(&w[w.len() - 1..]);
        let (h, payload) = next_frame(&mut rbuf, 16).unwrap().unwrap();
        assert_eq!(
            (h, &payload[..]),
            (header(DATA, END_STREAM, 1, 3), &b"abc"[..])
        );
        assert!(rbuf.is_empty());
        let mut w = Vec::new();
        frame_header(&mut w, 17, DATA, 0, 1);
        assert_eq!(next_frame(&mut BytesMut::from(&w[..]), 16), Err(17));
    }

    #[test]
    fn header_blocks_join_their_continuations_and_nothing_else() {
        let mut b = HeaderBlock::default();
        // Whole in one padded, prioritised HEADERS frame.
        let flags = PADDED | PRIORITY_FLAG | END_HEADERS;
        let payload = [&[2u8][..], &[0, 0, 0, 0, 9], b"ab", &[0, 0]].concat();
        let got = b.take(header(HEADERS, flags, 1, 0), &payload, 64).unwrap();
        assert_eq!(got, Some((1, flags, Cow::Borrowed(&b"ab"[..]))));
        // Over two CONTINUATIONs; other frames pass untouched.
        assert_eq!(b.take(header(PING, 0, 0, 8), b"12345678", 64), Ok(None));
        assert_eq!(
            b.take(header(HEADERS, END_STREAM, 3, 1), b"a", 64),
            Ok(None)
        );
        assert_eq!(b.take(header(CONTINUATION, 0, 3, 1), b"b", 64), Ok(None));
        let got = b.take(header(CONTINUATION, END_HEADERS, 3, 1), b"c", 64);
        assert_eq!(got, Ok(Some((3, END_STREAM, Cow::Owned(b"abc".to_vec())))));
        // Interrupted by another frame or another stream; orphaned; too large; on
        // stream 0.
        b.take(header(HEADERS, 0, 5, 1), b"a", 64).unwrap();
        assert!(b.take(header(DATA, 0, 5, 1), b"x", 64).is_err());
        let mut b = HeaderBlock::default();
        b.take(header(HEADERS, 0, 5, 1), b"a", 64).unwrap();
        assert!(b.take(header(CONTINUATION, 0, 7, 1), b"x", 64).is_err());
        let mut b = HeaderBlock::default();
        assert!(
            b.take(header(CONTINUATION, END_HEADERS, 5, 1), b"x", 64)
                .is_err()
        );
        b.take(header(HEADERS, 0, 5, 2), b"ab", 2).unwrap();
        assert!(
            b.take(header(CONTINUATION, END_HEADERS, 5, 1), b"c", 2)
                .is_err()
        );
        let mut b = HeaderBlock::default();
        assert!(
            b.take(header(HEADERS, END_HEADERS, 0, 1), b"a", 64)
                .is_err()
        );
    }
}
