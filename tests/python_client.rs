//! The official Kubernetes Python client (`pip install kubernetes`) against `bosun up`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn python_client_creates_lists_watches_patches_and_deletes() {
    let c = common::Cluster::up();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_e2e.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(&c.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 on PATH");
    let out = common::wait_bounded(child, Duration::from_secs(120), "python client test");
    assert!(
        out.status.success(),
        "python client test failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}
