//! `bosun store` (the real binary) killed with SIGKILL while clients hammer it with
//! puts over gRPC, then restarted: every put a client saw acknowledged must be there,
//! and nothing a client did not send. Two rounds on one data directory, the first with
//! the std::fs log backend and the second with io_uring, so a restart also crosses
//! backends. Every wait is bounded; nothing is timed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_store_engine::proto::etcdserverpb as pb;
use pb::kv_client::KvClient;

const N_CLIENTS: usize = 8;
/// Acknowledged puts (all clients) after which the server is killed, per round.
const KILL_AFTER_ACKS: [usize; 2] = [200, 500];
/// Each client stops by itself after this many puts, should no kill come.
const N_PUTS_PER_CLIENT_MAX: usize = 20_000;
const WAIT: Duration = Duration::from_secs(30);

/// The server process, SIGKILLed on drop (also when an assertion fails).
struct Server(Child);

impl Server {
    fn kill_9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the data directory on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Path, backend: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["store", "--listen", "127.0.0.1:0", "--log-backend", backend])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::lines_of(child.stdout.take().unwrap());
    let first = lines
        .recv_timeout(WAIT)
        .expect("bosun store printed nothing");
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "unexpected line: {first}");
    (Server(child), format!("http://{addr}"))
}

/// One client: sequential puts of `r{round}/c{client}/{n}` = its own key, recording
/// each acknowledged key, until the server goes away.
async fn hammer(url: String, round: usize, client: usize, acked: Arc<Mutex<Vec<String>>>) {
    let mut kv = KvClient::connect(url).await.expect("connect");
    for n in 0..N_PUTS_PER_CLIENT_MAX {
        let key = format!("r{round}/c{client}/{n:06}");
        let put = pb::PutRequest {
            key: key.clone().into(),
            value: key.clone().into(),
            ..Default::default()
        };
        if kv.put(put).await.is_err() {
            return;
        }
        acked.lock().unwrap().push(key);
    }
}

/// Every key in the store, read back over gRPC.
async fn read_all(url: String) -> BTreeMap<String, String> {
    let mut kv = KvClient::connect(url).await.expect("connect after restart");
    let all = pb::RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let resp = kv.range(all).await.expect("range").into_inner();
    assert!(!resp.more);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    resp.kvs
        .into_iter()
        .map(|kv| (text(kv.key), text(kv.value)))
        .collect()
}

fn check(present: &BTreeMap<String, String>, acked: &[String]) {
    for key in acked {
        assert_eq!(present.get(key), Some(key), "acknowledged {key} lost");
    }
    // Nothing else: each client's keys are a gap-free run, at most one past its last
    // acknowledgement (the put in flight at the kill).
    let acked: BTreeSet<&String> = acked.iter().collect();
    let mut runs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in present {
        assert_eq!(key, value);
        let (client, n) = key.rsplit_once('/').unwrap();
        runs.entry(client).or_default().push(n);
    }
    for (client, ns) in runs {
        for (i, n) in ns.iter().enumerate() {
            assert_eq!(n.parse::<usize>().unwrap(), i, "gap in {client}");
        }
        let n_unacked = ns
            .iter()
            .filter(|n| !acked.contains(&format!("{client}/{n}")))
            .count();
        assert!(n_unacked <= 1, "{client}: {n_unacked} keys never sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_grpc_load_loses_no_acknowledged_put() {
    let dir = std::env::temp_dir().join(format!("bosun-store-kill9-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = TempDir(dir.clone());
    let mut acked_all = Vec::new();
    for (round, (backend, kill_after)) in ["std", "io-uring"]
        .into_iter()
        .zip(KILL_AFTER_ACKS)
        .enumerate()
    {
        let (server, url) = start(&dir, backend);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..N_CLIENTS)
            .map(|c| tokio::spawn(hammer(url.clone(), round, c, acked.clone())))
            .collect();
        // Wait (bounded) for enough acknowledgements, then SIGKILL mid-load.
        let deadline = tokio::time::Instant::now() + WAIT;
        while acked.lock().unwrap().len() < kill_after {
            assert!(tokio::time::Instant::now() < deadline, "load too slow");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill_9();
        for c in clients {
            tokio::time::timeout(WAIT, c)
                .await
                .expect("clients stop once the server is gone")
                .unwrap();
        }
        acked_all.extend(acked.lock().unwrap().drain(..));

        let (server, url) = start(&dir, backend);
        check(&read_all(url).await, &acked_all);
        server.kill_9();
    }
}
