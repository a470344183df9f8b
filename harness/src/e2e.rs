//! End-to-end mode: the same scenario through the API server and the scheduler
//! service over loopback HTTP, beside the in-process figures.
//!
//! For each algorithm that the simulation ran, [`run_e2e`] starts a fresh in-process
//! API server (in-memory storage) and the scheduler service (`bosun scheduler`'s
//! code) with the algorithm's profile, creates the scenario's nodes and its initial
//! pods already bound where the simulation placed them, waits for the scheduler's
//! informers to sync, then creates the measured pods as fast as `create_concurrency`
//! requests in flight allow and watches them get bound. Throughput is bound pods over
//! the time from the first create to the last binding seen; latency is each pod's
//! create acknowledgement to the watch event that shows it bound. At the end every
//! node's bound pods are checked against its allocatable.
//!
//! What is not replayed: arrival times (pods are created back to back, as
//! scheduler_perf does), churn (such scenarios are refused), and
//! batch placement (`min-cost-flow` has no service form and is skipped). Every wait
//! is bounded by [`E2eOptions::idle_timeout`] and [`E2eOptions::max_duration`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_apiserver::server::{ApiServer, ServerConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig};
use bosun_client::{Api, Client, Config, Event, Informer, InformerConfig, ListParams};
use bosun_sched_algos::service::{self, ServiceConfig};
use bosun_sched_algos::{Cache, PodInfo, Registry};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::HarnessError;
use crate::model::priority_classes;
use crate::report::AlgorithmReport;
use crate::sim::workload::NAMESPACE;
use crate::sim::{Algorithm, AlgorithmRun, Simulation};
use crate::stats::{Latency, LatencySummary};

/// Bound on the objects read back for the final check.
const MAX_LISTED: usize = 1_000_000;

/// How an end-to-end run loads the API server and how long it waits.
#[derive(Clone, Debug)]
pub struct E2eOptions {
    /// Create requests in flight at once (nodes, initial and measured pods).
    pub create_concurrency: usize,
    /// Once every measured pod is created: stop after this long without a binding.
    pub idle_timeout: Duration,
    /// Bound on one algorithm's whole run.
    pub max_duration: Duration,
    /// Progress lines on stderr for runs longer than a second.
    pub progress: bool,
}

impl Default for E2eOptions {
    fn default() -> E2eOptions {
        E2eOptions {
            create_concurrency: 64,
            idle_timeout: Duration::from_secs(3),
            max_duration: Duration::from_secs(600),
            progress: true,
        }
    }
}

/// One algorithm's end-to-end figures. Keys carry their units.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct E2eReport {
    pub algorithm: String,
    /// Why the algorithm was not run end to end, if it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub nodes: usize,
    pub initial_pods_bound: usize,
    pub pods_created: usize,
    pub pods_bound: usize,
    pub pods_unbound: usize,
    /// Bound pods over the first create to the last binding seen.
    pub pods_per_s: f64,
    /// Nodes and initial pods created, and the scheduler synced.
    pub setup_ms: f64,
    pub measured_ms: f64,
    /// Each pod's create acknowledgement to the watch event showing it bound.
    pub latency: LatencySummary,
    /// Pods the in-process run placed, for comparison.
    pub sim_pods_placed: usize,
    /// Nodes whose bound pods exceed an allocatable resource (must be empty).
    pub violations: Vec<String>,
}

/// Runs every algorithm of `sim` end to end (see the module docs).
pub async fn run_e2e(sim: &Simulation, opts: &E2eOptions) -> Result<Vec<E2eReport>, HarnessError> {
    let err = |message: String| HarnessError::Scenario {
        origin: sim.scenario.name.clone(),
        message: format!("end to end: {message}"),
    };
    if sim.scenario.churn.is_some() {
        return Err(err(
            "churn is simulated only; pick a scenario without it".into()
        ));
    }
    let mut out = Vec::new();
    for run in &sim.runs {
        let algorithm = sim.algorithm(&run.report.algorithm);
        let report = match algorithm {
            Some(Algorithm::MinCostFlow { .. }) => E2eReport {
                algorithm: run.report.algorithm.clone(),
                skipped: Some("batch placement has no service form".into()),
                ..E2eReport::default()
            },
            Some(a) => one_algorithm(sim, run, &a, opts).await.map_err(err)?,
            None => return Err(err(format!("unknown algorithm {}", run.report.algorithm))),
        };
        out.push(report);
    }
    Ok(out)
}

