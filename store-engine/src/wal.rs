//! The write-ahead log: numbered segments of framed records, appended by one writer.
//!
//! A segment `NNNNNNNNNNNNNNNN.seg` (hex id) starts with a [`Record::SegmentHeader`] and
//! is never written again once the next segment exists (the roll syncs it first). On
//! open, every segment is scanned and CRC-checked in order. A bad record in the last
//! segment with no valid record after it is a torn tail and is truncated away; any
//! other bad record is a [`Corruption`] naming the file and offset.

use std::io;

use crate::codec::{Record, SegmentHeader, decode_record, encode_record};
use crate::error::{Corruption, Error, TailRepair};
use crate::logfile::{LogDir, LogFile};

/// Default size at which the writer starts a new segment.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;
/// Bound on the size of a segment file accepted on open (a segment may overshoot its
/// roll size by one group commit).
pub const SEGMENT_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

pub fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// What the log replays into (the engine's state machine).
pub trait Replay {
    /// Applies one record in log order; an error is reported as corruption at it.
    fn replay(&mut self, record: Record) -> Result<(), String>;
    /// The current revision, for the header of a segment created on open.
    fn revision(&self) -> i64;
}

/// The appending end of the log.
pub struct Wal<D: LogDir> {
    dir: D,
    active: D::File,
    active_id: u64,
    segment_bytes_max: u64,
    /// Each segment's size as found on open (after repair), by id.
    opened_sizes: Vec<(u64, u64)>,
    repaired_tail: Option<TailRepair>,
}

impl<D: LogDir> Wal<D> {
    /// Removes segments below `first_segment` (covered by a checkpoint), replays the
    /// rest in order into `target`, truncates a torn tail, and opens the last segment
    /// for appending (creating `first_segment` if there is none).
    pub fn open(
        dir: D,
        segment_bytes_max: u64,
        first_segment: u64,
        target: &mut dyn Replay,
    ) -> Result<Wal<D>, Error> {
        assert!(segment_bytes_max > 0, "segment_bytes_max must be positive");
        let mut ids: Vec<u64> = dir
            .list()?
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .collect();
        ids.sort_unstable();
        for &id in ids.iter().filter(|&&id| id < first_segment) {
            dir.remove(&segment_name(id))?;
        }
        ids.retain(|&id| id >= first_segment);
        for (i, &id) in ids.iter().enumerate() {
            if id != first_segment + i as u64 {
                let file = segment_name(first_segment + i as u64);
                return Err(Corruption {
                    file,
                    offset: 0,
                    reason: "segment missing".into(),
                }
                .into());
            }
        }
        let Some(&last_id) = ids.last() else {
            let active = create_segment(&dir, first_segment, target.revision())?;
            return Ok(Wal {
                opened_sizes: vec![(first_segment, active.len())],
                repaired_tail: None,
                dir,
                active,
                active_id: first_segment,
                segment_bytes_max,
            });
        };
        let mut opened_sizes = Vec::with_capacity(ids.len());
        let mut repaired_tail = None;
        for &id in &ids {
            let (size, repair) = scan_segment(&dir, id, id == last_id, target)?;
            opened_sizes.push((id, size));
            repaired_tail = repaired_tail.or(repair);
        }
        let mut active = dir.open(&segment_name(last_id))?;
        if active.is_empty() {
            // The crash tore the header of a just-rolled segment: nothing was in it.
            let header = Record::SegmentHeader(SegmentHeader {
                segment_id: last_id,
                base_revision: target.revision(),
            });
            let mut buf = Vec::new();
            encode_record(&header, &mut buf);
            active.append(&buf)?;
            active.sync_data()?;
            opened_sizes.last_mut().expect("the last segment").1 = active.len();
        }
        Ok(Wal {
            dir,
            active,
            active_id: last_id,
            segment_bytes_max,
            opened_sizes,
            repaired_tail,
        })
    }

    /// The torn tail cut off on open, if there was one.
    pub fn repaired_tail(&self) -> Option<&TailRepair> {
        self.repaired_tail.as_ref()
    }

    pub fn active_id(&self) -> u64 {
        self.active_id
    }

