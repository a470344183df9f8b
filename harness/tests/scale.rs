//! Scale: 10k nodes and 100k pods stay small. Memory is checked by its invariants
//! (bytes per object, and the process's peak RSS where Linux reports it); never by time.
//! This file holds one test so the peak RSS is this test's own.

use bosun_harness::model::{NodeSpec, PodSpec};
use bosun_harness::replay::{TimeReplayConfig, time_replay};
use bosun_harness::synth::{ClusterShape, PodShape, generate_nodes, generate_pods};

/// The bound on the harness: under 2 GiB RSS at 10k nodes and 100k pods.
const RSS_BOUND_BYTES: u64 = 2 << 30;
/// Per-object budgets; 10k nodes and 100k pods at these sizes are about 100 MiB.
const NODE_BUDGET_BYTES: usize = 4096;
const POD_BUDGET_BYTES: usize = 512;

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn ten_thousand_nodes_and_a_hundred_thousand_pods_fit_their_budgets() {
    let nodes = generate_nodes(&ClusterShape::heterogeneous(10_000), 11).unwrap();
    let mut pods = generate_pods(&PodShape::mixed(100_000), 12).unwrap();
    assert_eq!((nodes.len(), pods.len()), (10_000, 100_000));

    let node_bytes: usize = nodes
        .iter()
        .map(|n| size_of::<NodeSpec>() + n.approx_heap_bytes())
        .sum();
    let pod_bytes: usize = pods
        .iter()
        .map(|p| size_of::<PodSpec>() + p.approx_heap_bytes())
        .sum();
    assert!(
        node_bytes / nodes.len() < NODE_BUDGET_BYTES,
        "{} bytes per node",
        node_bytes / nodes.len()
    );
    assert!(
        pod_bytes / pods.len() < POD_BUDGET_BYTES,
        "{} bytes per pod",
        pod_bytes / pods.len()
    );

    // Tracking: give every pod a lifetime and build its replay (2 events per pod).
    for (i, p) in pods.iter_mut().enumerate() {
        p.arrival_ms = Some(i as u64 * 10);
        p.departure_ms = (i % 10 != 0).then_some(i as u64 * 10 + 60_000);
    }
    let replay = time_replay(&pods, TimeReplayConfig::default()).unwrap();
    assert_eq!(replay.events.len(), 200_000 - 10_000);
    let event_bytes = replay.events.capacity() * size_of_val(&replay.events[0]);
    assert!(event_bytes < 8 << 20, "{event_bytes} bytes of events");

    if let Some(rss) = peak_rss_bytes() {
        assert!(rss < RSS_BOUND_BYTES, "peak RSS {rss} bytes");
        eprintln!(
            "10k nodes: {} KiB, 100k pods: {} KiB, events: {} KiB, peak RSS {} MiB",
            node_bytes >> 10,
            pod_bytes >> 10,
            event_bytes >> 10,
            rss >> 20
        );
    }
}
