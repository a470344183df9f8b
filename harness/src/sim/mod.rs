//! The simulation driver: scheduling algorithms run in-process against an in-memory
//! cluster with simulated time, so what is measured is the algorithm alone.
//!
//! Per algorithm ([`Algorithm`]: the kube-scheduler profiles, FGD, DRF, Tetris, first
//! fit, random, min-cost flow): the scheduler's [`Cache`] is built from the workload's
//! nodes (via [`NodeSpec::to_k8s`](crate::model::NodeSpec::to_k8s)); initial pods are
//! placed ([`InitialPlacement`]); then each pod to schedule, in the workload's order,
//! runs one cycle: `update_snapshot` + [`schedule_one`] + Reserve + `assume_pod`, timed
//! together (the latency); then, untimed, the GPU devices are assigned ([`cluster`]:
//! the devices the scheduler pinned, which must have room), the Bind plugins run and
//! the binding is confirmed in the cache. Simulated time advances by each cycle's
//! measured duration, from the pod's arrival or the end of the previous cycle,
//! whichever is later: the queue wait is the gap. Unschedulable pods are counted (a
//! later slice retries them on cluster events).
//!
//! A batch algorithm (`min-cost-flow`) takes, instead of one pod, the window of pods
//! arrived by the time the previous window ended (at most its window size, never
//! across a churn point) and places them together with [`schedule_batch`], timed as
//! one; each pod's latency is an equal share of the window's time and its queue wait
//! runs from its arrival to the window's start. Quality figures and curve points are
//! taken after the whole window is placed.
//!
//! Determinism: the workload, the scheduling order and the tie-breaking seed come from
//! the scenario's seed, and the algorithms are deterministic, so the same seed gives
//! the same placements and the same quality figures; only times differ.
//!
//! ```
//! use bosun_harness::scenario::Scenario;
//! use bosun_harness::sim::{RunOptions, run_scenario};
//!
//! let yaml = "
//! name: tiny
//! shape: SchedulingBasic
//! seed: 7
//! cluster: { nodes: 10 }
//! measured_pods: [{ count: 20, cpu_milli: 1000 }]
//! algorithms: [default, most-allocated, first-fit, min-cost-flow]
//! ";
//! let scenario = Scenario::from_yaml(yaml, "inline")?;
//! let report = run_scenario(&scenario, &RunOptions::quiet())?;
//! // 10 nodes of 4 CPUs take 20 one-CPU pods; bin-packing and first fit fill 5 of
//! // them, min-cost flow over the default (spreading) scores puts 2 on each.
//! assert!(report.algorithms.iter().all(|a| a.counts.pods_placed == 20));
//! assert_eq!(report.algorithms[1].quality.nodes_used, 5);
//! assert_eq!(report.algorithms[2].quality.nodes_used, 5);
//! assert_eq!(report.algorithms[3].quality.pods_per_node_max, 2);
//! println!("{}", report.terminal_table());
//! # Ok::<(), bosun_harness::error::HarnessError>(())
//! ```

pub mod cluster;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_sched_algos::CycleState;
use bosun_sched_algos::batch::{DEFAULT_WINDOW_PODS, schedule_batch};
use bosun_sched_algos::plugins::fgd::{self, FgdArgs};
use bosun_sched_algos::plugins::{dominant_share, first_fit, tetris};
use bosun_sched_algos::profile::{PluginConfig, SchedulerConfig};
use bosun_sched_algos::schedule::{Decision, reserved_pod, run_bind, run_reserve};
use bosun_sched_algos::{
    Cache, CycleContext, PodInfo, Profile, Profiles, Registry, ScheduleError, Snapshot,
    schedule_one,
};

use crate::error::HarnessError;
use crate::metrics::{self, Counts, CurvePoint, FirstFailure, TaskMix};
use crate::model::k8s_name;
use crate::report::{AlgorithmReport, ScenarioReport, Throughput};
use crate::rng::SimRng;
use crate::scenario::{InitialPlacement, Scenario};
use crate::stats::Latency;
use cluster::ClusterState;
use workload::Workload;

/// Scheduler error messages kept per run (the count is always complete).
pub const MAX_KEPT_ERRORS: usize = 8;
/// How often progress is reported, once a run has lasted this long.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

const DEFAULT_ADAPTIVE_YAML: &str = "\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 0
";

const MOST_ALLOCATED_YAML: &str = "\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - {name: cpu, weight: 1}
        - {name: memory, weight: 1}
";

