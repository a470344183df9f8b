//! Scheduling scenarios in YAML, in the spirit of kube-scheduler's `scheduler_perf`
//! (`test/integration/scheduler_perf/config/performance-config.yaml`): a cluster (node
//! template and count, or an openb node list), initial pods placed before measuring,
//! the pods to schedule and measure (groups with requests, priority, labels, node
//! affinity, pod (anti-)affinity, topology spread, daemonset pinning), the arrival
//! order, optional churn, the algorithms to compare, a seed and labels (`short`,
//! `performance`).
//!
//! The shipped files live in `harness/scenarios/`, one per `<Shape>-<size>` (e.g.
//! `SchedulingBasic-10k.yaml`); [`load_scenario`] takes such a name or a path.
//!
//! ```yaml
//! name: SchedulingBasic-short
//! shape: SchedulingBasic
//! labels: [short]
//! seed: 1
//! cluster: { nodes: 200 }            # scheduler_perf's node-default: 4 CPU, 32Gi, 110 pods
//! initial_pods: [{ count: 200 }]     # pod-default: 100m, 500Mi
//! measured_pods: [{ count: 300 }]
//! algorithms: [default, default-adaptive, most-allocated]
//! ```
//!
//! Every field is checked when loaded ([`Scenario::validate`]): unknown keys, zero
//! counts, sizes over [`MAX_SCENARIO_NODES`] / [`MAX_SCENARIO_PODS`], unknown
//! algorithms (see [`crate::sim::Algorithm::NAMES`]), batch windows out of range and
//! fractions outside 0..=1 are errors naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::HarnessError;

/// Environment variable that overrides where [`scenarios_dir`] looks.
pub const SCENARIOS_DIR_ENV: &str = "BOSUN_SCENARIOS_DIR";
/// Bound on a scenario's nodes (the synthetic generator's own bound is higher).
pub const MAX_SCENARIO_NODES: usize = 100_000;
/// Bound on a scenario's pods, initial and measured together.
pub const MAX_SCENARIO_PODS: usize = 1_000_000;
/// Bound on a scenario file's size.
pub const MAX_SCENARIO_FILE_BYTES: u64 = 1 << 20;
/// Label of the scenarios the test suite runs.
pub const SHORT_LABEL: &str = "short";
/// Label of the scenarios sized for measurement (5k nodes and up).
pub const PERFORMANCE_LABEL: &str = "performance";

/// The workload shape: `scheduler_perf`'s test names, plus the FGD paper's openb replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
pub enum Shape {
    SchedulingBasic,
    NodeAffinity,
    PodAffinity,
    PodAntiAffinity,
    TopologySpreading,
    Preemption,
    SchedulingDaemonset,
    Unschedulable,
    MixedChurn,
    #[serde(rename = "openb-fgd")]
    OpenbFgd,
}

impl Shape {
    pub const ALL: [Shape; 10] = [
        Shape::SchedulingBasic,
        Shape::NodeAffinity,
        Shape::PodAffinity,
        Shape::PodAntiAffinity,
        Shape::TopologySpreading,
        Shape::Preemption,
        Shape::SchedulingDaemonset,
        Shape::Unschedulable,
        Shape::MixedChurn,
        Shape::OpenbFgd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::SchedulingBasic => "SchedulingBasic",
            Shape::NodeAffinity => "NodeAffinity",
            Shape::PodAffinity => "PodAffinity",
            Shape::PodAntiAffinity => "PodAntiAffinity",
            Shape::TopologySpreading => "TopologySpreading",
            Shape::Preemption => "Preemption",
            Shape::SchedulingDaemonset => "SchedulingDaemonset",
            Shape::Unschedulable => "Unschedulable",
            Shape::MixedChurn => "MixedChurn",
            Shape::OpenbFgd => "openb-fgd",
        }
    }
}

/// A whole scenario file. See the module docs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `<Shape>-<size>`, equal to the file's stem.
    pub name: String,
    pub shape: Shape,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Seeds the cluster, the workload and the scheduler's tie-breaking.
    pub seed: u64,
    pub cluster: ClusterSpec,
    /// Placed before measuring, by [`InitialPlacement`]; never measured.
    #[serde(default)]
    pub initial_pods: Vec<PodGroup>,
    #[serde(default)]
    pub initial_placement: InitialPlacement,
    /// Scheduled one by one through the algorithm, in [`ArrivalSpec`] order.
    #[serde(default)]
    pub measured_pods: Vec<PodGroup>,
    /// Measured pods from the openb trace, resampled the FGD paper's way (appended after
    /// `measured_pods`).
    #[serde(default)]
    pub openb_fgd: Option<OpenbFgdSpec>,
    #[serde(default)]
    pub arrival: ArrivalSpec,
    #[serde(default)]
    pub churn: Option<ChurnSpec>,
    /// Scheduler plugins the shape needs (e.g. `InterPodAffinity`); a run whose
    /// scheduler lacks one is reported as "plugin pending".
    #[serde(default)]
    pub requires_plugins: Vec<String>,
    /// Algorithm names (see [`crate::sim::Algorithm`]) or names of `profiles`.
    pub algorithms: Vec<String>,
    /// Extra algorithms: name -> a `KubeSchedulerConfiguration` document.
    #[serde(default)]
    pub profiles: BTreeMap<String, String>,
    /// The window of batch algorithms (`min-cost-flow`): at most this many pending
    /// pods placed together; [`DEFAULT_WINDOW_PODS`](bosun_sched_algos::batch::DEFAULT_WINDOW_PODS)
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_window_pods: Option<usize>,
}

