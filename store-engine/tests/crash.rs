//! Crash tests on real files: the log cut at every record boundary and inside every
//! record, and bytes corrupted in every record. What was acknowledged must come back
//! and nothing else; damage that a torn write cannot explain must be a named error.
//! Every test runs once per host log backend (std::fs and io_uring).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bosun_store_engine::codec::{RECORD_HEADER_BYTES, decode_record};
use bosun_store_engine::wal::segment_name;
use bosun_store_engine::*;

/// The store directory `path` over backend `b`.
fn host_dir(path: &Path, b: LogBackend) -> HostDir {
    HostDir::open(path, b).unwrap()
}

/// One `#[test]` per backend for each test function.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod std_fs {
            $(#[test]
            fn $name() {
                super::$name(bosun_store_engine::LogBackend::Std)
            })*
        }
        mod io_uring {
            $(#[test]
            fn $name() {
                super::$name(bosun_store_engine::LogBackend::IoUring)
            })*
        }
    };
}

per_backend!(
    gc_after_compaction_reclaims_disk_space,
    truncation_at_every_boundary_and_inside_every_record_keeps_the_complete_prefix,
    a_restart_after_repair_keeps_writes_made_after_it,
    corruption_before_the_tail_is_an_error_naming_segment_and_offset,
    damage_to_a_sealed_segment_or_a_checkpoint_is_an_error,
    checkpoint_removes_covered_segments_and_restart_replays_the_rest,
    concurrent_writers_share_syncs_and_every_acknowledged_write_survives
);

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("bosun-store-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(key: &str, value: &str) -> TxnRequest {
    let p = PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    };
    TxnRequest {
        success: vec![RequestOp::Put(p)],
        ..Default::default()
    }
}

fn del(key: &str) -> TxnRequest {
    let d = DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    };
    TxnRequest {
        success: vec![RequestOp::DeleteRange(d)],
        ..Default::default()
    }
}

/// A mix of puts, overwrites, deletes and a multi-op txn: every one writes.
fn workload() -> Vec<TxnRequest> {
    let mut w = Vec::new();
    for i in 0..12 {
        w.push(put(&format!("k{}", i % 5), &format!("v{i}")));
        if i % 4 == 3 {
            w.push(del(&format!("k{}", i % 5)));
        }
    }
    w.push(TxnRequest {
        success: vec![
            RequestOp::Put(PutRequest {
                key: "t1".into(),
                value: "x".into(),
                ..Default::default()
            }),
            RequestOp::Put(PutRequest {
                key: "t2".into(),
                value: "y".into(),
                lease: 7,
                ..Default::default()
            }),
        ],
        ..Default::default()
    });
    w
}

/// The state after the first `n` writes, computed by the pure core.
fn expected(writes: &[TxnRequest], n: usize) -> Mvcc {
    let mut m = Mvcc::new();
    for w in &writes[..n] {
        assert!(m.apply(w).unwrap().batch.is_some());
    }
    m
}

fn all_keys() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

fn write_all(b: LogBackend, path: &Path, writes: &[TxnRequest], config: EngineConfig) {
    let engine = Engine::open(host_dir(path, b), config).unwrap();
    for w in writes {
        engine.txn(w.clone()).unwrap();
    }
}

/// Offsets at which each record of a segment starts, and its end.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut off = 0;
    while off < bytes.len() {
        let (_, n) = decode_record(&bytes[off..]).expect("valid log");
        off += n;
        starts.push(off);
    }
    starts
}

/// Opens a copy of `src` whose only segment holds `bytes`.
fn open_with_segment(b: LogBackend, bytes: &[u8]) -> (TempDir, Result<Engine<HostDir>, Error>) {
    let dir = TempDir::new("case");
    fs::write(dir.0.join(segment_name(0)), bytes).unwrap();
    let engine = Engine::open(host_dir(&dir.0, b), EngineConfig::default());
    (dir, engine)
}