const SPREAD_YAML: &str = "\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    preScore:
      disabled: [{name: '*'}]
    score:
      disabled: [{name: '*'}]
      enabled: [{name: NodeResourcesFit, weight: 1}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: LeastAllocated
        resources:
        - {name: cpu, weight: 1}
        - {name: memory, weight: 1}
        - {name: bosun.io/gpu-milli, weight: 1}
";

/// A profile whose only score plugin is `{plugin}` (a template: `{plugin}` and
/// `{pre_score}` are replaced).
const ONE_SCORE_PLUGIN_YAML: &str = "\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    preScore:
      disabled: [{name: '*'}]
      enabled: [{pre_score}]
    score:
      disabled: [{name: '*'}]
      enabled: [{name: {plugin}, weight: 1}]
    reserve:
      enabled: [{reserve}]
";

/// No score plugin at all: every feasible node ties, and the seeded RNG picks one.
const RANDOM_YAML: &str = "\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    preScore:
      disabled: [{name: '*'}]
    score:
      disabled: [{name: '*'}]
";

/// The profile of a policy with one score plugin, which may also serve PreScore or
/// Reserve.
fn one_score_plugin_yaml(plugin: &str, pre_score: bool, reserve: bool) -> String {
    let named = |yes: bool| {
        if yes {
            format!("{{name: {plugin}}}")
        } else {
            String::new()
        }
    };
    ONE_SCORE_PLUGIN_YAML
        .replace("{pre_score}", &named(pre_score))
        .replace("{reserve}", &named(reserve))
        .replace("{plugin}", plugin)
}

/// A scheduling algorithm to compare. Every one keeps the default profile's filters
/// (so every placement fits); they differ in how the node is chosen among the
/// feasible ones, and `min-cost-flow` in placing a window of pods at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// A `KubeSchedulerConfiguration` document (empty: upstream's defaults), run by
    /// [`schedule_one`] one pod at a time.
    Framework { name: String, config_yaml: String },
    /// Fragmentation gradient descent: `FGDScore` as the only score plugin, its task
    /// mix the workload's measured pods (known only once the workload is built).
    Fgd { name: String },
    /// Windows of up to `window_pods` pending pods placed together by min-cost flow
    /// over a profile's filters and total scores ([`schedule_batch`]).
    MinCostFlow {
        name: String,
        config_yaml: String,
        window_pods: usize,
    },
}

impl Algorithm {
    /// The built-in algorithms, by name.
    pub const NAMES: [&'static str; 10] = [
        "default",
        "default-adaptive",
        "most-allocated",
        "spread",
        "fgd",
        "drf",
        "tetris",
        "first-fit",
        "random",
        "min-cost-flow",
    ];

    /// The built-in algorithm `name`:
    /// - `default`: upstream's default profile, every node filtered and scored;
    /// - `default-adaptive`: the same with upstream's adaptive `percentageOfNodesToScore`;
    /// - `most-allocated`: bin-packing, `NodeResourcesFit` with `MostAllocated` (cpu,
    ///   memory) in place of LeastAllocated, the other default scores kept;
    /// - `spread`: `NodeResourcesFit` with `LeastAllocated` over cpu, memory and
    ///   milli-GPU as the only score;
    /// - `fgd`: fragmentation gradient descent (Weng et al., ATC'23), `FGDScore` alone,
    ///   the fractional-GPU device chosen by the policy;
    /// - `drf`: `DominantShare` alone: the lowest dominant share after placement
    ///   (after DRF, Ghodsi et al., NSDI'11);
    /// - `tetris`: `TetrisAlignment` alone: demand . availability over capacity
    ///   (Grandl et al., SIGCOMM'14);
    /// - `first-fit`: the lowest-named feasible node;
    /// - `random`: a uniformly random feasible node, drawn from the seeded RNG;
    /// - `min-cost-flow`: windows of [`DEFAULT_WINDOW_PODS`] pods placed together by
    ///   min-cost flow over the default profile's scores (Firmament, Gog et al.,
    ///   OSDI'16).
    pub fn named(name: &str) -> Option<Algorithm> {
        let framework = |yaml: String| Algorithm::Framework {
            name: name.to_string(),
            config_yaml: yaml,
        };
        Some(match name {
            "default" => framework(String::new()),
            "default-adaptive" => framework(DEFAULT_ADAPTIVE_YAML.into()),
            "most-allocated" => framework(MOST_ALLOCATED_YAML.into()),
            "spread" => framework(SPREAD_YAML.into()),
            "drf" => framework(one_score_plugin_yaml(dominant_share::NAME, false, false)),
            "tetris" => framework(one_score_plugin_yaml(tetris::NAME, false, false)),
            "first-fit" => framework(one_score_plugin_yaml(first_fit::NAME, true, false)),
            "random" => framework(RANDOM_YAML.into()),
            "fgd" => Algorithm::Fgd {
                name: name.to_string(),
            },
            "min-cost-flow" => Algorithm::MinCostFlow {
                name: name.to_string(),
                config_yaml: String::new(),
                window_pods: DEFAULT_WINDOW_PODS,
            },
            _ => return None,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Algorithm::Framework { name, .. }
            | Algorithm::Fgd { name }
            | Algorithm::MinCostFlow { name, .. } => name,
        }
    }

    /// The window of a batch algorithm; `None` for one pod per cycle.
    pub fn window_pods(&self) -> Option<usize> {
        match self {
            Algorithm::MinCostFlow { window_pods, .. } => Some(*window_pods),
            _ => None,
        }
    }

    /// The profiles the algorithm schedules with, for this workload.
    pub fn profiles(&self, registry: &Registry, workload: &Workload) -> Result<Profiles, String> {
        let result = match self {
            Algorithm::Framework { config_yaml, .. }
            | Algorithm::MinCostFlow { config_yaml, .. } => {
                if config_yaml.trim().is_empty() {
                    Profiles::default_profiles(registry)
                } else {
                    Profiles::from_yaml(config_yaml, registry)
                }
            }
            Algorithm::Fgd { .. } => {
                let mix = measured_mix(workload);
                if mix.is_empty() {
                    return Err("fgd needs measured pods to take its task mix from".into());
                }
                let yaml = one_score_plugin_yaml(fgd::NAME, false, true);
                let mut config: SchedulerConfig =
                    serde_yaml::from_str(&yaml).expect("the built-in FGD profile parses");
                let args =
                    serde_yaml::to_value(FgdArgs::from_mix(&mix)).expect("FGD args serialise");
                config.profiles[0].plugin_config.push(PluginConfig {
                    name: fgd::NAME.into(),
                    args: Some(args),
                });
                Profiles::from_config(&config, registry)
            }
        };
        result.map_err(|e| e.to_string())
    }
}

/// The task mix of the workload's measured pods: the fragmentation figures' `M`, and
/// FGD's.
fn measured_mix(workload: &Workload) -> TaskMix {
    metrics::task_mix(workload.pods[workload.n_initial..].iter().map(|p| &*p.spec))
}

/// One progress report.
#[derive(Clone, Debug)]
pub struct ProgressUpdate<'a> {
    pub scenario: &'a str,
    pub algorithm: &'a str,
    pub done_pods: usize,
    pub total_pods: usize,
    pub elapsed: Duration,
}

