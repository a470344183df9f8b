use super::*;

fn registry() -> Registry {
    Registry::in_tree()
}

#[test]
fn default_profile_mirrors_upstream() {
    let profiles = Profiles::default_profiles(&registry()).unwrap();
    let p = profiles.get(DEFAULT_SCHEDULER_NAME).unwrap();
    assert_eq!(p.node_sampling, NodeSampling::All);
    assert_eq!(p.plugin_names("preEnqueue"), ["SchedulingGates"]);
    assert_eq!(p.plugin_names("queueSort"), ["PrioritySort"]);
    assert_eq!(
        p.plugin_names("preFilter"),
        [
            "NodeAffinity",
            "NodePorts",
            "NodeResourcesFit",
            "PodTopologySpread",
            "InterPodAffinity"
        ]
    );
    assert_eq!(
        p.plugin_names("filter"),
        [
            "NodeUnschedulable",
            "NodeName",
            "TaintToleration",
            "NodeAffinity",
            "NodePorts",
            "NodeResourcesFit",
            "GpuDeviceFit",
            "PodTopologySpread",
            "InterPodAffinity"
        ]
    );
    assert_eq!(p.plugin_names("postFilter"), ["DefaultPreemption"]);
    assert_eq!(
        p.plugin_names("preScore"),
        [
            "TaintToleration",
            "NodeAffinity",
            "NodeResourcesFit",
            "PodTopologySpread",
            "InterPodAffinity",
            "NodeResourcesBalancedAllocation",
            "ImageLocality"
        ]
    );
    let weights: Vec<(&str, i64)> = p
        .score
        .iter()
        .map(|s| (s.plugin.name(), s.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("TaintToleration", 3),
            ("NodeAffinity", 2),
            ("NodeResourcesFit", 1),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2),
            ("NodeResourcesBalancedAllocation", 1),
            ("ImageLocality", 1),
        ]
    );
    assert_eq!(p.plugin_names("bind"), ["DefaultBinder"]);
}

const TWO_PROFILES: &str = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  percentageOfNodesToScore: 0
  plugins:
    score:
      enabled:
      - {name: ImageLocality, weight: 5}
      disabled:
      - {name: NodeResourcesBalancedAllocation}
    filter:
      disabled:
      - {name: NodePorts}
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
"#;

#[test]
fn profiles_from_yaml() {
    let profiles = Profiles::from_yaml(TWO_PROFILES, &registry()).unwrap();
    let packing = profiles.get("bin-packing").unwrap();
    assert_eq!(packing.node_sampling, NodeSampling::Percentage(0));
    // ImageLocality is explicitly enabled at score: it moves to the front (an override
    // of its multiPoint entry) with its own weight.
    let weights: Vec<(&str, i64)> = packing
        .score
        .iter()
        .map(|s| (s.plugin.name(), s.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("ImageLocality", 5),
            ("TaintToleration", 3),
            ("NodeAffinity", 2),
            ("NodeResourcesFit", 1),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2)
        ]
    );
    assert!(!packing.plugin_names("filter").contains(&"NodePorts"));
    assert!(
        packing.plugin_names("preFilter").contains(&"NodePorts"),
        "disabled for filter only"
    );
    assert_eq!(profiles.get("default-scheduler").unwrap().score.len(), 7);

    use crate::fixtures::PodBuilder;
    let pod = |name: Option<&str>| {
        let b = PodBuilder::new("p");
        let b = match name {
            Some(n) => b.scheduler_name(n),
            None => b,
        };
        PodInfo::new(b.build()).unwrap()
    };
    assert_eq!(
        profiles.for_pod(&pod(None)).unwrap().scheduler_name,
        "default-scheduler"
    );
    assert_eq!(
        profiles
            .for_pod(&pod(Some("bin-packing")))
            .unwrap()
            .scheduler_name,
        "bin-packing"
    );
    assert!(profiles.for_pod(&pod(Some("other"))).is_none());
}

#[test]
fn multi_point_merge() {
    let yaml = r#"
profiles:
- plugins:
    multiPoint:
      enabled:
      - {name: TaintToleration, weight: 7}
      disabled:
      - {name: ImageLocality}
    filter:
      disabled: [{name: "*"}]
      enabled: [{name: NodeName}]
"#;
    let profiles = Profiles::from_yaml(yaml, &registry()).unwrap();
    let p = profiles.get("default-scheduler").unwrap();
    assert_eq!(p.plugin_names("filter"), ["NodeName"]);
    let tt = p
        .score
        .iter()
        .find(|s| s.plugin.name() == "TaintToleration")
        .unwrap();
    assert_eq!(
        tt.weight, 7,
        "multiPoint weight replaces the default in place"
    );
    assert_eq!(p.score[0].plugin.name(), "TaintToleration");
    assert!(!p.plugin_names("score").contains(&"ImageLocality"));
    assert!(!p.plugin_names("preScore").contains(&"ImageLocality"));
}

#[test]
fn invalid_configs_are_refused() {
    let bad = [
        // Duplicate scheduler names.
        "profiles: [{schedulerName: a}, {schedulerName: a}]",
        // Unknown plugin.
        "profiles: [{plugins: {filter: {enabled: [{name: Nope}]}}}]",
        // A plugin at a point it does not extend.
        "profiles: [{plugins: {score: {enabled: [{name: NodeName}]}}}]",
        // No bind plugin.
        "profiles: [{plugins: {multiPoint: {disabled: [{name: DefaultBinder}]}}}]",
        // No queue sort.
        "profiles: [{plugins: {queueSort: {disabled: [{name: '*'}]}}}]",
        // Negative weight.
        "profiles: [{plugins: {score: {enabled: [{name: ImageLocality, weight: -1}]}}}]",
        // Enabled twice at one point.
        "profiles: [{plugins: {filter: {enabled: [{name: NodeName}, {name: NodeName}]}}}]",
        // Out-of-range percentage.
        "percentageOfNodesToScore: 101",
        // Repeated plugin config.
        "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {}}, {name: NodeResourcesFit, args: {}}]}]",
        // Bad args.
        "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: {type: Nope}}}]}]",
        // Unknown field in a profile.
        "profiles: [{schedulerNam: typo}]",
        "kind: Pod",
    ];
    for yaml in bad {
        assert!(
            Profiles::from_yaml(yaml, &registry()).is_err(),
            "accepted: {yaml}"
        );
    }
    let err = Profiles::from_yaml(
        "profiles: [{schedulerName: a}, {schedulerName: a}]",
        &registry(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "profiles: duplicate schedulerName \"a\"");
}

#[test]
fn percentage_inherits_from_top_level() {
    let p = Profiles::from_yaml("percentageOfNodesToScore: 30\nprofiles: [{}, {schedulerName: b, percentageOfNodesToScore: 70}]", &registry())
        .unwrap();
    assert_eq!(
        p.get("default-scheduler").unwrap().node_sampling,
        NodeSampling::Percentage(30)
    );
    assert_eq!(
        p.get("b").unwrap().node_sampling,
        NodeSampling::Percentage(70)
    );
}
