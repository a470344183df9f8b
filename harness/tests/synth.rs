//! The synthetic generator: reproducible from a seed, the requested counts, and the
//! shape's proportions.

use std::collections::{BTreeMap, BTreeSet};

use bosun_harness::model::GpuRequest;
use bosun_harness::synth::{ClusterShape, PodShape, generate_nodes, generate_pods};

#[test]
fn nodes_are_deterministic_per_seed_with_requested_count() {
    let shape = ClusterShape::heterogeneous(2000);
    let a = generate_nodes(&shape, 7).unwrap();
    assert_eq!(a.len(), 2000);
    assert_eq!(a, generate_nodes(&shape, 7).unwrap());
    assert_ne!(a, generate_nodes(&shape, 8).unwrap());
    let names: BTreeSet<_> = a.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), 2000);
    assert_eq!(a[0].name, "synth-0000");
}

#[test]
fn nodes_follow_the_shape() {
    let shape = ClusterShape::heterogeneous(6000);
    let nodes = generate_nodes(&shape, 1).unwrap();
    // Zones round-robin over 2 regions × 3 zones: exactly 1,000 each.
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &nodes {
        *per_zone.entry(n.zone.as_deref().unwrap()).or_default() += 1;
        assert!(
            n.zone
                .as_deref()
                .unwrap()
                .starts_with(n.region.as_deref().unwrap())
        );
    }
    assert_eq!(per_zone.len(), 6);
    assert!(per_zone.values().all(|&c| c == 1000), "{per_zone:?}");
    // Templates in proportion to their weights (G2 is 549 of 1,349), within 3 points.
    let g2 = nodes
        .iter()
        .filter(|n| n.gpu_model.as_deref() == Some("G2"))
        .count();
    let want = 6000 * 549 / 1349;
    assert!(
        g2.abs_diff(want) < 180,
        "{g2} G2 nodes, expected about {want}"
    );
    // About 10% tainted, each with at most one taint from the pool.
    let tainted = nodes.iter().filter(|n| !n.taints.is_empty()).count();
    assert!((450..750).contains(&tainted), "{tainted}");
    assert!(nodes.iter().all(|n| {
        n.taints.len() <= 1
            && shape
                .taints
                .contains(&n.taints.first().cloned().unwrap_or(shape.taints[0].clone()))
    }));
    // 8 distinct images per node, from the set of 50.
    for n in &nodes {
        let images: BTreeSet<_> = n.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(images.len(), 8, "{}", n.name);
    }
    let all_images: BTreeSet<_> = nodes
        .iter()
        .flat_map(|n| n.images.iter().map(|i| i.name.clone()))
        .collect();
    assert_eq!(all_images.len(), 50);
    // Every node converts, with GPU labels where it has GPUs.
    for n in nodes.iter().take(100) {
        let k = n.to_k8s();
        let labels = k.metadata.labels.unwrap();
        assert_eq!(labels.contains_key("gpu-model"), n.gpus > 0);
    }
}

#[test]
fn pods_are_deterministic_per_seed_with_requested_count() {
    let shape = PodShape::mixed(5000);
    let a = generate_pods(&shape, 3).unwrap();
    assert_eq!(a.len(), 5000);
    assert_eq!(a, generate_pods(&shape, 3).unwrap());
    assert_ne!(a, generate_pods(&shape, 4).unwrap());
    // ±20% jitter around the templates' requests.
    assert!(
        a.iter()
            .all(|p| p.cpu_milli >= 400 && p.cpu_milli <= 76_800)
    );
    let fractional = a
        .iter()
        .filter(|p| matches!(p.gpu, GpuRequest::Fraction(_)))
        .count();
    assert!(
        (1250..1750).contains(&fractional),
        "{fractional} of 5000, expected 30%"
    );
    let images: BTreeSet<_> = a.iter().map(|p| p.image.clone().unwrap()).collect();
    assert_eq!(images.len(), 20);
    let basic = generate_pods(&PodShape::scheduler_perf_basic(1000), 0).unwrap();
    assert_eq!(basic.len(), 1000);
    assert!(
        basic
            .iter()
            .all(|p| p.cpu_milli == 100 && p.memory_mib == 500)
    );
}
