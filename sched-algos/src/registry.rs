//! The plugin registry: plugin name -> factory (upstream's `frameworkruntime.Registry`).
//! Registering a name twice is refused. A factory turns the profile's `args` for the
//! plugin (YAML, absent when the profile gives none) into the extension points the
//! plugin instance serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::framework::Extensions;
use crate::plugins::{
    default_binder, default_preemption, dominant_share, fgd, first_fit, gpu_device, image_locality,
    inter_pod_affinity, node_affinity, node_name, node_ports, node_resources, node_unschedulable,
    pod_topology_spread, priority_sort, scheduling_gates, taint_toleration, tetris,
};

/// A configuration that cannot be turned into profiles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a plugin named {0:?} is already registered")]
    DuplicatePlugin(String),
    #[error("plugin {0:?} is not registered")]
    UnknownPlugin(String),
    #[error("plugin {plugin:?}: invalid args: {message}")]
    InvalidArgs { plugin: String, message: String },
    #[error("invalid scheduler configuration: {0}")]
    Yaml(String),
    #[error("profile {profile:?}: {message}")]
    Profile { profile: String, message: String },
    #[error("profiles: {0}")]
    Profiles(String),
}

/// Builds one plugin instance from its args.
pub type PluginFactory =
    Arc<dyn Fn(Option<&serde_yaml::Value>) -> Result<Extensions, ConfigError> + Send + Sync>;

/// Plugin factories by name. See the module docs.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, PluginFactory>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a factory; refuses a name already registered.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(Option<&serde_yaml::Value>) -> Result<Extensions, ConfigError>
        + Send
        + Sync
        + 'static,
    ) -> Result<(), ConfigError> {
        if self.factories.contains_key(name) {
            return Err(ConfigError::DuplicatePlugin(name.to_owned()));
        }
        self.factories.insert(name.to_owned(), Arc::new(factory));
        Ok(())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Instantiates a plugin. The factory's result must carry the registered name.
    pub fn build(
        &self,
        name: &str,
        args: Option<&serde_yaml::Value>,
    ) -> Result<Extensions, ConfigError> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| ConfigError::UnknownPlugin(name.to_owned()))?;
        let ext = factory(args)?;
        assert_eq!(
            ext.name, name,
            "factory registered as {name:?} built {:?}",
            ext.name
        );
        Ok(ext)
    }

    /// Every in-tree plugin of this crate.
    pub fn in_tree() -> Registry {
        let mut r = Registry::new();
        let mut add =
            |name: &str, f: fn(Option<&serde_yaml::Value>) -> Result<Extensions, ConfigError>| {
                r.register(name, f).expect("in-tree names are unique");
            };
        add(priority_sort::NAME, |_| {
            let p = Arc::new(priority_sort::PrioritySort);
            Ok(Extensions::of(&*p).queue_sort(&p))
        });
        add(scheduling_gates::NAME, |_| {
            let p = Arc::new(scheduling_gates::SchedulingGates);
            Ok(Extensions::of(&*p).pre_enqueue(&p))
        });
        add(node_unschedulable::NAME, |_| {
            let p = Arc::new(node_unschedulable::NodeUnschedulable);
            Ok(Extensions::of(&*p).filter(&p))
        });
        add(node_name::NAME, |_| {
            let p = Arc::new(node_name::NodeName);
            Ok(Extensions::of(&*p).filter(&p))
        });
        add(node_ports::NAME, |_| {
            let p = Arc::new(node_ports::NodePorts);
            Ok(Extensions::of(&*p).pre_filter(&p).filter(&p))
        });
        add(node_resources::FIT_NAME, |args| {
            let a: node_resources::FitArgs = parse_args(node_resources::FIT_NAME, args)?;
            let p = Arc::new(node_resources::Fit::new(&a)?);
            Ok(Extensions::of(&*p)
                .pre_filter(&p)
                .filter(&p)
                .pre_score(&p)
                .score(&p))
        });
        add(gpu_device::NAME, |_| {
            let p = Arc::new(gpu_device::GpuDeviceFit);
            Ok(Extensions::of(&*p).filter(&p))
        });
        add(node_resources::BALANCED_NAME, |args| {
            let a: node_resources::BalancedAllocationArgs =
                parse_args(node_resources::BALANCED_NAME, args)?;
            let p = Arc::new(node_resources::BalancedAllocation::new(&a)?);
            Ok(Extensions::of(&*p).pre_score(&p).score(&p))
        });
        add(node_affinity::NAME, |args| {
            let a: node_affinity::NodeAffinityArgs = parse_args(node_affinity::NAME, args)?;
            let p = Arc::new(node_affinity::NodeAffinity::new(&a)?);
            Ok(Extensions::of(&*p)
                .pre_filter(&p)
                .filter(&p)
                .pre_score(&p)
                .score(&p))
        });
        add(taint_toleration::NAME, |_| {
            let p = Arc::new(taint_toleration::TaintToleration);
            Ok(Extensions::of(&*p).filter(&p).pre_score(&p).score(&p))
        });
        add(image_locality::NAME, |_| {
            let p = Arc::new(image_locality::ImageLocality);
            Ok(Extensions::of(&*p).pre_score(&p).score(&p))
        });
        add(pod_topology_spread::NAME, |args| {
            let a: pod_topology_spread::PodTopologySpreadArgs =
                parse_args(pod_topology_spread::NAME, args)?;
            let p = Arc::new(pod_topology_spread::PodTopologySpread::new(&a)?);
            Ok(Extensions::of(&*p)
                .pre_filter(&p)
                .filter(&p)
                .pre_score(&p)
                .score(&p))
        });
        add(inter_pod_affinity::NAME, |args| {
            let a: inter_pod_affinity::InterPodAffinityArgs =
                parse_args(inter_pod_affinity::NAME, args)?;
            let p = Arc::new(inter_pod_affinity::InterPodAffinity::new(&a)?);
            Ok(Extensions::of(&*p)
                .pre_filter(&p)
                .filter(&p)
                .pre_score(&p)
                .score(&p))
        });
        add(default_preemption::NAME, |args| {
            let a: default_preemption::DefaultPreemptionArgs =
                parse_args(default_preemption::NAME, args)?;
            let p = Arc::new(default_preemption::DefaultPreemption::new(&a)?);
            Ok(Extensions::of(&*p).post_filter(&p))
        });
        add(fgd::NAME, |args| {
            let a: fgd::FgdArgs = parse_args(fgd::NAME, args)?;
            let p = Arc::new(fgd::FgdScore::new(&a)?);
            Ok(Extensions::of(&*p).score(&p).reserve(&p))
        });
        add(dominant_share::NAME, |args| {
            let a: dominant_share::DominantShareArgs = parse_args(dominant_share::NAME, args)?;
            let p = Arc::new(dominant_share::DominantShare::new(&a)?);
            Ok(Extensions::of(&*p).score(&p))
        });
        add(tetris::NAME, |args| {
            let a: tetris::TetrisAlignmentArgs = parse_args(tetris::NAME, args)?;
            let p = Arc::new(tetris::TetrisAlignment::new(&a)?);
            Ok(Extensions::of(&*p).score(&p))
        });
        add(first_fit::NAME, |_| {
            let p = Arc::new(first_fit::FirstFit);
            Ok(Extensions::of(&*p).pre_score(&p).score(&p))
        });
        add(default_binder::NAME, |_| {
            let p = Arc::new(default_binder::DefaultBinder);
            Ok(Extensions::of(&*p).bind(&p))
        });
        r
    }
}

