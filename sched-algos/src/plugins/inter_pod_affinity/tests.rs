//! Golden cases worked by hand from upstream interpodaffinity/filtering.go and
//! scoring.go (the shapes of filtering_test.go `TestRequiredAffinitySingleNode` /
//! `TestRequiredAffinityMultipleNodes` and scoring_test.go `TestPreferredAffinity`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;

use super::*;
use crate::fixtures::{NodeBuilder, PodBuilder, affinity_term, affinity_term_ns_selector};
use crate::plugins::testutil::{filter_all, node, pod, score_all, snapshot};

fn plugin() -> InterPodAffinity {
    InterPodAffinity::new(&InterPodAffinityArgs::default()).unwrap()
}

fn n(name: &str, labels: &[(&str, &str)]) -> corev1::Node {
    let mut b = NodeBuilder::new(name).capacity("4", "8Gi", 110);
    for (k, v) in labels {
        b = b.label(k, v);
    }
    b.build()
}

fn p(name: &str, labels: &[(&str, &str)]) -> PodBuilder {
    let mut b = PodBuilder::new(name);
    for (k, v) in labels {
        b = b.label(k, v);
    }
    b
}

fn ns_labels() -> BTreeMap<String, BTreeMap<String, String>> {
    let team = |t: &str| BTreeMap::from([("team".to_owned(), t.to_owned())]);
    BTreeMap::from([
        ("default".to_owned(), team("a")),
        ("a1".to_owned(), team("a")),
        ("b1".to_owned(), team("b")),
    ])
}

