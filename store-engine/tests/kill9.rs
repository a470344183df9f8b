//! kill -9 at an arbitrary moment: a child process writes from several threads and
//! prints each key once its write is acknowledged; the parent SIGKILLs it, reopens the
//! store and checks that every acknowledged write is there and nothing unexpected is.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bosun_store_engine::*;

const CHILD_ENV: &str = "BOSUN_STORE_KILL9_DIR";
const N_THREADS: usize = 4;
/// The child stops by itself after this many writes per thread, should no kill come.
const N_WRITES_PER_THREAD_MAX: usize = 5000;

/// Child mode only: writes until killed. A no-op when run as a normal test.
#[test]
fn kill9_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let engine = std::sync::Arc::new(
        Engine::open(StdDir::open(dir).unwrap(), EngineConfig::default()).unwrap(),
    );
    let threads: Vec<_> = (0..N_THREADS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                // Continue this thread's run where the last round's ended.
                let mine = RangeRequest {
                    key: format!("t{t}/").into(),
                    range_end: format!("t{t}0").into(),
                    count_only: true,
                    ..Default::default()
                };
                let start = engine.range(&mine).unwrap().count as usize;
                for i in start..start + N_WRITES_PER_THREAD_MAX {
                    let key = format!("t{t}/{i:06}");
                    engine
                        .put(PutRequest {
                            key: key.clone().into(),
                            value: key.clone().into(),
                            ..Default::default()
                        })
                        .unwrap();
                    println!("acked {key}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn kill_9_at_any_moment_loses_no_acknowledged_write() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bosun-store-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut acked: Vec<String> = Vec::new();
    // Kill after these many acknowledgements in successive rounds on the same store.
    for kill_after in [1, 37, 150] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut n_round = 0;
        while n_round < kill_after {
            let Some(line) = lines.next() else { break };
            if let Some(key) = line.unwrap().strip_prefix("acked ") {
                acked.push(key.to_string());
                n_round += 1;
            }
        }
        child.kill().unwrap();
        // Lines already in the pipe were acknowledged too.
        for line in lines {
            if let Some(key) = line.unwrap().strip_prefix("acked ") {
                acked.push(key.to_string());
            }
        }
        child.wait().unwrap();
        check(&dir, &acked);
    }
}

/// Removes the store directory even when an assertion fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(dir: &std::path::Path, acked: &[String]) {
    let engine = Engine::open(StdDir::open(dir).unwrap(), EngineConfig::default()).unwrap();
    let all = engine
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    let present: BTreeMap<String, String> = all
        .kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8(kv.key.to_vec()).unwrap(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        })
        .collect();
    for key in acked {
        assert_eq!(present.get(key), Some(key), "acknowledged {key} lost");
    }
    // Nothing else: each thread's keys are a gap-free run (one in flight at most).
    for (key, value) in &present {
        assert_eq!(key, value);
    }
    for t in 0..N_THREADS {
        let mine: Vec<&String> = present
            .keys()
            .filter(|k| k.starts_with(&format!("t{t}/")))
            .collect();
        for (i, key) in mine.iter().enumerate() {
            assert!(key.ends_with(&format!("/{i:06}")), "gap before {key}");
        }
    }
    assert_eq!(engine.current_revision() as usize, 1 + present.len());
}
