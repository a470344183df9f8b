//! Checkpoints: the whole index at a point of the log, for fast restart and to let old
//! segments go.
//!
//! `NNNNNNNNNNNNNNNN.ckpt` (hex) holds the state after every record in segments below
//! that id, so restart loads it and replays only segments from that id on. It is
//! written to a `.tmp` name, synced, renamed and the directory synced, so a crash leaves
//! either the old checkpoint or the new one; only then are the covered segments removed.
//!
//! Format: `magic: u64 | version: u32 | body_len: u64 | crc32c(body): u32 | body`, body =
//! `first_segment: u64 | current: i64 | compacted: i64 | n_keys: u64 |` per key
//! `key | n_entries: u32 |` per entry `main: i64 | sub: i64 | tag: u8 (0 tombstone,
//! 1 put) | [create_revision: i64 | version: i64 | lease: i64 | value]`.

use crate::codec::{FORMAT_MAGIC, FORMAT_VERSION, Reader, put_bytes, put_i64, put_u32, put_u64};
use crate::error::{Corruption, Error};
use crate::index::{Entry, Index, PutEntry};
use crate::logfile::{LogDir, LogFile};
use crate::mvcc::Mvcc;
use crate::types::Revision;
use crate::wal::segment_name;

const HEADER_BYTES: usize = 24;
/// Bound on a checkpoint file accepted on load.
pub const CHECKPOINT_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;

pub fn checkpoint_name(first_segment: u64) -> String {
    format!("{first_segment:016x}.ckpt")
}

