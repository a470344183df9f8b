//! Shared end-to-end harness: a real `bosun up` process on a free loopback port, in its
//! own temporary data directory, stopped and removed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a started cluster may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Bound on any single kubectl invocation.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cluster {
    child: Child,
    /// Extra `bosun up` arguments, kept for restarts.
    args: Vec<String>,
    pub dir: PathBuf,
    pub url: String,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts `bosun up` without its scheduler (pods stay unbound, so deletes are
    /// immediate: there is no kubelet to finish a bound pod's graceful deletion) and
    /// waits until it is ready.
    pub fn up() -> Cluster {
        Self::up_with(&["--no-scheduler"])
    }

    /// Starts `bosun up` with its in-process scheduler.
    pub fn up_with_scheduler() -> Cluster {
        Self::up_with(&[])
    }

    fn up_with(args: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "bosun-e2e-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_in(dir, args.iter().map(|a| a.to_string()).collect())
    }

    /// Stops the cluster (Ctrl-C path) and starts it again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        let dir = std::mem::take(&mut self.dir);
        let fresh = Self::start_in(dir, self.args.clone());
        let old = std::mem::replace(self, fresh);
        std::mem::forget(old); // its process is gone and its directory lives on in `self`
    }

    fn start_in(dir: PathBuf, args: Vec<String>) -> Cluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .args(["up", "--data-dir"])
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bosun up");
        let lines = lines_of(child.stdout.take().unwrap());
        let first = lines
            .recv_timeout(READY_WITHIN)
            .expect("bosun up printed nothing");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap_or_default()
            .to_string();
        assert!(
            url.starts_with("https://"),
            "unexpected first line: {first}"
        );
        let cluster = Cluster {
            child,
            args,
            kubeconfig: dir.join("kubeconfig"),
            dir,
            url,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let out = cluster.kubectl_output(&["get", "--raw", "/readyz"]);
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cluster not ready: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        if !wait_bounded_child(&mut self.child, Duration::from_secs(10)) {
            eprintln!("bosun up did not stop on SIGINT; killed it");
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Runs kubectl against the cluster and returns its output, whatever its status.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        self.kubectl_with_stdin(args, None)
    }

    pub fn kubectl_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl on PATH");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        wait_bounded(
            child,
            KUBECTL_TIMEOUT,
            &format!("kubectl {}", args.join(" ")),
        )
    }

    /// Runs kubectl, asserts success, returns stdout.
    #[track_caller]
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl with a manifest on stdin (`-f -`), asserts success.
    #[track_caller]
    pub fn kubectl_stdin(&self, args: &[&str], manifest: &str) -> String {
        let out = self.kubectl_with_stdin(args, Some(manifest));
        assert!(
            out.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    #[track_caller]
    pub fn kubectl_fails(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            !out.status.success(),
            "kubectl {} should have failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `kubectl get -o jsonpath=...`.
    #[track_caller]
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let jp = format!("jsonpath={path}");
        let mut all: Vec<&str> = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", &jp]);
        self.kubectl(&all)
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits for a child with a bound; kills it and panics when the bound passes.
pub fn wait_bounded(child: Child, limit: Duration, what: &str) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for child"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

pub fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    format!("{:x}", h.finish() & 0xffff_ffff)
}

/// Reads lines from a child's stdout until one satisfies `pred`, within `limit`.
pub fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    Err(seen)
}

/// Spawns a thread forwarding a reader's lines into a channel. It reads to the end even
/// once the receiver is gone, so a child never writes into a closed pipe.
pub fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for a child to exit within `limit`; kills it and returns false if it does not.
pub fn wait_bounded_child(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
