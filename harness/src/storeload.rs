//! etcd v3 load generator (`bosun bench store`): the same workloads against any etcd
//! v3 endpoint, `bosun store` or a real etcd. Unary requests go through the lean
//! [`crate::etcdrpc`] client (the generator shares the cores with the server it
//! measures); watch streams through the `etcd-client` crate.
//!
//! Workloads, on etcd's benchmark shapes (8-byte keys, 256-byte values by default):
//! - `put`: each client puts keys, sequential or random, one request in flight.
//! - `range`: point gets or prefix ranges (256 keys) over a preloaded key space,
//!   linearizable or serializable.
//! - `txn`: compare-and-swap on `mod_revision` (the Kubernetes update pattern): each
//!   client owns a slice of the keys, knows each one's revision (from the preload's
//!   answers, then from its own writes, as an informer's cache would) and writes only
//!   if it is unchanged; a failed compare reads the current revision back.
//! - `watch`: W watchers on one prefix (spread over streams and connections) while one
//!   writer puts at a fixed rate; reports delivery latency (from the put being sent to
//!   the event being received) and the fan-out throughput.
//! - `mixed`: 70% point gets, 20% puts, 10% compare-and-swap.
//!
//! Clients are closed-loop (each waits for its answer); `clients` share `connections`
//! gRPC connections. Every run is bounded by a duration and an operation count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, WatchOptions};
use serde::Serialize;
use tokio::time::Instant;

use crate::etcdrpc::{KvConn, RpcError, pb, prefix_end};
use crate::rng::SimRng as Rng;
use crate::stats::{Latency, LatencySummary};
use crate::timeline::{TimelineSecond, run_by_second, steal_by_second};

/// Upper bound on the operations of one run, whatever its duration.
pub const OPS_MAX: u64 = 50_000_000;
/// Operations whose latency the second-by-second timeline keeps (16 bytes each); later
/// ones count in the percentiles but not in the timeline.
pub const TIMELINE_OPS_MAX: u64 = 4_000_000;
/// Upper bound on concurrent clients, and on watchers.
pub const CLIENTS_MAX: usize = 10_000;
pub const WATCHERS_MAX: usize = 100_000;
/// Bound on the keys preloaded for reads and compare-and-swap.
pub const KEY_SPACE_MAX: u64 = 10_000_000;
/// Keys one prefix range covers (the last two hex digits of a key vary).
pub const PREFIX_RANGE_KEYS: u64 = 256;
/// Locked shards of the latency histograms the clients share (client `c` records into
/// shard `c % RECORDER_SHARDS`).
const RECORDER_SHARDS: usize = 8;
/// How long a run waits for watchers to be created and for the last events to arrive.
const WATCH_SETTLE: Duration = Duration::from_secs(30);
/// Prefix of the keys the watch workload writes and watches.
const WATCH_PREFIX: &str = "w/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Put,
    Range,
    Txn,
    Watch,
    Mixed,
}

