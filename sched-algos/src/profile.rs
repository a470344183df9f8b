//! Profiles from YAML in the shape of `KubeSchedulerConfiguration`
//! (kubescheduler.config.k8s.io/v1): per profile, plugins enabled and disabled per
//! extension point and under `multiPoint`, score weights, and `pluginConfig` args.
//!
//! Merging follows upstream: the default `multiPoint` set (see
//! [`default_multi_point`]) is merged with the profile's (`disabled` names, or `"*"`,
//! drop defaults; an `enabled` entry naming a default replaces it in place; others are
//! appended), then expanded into every extension point each plugin implements, with
//! explicit per-point `enabled` entries overriding and per-point `disabled` entries
//! removing. A score plugin's weight is its `score` entry's, else its `multiPoint`
//! entry's, and 0 means 1.
//!
//! Bosun difference: `percentageOfNodesToScore` absent means every node is scored
//! (upstream's absent means adaptive); `0` selects upstream's adaptive formula.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;

use crate::framework::{
    BindPlugin, Extensions, FilterPlugin, MAX_NODE_SCORE, PermitPlugin, PostBindPlugin,
    PostFilterPlugin, PreBindPlugin, PreEnqueuePlugin, PreFilterPlugin, PreScorePlugin,
    QueueSortPlugin, ReservePlugin, ScorePlugin,
};
use crate::pod_info::PodInfo;
use crate::registry::{ConfigError, Registry};

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// A bound on profiles in one configuration.
pub const MAX_PROFILES: usize = 64;
/// Upstream's `MaxTotalScore` (`math.MaxInt64`): weights times 100 must sum below it.
pub const MAX_TOTAL_SCORE: i64 = i64::MAX;

/// The extension points in config spelling, in cycle order.
pub const EXTENSION_POINTS: [&str; 12] = [
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
    "postBind",
];

/// One `plugins.<point>.enabled|disabled` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// `plugins:` of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
}