/// Where progress goes. Reports start once a run has lasted [`PROGRESS_INTERVAL`].
#[derive(Clone, Default)]
pub enum Progress {
    Silent,
    /// One line per interval on stderr.
    #[default]
    Stderr,
    Callback(Arc<dyn Fn(&ProgressUpdate<'_>) + Send + Sync>),
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Progress::Silent => "Silent",
            Progress::Stderr => "Stderr",
            Progress::Callback(_) => "Callback",
        })
    }
}

/// Options of [`run_scenario`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run these algorithms instead of the scenario's.
    pub algorithms: Option<Vec<String>>,
    /// Use this seed instead of the scenario's.
    pub seed: Option<u64>,
    pub progress: Progress,
}

impl RunOptions {
    /// Options with no progress output (tests).
    pub fn quiet() -> RunOptions {
        RunOptions {
            progress: Progress::Silent,
            ..RunOptions::default()
        }
    }
}

/// One algorithm's run: its report, and what the invariant checker needs.
#[derive(Clone, Debug)]
pub struct AlgorithmRun {
    pub report: AlgorithmReport,
    /// The simulator's cluster at the end.
    pub cluster: ClusterState,
    /// Every scheduling decision in order: pod id and the node index it was placed on
    /// (`None`: not placed).
    pub decisions: Vec<(u32, Option<u32>)>,
    /// Where the initial pods were placed before measuring: pod id and node index
    /// (into `cluster.nodes`, whose indexes never move).
    pub initial_placements: Vec<(u32, u32)>,
    /// Plugin names of the profile at every extension point.
    pub profile_plugins: Vec<&'static str>,
}

/// A whole scenario run: the workload and each algorithm's run.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub scenario: Scenario,
    pub workload: Workload,
    pub runs: Vec<AlgorithmRun>,
    /// Time to generate or load the nodes and pods.
    pub workload_build_ms: f64,
    /// CPU time the process used building the workload and running the algorithms
    /// (every thread), where the platform reports it.
    pub process_cpu_ms: Option<f64>,
}

impl Simulation {
    pub fn report(&self) -> ScenarioReport {
        ScenarioReport::new(
            &self.scenario,
            &self.workload,
            &self.runs,
            self.workload_build_ms,
            self.process_cpu_ms,
        )
    }

    /// The algorithm a run of this simulation used, by name.
    pub fn algorithm(&self, name: &str) -> Option<Algorithm> {
        algorithm_of(&self.scenario, name)
    }
}

/// The scenario's algorithm `name`: one of its `profiles`, else a built-in one with
/// the scenario's batch window.
fn algorithm_of(scenario: &Scenario, name: &str) -> Option<Algorithm> {
    Some(match scenario.profiles.get(name) {
        Some(yaml) => Algorithm::Framework {
            name: name.to_string(),
            config_yaml: yaml.clone(),
        },
        None => match Algorithm::named(name)? {
            Algorithm::MinCostFlow {
                name, config_yaml, ..
            } => Algorithm::MinCostFlow {
                name,
                config_yaml,
                window_pods: scenario.batch_window_pods.unwrap_or(DEFAULT_WINDOW_PODS),
            },
            other => other,
        },
    })
}

/// Runs `scenario` for each of its algorithms (or `opts.algorithms`) and reports.
pub fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
) -> Result<ScenarioReport, HarnessError> {
    Ok(simulate(scenario, opts)?.report())
}

/// Like [`run_scenario`], keeping the final cluster states for inspection.
pub fn simulate(scenario: &Scenario, opts: &RunOptions) -> Result<Simulation, HarnessError> {
    let mut scenario = scenario.clone();
    if let Some(seed) = opts.seed {
        scenario.seed = seed;
    }
    if let Some(algorithms) = &opts.algorithms {
        scenario.algorithms = algorithms.clone();
    }
    scenario.validate(&scenario.name)?;
    let cpu_before = metrics::process_cpu_ms();
    let built = Instant::now();
    let workload = Workload::build(&scenario)?;
    let workload_build_ms = built.elapsed().as_secs_f64() * 1e3;
    let mut runs = Vec::with_capacity(scenario.algorithms.len());
    for name in &scenario.algorithms {
        let algorithm = algorithm_of(&scenario, name).expect("validated algorithm name");
        runs.push(Driver::run(
            &scenario,
            &workload,
            &algorithm,
            &opts.progress,
        )?);
    }
    let process_cpu_ms = metrics::process_cpu_ms()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Ok(Simulation {
        scenario,
        workload,
        runs,
        workload_build_ms,
        process_cpu_ms,
    })
}

