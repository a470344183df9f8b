//! Synthetic clusters and workloads, reproducible from a seed: the same [`ClusterShape`]
//! or [`PodShape`] and seed give the same nodes or pods on every machine (ChaCha8, via
//! [`SimRng`]).
//!
//! A cluster is `n_nodes` nodes, each drawn from a weighted list of [`NodeTemplate`]s
//! (heterogeneous shapes, GPUs, extended resources), spread round-robin over
//! `n_regions × zones_per_region` zones, a fraction tainted with taints drawn from a
//! pool, and each holding a few images from a shared set. Pods are drawn the same way
//! from weighted [`PodTemplate`]s; [`PodShape::scheduler_perf_basic`] is the pod of
//! upstream scheduler_perf's `SchedulingBasic` (`pod-default.yaml`), and
//! [`ClusterShape::scheduler_perf`] its node (`node-default.yaml`).

use crate::model::{
    DEFAULT_MAX_PODS, GPU_MILLI_PER_GPU, GpuRequest, ImageSpec, NodeSpec, PodSpec, QosClass,
    RDMA_PER_NIC, RDMA_RESOURCE, Taint, TaintEffect,
};
use crate::rng::SimRng;

/// Upper bound on the nodes one cluster may have.
pub const MAX_NODES: usize = 200_000;
/// Upper bound on the pods one workload may have.
pub const MAX_PODS: usize = 2_000_000;
/// Upper bound on the image set's size.
pub const MAX_IMAGES: usize = 10_000;

/// Why a shape cannot be generated.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    #[error("{what}: {count} is over the bound {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{0}: no template has a positive weight")]
    NoTemplates(&'static str),
    #[error("taint fraction {0} is not in 0..=1, or taints are wanted but the pool is empty")]
    BadTaints(String),
    #[error("{images_per_node} images per node, but the set has only {n_images}")]
    BadImages {
        n_images: usize,
        images_per_node: usize,
    },
    #[error("pod template {0}: a fractional GPU request must be in 1..1000 milli-GPU")]
    BadGpuFraction(usize),
}

/// One node shape and how often it occurs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTemplate {
    /// Becomes the node's instance type.
    pub name: String,
    pub weight: u32,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub max_pods: u32,
    pub gpus: u32,
    pub gpu_model: Option<String>,
    pub extended: Vec<(String, u64)>,
}

impl NodeTemplate {
    /// A CPU-only template with the default pod limit.
    pub fn cpu(name: &str, weight: u32, cpu_milli: u64, memory_mib: u64) -> NodeTemplate {
        NodeTemplate {
            name: name.to_string(),
            weight,
            cpu_milli,
            memory_mib,
            disk_mib: 0,
            max_pods: DEFAULT_MAX_PODS,
            gpus: 0,
            gpu_model: None,
            extended: Vec::new(),
        }
    }

    /// A GPU template with the default pod limit.
    pub fn gpu(
        name: &str,
        weight: u32,
        cpu_milli: u64,
        memory_mib: u64,
        gpus: u32,
        model: &str,
    ) -> NodeTemplate {
        NodeTemplate {
            gpus,
            gpu_model: Some(model.to_string()),
            ..NodeTemplate::cpu(name, weight, cpu_milli, memory_mib)
        }
    }
}

/// The images nodes hold: `n_images` images named by [`image_name`], sizes uniform in
/// `min_size_bytes..=max_size_bytes`, `images_per_node` distinct ones on each node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pub n_images: usize,
    pub images_per_node: usize,
    pub min_size_bytes: u64,
    pub max_size_bytes: u64,
}

impl ImageSet {
    pub const NONE: ImageSet = ImageSet {
        n_images: 0,
        images_per_node: 0,
        min_size_bytes: 0,
        max_size_bytes: 0,
    };
}

/// The name of image `k` of a synthetic image set.
pub fn image_name(k: usize) -> String {
    format!("registry.bosun.io/synth/img-{k:04}:v1")
}

/// A synthetic cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterShape {
    pub n_nodes: usize,
    /// Nodes are named `<prefix>-<index>`.
    pub name_prefix: String,
    pub templates: Vec<NodeTemplate>,
    /// At least 1; regions are `region-<r>`.
    pub n_regions: usize,
    /// At least 1; zones are `region-<r>-<letter or index>`.
    pub zones_per_region: usize,
    /// Fraction of nodes (0..=1) that get one taint drawn from `taints`.
    pub taint_fraction: f64,
    pub taints: Vec<Taint>,
    pub images: ImageSet,
}

