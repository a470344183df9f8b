//! Golden tests for NodeResourcesFit and NodeResourcesBalancedAllocation. Expected
//! scores are worked by hand from upstream's formulas (module docs of the parent).

use super::*;
use crate::fixtures::{NodeBuilder, PodBuilder};
use crate::plugins::testutil::{filter_all, node, pod, score_all, snapshot};

fn fit(yaml: &str) -> Fit {
    let args: FitArgs = if yaml.is_empty() {
        FitArgs::default()
    } else {
        serde_yaml::from_str(yaml).unwrap()
    };
    Fit::new(&args).unwrap()
}

/// Node: 10m cpu, 20 bytes memory, 32 pods, 4 GPUs; one pod uses 5m, 19 bytes, 2 GPUs.
fn small_node() -> Snapshot {
    let used = PodBuilder::new("used")
        .request("5m", "19")
        .request_resource("nvidia.com/gpu", "2")
        .build();
    snapshot(vec![node(
        NodeBuilder::new("n")
            .capacity("10m", "20", 32)
            .allocatable("nvidia.com/gpu", "4")
            .build(),
        vec![used],
    )])
}

fn reasons(pl: &Fit, b: PodBuilder, snap: &Snapshot) -> Vec<String> {
    let out = filter_all(pl, &CycleState::new(), &pod(b.build()), snap);
    match &out[0] {
        None => vec![],
        Some(s) => {
            assert_eq!(s.code(), Code::Unschedulable);
            s.reasons().iter().map(|r| r.to_string()).collect()
        }
    }
}

/// Upstream fit_test.go `TestEnoughRequests`-style cases on `small_node`.
#[test]
fn fit_filter_golden() {
    let pl = fit("");
    let snap = small_node();
    let cases: Vec<(PodBuilder, &[&str])> = vec![
        (PodBuilder::new("best-effort"), &[]),
        (PodBuilder::new("fits").request("5m", "1"), &[]),
        (
            PodBuilder::new("cpu").request("6m", "1"),
            &["Insufficient cpu"],
        ),
        (
            PodBuilder::new("both").request("6m", "2"),
            &["Insufficient cpu", "Insufficient memory"],
        ),
        // max(sum(containers) = 2m, init = 6m) = 6m.
        (
            PodBuilder::new("init")
                .request("1m", "1")
                .container("1m", "")
                .init_container("6m", "1", false),
            &["Insufficient cpu"],
        ),
        // Sidecars add to containers: 3m + 3m = 6m.
        (
            PodBuilder::new("sidecar")
                .request("3m", "0")
                .init_container("3m", "0", true),
            &["Insufficient cpu"],
        ),
        (
            PodBuilder::new("gpu-ok").request_resource("nvidia.com/gpu", "2"),
            &[],
        ),
        (
            PodBuilder::new("gpu").request_resource("nvidia.com/gpu", "3"),
            &["Insufficient nvidia.com/gpu"],
        ),
        (
            PodBuilder::new("other").request_resource("example.com/foo", "1"),
            &["Insufficient example.com/foo"],
        ),
        // A zero scalar request is skipped.
        (
            PodBuilder::new("zero").request_resource("example.com/foo", "0"),
            &[],
        ),
    ];
    for (b, want) in cases {
        let name = b.clone().build().metadata.name.unwrap();
        assert_eq!(reasons(&pl, b, &snap), want, "pod {name}");
    }
    let ignored = fit("ignoredResources: [nvidia.com/gpu]");
    assert!(
        reasons(
            &ignored,
            PodBuilder::new("gpu").request_resource("nvidia.com/gpu", "3"),
            &snap
        )
        .is_empty()
    );
    let group = fit("ignoredResourceGroups: [nvidia.com]");
    assert!(
        reasons(
            &group,
            PodBuilder::new("gpu").request_resource("nvidia.com/gpu", "3"),
            &snap
        )
        .is_empty()
    );
}