/// The cluster: synthetic (`nodes` of `template`) or an openb node list.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Node count for synthetic clusters; ignored (must be 0) with `openb`.
    #[serde(default)]
    pub nodes: usize,
    #[serde(default)]
    pub template: ClusterTemplate,
    /// Zones per region (synthetic clusters); the template's default when absent.
    #[serde(default)]
    pub zones: Option<usize>,
    /// Extra node labels, applied in order.
    #[serde(default)]
    pub node_labels: Vec<NodeLabelRule>,
    #[serde(default)]
    pub openb: Option<OpenbClusterSpec>,
}

/// Which synthetic node shapes ([`crate::synth::ClusterShape`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterTemplate {
    /// `node-default.yaml`: 4 CPU, 32 GiB, 110 pods, 3 zones.
    #[default]
    SchedulerPerf,
    /// openb's shapes in proportion, GPUs, taints, images.
    Heterogeneous,
}

/// Label the first `fraction` of the nodes (by index) with `key`, values round-robin.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLabelRule {
    pub key: String,
    pub values: Vec<String>,
    #[serde(default = "one")]
    pub fraction: f64,
}

fn one() -> f64 {
    1.0
}

fn one_usize() -> usize {
    1
}

/// An openb node list as the cluster.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenbClusterSpec {
    pub node_list: OpenbNodeList,
    /// Keep only this many nodes, drawn with the seed (for short runs).
    #[serde(default)]
    pub sample_nodes: Option<usize>,
    /// Repeat the list this many times (the README's way to reach 10k nodes).
    #[serde(default = "one_usize")]
    pub replicate: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenbNodeList {
    GpuNode,
    AllNode,
}

/// The openb pod list resampled to `target_ratio` × the cluster's GPUs (the FGD
/// paper's method, [`crate::replay::fgd_resample`]), seeded by the scenario's seed.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenbFgdSpec {
    /// `default` or a variant name (`gpushare40`, ...).
    #[serde(default = "default_pod_list")]
    pub pod_list: String,
    #[serde(default = "fgd_ratio")]
    pub target_ratio: f64,
    /// Report placement quality every this fraction of cluster GPU capacity arrived.
    #[serde(default = "curve_step")]
    pub curve_step_frac: f64,
}

fn default_pod_list() -> String {
    "default".into()
}

fn fgd_ratio() -> f64 {
    crate::replay::FGD_TARGET_RATIO
}

fn curve_step() -> f64 {
    0.05
}

/// How initial pods get their nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialPlacement {
    /// Round-robin over the nodes, each pod on the next node it fits (resources,
    /// selector, node affinity, taints, pinning): fast, and independent of the
    /// algorithm, so every algorithm starts from the same state.
    #[default]
    RoundRobin,
    /// Through the algorithm under test, unmeasured (as scheduler_perf does).
    Scheduler,
}

/// One group of identical pods.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodGroup {
    pub count: usize,
    /// Pod names are `<name>-<index>`; the group's position when absent.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_cpu")]
    pub cpu_milli: u64,
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    /// Whole GPUs (`gpus`) or a fraction of one in milli-GPU (`gpu_milli` < 1000).
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub gpu_milli: u32,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: every rule must hold (one term, ANDed expressions).
    #[serde(default)]
    pub node_affinity: Vec<NodeAffinityRule>,
    #[serde(default)]
    pub pod_affinity: Option<PodAffinityRule>,
    #[serde(default)]
    pub pod_anti_affinity: Option<PodAffinityRule>,
    #[serde(default)]
    pub topology_spread: Option<TopologySpreadRule>,
    /// Pin pod `i` to node `i mod nodes` by required affinity on `metadata.name`, as
    /// the DaemonSet controller does.
    #[serde(default)]
    pub daemonset: bool,
    /// False for pods scheduled but not measured (scheduler_perf's
    /// `collectMetrics: false`), e.g. the never-fitting pods of `Unschedulable`.
    #[serde(default = "yes")]
    pub collect_metrics: bool,
}

fn default_cpu() -> u64 {
    100
}

