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

/// Encodes `mvcc` as the state after every segment below `first_segment`.
pub fn encode(mvcc: &Mvcc, first_segment: u64) -> Vec<u8> {
    let mut out = vec![0; HEADER_BYTES];
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
        }
    }
    let body_len = (out.len() - HEADER_BYTES) as u64;
    let crc = crc32c::crc32c(&out[HEADER_BYTES..]);
    out[0..8].copy_from_slice(&FORMAT_MAGIC.to_le_bytes());
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&body_len.to_le_bytes());
    out[20..24].copy_from_slice(&crc.to_le_bytes());
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
pub fn write<D: LogDir>(dir: &D, mvcc: &Mvcc, first_segment: u64) -> Result<u64, Error> {
    let buf = encode(mvcc, first_segment);
    let name = checkpoint_name(first_segment);
    let tmp = format!("{name}.tmp");
    if dir.list()?.contains(&tmp) {
        dir.remove(&tmp)?;
    }
    let mut file = dir.create(&tmp)?;
    file.append(&buf)?;
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
    Ok(buf.len() as u64)
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
