//! Golden cases worked by hand from upstream podtopologyspread/filtering.go and
//! scoring.go (the shapes of filtering_test.go `TestSingleConstraint` and
//! scoring_test.go `TestPodTopologySpreadScore`).

use k8s_openapi::api::core::v1 as corev1;

use super::*;
use crate::fixtures::{NodeBuilder, PodBuilder, spread_constraint};
use crate::plugins::testutil::{filter_all, node, pod, score_all, snapshot};

fn plugin() -> PodTopologySpread {
    PodTopologySpread::new(&PodTopologySpreadArgs::default()).unwrap()
}

fn n(name: &str, zone: Option<&str>) -> NodeBuilder {
    let b = NodeBuilder::new(name)
        .capacity("4", "8Gi", 110)
        .label(LABEL_HOSTNAME, name);
    match zone {
        Some(z) => b.label("zone", z).label(LABEL_TOPOLOGY_ZONE, z),
        None => b,
    }
}

/// `count` pods labelled foo=bar (and `extra`) on `node`.
fn foo_pods(node: &str, count: usize, extra: &[(&str, &str)]) -> Vec<corev1::Pod> {
    (0..count)
        .map(|i| {
            let mut b = PodBuilder::new(&format!("{node}-{i}"))
                .label("foo", "bar")
                .node_name(node);
            for (k, v) in extra {
                b = b.label(k, v);
            }
            b.build()
        })
        .collect()
}

const SKEW: Option<(Code, &str)> = Some((Code::Unschedulable, ERR_REASON_CONSTRAINTS_NOT_MATCH));
const NO_LABEL: Option<(Code, &str)> = Some((
    Code::UnschedulableAndUnresolvable,
    ERR_REASON_NODE_LABEL_NOT_MATCH,
));

fn check_filter(
    nodes: Vec<(NodeBuilder, Vec<corev1::Pod>)>,
    incoming: PodBuilder,
    want: &[Option<(Code, &str)>],
) {
    let snap = snapshot(
        nodes
            .into_iter()
            .map(|(n, ps)| node(n.build(), ps))
            .collect(),
    );
    let pl = plugin();
    let pod = pod(incoming.build());
    let mut state = CycleState::new();
    let (_, s) = pl.pre_filter(&mut state, &pod, &snap);
    let got: Vec<Option<(Code, String)>> = if s.is_skip() {
        vec![None; snap.n_nodes()]
    } else {
        assert!(s.is_success(), "{s}");
        filter_all(&pl, &state, &pod, &snap)
            .into_iter()
            .map(|s| s.map(|s| (s.code(), s.message())))
            .collect()
    };
    let want: Vec<Option<(Code, String)>> = want
        .iter()
        .map(|w| w.map(|(c, m)| (c, m.to_owned())))
        .collect();
    assert_eq!(got, want);
}

fn hard(max_skew: i32) -> corev1::TopologySpreadConstraint {
    spread_constraint(max_skew, "zone", "DoNotSchedule", &[("foo", "bar")])
}

fn foo_pod() -> PodBuilder {
    PodBuilder::new("in").label("foo", "bar")
}

#[test]
fn skew_per_zone() {
    // zone1 = 2 (a, b), zone2 = 1 (x; the pod in namespace other does not count):
    // min 1; zone1: 2 + 1 - 1 = 2 > 1; zone2: 1 + 1 - 1 = 1. Node c has no zone.
    let other_ns = PodBuilder::new("o")
        .namespace("other")
        .label("foo", "bar")
        .node_name("y")
        .build();
    check_filter(
        vec![
            (n("a", Some("zone1")), foo_pods("a", 1, &[])),
            (n("b", Some("zone1")), foo_pods("b", 1, &[])),
            (n("x", Some("zone2")), foo_pods("x", 1, &[])),
            (n("y", Some("zone2")), vec![other_ns]),
            (n("c", None), foo_pods("c", 3, &[])),
        ],
        foo_pod().spread(hard(1)),
        &[SKEW, SKEW, None, None, NO_LABEL],
    );
    // The incoming pod does not match its selector: selfMatch 0, zone1 2 - 1 = 1 fits.
    check_filter(
        vec![
            (n("a", Some("zone1")), foo_pods("a", 2, &[])),
            (n("x", Some("zone2")), foo_pods("x", 1, &[])),
        ],
        PodBuilder::new("in").spread(hard(1)),
        &[None, None],
    );
    // A ScheduleAnyway constraint does not filter: PreFilter skips.
    check_filter(
        vec![
            (n("a", Some("zone1")), foo_pods("a", 5, &[])),
            (n("x", Some("zone2")), vec![]),
        ],
        foo_pod().spread(spread_constraint(
            1,
            "zone",
            "ScheduleAnyway",
            &[("foo", "bar")],
        )),
        &[None, None],
    );
}

