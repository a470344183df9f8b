//! etcdctl 3.4 against the etcd v3 gRPC service, in-process on 127.0.0.1:0.
//!
//! Every etcdctl run is bounded (`timeout`, `--command-timeout`); watches run as child
//! processes whose output is read with a bounded wait. No timing is asserted.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bosun_store_engine::*;

/// Upper bound on one etcdctl run and on waiting for watch output.
const WAIT_S: u64 = 30;

struct Server {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let (port_tx, port_rx) = channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
                let store =
                    Store::with_dirs(MemDir::new(), MemDir::new(), StoreConfig::default(), clock)
                        .unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                serve(Arc::new(store), listener, ServerConfig::default(), shutdown)
                    .await
                    .unwrap();
            });
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(WAIT_S))
            .expect("server started");
        Server {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg(WAIT_S.to_string())
            .arg("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=127.0.0.1:{}", self.port))
            .arg("--dial-timeout=10s")
            .arg("--command-timeout=20s")
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl runs (apt-get install etcd-client)");
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs etcdctl, expects success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {stderr}{stdout}"
        );
        stdout
    }

    /// Runs etcdctl, expects failure, returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "etcdctl {args:?} should fail: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// The store's revision, from a response header.
    fn revision(&self) -> i64 {
        let json = self.ok(&["get", "nothing-here", "-w", "json"]);
        json_field(&json, "\"revision\":") as i64
    }

    /// Starts `etcdctl watch ...`; its stdout lines come on the receiver.
    fn watch(&self, args: &[&str]) -> (Child, Receiver<String>) {
        let mut child = self
            .command(&[&["watch"], args].concat())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        (child, rx)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_field(json: &str, field: &str) -> i128 {
    let at = json
        .find(field)
        .unwrap_or_else(|| panic!("{field} in {json}"))
        + field.len();
    let digits: String = json[at..]
        .chars()
        .skip_while(|c| *c == '"')
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap()
}

/// Collects `n` lines, waiting at most [`WAIT_S`] in all.
fn lines(rx: &Receiver<String>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(WAIT_S);
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => got.push(l),
            Err(_) => panic!("wanted {n} lines, got {got:?}"),
        }
    }
    got
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn put_get_del_with_prefix_from_key_rev_keys_only_limit() {
    let s = Server::start();
    assert_eq!(s.ok(&["put", "foo", "bar"]), "OK\n");
    let r_first = s.revision();
    assert_eq!(s.ok(&["get", "foo"]), "foo\nbar\n");
    s.ok(&["put", "foo", "baz"]);
    s.ok(&["put", "foo1", "1"]);
    s.ok(&["put", "foo2", "2"]);
    s.ok(&["put", "zoo", "z"]);
    assert_eq!(
        s.ok(&["get", "foo", "--prefix"]),
        "foo\nbaz\nfoo1\n1\nfoo2\n2\n"
    );
    assert_eq!(
        s.ok(&["get", "foo", "--prefix", "--keys-only"]),
        "foo\n\nfoo1\n\nfoo2\n\n"
    );
    assert_eq!(
        s.ok(&["get", "foo", "--prefix", "--limit", "2"]),
        "foo\nbaz\nfoo1\n1\n"
    );
    assert_eq!(
        s.ok(&["get", "foo1", "--from-key"]),
        "foo1\n1\nfoo2\n2\nzoo\nz\n"
    );
    assert_eq!(
        s.ok(&["get", "foo", "--rev", &r_first.to_string()]),
        "foo\nbar\n"
    );
    assert_eq!(
        s.ok(&["get", "foo", "foo2"]),
        "foo\nbaz\nfoo1\n1\n",
        "range [foo, foo2)"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "foo",
            "--prefix",
            "--sort-by=VALUE",
            "--order=DESCEND"
        ]),
        "foo\nbaz\nfoo2\n2\nfoo1\n1\n"
    );
    // Headers: cluster and member ids, revision, raft_term 1.
    let json = s.ok(&["get", "foo", "-w", "json"]);
    assert_eq!(json_field(&json, "\"raft_term\":"), 1);
    assert_eq!(json_field(&json, "\"revision\":"), (r_first + 4).into());
    assert!(json_field(&json, "\"cluster_id\":") > 0);
    assert_eq!(s.ok(&["del", "foo"]), "1\n");
    assert_eq!(s.ok(&["get", "foo"]), "");
    assert_eq!(s.ok(&["del", "foo", "--prefix"]), "2\n");
    assert_eq!(s.ok(&["del", "a", "--from-key"]), "1\n");
    assert_eq!(s.ok(&["get", "", "--prefix"]), "");
}

