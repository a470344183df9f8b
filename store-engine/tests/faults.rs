//! The writer under control: writes queued behind a group share its next fdatasync,
//! and a failing fdatasync stops every later write without losing an acknowledged one
//! (fsyncgate: after a failed sync the file's state is unknown, so it is never
//! retried). Every wait is bounded; no timing is asserted.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bosun_store_engine::*;

const WAIT: Duration = Duration::from_secs(30);

fn put(key: &str) -> TxnRequest {
    TxnRequest {
        success: vec![RequestOp::Put(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            ..Default::default()
        })],
        ..Default::default()
    }
}

fn keys(engine: &Engine<impl LogDir + Clone>) -> Vec<String> {
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        keys_only: true,
        ..Default::default()
    };
    let kvs = engine.range(&all).unwrap().kvs;
    kvs.iter()
        .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
        .collect()
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// While the writer is held inside one group's commit, ten writers queue up; once it
/// is released they are committed as one group, with one fdatasync.
#[test]
fn writes_queued_behind_a_commit_share_the_next_fdatasync() {
    let engine = Arc::new(Engine::open(MemDir::new(), EngineConfig::default()).unwrap());
    let (entered_tx, entered_rx) = mpsc::sync_channel::<()>(1);
    let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
    let hold = Mutex::new(Some((entered_tx, release_rx)));
    engine.subscribe(Box::new(move |_| {
        // Only the first revision's hook holds the writer.
        if let Some((entered, release)) = hold.lock().unwrap().take() {
            entered.send(()).unwrap();
            release.recv_timeout(WAIT).expect("released");
        }
    }));
    let first = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.txn(put("first")).unwrap())
    };
    entered_rx
        .recv_timeout(WAIT)
        .expect("the first group commits");
    let queued: Vec<_> = (0..10)
        .map(|i| {
            let engine = engine.clone();
            std::thread::spawn(move || engine.txn(put(&format!("k{i}"))).unwrap())
        })
        .collect();
    wait_until("ten writes queued", || engine.stats().n_queued == 10);
    release_tx.send(()).unwrap();
    first.join().unwrap();
    for t in queued {
        t.join().unwrap();
    }
    let stats = engine.stats();
    assert_eq!(
        (
            stats.n_writes,
            stats.n_groups,
            stats.n_syncs,
            stats.n_queued
        ),
        (11, 2, 2, 0),
        "{stats:?}"
    );
    assert_eq!(keys(&engine).len(), 11);
}

/// A [`MemDir`] whose fdatasyncs fail while `fail_syncs` is set.
#[derive(Clone, Default)]
struct FaultyDir {
    inner: MemDir,
    fail_syncs: Arc<AtomicBool>,
}

struct FaultyFile {
    inner: MemFile,
    fail_syncs: Arc<AtomicBool>,
}

impl LogDir for FaultyDir {
    type File = FaultyFile;

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<FaultyFile> {
        Ok(self.wrap(self.inner.create(name)?))
    }
    fn open(&self, name: &str) -> io::Result<FaultyFile> {
        Ok(self.wrap(self.inner.open(name)?))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
}

impl FaultyDir {
    fn wrap(&self, inner: MemFile) -> FaultyFile {
        FaultyFile {
            inner,
            fail_syncs: self.fail_syncs.clone(),
        }
    }
}

impl LogFile for FaultyFile {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fdatasync failure"));
        }
        self.inner.sync_data()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}

/// A failed fdatasync fails its write and every later one, with the reason; reads go
/// on at the last durable revision; after a power cut every acknowledged write is
/// back and the failed one is not.
#[test]
fn a_failed_fdatasync_stops_writes_and_loses_nothing_acknowledged() {
    let dir = FaultyDir::default();
    let engine = Engine::open(dir.clone(), EngineConfig::default()).unwrap();
    engine.txn(put("a")).unwrap();
    let acked = engine.txn(put("b")).unwrap().header_revision;
    dir.fail_syncs.store(true, Ordering::SeqCst);
    match engine.txn(put("c")) {
        Err(Error::Poisoned(reason)) => {
            assert!(reason.contains("injected fdatasync failure"), "{reason}")
        }
        other => panic!("expected the write to fail, got {other:?}"),
    }
    // Never retried, even once the disk would take it again.
    dir.fail_syncs.store(false, Ordering::SeqCst);
    assert!(matches!(engine.txn(put("d")), Err(Error::Poisoned(_))));
    assert_eq!(engine.current_revision(), acked);
    assert_eq!(keys(&engine), ["a", "b"]);
    drop(engine);

    let after_power_cut = Engine::open(dir.inner.crash(0), EngineConfig::default()).unwrap();
    assert_eq!(after_power_cut.current_revision(), acked);
    assert_eq!(keys(&after_power_cut), ["a", "b"]);
    after_power_cut.txn(put("e")).unwrap();
}
