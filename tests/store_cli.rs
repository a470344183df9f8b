//! `bosun store` as a process, driven by etcdctl 3.4: the data survives a restart.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["store", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep draining stdout so the server never writes into a closed pipe.
    let lines = common::lines_of(child.stdout.take().unwrap());
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("bosun store printed nothing");
    let addr = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected first line: {first}"
    );
    (child, addr)
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
    let (child, addr) = start(&dir);
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

    let (child, addr) = start(&dir);
    assert_eq!(
        etcdctl(&addr, &["get", "/registry/b", "--print-value-only"]),
        "2\n"
    );
    assert!(etcdctl(&addr, &["endpoint", "status"]).contains(&addr));
    stop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}