impl PluginsConfig {
    fn point(&self, point: &str) -> &PluginSet {
        match point {
            "preEnqueue" => &self.pre_enqueue,
            "queueSort" => &self.queue_sort,
            "preFilter" => &self.pre_filter,
            "filter" => &self.filter,
            "postFilter" => &self.post_filter,
            "preScore" => &self.pre_score,
            "score" => &self.score,
            "reserve" => &self.reserve,
            "permit" => &self.permit,
            "preBind" => &self.pre_bind,
            "bind" => &self.bind,
            "postBind" => &self.post_bind,
            other => unreachable!("unknown extension point {other}"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<serde_yaml::Value>,
}

/// One entry of `profiles:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Option<PluginsConfig>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// The parts of `KubeSchedulerConfiguration` the algorithms use; other top-level fields
/// (leader election, client connection, ...) belong to the service and are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerConfig {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
}

/// Upstream's v1 default `multiPoint` set, restricted to the plugins this crate has,
/// in upstream's order, with upstream's weights.
pub fn default_multi_point() -> Vec<PluginRef> {
    // Upstream's volume plugins (VolumeRestrictions, NodeVolumeLimits, VolumeBinding,
    // VolumeZone) sit between NodeResourcesFit and PodTopologySpread; Bosun has none.
    [
        ("SchedulingGates", 0),
        ("PrioritySort", 0),
        ("NodeUnschedulable", 0),
        ("NodeName", 0),
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("NodePorts", 0),
        ("NodeResourcesFit", 1),
        // Bosun's: a GPU request must fit physical devices (passes for non-GPU pods
        // and nodes without devices).
        ("GpuDeviceFit", 0),
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("DefaultPreemption", 0),
        ("NodeResourcesBalancedAllocation", 1),
        ("ImageLocality", 1),
        ("DefaultBinder", 0),
    ]
    .into_iter()
    .map(|(name, weight)| PluginRef {
        name: name.to_owned(),
        weight,
    })
    .collect()
}

/// How many nodes a cycle filters before it stops looking for more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeSampling {
    /// Every node is filtered and every feasible node scored (Bosun's default).
    All,
    /// `percentageOfNodesToScore`: 1..=100 as given, 0 for upstream's adaptive
    /// `max(5, 50 - nodes/125)` percent; never fewer than 100 nodes.
    Percentage(u32),
}

/// A score plugin and its weight (>= 1).
#[derive(Clone)]
pub struct WeightedScore {
    pub plugin: Arc<dyn ScorePlugin>,
    pub weight: i64,
}

/// A built profile: the plugin instances per extension point, in run order.
#[derive(Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub node_sampling: NodeSampling,
    pub pre_enqueue: Vec<Arc<dyn PreEnqueuePlugin>>,
    pub queue_sort: Arc<dyn QueueSortPlugin>,
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    pub score: Vec<WeightedScore>,
    pub reserve: Vec<Arc<dyn ReservePlugin>>,
    pub permit: Vec<Arc<dyn PermitPlugin>>,
    pub pre_bind: Vec<Arc<dyn PreBindPlugin>>,
    pub bind: Vec<Arc<dyn BindPlugin>>,
    pub post_bind: Vec<Arc<dyn PostBindPlugin>>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: Vec<&'static str>| v.join(",");
        f.debug_struct("Profile")
            .field("scheduler_name", &self.scheduler_name)
            .field("node_sampling", &self.node_sampling)
            .field(
                "filter",
                &names(self.filter.iter().map(|p| p.name()).collect()),
            )
            .field(
                "score",
                &self
                    .score
                    .iter()
                    .map(|s| format!("{}={}", s.plugin.name(), s.weight))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// The highest total score a node can get: the sum of the score weights times
    /// [`MAX_NODE_SCORE`] (0 without score plugins).
    pub fn max_total_score(&self) -> i64 {
        self.score.iter().map(|s| s.weight * MAX_NODE_SCORE).sum()
    }

    /// Plugin names per extension point, for inspection and tests.
    pub fn plugin_names(&self, point: &str) -> Vec<&'static str> {
        match point {
            "preEnqueue" => self.pre_enqueue.iter().map(|p| p.name()).collect(),
            "queueSort" => vec![self.queue_sort.name()],
            "preFilter" => self.pre_filter.iter().map(|p| p.name()).collect(),
            "filter" => self.filter.iter().map(|p| p.name()).collect(),
            "postFilter" => self.post_filter.iter().map(|p| p.name()).collect(),
            "preScore" => self.pre_score.iter().map(|p| p.name()).collect(),
            "score" => self.score.iter().map(|p| p.plugin.name()).collect(),
            "reserve" => self.reserve.iter().map(|p| p.name()).collect(),
            "permit" => self.permit.iter().map(|p| p.name()).collect(),
            "preBind" => self.pre_bind.iter().map(|p| p.name()).collect(),
            "bind" => self.bind.iter().map(|p| p.name()).collect(),
            "postBind" => self.post_bind.iter().map(|p| p.name()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Profiles by scheduler name; a pod is scheduled by the profile named by its
/// `spec.schedulerName` and ignored when none matches.
#[derive(Clone, Debug)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    /// Upstream's default configuration: one `default-scheduler` profile.
    pub fn default_profiles(registry: &Registry) -> Result<Profiles, ConfigError> {
        Profiles::from_config(&SchedulerConfig::default(), registry)
    }

    /// Parses a `KubeSchedulerConfiguration` document.
    pub fn from_yaml(yaml: &str, registry: &Registry) -> Result<Profiles, ConfigError> {
        let config: SchedulerConfig =
            serde_yaml::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        if let Some(kind) = &config.kind
            && kind != "KubeSchedulerConfiguration"
        {
            return Err(ConfigError::Yaml(format!(
                "kind {kind:?} is not KubeSchedulerConfiguration"
            )));
        }
        Profiles::from_config(&config, registry)
    }

    pub fn from_config(
        config: &SchedulerConfig,
        registry: &Registry,
    ) -> Result<Profiles, ConfigError> {
        let default_profile = [ProfileConfig::default()];
        let configs = if config.profiles.is_empty() {
            &default_profile[..]
        } else {
            &config.profiles
        };
        if configs.len() > MAX_PROFILES {
            return Err(ConfigError::Profiles(format!(
                "more than {MAX_PROFILES} profiles"
            )));
        }
        let mut profiles: Vec<Profile> = Vec::with_capacity(configs.len());
        for pc in configs {
            let p = build_profile(pc, config.percentage_of_nodes_to_score, registry)?;
            if profiles
                .iter()
                .any(|q| q.scheduler_name == p.scheduler_name)
            {
                return Err(ConfigError::Profiles(format!(
                    "duplicate schedulerName {:?}",
                    p.scheduler_name
                )));
            }
            profiles.push(p);
        }
        let sort = profiles[0].queue_sort.name();
        if profiles.iter().any(|p| p.queue_sort.name() != sort) {
            return Err(ConfigError::Profiles(
                "all profiles must use the same queueSort plugin".into(),
            ));
        }
        Ok(Profiles { profiles })
    }

    pub fn get(&self, scheduler_name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.scheduler_name == scheduler_name)
    }

    /// The profile responsible for `pod`, if any.
    pub fn for_pod(&self, pod: &PodInfo) -> Option<&Profile> {
        self.get(&pod.scheduler_name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }
}

fn profile_error(profile: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Profile {
        profile: profile.to_owned(),
        message: message.into(),
    }
}

/// Upstream's `mergePluginSet` of a default set with a custom one.
fn merge_plugin_set(defaults: &[PluginRef], custom: &PluginSet) -> PluginSet {
    let disabled: BTreeSet<&str> = custom.disabled.iter().map(|p| p.name.as_str()).collect();
    let mut replaced = BTreeSet::new();
    let mut enabled = Vec::new();
    if !disabled.contains("*") {
        for d in defaults {
            if disabled.contains(d.name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    replaced.insert(i);
                    enabled.push(custom.enabled[i].clone());
                }
                None => enabled.push(d.clone()),
            }
        }
    }
    for (i, c) in custom.enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            enabled.push(c.clone());
        }
    }
    PluginSet {
        enabled,
        disabled: custom.disabled.clone(),
    }
}

