//! Binary encoding of log records and checkpoints (little-endian, length-prefixed).
//!
//! Record frame: `len: u32 | crc32c: u32 | kind: u8 | payload: [u8; len]`, where the
//! CRC covers the kind byte and the payload. Kinds start at 1 so that a zero-filled
//! tail never parses as a record.

use crate::types::*;

/// Bytes of a record frame before its payload.
pub const RECORD_HEADER_BYTES: usize = 9;
/// Largest payload a record may carry; one revision is one record, so it also bounds
/// the bytes one revision may change ([`revision_payload_bytes`], checked when a
/// transaction is applied). Checked on write and on read.
pub const MAX_RECORD_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;
const _: () = assert!(MAX_REQUEST_BYTES * 4 < MAX_RECORD_PAYLOAD_BYTES);
const _: () = assert!(MAX_RECORD_PAYLOAD_BYTES < u32::MAX as usize);

/// Identifies segment and checkpoint files written by this format.
pub const FORMAT_MAGIC: u64 = 0x424f_5355_4e4c_4f47; // "BOSUNLOG"
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// First record of every segment.
    SegmentHeader = 1,
    /// One committed revision: its changes in `sub` order.
    Revision = 2,
    /// A compaction at a revision.
    Compact = 3,
}

impl RecordKind {
    fn from_u8(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::SegmentHeader),
            2 => Some(RecordKind::Revision),
            3 => Some(RecordKind::Compact),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment_id: u64,
    /// The store's revision when the segment was started.
    pub base_revision: i64,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    SegmentHeader(SegmentHeader),
    /// `prev_kv` of each event is not persisted and decodes as `None`.
    Revision(CommittedBatch),
    Compact(i64),
}

/// Appends one framed record to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    let start = match record {
        Record::Revision(b) => return encode_revision(b, out),
        Record::SegmentHeader(h) => frame(out, RecordKind::SegmentHeader, |out| {
            put_u64(out, FORMAT_MAGIC);
            put_u32(out, FORMAT_VERSION);
            put_u64(out, h.segment_id);
            put_i64(out, h.base_revision);
        }),
        Record::Compact(rev) => frame(out, RecordKind::Compact, |out| put_i64(out, *rev)),
    };
    // Check the data before it goes to disk.
    debug_assert_eq!(
        decode_record(&out[start..]).map(|(r, _)| r),
        Ok(persisted_form(record))
    );
}

/// Appends the record of one committed revision to `out` (the writer's path: no copy
/// of the batch into a [`Record`]).
pub fn encode_revision(b: &CommittedBatch, out: &mut Vec<u8>) {
    let start = frame(out, RecordKind::Revision, |out| encode_batch(b, out));
    debug_assert_eq!(
        decode_record(&out[start..]).map(|(r, _)| r),
        Ok(Record::Revision(persisted_batch(b)))
    );
}

/// Appends a record of `kind` whose payload `payload` writes, framed with its length
/// and CRC; returns where it starts.
fn frame(out: &mut Vec<u8>, kind: RecordKind, payload: impl FnOnce(&mut Vec<u8>)) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    payload(out);
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    assert!(
        payload_len <= MAX_RECORD_PAYLOAD_BYTES,
        "record payload {payload_len} bytes"
    );
    out[start + 8] = kind as u8;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    start
}

/// What decoding `record` gives back: everything but the events' `prev_kv`.
pub fn persisted_form(record: &Record) -> Record {
    match record {
        Record::Revision(b) => Record::Revision(persisted_batch(b)),
        other => other.clone(),
    }
}

fn persisted_batch(b: &CommittedBatch) -> CommittedBatch {
    CommittedBatch {
        revision: b.revision,
        events: b
            .events
            .iter()
            .map(|e| Event {
                prev_kv: None,
                ..e.clone()
            })
            .collect(),
    }
}

/// Bytes a revision record's payload takes before its events.
pub const REVISION_HEADER_BYTES: usize = 8 + 4;

/// Bytes one change takes in a revision record's payload: the key, a kind byte, and for
/// a put its create revision, version, lease and value.
pub fn change_payload_bytes(kind: EventKind, key_len: usize, value_len: usize) -> usize {
    let put = match kind {
        EventKind::Put => 8 + 8 + 8 + 4 + value_len,
        EventKind::Delete => 0,
    };
    4 + key_len + 1 + put
}

