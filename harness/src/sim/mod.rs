//! The simulation driver: scheduling algorithms run in-process against an in-memory
//! cluster with simulated time, so what is measured is the algorithm alone.
//!
//! Per algorithm: the scheduler's [`Cache`] is built from the workload's nodes (via
//! [`NodeSpec::to_k8s`](crate::model::NodeSpec::to_k8s)); initial pods are placed
//! ([`InitialPlacement`]); then each pod to schedule, in the workload's order, runs one
//! cycle: `update_snapshot` + [`schedule_one`] + `assume_pod`, timed together (the
//! latency); then, untimed, the GPU devices are assigned ([`cluster`]), the Bind plugins
//! run and the binding is confirmed in the cache. Simulated time advances by each
//! cycle's measured duration, from the pod's arrival or the end of the previous cycle,
//! whichever is later: the queue wait is the gap. Unschedulable pods are counted (a
//! later slice retries them on cluster events).
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
//! algorithms: [default, most-allocated]
//! ";
//! let scenario = Scenario::from_yaml(yaml, "inline")?;
//! let report = run_scenario(&scenario, &RunOptions::quiet())?;
//! // 10 nodes of 4 CPUs take 20 one-CPU pods; bin-packing fills 5 of them.
//! assert_eq!(report.algorithms[0].counts.pods_placed, 20);
//! assert_eq!(report.algorithms[1].quality.nodes_used, 5);
//! println!("{}", report.terminal_table());
//! # Ok::<(), bosun_harness::error::HarnessError>(())
//! ```

pub mod cluster;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_sched_algos::schedule::run_bind;
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

/// A scheduling algorithm to compare. Today every algorithm is a kube-scheduler
/// profile run by [`schedule_one`]; algorithms outside the framework (FGD, DRF,
/// Tetris, min-cost flow, random, first-fit: [`Algorithm::PLANNED`]) become variants
/// of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// A `KubeSchedulerConfiguration` document (empty: upstream's defaults).
    Framework { name: String, config_yaml: String },
}

impl Algorithm {
    /// The built-in algorithms, by name.
    pub const NAMES: [&'static str; 3] = ["default", "default-adaptive", "most-allocated"];
    /// Slots for algorithms not implemented yet; naming one is an error until it is.
    pub const PLANNED: [&'static str; 6] = [
        "fgd",
        "drf",
        "tetris",
        "min-cost-flow",
        "random",
        "first-fit",
    ];

    /// The built-in algorithm `name`:
    /// - `default`: upstream's default profile, every node filtered and scored;
    /// - `default-adaptive`: the same with upstream's adaptive `percentageOfNodesToScore`;
    /// - `most-allocated`: bin-packing, `NodeResourcesFit` with `MostAllocated`.
    pub fn named(name: &str) -> Option<Algorithm> {
        let yaml = match name {
            "default" => "",
            "default-adaptive" => DEFAULT_ADAPTIVE_YAML,
            "most-allocated" => MOST_ALLOCATED_YAML,
            _ => return None,
        };
        Some(Algorithm::Framework {
            name: name.to_string(),
            config_yaml: yaml.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Algorithm::Framework { name, .. } => name,
        }
    }

    fn profiles(&self, registry: &Registry) -> Result<Profiles, String> {
        let Algorithm::Framework { config_yaml, .. } = self;
        let result = if config_yaml.trim().is_empty() {
            Profiles::default_profiles(registry)
        } else {
            Profiles::from_yaml(config_yaml, registry)
        };
        result.map_err(|e| e.to_string())
    }
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
    /// Plugin names of the profile at every extension point.
    pub profile_plugins: Vec<&'static str>,
}

/// A whole scenario run: the workload and each algorithm's run.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub scenario: Scenario,
    pub workload: Workload,
    pub runs: Vec<AlgorithmRun>,
}

impl Simulation {
    pub fn report(&self) -> ScenarioReport {
        ScenarioReport::new(&self.scenario, &self.workload, &self.runs)
    }
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
    let workload = Workload::build(&scenario)?;
    let mut runs = Vec::with_capacity(scenario.algorithms.len());
    for name in &scenario.algorithms {
        let algorithm = match scenario.profiles.get(name) {
            Some(yaml) => Algorithm::Framework {
                name: name.clone(),
                config_yaml: yaml.clone(),
            },
            None => Algorithm::named(name).expect("validated algorithm name"),
        };
        runs.push(Driver::run(
            &scenario,
            &workload,
            &algorithm,
            &opts.progress,
        )?);
    }
    Ok(Simulation {
        scenario,
        workload,
        runs,
    })
}

/// What one cycle did.
enum Outcome {
    Placed(u32),
    Unschedulable { nominated: bool },
    FailedGpuDevice,
    SchedulerError(String),
}

struct Driver<'a> {
    scenario: &'a Scenario,
    workload: &'a Workload,
    profile: Profile,
    cache: Cache,
    snapshot: Snapshot,
    ctx: CycleContext,
    cluster: ClusterState,
    counts: Counts,
    errors: Vec<String>,
    decisions: Vec<(u32, Option<u32>)>,
}