/// A decision and the pod as the scheduler assumed it.
type Assumed = (Decision, Arc<PodInfo>);

/// What one cycle did.
enum Outcome {
    Placed(u32),
    Unschedulable { nominated: bool },
    FailedGpuDevice,
    SchedulerError(String),
}

impl Outcome {
    fn of_error(e: ScheduleError) -> Outcome {
        match e {
            ScheduleError::Fit(fit) => Outcome::Unschedulable {
                nominated: fit
                    .post_filter_result
                    .as_ref()
                    .is_some_and(|r| r.nominated_node_name.is_some()),
            },
            ScheduleError::NoNodes => Outcome::Unschedulable { nominated: false },
            e @ ScheduleError::Plugin { .. } => Outcome::SchedulerError(e.to_string()),
        }
    }

    fn placed(&self) -> Option<u32> {
        match self {
            Outcome::Placed(n) => Some(*n),
            _ => None,
        }
    }
}

struct Driver<'a> {
    scenario: &'a Scenario,
    workload: &'a Workload,
    profile: Profile,
    /// `Some`: a batch algorithm placing windows of this many pods.
    window_pods: Option<usize>,
    cache: Cache,
    snapshot: Snapshot,
    ctx: CycleContext,
    cluster: ClusterState,
    counts: Counts,
    errors: Vec<String>,
    decisions: Vec<(u32, Option<u32>)>,
    /// Time in the scheduler outside the measured cycles: filling its cache with
    /// the nodes, its snapshot, and each binding's confirmation.
    scheduler_side: Duration,
    /// Each pod's [`PodInfo`] once it arrived ([`Driver::info`]).
    infos: Vec<Option<Arc<PodInfo>>>,
    /// The simulator's node index of each snapshot node index, as of the snapshot's
    /// `layout_generation` in `snapshot_layout` (rebuilt when nodes come or go).
    snapshot_nodes: Vec<u32>,
    snapshot_layout: Option<u64>,
}

impl<'a> Driver<'a> {
    fn run(
        scenario: &'a Scenario,
        workload: &'a Workload,
        algorithm: &Algorithm,
        progress: &Progress,
    ) -> Result<AlgorithmRun, HarnessError> {
        let run_started = Instant::now();
        let registry = Registry::in_tree();
        let algo_err = |message: String| HarnessError::Algorithm {
            scenario: scenario.name.clone(),
            algorithm: algorithm.name().to_string(),
            message,
        };
        let profiles = algorithm.profiles(&registry, workload).map_err(algo_err)?;
        let profile = profiles
            .iter()
            .next()
            .expect("at least one profile")
            .clone();
        let profile_plugins: Vec<&'static str> = bosun_sched_algos::profile::EXTENSION_POINTS
            .iter()
            .flat_map(|p| profile.plugin_names(p))
            .collect();
        let missing_plugins: Vec<String> = scenario
            .requires_plugins
            .iter()
            .filter(|p| !registry.contains(p))
            .cloned()
            .collect();
        let mut d = Driver {
            scenario,
            workload,
            profile,
            window_pods: algorithm.window_pods(),
            cache: Cache::new(),
            snapshot: Snapshot::default(),
            ctx: CycleContext::seeded(scenario.seed),
            cluster: ClusterState::new(workload),
            counts: Counts::default(),
            errors: Vec::new(),
            decisions: Vec::with_capacity(workload.schedule.len() + workload.n_initial),
            scheduler_side: Duration::ZERO,
            infos: vec![None; workload.pods.len()],
            snapshot_nodes: Vec::new(),
            snapshot_layout: None,
        };
        for spec in &workload.nodes {
            let node = spec.to_k8s();
            let t = Instant::now();
            let added = d.cache.add_node(&node);
            d.scheduler_side += t.elapsed();
            added.map_err(|e| d.cache_error(e))?;
        }
        d.place_initial()?;
        let initial_placements: Vec<(u32, u32)> = (0..workload.n_initial as u32)
            .filter_map(|id| Some((id, d.cluster.pod_node[id as usize]?)))
            .collect();
        // The scheduler's snapshot is current when the measured pods arrive, as a
        // running scheduler's is: the first timed cycle must not pay for building it.
        let t = Instant::now();
        d.cache.update_snapshot(&mut d.snapshot);
        d.scheduler_side += t.elapsed();
        let m = d.schedule_all(algorithm.name(), progress)?;
        d.finish_counts();
        d.counts.check().map_err(|m| d.cache_error(m))?;
        let quality = metrics::quality(&d.cluster, &workload.nodes, &m.mix, m.first_failure);
        let report = AlgorithmReport {
            algorithm: algorithm.name().to_string(),
            plugin_pending: !missing_plugins.is_empty(),
            missing_plugins,
            counts: d.counts.clone(),
            throughput: m.throughput,
            scheduling: m.latency.summary(),
            latency_cdf: m.latency.cdf(),
            queue_wait: m.queue_wait.summary(),
            quality,
            gpu_curve: m.curve,
            placements_fnv64: placements_digest(workload, &d.cluster, &d.decisions),
            scheduler_errors: d.errors.clone(),
            run_time_ms: 0.0,
            scheduler_side_ms: d.scheduler_side.as_secs_f64() * 1e3,
        };
        let mut report = report;
        report.run_time_ms = run_started.elapsed().as_secs_f64() * 1e3;
        Ok(AlgorithmRun {
            report,
            cluster: d.cluster,
            decisions: d.decisions,
            initial_placements,
            profile_plugins,
        })
    }

