//! API server load: `clients` concurrent workers over `connections` HTTP/2 connections,
//! each creating a pod and then updating it (a merge patch of a label), alternately,
//! paced to a total target rate. The same load runs against any Kubernetes API server.

use std::time::Duration;

use bosun_client::{Api, Client, Config};
use bytes::Bytes;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::stats::{Latency, LatencySummary};
pub use crate::timeline::TimelineSecond;
use crate::timeline::{run_by_second, steal_by_second};

const MERGE_PATCH: &str = "application/merge-patch+json";

/// Upper bound on pods one run creates, whatever its rate and duration.
pub const MAX_PODS: u64 = 200_000;
/// Upper bound on concurrent workers.
pub const MAX_CLIENTS: usize = 10_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct ApiLoadConfig {
    /// Concurrent workers (each has at most one request in flight).
    pub clients: usize,
    /// HTTP connections the workers share (HTTP/2 multiplexes each).
    pub connections: usize,
    /// Total target rate of mutating requests; 0 runs closed-loop, as fast as it goes.
    pub rate_per_s: u64,
    pub duration: Duration,
    /// Namespace to create, load and delete.
    pub namespace: String,
}

impl Default for ApiLoadConfig {
    fn default() -> Self {
        ApiLoadConfig {
            clients: 64,
            connections: 4,
            rate_per_s: 0,
            duration: Duration::from_secs(10),
            namespace: "bosun-apiload".into(),
        }
    }
}

/// How `config` reaches its server: `h2 over TLS` for https (HTTP/2 by ALPN with
/// servers that offer it), `h2c` for plain HTTP/2 with prior knowledge, `http/1.1`.
pub fn transport(config: &Config) -> &'static str {
    if config.is_https() {
        "h2 over TLS"
    } else if config.http2_prior_knowledge {
        "h2c"
    } else {
        "http/1.1"
    }
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct ApiLoadReport {
    /// How the clients reached the server (see [`transport`]).
    pub transport: &'static str,
    pub clients: usize,
    pub connections: usize,
    pub target_rate_per_s: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    /// CPU this process spent per request during the load (every thread). With the
    /// embedded server that is server and generator together; against a remote server,
    /// the generator alone.
    pub process_cpu_us_per_request: f64,
    pub create: LatencySummary,
    pub update: LatencySummary,
    pub all: LatencySummary,
    /// The first few error messages, for diagnosis.
    pub error_samples: Vec<String>,
    /// CPU time the hypervisor took from this machine during the load, summed over CPUs
    /// (`None` where the kernel does not report it).
    pub machine_steal_ms: Option<f64>,
    /// Latency second by second (by when each request was due), to tell steady queueing
    /// from stalls.
    pub timeline: Vec<TimelineSecond>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load configuration: {0}")]
    Config(String),
    #[error("client: {0}")]
    Client(#[from] bosun_client::Error),
}

#[derive(Default)]
struct WorkerResult {
    create: Latency,
    update: Latency,
    errors: u64,
    error_samples: Vec<String>,
    /// `(ms since the run started when the request was due, latency)`; bounded by the
    /// worker's operation cap.
    samples: Vec<(u32, Duration)>,
}

impl WorkerResult {
    /// A worker's record, allocated before the clock starts: its histograms are zeroed
    /// arrays of a few hundred KiB each, and creating 2 per worker inside the timed run
    /// used to hold the first requests back by tens of milliseconds.
    fn for_ops(max_ops: u64) -> Self {
        WorkerResult {
            samples: Vec::with_capacity(max_ops as usize),
            ..WorkerResult::default()
        }
    }
}

/// When one worker sends.
#[derive(Clone, Copy)]
struct Schedule {
    /// The run's start, which sample offsets count from.
    start: Instant,
    /// When this worker's first request is due.
    first: Instant,
    /// Between its requests; `None` runs closed-loop.
    interval: Option<Duration>,
    deadline: Instant,
    max_ops: u64,
}

/// The JSON of the pod named `name`, written straight to bytes: the generator spends its
/// CPU on requests, not on building and encoding typed objects.
fn pod_body(name: &str) -> Bytes {
    Bytes::from(format!(
        concat!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","labels":{{"app":"apiload"}}}},"#,
            r#""spec":{{"containers":[{{"name":"c","image":"busybox:1.36","#,
            r#""resources":{{"requests":{{"cpu":"10m","memory":"16Mi"}}}}}}]}}}}"#
        ),
        name
    ))
}

/// The merge patch of an update: one label set to `generation`.
fn label_patch(generation: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"metadata":{{"labels":{{"gen":"{generation}"}}}}}}"#
    ))
}