/// Bytes the payload of `b`'s record takes.
pub fn revision_payload_bytes(b: &CommittedBatch) -> usize {
    REVISION_HEADER_BYTES
        + b.events
            .iter()
            .map(|e| change_payload_bytes(e.kind, e.kv.key.len(), e.kv.value.len()))
            .sum::<usize>()
}

fn encode_batch(b: &CommittedBatch, out: &mut Vec<u8>) {
    let start = out.len();
    put_i64(out, b.revision);
    put_u32(out, b.events.len() as u32);
    for ev in &b.events {
        put_bytes(out, &ev.kv.key);
        match ev.kind {
            EventKind::Delete => out.push(0),
            EventKind::Put => {
                out.push(1);
                put_i64(out, ev.kv.create_revision);
                put_i64(out, ev.kv.version);
                put_i64(out, ev.kv.lease);
                put_bytes(out, &ev.kv.value);
            }
        }
    }
    debug_assert_eq!(out.len() - start, revision_payload_bytes(b));
}

/// Why bytes failed to decode as a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the frame announces: a torn tail, or a bad length.
    Truncated,
    BadLength(u64),
    BadKind(u8),
    BadCrc,
    /// The CRC matched but the payload did not parse.
    BadPayload(String),
}

/// Decodes the record at the start of `buf`; returns it and its framed length.
pub fn decode_record(buf: &[u8]) -> Result<(Record, usize), FrameError> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    let kind = RecordKind::from_u8(buf[8]).ok_or(FrameError::BadKind(buf[8]))?;
    if len > MAX_RECORD_PAYLOAD_BYTES {
        return Err(FrameError::BadLength(len as u64));
    }
    let end = RECORD_HEADER_BYTES + len;
    if buf.len() < end {
        return Err(FrameError::Truncated);
    }
    if crc32c::crc32c(&buf[8..end]) != crc {
        return Err(FrameError::BadCrc);
    }
    let mut r = Reader::new(&buf[RECORD_HEADER_BYTES..end]);
    let record = decode_payload(kind, &mut r).map_err(FrameError::BadPayload)?;
    r.finish().map_err(FrameError::BadPayload)?;
    Ok((record, end))
}

fn decode_payload(kind: RecordKind, r: &mut Reader<'_>) -> Result<Record, String> {
    Ok(match kind {
        RecordKind::SegmentHeader => {
            if r.u64()? != FORMAT_MAGIC {
                return Err("bad magic".into());
            }
            let version = r.u32()?;
            if version != FORMAT_VERSION {
                return Err(format!("unknown format version {version}"));
            }
            Record::SegmentHeader(SegmentHeader {
                segment_id: r.u64()?,
                base_revision: r.i64()?,
            })
        }
        RecordKind::Revision => Record::Revision(decode_batch(r)?),
        RecordKind::Compact => Record::Compact(r.i64()?),
    })
}

fn decode_batch(r: &mut Reader<'_>) -> Result<CommittedBatch, String> {
    let revision = r.i64()?;
    let n = r.u32()? as usize;
    if n > MAX_CHANGES_PER_REVISION {
        return Err(format!("{n} changes"));
    }
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.bytes()?;
        let (kind, kv) = match r.u8()? {
            0 => {
                let kv = KeyValue {
                    key,
                    create_revision: 0,
                    mod_revision: revision,
                    version: 0,
                    value: Bytes::from(&[][..]),
                    lease: 0,
                };
                (EventKind::Delete, kv)
            }
            1 => {
                let (create_revision, version, lease) = (r.i64()?, r.i64()?, r.i64()?);
                let value = r.bytes()?;
                let kv = KeyValue {
                    key,
                    create_revision,
                    mod_revision: revision,
                    version,
                    value,
                    lease,
                };
                (EventKind::Put, kv)
            }
            b => return Err(format!("bad change tag {b}")),
        };
        events.push(Event {
            kind,
            kv,
            prev_kv: None,
        });
    }
    Ok(CommittedBatch { revision, events })
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).expect("field under 4 GiB"));
    out.extend_from_slice(b);
}

/// A bounds-checked cursor; every error is a message for a [`crate::Corruption`].
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!("field of {n} bytes overruns at {}", self.pos));
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn bytes(&mut self) -> Result<Bytes, String> {
        let n = self.u32()? as usize;
        Ok(Bytes::from(self.take(n)?))
    }
    /// Errors unless every byte was consumed.
    pub fn finish(&self) -> Result<(), String> {
        if self.pos != self.buf.len() {
            return Err(format!("{} trailing bytes", self.buf.len() - self.pos));
        }
        Ok(())
    }
}