    /// The scheduler's [`PodInfo`] of pod `id`, decoded on first use as its informer
    /// would on the pod's arrival (counted as the scheduler's work).
    fn info(&mut self, id: u32) -> Arc<PodInfo> {
        if let Some(info) = &self.infos[id as usize] {
            return Arc::clone(info);
        }
        let t = Instant::now();
        let info = self.workload.pods[id as usize].decode();
        self.scheduler_side += t.elapsed();
        self.infos[id as usize] = Some(Arc::clone(&info));
        info
    }

    fn cache_error(&self, e: impl std::fmt::Display) -> HarnessError {
        HarnessError::Cache {
            scenario: self.scenario.name.clone(),
            message: e.to_string(),
        }
    }

    fn place_initial(&mut self) -> Result<(), HarnessError> {
        let n_initial = self.workload.n_initial;
        self.counts.pods_initial = n_initial;
        if self.scenario.initial_placement == InitialPlacement::Scheduler {
            let ids: Vec<u32> = (0..n_initial as u32).collect();
            let mut outcomes = Vec::new();
            for window in ids.chunks(self.window_pods.unwrap_or(1)) {
                outcomes.clear();
                let elapsed = self.schedule_window(window, &mut outcomes)?;
                self.scheduler_side += elapsed;
                for outcome in &outcomes {
                    match outcome {
                        Outcome::Placed(_) => self.counts.pods_initial_placed += 1,
                        _ => self.counts.pods_initial_unschedulable += 1,
                    }
                }
            }
            return Ok(());
        }
        let n_nodes = self.cluster.nodes.len();
        let mut cursor = 0usize;
        for id in 0..n_initial as u32 {
            let found = (0..n_nodes).find_map(|k| {
                let n = ((cursor + k) % n_nodes) as u32;
                self.initial_fit(id, n).map(|devices| (n, devices))
            });
            match found {
                Some((n, devices)) => {
                    cursor = n as usize + 1;
                    let info = self.info(id);
                    self.bind(id, n, devices, None, info)?;
                    self.counts.pods_initial_placed += 1;
                }
                None => self.counts.pods_initial_unschedulable += 1,
            }
        }
        Ok(())
    }

    fn initial_fit(&self, id: u32, n: u32) -> Option<Vec<u8>> {
        let pod = &self.workload.pods[id as usize];
        let node = &self.cluster.nodes[n as usize];
        let spec = &self.workload.nodes[node.spec_idx as usize];
        let rules = &self.workload.groups[pod.group as usize].node_affinity;
        if !self.cluster.admits(spec, n, pod, rules) {
            return None;
        }
        self.cluster.fits(spec, n, &pod.spec)
    }

    /// Confirms pod `id` on node `n`: the cache learns the binding (of `info`, the pod
    /// as assumed, device pin included), the cluster the devices. `assumed` carries the
    /// decision's cycle state when the scheduler chose. The scheduler's objects (the
    /// cycle state, its copies of the pod) are dropped here, on its clock.
    fn bind(
        &mut self,
        id: u32,
        n: u32,
        devices: Vec<u8>,
        assumed: Option<CycleState>,
        info: Arc<PodInfo>,
    ) -> Result<(), HarnessError> {
        let pod = &self.workload.pods[id as usize];
        let node_name = &self.cluster.nodes[n as usize].name;
        let t = Instant::now();
        let bound = match assumed {
            Some(mut state) => run_bind(&self.profile, &mut state, &info, node_name)
                .map(drop)
                .map_err(|s| s.message()),
            None => Ok(()),
        };
        // The scheduler's side of a binding: its informer decodes the bound pod and
        // its cache confirms it, replacing the informer's earlier copy.
        let added = bound.and_then(|()| {
            let mut bound = PodInfo::clone(&info);
            bound.node_name.clone_from(node_name);
            self.infos[id as usize] = None;
            drop(info);
            self.cache
                .add_pod(Arc::new(bound))
                .map_err(|e| e.to_string())
        });
        self.scheduler_side += t.elapsed();
        added.map_err(|m| self.cache_error(format!("bind {}: {m}", pod.name)))?;
        self.cluster.place(id, pod, n, devices);
        Ok(())
    }

