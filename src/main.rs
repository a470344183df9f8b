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
    /// Benchmarks and load generators.
    #[command(subcommand)]
    Bench(BenchCommand),
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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// N concurrent clients creating and updating pods over HTTP/2; latency percentiles.
    Api(BenchApiArgs),
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
        Command::Up(args) | Command::Apiserver(args) => runtime.block_on(run_apiserver(args)),
        Command::Store(args) => runtime.block_on(run_store(args)),
        Command::Bench(BenchCommand::Api(args)) => runtime.block_on(bench_api(args)),
    }
}

async fn run_store(args: StoreArgs) -> anyhow::Result<()> {
    use bosun_store_engine as store;
    let mut config = store::StoreConfig::default();
    if args.no_fsync_benchmark_only {
        config.engine.sync = store::SyncMode::NoSyncBenchmarkOnly;
        tracing::warn!("fsync is off: acknowledged writes can be lost (benchmarks only)");
    }
    let data_dir = args.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || store::Store::open(&data_dir, config)).await?;
    let st = Arc::new(
        opened.with_context(|| format!("opening the store in {}", args.data_dir.display()))?,
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!(
        "bosun store serving the etcd v3 API on {}",
        listener.local_addr()?
    );
    println!(
        "  ETCDCTL_API=3 etcdctl --endpoints={} endpoint status",
        listener.local_addr()?
    );
    store::serve(st, listener, store::ServerConfig::default(), async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}

async fn bench_api(args: BenchApiArgs) -> anyhow::Result<()> {
    let mut embedded = None;
    let config = match &args.kubeconfig {
        Some(path) => bosun_client::Config::from_kubeconfig(path)?,
        None => {
            let dir = std::env::temp_dir().join(format!("bosun-bench-api-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let material = tls::load_or_create(&dir, &[addr.ip()])?;
            let token = tls::load_or_create_token(&dir)?;
            let storage = MemoryStorage::new(MemoryStorageConfig::default());
            let config = ServerConfig {
                token: Some(token.clone()),
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
                Some(tls::server_config(&material)?),
                async {
                    let _ = stopped.await;
                },
            ));
            embedded = Some((stop, serving, dir));
            bosun_client::Config::new(&format!("https://{addr}"))?
                .with_bearer_token(token)
                .with_root_ca_pem(material.ca_pem)
        }
    };
    let cfg = bosun_harness::apiload::ApiLoadConfig {
        clients: args.clients,
        connections: args.connections,
        rate_per_s: args.rate,
        duration: Duration::from_secs(args.duration_s),
        namespace: format!("bosun-apiload-{}", std::process::id()),
    };
    eprintln!(
        "loading {} for {} s: {} clients on {} connections, rate {}",
        if embedded.is_some() {
            "an embedded API server"
        } else {
            "the cluster"
        },
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
        "{:.0} requests/s, {} errors",
        report.requests_per_s, report.errors
    );
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

async fn run_apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
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

    let storage = MemoryStorage::new(MemoryStorageConfig::default());
    let config = ServerConfig {
        token,
        advertise: addr.to_string(),
        ..ServerConfig::default()
    };
    let server = ApiServer::new(storage.clone(), config)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping: {e}"))?;
    tokio::spawn(compact_periodically(storage));

    let kubeconfig_path = args.data_dir.join(tls::KUBECONFIG_FILE);
    println!("bosun API server listening on {url}");
    println!("  export KUBECONFIG={}", kubeconfig_path.display());
    println!("  kubectl get namespaces");
    tracing::info!(%url, "serving");
    bosun_apiserver::serve(server, listener, tls_config, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await;
    Ok(())
}

/// Compacts storage every interval to the revision seen one interval earlier, so
/// watchers have at least one interval of history to resume from.
async fn compact_periodically(storage: Arc<MemoryStorage>) {
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