impl<'a> Driver<'a> {
    fn run(
        scenario: &'a Scenario,
        workload: &'a Workload,
        algorithm: &Algorithm,
        progress: &Progress,
    ) -> Result<AlgorithmRun, HarnessError> {
        let registry = Registry::in_tree();
        let algo_err = |message: String| HarnessError::Algorithm {
            scenario: scenario.name.clone(),
            algorithm: algorithm.name().to_string(),
            message,
        };
        let profiles = algorithm.profiles(&registry).map_err(algo_err)?;
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
            cache: Cache::new(),
            snapshot: Snapshot::default(),
            ctx: CycleContext::seeded(scenario.seed),
            cluster: ClusterState::new(workload),
            counts: Counts::default(),
            errors: Vec::new(),
            decisions: Vec::new(),
        };
        for spec in &workload.nodes {
            d.cache
                .add_node(&spec.to_k8s())
                .map_err(|e| d.cache_error(e))?;
        }
        d.place_initial()?;
        // The scheduler's snapshot is current when the measured pods arrive, as a
        // running scheduler's is: the first timed cycle must not pay for building it.
        d.cache.update_snapshot(&mut d.snapshot);
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
            queue_wait: m.queue_wait.summary(),
            quality,
            gpu_curve: m.curve,
            placements_fnv64: placements_digest(workload, &d.cluster, &d.decisions),
            scheduler_errors: d.errors.clone(),
        };
        Ok(AlgorithmRun {
            report,
            cluster: d.cluster,
            decisions: d.decisions,
            profile_plugins,
        })
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
        let n_nodes = self.cluster.nodes.len();
        let mut cursor = 0usize;
        for id in 0..n_initial as u32 {
            let placed = match self.scenario.initial_placement {
                InitialPlacement::Scheduler => match self.schedule_pod(id)?.0 {
                    Outcome::Placed(n) => Some(n),
                    _ => None,
                },
                InitialPlacement::RoundRobin => {
                    let found = (0..n_nodes).find_map(|k| {
                        let n = ((cursor + k) % n_nodes) as u32;
                        self.initial_fit(id, n).map(|devices| (n, devices))
                    });
                    match found {
                        Some((n, devices)) => {
                            cursor = n as usize + 1;
                            self.bind(id, n, devices, None)?;
                            Some(n)
                        }
                        None => None,
                    }
                }
            };
            match placed {
                Some(_) => self.counts.pods_initial_placed += 1,
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

    /// Confirms pod `id` on node `n`: the cache learns the binding, the cluster the
    /// devices. `assumed` carries the decision's cycle state when the scheduler chose.
    fn bind(
        &mut self,
        id: u32,
        n: u32,
        devices: Vec<u8>,
        assumed: Option<&mut bosun_sched_algos::CycleState>,
    ) -> Result<(), HarnessError> {
        let pod = &self.workload.pods[id as usize];
        let node_name = self.cluster.nodes[n as usize].name.clone();
        if let Some(state) = assumed {
            run_bind(&self.profile, state, &pod.info, &node_name).map_err(|s| {
                self.cache_error(format!("bind {}: {}", pod.spec.name, s.message()))
            })?;
        }
        let mut bound: PodInfo = (*pod.info).clone();
        bound.node_name = node_name;
        self.cache
            .add_pod(Arc::new(bound))
            .map_err(|e| self.cache_error(e))?;
        self.cluster.place(id, &pod.spec, n, devices);
        Ok(())
    }

    /// One timed cycle for pod `id`, then the untimed bookkeeping.
    fn schedule_pod(&mut self, id: u32) -> Result<(Outcome, Duration), HarnessError> {
        let pod = &self.workload.pods[id as usize];
        let info = Arc::clone(&pod.info);
        let start = Instant::now();
        self.cache.update_snapshot(&mut self.snapshot);
        let result = schedule_one(&self.profile, &self.snapshot, &info, &mut self.ctx);
        let assumed = match &result {
            Ok(decision) => self
                .cache
                .assume_pod(Arc::clone(&info), &decision.node_name),
            Err(_) => Ok(()),
        };
        let elapsed = start.elapsed();
        assumed.map_err(|e| self.cache_error(e))?;
        let outcome = match result {
            Ok(mut decision) => {
                let n = *self
                    .cluster
                    .by_name
                    .get(&decision.node_name)
                    .expect("the scheduler chose a known node");
                let node = &self.cluster.nodes[n as usize];
                match cluster::assign_devices(&node.gpu_free_milli, pod.spec.gpu) {
                    Some(devices) => {
                        self.bind(id, n, devices, Some(&mut decision.state))?;
                        Outcome::Placed(n)
                    }
                    None => {
                        self.cache
                            .forget_pod(&info.uid)
                            .map_err(|e| self.cache_error(e))?;
                        Outcome::FailedGpuDevice
                    }
                }
            }
            Err(ScheduleError::Fit(fit)) => Outcome::Unschedulable {
                nominated: fit
                    .post_filter_result
                    .as_ref()
                    .is_some_and(|r| r.nominated_node_name.is_some()),
            },
            Err(ScheduleError::NoNodes) => Outcome::Unschedulable { nominated: false },
            Err(e @ ScheduleError::Plugin { .. }) => Outcome::SchedulerError(e.to_string()),
        };
        let placed = match outcome {
            Outcome::Placed(n) => Some(n),
            _ => None,
        };
        self.decisions.push((id, placed));
        Ok((outcome, elapsed))
    }

    /// Schedules every pod of the workload's schedule, measuring as it goes.
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
        for (k, &(id, arrival_us)) in workload.schedule.iter().enumerate() {
            if let Some(churn) = &self.scenario.churn
                && k > 0
                && k % churn.every_pods == 0
            {
                self.churn(churn.delete_pods, churn.recreate_nodes, &mut rng)?;
            }
            let arrival_ns = u128::from(arrival_us) * 1000;
            let start_ns = m.sim_now_ns.max(arrival_ns);
            let (outcome, elapsed) = self.schedule_pod(id)?;
            m.sim_now_ns = start_ns + elapsed.as_nanos();
            let measured = workload.collects_metrics(id);
            self.count(&outcome, measured);
            if measured {
                let wait = Duration::from_nanos((start_ns - arrival_ns) as u64);
                let placed = matches!(outcome, Outcome::Placed(_));
                m.record(self, id, placed, elapsed, wait);
            }
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                let update = ProgressUpdate {
                    scenario: &self.scenario.name,
                    algorithm,
                    done_pods: k + 1,
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
        let pod = &self.workload.pods[id as usize];
        self.cache
            .remove_pod(&pod.info.uid)
            .map_err(|e| self.cache_error(e))?;
        self.cluster.remove(id, &pod.spec);
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
            mix: TaskMix::of(workload.pods[workload.n_initial..].iter().map(|p| &p.spec)),
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
                let f = d.first_failure(&pod.spec.name, self.arrived, self.arrived_gpu_milli);
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
        eat(workload.pods[id as usize].spec.name.as_bytes());
        eat(b"\0");
        eat(node.map_or(b"-" as &[u8], |n| cluster.nodes[n as usize].name.as_bytes()));
        eat(b"\n");
    }
    format!("{h:016x}")
}