/// Runs PreFilter then Filter over every node; `None` per node is Success, and a
/// skipped PreFilter means every node passes.
fn check_filter(
    nodes: Vec<(corev1::Node, Vec<corev1::Pod>)>,
    incoming: corev1::Pod,
    want: &[Option<(Code, &str)>],
) {
    let snap = snapshot(nodes.into_iter().map(|(n, ps)| node(n, ps)).collect())
        .with_namespaces(ns_labels());
    let pl = plugin();
    let pod = pod(incoming);
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

const AFF: (Code, &str) = (
    Code::UnschedulableAndUnresolvable,
    ERR_REASON_AFFINITY_RULES_NOT_MATCH,
);
const ANTI: (Code, &str) = (
    Code::Unschedulable,
    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
);
const EXISTING: (Code, &str) = (
    Code::Unschedulable,
    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
);

fn on(node: &str, b: PodBuilder) -> corev1::Pod {
    b.node_name(node).build()
}

#[test]
fn required_affinity_domains() {
    // TestRequiredAffinityMultipleNodes "A pod can be scheduled onto all the nodes that
    // have the same topology key & label value with one of them has an existing pod
    // that matches the affinity rules": region r1 holds the foo=bar pod, so m1 and m2
    // pass; m3 is in r2 (count 0, and the count map is not empty): affinity fails; m4
    // lacks the key: "All topology labels must exist on the node".
    let incoming = p("in", &[]).pod_affinity(affinity_term(&[("foo", "bar")], "region"));
    check_filter(
        vec![
            (
                n("m1", &[("region", "r1")]),
                vec![on("m1", p("e", &[("foo", "bar")]))],
            ),
            (n("m2", &[("region", "r1")]), vec![]),
            (n("m3", &[("region", "r2")]), vec![]),
            (n("m4", &[("zone", "z1")]), vec![]),
        ],
        incoming.build(),
        &[None, None, Some(AFF), Some(AFF)],
    );
}

#[test]
fn self_affinity_first_pod_and_namespaces() {
    // satisfyPodAffinity's escape: no existing pod matches (the foo=bar pod is in
    // namespace other, the term selects the owner's namespace default), and the pod
    // matches its own term: every node with the key passes.
    let incoming =
        p("in", &[("foo", "bar")]).pod_affinity(affinity_term(&[("foo", "bar")], "region"));
    let other = p("e", &[("foo", "bar")]).namespace("other");
    check_filter(
        vec![
            (n("m1", &[("region", "r1")]), vec![on("m1", other)]),
            (n("m2", &[("region", "r2")]), vec![]),
            (n("m3", &[]), vec![]),
        ],
        incoming.build(),
        &[None, None, Some(AFF)],
    );
    // Without the self-match the same cluster rejects every node.
    let incoming = p("in", &[]).pod_affinity(affinity_term(&[("foo", "bar")], "region"));
    check_filter(
        vec![(n("m1", &[("region", "r1")]), vec![])],
        incoming.build(),
        &[Some(AFF)],
    );
}

#[test]
fn namespace_selector_of_incoming_terms() {
    // The incoming term's namespaceSelector team=a resolves to {a1, default}: the pod in
    // a1 counts (region r1), the one in b1 does not (region r2).
    let term = affinity_term_ns_selector(&[("app", "db")], &[("team", "a")], "region");
    check_filter(
        vec![
            (
                n("m1", &[("region", "r1")]),
                vec![on("m1", p("x", &[("app", "db")]).namespace("a1"))],
            ),
            (
                n("m2", &[("region", "r2")]),
                vec![on("m2", p("y", &[("app", "db")]).namespace("b1"))],
            ),
        ],
        p("in", &[]).pod_affinity(term).build(),
        &[None, Some(AFF)],
    );
    // An empty namespaceSelector ({}) selects every namespace.
    let all = affinity_term_ns_selector(&[("app", "db")], &[], "region");
    check_filter(
        vec![
            (n("m1", &[("region", "r1")]), vec![]),
            (
                n("m2", &[("region", "r2")]),
                vec![on("m2", p("y", &[("app", "db")]).namespace("b1"))],
            ),
        ],
        p("in", &[]).pod_anti_affinity(all).build(),
        &[None, Some(ANTI)],
    );
}

#[test]
fn anti_affinity_incoming_and_existing() {
    // Incoming anti-affinity against service=securityscan by zone: z1 holds one.
    let incoming = p("in", &[("app", "web")])
        .pod_anti_affinity(affinity_term(&[("service", "securityscan")], "zone"));
    let nodes = || {
        vec![
            (
                n("m1", &[("zone", "z1"), ("region", "r1")]),
                vec![on("m1", p("s", &[("service", "securityscan")]))],
            ),
            (n("m2", &[("zone", "z1"), ("region", "r1")]), vec![]),
            (n("m3", &[("zone", "z2"), ("region", "r1")]), vec![]),
        ]
    };
    check_filter(nodes(), incoming.build(), &[Some(ANTI), Some(ANTI), None]);
    // The existing pod's anti-affinity against app=web by region rejects all of r1,
    // whichever key the incoming pod has on its own (existingAntiAffinityCounts are
    // matched against every label pair of the node).
    let existing = p("s", &[]).pod_anti_affinity(affinity_term(&[("app", "web")], "region"));
    check_filter(
        vec![
            (n("m1", &[("region", "r1")]), vec![on("m1", existing)]),
            (n("m2", &[("region", "r1")]), vec![]),
            (n("m3", &[("region", "r2")]), vec![]),
        ],
        p("in", &[("app", "web")]).build(),
        &[Some(EXISTING), Some(EXISTING), None],
    );
}

#[test]
fn existing_anti_affinity_reads_incoming_namespace_labels() {
    // The existing term selects namespaces with team=b; the incoming pod's namespace
    // "default" has team=a: no match, so no node is rejected (PreFilter skips).
    let existing = p("s", &[]).pod_anti_affinity(affinity_term_ns_selector(
        &[("app", "web")],
        &[("team", "b")],
        "region",
    ));
    check_filter(
        vec![(
            n("m1", &[("region", "r1")]),
            vec![on("m1", existing.clone())],
        )],
        p("in", &[("app", "web")]).build(),
        &[None],
    );
    // The same pod arriving in b1 (team=b) is rejected.
    check_filter(
        vec![(n("m1", &[("region", "r1")]), vec![on("m1", existing)])],
        p("in", &[("app", "web")]).namespace("b1").build(),
        &[Some(EXISTING)],
    );
}

#[test]
fn affinity_is_checked_before_anti_affinity() {
    // Both fail on m1: the affinity reason wins (upstream Filter's order).
    let incoming = p("in", &[])
        .pod_affinity(affinity_term(&[("foo", "bar")], "region"))
        .pod_anti_affinity(affinity_term(&[("x", "y")], "region"));
    check_filter(
        vec![
            (
                n("m1", &[("region", "r1")]),
                vec![on("m1", p("a", &[("x", "y")]))],
            ),
            (
                n("m2", &[("region", "r2")]),
                vec![on("m2", p("b", &[("foo", "bar")]))],
            ),
        ],
        incoming.build(),
        &[Some(AFF), None],
    );
}

fn check_score(
    pl: &InterPodAffinity,
    nodes: Vec<(corev1::Node, Vec<corev1::Pod>)>,
    incoming: corev1::Pod,
    want_raw: Option<&[i64]>,
    want: &[i64],
) {
    let snap = snapshot(nodes.into_iter().map(|(n, ps)| node(n, ps)).collect())
        .with_namespaces(ns_labels());
    let pod = pod(incoming);
    let mut state = CycleState::new();
    let all: Vec<u32> = (0..snap.n_nodes() as u32).collect();
    let s = pl.pre_score(&mut state, &pod, &snap, &all);
    if s.is_skip() {
        assert_eq!(want_raw, None, "PreScore skipped");
        assert!(want.iter().all(|&w| w == 0));
        return;
    }
    let (raw, normalized) = score_all(pl, &state, &pod, &snap);
    if let Some(r) = want_raw {
        assert_eq!(raw, r);
    }
    assert_eq!(normalized, want);
}

#[test]
fn preferred_affinity_scores() {
    // TestPreferredAffinity "Affinity: pod that matches topology key & pods in nodes will
    // get high score...": weight 5 on security=S1 by region; the S1 pod is in China.
    // Raw: China +5 -> [5, 0, 0]; normalised (s - 0) * 100 / 5.
    let nodes = || {
        vec![
            (
                n("n1", &[("region", "China")]),
                vec![on("n1", p("a", &[("security", "S1")]))],
            ),
            (
                n("n2", &[("region", "India")]),
                vec![on("n2", p("b", &[("security", "S2")]))],
            ),
            (n("n3", &[("az", "az1")]), vec![]),
        ]
    };
    let aff =
        p("in", &[]).preferred_pod_affinity(5, affinity_term(&[("security", "S1")], "region"));
    check_score(
        &plugin(),
        nodes(),
        aff.build(),
        Some(&[5, 0, 0]),
        &[100, 0, 0],
    );
    // Anti-affinity weight 5 on S1: China -5 -> [-5, 0, 0]; min -5, max 0.
    let anti =
        p("in", &[]).preferred_pod_anti_affinity(5, affinity_term(&[("security", "S1")], "region"));
    check_score(
        &plugin(),
        nodes(),
        anti.build(),
        Some(&[-5, 0, 0]),
        &[0, 100, 100],
    );
    // Affinity 3 on S1 by region, 1 on S2 by region: [3, 1, 0] -> 100, int(33.3), 0.
    let both = p("in", &[])
        .preferred_pod_affinity(3, affinity_term(&[("security", "S1")], "region"))
        .preferred_pod_affinity(1, affinity_term(&[("security", "S2")], "region"));
    check_score(
        &plugin(),
        nodes(),
        both.build(),
        Some(&[3, 1, 0]),
        &[100, 33, 0],
    );
}

#[test]
fn existing_pods_terms_score_symmetrically() {
    // The existing pod's required affinity to app=web by region counts
    // hardPodAffinityWeight (1) for the incoming app=web pod in r1; its preferred
    // anti-affinity (weight 4) to app=web by zone counts -4 in z1.
    let existing = p("e", &[])
        .pod_affinity(affinity_term(&[("app", "web")], "region"))
        .preferred_pod_anti_affinity(4, affinity_term(&[("app", "web")], "zone"));
    let nodes = || {
        vec![
            (
                n("n1", &[("region", "r1"), ("zone", "z1")]),
                vec![on("n1", existing.clone())],
            ),
            (n("n2", &[("region", "r1"), ("zone", "z2")]), vec![]),
            (n("n3", &[("region", "r2"), ("zone", "z3")]), vec![]),
        ]
    };
    // Raw [1 - 4, 1, 0] = [-3, 1, 0]: min -3, diff 4 -> 0, 100, int(75.0).
    let incoming = || p("in", &[("app", "web")]).build();
    check_score(
        &plugin(),
        nodes(),
        incoming(),
        Some(&[-3, 1, 0]),
        &[0, 100, 75],
    );
    // hardPodAffinityWeight 0 drops the required term: [-4, 0, 0].
    let no_hard = InterPodAffinity::new(&InterPodAffinityArgs {
        hard_pod_affinity_weight: 0,
        ..Default::default()
    })
    .unwrap();
    check_score(
        &no_hard,
        nodes(),
        incoming(),
        Some(&[-4, 0, 0]),
        &[0, 100, 100],
    );
    // Ignoring existing pods' preferences with no own terms: Skip.
    let ignore = InterPodAffinity::new(&InterPodAffinityArgs {
        ignore_preferred_terms_of_existing_pods: true,
        ..Default::default()
    })
    .unwrap();
    check_score(&ignore, nodes(), incoming(), None, &[0, 0, 0]);
    // A pod nothing matches: Skip (nothing counted).
    check_score(
        &plugin(),
        nodes(),
        p("other", &[]).build(),
        None,
        &[0, 0, 0],
    );
}

#[test]
fn args_are_validated() {
    assert!(
        InterPodAffinity::new(&InterPodAffinityArgs {
            hard_pod_affinity_weight: 101,
            ..Default::default()
        })
        .is_err()
    );
}