fn parse_checkpoint_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".ckpt")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Body bytes a checkpoint is encoded into before they are handed on (checksummed or
/// written): a checkpoint is never held whole in memory, however large the store.
const PIECE_BYTES: usize = 1 << 20;

/// Encodes the body of the checkpoint of `mvcc` covering the segments below
/// `first_segment`, handing it to `sink` in pieces of about `piece_bytes` (a piece ends
/// after the entry that reaches the size, so one large value makes a larger piece).
fn encode_body<E>(
    mvcc: &Mvcc,
    first_segment: u64,
    piece_bytes: usize,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = Vec::with_capacity(piece_bytes.min(PIECE_BYTES) * 2);
    put_u64(&mut out, first_segment);
    put_i64(&mut out, mvcc.current_revision());
    put_i64(&mut out, mvcc.compacted_revision());
    put_u64(&mut out, mvcc.index().n_keys() as u64);
    for (key, history) in mvcc.index().iter() {
        put_bytes(&mut out, key);
        put_u32(
            &mut out,
            u32::try_from(history.len()).expect("history under 4G entries"),
        );
        for e in history {
            put_i64(&mut out, e.rev.main);
            put_i64(&mut out, e.rev.sub);
            match &e.put {
                None => out.push(0),
                Some(p) => {
                    out.push(1);
                    put_i64(&mut out, p.create_revision);
                    put_i64(&mut out, p.version);
                    put_i64(&mut out, p.lease);
                    put_bytes(&mut out, &p.value);
                }
            }
            if out.len() >= piece_bytes {
                sink(&out)?;
                out.clear();
            }
        }
    }
    if !out.is_empty() {
        sink(&out)?;
    }
    Ok(())
}

fn header(body_len: u64, crc: u32) -> [u8; HEADER_BYTES] {
    let mut h = [0; HEADER_BYTES];
    h[0..8].copy_from_slice(&FORMAT_MAGIC.to_le_bytes());
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&body_len.to_le_bytes());
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The body's length and checksum, from a first pass that keeps no more than a piece.
fn measure_body(mvcc: &Mvcc, first_segment: u64) -> (u64, u32) {
    let (mut len, mut crc) = (0u64, 0u32);
    let pass = encode_body(mvcc, first_segment, PIECE_BYTES, |piece| {
        len += piece.len() as u64;
        crc = crc32c::crc32c_append(crc, piece);
        Ok::<(), std::convert::Infallible>(())
    });
    let Ok(()) = pass;
    (len, crc)
}

/// Encodes `mvcc` whole, as the state after every segment below `first_segment` (what
/// [`write()`] writes piece by piece).
pub fn encode(mvcc: &Mvcc, first_segment: u64) -> Vec<u8> {
    let (len, crc) = measure_body(mvcc, first_segment);
    let mut out = header(len, crc).to_vec();
    let pass = encode_body(mvcc, first_segment, PIECE_BYTES, |piece| {
        out.extend_from_slice(piece);
        Ok::<(), std::convert::Infallible>(())
    });
    let Ok(()) = pass;
    out
}

/// Decodes a checkpoint; returns the state and the first segment it does not cover.
pub fn decode(buf: &[u8]) -> Result<(Mvcc, u64), String> {
    let mut h = Reader::new(buf.get(..HEADER_BYTES).ok_or("short header")?);
    if h.u64()? != FORMAT_MAGIC || h.u32()? != FORMAT_VERSION {
        return Err("bad magic or version".into());
    }
    let (body_len, crc) = (h.u64()?, h.u32()?);
    let body = &buf[HEADER_BYTES..];
    if body.len() as u64 != body_len {
        return Err(format!(
            "body is {} bytes, header says {body_len}",
            body.len()
        ));
    }
    if crc32c::crc32c(body) != crc {
        return Err("bad crc".into());
    }
    let mut r = Reader::new(body);
    let (first_segment, current, compacted) = (r.u64()?, r.i64()?, r.i64()?);
    if compacted > current {
        return Err(format!("compacted {compacted} > current {current}"));
    }
    let mut index = Index::default();
    for _ in 0..r.u64()? {
        let key = r.bytes()?;
        let mut last: Option<Revision> = None;
        for _ in 0..r.u32()? {
            let rev = Revision {
                main: r.i64()?,
                sub: r.i64()?,
            };
            if last.is_some_and(|l| l >= rev) || rev.main > current {
                return Err(format!("entry {rev:?} out of order"));
            }
            last = Some(rev);
            let put = match r.u8()? {
                0 => None,
                1 => Some(PutEntry {
                    create_revision: r.i64()?,
                    version: r.i64()?,
                    lease: r.i64()?,
                    value: r.bytes()?,
                }),
                t => return Err(format!("bad tag {t}")),
            };
            index.restore(key.clone(), Entry { rev, put });
        }
    }
    r.finish()?;
    Ok((Mvcc::from_parts(index, current, compacted), first_segment))
}

/// Writes a checkpoint durably, then removes older checkpoints and the segments it
/// covers. Returns the checkpoint's size in bytes.
///
/// The body is encoded twice, a piece at a time: once for the header's length and
/// checksum, once to write it. `mvcc` is a snapshot, so both passes see the same state,
/// and no more than a piece of it is ever held encoded.
pub fn write<D: LogDir>(dir: &D, mvcc: &Mvcc, first_segment: u64) -> Result<u64, Error> {
    let (body_len, crc) = measure_body(mvcc, first_segment);
    let name = checkpoint_name(first_segment);
    let tmp = format!("{name}.tmp");
    if dir.list()?.contains(&tmp) {
        dir.remove(&tmp)?;
    }
    let mut file = dir.create(&tmp)?;
    file.append(&header(body_len, crc))?;
    encode_body(mvcc, first_segment, PIECE_BYTES, |piece| file.append(piece))?;
    assert_eq!(
        file.len(),
        HEADER_BYTES as u64 + body_len,
        "both passes encode the same snapshot"
    );
    file.sync_data()?;
    drop(file);
    dir.rename(&tmp, &name)?;
    dir.sync_dir()?;
    for old in dir.list()? {
        let stale_checkpoint = parse_checkpoint_name(&old).is_some_and(|id| id < first_segment);
        let covered_segment =
            crate::wal::parse_segment_name(&old).is_some_and(|id| id < first_segment);
        if stale_checkpoint || covered_segment {
            dir.remove(&old)?;
        }
    }
    dir.sync_dir()?;
    debug_assert!(dir.list()?.contains(&segment_name(first_segment)));
    Ok(HEADER_BYTES as u64 + body_len)
}

/// A checkpoint read back: the state, the first segment it does not cover, its size.
pub struct Loaded {
    pub mvcc: Mvcc,
    pub first_segment: u64,
    pub bytes: u64,
}

/// Loads the newest checkpoint, if any. A damaged one is an error, not a fallback: the
/// segments it covered may already be gone.
pub fn load_latest<D: LogDir>(dir: &D) -> Result<Option<Loaded>, Error> {
    let names = dir.list()?;
    for tmp in names.iter().filter(|n| n.ends_with(".ckpt.tmp")) {
        dir.remove(tmp)?;
    }
    let Some(id) = names.iter().filter_map(|n| parse_checkpoint_name(n)).max() else {
        return Ok(None);
    };
    let name = checkpoint_name(id);
    let mut file = dir.open(&name)?;
    let corrupt = |reason: String| Corruption {
        file: name.clone(),
        offset: 0,
        reason,
    };
    if file.len() > CHECKPOINT_BYTES_MAX {
        return Err(corrupt(format!("{} bytes", file.len())).into());
    }
    let mut buf = vec![0; file.len() as usize];
    file.read_at(0, &mut buf)?;
    let (mvcc, first_segment) = decode(&buf).map_err(corrupt)?;
    if first_segment != id {
        return Err(corrupt(format!("body names segment {first_segment}")).into());
    }
    Ok(Some(Loaded {
        mvcc,
        first_segment,
        bytes: buf.len() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfile::MemDir;
    use crate::types::{DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};

    /// Keys with several versions, tombstones, a lease and one value far larger than a
    /// piece, compacted part of the way.
    fn store() -> Mvcc {
        let mut mvcc = Mvcc::new();
        let txn = |op| TxnRequest {
            success: vec![op],
            ..Default::default()
        };
        for i in 0..60u32 {
            let value = if i == 30 {
                vec![b'x'; 5000]
            } else {
                i.to_le_bytes().to_vec()
            };
            let put = RequestOp::Put(PutRequest {
                key: format!("k{:02}", i % 17).into_bytes(),
                value,
                lease: i64::from(i % 3),
                ..Default::default()
            });
            mvcc.apply(&txn(put)).unwrap();
            if i % 7 == 0 {
                let del = RequestOp::DeleteRange(DeleteRangeRequest {
                    key: format!("k{:02}", i % 5).into_bytes(),
                    ..Default::default()
                });
                mvcc.apply(&txn(del)).unwrap();
            }
        }
        mvcc.compact(20).unwrap();
        mvcc
    }

    fn same(a: &Mvcc, b: &Mvcc) {
        assert_eq!(a.current_revision(), b.current_revision());
        assert_eq!(a.compacted_revision(), b.compacted_revision());
        assert_eq!(a.index(), b.index());
    }

    #[test]
    fn pieces_are_bounded_and_make_up_the_checkpoint() {
        let mvcc = store();
        let whole = encode(&mvcc, 9);
        let (decoded, first_segment) = decode(&whole).unwrap();
        assert_eq!(first_segment, 9);
        same(&decoded, &mvcc);

        let largest_entry = 8 + 8 + 1 + 24 + 4 + 5000;
        let mut pieces = Vec::new();
        let pass = encode_body(&mvcc, 9, 64, |p| {
            pieces.push(p.to_vec());
            Ok::<(), ()>(())
        });
        assert_eq!(pass, Ok(()));
        assert!(pieces.len() > 10, "{} pieces", pieces.len());
        for p in &pieces {
            assert!(p.len() < 64 + largest_entry, "a piece of {} bytes", p.len());
        }
        assert!(
            pieces.iter().any(|p| p.len() > 5000),
            "the large value's piece"
        );
        assert_eq!(pieces.concat(), whole[HEADER_BYTES..]);
    }

    #[test]
    fn written_in_pieces_loads_back() {
        let mvcc = store();
        let dir = MemDir::new();
        // The segment a checkpoint covers up to exists when it is written.
        dir.create(&segment_name(3)).unwrap();
        let bytes = write(&dir, &mvcc, 3).unwrap();
        assert_eq!(bytes, encode(&mvcc, 3).len() as u64);
        let loaded = load_latest(&dir).unwrap().expect("a checkpoint");
        assert_eq!((loaded.first_segment, loaded.bytes), (3, bytes));
        same(&loaded.mvcc, &mvcc);
    }

    /// A snapshot taken while a compaction was still sweeping holds entries it drops;
    /// loading drops them.
    #[test]
    fn a_checkpoint_taken_mid_sweep_loads_compacted() {
        let mut mvcc = store();
        let at = mvcc.current_revision() - 3;
        let mut swept = mvcc.clone();
        swept.compact(at).unwrap();
        mvcc.begin_compaction(at).unwrap();
        assert!(mvcc.sweep_step(1), "more than one chunk to sweep");
        assert_ne!(mvcc.index(), swept.index());
        let (loaded, _) = decode(&encode(&mvcc, 1)).unwrap();
        assert!(!loaded.sweeping());
        same(&loaded, &swept);
    }
}