impl Workload {
    /// The kinds of operation its clients send, as the report names them.
    fn ops(self, prefix_ranges: bool) -> &'static [&'static str] {
        match self {
            Workload::Put => &["put"],
            Workload::Range if prefix_ranges => &["range"],
            Workload::Range => &["get"],
            Workload::Txn => &["txn"],
            // The mixed workload's draw relies on this order (70% get, 20% put, 10% txn).
            Workload::Mixed => &["get", "put", "txn"],
            Workload::Watch => &["put"],
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "put" => Workload::Put,
            "range" => Workload::Range,
            "txn" => Workload::Txn,
            "watch" => Workload::Watch,
            "mixed" => Workload::Mixed,
            _ => {
                return Err(format!(
                    "unknown workload {s:?}: put, range, txn, watch, mixed"
                ));
            }
        })
    }
}

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct StoreLoadConfig {
    pub workload: Workload,
    /// Concurrent clients (each has one request in flight).
    pub clients: usize,
    /// gRPC connections the clients (or watch streams) share.
    pub connections: usize,
    #[serde(rename = "duration_s", serialize_with = "secs")]
    pub duration: Duration,
    /// Stop after this many operations in all (0: only the duration bounds the run).
    pub ops_max: u64,
    pub key_bytes: usize,
    pub value_bytes: usize,
    /// Keys preloaded for `range`, `txn` and `mixed`; the range of random put keys.
    pub key_space: u64,
    /// Random keys instead of sequential ones (`put`).
    pub random_keys: bool,
    /// Prefix ranges of [`PREFIX_RANGE_KEYS`] keys instead of point gets (`range`).
    pub prefix_ranges: bool,
    /// Serializable reads instead of linearizable ones.
    pub serializable: bool,
    /// Watchers (`watch`), spread over `watch_streams` streams.
    pub watchers: usize,
    pub watch_streams: usize,
    /// Puts per second of the watch workload's writer.
    pub watch_rate_per_s: u64,
    pub seed: u64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for StoreLoadConfig {
    fn default() -> Self {
        StoreLoadConfig {
            workload: Workload::Put,
            clients: 1,
            connections: 1,
            duration: Duration::from_secs(10),
            ops_max: 0,
            key_bytes: 8,
            value_bytes: 256,
            key_space: 10_000,
            random_keys: false,
            prefix_ranges: false,
            serializable: false,
            watchers: 1000,
            watch_streams: 100,
            watch_rate_per_s: 100,
            seed: 42,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreLoadReport {
    pub duration_s: f64,
    pub ops: u64,
    pub errors: u64,
    pub ops_per_s: f64,
    /// Every operation's latency.
    pub all: LatencySummary,
    /// Per kind of operation (`put`, `get`, `range`, `txn`).
    pub per_op: BTreeMap<String, LatencySummary>,
    /// Compare-and-swap attempts whose compare failed (another writer came first).
    pub txn_conflicts: u64,
    pub watch: Option<WatchReport>,
    /// Keys in the store after the run.
    pub n_keys: u64,
    pub error_samples: Vec<String>,
    /// CPU time the hypervisor took from this machine during the run (`/proc/stat`'s
    /// steal, all CPUs); `None` where the kernel does not report it.
    pub machine_steal_ms: Option<f64>,
    /// Latency second by second (by when each operation started), with each second's
    /// steal, for the first [`TIMELINE_OPS_MAX`] operations; empty for `watch`.
    pub timeline: Vec<TimelineSecond>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchReport {
    pub watchers: usize,
    pub streams: usize,
    pub events_put: u64,
    /// `events_put` times the watchers: what full delivery is.
    pub events_expected: u64,
    pub events_received: u64,
    pub events_missing: u64,
    /// Events delivered per second, all watchers together (the fan-out throughput).
    pub events_per_s: f64,
    /// From the put being sent to the event arriving at a watcher.
    pub delivery: LatencySummary,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreLoadError {
    #[error("invalid load configuration: {0}")]
    Config(String),
    #[error("etcd client: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("etcd client: {0}")]
    Rpc(#[from] RpcError),
    #[error("{0}")]
    Run(String),
}

impl StoreLoadConfig {
    fn check(&self) -> Result<(), StoreLoadError> {
        let bad = |m: String| Err(StoreLoadError::Config(m));
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return bad(format!("clients must be in 1..={CLIENTS_MAX}"));
        }
        if self.connections == 0 || self.connections > self.clients.max(self.watch_streams) {
            return bad("connections must be in 1..=max(clients, watch streams)".into());
        }
        if !(4..=64).contains(&self.key_bytes) {
            return bad("key bytes must be in 4..=64".into());
        }
        if self.value_bytes < 8 || self.value_bytes > 1024 * 1024 {
            return bad("value bytes must be in 8..=1 MiB".into());
        }
        if self.key_space == 0 || self.key_space > KEY_SPACE_MAX {
            return bad(format!("key space must be in 1..={KEY_SPACE_MAX}"));
        }
        if self.workload == Workload::Watch
            && (self.watchers == 0
                || self.watchers > WATCHERS_MAX
                || self.watch_streams == 0
                || self.watch_streams > self.watchers
                || self.watch_rate_per_s == 0)
        {
            return bad(format!(
                "watch needs 1..={WATCHERS_MAX} watchers, 1..=watchers streams, a rate"
            ));
        }
        Ok(())
    }

    /// The `n`-th key: lowercase hex, `key_bytes` wide (etcd's benchmark uses keys of a
    /// fixed size too), wrapping when `n` does not fit.
    pub fn key(&self, n: u64) -> String {
        let width = self.key_bytes;
        let n = if width >= 16 {
            n
        } else {
            n % (1u64 << (4 * width))
        };
        format!("{n:0width$x}")
    }

    fn ops_bound(&self) -> u64 {
        if self.ops_max == 0 {
            OPS_MAX
        } else {
            self.ops_max.min(OPS_MAX)
        }
    }
}

async fn connect_all(endpoints: &[String], n: usize) -> Result<Vec<Client>, StoreLoadError> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect(endpoints, None).await?);
    }
    Ok(clients)
}

/// `n` connections for unary requests, spread over the endpoints in turn.
async fn connect_kv(endpoints: &[String], n: usize) -> Result<Vec<KvConn>, StoreLoadError> {
    if endpoints.is_empty() {
        return Err(StoreLoadError::Config("no endpoints".into()));
    }
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(KvConn::connect(&endpoints[i % endpoints.len()]).await?);
    }
    Ok(conns)
}

/// Runs the load against `endpoints`.
pub async fn run(
    endpoints: &[String],
    cfg: &StoreLoadConfig,
) -> Result<StoreLoadReport, StoreLoadError> {
    cfg.check()?;
    let conns = connect_kv(endpoints, cfg.connections).await?;
    warm_up(&conns).await?;
    let mut report = match cfg.workload {
        Workload::Watch => {
            let watch_conns = connect_all(endpoints, cfg.connections).await?;
            run_watch(&watch_conns, &conns[0], cfg).await?
        }
        _ => {
            let preloaded = if cfg.workload == Workload::Put {
                Vec::new()
            } else {
                preload(&conns, cfg).await?
            };
            run_clients(&conns, cfg, Arc::new(preloaded)).await?
        }
    };
    report.n_keys = conns[0].range(&count_all()).await?.count as u64;
    Ok(report)
}

/// Counts every key (serializable, count only).
fn count_all() -> pb::RangeRequest {
    pb::RangeRequest {
        key: vec![0],
        range_end: vec![0],
        count_only: true,
        serializable: true,
        ..Default::default()
    }
}

/// One cheap request on every connection before the clock starts: the run measures
/// operations, not each connection's first use (a put run has no preload to do this).
async fn warm_up(conns: &[KvConn]) -> Result<(), StoreLoadError> {
    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        let conn = conn.clone();
        tasks.spawn(async move { conn.range(&count_all()).await.map(drop) });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| StoreLoadError::Run(format!("warm-up task: {e}")))??;
    }
    Ok(())
}

