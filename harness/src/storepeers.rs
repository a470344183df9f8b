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

/// Starts of a peer, each on freshly picked ports, before a port clash is an error.
const PORT_ATTEMPTS: usize = 3;

/// How much of a server's log an early exit quotes (a Go panic's first frames fit).
const LOG_EXCERPT: usize = 2000;

/// What to quote from the log of a server that exited: from its first fatal line or
/// panic on (etcd logs the cause there, then a long stack), else its end.
fn log_excerpt(log: &str) -> &str {
    let fatal = ["\"level\":\"panic\"", "\"level\":\"fatal\"", "panic: "]
        .iter()
        .filter_map(|m| log.find(m))
        .min()
        .map(|at| log[..at].rfind('\n').map_or(0, |nl| nl + 1));
    let (mut start, mut end) = match fatal {
        Some(start) => (start, (start + LOG_EXCERPT).min(log.len())),
        None => (log.len().saturating_sub(LOG_EXCERPT), log.len()),
    };
    while !log.is_char_boundary(start) {
        start += 1;
    }
    while !log.is_char_boundary(end) {
        end -= 1;
    }
    &log[start..end]
}

/// A server process in its own data directory; killed and removed on drop.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub url: String,
    pub data_dir: PathBuf,
    /// The server's log (its stderr) when it goes to a file beside the data directory:
    /// quoted if the server exits early.
    log: Option<PathBuf>,
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
            log: None,
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
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| PeerError::Start(format!("creating {}: {e}", log.display())))?;
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
            .stderr(log_file)
            .spawn()
            .map_err(|e| PeerError::Spawn {
                what: etcd_bin.display().to_string(),
                source: e,
            })?;
        Ok(Peer {
            name: "etcd".into(),
            url,
            data_dir,
            log: Some(log),
            child,
        })
    }

    /// Starts etcd as [`Peer::etcd`] does and waits until it answers. If it exits
    /// because a port picked for it was taken meanwhile (the free ports are picked by
    /// binding and releasing them, so another process can get there first), it is
    /// started again on other ports, up to [`PORT_ATTEMPTS`] times in all.
    pub async fn etcd_ready(etcd_bin: &Path) -> Result<Peer, PeerError> {
        let mut attempts = 1;
        loop {
            let mut peer = Peer::etcd(etcd_bin)?;
            match peer.wait_ready().await {
                Ok(()) => return Ok(peer),
                Err(PeerError::Start(why))
                    if why.contains("address already in use") && attempts < PORT_ATTEMPTS =>
                {
                    tracing::warn!("etcd could not bind its ports; starting it on others");
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the server answers a Status call.
    pub async fn wait_ready(&mut self) -> Result<(), PeerError> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(exited) = self.exited() {
                return Err(PeerError::Start(exited));
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

    /// If the server has exited: how, and the end of its log.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok()??;
        let mut said = format!("{} exited: {status}", self.name);
        if let Some(log) = &self.log {
            let text = std::fs::read(log).unwrap_or_default();
            said.push_str(&format!(
                "; its log says:\n{}",
                log_excerpt(&String::from_utf8_lossy(&text))
            ));
        }
        Some(said)
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
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of what etcd 3.4 printed when its data directory's disk was full.
    const ETCD_PANIC: &str = concat!(
        r#"{"level":"panic","ts":"2026-11-22T12:27:49.998Z","caller":"etcdserver/raft.go:513","#,
        r#""msg":"failed to create WAL","error":"no space left on device"}"#,
        "\npanic: failed to create WAL\n\ngoroutine 1 [running]:\n",
    );

    #[test]
    fn an_exit_quotes_the_log_from_its_first_fatal_line() {
        let noise = "{\"level\":\"warn\",\"msg\":\"slow fdatasync\"}\n".repeat(200);
        let stack = "\tgo.etcd.io/etcd/etcdserver/raft.go:513 +0x24d\n".repeat(200);
        let log = format!("{noise}{ETCD_PANIC}{stack}");
        let excerpt = log_excerpt(&log);
        assert!(excerpt.starts_with(r#"{"level":"panic""#), "{excerpt}");
        assert!(excerpt.contains("no space left on device"));
        assert_eq!(excerpt.len(), LOG_EXCERPT);

        // Without a fatal line, the end; cut on a character boundary.
        let log = "é".repeat(LOG_EXCERPT);
        let excerpt = log_excerpt(&log);
        assert!(excerpt.len() <= LOG_EXCERPT && excerpt.chars().all(|c| c == 'é'));
        assert!(log.ends_with(excerpt));
        assert_eq!(log_excerpt("short"), "short");
    }

    #[tokio::test]
    async fn an_etcd_that_dies_at_start_is_reported_with_its_log() {
        let dir = temp_dir("fake-etcd");
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("etcd");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\ncat >&2 <<'END'\n{ETCD_PANIC}END\nexit 2\n"),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut peer = Peer::etcd(&fake).unwrap();
        let log = peer.log.clone().unwrap();
        let err = peer.wait_ready().await.unwrap_err().to_string();
        assert!(err.starts_with("etcd exited: exit status: 2"), "{err}");
        assert!(
            err.contains("failed to create WAL") && err.contains("no space left"),
            "{err}"
        );
        drop(peer);
        assert!(!log.exists(), "the log goes with the peer");

        // A panic is not retried; a port taken meanwhile is, on other ports each time.
        let err = Peer::etcd_ready(&fake).await.unwrap_err().to_string();
        assert!(err.contains("failed to create WAL"), "{err}");
        let starts = dir.join("starts");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\necho 'listen tcp 127.0.0.1:1: bind: address already in use' >&2\nexit 1\n",
                starts.display()
            ),
        )
        .unwrap();
        let err = Peer::etcd_ready(&fake).await.unwrap_err().to_string();
        assert!(err.contains("address already in use"), "{err}");
        let starts = std::fs::read_to_string(&starts).unwrap();
        assert_eq!(starts.lines().count(), PORT_ATTEMPTS, "{starts}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
