//! kill -9 at an arbitrary moment: a child process writes from several threads and
//! prints each key once its write is acknowledged, while one thread compacts so that
//! garbage collection rewrites the log in the background; the parent SIGKILLs it,
//! reopens the store and checks that every acknowledged write is there and nothing
//! unexpected is. Runs once per host log backend.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bosun_store_engine::*;

const CHILD_DIR_ENV: &str = "BOSUN_STORE_KILL9_DIR";
const CHILD_BACKEND_ENV: &str = "BOSUN_STORE_KILL9_BACKEND";
const N_THREADS: usize = 4;
/// The child stops by itself after this many writes per thread, should no kill come.
const N_WRITES_PER_THREAD_MAX: usize = 5000;
/// Thread 0 compacts to the current revision after every this many of its writes.
const COMPACT_EVERY_WRITES: usize = 50;
/// Each write also overwrites its thread's hot key with this many bytes: the dead
/// data garbage collection reclaims.
const HOT_VALUE_BYTES: usize = 512;

/// Small segments and a low collection threshold: GC runs many times per round.
fn config() -> EngineConfig {
    EngineConfig {
        segment_bytes_max: 32 * 1024,
        checkpoint_after_bytes: 0,
        gc_min_dead_bytes: 64 * 1024,
        ..EngineConfig::default()
    }
}

fn open(dir: &std::path::Path, backend: LogBackend) -> Engine<HostDir> {
    Engine::open(HostDir::open(dir, backend).unwrap(), config()).unwrap()
}

/// Child mode only: writes until killed. A no-op when run as a normal test.
#[test]
fn kill9_child() {
    let (Ok(dir), Ok(backend)) = (
        std::env::var(CHILD_DIR_ENV),
        std::env::var(CHILD_BACKEND_ENV),
    ) else {
        return;
    };
    let engine = std::sync::Arc::new(open(dir.as_ref(), backend.parse().unwrap()));
    let threads: Vec<_> = (0..N_THREADS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || write_until_killed(&engine, t))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn write_until_killed(engine: &Engine<HostDir>, t: usize) {
    // Continue this thread's run where the last round's ended.
    let mine = RangeRequest {
        key: format!("t{t}/").into(),
        range_end: format!("t{t}0").into(),
        count_only: true,
        ..Default::default()
    };
    let start = engine.range(&mine).unwrap().count as usize;
    let mut n_checkpoints = engine.stats().n_checkpoints;
    for i in start..start + N_WRITES_PER_THREAD_MAX {
        let key = format!("t{t}/{i:06}");
        let put = |key: String, value: Vec<u8>| {
            RequestOp::Put(PutRequest {
                key: key.into(),
                value,
                ..Default::default()
            })
        };
        let txn = TxnRequest {
            success: vec![
                put(key.clone(), key.clone().into()),
                put(format!("hot{t}"), vec![b'h'; HOT_VALUE_BYTES]),
            ],
            ..Default::default()
        };
        engine.txn(txn).unwrap();
        println!("acked {key}");
        if t == 0 && i % COMPACT_EVERY_WRITES == 0 {
            match engine.compact(engine.current_revision()) {
                Ok(_) | Err(Error::Request(RequestError::Compacted { .. })) => {}
                Err(e) => panic!("compact: {e}"),
            }
        }
        let stats = engine.stats();
        assert_eq!(stats.last_checkpoint_error, None);
        if t == 0 && stats.n_checkpoints > n_checkpoints {
            n_checkpoints = stats.n_checkpoints;
            println!("gc {}", stats.n_gc_runs);
        }
    }
}

mod std_fs {
    #[test]
    fn kill_9_at_any_moment_loses_no_acknowledged_write() {
        super::kill_9_at_any_moment(bosun_store_engine::LogBackend::Std);
    }
}

mod io_uring {
    #[test]
    fn kill_9_at_any_moment_loses_no_acknowledged_write() {
        super::kill_9_at_any_moment(bosun_store_engine::LogBackend::IoUring);
    }
}

fn kill_9_at_any_moment(backend: LogBackend) {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "bosun-store-kill9-{backend}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut seen = Seen::default();
    // Kill after these many acknowledgements in successive rounds on the same store;
    // the last round also waits until a garbage collection has completed.
    let rounds = [1, 37, 150];
    for (round, kill_after) in rounds.into_iter().enumerate() {
        let last = round == rounds.len() - 1;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, &dir)
            .env(CHILD_BACKEND_ENV, backend.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let n_before = seen.acked.len();
        while seen.acked.len() - n_before < kill_after || (last && seen.n_gc == 0) {
            // The child ends by itself after a bounded number of writes.
            let Some(line) = lines.next() else { break };
            seen.line(&line.unwrap());
        }
        child.kill().unwrap();
        // Lines already in the pipe were acknowledged too.
        for line in lines {
            seen.line(&line.unwrap());
        }
        child.wait().unwrap();
        check(&dir, backend, &seen.acked);
    }
    assert!(seen.n_gc > 0, "garbage collection ran under the load");
}

/// What the child reported.
#[derive(Default)]
struct Seen {
    acked: Vec<String>,
    n_gc: usize,
}

impl Seen {
    fn line(&mut self, line: &str) {
        if let Some(key) = line.strip_prefix("acked ") {
            self.acked.push(key.to_string());
        } else if line.starts_with("gc ") {
            self.n_gc += 1;
        }
    }
}

/// Removes the store directory even when an assertion fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(dir: &std::path::Path, backend: LogBackend, acked: &[String]) {
    let engine = open(dir, backend);
    let all = engine
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    let present: BTreeMap<String, Vec<u8>> = all
        .kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8(kv.key.to_vec()).unwrap(),
                kv.value.to_vec(),
            )
        })
        .collect();
    for key in acked {
        assert_eq!(
            present.get(key).map(Vec::as_slice),
            Some(key.as_bytes()),
            "acknowledged {key} lost"
        );
    }
    // Nothing else: each thread's keys are a gap-free run (one in flight at most).
    let mut n_keys = 0;
    for t in 0..N_THREADS {
        let mine: Vec<(&String, &Vec<u8>)> = present
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("t{t}/")))
            .collect();
        for (i, (key, value)) in mine.iter().enumerate() {
            assert_eq!(key.as_bytes(), &value[..]);
            assert!(key.ends_with(&format!("/{i:06}")), "gap before {key}");
        }
        n_keys += mine.len();
        if !mine.is_empty() {
            let hot = &present[&format!("hot{t}")];
            assert_eq!(hot, &vec![b'h'; HOT_VALUE_BYTES]);
        }
    }
    assert_eq!(
        present.len(),
        n_keys + present.keys().filter(|k| k.starts_with("hot")).count()
    );
    // One revision per acknowledged (or in-flight) txn.
    assert_eq!(engine.current_revision() as usize, 1 + n_keys);
}
