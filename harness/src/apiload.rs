//! API server load: `clients` concurrent workers over `connections` HTTP/2 connections,
//! each creating a pod and then updating it (a merge patch of a label), alternately,
//! paced to a total target rate. The same load runs against any Kubernetes API server.

use std::time::Duration;

use bosun_client::{Api, Client, Config, Patch};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::stats::{Latency, LatencySummary};

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

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct ApiLoadReport {
    pub clients: usize,
    pub connections: usize,
    pub target_rate_per_s: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub create: LatencySummary,
    pub update: LatencySummary,
    pub all: LatencySummary,
    /// The first few error messages, for diagnosis.
    pub error_samples: Vec<String>,
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
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "apiload"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .expect("static pod is valid")
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
    let per_worker_interval = (cfg.rate_per_s > 0)
        .then(|| Duration::from_secs_f64(cfg.clients as f64 / cfg.rate_per_s as f64));
    let max_per_worker = MAX_PODS * 2 / cfg.clients as u64;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..cfg.clients {
        let api: Api<Pod> = Api::namespaced(clients[w % clients.len()].clone(), &cfg.namespace);
        // Spread the workers' first sends over one interval.
        let offset = per_worker_interval
            .map(|i| i.mul_f64(w as f64 / cfg.clients as f64))
            .unwrap_or_default();
        tasks.spawn(worker(
            api,
            w,
            start + offset,
            per_worker_interval,
            deadline,
            max_per_worker,
        ));
    }
    let mut total = WorkerResult::default();
    while let Some(res) = tasks.join_next().await {
        let r = res.map_err(|e| LoadError::Config(format!("worker panicked: {e}")))?;
        total.create.merge(&r.create);
        total.update.merge(&r.update);
        total.errors += r.errors;
        for s in r.error_samples {
            if total.error_samples.len() < 5 {
                total.error_samples.push(s);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Err(e) = namespaces.delete(&cfg.namespace, &Default::default()).await {
        tracing::warn!(error = %e, "deleting the load namespace");
    }
    let mut all = total.create.clone();
    all.merge(&total.update);
    let requests = all.count() + total.errors;
    Ok(ApiLoadReport {
        clients: cfg.clients,
        connections: cfg.connections,
        target_rate_per_s: cfg.rate_per_s,
        duration_s: elapsed,
        requests,
        errors: total.errors,
        requests_per_s: all.count() as f64 / elapsed,
        create: total.create.summary(),
        update: total.update.summary(),
        all: all.summary(),
        error_samples: total.error_samples,
    })
}

async fn worker(
    api: Api<Pod>,
    w: usize,
    first: Instant,
    interval: Option<Duration>,
    deadline: Instant,
    max_ops: u64,
) -> WorkerResult {
    let mut out = WorkerResult::default();
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
            Some(name) if i % 2 == 1 => {
                let patch = Patch::Merge(json!({"metadata": {"labels": {"gen": i.to_string()}}}));
                api.patch(name, &patch).await.map(|_| false)
            }
            _ => {
                let name = format!("load-{w}-{i}");
                let r = api.create(&pod(&name)).await.map(|_| true);
                current = Some(name);
                r
            }
        };
        let took = t0.elapsed();
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
