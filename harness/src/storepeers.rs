//! Servers for side-by-side store runs: `bosun store` and a real etcd, each started on
//! loopback in its own temporary data directory (fsync on in both), with what the
//! report compares besides speed: resident memory and bytes on disk. Also the physical
//! floor of a durable write on this disk: an fdatasync probe.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{Latency, LatencySummary};

/// How long a server may take to start answering.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A server process in its own data directory; killed and removed on drop.
pub struct Peer {
    pub name: String,
    pub url: String,
    pub data_dir: PathBuf,
    child: Child,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Start(String),
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bosun-bench-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A free loopback port (bound and released: another process could take it first).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Peer {
    /// Starts `bosun store` (the binary `exe`) with `extra_args`; waits for its address.
    pub fn bosun(exe: &Path, extra_args: &[String]) -> Result<Peer, PeerError> {
        let data_dir = temp_dir("bosun");
        let spawn = |e| PeerError::Spawn {
            what: exe.display().to_string(),
            source: e,
        };
        let mut child = Command::new(exe)
            .args(["store", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(spawn)?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut peer = Peer {
            name: "bosun".into(),
            url: String::new(),
            data_dir,
            child,
        };
        let first = rx
            .recv_timeout(READY_WITHIN)
            .map_err(|_| PeerError::Start("bosun store printed no address".into()))?;
        let addr = first.trim().rsplit(' ').next().unwrap_or_default();
        if !addr.starts_with("127.0.0.1:") {
            return Err(PeerError::Start(format!("bosun store said {first:?}")));
        }
        peer.url = format!("http://{addr}");
        Ok(peer)
    }

    /// Starts etcd (`etcd_bin`, 3.4) as a one-member cluster on loopback, fsync on (its
    /// default). Readiness is the caller's to wait for (see [`Peer::wait_ready`]).
    pub fn etcd(etcd_bin: &Path) -> Result<Peer, PeerError> {
        let data_dir = temp_dir("etcd");
        let io = |e: std::io::Error| PeerError::Start(format!("picking ports: {e}"));
        let (client_port, peer_port) = (free_port().map_err(io)?, free_port().map_err(io)?);
        let url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(etcd_bin)
            .args(["--name", "bench", "--data-dir"])
            .arg(&data_dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("bench={peer_url}")])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| PeerError::Spawn {
                what: etcd_bin.display().to_string(),
                source: e,
            })?;
        Ok(Peer {
            name: "etcd".into(),
            url,
            data_dir,
            child,
        })
    }

    /// Waits until the server answers a Status call.
    pub async fn wait_ready(&mut self) -> Result<(), PeerError> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PeerError::Start(format!("{} exited: {status}", self.name)));
            }
            if let Ok(mut c) = etcd_client::Client::connect([&self.url], None).await
                && c.status().await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PeerError::Start(format!("{} not ready", self.name)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak.
    pub fn memory(&self) -> Memory {
        memory_of(self.pid())
    }

    /// Bytes the data directory occupies on disk (allocated blocks, as `du`).
    pub fn disk_bytes(&self) -> u64 {
        disk_bytes(&self.data_dir)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Memory {
    pub rss_bytes: u64,
    pub rss_bytes_peak: u64,
}

/// `VmRSS` and `VmHWM` of a process, from `/proc` (zeros if unreadable).
pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss_bytes: field("VmRSS:"),
        rss_bytes_peak: field("VmHWM:"),
    }
}

/// Allocated bytes of every file under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// The physical floor of a durable write: `n` appends of `bytes` each followed by
/// fdatasync, in a file under `dir` (removed afterwards).
pub fn fdatasync_probe(dir: &Path, n: usize, bytes: usize) -> std::io::Result<LatencySummary> {
    let path = dir.join(format!("bosun-fdatasync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let buf = vec![0x5a; bytes];
    let mut latency = Latency::default();
    let result = (|| {
        for _ in 0..n {
            let t0 = Instant::now();
            file.write_all(&buf)?;
            file.sync_data()?;
            latency.record(t0.elapsed());
        }
        Ok(latency.summary())
    })();
    let _ = std::fs::remove_file(&path);
    result
}