/// The server and scheduler of one run, stopped on drop.
struct Stack {
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    stop_scheduler: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(s) = self.stop_scheduler.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.stop_server.take() {
            let _ = s.send(());
        }
    }
}

async fn one_algorithm(
    sim: &Simulation,
    run: &AlgorithmRun,
    algorithm: &Algorithm,
    opts: &E2eOptions,
) -> Result<E2eReport, String> {
    let started = Instant::now();
    let deadline = started + opts.max_duration;
    let w = &sim.workload;
    let profiles = algorithm.profiles(&Registry::in_tree(), w)?;
    let scheduler_name = profiles
        .iter()
        .next()
        .map(|p| p.scheduler_name.clone())
        .ok_or("the algorithm has no profile")?;

    let storage = MemoryStorage::new(MemoryStorageConfig::default());
    let config = ServerConfig {
        token: None,
        ..ServerConfig::default()
    };
    let server = ApiServer::new(storage, config)
        .await
        .map_err(|e| format!("starting the API server: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding loopback: {e}"))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bosun_apiserver::serve(server, listener, None, async {
        let _ = stopped.await;
    }));
    let client =
        Client::new(Config::new(&base).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut stack = Stack {
        stop_server: Some(stop_server),
        stop_scheduler: None,
    };

    // The cluster: namespace, priority classes, nodes, initial pods where the
    // simulation placed them.
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&ns)
        .await
        .map_err(|e| format!("creating namespace {NAMESPACE}: {e}"))?;
    for pc in priority_classes() {
        Api::<PriorityClass>::all(client.clone())
            .create(&pc)
            .await
            .map_err(|e| format!("creating a priority class: {e}"))?;
    }
    let nodes: Vec<Node> = w.nodes.iter().map(|n| n.to_k8s()).collect();
    let api_nodes = Api::<Node>::all(client.clone());
    concurrently(nodes, opts.create_concurrency, move |node| {
        let api = api_nodes.clone();
        async move { create_node(&api, node).await }
    })
    .await?;
    let mut initial = Vec::new();
    for &(pod_id, n) in &run.initial_placements {
        let mut pod = pod_object(&w.pods[pod_id as usize].decode(), &scheduler_name);
        let node = &run.cluster.nodes[n as usize].name;
        pod.spec.get_or_insert_default().node_name = Some(node.clone());
        initial.push(pod);
    }
    let initial_pods_bound = initial.len();
    let api_pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE);
    let api = api_pods.clone();
    concurrently(initial, opts.create_concurrency, move |pod| {
        let api = api.clone();
        async move { create_pod(&api, &pod).await.map(drop) }
    })
    .await?;

    // The watch that sees bindings, then the scheduler; wait for both to sync.
    let mut informer = Informer::new(api_pods.clone(), InformerConfig::default());
    let mut events = informer.subscribe(1 << 16);
    let informer = informer.spawn();
    if !informer.wait_synced().await {
        return Err("the pod watch stopped".into());
    }
    let (ready_tx, mut ready) = tokio::sync::watch::channel(false);
    let mut sconfig = ServiceConfig::new(profiles);
    sconfig.seed = sim.scenario.seed;
    sconfig.ready = Some(Arc::new(ready_tx));
    let (stop_scheduler, stop) = tokio::sync::oneshot::channel::<()>();
    stack.stop_scheduler = Some(stop_scheduler);
    tokio::spawn(service::run(client.clone(), sconfig, async {
        let _ = stop.await;
    }));
    tokio::time::timeout_at(deadline.into(), ready.wait_for(|r| *r))
        .await
        .map_err(|_| "the scheduler did not sync in time".to_string())?
        .map_err(|_| "the scheduler stopped before syncing".to_string())?;
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;

    // The measured pods, created back to back; bindings observed by the watch.
    let measured: Vec<Pod> = w
        .schedule
        .iter()
        .filter(|(id, _)| w.collects_metrics(*id))
        .map(|&(id, _)| pod_object(&w.pods[id as usize].decode(), &scheduler_name))
        .collect();
    let total = measured.len();
    let measured_names: HashSet<String> = measured
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let t0 = Instant::now();
    let (created_tx, mut created_rx) = tokio::sync::mpsc::channel::<(String, Instant)>(1024);
    let api = api_pods.clone();
    let creator = tokio::spawn(concurrently(
        measured,
        opts.create_concurrency,
        move |pod| {
            let api = api.clone();
            let tx = created_tx.clone();
            async move {
                let name = pod.metadata.name.clone().unwrap_or_default();
                create_pod(&api, &pod).await?;
                let _ = tx.send((name, Instant::now())).await;
                Ok(())
            }
        },
    ));
    let mut created_at: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut bound_at: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut last_binding = t0;
    let mut last_progress = t0;
    let mut creator = Some(creator);
    loop {
        let all_created = creator.is_none() && created_at.len() == total;
        if bound_at.len() == total
            || (all_created && last_binding.max(t0).elapsed() >= opts.idle_timeout)
            || Instant::now() >= deadline
        {
            break;
        }
        tokio::select! {
            Some((name, at)) = created_rx.recv() => {
                created_at.insert(name, at);
            }
            Some(ev) = events.recv() => {
                if let Event::Updated { new, .. } | Event::Added(new) = ev
                    && new.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                    && let Some(name) = new.metadata.name.as_ref()
                    && measured_names.contains(name)
                    && !bound_at.contains_key(name)
                {
                    last_binding = Instant::now();
                    bound_at.insert(name.clone(), last_binding);
                }
            }
            done = async { creator.as_mut().expect("guarded").await }, if creator.is_some() => {
                creator = None;
                done.map_err(|e| format!("create task: {e}"))??;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!(
                "  e2e {}: {}/{total} created, {}/{total} bound, {:.1} s",
                run.report.algorithm,
                created_at.len(),
                bound_at.len(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    while let Ok((name, at)) = created_rx.try_recv() {
        created_at.insert(name, at);
    }
    let mut latency = Latency::default();
    for (name, bound) in &bound_at {
        if let Some(created) = created_at.get(name) {
            latency.record(bound.saturating_duration_since(*created));
        }
    }
    let measured_ms = last_binding.duration_since(t0).as_secs_f64() * 1e3;
    let violations = overcommitted(&client).await?;
    drop(stack);
    Ok(E2eReport {
        algorithm: run.report.algorithm.clone(),
        skipped: None,
        nodes: w.nodes.len(),
        initial_pods_bound,
        pods_created: created_at.len(),
        pods_bound: bound_at.len(),
        pods_unbound: total - bound_at.len(),
        pods_per_s: if measured_ms > 0.0 {
            bound_at.len() as f64 / (measured_ms / 1e3)
        } else {
            0.0
        },
        setup_ms,
        measured_ms,
        latency: latency.summary(),
        sim_pods_placed: run.report.counts.pods_placed,
        violations,
    })
}

/// The workload's pod as an object to create: no UID, no grace period (there is
/// no kubelet), the algorithm's scheduler.
fn pod_object(info: &PodInfo, scheduler_name: &str) -> Pod {
    let mut pod = (*info.pod).clone();
    // A sibling shares its template's object: the name is the PodInfo's.
    pod.metadata.name = Some(info.name.clone());
    pod.metadata.uid = None;
    pod.metadata.resource_version = None;
    pod.metadata.namespace = Some(NAMESPACE.into());
    let spec = pod.spec.get_or_insert_default();
    spec.termination_grace_period_seconds = Some(0);
    spec.scheduler_name = Some(scheduler_name.to_string());
    pod
}

async fn create_node(api: &Api<Node>, node: Node) -> Result<(), String> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let created = api
        .create(&node)
        .await
        .map_err(|e| format!("creating node {name}: {e}"))?;
    if created
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .is_none()
    {
        // A server may drop the status on create, as upstream's can: set it.
        let mut node = node;
        node.metadata = created.metadata;
        api.replace_status(&name, &node)
            .await
            .map_err(|e| format!("setting node {name}'s status: {e}"))?;
    }
    Ok(())
}

async fn create_pod(api: &Api<Pod>, pod: &Pod) -> Result<Pod, String> {
    api.create(pod).await.map_err(|e| {
        format!(
            "creating pod {}: {e}",
            pod.metadata.name.as_deref().unwrap_or_default()
        )
    })
}

/// Runs `f` over `items` with at most `limit` in flight; the first error wins.
async fn concurrently<T, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Result<(), String>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for item in items {
        if set.len() >= limit.max(1)
            && let Some(r) = set.join_next().await
        {
            r.map_err(|e| e.to_string())??;
        }
        set.spawn(f(item));
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Every node whose bound pods' requests exceed its allocatable, read back from the
/// API server.
async fn overcommitted(client: &Client) -> Result<Vec<String>, String> {
    let nodes = Api::<Node>::all(client.clone())
        .list_all(&ListParams::default(), MAX_LISTED)
        .await
        .map_err(|e| format!("listing nodes: {e}"))?;
    let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE)
        .list_all(&ListParams::default(), MAX_LISTED)
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut cache = Cache::new();
    for n in &nodes.items {
        cache.add_node(n).map_err(|e| e.to_string())?;
    }
    for p in pods.items {
        if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            let info = PodInfo::new(p).map_err(|e| e.to_string())?;
            cache.add_pod(Arc::new(info)).map_err(|e| e.to_string())?;
        }
    }
    let mut snapshot = bosun_sched_algos::Snapshot::default();
    cache.update_snapshot(&mut snapshot);
    let mut out = Vec::new();
    for n in snapshot.nodes() {
        let (req, alloc) = (&n.requested, &n.allocatable);
        let mut names: Vec<&str> = vec!["cpu", "memory"];
        names.extend(req.scalar.iter().map(|(k, _)| k.as_str()));
        for r in names {
            if req.amount(r) > alloc.amount(r) {
                out.push(format!(
                    "node {}: {r} requested {} of {}",
                    n.name,
                    req.amount(r),
                    alloc.amount(r)
                ));
            }
        }
        if n.pods.len() as i64 > alloc.allowed_pod_number {
            out.push(format!(
                "node {}: {} pods of {}",
                n.name,
                n.pods.len(),
                alloc.allowed_pod_number
            ));
        }
    }
    Ok(out)
}

/// The side-by-side rows: in-process and end-to-end throughput, their ratio, the
/// end-to-end latency percentiles (ms) and counts.
fn rows(sim: &[AlgorithmReport], e2e: &[E2eReport]) -> Vec<Vec<String>> {
    let ms = |us: u64| format!("{:.1}", us as f64 / 1e3);
    e2e.iter()
        .map(|e| {
            let in_process = sim
                .iter()
                .find(|a| a.algorithm == e.algorithm)
                .map_or(0.0, |a| a.throughput.pods_per_s);
            if let Some(why) = &e.skipped {
                let mut row = vec![e.algorithm.clone(), format!("{in_process:.0}")];
                row.extend(std::iter::repeat_n("-".to_string(), 9));
                row.push(format!("skipped: {why}"));
                return row;
            }
            let l = &e.latency;
            let ratio = if in_process > 0.0 {
                format!("{:.3}", e.pods_per_s / in_process)
            } else {
                "-".into()
            };
            let note = if e.violations.is_empty() {
                String::new()
            } else {
                format!("{} over-committed nodes", e.violations.len())
            };
            vec![
                e.algorithm.clone(),
                format!("{in_process:.0}"),
                format!("{:.0}", e.pods_per_s),
                ratio,
                format!("{}/{}", e.pods_bound, e.pods_created),
                ms(l.latency_us_p50),
                ms(l.latency_us_p90),
                ms(l.latency_us_p99),
                ms(l.latency_us_p999),
                ms(l.latency_us_max),
                format!("{:.1}", e.setup_ms / 1e3),
                note,
            ]
        })
        .collect()
}

const HEADER: [&str; 12] = [
    "algorithm",
    "in-process pods/s",
    "e2e pods/s",
    "e2e/in-process",
    "bound",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p999 ms",
    "max ms",
    "setup s",
    "note",
];

/// The end-to-end figures beside the in-process ones, for the terminal.
pub fn terminal_table(sim: &[AlgorithmReport], e2e: &[E2eReport]) -> String {
    let mut out = String::from(
        "end to end (API server + scheduler service over loopback; latency: create to bound)\n",
    );
    out += &crate::report::fixed_width_table(&HEADER, &rows(sim, e2e));
    out
}

/// The end-to-end section of the Markdown report.
pub fn markdown(sim: &[AlgorithmReport], e2e: &[E2eReport]) -> String {
    let mut md = String::from(
        "\n## End to end\n\nThe same pods through an in-process API server and the scheduler \
         service over loopback HTTP: nodes and initial pods created first (initial pods bound \
         where the in-process run put them), then the measured pods created back to back. \
         Throughput is bound pods over the first create to the last binding seen; latency is \
         each pod's create acknowledgement to the watch event showing it bound, so it \
         includes queueing behind the pods created before it.\n\n",
    );
    md += &format!("| {} |\n", HEADER.join(" | "));
    md += &format!("|---|{}\n", "---:|".repeat(HEADER.len() - 2) + "---|");
    for row in rows(sim, e2e) {
        md += &format!("| {} |\n", row.join(" | "));
    }
    md
}