/// Deserialises a plugin's args, defaults when absent.
pub fn parse_args<T: DeserializeOwned + Default>(
    plugin: &str,
    args: Option<&serde_yaml::Value>,
) -> Result<T, ConfigError> {
    match args {
        None | Some(serde_yaml::Value::Null) => Ok(T::default()),
        Some(v) => {
            serde_yaml::from_value(strip_type_meta(v)).map_err(|e| ConfigError::InvalidArgs {
                plugin: plugin.to_owned(),
                message: e.to_string(),
            })
        }
    }
}

/// Upstream args carry `apiVersion`/`kind`; they select the type, which the plugin
/// name already does here.
fn strip_type_meta(v: &serde_yaml::Value) -> serde_yaml::Value {
    let mut v = v.clone();
    if let serde_yaml::Value::Mapping(m) = &mut v {
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates() {
        let mut r = Registry::in_tree();
        let err = r
            .register(node_name::NAME, |_| {
                let p = Arc::new(node_name::NodeName);
                Ok(Extensions::of(&*p).filter(&p))
            })
            .unwrap_err();
        assert_eq!(err, ConfigError::DuplicatePlugin("NodeName".into()));
        assert!(matches!(
            r.build("Nope", None),
            Err(ConfigError::UnknownPlugin(_))
        ));
        assert_eq!(r.names().count(), 19);
    }

    #[test]
    fn args_are_checked() {
        let r = Registry::in_tree();
        let bad: serde_yaml::Value =
            serde_yaml::from_str("scoringStrategy: {type: Bogus}").unwrap();
        assert!(matches!(
            r.build("NodeResourcesFit", Some(&bad)),
            Err(ConfigError::InvalidArgs { .. })
        ));
        let weight0: serde_yaml::Value = serde_yaml::from_str(
            "scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 0}]}",
        )
        .unwrap();
        assert!(r.build("NodeResourcesFit", Some(&weight0)).is_err());
        let ok: serde_yaml::Value = serde_yaml::from_str(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: NodeResourcesFitArgs\nscoringStrategy: {type: MostAllocated}",
        )
        .unwrap();
        assert!(r.build("NodeResourcesFit", Some(&ok)).is_ok());
    }
}
