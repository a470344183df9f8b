//! `bosun store` as a process, driven by etcdctl 3.4: the data survives a restart, and
//! a torn tail left in its log is cut off and reported.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn start(dir: &std::path::Path) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["store", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep draining both so the server never writes into a closed pipe.
    let lines = common::lines_of(child.stdout.take().unwrap());
    let errors = common::lines_of(child.stderr.take().unwrap());
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("bosun store printed nothing");
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected first line: {first}"
    );
    (child, addr, errors)
}

fn etcdctl(addr: &str, args: &[&str]) -> String {
    let child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl on PATH (scripts/test-all installs etcd-client)");
    let out = common::wait_bounded(child, Duration::from_secs(30), "etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = common::wait_bounded_child(&mut child, Duration::from_secs(10));
    assert!(out, "bosun store did not stop on SIGINT");
}

#[test]
fn etcdctl_round_trip_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("bosun-store-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (child, addr, _) = start(&dir);
    assert_eq!(etcdctl(&addr, &["put", "/registry/a", "1"]).trim(), "OK");
    assert_eq!(etcdctl(&addr, &["put", "/registry/b", "2"]).trim(), "OK");
    assert_eq!(
        etcdctl(
            &addr,
            &["get", "--prefix", "/registry/", "--print-value-only"]
        ),
        "1\n2\n"
    );
    stop(child);

    // A write torn by a crash: the start of a record frame announcing more bytes
    // than follow.
    let segment = dir.join(format!("{:016x}.seg", 0));
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut log, &[200, 0, 0, 0, 0xde, 0xad]).unwrap();
    drop(log);

    let (child, addr, errors) = start(&dir);
    assert_eq!(
        etcdctl(&addr, &["get", "/registry/b", "--print-value-only"]),
        "2\n"
    );
    // The warning comes before the address line, so it is already in the pipe.
    let warning = std::iter::from_fn(|| errors.recv_timeout(Duration::from_secs(10)).ok())
        .find(|l| l.contains("store log repaired on open"))
        .expect("the repair is reported");
    assert!(
        warning.contains("cut a torn tail of 6 bytes off 0000000000000000.seg"),
        "{warning}"
    );
    assert!(etcdctl(&addr, &["endpoint", "status"]).contains(&addr));
    stop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}