impl ClusterShape {
    /// Upstream scheduler_perf's `node-default.yaml`: 4 CPUs, 32 GiB, 110 pods; here
    /// spread over 3 zones of one region, untainted, no images.
    pub fn scheduler_perf(n_nodes: usize) -> ClusterShape {
        ClusterShape {
            n_nodes,
            name_prefix: "node".into(),
            templates: vec![NodeTemplate::cpu(
                "scheduler-perf-default",
                1,
                4000,
                32 * 1024,
            )],
            n_regions: 1,
            zones_per_region: 3,
            taint_fraction: 0.0,
            taints: Vec::new(),
            images: ImageSet::NONE,
        }
    }

    /// A heterogeneous cluster: the openb trace's most common shapes in its proportions
    /// (README, "Node lists"), plus an RDMA-equipped large CPU shape; 2 regions × 3
    /// zones; 10% of nodes tainted; 50 images, 8 per node.
    pub fn heterogeneous(n_nodes: usize) -> ClusterShape {
        let mut rdma = NodeTemplate::cpu("cpu-192c-1536Gi-rdma", 30, 192_000, 1536 * 1024);
        rdma.extended
            .push((RDMA_RESOURCE.to_string(), RDMA_PER_NIC));
        let templates = vec![
            NodeTemplate::gpu("gpu-96c-384Gi-8xG2", 549, 96_000, 393_216, 8, "G2"),
            NodeTemplate::gpu("gpu-104c-512Gi-2xT4", 387, 104_000, 524_288, 2, "T4"),
            NodeTemplate::cpu("cpu-32c-256Gi", 129, 32_000, 262_144),
            NodeTemplate::gpu("gpu-16c-120Gi-2xP100", 107, 16_000, 122_880, 2, "P100"),
            NodeTemplate::cpu("cpu-96c-512Gi", 59, 96_000, 524_288),
            NodeTemplate::gpu("gpu-128c-768Gi-8xG3", 39, 128_000, 786_432, 8, "G3"),
            NodeTemplate::gpu("gpu-32c-128Gi-4xV100M16", 28, 32_000, 131_072, 4, "V100M16"),
            NodeTemplate::gpu("gpu-96c-768Gi-8xV100M32", 21, 96_000, 786_432, 8, "V100M32"),
            rdma,
        ];
        let taint = |key: &str, value: &str, effect| Taint {
            key: key.into(),
            value: value.into(),
            effect,
        };
        ClusterShape {
            n_nodes,
            name_prefix: "synth".into(),
            templates,
            n_regions: 2,
            zones_per_region: 3,
            taint_fraction: 0.1,
            taints: vec![
                taint("dedicated", "gpu", TaintEffect::NoSchedule),
                taint("maintenance", "", TaintEffect::PreferNoSchedule),
                taint("spot", "true", TaintEffect::NoExecute),
            ],
            images: ImageSet {
                n_images: 50,
                images_per_node: 8,
                min_size_bytes: 10 << 20,
                max_size_bytes: 2 << 30,
            },
        }
    }

    fn check(&self) -> Result<(), SynthError> {
        if self.n_nodes > MAX_NODES {
            return Err(SynthError::TooMany {
                what: "nodes",
                count: self.n_nodes,
                max: MAX_NODES,
            });
        }
        if self.templates.iter().all(|t| t.weight == 0) {
            return Err(SynthError::NoTemplates("cluster"));
        }
        let f = self.taint_fraction;
        if !(0.0..=1.0).contains(&f) || (f > 0.0 && self.taints.is_empty()) {
            return Err(SynthError::BadTaints(f.to_string()));
        }
        let images = &self.images;
        if images.n_images > MAX_IMAGES {
            return Err(SynthError::TooMany {
                what: "images",
                count: images.n_images,
                max: MAX_IMAGES,
            });
        }
        if images.images_per_node > images.n_images || images.min_size_bytes > images.max_size_bytes
        {
            return Err(SynthError::BadImages {
                n_images: images.n_images,
                images_per_node: images.images_per_node,
            });
        }
        Ok(())
    }
}