#[test]
fn txn_from_stdin() {
    let s = Server::start();
    s.ok(&["put", "k", "v1"]);
    let txn = b"value(\"k\") = \"v1\"\n\nput k v2\nget k\n\nput k failed\n\n";
    assert_eq!(s.ok_in(&["txn"], Some(txn)), "SUCCESS\n\nOK\n\nk\nv2\n");
    // The compare now fails: the failure branch runs.
    assert_eq!(s.ok_in(&["txn"], Some(txn)), "FAILURE\n\nOK\n");
    assert_eq!(s.ok(&["get", "k"]), "k\nfailed\n");
    let txn = b"mod(\"k\") > \"0\"\nversion(\"missing\") = \"0\"\n\ndel k\nput other x\n\n\n";
    assert_eq!(s.ok_in(&["txn"], Some(txn)), "SUCCESS\n\n1\n\nOK\n");
    assert_eq!(s.ok(&["get", "", "--prefix"]), "other\nx\n");
}

#[test]
fn watch_live_from_a_revision_with_prev_kv() {
    let s = Server::start();
    s.ok(&["put", "/w/a", "0"]);
    let from = s.revision() + 1;
    let (child, rx) = s.watch(&["--prefix", "/w/", "--prev-kv", "--rev", &from.to_string()]);
    s.ok(&["put", "/w/a", "1"]);
    s.ok(&["put", "/other", "x"]);
    s.ok(&["del", "/w/a"]);
    let got = lines(&rx, 10);
    stop(child);
    let want = [
        "PUT", "/w/a", "0", "/w/a", "1", // prev kv, then kv
        "DELETE", "/w/a", "1", "/w/a", "",
    ];
    assert_eq!(got, want);
}

