//! The `bosun` binary: one command per component. Each subcommand only wires crates
//! together; the logic lives in the crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bosun_apiserver::server::{ApiServer, ServerConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig, Storage};
use bosun_apiserver::tls;
use clap::{Args, Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often the API server compacts storage history, and how much it keeps
/// (kube-apiserver's default `--etcd-compaction-interval`).
const COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

#[derive(Parser)]
#[command(
    name = "bosun",
    version,
    about = "Bosun: a Kubernetes-style control plane built for measuring its hot paths"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a single-process cluster that kubectl drives.
    Up(ApiserverArgs),
    /// Run the API server alone.
    Apiserver(ApiserverArgs),
    /// Run the store: the durable MVCC engine behind the etcd v3 gRPC API.
    Store(StoreArgs),
    /// Run the scheduler against an API server: watch pods and nodes, bind pods.
    Scheduler(SchedulerArgs),
    /// Benchmarks and load generators.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args)]
struct SchedulerArgs {
    /// The cluster to schedule for.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// A KubeSchedulerConfiguration YAML file; default: the upstream default profile.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve the scheduler's Prometheus metrics over plain HTTP at /metrics here.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

/// The scheduler's configuration from an optional KubeSchedulerConfiguration file.
fn scheduler_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<bosun_sched_algos::service::ServiceConfig> {
    use bosun_sched_algos::{Profiles, Registry, service::ServiceConfig};
    let Some(path) = path else {
        return Ok(ServiceConfig::default());
    };
    let yaml =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let profiles = Profiles::from_yaml(&yaml, &Registry::in_tree())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(ServiceConfig::new(profiles))
}

async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let config = scheduler_config(args.config.as_deref())?;
    let client =
        bosun_client::Client::new(bosun_client::Config::from_kubeconfig(&args.kubeconfig)?)?;
    println!(
        "bosun scheduler running against {}",
        args.kubeconfig.display()
    );
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        println!("  metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(serve_metrics(listener, config.metrics.clone()));
    }
    bosun_sched_algos::service::run(client, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Answers every HTTP/1.1 request on `listener` with the scheduler's metrics
/// (`/metrics`) or 404, one request per connection; requests are read up to 8 KiB.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<bosun_sched_algos::metrics::SchedulerMetrics>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            // Out of descriptors, say: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0_u8; 8192];
            let mut n = 0;
            let read = async {
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .is_err()
            {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}

#[derive(Args)]
struct StoreArgs {
    /// Directory for the log segments, checkpoints and leases.
    #[arg(long, default_value = "./bosun-store")]
    data_dir: PathBuf,
    /// Address to serve the etcd v3 API on.
    #[arg(long, default_value = "127.0.0.1:2379")]
    listen: SocketAddr,
    /// Acknowledge writes before they are durable. For benchmarks only: a crash loses
    /// acknowledged writes.
    #[arg(long)]
    no_fsync_benchmark_only: bool,
    /// How the logs are written: `std` (pwrite + fdatasync) or `io-uring` (writes and
    /// the fdatasync submitted together).
    #[arg(long, default_value = "std")]
    log_backend: bosun_store_engine::LogBackend,
    /// The HTTP/2 stack under the gRPC service: `direct` (one task per connection,
    /// reads and writes batched) or `tonic` (hyper and h2, a task per call).
    #[arg(long, default_value = "direct")]
    grpc_transport: bosun_store_engine::grpc::Transport,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// N concurrent clients creating and updating pods over HTTP/2; latency percentiles.
    Api(BenchApiArgs),
    /// Compare scheduling algorithms on scenarios (synthetic clusters, real traces).
    Sched(BenchSchedArgs),
    /// Load an etcd v3 endpoint (bosun store or etcd), or both side by side.
    Store(BenchStoreArgs),
}

#[derive(Args)]
struct BenchStoreArgs {
    /// Endpoints to load (comma-separated URLs); not with --side-by-side.
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Start `bosun store` and etcd on loopback in temporary directories (fsync on in
    /// both), run the same workload against each, and report ours/etcd ratios.
    #[arg(long)]
    side_by_side: bool,
    /// put | range | txn | watch | mixed
    #[arg(long, default_value = "put")]
    workload: String,
    /// Concurrent clients, one request in flight each.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// gRPC connections the clients (or watch streams) share.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Stop after this many operations (0: the duration bounds the run).
    #[arg(long, default_value_t = 0)]
    ops: u64,
    #[arg(long, default_value_t = 8)]
    key_bytes: usize,
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Keys preloaded for range, txn and mixed; the range of random put keys.
    #[arg(long, default_value_t = 10_000)]
    key_space: u64,
    /// Random keys instead of sequential ones (put).
    #[arg(long)]
    random_keys: bool,
    /// Prefix ranges of 256 keys instead of point gets (range).
    #[arg(long)]
    prefix_ranges: bool,
    /// Serializable reads instead of linearizable ones.
    #[arg(long)]
    serializable: bool,
    /// Watchers on one prefix (watch).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Watch streams the watchers are spread over.
    #[arg(long, default_value_t = 100)]
    watch_streams: usize,
    /// Puts per second while the watchers watch.
    #[arg(long, default_value_t = 100)]
    watch_rate: u64,
    /// Log backend of the `bosun store` that --side-by-side starts (std | io-uring).
    #[arg(long, default_value = "std")]
    log_backend: String,
    /// gRPC transport of the `bosun store` that --side-by-side starts (direct | tonic).
    #[arg(long, default_value = "direct")]
    grpc_transport: String,
    /// The etcd binary --side-by-side starts.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Scenarios `bosun bench sched` runs when none is named.
const DEFAULT_SCHED_SCENARIOS: [&str; 2] = ["SchedulingBasic-10k", "openb-fgd"];

#[derive(Args)]
struct BenchSchedArgs {
    /// Scenario names (see --list) or YAML files; default: SchedulingBasic-10k and openb-fgd.
    #[arg(long)]
    scenario: Vec<String>,
    /// Run these algorithms instead of the scenario's (comma-separated): default,
    /// default-adaptive, most-allocated, spread, fgd, drf, tetris, first-fit, random,
    /// min-cost-flow, or a name of the scenario's profiles.
    #[arg(long, value_delimiter = ',')]
    algorithms: Option<Vec<String>>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write all reports as one JSON array here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JSON and a Markdown report per scenario into this directory.
    #[arg(long, default_value = "bosun-reports")]
    report: PathBuf,
    /// List the shipped scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Also run each algorithm end to end: an in-process API server and the scheduler
    /// service over loopback, the same pods created through the API; the report puts
    /// both figures side by side.
    #[arg(long)]
    e2e: bool,
}

#[derive(Args)]
struct BenchApiArgs {
    /// Target this cluster; without it, an embedded API server runs in this process.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// HTTP/2 connections the clients share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Total target rate of mutating requests per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to load, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Speak HTTP/2 without TLS (h2c with prior knowledge): the embedded server serves
    /// plain HTTP without authentication, as `bosun up --insecure-http` does; with
    /// --kubeconfig, its server must be such an http:// server. Benchmarks only.
    #[arg(long)]
    insecure_http: bool,
}

#[derive(Args, Clone)]
struct ApiserverArgs {
    /// Directory for credentials, the kubeconfig and (later) the store.
    #[arg(long, default_value = "./bosun-data")]
    data_dir: PathBuf,
    /// Address to serve the API on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Serve plain HTTP without authentication (benchmarks only).
    #[arg(long)]
    insecure_http: bool,
    /// Where objects live: `embedded` (the durable store engine in DATA_DIR/store),
    /// `memory` (the in-memory reference, lost at exit) or `etcd=URL[,URL]` (a remote etcd
    /// v3 endpoint: our `bosun store` or a real etcd; needs the `etcd` build feature).
    #[arg(long, default_value = "embedded")]
    storage: String,
    /// Do not run the scheduler in this process (`bosun up` only).
    #[arg(long)]
    no_scheduler: bool,
}

/// Opens the API server's storage as `--storage` says.
async fn open_storage(spec: &str, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Storage>> {
    match spec.split_once('=').unwrap_or((spec, "")) {
        ("memory", _) => Ok(MemoryStorage::new(MemoryStorageConfig::default())),
        ("embedded", _) => {
            let dir = data_dir.join("store");
            let storage = bosun_apiserver::storage::EmbeddedStorage::open(&dir).map_err(|e| {
                anyhow::anyhow!("opening the embedded store in {}: {e}", dir.display())
            })?;
            Ok(storage)
        }
        #[cfg(feature = "etcd")]
        ("etcd", urls) if !urls.is_empty() => {
            let endpoints: Vec<String> = urls.split(',').map(str::to_string).collect();
            let storage = bosun_apiserver::storage::EtcdStorage::connect(&endpoints)
                .await
                .map_err(|e| anyhow::anyhow!("connecting to etcd at {urls}: {e}"))?;
            Ok(storage)
        }
        #[cfg(not(feature = "etcd"))]
        ("etcd", _) => anyhow::bail!(
            "this binary was built without the `etcd` feature (cargo build --features etcd)"
        ),
        _ => anyhow::bail!("unknown --storage {spec:?}: use embedded, memory or etcd=URL[,URL]"),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(run_apiserver(args, true)),
        Command::Apiserver(args) => runtime.block_on(run_apiserver(args, false)),
        Command::Store(args) => runtime.block_on(run_store(args)),
        Command::Scheduler(args) => runtime.block_on(run_scheduler(args)),
        Command::Bench(BenchCommand::Api(args)) => runtime.block_on(bench_api(args)),
        Command::Bench(BenchCommand::Sched(args)) => bench_sched(args, &runtime),
        Command::Bench(BenchCommand::Store(args)) => runtime.block_on(bench_store::run(args)),
    }
}

#[cfg(not(feature = "etcd"))]
mod bench_store {
    pub async fn run(_: super::BenchStoreArgs) -> anyhow::Result<()> {
        anyhow::bail!(
            "this binary was built without the `etcd` feature (cargo build --release --features etcd)"
        )
    }
}

#[cfg(feature = "etcd")]
mod bench_store;

async fn run_store(args: StoreArgs) -> anyhow::Result<()> {
    use bosun_store_engine as store;
    let mut config = store::StoreConfig {
        log_backend: args.log_backend,
        ..store::StoreConfig::default()
    };
    if args.no_fsync_benchmark_only {
        config.engine.sync = store::SyncMode::NoSyncBenchmarkOnly;
        tracing::warn!("fsync is off: acknowledged writes can be lost (benchmarks only)");
    }
    let data_dir = args.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || store::Store::open(&data_dir, config)).await?;
    let st = Arc::new(
        opened.with_context(|| format!("opening the store in {}", args.data_dir.display()))?,
    );
    for repair in st.repaired_tails() {
        tracing::warn!("store log repaired on open: {repair}");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!(
        "bosun store serving the etcd v3 API on {}",
        listener.local_addr()?
    );
    println!("  log backend: {}", args.log_backend);
    println!("  gRPC transport: {:?}", args.grpc_transport);
    println!(
        "  ETCDCTL_API=3 etcdctl --endpoints={} endpoint status",
        listener.local_addr()?
    );
    let config = store::ServerConfig {
        transport: args.grpc_transport,
        ..Default::default()
    };
    store::serve(st, listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}

fn bench_sched(args: BenchSchedArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use bosun_harness::{scenario, sim};
    if args.list {
        for name in scenario::list_scenarios() {
            println!("{name}");
        }
        return Ok(());
    }
    let names: Vec<String> = if args.scenario.is_empty() {
        DEFAULT_SCHED_SCENARIOS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.scenario.clone()
    };
    let opts = sim::RunOptions {
        algorithms: args.algorithms.clone(),
        seed: args.seed,
        ..sim::RunOptions::default()
    };
    let mut reports = Vec::new();
    for name in &names {
        let sc = scenario::load_scenario(name)?;
        eprintln!("running {name}");
        let simulation = sim::simulate(&sc, &opts)?;
        let mut report = simulation.report();
        if args.e2e {
            eprintln!("running {name} end to end");
            let e2e_opts = bosun_harness::e2e::E2eOptions::default();
            report.e2e = runtime.block_on(bosun_harness::e2e::run_e2e(&simulation, &e2e_opts))?;
        }
        drop(simulation);
        println!("{}", report.terminal_table());
        let (json, md) = report.write_files(&args.report)?;
        println!("report: {} and {}", md.display(), json.display());
        reports.push(serde_json::from_str::<serde_json::Value>(
            &report.to_json(),
        )?);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)?;
        println!("all reports: {}", path.display());
    }
    Ok(())
}

async fn bench_api(args: BenchApiArgs) -> anyhow::Result<()> {
    let mut embedded = None;
    let config = match &args.kubeconfig {
        Some(path) => {
            let config = bosun_client::Config::from_kubeconfig(path)?;
            if args.insecure_http && config.is_https() {
                anyhow::bail!(
                    "--insecure-http needs a plain http:// server, and {} names {}",
                    path.display(),
                    config.base_url
                );
            }
            config
        }
        None => {
            let dir = std::env::temp_dir().join(format!("bosun-bench-api-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (tls_config, token, client) = if args.insecure_http {
                (
                    None,
                    None,
                    bosun_client::Config::new(&format!("http://{addr}"))?,
                )
            } else {
                let material = tls::load_or_create(&dir, &[addr.ip()])?;
                let token = tls::load_or_create_token(&dir)?;
                (
                    Some(tls::server_config(&material)?),
                    Some(token.clone()),
                    bosun_client::Config::new(&format!("https://{addr}"))?
                        .with_bearer_token(token)
                        .with_root_ca_pem(material.ca_pem),
                )
            };
            let storage = MemoryStorage::new(MemoryStorageConfig::default());
            let config = ServerConfig {
                token,
                advertise: addr.to_string(),
                ..ServerConfig::default()
            };
            let server = ApiServer::new(storage, config)
                .await
                .map_err(|e| anyhow::anyhow!("bootstrapping: {e}"))?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(bosun_apiserver::serve(
                server,
                listener,
                tls_config,
                async {
                    let _ = stopped.await;
                },
            ));
            embedded = Some((stop, serving, dir));
            client
        }
    };
    let config = if args.insecure_http {
        config.with_http2_prior_knowledge()
    } else {
        config
    };
    let cfg = bosun_harness::apiload::ApiLoadConfig {
        clients: args.clients,
        connections: args.connections,
        rate_per_s: args.rate,
        duration: Duration::from_secs(args.duration_s),
        namespace: format!("bosun-apiload-{}", std::process::id()),
    };
    eprintln!(
        "loading {} over {} for {} s: {} clients on {} connections, rate {}",
        if embedded.is_some() {
            "an embedded API server"
        } else {
            "the cluster"
        },
        bosun_harness::apiload::transport(&config),
        args.duration_s,
        args.clients,
        args.connections,
        if args.rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{}/s", args.rate)
        }
    );
    let report = bosun_harness::apiload::run(config, &cfg).await?;
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"
    );
    for (op, s) in [
        ("create", &report.create),
        ("update", &report.update),
        ("all", &report.all),
    ] {
        println!(
            "{op:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            s.count,
            s.latency_us_p50,
            s.latency_us_p90,
            s.latency_us_p99,
            s.latency_us_p999,
            s.latency_us_max
        );
    }
    println!(
        "{:.0} requests/s, {} errors, {:.0} us of this process's CPU per request",
        report.requests_per_s, report.errors, report.process_cpu_us_per_request
    );
    println!(
        "p99 by second (ms): {}",
        report
            .timeline
            .iter()
            .map(|t| format!("{:.1}", t.latency_us_p99 as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(steal) = report.machine_steal_ms {
        println!(
            "machine steal {steal:.0} ms, by second (ms): {}",
            report
                .timeline
                .iter()
                .map(|t| format!("{:.0}", t.machine_steal_ms.unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        println!("report: {}", path.display());
    }
    if let Some((stop, serving, dir)) = embedded {
        let _ = stop.send(());
        let _ = serving.await;
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

async fn run_apiserver(args: ApiserverArgs, with_scheduler: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (tls_config, token, scheme, ca) = if args.insecure_http {
        (None, None, "http", None)
    } else {
        let material = tls::load_or_create(&args.data_dir, &[addr.ip()])?;
        let token = tls::load_or_create_token(&args.data_dir)?;
        (
            Some(tls::server_config(&material)?),
            Some(token),
            "https",
            Some(material.ca_pem),
        )
    };
    let url = format!("{scheme}://{addr}");
    let kubeconfig = tls::kubeconfig(&url, ca.as_deref(), token.as_deref());
    tls::write_private(&args.data_dir, tls::KUBECONFIG_FILE, &kubeconfig)?;

    let storage = open_storage(&args.storage, &args.data_dir).await?;
    let config = ServerConfig {
        token,
        advertise: addr.to_string(),
        ..ServerConfig::default()
    };
    let server = ApiServer::new(storage.clone(), config)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping: {e}"))?;
    let server_metrics = server.metrics.clone();
    tokio::spawn(compact_periodically(storage));

    let kubeconfig_path = args.data_dir.join(tls::KUBECONFIG_FILE);
    println!(
        "bosun API server listening on {url} (storage: {})",
        args.storage
    );
    println!("  export KUBECONFIG={}", kubeconfig_path.display());
    println!("  kubectl get namespaces");
    tracing::info!(%url, "serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let scheduler = (with_scheduler && !args.no_scheduler).then(|| {
        let sched_config = bosun_sched_algos::service::ServiceConfig::default();
        let metrics = sched_config.metrics.clone();
        server_metrics.add_source(Box::new(move || metrics.render()));
        // The scheduler talks to this server through the kubeconfig it just wrote, as an
        // out-of-process scheduler would.
        let client =
            bosun_client::Config::from_kubeconfig(&kubeconfig_path).map(bosun_client::Client::new);
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            match client {
                Ok(Ok(client)) => {
                    if let Err(e) =
                        bosun_sched_algos::service::run(client, sched_config, stop).await
                    {
                        tracing::error!(error = %e, "scheduler stopped");
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "scheduler client"),
                Err(e) => tracing::error!(error = %e, "scheduler kubeconfig"),
            }
        })
    });
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    bosun_apiserver::serve(server, listener, tls_config, stopped(stop_rx)).await;
    if let Some(s) = scheduler {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    Ok(())
}

/// Compacts storage every interval to the revision seen one interval earlier, so
/// watchers have at least one interval of history to resume from.
async fn compact_periodically(storage: Arc<dyn Storage>) {
    let mut previous = None;
    let mut tick = tokio::time::interval(COMPACTION_INTERVAL);
    loop {
        tick.tick().await;
        if let Some(rev) = previous
            && let Err(e) = storage.compact(rev).await
        {
            tracing::warn!(error = %e, "compaction failed");
        }
        previous = storage.current_revision().await.ok();
    }
}
