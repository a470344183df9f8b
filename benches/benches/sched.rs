//! Criterion suite for the scheduler, on upstream scheduler_perf's SchedulingBasic
//! shape (nodes 4 cpu / 32Gi / 110 pods, pods 100m / 500Mi), default profile:
//! - `sched/full_cycle/{memo,full}/N`: one cycle (update_snapshot + schedule_one +
//!   assume_pod) at 1k, 5k, 10k and 15k nodes, every node scored, with the verdict
//!   memo and without it (every node filtered and scored each cycle), side by side;
//! - `sched/filter/<plugin>` and `sched/score/<plugin>`: each default plugin's batch
//!   form over 10k nodes (throughput in nodes);
//! - `sched/queue/*`: the scheduling queue's add + pop and park + promote;
//! - `sched/snapshot_update/K`: bringing a 10k-node snapshot up to date after K nodes
//!   changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
use bosun_sched_algos::service::SchedulingQueue;
use bosun_sched_algos::{
    Cache, CycleContext, CycleState, PodInfo, Profile, Profiles, Registry, Snapshot, schedule_one,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[global_allocator]
static ALLOC: bosun_benches::Allocator = bosun_benches::ALLOCATOR;

fn cluster(n_nodes: usize) -> Cache {
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
    // Half the nodes carry one initial pod, as SchedulingBasic's init pods do.
    for i in 0..n_nodes / 2 {
        let p = PodBuilder::new(&format!("init-{i}"))
            .request("100m", "500Mi")
            .node_name(&format!("node-{}", i * 2))
            .build();
        cache.add_pod(Arc::new(PodInfo::new(p).unwrap())).unwrap();
    }
    cache
}

fn pod(name: &str) -> Arc<PodInfo> {
    let p = PodBuilder::new(name).request("100m", "500Mi").build();
    Arc::new(PodInfo::new(p).unwrap())
}

fn default_profile() -> Profile {
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    profiles.get("default-scheduler").unwrap().clone()
}

fn full_cycle(c: &mut Criterion) {
    let profile = default_profile();
    for (mode, memo) in [("memo", true), ("full", false)] {
        let mut group = c.benchmark_group(format!("sched/full_cycle/{mode}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(3));
        for n_nodes in [1_000, 5_000, 10_000, 15_000] {
            group.bench_with_input(
                BenchmarkId::from_parameter(n_nodes),
                &n_nodes,
                |b, &n_nodes| {
                    let mut cache = cluster(n_nodes);
                    let mut snap = Snapshot::default();
                    let mut ctx = CycleContext::seeded(1);
                    ctx.set_memo(memo);
                    let mut i = 0_usize;
                    b.iter_custom(|iters| {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            // The pod comes from the informer, not the cycle: built
                            // untimed; the previous one is forgotten so the cluster
                            // does not fill up.
                            let pod = pod(&format!("m{i}"));
                            if i > 0 {
                                cache.forget_pod(&format!("uid-m{}", i - 1)).unwrap();
                            }
                            let start = Instant::now();
                            cache.update_snapshot(&mut snap);
                            let d = schedule_one(&profile, &snap, &pod, &mut ctx).unwrap();
                            cache.assume_pod(pod, &d.node_name).unwrap();
                            timed += start.elapsed();
                            i += 1;
                        }
                        timed
                    });
                },
            );
        }
        group.finish();
    }
}

/// Each default Filter and Score plugin's batch form over 10k nodes, after the
/// profile's PreFilter and PreScore have filled the cycle state.
fn plugins(c: &mut Criterion) {
    const N: usize = 10_000;
    let profile = default_profile();
    let cache = cluster(N);
    let snap = cache.snapshot();
    let pod = pod("bench");
    let nodes: Vec<u32> = (0..N as u32).collect();
    let mut state = CycleState::new();
    // Plugins whose PreFilter or PreScore skips this pod (inter-pod affinity, spread)
    // do not run in its cycle: not benched.
    let mut skipped = Vec::new();
    for pl in &profile.pre_filter {
        if pl.pre_filter(&mut state, &pod, &snap).1.is_skip() {
            skipped.push(pl.name());
        }
    }
    for pl in &profile.pre_score {
        if pl.pre_score(&mut state, &pod, &snap, &nodes).is_skip() {
            skipped.push(pl.name());
        }
    }
    let mut group = c.benchmark_group("sched/filter");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    for pl in &profile.filter {
        if skipped.contains(&pl.name()) {
            continue;
        }
        group.bench_function(pl.name(), |b| {
            let mut out = vec![None; N];
            b.iter(|| {
                out.fill(None);
                pl.filter_batch(&state, &pod, &snap, &nodes, &mut out);
            });
        });
    }
    group.finish();
    let mut group = c.benchmark_group("sched/score");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    for ws in &profile.score {
        if skipped.contains(&ws.plugin.name()) {
            continue;
        }
        group.bench_function(ws.plugin.name(), |b| {
            let mut out = vec![0_i64; N];
            b.iter(|| ws.plugin.score_batch(&state, &pod, &snap, &nodes, &mut out));
        });
    }
    group.finish();
}

fn queue(c: &mut Criterion) {
    const N: usize = 10_000;
    let pods: Vec<Arc<PodInfo>> = (0..N).map(|i| pod(&format!("q{i}"))).collect();
    let mut group = c.benchmark_group("sched/queue");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.bench_function("add_then_pop_10k", |b| {
        b.iter(|| {
            let mut q = SchedulingQueue::new(N, Duration::from_secs(1), Duration::from_secs(10));
            for p in &pods {
                q.add_or_update(p.clone()).unwrap();
            }
            while q.pop().is_some() {}
        });
    });
    group.bench_function("park_then_promote_10k", |b| {
        b.iter(|| {
            let mut q = SchedulingQueue::new(N, Duration::from_secs(1), Duration::from_secs(10));
            let now = tokio::time::Instant::now();
            for p in &pods {
                q.add_or_update(p.clone()).unwrap();
            }
            while let Some((p, attempts)) = q.pop() {
                q.park(p, attempts, now);
            }
            q.promote_due(now + Duration::from_secs(20));
            assert!(q.has_active());
        });
    });
    group.finish();
}

fn snapshot_update(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut group = c.benchmark_group("sched/snapshot_update");
    group.sample_size(20);
    for k in [1_usize, 10, 100, 1_000] {
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            let mut cache = cluster(N);
            let mut snap = cache.snapshot();
            let mut round = 0_usize;
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    // K nodes change (a pod assumed on each), untimed.
                    let uids: Vec<String> = (0..k)
                        .map(|j| {
                            let p = pod(&format!("s{round}-{j}"));
                            let uid = p.uid.clone();
                            let node = format!("node-{}", (round * k + j) % N);
                            cache.assume_pod(p, &node).unwrap();
                            uid
                        })
                        .collect();
                    round += 1;
                    let start = Instant::now();
                    cache.update_snapshot(&mut snap);
                    timed += start.elapsed();
                    for uid in uids {
                        cache.forget_pod(&uid).unwrap();
                    }
                    cache.update_snapshot(&mut snap);
                }
                timed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, full_cycle, plugins, queue, snapshot_update);
criterion_main!(benches);