    /// Places a window of pods: one timed cycle each ([`schedule_one`], Reserve,
    /// assume) or, for a batch algorithm, one timed [`schedule_batch`]; then, untimed,
    /// the devices and the binding. Appends the outcomes in order to `outcomes` and
    /// returns the time taken.
    fn schedule_window(
        &mut self,
        ids: &[u32],
        outcomes: &mut Vec<Outcome>,
    ) -> Result<Duration, HarnessError> {
        let mut elapsed = Duration::ZERO;
        if self.window_pods.is_none() {
            for &id in ids {
                // The pod arrives (decoded, untimed here), then its cycle is timed.
                self.info(id);
                let start = Instant::now();
                let result = self.cycle(id);
                elapsed += start.elapsed();
                let outcome = self.settle(id, result?)?;
                outcomes.push(outcome);
            }
            return Ok(elapsed);
        }
        let infos: Vec<Arc<PodInfo>> = ids.iter().map(|&id| self.info(id)).collect();
        let start = Instant::now();
        let results = schedule_batch(
            &self.profile,
            &mut self.cache,
            &mut self.snapshot,
            &infos,
            &mut self.ctx,
        );
        elapsed += start.elapsed();
        drop(infos);
        let results = results.map_err(|e| self.cache_error(e))?;
        for (&id, result) in ids.iter().zip(results) {
            let outcome = self.settle(id, result.map(|p| (p.decision, p.pod)))?;
            outcomes.push(outcome);
        }
        Ok(elapsed)
    }

    /// What became of pod `id` after its cycle: confirmed and bound, or why not.
    fn settle(
        &mut self,
        id: u32,
        result: Result<Assumed, ScheduleError>,
    ) -> Result<Outcome, HarnessError> {
        let outcome = match result {
            Ok((decision, assumed)) => self.confirm(id, decision, assumed)?,
            Err(e) => Outcome::of_error(e),
        };
        self.decisions.push((id, outcome.placed()));
        Ok(outcome)
    }

    /// One cycle for pod `id`: snapshot, [`schedule_one`], Reserve, assume (pinned to
    /// its GPU devices).
    fn cycle(&mut self, id: u32) -> Result<Result<Assumed, ScheduleError>, HarnessError> {
        let info = &self.info(id);
        self.cache.update_snapshot(&mut self.snapshot);
        let mut decision = match schedule_one(&self.profile, &self.snapshot, info, &mut self.ctx) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let node = self.snapshot.node(decision.node_idx);
        if let Err(status) = run_reserve(&self.profile, &mut decision.state, info, node) {
            return Ok(Err(ScheduleError::Plugin {
                point: "Reserve",
                status,
            }));
        }
        let assumed = reserved_pod(&decision.state, info, node);
        self.cache
            .assume_pod(Arc::clone(&assumed), &decision.node_name)
            .map_err(|e| self.cache_error(e))?;
        Ok(Ok((decision, assumed)))
    }

    /// The simulator's index of the node at `snapshot_idx` in the current snapshot.
    fn cluster_node(&mut self, snapshot_idx: u32) -> u32 {
        let layout = self.snapshot.layout_generation();
        if self.snapshot_layout != Some(layout) {
            let by_name = &self.cluster.by_name;
            self.snapshot_nodes.clear();
            self.snapshot_nodes
                .extend(self.snapshot.nodes().iter().map(|node| {
                    *by_name
                        .get(&node.name)
                        .expect("the scheduler knows only the simulator's nodes")
                }));
            self.snapshot_layout = Some(layout);
        }
        self.snapshot_nodes[snapshot_idx as usize]
    }

    /// After the scheduler placed pod `id` (assumed as `assumed`): the devices the
    /// device plugin gives it (those the scheduler pinned, which must have room; else
    /// best fit), then bind; or, when no device has room, forget the pod.
    fn confirm(
        &mut self,
        id: u32,
        decision: Decision,
        assumed: Arc<PodInfo>,
    ) -> Result<Outcome, HarnessError> {
        let gpu = self.workload.pods[id as usize].spec.gpu;
        let n = self.cluster_node(decision.node_idx);
        debug_assert_eq!(self.cluster.nodes[n as usize].name, decision.node_name);
        let free = &self.cluster.nodes[n as usize].gpu_free_milli;
        let devices = match assumed.gpu_device_mask {
            Some(mask) => Some(cluster::pinned_devices(free, gpu, mask).ok_or_else(|| {
                self.cache_error(format!(
                    "{}: the scheduler pinned devices {mask:#b} that have no room",
                    assumed.name
                ))
            })?),
            None => cluster::assign_devices(free, gpu),
        };
        match devices {
            Some(devices) => {
                self.bind(id, n, devices, Some(decision.state), assumed)?;
                Ok(Outcome::Placed(n))
            }
            None => {
                let t = Instant::now();
                let forgotten = self.cache.forget_pod(&assumed.uid);
                drop((decision, assumed));
                self.scheduler_side += t.elapsed();
                forgotten.map_err(|e| self.cache_error(e))?;
                Ok(Outcome::FailedGpuDevice)
            }
        }
    }