fn default_memory() -> u64 {
    500
}

fn yes() -> bool {
    true
}

/// `key In values`, `key NotIn values` or `key Exists`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAffinityRule {
    pub key: String,
    #[serde(default)]
    pub operator: AffinityOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AffinityOperator {
    #[default]
    In,
    NotIn,
    Exists,
}

impl AffinityOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityOperator::In => "In",
            AffinityOperator::NotIn => "NotIn",
            AffinityOperator::Exists => "Exists",
        }
    }
}

/// A required pod (anti-)affinity term: pods with all of `match_labels`, in the same
/// domain of `topology_key`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodAffinityRule {
    pub match_labels: BTreeMap<String, String>,
    pub topology_key: String,
}

/// A topology spread constraint over pods with all of `match_labels`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpreadRule {
    pub max_skew: u32,
    pub topology_key: String,
    #[serde(default)]
    pub when_unsatisfiable: WhenUnsatisfiable,
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum WhenUnsatisfiable {
    #[default]
    DoNotSchedule,
    ScheduleAnyway,
}

impl WhenUnsatisfiable {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUnsatisfiable::DoNotSchedule => "DoNotSchedule",
            WhenUnsatisfiable::ScheduleAnyway => "ScheduleAnyway",
        }
    }
}

/// When measured pods arrive, in simulated time, and the order they are scheduled in.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// Pods arrive evenly at this rate; absent: all at time 0 (scheduler_perf creates
    /// them all, then waits).
    #[serde(default)]
    pub rate_pods_per_s: Option<f64>,
    #[serde(default)]
    pub order: QueueOrder,
}

/// The scheduling order of measured pods. It never depends on measured times, so the
/// same seed gives the same placements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueOrder {
    /// By arrival time, then higher priority first (PrioritySort), then file order.
    #[default]
    Priority,
    /// File order (the FGD paper's shuffled order).
    Fifo,
}

/// Churn while measuring: every `every_pods` measured pods, delete `delete_pods` running
/// pods and replace `recreate_nodes` nodes (their pods are evicted), drawn with the
/// seed. Not timed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    pub every_pods: usize,
    #[serde(default)]
    pub delete_pods: usize,
    #[serde(default)]
    pub recreate_nodes: usize,
}