fn assert_state(engine: &Engine<HostDir>, want: &Mvcc, what: &str) {
    assert_eq!(engine.current_revision(), want.current_revision(), "{what}");
    let visible = want.current_revision();
    assert_eq!(
        engine.range(&all_keys()).unwrap(),
        want.range(&all_keys(), visible).unwrap(),
        "{what}"
    );
}

fn truncation_at_every_boundary_and_inside_every_record_keeps_the_complete_prefix(b: LogBackend) {
    let src = TempDir::new("trunc");
    let writes = workload();
    write_all(b, &src.0, &writes, EngineConfig::default());
    let bytes = fs::read(src.0.join(segment_name(0))).unwrap();
    let starts = record_starts(&bytes);
    // starts[0] = header, starts[1] = first write record, ..., last = file end.
    assert_eq!(starts.len(), writes.len() + 2);
    let mut n_cases = 0;
    for (i, pair) in starts.windows(2).enumerate() {
        let (start, end) = (pair[0], pair[1]);
        let mid = [
            start,
            start + 1,
            start + RECORD_HEADER_BYTES,
            (start + end) / 2,
            end - 1,
        ];
        for cut in mid.into_iter().filter(|&c| c >= start && c < end) {
            let (_dir, engine) = open_with_segment(b, &bytes[..cut]);
            let engine = engine.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            // Record i is incomplete: writes before it survive (record 0 is the header).
            assert_state(
                &engine,
                &expected(&writes, i.saturating_sub(1)),
                &format!("cut at {cut}"),
            );
            // A cut inside a record is reported; one on a boundary has nothing to cut.
            let repair = engine.stats().repaired_tail;
            if cut == start {
                assert_eq!(repair, None, "cut at {cut}");
            } else {
                let repair = repair.unwrap_or_else(|| panic!("cut at {cut}: no repair reported"));
                assert_eq!(
                    (repair.file.as_str(), repair.offset, repair.bytes_dropped),
                    (segment_name(0).as_str(), start as u64, (cut - start) as u64),
                    "cut at {cut}"
                );
            }
            // The repaired log takes new writes, which survive a restart.
            engine.txn(put("after", "crash")).unwrap();
            n_cases += 1;
        }
    }
    let (_dir, engine) = open_with_segment(b, &bytes);
    assert_state(
        &engine.unwrap(),
        &expected(&writes, writes.len()),
        "whole log",
    );
    assert!(n_cases > 4 * writes.len(), "{n_cases} cases");
}

fn a_restart_after_repair_keeps_writes_made_after_it(b: LogBackend) {
    let src = TempDir::new("repair");
    let writes = workload();
    write_all(b, &src.0, &writes, EngineConfig::default());
    let path = src.0.join(segment_name(0));
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    {
        let engine = Engine::open(host_dir(&src.0, b), EngineConfig::default()).unwrap();
        engine.txn(put("after", "crash")).unwrap();
    }
    let engine = Engine::open(host_dir(&src.0, b), EngineConfig::default()).unwrap();
    let mut want = expected(&writes, writes.len() - 1);
    want.apply(&put("after", "crash")).unwrap();
    assert_state(&engine, &want, "after repair and restart");
}

fn corruption_before_the_tail_is_an_error_naming_segment_and_offset(b: LogBackend) {
    let src = TempDir::new("corrupt");
    let writes = workload();
    write_all(b, &src.0, &writes, EngineConfig::default());
    let bytes = fs::read(src.0.join(segment_name(0))).unwrap();
    let starts = record_starts(&bytes);
    let n_records = starts.len() - 1;
    for i in 0..n_records {
        let (start, end) = (starts[i], starts[i + 1]);
        for at in [start, start + 4, start + 8, (start + end) / 2, end - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5a;
            let (_dir, result) = open_with_segment(b, &bad);
            if i == n_records - 1 {
                // The last record: indistinguishable from a torn write, truncated.
                let engine = result.unwrap_or_else(|e| panic!("byte {at}: {e}"));
                let repair = engine.stats().repaired_tail.expect("the cut is reported");
                assert_eq!(
                    (repair.offset, repair.bytes_dropped),
                    (start as u64, (end - start) as u64)
                );
                assert_state(
                    &engine,
                    &expected(&writes, writes.len() - 1),
                    &format!("byte {at}"),
                );
            } else {
                match result {
                    Err(Error::Corruption(c)) => {
                        assert_eq!(c.file, segment_name(0));
                        assert_eq!(c.offset, start as u64, "byte {at} of record {i}");
                    }
                    Err(e) => panic!("byte {at}: unexpected error {e}"),
                    Ok(_) => panic!("byte {at} of record {i}: corruption was accepted"),
                }
            }
        }
    }
}