/// Puts every key of the key space once (not measured), `clients` at a time; returns
/// each key's revision, by key number.
async fn preload(conns: &[KvConn], cfg: &StoreLoadConfig) -> Result<Vec<i64>, StoreLoadError> {
    let next = Arc::new(AtomicU64::new(0));
    let revisions: Arc<Vec<AtomicI64>> =
        Arc::new((0..cfg.key_space).map(|_| AtomicI64::new(0)).collect());
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..cfg.clients.min(256) {
        let conn = conns[c % conns.len()].clone();
        let (next, cfg, revisions) = (next.clone(), cfg.clone(), revisions.clone());
        tasks.spawn(async move {
            let value = vec![b'v'; cfg.value_bytes];
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= cfg.key_space {
                    return Ok::<(), RpcError>(());
                }
                let resp = conn.put(&put_request(cfg.key(n), value.clone())).await?;
                let rev = resp.header.map_or(0, |h| h.revision);
                revisions[n as usize].store(rev, Ordering::Relaxed);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| StoreLoadError::Run(format!("preload task: {e}")))??;
    }
    let revisions = Arc::into_inner(revisions).expect("every preload task has finished");
    Ok(revisions.into_iter().map(AtomicI64::into_inner).collect())
}

fn put_request(key: String, value: Vec<u8>) -> pb::PutRequest {
    pb::PutRequest {
        key: key.into_bytes(),
        value,
        ..Default::default()
    }
}

/// The latency histograms of a run's clients, shared in a few locked shards and made
/// before the clock starts. A histogram is about 170 KiB of counters: one per client
/// was 170 MiB of fresh pages for 1,000 clients, zeroed inside the run's first second
/// (80% of the generator's CPU samples then), which held every client's first
/// requests back by hundreds of milliseconds and showed up as the server's p99.
struct Recorder {
    shards: Vec<Mutex<Vec<(&'static str, Latency)>>>,
}

impl Recorder {
    fn new(ops: &[&'static str], shards: usize) -> Self {
        let shard = || Mutex::new(ops.iter().map(|&op| (op, Latency::default())).collect());
        Recorder {
            shards: (0..shards.max(1)).map(|_| shard()).collect(),
        }
    }

    /// Records one operation of `client`; `op` must be one the recorder was made with.
    fn record(&self, client: usize, op: &'static str, took: Duration) {
        let mut shard = self.shards[client % self.shards.len()].lock().unwrap();
        let (_, latency) = shard
            .iter_mut()
            .find(|(o, _)| *o == op)
            .expect("the workload's operations have histograms");
        latency.record(took);
    }

    /// Each operation's histogram over all shards, without those never recorded.
    fn per_op(self) -> BTreeMap<&'static str, Latency> {
        let mut merged: BTreeMap<&'static str, Latency> = BTreeMap::new();
        for shard in self.shards {
            for (op, l) in shard.into_inner().unwrap() {
                if l.count() > 0 {
                    merged.entry(op).or_default().merge(&l);
                }
            }
        }
        merged
    }
}

/// One client's tallies (its latencies go to the shared [`Recorder`]).
#[derive(Default)]
struct Tally {
    errors: u64,
    conflicts: u64,
    error_samples: Vec<String>,
    /// `(ms since the run started when the operation started, latency)`.
    samples: Vec<(u32, Duration)>,
}

impl Tally {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.error_samples.len() < 2 {
            self.error_samples.push(e.to_string());
        }
    }
    fn merge(&mut self, other: Tally) {
        self.errors += other.errors;
        self.conflicts += other.conflicts;
        self.samples.extend_from_slice(&other.samples);
        for s in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(s);
            }
        }
    }
}