/// Generates the cluster `shape` describes; same shape and seed, same nodes.
pub fn generate_nodes(shape: &ClusterShape, seed: u64) -> Result<Vec<NodeSpec>, SynthError> {
    shape.check()?;
    let mut rng = SimRng::new(seed);
    let weights: Vec<u64> = shape
        .templates
        .iter()
        .map(|t| u64::from(t.weight))
        .collect();
    let images: Vec<ImageSpec> = (0..shape.images.n_images)
        .map(|k| {
            let span = shape.images.max_size_bytes - shape.images.min_size_bytes;
            let size_bytes = shape.images.min_size_bytes + rng.below(span.saturating_add(1).max(1));
            ImageSpec {
                name: image_name(k),
                size_bytes,
            }
        })
        .collect();
    let zones = zone_names(shape.n_regions.max(1), shape.zones_per_region.max(1));
    let taint_ppm = (shape.taint_fraction * 1e6).round() as u32;
    let mut picks: Vec<usize> = (0..images.len()).collect();
    let width = digits(shape.n_nodes);
    let mut nodes = Vec::with_capacity(shape.n_nodes);
    for i in 0..shape.n_nodes {
        let t = &shape.templates[rng.weighted(&weights)];
        let mut node = NodeSpec::new(
            format!("{}-{i:0width$}", shape.name_prefix),
            t.cpu_milli,
            t.memory_mib,
        );
        node.disk_mib = t.disk_mib;
        node.max_pods = t.max_pods;
        node.gpus = t.gpus;
        node.gpu_milli_per_gpu = GPU_MILLI_PER_GPU;
        node.gpu_model = t.gpu_model.clone();
        node.extended = t.extended.clone();
        node.instance_type = Some(t.name.clone());
        let (region, zone) = &zones[i % zones.len()];
        node.region = Some(region.clone());
        node.zone = Some(zone.clone());
        if taint_ppm > 0 && rng.chance_ppm(taint_ppm) {
            node.taints
                .push(shape.taints[rng.index(shape.taints.len())].clone());
        }
        // Partial Fisher-Yates: the first `images_per_node` of `picks` are distinct.
        for j in 0..shape.images.images_per_node {
            let k = j + rng.index(picks.len() - j);
            picks.swap(j, k);
            node.images.push(images[picks[j]].clone());
        }
        nodes.push(node);
    }
    Ok(nodes)
}

fn zone_names(n_regions: usize, zones_per_region: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n_regions * zones_per_region);
    for r in 0..n_regions {
        for z in 0..zones_per_region {
            let suffix = if z < 26 {
                char::from(b'a' + z as u8).to_string()
            } else {
                z.to_string()
            };
            out.push((format!("region-{r}"), format!("region-{r}-{suffix}")));
        }
    }
    out
}

fn digits(n: usize) -> usize {
    n.saturating_sub(1).max(1).ilog10() as usize + 1
}

/// One pod shape and how often it occurs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTemplate {
    pub weight: u32,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub gpu: GpuRequest,
    pub gpu_models: Vec<String>,
    pub qos: QosClass,
}

impl PodTemplate {
    pub fn basic(weight: u32, cpu_milli: u64, memory_mib: u64) -> PodTemplate {
        PodTemplate {
            weight,
            cpu_milli,
            memory_mib,
            gpu: GpuRequest::None,
            gpu_models: Vec::new(),
            qos: QosClass::Standard,
        }
    }
}

/// A synthetic workload of basic pods (requests only; later slices add affinity,
/// spreading and the other scheduler_perf shapes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodShape {
    pub n_pods: usize,
    /// Pods are named `<prefix>-<index>`.
    pub name_prefix: String,
    pub templates: Vec<PodTemplate>,
    /// CPU and memory requests vary uniformly by up to ± this percent (0..=99).
    pub jitter_percent: u32,
    /// If positive, each pod runs one of the first `n_images` images of the cluster's
    /// set ([`image_name`]); otherwise the default image.
    pub n_images: usize,
}

impl PodShape {
    /// Upstream scheduler_perf's `pod-default.yaml`: 100m CPU, 500 MiB, no jitter.
    pub fn scheduler_perf_basic(n_pods: usize) -> PodShape {
        PodShape {
            n_pods,
            name_prefix: "pod".into(),
            templates: vec![PodTemplate::basic(1, 100, 500)],
            jitter_percent: 0,
            n_images: 0,
        }
    }

    /// Mixed requests for [`ClusterShape::heterogeneous`]: mostly small CPU pods, some
    /// large ones, fractional and whole GPU pods (some pinned to GPU models), with
    /// Alibaba's QoS classes; ±20% jitter; images from the first 20 of the set.
    pub fn mixed(n_pods: usize) -> PodShape {
        let gpu = |weight, cpu_milli, memory_mib, gpu, models: &[&str], qos| PodTemplate {
            weight,
            cpu_milli,
            memory_mib,
            gpu,
            gpu_models: models.iter().map(|m| m.to_string()).collect(),
            qos,
        };
        PodShape {
            n_pods,
            name_prefix: "synth-pod".into(),
            templates: vec![
                PodTemplate {
                    qos: QosClass::Be,
                    ..PodTemplate::basic(40, 500, 1024)
                },
                PodTemplate {
                    qos: QosClass::Ls,
                    ..PodTemplate::basic(15, 4000, 16_384)
                },
                gpu(
                    20,
                    6000,
                    12_288,
                    GpuRequest::Fraction(460),
                    &[],
                    QosClass::Ls,
                ),
                gpu(
                    10,
                    4000,
                    8192,
                    GpuRequest::Fraction(250),
                    &["T4"],
                    QosClass::Be,
                ),
                gpu(10, 12_000, 24_576, GpuRequest::Whole(1), &[], QosClass::Ls),
                gpu(
                    4,
                    32_000,
                    131_072,
                    GpuRequest::Whole(4),
                    &["V100M16", "V100M32"],
                    QosClass::Burstable,
                ),
                gpu(
                    1,
                    64_000,
                    262_144,
                    GpuRequest::Whole(8),
                    &["G2", "G3"],
                    QosClass::Guaranteed,
                ),
            ],
            jitter_percent: 20,
            n_images: 20,
        }
    }