    /// Bytes in the active segment, counting appends not yet synced.
    pub fn active_len(&self) -> u64 {
        self.active.len()
    }

    /// Each segment's size when the log was opened, by id.
    pub fn opened_sizes(&self) -> &[(u64, u64)] {
        &self.opened_sizes
    }

    /// Appends framed records. Starts a new segment first when the active one has
    /// reached its size; `revision` is the store's revision before these records.
    pub fn append(&mut self, records: &[u8], revision: i64) -> io::Result<()> {
        if self.active.len() >= self.segment_bytes_max {
            self.roll(revision)?;
        }
        self.active.append(records)
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.active.sync_data()
    }

    /// Hands every appended record to the OS (survives a process crash only).
    pub fn flush(&mut self) -> io::Result<()> {
        self.active.flush()
    }

    /// Seals the active segment (synced) and starts the next; returns the new id.
    /// Every record appended before the roll is in a segment below that id.
    pub fn roll(&mut self, revision: i64) -> io::Result<u64> {
        self.active.sync_data()?;
        let id = self.active_id + 1;
        self.active = create_segment(&self.dir, id, revision)?;
        self.active_id = id;
        Ok(id)
    }
}

fn create_segment<D: LogDir>(dir: &D, id: u64, revision: i64) -> io::Result<D::File> {
    let mut file = dir.create(&segment_name(id))?;
    let mut buf = Vec::new();
    encode_record(
        &Record::SegmentHeader(SegmentHeader {
            segment_id: id,
            base_revision: revision,
        }),
        &mut buf,
    );
    file.append(&buf)?;
    file.sync_data()?;
    dir.sync_dir()?;
    Ok(file)
}

/// Replays one segment; returns its size after any repair.
fn scan_segment<D: LogDir>(
    dir: &D,
    id: u64,
    is_last: bool,
    target: &mut dyn Replay,
) -> Result<(u64, Option<TailRepair>), Error> {
    let name = segment_name(id);
    let mut file = dir.open(&name)?;
    let corrupt = |offset: usize, reason: String| Corruption {
        file: name.clone(),
        offset: offset as u64,
        reason,
    };
    if file.len() > SEGMENT_FILE_BYTES_MAX {
        return Err(corrupt(0, format!("segment of {} bytes", file.len())).into());
    }
    let mut buf = vec![0; file.len() as usize];
    file.read_at(0, &mut buf)?;
    let mut offset = 0;
    while offset < buf.len() {
        match decode_record(&buf[offset..]) {
            Ok((record, n)) => {
                check_position(&record, id, offset).map_err(|r| corrupt(offset, r))?;
                target.replay(record).map_err(|r| corrupt(offset, r))?;
                offset += n;
            }
            Err(e) if is_last && !any_valid_record_from(&buf, offset + 1) => {
                // A torn tail: the last write never completed. Nothing after it was
                // acknowledged, because acknowledgement waits for the sync.
                file.truncate(offset as u64)?;
                let repair = TailRepair {
                    file: name,
                    offset: offset as u64,
                    bytes_dropped: (buf.len() - offset) as u64,
                    reason: format!("{e:?}"),
                };
                return Ok((offset as u64, Some(repair)));
            }
            Err(e) => return Err(corrupt(offset, format!("{e:?}")).into()),
        }
    }
    if buf.is_empty() && !is_last {
        return Err(corrupt(0, "empty sealed segment".into()).into());
    }
    Ok((buf.len() as u64, None))
}

fn check_position(record: &Record, id: u64, offset: usize) -> Result<(), String> {
    match (record, offset) {
        (Record::SegmentHeader(h), 0) if h.segment_id == id => Ok(()),
        (Record::SegmentHeader(h), 0) => Err(format!("header names segment {}", h.segment_id)),
        (_, 0) => Err("segment does not start with a header".into()),
        (Record::SegmentHeader(_), _) => Err("header inside a segment".into()),
        _ => Ok(()),
    }
}

/// Whether any offset from `from` on starts a valid record: if so, the damage is not a
/// torn tail but corruption before it.
fn any_valid_record_from(buf: &[u8], from: usize) -> bool {
    (from..buf.len()).any(|o| decode_record(&buf[o..]).is_ok())
}