async fn run_clients(
    conns: &[KvConn],
    cfg: &StoreLoadConfig,
    preloaded: Arc<Vec<i64>>,
) -> Result<StoreLoadReport, StoreLoadError> {
    let issued = Arc::new(AtomicU64::new(0));
    let recorder = Arc::new(Recorder::new(
        cfg.workload.ops(cfg.prefix_ranges),
        RECORDER_SHARDS.min(cfg.clients),
    ));
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let (workers_done, done) = tokio::sync::oneshot::channel();
    let steal = tokio::spawn(steal_by_second(start, deadline, done));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..cfg.clients {
        let conn = conns[c % conns.len()].clone();
        let worker = Worker {
            conn,
            cfg: cfg.clone(),
            id: c,
            rng: Rng::new(cfg.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            issued: issued.clone(),
            recorder: recorder.clone(),
            start,
            deadline,
            preloaded: preloaded.clone(),
            revisions: BTreeMap::new(),
            value: vec![b'v'; cfg.value_bytes],
        };
        tasks.spawn(worker.run());
    }
    let mut total = Tally::default();
    while let Some(r) = tasks.join_next().await {
        total.merge(r.map_err(|e| StoreLoadError::Run(format!("client task: {e}")))?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = workers_done.send(());
    let steal = steal.await.unwrap_or_default();
    let recorder = Arc::into_inner(recorder).expect("every client has finished");
    let per_op = recorder.per_op();
    let mut all = Latency::default();
    for l in per_op.values() {
        all.merge(l);
    }
    let (machine_steal_ms, timeline) = run_by_second(&total.samples, &steal);
    Ok(StoreLoadReport {
        duration_s: elapsed,
        ops: all.count(),
        errors: total.errors,
        ops_per_s: all.count() as f64 / elapsed,
        all: all.summary(),
        per_op: per_op
            .iter()
            .map(|(op, l)| (op.to_string(), l.summary()))
            .collect(),
        txn_conflicts: total.conflicts,
        error_samples: total.error_samples,
        machine_steal_ms,
        timeline,
        ..StoreLoadReport::default()
    })
}

struct Worker {
    conn: KvConn,
    cfg: StoreLoadConfig,
    id: usize,
    rng: Rng,
    issued: Arc<AtomicU64>,
    recorder: Arc<Recorder>,
    start: Instant,
    deadline: Instant,
    /// Compare-and-swap: the mod revision this client last saw of each of its keys.
    revisions: BTreeMap<u64, i64>,
    /// Each key's revision after the preload, by key number (empty for `put`).
    preloaded: Arc<Vec<i64>>,
    value: Vec<u8>,
}

impl Worker {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        let bound = self.cfg.ops_bound();
        loop {
            let n = self.issued.fetch_add(1, Ordering::Relaxed);
            if n >= bound || Instant::now() >= self.deadline {
                break;
            }
            let ops = self.cfg.workload.ops(self.cfg.prefix_ranges);
            let op = match self.cfg.workload {
                // get, put, txn: 70%, 20%, 10%.
                Workload::Mixed => match self.rng.next_u64() % 100 {
                    0..70 => ops[0],
                    70..90 => ops[1],
                    _ => ops[2],
                },
                Workload::Watch => unreachable!("watch has its own driver"),
                _ => ops[0],
            };
            let t0 = Instant::now();
            match self.one(op).await {
                Ok(conflict) => {
                    let took = t0.elapsed();
                    self.recorder.record(self.id, op, took);
                    tally.conflicts += u64::from(conflict);
                    if n < TIMELINE_OPS_MAX {
                        let at = t0.duration_since(self.start).as_millis() as u32;
                        tally.samples.push((at, took));
                    }
                }
                Err(e) => tally.error(e),
            }
        }
        tally
    }

    fn put_key(&mut self) -> String {
        let n = if self.cfg.random_keys || self.cfg.workload == Workload::Mixed {
            self.rng.next_u64() % self.cfg.key_space
        } else {
            // Sequential keys, interleaved over the clients.
            self.issued.load(Ordering::Relaxed)
        };
        self.cfg.key(n)
    }

    /// One operation; returns whether a compare-and-swap lost its compare.
    async fn one(&mut self, op: &str) -> Result<bool, RpcError> {
        match op {
            "put" => {
                let key = self.put_key();
                self.conn.put(&put_request(key, self.value.clone())).await?;
                Ok(false)
            }
            "get" | "range" => {
                let n = self.rng.next_u64() % self.cfg.key_space;
                let key = self.cfg.key(n).into_bytes();
                let req = if op == "range" {
                    let prefix = key[..key.len() - 2].to_vec();
                    pb::RangeRequest {
                        range_end: prefix_end(&prefix),
                        key: prefix,
                        serializable: self.cfg.serializable,
                        ..Default::default()
                    }
                } else {
                    pb::RangeRequest {
                        key,
                        serializable: self.cfg.serializable,
                        ..Default::default()
                    }
                };
                self.conn.range(&req).await?;
                Ok(false)
            }
            _ => self.compare_and_swap().await,
        }
    }

    /// Writes one of this client's keys if its mod revision is the one last seen.
    async fn compare_and_swap(&mut self) -> Result<bool, RpcError> {
        let n_clients = self.cfg.clients as u64;
        let mine = (self.cfg.key_space / n_clients).max(1);
        let n = (self.rng.next_u64() % mine) * n_clients + self.id as u64;
        let key_n = n % self.cfg.key_space;
        let key = self.cfg.key(key_n).into_bytes();
        let known = match self.revisions.get(&n) {
            Some(&rev) => rev,
            None => self.preloaded.get(key_n as usize).copied().unwrap_or(0),
        };
        let req = pb::TxnRequest {
            compare: vec![pb::Compare {
                result: pb::compare::CompareResult::Equal as i32,
                target: pb::compare::CompareTarget::Mod as i32,
                key: key.clone(),
                range_end: Vec::new(),
                target_union: Some(pb::compare::TargetUnion::ModRevision(known)),
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: key.clone(),
                    value: self.value.clone(),
                    ..Default::default()
                })),
            }],
            failure: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
                    key,
                    ..Default::default()
                })),
            }],
        };
        let resp = self.conn.txn(&req).await?;
        if resp.succeeded {
            let rev = resp.header.map_or(0, |h| h.revision);
            self.revisions.insert(n, rev);
            return Ok(false);
        }
        for r in resp.responses {
            if let Some(pb::response_op::Response::ResponseRange(g)) = r.response {
                let rev = g.kvs.first().map_or(0, |kv| kv.mod_revision);
                self.revisions.insert(n, rev);
            }
        }
        Ok(true)
    }
}