#[test]
fn watch_replays_history_then_compacted_revisions_are_refused() {
    let s = Server::start();
    let first = s.revision() + 1;
    for i in 0..5 {
        s.ok(&["put", "h", &i.to_string()]);
    }
    let (child, rx) = s.watch(&["h", "--rev", &first.to_string()]);
    let got = lines(&rx, 15);
    stop(child);
    let values: Vec<&str> = got.chunks(3).map(|c| c[2].as_str()).collect();
    assert_eq!(values, ["0", "1", "2", "3", "4"]);
    assert!(got.chunks(3).all(|c| c[0] == "PUT" && c[1] == "h"));

    let at = s.revision() - 1;
    assert_eq!(
        s.ok(&["compaction", &at.to_string()]),
        format!("compacted revision {at}\n")
    );
    let out = s.run(&["watch", "h", "--rev", &first.to_string()], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("required revision has been compacted"),
        "{}",
        text(&out.stderr)
    );
    // Reads below the compacted revision and repeated compactions are refused too.
    let err = s.fails(&["get", "h", "--rev", &first.to_string()], None);
    assert!(
        err.contains("etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    let err = s.fails(&["compaction", &at.to_string()], None);
    assert!(
        err.contains("etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    let err = s.fails(&["compaction", "100000"], None);
    assert!(
        err.contains("etcdserver: mvcc: required revision is a future revision"),
        "{err}"
    );
    let err = s.fails(&["get", "h", "--rev", "100000"], None);
    assert!(
        err.contains("etcdserver: mvcc: required revision is a future revision"),
        "{err}"
    );
    // A physical compaction answers once the compacted entries are dropped; the
    // newest value stays.
    s.ok(&["put", "h", "5"]);
    let at = s.revision();
    assert_eq!(
        s.ok(&["compaction", "--physical", &at.to_string()]),
        format!("compacted revision {at}\n")
    );
    assert_eq!(s.ok(&["get", "h", "--print-value-only"]), "5\n");
}

fn lease_id(granted: &str) -> String {
    // "lease 694d7b3ce85a2a04 granted with TTL(100s)"
    let id = granted.split_whitespace().nth(1).expect("lease id");
    assert!(granted.contains("granted with TTL(100s)"), "{granted}");
    id.to_string()
}

#[test]
fn leases_grant_attach_keep_alive_ttl_list_revoke() {
    let s = Server::start();
    let id = lease_id(&s.ok(&["lease", "grant", "100"]));
    s.ok(&["put", "--lease", &id, "l1", "a"]);
    s.ok(&["put", "--lease", &id, "l2", "b"]);
    s.ok(&["put", "plain", "c"]);
    let ttl = s.ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(100s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.contains("attached keys([l1 l2])"), "{ttl}");
    let ka = s.ok(&["lease", "keep-alive", "--once", &id]);
    assert_eq!(ka, format!("lease {id} keepalived with TTL(100)\n"));
    assert_eq!(s.ok(&["lease", "list"]), format!("found 1 leases\n{id}\n"));
    let json = s.ok(&["get", "l1", "-w", "json"]);
    assert_eq!(
        json_field(&json, "\"lease\":"),
        i128::from_str_radix(&id, 16).unwrap()
    );

    let before = s.revision();
    assert_eq!(
        s.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(
        s.revision(),
        before + 1,
        "both keys deleted in one revision"
    );
    assert_eq!(s.ok(&["get", "", "--prefix", "--keys-only"]), "plain\n\n");
    assert_eq!(
        s.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(s.ok(&["lease", "list"]), "found 0 leases\n");
}

#[test]
fn unknown_leases_are_refused_and_change_nothing() {
    let s = Server::start();
    let before = s.revision();
    let err = s.fails(&["put", "--lease", "1234abcd", "k", "v"], None);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let err = s.fails(&["lease", "revoke", "1234abcd"], None);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let txn = b"\nput --lease=1234abcd k v\n\n\n";
    let err = s.fails(&["txn"], Some(txn));
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    assert_eq!(s.revision(), before);
    assert_eq!(s.ok(&["get", "k"]), "");
    // As etcd, only the branch taken must name existing leases: here the compare holds
    // ("k" is absent), so the failure branch's unknown lease does not matter.
    let txn = b"version(\"k\") = \"0\"\n\nput k v\n\nput --lease=1234abcd k v\n\n";
    assert_eq!(s.ok_in(&["txn"], Some(txn)), "SUCCESS\n\nOK\n");
    assert_eq!(s.ok(&["get", "k"]), "k\nv\n");
}

#[test]
fn bad_requests_get_etcd_errors_and_change_nothing() {
    let s = Server::start();
    s.ok(&["put", "a", "1"]);
    let before = s.revision();
    // A value over the 1.5 MiB request limit (from stdin: too big for argv).
    let big = vec![b'x'; MAX_REQUEST_BYTES + 1024];
    let err = s.fails(&["put", "big"], Some(&big));
    assert!(err.contains("etcdserver: request is too large"), "{err}");
    // 129 operations in one branch.
    let mut txn = String::from("\n");
    for i in 0..=MAX_TXN_OPS {
        txn.push_str(&format!("put k{i} v\n"));
    }
    txn.push_str("\n\n");
    let err = s.fails(&["txn"], Some(txn.as_bytes()));
    assert!(
        err.contains("etcdserver: too many operations in txn request"),
        "{err}"
    );
    // The same key twice in one branch.
    let err = s.fails(&["txn"], Some(b"\nput a 2\nput a 3\n\n\n"));
    assert!(
        err.contains("etcdserver: duplicate key given in txn request"),
        "{err}"
    );
    // A range end that sorts before the key.
    let err = s.fails(&["get", "b", "a"], None);
    assert!(err.contains("range end sorts before the key"), "{err}");
    let err = s.fails(&["del", "b", "a"], None);
    assert!(err.contains("range end sorts before the key"), "{err}");
    assert_eq!(s.revision(), before);
    assert_eq!(s.ok(&["get", "", "--prefix"]), "a\n1\n");
}

#[test]
fn endpoint_status() {
    let s = Server::start();
    s.ok(&["put", "a", "1"]);
    let out = s.ok(&["endpoint", "status"]);
    assert!(out.starts_with(&format!("127.0.0.1:{}, ", s.port)), "{out}");
    assert!(out.contains(", 3.4.0, "), "{out}");
    let json = s.ok(&["endpoint", "status", "-w", "json"]);
    assert_eq!(json_field(&json, "\"raftTerm\":"), 1);
    assert_eq!(json_field(&json, "\"revision\":"), 2);
}
