//! `bosun bench store`: the etcd v3 load against given endpoints, or `bosun store` and
//! etcd started side by side and loaded one after the other with the same workload.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use bosun_harness::stats::LatencySummary;
use bosun_harness::storeload::{self, StoreLoadConfig, StoreLoadReport, Workload};
use bosun_harness::storepeers::{self, Memory, Peer};
use serde::Serialize;

use crate::BenchStoreArgs;

/// fdatasyncs the probe times, and the bytes each one makes durable.
const PROBE_SYNCS: usize = 200;
const PROBE_BYTES: usize = 4096;

fn config(args: &BenchStoreArgs) -> anyhow::Result<StoreLoadConfig> {
    let workload: Workload = args.workload.parse().map_err(anyhow::Error::msg)?;
    Ok(StoreLoadConfig {
        workload,
        clients: args.clients,
        connections: args.connections,
        duration: std::time::Duration::from_secs(args.duration_s),
        ops_max: args.ops,
        key_bytes: args.key_bytes,
        value_bytes: args.value_bytes,
        key_space: args.key_space,
        random_keys: args.random_keys,
        prefix_ranges: args.prefix_ranges,
        serializable: args.serializable,
        watchers: args.watchers,
        watch_streams: args.watch_streams.min(args.watchers),
        watch_rate_per_s: args.watch_rate,
        seed: 42,
    })
}

pub async fn run(args: BenchStoreArgs) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let json = if args.side_by_side {
        if !args.endpoints.is_empty() {
            bail!("--side-by-side starts its own servers: drop --endpoints");
        }
        serde_json::to_value(side_by_side(&args, &cfg).await?)?
    } else {
        if args.endpoints.is_empty() {
            bail!("give --endpoints URL[,URL] or --side-by-side");
        }
        eprintln!("{} against {}", describe(&cfg), args.endpoints.join(","));
        let report = storeload::run(&args.endpoints, &cfg).await?;
        print_table(&[("endpoint", &report)]);
        serde_json::json!({"config": cfg, "endpoints": args.endpoints, "report": report})
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
        println!("report: {}", path.display());
    }
    Ok(())
}

fn describe(cfg: &StoreLoadConfig) -> String {
    match cfg.workload {
        Workload::Watch => format!(
            "watch: {} watchers on {} streams, {} puts/s for {} s",
            cfg.watchers,
            cfg.watch_streams,
            cfg.watch_rate_per_s,
            cfg.duration.as_secs()
        ),
        w => format!(
            "{w:?}: {} clients on {} connections for {} s",
            cfg.clients,
            cfg.connections,
            cfg.duration.as_secs()
        ),
    }
}

/// One server's side of a side-by-side run.
#[derive(Serialize)]
struct Side {
    server: String,
    report: StoreLoadReport,
    memory: Memory,
    disk_bytes: u64,
    disk_bytes_per_key: f64,
    /// RSS over the keys the server holds: the servers end a run of the same length
    /// holding different numbers of keys, so RSS alone does not compare them.
    rss_bytes_per_key: f64,
}

#[derive(Serialize)]
struct SideBySide {
    config: StoreLoadConfig,
    log_backend: String,
    grpc_transport: String,
    /// The floor under any durable write: append + fdatasync on this disk.
    fdatasync_probe: LatencySummary,
    ours: Side,
    etcd: Side,
    /// ours / etcd for each figure (above 1: ours is higher).
    ratio_ours_to_etcd: BTreeMap<String, f64>,
}

async fn side_by_side(args: &BenchStoreArgs, cfg: &StoreLoadConfig) -> anyhow::Result<SideBySide> {
    let probe = storepeers::fdatasync_probe(&std::env::temp_dir(), PROBE_SYNCS, PROBE_BYTES)
        .context("fdatasync probe")?;
    eprintln!(
        "fdatasync of {PROBE_BYTES} appended bytes: p50 {} us, p99 {} us",
        probe.latency_us_p50, probe.latency_us_p99
    );
    eprintln!("{}", describe(cfg));
    let exe = std::env::current_exe()?;
    let bosun_args = vec![
        "--log-backend".to_string(),
        args.log_backend.clone(),
        "--grpc-transport".to_string(),
        args.grpc_transport.clone(),
    ];
    let ours = load_one(Peer::bosun(&exe, &bosun_args)?, cfg).await?;
    let etcd = load_one(Peer::etcd_ready(&args.etcd).await?, cfg).await?;
    print_table(&[("bosun", &ours.report), ("etcd", &etcd.report)]);
    let ratio_ours_to_etcd = ratios(&ours, &etcd);
    println!("ours/etcd:");
    for (k, v) in &ratio_ours_to_etcd {
        println!("  {k:<28} {v:>10.3}");
    }
    Ok(SideBySide {
        config: cfg.clone(),
        log_backend: args.log_backend.clone(),
        grpc_transport: args.grpc_transport.clone(),
        fdatasync_probe: probe,
        ours,
        etcd,
        ratio_ours_to_etcd,
    })
}