/// The plugin names of one extension point after `multiPoint` expansion (upstream's
/// `expandMultiPointPlugins` ordering: overridden, then multiPoint, then the rest).
fn expand_point(
    profile: &str,
    point: &str,
    specific: &PluginSet,
    multi: &PluginSet,
    instances: &BTreeMap<String, Extensions>,
) -> Result<Vec<String>, ConfigError> {
    let mut enabled: Vec<String> = Vec::new();
    for p in &specific.enabled {
        if enabled.contains(&p.name) {
            return Err(profile_error(
                profile,
                format!("plugin {:?} enabled twice in {point}", p.name),
            ));
        }
        if !instances[&p.name].serves(point) {
            return Err(profile_error(
                profile,
                format!("plugin {:?} does not extend {point}", p.name),
            ));
        }
        enabled.push(p.name.clone());
    }
    let disabled: BTreeSet<&str> = specific.disabled.iter().map(|p| p.name.as_str()).collect();
    if disabled.contains("*") {
        return Ok(enabled);
    }
    let mut overrides = Vec::new();
    let mut from_multi = Vec::new();
    for p in &multi.enabled {
        if !instances[&p.name].serves(point) || disabled.contains(p.name.as_str()) {
            continue;
        }
        if enabled.contains(&p.name) {
            overrides.push(p.name.clone());
            continue;
        }
        if from_multi.contains(&p.name) {
            return Err(profile_error(
                profile,
                format!("plugin {:?} already registered as {point}", p.name),
            ));
        }
        from_multi.push(p.name.clone());
    }
    let rest = enabled.iter().filter(|n| !overrides.contains(n)).cloned();
    Ok(overrides
        .iter()
        .cloned()
        .chain(from_multi)
        .chain(rest)
        .collect())
}