impl Scenario {
    /// Parses and validates a scenario; `origin` (a path or name) prefixes every error.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario, HarnessError> {
        let scenario: Scenario =
            serde_yaml::from_str(text).map_err(|e| HarnessError::Scenario {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    /// Whether the scenario carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// Initial pod count.
    pub fn n_initial_pods(&self) -> usize {
        self.initial_pods.iter().map(|g| g.count).sum()
    }

    /// Checks what serde cannot: bounds, counts, fractions, algorithm names.
    pub fn validate(&self, origin: &str) -> Result<(), HarnessError> {
        let err = |message: String| HarnessError::Scenario {
            origin: origin.to_string(),
            message,
        };
        if self.name.is_empty() {
            return Err(err("name is empty".into()));
        }
        self.validate_cluster().map_err(err)?;
        let groups = self.initial_pods.iter().chain(&self.measured_pods);
        let mut n_pods = 0usize;
        for (i, g) in groups.enumerate() {
            validate_group(g).map_err(|m| err(format!("pod group {i}: {m}")))?;
            n_pods = n_pods.saturating_add(g.count);
        }
        if n_pods > MAX_SCENARIO_PODS {
            return Err(err(format!(
                "{n_pods} pods is over the bound {MAX_SCENARIO_PODS}"
            )));
        }
        if self.measured_pods.is_empty() && self.openb_fgd.is_none() {
            return Err(err(
                "no measured_pods and no openb_fgd: nothing to measure".into()
            ));
        }
        if let Some(fgd) = &self.openb_fgd {
            if crate::datasets::openb::PodList::named(&fgd.pod_list).is_none() {
                return Err(err(format!(
                    "openb_fgd: unknown pod list {:?}",
                    fgd.pod_list
                )));
            }
            if !(fgd.target_ratio.is_finite() && fgd.target_ratio > 0.0 && fgd.target_ratio <= 10.0)
            {
                return Err(err(format!(
                    "openb_fgd: target_ratio {} is not in (0, 10]",
                    fgd.target_ratio
                )));
            }
            if !(fgd.curve_step_frac > 0.0 && fgd.curve_step_frac <= 1.0) {
                return Err(err("openb_fgd: curve_step_frac must be in (0, 1]".into()));
            }
            if self.cluster.openb.is_none() {
                return Err(err("openb_fgd needs an openb cluster".into()));
            }
        }
        if let Some(rate) = self.arrival.rate_pods_per_s
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(err(format!("arrival rate {rate} is not a positive number")));
        }
        if let Some(churn) = &self.churn
            && churn.every_pods == 0
        {
            return Err(err("churn.every_pods must be positive".into()));
        }
        if let Some(w) = self.batch_window_pods
            && !(1..=bosun_sched_algos::batch::MAX_WINDOW_PODS).contains(&w)
        {
            return Err(err(format!(
                "batch_window_pods {w} is not in 1..={}",
                bosun_sched_algos::batch::MAX_WINDOW_PODS
            )));
        }
        if self.algorithms.is_empty() {
            return Err(err("no algorithms".into()));
        }
        for name in &self.algorithms {
            if !self.profiles.contains_key(name) && crate::sim::Algorithm::named(name).is_none() {
                return Err(err(format!(
                    "unknown algorithm {name:?}; known: {}",
                    crate::sim::Algorithm::NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), String> {
        let c = &self.cluster;
        match &c.openb {
            Some(o) => {
                if c.nodes != 0 {
                    return Err("cluster: give either nodes or openb, not both".into());
                }
                if o.replicate == 0 || o.replicate * 1523 > MAX_SCENARIO_NODES {
                    return Err(format!(
                        "cluster.openb.replicate {} is out of range",
                        o.replicate
                    ));
                }
                if o.sample_nodes == Some(0) {
                    return Err("cluster.openb.sample_nodes must be positive".into());
                }
            }
            None => {
                if c.nodes == 0 || c.nodes > MAX_SCENARIO_NODES {
                    return Err(format!(
                        "cluster.nodes {} is not in 1..={MAX_SCENARIO_NODES}",
                        c.nodes
                    ));
                }
            }
        }
        if c.zones == Some(0) {
            return Err("cluster.zones must be positive".into());
        }
        for rule in &c.node_labels {
            if rule.values.is_empty() || !(0.0..=1.0).contains(&rule.fraction) {
                return Err(format!(
                    "node label {:?}: needs values and a fraction in 0..=1",
                    rule.key
                ));
            }
        }
        Ok(())
    }
}

fn validate_group(g: &PodGroup) -> Result<(), String> {
    if g.count == 0 {
        return Err("count must be positive".into());
    }
    if g.gpus > 0 && g.gpu_milli > 0 {
        return Err("give gpus (whole devices) or gpu_milli (a fraction), not both".into());
    }
    if g.gpu_milli >= crate::model::GPU_MILLI_PER_GPU {
        return Err(format!("gpu_milli {} must be below 1000", g.gpu_milli));
    }
    for rule in &g.node_affinity {
        let needs_values = rule.operator != AffinityOperator::Exists;
        if needs_values == rule.values.is_empty() {
            return Err(format!(
                "node affinity on {:?}: In/NotIn need values, Exists none",
                rule.key
            ));
        }
    }
    for rule in [&g.pod_affinity, &g.pod_anti_affinity]
        .into_iter()
        .flatten()
    {
        if rule.match_labels.is_empty() || rule.topology_key.is_empty() {
            return Err("pod (anti-)affinity needs match_labels and a topology_key".into());
        }
    }
    if let Some(s) = &g.topology_spread
        && (s.max_skew == 0 || s.topology_key.is_empty())
    {
        return Err("topology spread needs max_skew >= 1 and a topology_key".into());
    }
    Ok(())
}

/// The shipped scenarios' directory: `harness/scenarios/`, or `$BOSUN_SCENARIOS_DIR`.
pub fn scenarios_dir() -> PathBuf {
    match std::env::var_os(SCENARIOS_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
    }
}

/// Names of the shipped scenarios (file stems of `*.yaml` in [`scenarios_dir`]),
/// sorted; empty if the directory cannot be read.
pub fn list_scenarios() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(scenarios_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Loads a scenario by shipped name (`SchedulingBasic-10k`) or by path to a file.
pub fn load_scenario(name_or_path: &str) -> Result<Scenario, HarnessError> {
    let as_path = Path::new(name_or_path);
    if as_path.is_file() {
        return load_scenario_file(as_path);
    }
    let shipped = scenarios_dir().join(format!("{name_or_path}.yaml"));
    if shipped.is_file() {
        return load_scenario_file(&shipped);
    }
    Err(HarnessError::ScenarioNotFound {
        name: name_or_path.to_string(),
        dir: scenarios_dir().display().to_string(),
        known: list_scenarios().join(", "),
    })
}

/// Loads and validates one scenario file; errors name the file.
pub fn load_scenario_file(path: &Path) -> Result<Scenario, HarnessError> {
    let origin = path.display().to_string();
    let io = |source| HarnessError::Io {
        origin: origin.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_SCENARIO_FILE_BYTES {
        return Err(HarnessError::Scenario {
            origin,
            message: format!("{len} bytes is over the bound {MAX_SCENARIO_FILE_BYTES}"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    Scenario::from_yaml(&text, &origin)
}