    fn check(&self) -> Result<(), SynthError> {
        if self.n_pods > MAX_PODS {
            return Err(SynthError::TooMany {
                what: "pods",
                count: self.n_pods,
                max: MAX_PODS,
            });
        }
        if self.templates.iter().all(|t| t.weight == 0) {
            return Err(SynthError::NoTemplates("pods"));
        }
        for (i, t) in self.templates.iter().enumerate() {
            if let GpuRequest::Fraction(m) = t.gpu
                && (m == 0 || m >= GPU_MILLI_PER_GPU)
            {
                return Err(SynthError::BadGpuFraction(i));
            }
        }
        if self.n_images > MAX_IMAGES {
            return Err(SynthError::TooMany {
                what: "images",
                count: self.n_images,
                max: MAX_IMAGES,
            });
        }
        Ok(())
    }
}

/// Generates the pods `shape` describes; same shape and seed, same pods.
pub fn generate_pods(shape: &PodShape, seed: u64) -> Result<Vec<PodSpec>, SynthError> {
    shape.check()?;
    let mut rng = SimRng::new(seed);
    let weights: Vec<u64> = shape
        .templates
        .iter()
        .map(|t| u64::from(t.weight))
        .collect();
    let jitter = u64::from(shape.jitter_percent.min(99));
    let vary = |value: u64, rng: &mut SimRng| {
        if jitter == 0 || value == 0 {
            return value;
        }
        // value × (100 - jitter + U[0, 2 × jitter]) / 100, at least 1.
        let pct = 100 - jitter + rng.below(2 * jitter + 1);
        (value * pct / 100).max(1)
    };
    let width = digits(shape.n_pods);
    let mut pods = Vec::with_capacity(shape.n_pods);
    for i in 0..shape.n_pods {
        let t = &shape.templates[rng.weighted(&weights)];
        let cpu_milli = vary(t.cpu_milli, &mut rng);
        let memory_mib = vary(t.memory_mib, &mut rng);
        let mut pod = PodSpec::new(
            format!("{}-{i:0width$}", shape.name_prefix),
            cpu_milli,
            memory_mib,
        );
        pod.gpu = t.gpu;
        pod.gpu_models = t.gpu_models.clone();
        pod.qos = t.qos;
        pod.priority = t.qos.priority();
        if shape.n_images > 0 {
            pod.image = Some(image_name(rng.index(shape.n_images)));
        }
        pods.push(pod);
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_fit_the_largest_index() {
        assert_eq!(
            [digits(0), digits(1), digits(10), digits(11), digits(10_000)],
            [1, 1, 1, 2, 4]
        );
    }

    #[test]
    fn shapes_are_checked() {
        let mut shape = ClusterShape::heterogeneous(10);
        shape.taints.clear();
        assert!(matches!(
            generate_nodes(&shape, 1),
            Err(SynthError::BadTaints(_))
        ));
        let mut shape = ClusterShape::scheduler_perf(MAX_NODES + 1);
        assert!(matches!(
            generate_nodes(&shape, 1),
            Err(SynthError::TooMany { .. })
        ));
        shape.n_nodes = 1;
        shape.images.images_per_node = 1;
        assert!(matches!(
            generate_nodes(&shape, 1),
            Err(SynthError::BadImages { .. })
        ));
        let mut pods = PodShape::scheduler_perf_basic(1);
        pods.templates[0].gpu = GpuRequest::Fraction(1000);
        assert_eq!(generate_pods(&pods, 1), Err(SynthError::BadGpuFraction(0)));
        pods.templates[0].weight = 0;
        assert_eq!(
            generate_pods(&pods, 1),
            Err(SynthError::NoTemplates("pods"))
        );
    }

    #[test]
    fn scheduler_perf_shapes_match_upstream_yaml() {
        let nodes = generate_nodes(&ClusterShape::scheduler_perf(5), 0).unwrap();
        assert!(
            nodes
                .iter()
                .all(|n| (n.cpu_milli, n.memory_mib, n.max_pods) == (4000, 32_768, 110))
        );
        assert_eq!(nodes[4].name, "node-4");
        let pods = generate_pods(&PodShape::scheduler_perf_basic(3), 0).unwrap();
        assert!(
            pods.iter()
                .all(|p| (p.cpu_milli, p.memory_mib, p.gpu) == (100, 500, GpuRequest::None))
        );
    }
}