    /// Schedules every pod of the workload's schedule, measuring as it goes: one pod
    /// per cycle, or for a batch algorithm windows of the pods arrived by the time the
    /// previous window ended (at most `window_pods`, never across a churn point). A
    /// window's time is shared equally by its pods, and its pods wait from their
    /// arrival to the window's start.
    fn schedule_all(
        &mut self,
        algorithm: &str,
        progress: &Progress,
    ) -> Result<Measurements, HarnessError> {
        let workload = self.workload;
        let mut m = Measurements::new(workload);
        let mut rng = SimRng::new(self.scenario.seed ^ CHURN_SEED_SALT);
        let wall = Instant::now();
        let mut last_report = wall;
        let total = workload.schedule.len();
        self.counts.pods_to_schedule = total;
        let window_pods = self.window_pods.unwrap_or(1);
        let churn_every = self.scenario.churn.as_ref().map(|c| c.every_pods);
        let mut k = 0;
        let mut ids: Vec<u32> = Vec::with_capacity(window_pods);
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(window_pods);
        let mut windows = 0u32;
        while k < total {
            if let Some(churn) = &self.scenario.churn
                && k > 0
                && k % churn.every_pods == 0
            {
                self.churn(churn.delete_pods, churn.recreate_nodes, &mut rng)?;
            }
            let arrival_ns = |j: usize| u128::from(workload.schedule[j].1) * 1000;
            let start_ns = m.sim_now_ns.max(arrival_ns(k));
            let mut end = k + 1;
            while end < total
                && end - k < window_pods
                && arrival_ns(end) <= start_ns
                && churn_every.is_none_or(|every| end % every != 0)
            {
                end += 1;
            }
            ids.clear();
            ids.extend(workload.schedule[k..end].iter().map(|&(id, _)| id));
            outcomes.clear();
            let elapsed = self.schedule_window(&ids, &mut outcomes)?;
            m.sim_now_ns = start_ns + elapsed.as_nanos();
            let share = elapsed / ids.len() as u32;
            for (j, (&id, outcome)) in ids.iter().zip(&outcomes).enumerate() {
                let measured = workload.collects_metrics(id);
                self.count(outcome, measured);
                if measured {
                    let wait = Duration::from_nanos((start_ns - arrival_ns(k + j)) as u64);
                    m.record(self, id, outcome.placed().is_some(), share, wait);
                }
            }
            k = end;
            // The clock is read every 64 windows, not after every pod.
            windows = windows.wrapping_add(1);
            if windows.is_multiple_of(64) && last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                let update = ProgressUpdate {
                    scenario: &self.scenario.name,
                    algorithm,
                    done_pods: k,
                    total_pods: total,
                    elapsed: wall.elapsed(),
                };
                report_progress(progress, &update);
            }
        }
        m.finish(self, wall.elapsed());
        Ok(m)
    }

    fn count(&mut self, outcome: &Outcome, measured: bool) {
        let c = &mut self.counts;
        c.pods_measured += usize::from(measured);
        match outcome {
            Outcome::Placed(_) => {
                c.pods_placed += 1;
                c.pods_measured_placed += usize::from(measured);
            }
            Outcome::Unschedulable { nominated } => {
                c.pods_unschedulable += 1;
                c.pods_preemption_nominated += usize::from(*nominated);
            }
            Outcome::FailedGpuDevice => c.pods_failed_gpu_device += 1,
            Outcome::SchedulerError(message) => {
                c.pods_scheduler_error += 1;
                if self.errors.len() < MAX_KEPT_ERRORS {
                    self.errors.push(message.clone());
                }
            }
        }
    }

    fn first_failure(&self, pod: &str, arrived: usize, arrived_gpu_milli: u64) -> FirstFailure {
        let nodes = &self.workload.nodes;
        let (cpu, memory) = metrics::cpu_memory_alloc_frac(&self.cluster, nodes);
        let gpu_alloc_frac = metrics::gpu_alloc_frac(&self.cluster, nodes);
        let capacity: u64 = nodes.iter().map(|n| n.gpu_milli_capacity()).sum();
        FirstFailure {
            pod: pod.to_string(),
            pods_arrived: arrived,
            cpu_alloc_frac: cpu,
            memory_alloc_frac: memory,
            gpu_alloc_frac,
            arrived_gpu_frac: (capacity > 0).then(|| arrived_gpu_milli as f64 / capacity as f64),
        }
    }

    /// Deletes `delete_pods` running pods, then replaces `recreate_nodes` live nodes
    /// (evicting their pods) with fresh ones of the same shape under a new name.
    fn churn(
        &mut self,
        delete_pods: usize,
        recreate_nodes: usize,
        rng: &mut SimRng,
    ) -> Result<(), HarnessError> {
        for _ in 0..delete_pods {
            let running: Vec<u32> = (0..self.workload.pods.len() as u32)
                .filter(|&id| self.cluster.pod_node[id as usize].is_some())
                .collect();
            if running.is_empty() {
                break;
            }
            let id = running[rng.index(running.len())];
            self.remove_pod(id)?;
            self.counts.pods_deleted_by_churn += 1;
        }
        for _ in 0..recreate_nodes {
            let alive: Vec<u32> = (0..self.cluster.nodes.len() as u32)
                .filter(|&n| self.cluster.nodes[n as usize].alive)
                .collect();
            if alive.is_empty() {
                break;
            }
            let n = alive[rng.index(alive.len())];
            for id in self.cluster.nodes[n as usize].pods.clone() {
                self.remove_pod(id)?;
                self.counts.pods_evicted_by_churn += 1;
            }
            let node = &mut self.cluster.nodes[n as usize];
            node.alive = false;
            let (old_name, spec_idx) = (node.name.clone(), node.spec_idx);
            self.cache
                .remove_node(&old_name)
                .map_err(|e| self.cache_error(e))?;
            self.counts.nodes_recreated_by_churn += 1;
            let mut spec = self.workload.nodes[spec_idx as usize].clone();
            spec.name = format!("{}-c{}", spec.name, self.counts.nodes_recreated_by_churn);
            self.cache
                .add_node(&spec.to_k8s())
                .map_err(|e| self.cache_error(e))?;
            self.cluster.add_node(&spec, spec_idx, k8s_name(&spec.name));
        }
        Ok(())
    }

    fn remove_pod(&mut self, id: u32) -> Result<(), HarnessError> {
        // A simulated pod's UID is its name.
        let uid = self.workload.pods[id as usize].name();
        self.cache
            .remove_pod(&uid)
            .map_err(|e| self.cache_error(e))?;
        self.cluster.remove(id, &self.workload.pods[id as usize]);
        Ok(())
    }

    fn finish_counts(&mut self) {
        self.counts.pods_running_end = self.cluster.n_running();
        self.counts.nodes_end = self.cluster.nodes.iter().filter(|n| n.alive).count();
        assert_eq!(
            self.counts.pods_running_end,
            self.cache.n_pods(),
            "the simulator and the scheduler's cache disagree on running pods"
        );
        assert_eq!(self.counts.nodes_end, self.cache.n_nodes());
    }
}

