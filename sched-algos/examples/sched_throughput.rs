//! Full scheduling cycles on the SchedulingBasic shape (upstream scheduler_perf:
//! nodes of 4 cpu / 32Gi / 110 pods, pods requesting 100m / 500Mi), every node
//! scored, default profile: pods/s and per-cycle latency percentiles.
//!
//! `cargo run --release -p bosun-sched-algos --example sched_throughput [nodes...]`

use std::sync::Arc;
use std::time::Instant;

use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
use bosun_sched_algos::{Cache, CycleContext, PodInfo, Profiles, Registry, Snapshot, schedule_one};

fn pod(i: usize) -> Arc<PodInfo> {
    Arc::new(
        PodInfo::new(
            PodBuilder::new(&format!("p{i}"))
                .request("100m", "500Mi")
                .build(),
        )
        .unwrap(),
    )
}

fn run(n_nodes: usize, n_init: usize, n_measured: usize) {
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    let profile = profiles.get("default-scheduler").unwrap();
    let mut cache = Cache::new();
    for i in 0..n_nodes {
        cache
            .add_node(
                &NodeBuilder::new(&format!("node-{i}"))
                    .capacity("4", "32Gi", 110)
                    .build(),
            )
            .unwrap();
    }
    let mut snap = Snapshot::default();
    let mut ctx = CycleContext::seeded(1);
    // Pods are built before timing: PodInfo comes from the informer, not the cycle.
    let pods: Vec<Arc<PodInfo>> = (0..n_init + n_measured).map(pod).collect();
    let mut latencies_us = Vec::with_capacity(n_measured);
    let start = Instant::now();
    for (i, p) in pods.into_iter().enumerate() {
        let t = Instant::now();
        cache.update_snapshot(&mut snap);
        let d = schedule_one(profile, &snap, &p, &mut ctx).expect("fits");
        cache.assume_pod(p, &d.node_name).unwrap();
        if i >= n_init {
            latencies_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        if i + 1 == n_init {
            // Measure only the measured pods, as scheduler_perf does.
            latencies_us.clear();
        }
    }
    let total = start.elapsed();
    latencies_us.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies_us[((latencies_us.len() as f64 * q) as usize).min(latencies_us.len() - 1)]
    };
    let measured_s: f64 = latencies_us.iter().sum::<f64>() / 1e6;
    println!(
        "nodes={n_nodes:>6} init={n_init:>6} measured={n_measured:>6} pods/s={:>8.0} p50={:>7.1}us p90={:>7.1}us p99={:>7.1}us max={:>8.1}us (wall {:.2}s)",
        n_measured as f64 / measured_s,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies_us.last().copied().unwrap_or(0.0),
        total.as_secs_f64()
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 5_000, 10_000]
    } else {
        sizes
    };
    for n in sizes {
        run(n, n, 2_000);
    }
}