/// Runs the load against the server `config` points at.
pub async fn run(config: Config, cfg: &ApiLoadConfig) -> Result<ApiLoadReport, LoadError> {
    if cfg.clients == 0 || cfg.clients > MAX_CLIENTS {
        return Err(LoadError::Config(format!(
            "clients must be in 1..={MAX_CLIENTS}"
        )));
    }
    if cfg.connections == 0 || cfg.connections > cfg.clients {
        return Err(LoadError::Config(
            "connections must be in 1..=clients".into(),
        ));
    }
    let clients: Vec<Client> = (0..cfg.connections)
        .map(|_| Client::new(config.clone()))
        .collect::<Result<_, _>>()?;
    let namespaces: Api<Namespace> = Api::cluster(clients[0].clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": cfg.namespace}}))
        .expect("static namespace");
    match namespaces.create(&ns).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(409) => {}
        Err(e) => return Err(e.into()),
    }
    // Open every connection (TCP, TLS, HTTP/2 settings) before the clock starts: the
    // run measures requests, not handshakes, and a pool asked for many streams before
    // its first connection is up may open (and then drop) several.
    for client in &clients {
        Api::<Namespace>::cluster(client.clone())
            .get(&cfg.namespace)
            .await?;
    }
    let per_worker_interval = (cfg.rate_per_s > 0)
        .then(|| Duration::from_secs_f64(cfg.clients as f64 / cfg.rate_per_s as f64));
    let max_per_worker = MAX_PODS * 2 / cfg.clients as u64;
    let mut records: Vec<WorkerResult> = (0..cfg.clients)
        .map(|_| WorkerResult::for_ops(max_per_worker))
        .collect();
    let cpu_before = crate::metrics::process_cpu_ms();
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let (workers_done, done) = tokio::sync::oneshot::channel();
    let steal = tokio::spawn(steal_by_second(start, deadline, done));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..cfg.clients {
        let api: Api<Pod> = Api::namespaced(clients[w % clients.len()].clone(), &cfg.namespace);
        // Spread the workers' first sends over one interval.
        let offset = per_worker_interval
            .map(|i| i.mul_f64(w as f64 / cfg.clients as f64))
            .unwrap_or_default();
        let schedule = Schedule {
            start,
            first: start + offset,
            interval: per_worker_interval,
            deadline,
            max_ops: max_per_worker,
        };
        let record = records.pop().expect("one record per worker");
        tasks.spawn(worker(api, w, record, schedule));
    }
    let mut total = WorkerResult::default();
    while let Some(res) = tasks.join_next().await {
        let r = res.map_err(|e| LoadError::Config(format!("worker panicked: {e}")))?;
        total.create.merge(&r.create);
        total.update.merge(&r.update);
        total.errors += r.errors;
        total.samples.extend_from_slice(&r.samples);
        for s in r.error_samples {
            if total.error_samples.len() < 5 {
                total.error_samples.push(s);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = workers_done.send(());
    let steal = steal.await.unwrap_or_default();
    let cpu_ms = match (cpu_before, crate::metrics::process_cpu_ms()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    if let Err(e) = namespaces.delete(&cfg.namespace, &Default::default()).await {
        tracing::warn!(error = %e, "deleting the load namespace");
    }
    let mut all = total.create.clone();
    all.merge(&total.update);
    let requests = all.count() + total.errors;
    let (machine_steal_ms, timeline) = run_by_second(&total.samples, &steal);
    Ok(ApiLoadReport {
        transport: transport(&config),
        clients: cfg.clients,
        connections: cfg.connections,
        target_rate_per_s: cfg.rate_per_s,
        duration_s: elapsed,
        requests,
        errors: total.errors,
        requests_per_s: all.count() as f64 / elapsed,
        process_cpu_us_per_request: cpu_ms * 1000.0 / all.count().max(1) as f64,
        create: total.create.summary(),
        update: total.update.summary(),
        all: all.summary(),
        error_samples: total.error_samples,
        machine_steal_ms,
        timeline,
    })
}

async fn worker(api: Api<Pod>, w: usize, mut out: WorkerResult, plan: Schedule) -> WorkerResult {
    let Schedule {
        start,
        first,
        interval,
        deadline,
        max_ops,
    } = plan;
    let mut due = first;
    let mut current: Option<String> = None;
    for i in 0..max_ops {
        if interval.is_some() {
            tokio::time::sleep_until(due).await;
        }
        if Instant::now() >= deadline {
            break;
        }
        // Paced requests are timed from when they were due (no coordinated omission).
        let t0 = if interval.is_some() {
            due
        } else {
            Instant::now()
        };
        let result = match &current {
            Some(name) if i % 2 == 1 => api
                .patch_bytes(name, label_patch(i), MERGE_PATCH)
                .await
                .map(|_| false),
            _ => {
                let name = format!("load-{w}-{i}");
                let r = api.create_bytes(pod_body(&name)).await.map(|_| true);
                current = Some(name);
                r
            }
        };
        let took = t0.elapsed();
        if result.is_ok() {
            out.samples
                .push((t0.duration_since(start).as_millis() as u32, took));
        }
        match result {
            Ok(true) => out.create.record(took),
            Ok(false) => out.update.record(took),
            Err(e) => {
                out.errors += 1;
                if out.error_samples.len() < 2 {
                    out.error_samples.push(e.to_string());
                }
            }
        }
        if let Some(iv) = interval {
            due += iv;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_the_pod_and_the_patch_as_json() {
        let pod: Pod = serde_json::from_slice(&pod_body("load-1-2")).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("load-1-2"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("busybox:1.36"));
        let patch: serde_json::Value = serde_json::from_slice(&label_patch(7)).unwrap();
        assert_eq!(patch, json!({"metadata": {"labels": {"gen": "7"}}}));
    }
}