/// What one watch stream saw.
#[derive(Default)]
struct StreamTally {
    received: u64,
    delivery: Latency,
}

async fn run_watch(
    conns: &[Client],
    writer: &KvConn,
    cfg: &StoreLoadConfig,
) -> Result<StoreLoadReport, StoreLoadError> {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let n_created = Arc::new(AtomicU64::new(0));
    let n_received = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..cfg.watch_streams {
        // Watchers spread evenly over the streams, streams over the connections.
        let n_watchers =
            cfg.watchers / cfg.watch_streams + usize::from(s < cfg.watchers % cfg.watch_streams);
        let mut wc = conns[s % conns.len()].watch_client();
        let opts = WatchOptions::new().with_prefix();
        let mut stream = wc.watch(WATCH_PREFIX, Some(opts.clone())).await?;
        for _ in 1..n_watchers {
            stream.watch(WATCH_PREFIX, Some(opts.clone())).await?;
        }
        let (stop, n_created, n_received) = (stop.clone(), n_created.clone(), n_received.clone());
        tasks.spawn(async move {
            let mut t = StreamTally::default();
            loop {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if stop.load(Ordering::Acquire) { break; }
                        continue;
                    }
                };
                let Ok(Some(resp)) = msg else { break };
                if resp.created() {
                    n_created.fetch_add(1, Ordering::Relaxed);
                }
                let now_us = epoch.elapsed().as_micros() as u64;
                for ev in resp.events() {
                    let sent_us = ev.kv().map_or(0, |kv| sent_at_us(kv.value()));
                    t.delivery
                        .record(Duration::from_micros(now_us.saturating_sub(sent_us)));
                    t.received += 1;
                }
                n_received.fetch_add(resp.events().len() as u64, Ordering::Relaxed);
            }
            t
        });
    }
    let created_by = Instant::now() + WATCH_SETTLE;
    while n_created.load(Ordering::Relaxed) < cfg.watchers as u64 {
        if Instant::now() > created_by {
            return Err(StoreLoadError::Run(format!(
                "only {} of {} watchers created",
                n_created.load(Ordering::Relaxed),
                cfg.watchers
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (events_put, put_latency, writer_errors) = watch_writer(writer, cfg, epoch).await;
    let write_end = Instant::now();
    // Wait (bounded) for the last events to arrive, then stop the streams.
    let expected = events_put * cfg.watchers as u64;
    while n_received.load(Ordering::Relaxed) < expected && write_end.elapsed() < WATCH_SETTLE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    let mut total = StreamTally::default();
    let joined = tokio::time::timeout(WATCH_SETTLE, async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(t) = r {
                total.received += t.received;
                total.delivery.merge(&t.delivery);
            }
        }
    })
    .await;
    if joined.is_err() {
        return Err(StoreLoadError::Run("watch streams did not stop".into()));
    }
    let elapsed = write_end.duration_since(epoch).as_secs_f64();
    let mut per_op = BTreeMap::new();
    per_op.insert("put".to_string(), put_latency.summary());
    Ok(StoreLoadReport {
        duration_s: elapsed,
        ops: events_put,
        errors: writer_errors,
        ops_per_s: events_put as f64 / cfg.duration.as_secs_f64(),
        all: put_latency.summary(),
        per_op,
        watch: Some(WatchReport {
            watchers: cfg.watchers,
            streams: cfg.watch_streams,
            events_put,
            events_expected: expected,
            events_received: total.received,
            events_missing: expected.saturating_sub(total.received),
            events_per_s: total.received as f64 / cfg.duration.as_secs_f64(),
            delivery: total.delivery.summary(),
        }),
        ..StoreLoadReport::default()
    })
}

/// The watch workload's writer: puts at the configured rate for the duration, each
/// value starting with the time it was sent (microseconds since `epoch`).
async fn watch_writer(conn: &KvConn, cfg: &StoreLoadConfig, epoch: Instant) -> (u64, Latency, u64) {
    let interval = Duration::from_secs_f64(1.0 / cfg.watch_rate_per_s as f64);
    let n_puts = (cfg.duration.as_secs_f64() * cfg.watch_rate_per_s as f64) as u64;
    let n_puts = n_puts.min(cfg.ops_bound()).max(1);
    let mut latency = Latency::default();
    let (mut n_ok, mut errors) = (0, 0);
    let start = Instant::now();
    for i in 0..n_puts {
        tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
        let sent_us = epoch.elapsed().as_micros() as u64;
        let mut value = vec![b'v'; cfg.value_bytes];
        value[..8].copy_from_slice(&sent_us.to_le_bytes());
        let key = format!("{WATCH_PREFIX}{}", cfg.key(i));
        let t0 = Instant::now();
        match conn.put(&put_request(key, value)).await {
            Ok(_) => {
                latency.record(t0.elapsed());
                n_ok += 1;
            }
            Err(_) => errors += 1,
        }
    }
    (n_ok, latency, errors)
}

fn sent_at_us(value: &[u8]) -> u64 {
    value
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_merges_every_client_shard_and_leaves_out_unused_operations() {
        let recorder = Recorder::new(Workload::Mixed.ops(false), 3);
        for client in 0..10 {
            recorder.record(client, "get", Duration::from_millis(1 + client as u64));
            if client % 2 == 0 {
                recorder.record(client, "put", Duration::from_millis(100));
            }
        }
        let per_op = recorder.per_op();
        assert_eq!(per_op.keys().copied().collect::<Vec<_>>(), ["get", "put"]);
        let get = per_op["get"].summary();
        assert_eq!(get.count, 10);
        // 1..=10 ms, one each, across all three shards.
        assert!((999..=1001).contains(&(get.latency_us_max / 10)), "{get:?}");
        assert_eq!(per_op["put"].count(), 5);
    }

    #[test]
    fn each_workload_names_the_operations_its_clients_send() {
        assert_eq!(Workload::Put.ops(false), ["put"]);
        assert_eq!(Workload::Range.ops(false), ["get"]);
        assert_eq!(Workload::Range.ops(true), ["range"]);
        assert_eq!(Workload::Txn.ops(false), ["txn"]);
        assert_eq!(Workload::Mixed.ops(true), ["get", "put", "txn"]);
    }
}