#[test]
fn min_domains() {
    // 2 domains (1, 1) with minDomains 3: the global minimum is 0, 1 + 1 - 0 > 1.
    let nodes = || {
        vec![
            (n("a", Some("zone1")), foo_pods("a", 1, &[])),
            (n("x", Some("zone2")), foo_pods("x", 1, &[])),
        ]
    };
    let mut c = hard(1);
    c.min_domains = Some(3);
    check_filter(nodes(), foo_pod().spread(c), &[SKEW, SKEW]);
    check_filter(nodes(), foo_pod().spread(hard(1)), &[None, None]);
}

#[test]
fn node_inclusion_policies() {
    // x (zone2, 0 pods) fails the pod's nodeSelector env=prod: Honor (default) leaves
    // zone2 out, so zone1 is the minimum (1 + 1 - 1 = 1); Ignore counts zone2 as 0
    // (1 + 1 - 0 = 2 > 1).
    let nodes = || {
        vec![
            (
                n("a", Some("zone1")).label("env", "prod"),
                foo_pods("a", 1, &[]),
            ),
            (n("x", Some("zone2")).label("env", "dev"), vec![]),
        ]
    };
    let sel = || foo_pod().node_selector("env", "prod");
    check_filter(nodes(), sel().spread(hard(1)), &[None, None]);
    let mut ignore = hard(1);
    ignore.node_affinity_policy = Some("Ignore".into());
    check_filter(nodes(), sel().spread(ignore), &[SKEW, None]);
    // An untolerated NoSchedule taint on x: Ignore (default) counts zone2,
    // Honor leaves it out.
    let tainted = || {
        vec![
            (n("a", Some("zone1")), foo_pods("a", 1, &[])),
            (n("x", Some("zone2")).taint("k", "v", "NoSchedule"), vec![]),
        ]
    };
    check_filter(tainted(), foo_pod().spread(hard(1)), &[SKEW, None]);
    let mut honor = hard(1);
    honor.node_taints_policy = Some("Honor".into());
    check_filter(tainted(), foo_pod().spread(honor), &[None, None]);
}

#[test]
fn match_label_keys() {
    // zone1 holds two foo=bar pods of rev 1. Plain: 2 + 1 - 0 > 1 on zone1. With
    // matchLabelKeys [rev] the incoming rev=2 pod counts only rev=2 pods: 0 everywhere.
    let nodes = || {
        vec![
            (n("a", Some("zone1")), foo_pods("a", 2, &[("rev", "1")])),
            (n("x", Some("zone2")), vec![]),
        ]
    };
    let pod = || foo_pod().label("rev", "2");
    check_filter(nodes(), pod().spread(hard(1)), &[SKEW, None]);
    let mut keyed = hard(1);
    keyed.match_label_keys = Some(vec!["rev".into()]);
    check_filter(nodes(), pod().spread(keyed), &[None, None]);
}

fn check_score(
    nodes: Vec<(NodeBuilder, Vec<corev1::Pod>)>,
    pod: PodInfo,
    want_raw: &[i64],
    want: &[i64],
) {
    let snap = snapshot(
        nodes
            .into_iter()
            .map(|(n, ps)| node(n.build(), ps))
            .collect(),
    );
    let pl = plugin();
    let mut state = CycleState::new();
    let all: Vec<u32> = (0..snap.n_nodes() as u32).collect();
    let s = pl.pre_score(&mut state, &pod, &snap, &all);
    assert!(s.is_success(), "{s}");
    let (raw, normalized) = score_all(&pl, &state, &pod, &snap);
    assert_eq!(raw, want_raw);
    assert_eq!(normalized, want);
}