#[test]
fn fit_filter_pods_and_overhead() {
    let pl = fit("");
    let full = snapshot(vec![node(
        NodeBuilder::new("n").capacity("10m", "20", 1).build(),
        vec![PodBuilder::new("x").build()],
    )]);
    assert_eq!(reasons(&pl, PodBuilder::new("p"), &full), ["Too many pods"]);
    assert_eq!(
        reasons(&pl, PodBuilder::new("p").request("11m", "1"), &full),
        ["Too many pods", "Insufficient cpu"]
    );
    // Overhead counts: 5m + 1m overhead > 5m free.
    let mut p = PodBuilder::new("o").request("5m", "0").build();
    p.spec.as_mut().unwrap().overhead = Some(
        [(
            "cpu".to_owned(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1m".into()),
        )]
        .into(),
    );
    let out = filter_all(&pl, &CycleState::new(), &pod(p), &small_node());
    assert_eq!(
        out[0].as_ref().map(Status::message).as_deref(),
        Some("Insufficient cpu")
    );
}

/// Pod 3000m/5000 (two containers) on n1 4000m/10000 and n2 6000m/10000.
fn two_nodes() -> (Snapshot, PodInfo) {
    let snap = snapshot(vec![
        node(
            NodeBuilder::new("n1")
                .capacity("4000m", "10000", 110)
                .allocatable("nvidia.com/gpu", "4")
                .build(),
            vec![],
        ),
        node(
            NodeBuilder::new("n2")
                .capacity("6000m", "10000", 110)
                .build(),
            vec![],
        ),
    ]);
    let p = pod(PodBuilder::new("p")
        .request("1000m", "2000")
        .container("2000m", "3000")
        .build());
    (snap, p)
}

fn scores_of(pl: &Fit, p: &PodInfo, snap: &Snapshot) -> Vec<i64> {
    let mut state = CycleState::new();
    assert!(pl.pre_score(&mut state, p, snap, &[0, 1]).is_success());
    score_all(pl, &state, p, snap).1
}

#[test]
fn least_allocated_golden() {
    let (snap, p) = two_nodes();
    // n1: cpu (4000-3000)*100/4000 = 25, mem (10000-5000)*100/10000 = 50 -> 75/2 = 37.
    // n2: cpu 3000*100/6000 = 50, mem 50 -> 50. (upstream least_allocated_test.go)
    assert_eq!(scores_of(&fit(""), &p, &snap), [37, 50]);
    // Best effort: non-zero defaults 100m and 200Mi. Node 4 cpu, 10Gi:
    // cpu 3900*100/4000 = 97, mem (10240-200)Mi*100/10240Mi = 98 -> 195/2 = 97.
    let big = snapshot(vec![node(
        NodeBuilder::new("b").capacity("4", "10Gi", 110).build(),
        vec![],
    )]);
    let be = pod(PodBuilder::new("be").build());
    assert_eq!(scores_of(&fit(""), &be, &big), [97]);
    // Weights cpu 1, memory 3; pod 1000m/6Gi on 4 cpu/8Gi: cpu 75, mem 25 ->
    // (75*1 + 25*3)/4 = 150/4 = 37.
    let w = fit(
        "scoringStrategy: {type: LeastAllocated, resources: [{name: cpu, weight: 1}, {name: memory, weight: 3}]}",
    );
    let n8 = snapshot(vec![node(
        NodeBuilder::new("w").capacity("4", "8Gi", 110).build(),
        vec![],
    )]);
    assert_eq!(
        scores_of(
            &w,
            &pod(PodBuilder::new("w").request("1000m", "6Gi").build()),
            &n8
        ),
        [37]
    );
    // Extended: cpu 1, memory 1, gpu 2; pod + 1 GPU; n1 has 4 GPUs, one used by a pod:
    // gpu (4-2)*100/4 = 50 -> (25 + 50 + 50*2)/4 = 43; n2 has none: gpu left out -> 50.
    let gpu = fit(
        "scoringStrategy: {resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}, {name: nvidia.com/gpu, weight: 2}]}",
    );
    let used = PodBuilder::new("u")
        .request_resource("nvidia.com/gpu", "1")
        .request("0", "0")
        .build();
    let snap_gpu = snapshot(vec![
        node(
            NodeBuilder::new("n1")
                .capacity("4000m", "10000", 110)
                .allocatable("nvidia.com/gpu", "4")
                .build(),
            vec![used],
        ),
        node(
            NodeBuilder::new("n2")
                .capacity("6000m", "10000", 110)
                .build(),
            vec![],
        ),
    ]);
    let pg = pod(PodBuilder::new("p")
        .request("1000m", "2000")
        .container("2000m", "3000")
        .request_resource("nvidia.com/gpu", "1")
        .build());
    assert_eq!(scores_of(&gpu, &pg, &snap_gpu), [43, 50]);
}

#[test]
fn most_allocated_golden() {
    let (snap, p) = two_nodes();
    let most = fit("scoringStrategy: {type: MostAllocated}");
    // n1: cpu 3000*100/4000 = 75, mem 50 -> 125/2 = 62. n2: 50, 50 -> 50.
    assert_eq!(scores_of(&most, &p, &snap), [62, 50]);
    // Over capacity is capped: mem 20000 of 10000 counts as 100; cpu 1000 of 4000 = 25.
    let over = pod(PodBuilder::new("o").request("1000m", "20000").build());
    assert_eq!(scores_of(&most, &over, &snap)[0], (25 + 100) / 2);
}

#[test]
fn requested_to_capacity_ratio_golden() {
    let (snap, p) = two_nodes();
    // Shape (0,10),(100,0) scaled to (0,100),(100,0): f(u) = 100 - u.
    // n1: cpu u=75 -> 25, mem u=50 -> 50: round(75/2 = 37.5) = 38. n2: 50.
    let spread = fit(
        "scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 0, score: 10}, {utilization: 100, score: 0}]}}",
    );
    assert_eq!(scores_of(&spread, &p, &snap), [38, 50]);
    // Bin packing, f(u) = u: n1 round((75 + 50)/2 = 62.5) = 63.
    let pack = fit(
        "scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]}}",
    );
    assert_eq!(scores_of(&pack, &p, &snap), [63, 50]);
    // cpu weight 1, gpu weight 3; pod + 1 GPU: n1 round((75*1 + 25*3)/4 = 37.5) = 38;
    // n2 has no GPU: only cpu, 50.
    let gpu = fit(
        "scoringStrategy: {type: RequestedToCapacityRatio, resources: [{name: cpu, weight: 1}, {name: nvidia.com/gpu, weight: 3}], requestedToCapacityRatio: {shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]}}",
    );
    let pg = pod(PodBuilder::new("p")
        .request("1000m", "2000")
        .container("2000m", "3000")
        .request_resource("nvidia.com/gpu", "1")
        .build());
    assert_eq!(scores_of(&gpu, &pg, &snap), [38, 50]);
    // Without a GPU request the GPU is left out: n1 cpu 75.
    assert_eq!(scores_of(&gpu, &p, &snap), [75, 50]);
    // A zero resource score does not count in the weight sum: f(u) = u, cpu 0 of
    // 4000 and memory 5000 of 10000 -> round(50/1) = 50.
    let mem_only = pod(PodBuilder::new("m").request("0", "5000").build());
    assert_eq!(scores_of(&pack, &mem_only, &snap)[0], 50);
    // Three-point shape, integer interpolation: (0,0),(50,10),(100,5) ->
    // (0,0),(50,100),(100,50); u=75: 100 + (50-100)*(75-50)/(100-50) = 75.
    let shape = [
        ShapePoint {
            utilization: 0,
            score: 0,
        },
        ShapePoint {
            utilization: 50,
            score: 100,
        },
        ShapePoint {
            utilization: 100,
            score: 50,
        },
    ];
    assert_eq!(broken_linear(&shape, 75), 75);
    assert_eq!(broken_linear(&shape, 25), 50);
    assert_eq!(broken_linear(&shape, 101), 50);
}

#[test]
fn bad_shapes_are_refused() {
    for yaml in [
        "scoringStrategy: {type: RequestedToCapacityRatio}",
        "scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 10, score: 1}, {utilization: 10, score: 2}]}}",
        "scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 0, score: 11}]}}",
        "scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 101, score: 1}]}}",
    ] {
        let args: FitArgs = serde_yaml::from_str(yaml).unwrap();
        assert!(Fit::new(&args).is_err(), "{yaml}");
    }
}

fn balanced(resources: &str) -> BalancedAllocation {
    let args: BalancedAllocationArgs = if resources.is_empty() {
        BalancedAllocationArgs::default()
    } else {
        serde_yaml::from_str(resources).unwrap()
    };
    BalancedAllocation::new(&args).unwrap()
}

#[test]
fn balanced_allocation_golden() {
    let (snap, p) = two_nodes();
    let run = |pl: &BalancedAllocation, p: &PodInfo| {
        let mut state = CycleState::new();
        let s = pl.pre_score(&mut state, p, &snap, &[0, 1]);
        if s.is_skip() {
            return None;
        }
        Some(score_all(pl, &state, p, &snap).1)
    };
    // n1: fractions 0.75, 0.5: std |0.75-0.5|/2 = 0.125 -> int(87.5) = 87.
    // n2: 0.5, 0.5 -> 100. (upstream balanced_allocation_test.go)
    assert_eq!(run(&balanced(""), &p), Some(vec![87, 100]));
    // Three resources with a GPU on n1: fractions 0.75, 0.5, 0.25, mean 0.5,
    // std sqrt(0.125/3) = 0.2041 -> int(79.58) = 79; n2 has no GPU: 100.
    let three = balanced(
        "resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}, {name: nvidia.com/gpu, weight: 1}]",
    );
    let pg = pod(PodBuilder::new("p")
        .request("1000m", "2000")
        .container("2000m", "3000")
        .request_resource("nvidia.com/gpu", "1")
        .build());
    assert_eq!(run(&three, &pg), Some(vec![79, 100]));
    // Fractions cap at 1: cpu 8000 of 4000 -> 1, mem 0.5 -> std 0.25 -> 75.
    let over = pod(PodBuilder::new("o").request("8000m", "5000").build());
    assert_eq!(run(&balanced(""), &over).unwrap()[0], 75);
    // Exact requests, not the non-zero defaults: cpu 1000 only on n2 -> 1/6 vs 0:
    // std 0.0833 -> int(91.67) = 91.
    let cpu_only = pod(PodBuilder::new("c")
        .request_resource("cpu", "1000m")
        .build());
    assert_eq!(run(&balanced(""), &cpu_only).unwrap()[1], 91);
    // Best-effort pods are skipped (upstream issue #129138).
    assert_eq!(
        run(&balanced(""), &pod(PodBuilder::new("be").build())),
        None
    );
}