/// Salt mixed into the seed for churn's draws, so they differ from the workload's.
const CHURN_SEED_SALT: u64 = 0xC4;

/// What the scheduling loop measures: latency and queue wait, throughput, the first
/// failure and the GPU curve.
struct Measurements {
    latency: Latency,
    queue_wait: Latency,
    throughput: Throughput,
    first_failure: Option<FirstFailure>,
    curve: Vec<CurvePoint>,
    mix: TaskMix,
    /// Curve step in milli-GPU of arrived load; `None`: no curve.
    curve_step_milli: Option<u64>,
    next_curve_milli: u64,
    arrived_gpu_milli: u64,
    arrived: usize,
    failed: usize,
    sim_now_ns: u128,
    sched_ns: u128,
}

impl Measurements {
    fn new(workload: &Workload) -> Measurements {
        let gpu_capacity: u64 = workload.nodes.iter().map(|n| n.gpu_milli_capacity()).sum();
        let curve_step_milli = workload
            .curve_step_frac
            .filter(|_| gpu_capacity > 0)
            .map(|f| ((gpu_capacity as f64 * f).round() as u64).max(1));
        Measurements {
            latency: Latency::default(),
            queue_wait: Latency::default(),
            throughput: Throughput::default(),
            first_failure: None,
            curve: Vec::new(),
            mix: measured_mix(workload),
            curve_step_milli,
            next_curve_milli: curve_step_milli.unwrap_or(u64::MAX),
            arrived_gpu_milli: 0,
            arrived: 0,
            failed: 0,
            sim_now_ns: 0,
            sched_ns: 0,
        }
    }

    fn record(&mut self, d: &Driver<'_>, id: u32, placed: bool, elapsed: Duration, wait: Duration) {
        let pod = &d.workload.pods[id as usize];
        self.latency.record(elapsed);
        self.queue_wait.record(wait);
        self.sched_ns += elapsed.as_nanos();
        self.arrived += 1;
        self.arrived_gpu_milli += pod.spec.gpu.milli();
        if !placed {
            self.failed += 1;
            if self.first_failure.is_none() {
                let f = d.first_failure(&pod.name, self.arrived, self.arrived_gpu_milli);
                self.first_failure = Some(f);
            }
        }
        while self.arrived_gpu_milli >= self.next_curve_milli {
            self.curve_point(d);
            self.next_curve_milli += self.curve_step_milli.expect("set with the threshold");
        }
    }

    fn curve_point(&mut self, d: &Driver<'_>) {
        self.curve.extend(metrics::curve_point(
            &d.cluster,
            &d.workload.nodes,
            &self.mix,
            self.arrived_gpu_milli,
            self.arrived,
            self.failed,
        ));
    }

    fn finish(&mut self, d: &Driver<'_>, wall: Duration) {
        if self.curve_step_milli.is_some() {
            self.curve_point(d);
        }
        let wall_s = wall.as_secs_f64();
        let sched_s = self.sched_ns as f64 / 1e9;
        let n = d.counts.pods_measured as f64;
        self.throughput = Throughput {
            pods_per_s: if sched_s > 0.0 { n / sched_s } else { 0.0 },
            wall_pods_per_s: if wall_s > 0.0 { n / wall_s } else { 0.0 },
            sched_time_ms: sched_s * 1e3,
            wall_time_ms: wall_s * 1e3,
            sim_time_ms: self.sim_now_ns as f64 / 1e6,
        };
    }
}

fn report_progress(progress: &Progress, update: &ProgressUpdate<'_>) {
    match progress {
        Progress::Silent => {}
        Progress::Stderr => eprintln!(
            "[{} / {}] {}/{} pods, {:.1}s",
            update.scenario,
            update.algorithm,
            update.done_pods,
            update.total_pods,
            update.elapsed.as_secs_f64()
        ),
        Progress::Callback(f) => f(update),
    }
}

/// FNV-1a over (pod name, node name) of every decision, in order: equal digests mean
/// (with overwhelming likelihood) equal placements.
fn placements_digest(
    workload: &Workload,
    cluster: &ClusterState,
    decisions: &[(u32, Option<u32>)],
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for &(id, node) in decisions {
        eat(workload.pods[id as usize].name.as_bytes());
        eat(b"\0");
        eat(node.map_or(b"-" as &[u8], |n| cluster.nodes[n as usize].name.as_bytes()));
        eat(b"\n");
    }
    format!("{h:016x}")
}