fn soft(max_skew: i32, key: &str) -> corev1::TopologySpreadConstraint {
    spread_constraint(max_skew, key, "ScheduleAnyway", &[("foo", "bar")])
}

#[test]
fn score_one_and_two_constraints() {
    let nodes = || {
        vec![
            (n("a", Some("zone1")), foo_pods("a", 2, &[])),
            (n("b", Some("zone1")), foo_pods("b", 1, &[])),
            (n("x", Some("zone2")), vec![]),
        ]
    };
    // Zone, maxSkew 1: 2 domains, weight ln(4) = 1.386; zone1 = 3 pods:
    // round(3 * 1.386) = 4 for a and b, 0 for x; 100 * (4 + 0 - s) / 4.
    check_score(
        nodes(),
        pod(foo_pod().spread(soft(1, "zone")).build()),
        &[4, 4, 0],
        &[0, 0, 100],
    );
    // Plus hostname maxSkew 2 (weight ln(3 + 2) = 1.609):
    // a: 4.159 + 2 * 1.609 + 1 = 8.378 -> 8; b: 4.159 + 1.609 + 1 = 6.768 -> 7;
    // x: 0 + 0 + 1 = 1. The zoneless node c is ignored (0) and not in the min/max:
    // min 1, max 8: 100 * (9 - s) / 8 = 12, 25, 100.
    let mut with_c = nodes();
    with_c.push((n("c", None), vec![]));
    let p = foo_pod()
        .spread(soft(1, "zone"))
        .spread(soft(2, LABEL_HOSTNAME))
        .build();
    check_score(with_c, pod(p), &[8, 7, 1, 0], &[12, 25, 100, 0]);
}

#[test]
fn score_system_defaults_with_caller_selector() {
    // No own constraints; the caller-provided selector foo=bar turns on the system
    // defaults (hostname 3, zone 5); nodes need not have both keys. Zone domains of
    // the feasible nodes: zone1, "" (b has no zone), zone2 -> weight ln(5) = 1.609;
    // hostname: 3 nodes -> ln(5).
    // a: (1 * 1.609 + 2) + (1 * 1.609 + 4) = 9.219 -> 9
    // b: (2 * 1.609 + 2) + (no zone label) = 5.219 -> 5
    // x: (0 + 2) + (0 + 4) = 6
    // min 5, max 9: 100 * (14 - s) / 9 = 55, 100, 88.
    let nodes = vec![
        (n("a", Some("zone1")), foo_pods("a", 1, &[])),
        (n("b", None), foo_pods("b", 2, &[])),
        (n("x", Some("zone2")), vec![]),
    ];
    let p = pod(foo_pod().build())
        .with_default_spread_selector(bosun_api::labels::LabelSelector::parse("foo=bar").unwrap());
    check_score(nodes, p, &[9, 5, 6], &[55, 100, 88]);
    // Without a selector there are no default constraints: PreScore skips.
    let snap = snapshot(vec![node(n("a", Some("z")).build(), vec![])]);
    let mut state = CycleState::new();
    assert!(
        plugin()
            .pre_score(&mut state, &pod(foo_pod().build()), &snap, &[0])
            .is_skip()
    );
}

#[test]
fn args_are_validated() {
    let list = PodTopologySpreadArgs {
        default_constraints: vec![DefaultConstraint {
            max_skew: 1,
            topology_key: "zone".into(),
            when_unsatisfiable: "DoNotSchedule".into(),
        }],
        defaulting_type: "System".into(),
    };
    assert!(PodTopologySpread::new(&list).is_err());
    assert!(
        PodTopologySpread::new(&PodTopologySpreadArgs {
            defaulting_type: "List".into(),
            ..list
        })
        .is_ok()
    );
}