fn build_profile(
    pc: &ProfileConfig,
    global_pct: Option<i32>,
    registry: &Registry,
) -> Result<Profile, ConfigError> {
    let name = pc
        .scheduler_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_owned());
    let plugins = pc.plugins.clone().unwrap_or_default();
    let multi = merge_plugin_set(&default_multi_point(), &plugins.multi_point);
    let node_sampling = match pc.percentage_of_nodes_to_score.or(global_pct) {
        None => NodeSampling::All,
        Some(p) if (0..=100).contains(&p) => NodeSampling::Percentage(p as u32),
        Some(p) => {
            return Err(profile_error(
                &name,
                format!("percentageOfNodesToScore {p} not in 0..=100"),
            ));
        }
    };
    let mut args: BTreeMap<&str, &serde_yaml::Value> = BTreeMap::new();
    for c in &pc.plugin_config {
        let Some(a) = &c.args else { continue };
        if args.insert(c.name.as_str(), a).is_some() {
            return Err(profile_error(
                &name,
                format!("repeated pluginConfig for {:?}", c.name),
            ));
        }
    }
    // One instance per plugin name, shared by every extension point it serves.
    let mut instances: BTreeMap<String, Extensions> = BTreeMap::new();
    let all_refs = EXTENSION_POINTS
        .iter()
        .flat_map(|p| &plugins.point(p).enabled)
        .chain(&multi.enabled);
    for r in all_refs {
        if !instances.contains_key(&r.name) {
            instances.insert(
                r.name.clone(),
                registry.build(&r.name, args.get(r.name.as_str()).copied())?,
            );
        }
    }
    let mut points: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for point in EXTENSION_POINTS {
        points.insert(
            point,
            expand_point(&name, point, plugins.point(point), &multi, &instances)?,
        );
    }
    let pick = |point: &str| {
        points[point]
            .iter()
            .map(|n| &instances[n])
            .collect::<Vec<_>>()
    };
    macro_rules! collect {
        ($point:literal, $field:ident) => {
            pick($point)
                .iter()
                .map(|e| e.$field.clone().expect("serves point"))
                .collect()
        };
    }
    let queue_sorts: Vec<Arc<dyn QueueSortPlugin>> = collect!("queueSort", queue_sort);
    let [queue_sort] = <[_; 1]>::try_from(queue_sorts).map_err(|v| {
        profile_error(
            &name,
            format!("exactly one queueSort plugin is needed, got {}", v.len()),
        )
    })?;
    let score = score_weights(&name, &points["score"], &plugins.score, &multi, &instances)?;
    let bind: Vec<Arc<dyn BindPlugin>> = collect!("bind", bind);
    if bind.is_empty() {
        return Err(profile_error(&name, "at least one bind plugin is needed"));
    }
    Ok(Profile {
        scheduler_name: name,
        node_sampling,
        pre_enqueue: collect!("preEnqueue", pre_enqueue),
        queue_sort,
        pre_filter: collect!("preFilter", pre_filter),
        filter: collect!("filter", filter),
        post_filter: collect!("postFilter", post_filter),
        pre_score: collect!("preScore", pre_score),
        score,
        reserve: collect!("reserve", reserve),
        permit: collect!("permit", permit),
        pre_bind: collect!("preBind", pre_bind),
        bind,
        post_bind: collect!("postBind", post_bind),
    })
}

/// Upstream's `getScoreWeights`: the `score` entry's weight wins over `multiPoint`'s;
/// 0 means 1; negative weights are refused; the total must not overflow.
fn score_weights(
    profile: &str,
    names: &[String],
    score: &PluginSet,
    multi: &PluginSet,
    instances: &BTreeMap<String, Extensions>,
) -> Result<Vec<WeightedScore>, ConfigError> {
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let weight = score
            .enabled
            .iter()
            .chain(&multi.enabled)
            .find(|r| &r.name == n)
            .map_or(0, |r| r.weight);
        if weight < 0 {
            return Err(profile_error(
                profile,
                format!("score plugin {n:?} has negative weight {weight}"),
            ));
        }
        let weight = weight.max(1);
        if weight.saturating_mul(MAX_NODE_SCORE) > MAX_TOTAL_SCORE - total {
            return Err(profile_error(
                profile,
                "total score of Score plugins could overflow",
            ));
        }
        total += weight * MAX_NODE_SCORE;
        out.push(WeightedScore {
            plugin: instances[n].score.clone().expect("serves score"),
            weight,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