fn damage_to_a_sealed_segment_or_a_checkpoint_is_an_error(b: LogBackend) {
    let config = EngineConfig {
        segment_bytes_max: 64,
        ..EngineConfig::default()
    };
    let src = TempDir::new("sealed");
    write_all(b, &src.0, &workload(), config.clone());
    // Cutting the end of a sealed segment is not a torn tail: later segments exist.
    let first = src.0.join(segment_name(0));
    let bytes = fs::read(&first).unwrap();
    fs::write(&first, &bytes[..bytes.len() - 1]).unwrap();
    match Engine::open(host_dir(&src.0, b), config.clone()) {
        Err(Error::Corruption(c)) => assert_eq!(c.file, segment_name(0)),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    fs::write(&first, &bytes).unwrap();
    // A missing segment in the middle is an error too.
    let second = src.0.join(segment_name(1));
    let kept = fs::read(&second).unwrap();
    fs::remove_file(&second).unwrap();
    assert!(matches!(
        Engine::open(host_dir(&src.0, b), config.clone()),
        Err(Error::Corruption(_))
    ));
    fs::write(&second, kept).unwrap();

    let engine = Engine::open(host_dir(&src.0, b), config.clone()).unwrap();
    let first_live = engine.checkpoint().unwrap();
    drop(engine);
    let ckpt = src.0.join(format!("{first_live:016x}.ckpt"));
    let mut bytes = fs::read(&ckpt).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&ckpt, &bytes).unwrap();
    match Engine::open(host_dir(&src.0, b), config) {
        Err(Error::Corruption(c)) => assert_eq!(c.file, format!("{first_live:016x}.ckpt")),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

fn checkpoint_removes_covered_segments_and_restart_replays_the_rest(b: LogBackend) {
    let config = EngineConfig {
        segment_bytes_max: 64,
        ..EngineConfig::default()
    };
    let src = TempDir::new("ckpt");
    let writes = workload();
    let (head, tail) = writes.split_at(10);
    {
        let engine = Engine::open(host_dir(&src.0, b), config.clone()).unwrap();
        for w in head {
            engine.txn(w.clone()).unwrap();
        }
        engine.compact(5).unwrap();
        let first_live = engine.checkpoint().unwrap();
        let names = host_dir(&src.0, b).list().unwrap();
        assert_eq!(
            names,
            vec![format!("{first_live:016x}.ckpt"), segment_name(first_live)]
        );
        for w in tail {
            engine.txn(w.clone()).unwrap();
        }
    }
    let engine = Engine::open(host_dir(&src.0, b), config).unwrap();
    let mut want = expected(&writes, writes.len());
    want.compact(5).unwrap();
    assert_state(&engine, &want, "checkpoint + tail");
    assert_eq!(engine.compacted_revision(), 5);
    let old = RangeRequest {
        revision: 4,
        ..all_keys()
    };
    assert!(matches!(
        engine.range(&old),
        Err(Error::Request(RequestError::Compacted { .. }))
    ));
}

fn concurrent_writers_share_syncs_and_every_acknowledged_write_survives(b: LogBackend) {
    const N_THREADS: usize = 8;
    const N_PER_THREAD: usize = 40;
    let src = TempDir::new("group");
    let engine = Arc::new(Engine::open(host_dir(&src.0, b), EngineConfig::default()).unwrap());
    let threads: Vec<_> = (0..N_THREADS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for i in 0..N_PER_THREAD {
                    engine.txn(put(&format!("t{t}/{i:03}"), "v")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = engine.stats();
    assert_eq!(stats.n_writes as usize, N_THREADS * N_PER_THREAD);
    assert_eq!(stats.n_syncs, stats.n_groups, "one fdatasync per group");
    eprintln!("{} writes in {} fdatasyncs", stats.n_writes, stats.n_syncs);
    drop(engine);
    let engine = Engine::open(host_dir(&src.0, b), EngineConfig::default()).unwrap();
    let resp = engine.range(&all_keys()).unwrap();
    assert_eq!(resp.count as usize, N_THREADS * N_PER_THREAD);
    assert_eq!(
        engine.current_revision() as usize,
        1 + N_THREADS * N_PER_THREAD
    );
}

/// Bytes of every file in `path` (the KV log: segments and checkpoints).
fn dir_bytes(path: &Path) -> u64 {
    fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Garbage collection: overwrites make most of the log dead once compacted; the
/// background collection then rewrites the live entries once (a checkpoint) and deletes
/// the segments, so the bytes on disk fall to about the live data. Nothing
/// acknowledged is lost across the restart.
fn gc_after_compaction_reclaims_disk_space(b: LogBackend) {
    const N_KEYS: usize = 50;
    const N_ROUNDS: usize = 20;
    let config = EngineConfig {
        segment_bytes_max: 16 * 1024,
        // Only garbage collection checkpoints in this test.
        checkpoint_after_bytes: 0,
        gc_min_dead_bytes: 64 * 1024,
        ..EngineConfig::default()
    };
    let src = TempDir::new("gc");
    let engine = Engine::open(host_dir(&src.0, b), config.clone()).unwrap();
    let value = |round: usize| format!("{round:0>200}");
    let mut writes = Vec::new();
    for round in 0..N_ROUNDS {
        for k in 0..N_KEYS {
            writes.push(put(&format!("k{k:03}"), &value(round)));
        }
    }
    for w in &writes {
        engine.txn(w.clone()).unwrap();
    }
    let stats = engine.stats();
    assert_eq!(stats.n_gc_runs, 0, "nothing is dead before a compaction");
    let before = dir_bytes(&src.0);
    assert_eq!(
        stats.n_disk_bytes, before,
        "the engine counts what is on disk"
    );
    let n_segments_before = fs::read_dir(&src.0).unwrap().count();
    assert!(n_segments_before > 10, "{n_segments_before} segments");

    engine.compact(engine.current_revision()).unwrap();
    // The compaction's sweep, once done, finds most of the log dead and starts the collection;
    // wait (bounded) for the background checkpoint to land.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine.stats().n_checkpoints == 0 {
        assert!(std::time::Instant::now() < deadline, "GC did not finish");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let stats = engine.stats();
    assert_eq!(stats.n_gc_runs, 1);
    assert_eq!(stats.last_checkpoint_error, None);
    let after = dir_bytes(&src.0);
    assert_eq!(stats.n_disk_bytes, after);
    let live_bytes = (N_KEYS * (200 + 4)) as u64;
    eprintln!("{b}: {before} bytes on disk before compaction, {after} after GC, {live_bytes} live");
    assert!(
        after < before / 10,
        "space reclaimed: {before} -> {after} bytes"
    );
    assert!(after >= live_bytes, "the live data is still on disk");

    // Writes after the collection land in the fresh segment; all survive a restart.
    engine.txn(put("after", "gc")).unwrap();
    drop(engine);
    let engine = Engine::open(host_dir(&src.0, b), config).unwrap();
    let mut want = expected(&writes, writes.len());
    want.compact(want.current_revision()).unwrap();
    want.apply(&put("after", "gc")).unwrap();
    assert_state(&engine, &want, "after GC and restart");
}