async fn load_one(mut peer: Peer, cfg: &StoreLoadConfig) -> anyhow::Result<Side> {
    peer.wait_ready().await?;
    eprintln!("loading {} at {}", peer.name, peer.url);
    let report = storeload::run(std::slice::from_ref(&peer.url), cfg)
        .await
        .with_context(|| match peer.exited() {
            Some(exited) => format!("loading {}: {exited}", peer.name),
            None => format!("loading {}", peer.name),
        })?;
    let memory = peer.memory();
    let disk_bytes = peer.disk_bytes();
    Ok(Side {
        server: peer.name.clone(),
        disk_bytes_per_key: disk_bytes as f64 / report.n_keys.max(1) as f64,
        rss_bytes_per_key: memory.rss_bytes as f64 / report.n_keys.max(1) as f64,
        report,
        memory,
        disk_bytes,
    })
}

fn ratios(ours: &Side, etcd: &Side) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut put = |name: &str, a: f64, b: f64| {
        if b > 0.0 {
            out.insert(name.to_string(), a / b);
        }
    };
    let (a, b) = (&ours.report, &etcd.report);
    put("ops_per_s", a.ops_per_s, b.ops_per_s);
    put(
        "latency_us_p50",
        a.all.latency_us_p50 as f64,
        b.all.latency_us_p50 as f64,
    );
    put(
        "latency_us_p99",
        a.all.latency_us_p99 as f64,
        b.all.latency_us_p99 as f64,
    );
    put(
        "latency_us_p999",
        a.all.latency_us_p999 as f64,
        b.all.latency_us_p999 as f64,
    );
    put(
        "rss_bytes",
        ours.memory.rss_bytes as f64,
        etcd.memory.rss_bytes as f64,
    );
    put(
        "rss_bytes_per_key",
        ours.rss_bytes_per_key,
        etcd.rss_bytes_per_key,
    );
    put(
        "disk_bytes_per_key",
        ours.disk_bytes_per_key,
        etcd.disk_bytes_per_key,
    );
    if let (Some(wa), Some(wb)) = (&a.watch, &b.watch) {
        put("watch_events_per_s", wa.events_per_s, wb.events_per_s);
        put(
            "watch_delivery_us_p99",
            wa.delivery.latency_us_p99 as f64,
            wb.delivery.latency_us_p99 as f64,
        );
    }
    out
}

fn print_table(rows: &[(&str, &StoreLoadReport)]) {
    println!(
        "{:<8} {:<6} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "server",
        "op",
        "count",
        "ops/s",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
        "errors"
    );
    for (name, r) in rows {
        let line = |op: &str, s: &LatencySummary, ops_per_s: f64, errors: u64| {
            println!(
                "{name:<8} {op:<6} {:>9} {ops_per_s:>11.0} {:>8} {:>8} {:>8} {:>8} {:>9} {errors:>7}",
                s.count,
                s.latency_us_p50,
                s.latency_us_p90,
                s.latency_us_p99,
                s.latency_us_p999,
                s.latency_us_max
            );
        };
        line("all", &r.all, r.ops_per_s, r.errors);
        if r.per_op.len() > 1 {
            for (op, s) in &r.per_op {
                line(op, s, s.count as f64 / r.duration_s, 0);
            }
        }
        if let Some(w) = &r.watch {
            line("watch", &w.delivery, w.events_per_s, w.events_missing);
        }
        if r.txn_conflicts > 0 {
            println!("{name:<8} txn compare failures: {}", r.txn_conflicts);
        }
        if !r.timeline.is_empty() {
            let p99s = r.timeline.iter().map(|t| t.latency_us_p99);
            let (lo, hi) = (p99s.clone().min().unwrap_or(0), p99s.max().unwrap_or(0));
            let steal = r
                .machine_steal_ms
                .map_or("n/a".to_string(), |s| format!("{s:.0} ms"));
            println!("{name:<8} p99 by second {lo}-{hi} us; machine steal {steal} over the run");
        }
        for e in &r.error_samples {
            println!("{name:<8} error: {e}");
        }
    }
}
