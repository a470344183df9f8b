//! Criterion suite: one full scheduling cycle (update_snapshot + schedule_one +
//! assume_pod) on upstream scheduler_perf's SchedulingBasic shape (nodes 4 cpu /
//! 32Gi / 110 pods, pods 100m / 500Mi), default profile, every node scored.

use std::sync::Arc;

use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
use bosun_sched_algos::{Cache, CycleContext, PodInfo, Profiles, Registry, Snapshot, schedule_one};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

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

fn full_cycle(c: &mut Criterion) {
    let profiles = Profiles::default_profiles(&Registry::in_tree()).unwrap();
    let profile = profiles.get("default-scheduler").unwrap().clone();
    let mut group = c.benchmark_group("sched/full_cycle/scheduling_basic");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for n_nodes in [1_000, 5_000, 10_000] {
        group.bench_with_input(
            BenchmarkId::from_parameter(n_nodes),
            &n_nodes,
            |b, &n_nodes| {
                let mut cache = cluster(n_nodes);
                let mut snap = Snapshot::default();
                let mut ctx = CycleContext::seeded(1);
                let mut i = 0_usize;
                b.iter(|| {
                    // Forget the previous pod so the cluster does not fill up over the run.
                    if i > 0 {
                        cache.forget_pod(&format!("uid-m{}", i - 1)).unwrap();
                    }
                    let p = PodBuilder::new(&format!("m{i}"))
                        .request("100m", "500Mi")
                        .build();
                    let pod = Arc::new(PodInfo::new(p).unwrap());
                    cache.update_snapshot(&mut snap);
                    let d = schedule_one(&profile, &snap, &pod, &mut ctx).unwrap();
                    cache.assume_pod(pod, &d.node_name).unwrap();
                    i += 1;
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, full_cycle);
criterion_main!(benches);
