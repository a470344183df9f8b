//! The DLRM inference trace (Alibaba `cluster-trace-gpu-v2025`, Yang et al.,
//! "GPU-Disaggregated Serving for Deep Learning Recommendation Models at Scale", USENIX
//! NSDI '25), mapped as `datasets/README.md` ("Suggested mapping") says: CPU × 1000 to
//! millicores, memory and disk GiB × 1024 to MiB (disk as ephemeral storage), GPU as
//! whole devices, RDMA percent as the extended resource [`RDMA_RESOURCE`] (100 per NIC),
//! `app_name` as the app, `max_instance_per_node` = k as
//! [`PodSpec::max_instances_per_node`] (−1 is no limit), times in ms; an empty
//! `creation_time` (the pod existed at the start) is an arrival at 0 and an empty
//! `deletion_time` (alive at the end) is censored (`departure_ms: None`).
//!
//! The trace has **no node list**: [`nodes`] builds the two pools, CN (CPU-node) and HN
//! (heterogeneous GPU-node), from shapes the caller states; [`DEFAULT_POOLS`] holds the
//! README's suggestion. Every pod gets the role label [`ROLE_LABEL`] and, unless
//! [`LoadConfig::pin_roles`] is off, a node selector for its role's pool.

use std::collections::BTreeMap;

use crate::datasets::{Csv, DatasetError, Datasets, Row, check_rows};
use crate::model::{GpuRequest, NodeSpec, PodSpec, RDMA_PER_NIC, RDMA_RESOURCE};

/// Path of the trace inside `datasets/`.
pub const FILE: &str = "alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv";
/// The latest deletion in the trace, about 31 days.
pub const TRACE_END_MS: u64 = 2_677_541_000;
/// Pod and node label holding the role / pool: `CN` or `HN`.
pub const ROLE_LABEL: &str = "bosun.io/dlrm-role";

const HEADER: &[&str] = &[
    "instance_sn",
    "role",
    "app_name",
    "cpu_request",
    "cpu_limit",
    "gpu_request",
    "gpu_limit",
    "rdma_request",
    "rdma_limit",
    "memory_request",
    "memory_limit",
    "disk_request",
    "disk_limit",
    "max_instance_per_node",
    "creation_time",
    "scheduled_time",
    "deletion_time",
];
const MIB_PER_GIB: f64 = 1024.0;

/// A DLRM pod's role, and the node pool it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// CPU-node instance (no GPU).
    Cn,
    /// Heterogeneous-GPU-node instance (one GPU).
    Hn,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cn => "CN",
            Role::Hn => "HN",
        }
    }

    /// The role of a pod this module loaded.
    pub fn of(pod: &PodSpec) -> Option<Role> {
        match pod.labels.get(ROLE_LABEL).map(String::as_str) {
            Some("CN") => Some(Role::Cn),
            Some("HN") => Some(Role::Hn),
            _ => None,
        }
    }
}

/// One node pool's shape. These are **assumptions** (the trace publishes none): record
/// them in each experiment's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub cpu_milli: u64,
    pub memory_mib: u64,
    /// Ephemeral storage; big enough by default that disk never binds.
    pub disk_mib: u64,
    pub gpus: u32,
    pub gpu_model: Option<&'static str>,
    pub rdma_nics: u32,
}

/// The two pools' shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pools {
    pub cn: PoolShape,
    pub hn: PoolShape,
}

/// The README's suggestion: CN 192 vCPU / 1,536 GiB / 1 RDMA NIC; HN 8 GPU / 96 vCPU /
/// 768 GiB / 1 RDMA NIC (so the per-app caps of 10 and 16 never bind). Disk, which the
/// README leaves open, is 16 TiB on both: more than the largest disk requests of the
/// pods that fit by CPU and memory add up to, so it never binds.
pub const DEFAULT_POOLS: Pools = Pools {
    cn: PoolShape {
        cpu_milli: 192_000,
        memory_mib: 1536 * 1024,
        disk_mib: 16 * 1024 * 1024,
        gpus: 0,
        gpu_model: None,
        rdma_nics: 1,
    },
    hn: PoolShape {
        cpu_milli: 96_000,
        memory_mib: 768 * 1024,
        disk_mib: 16 * 1024 * 1024,
        gpus: 8,
        gpu_model: Some("HN-GPU"),
        rdma_nics: 1,
    },
};

/// How to load the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// Give each pod a node selector for its role's pool ([`ROLE_LABEL`]), as in
    /// production where CN pods run on CPU nodes and HN pods on GPU nodes.
    pub pin_roles: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig { pin_roles: true }
    }
}

impl Datasets {
    /// Loads the DLRM pods, verified against the file's checksum.
    pub fn dlrm_pods(&self, config: LoadConfig) -> Result<Vec<PodSpec>, DatasetError> {
        let (text, shipped) = self.read_text(FILE)?;
        let file = self.root().join(FILE).display().to_string();
        let pods = parse_pods(&file, &text, config)?;
        check_rows(&file, shipped, pods.len())?;
        Ok(pods)
    }
}

/// Parses the DLRM trace; `file` names it in errors.
pub fn parse_pods(
    file: &str,
    text: &str,
    config: LoadConfig,
) -> Result<Vec<PodSpec>, DatasetError> {
    let (csv, _) = Csv::new(file, text, &[HEADER])?;
    let mut pods = Vec::new();
    csv.for_each_row(|row| {
        pods.push(pod_from_row(&row, config)?);
        Ok(())
    })?;
    Ok(pods)
}

fn pod_from_row(row: &Row<'_, '_>, config: LoadConfig) -> Result<PodSpec, DatasetError> {
    let f = row.fields;
    let role = match f[1] {
        "CN" => Role::Cn,
        "HN" => Role::Hn,
        other => return Err(row.error(format!("column role: unknown role {other:?}"))),
    };
    let cpu_milli = row.scaled(3, "cpu_request", 1000.0)?;
    let memory_mib = row.scaled(9, "memory_request", MIB_PER_GIB)?;
    let mut pod = PodSpec::new(f[0], cpu_milli, memory_mib);
    pod.disk_mib = row.scaled(11, "disk_request", MIB_PER_GIB)?;
    pod.gpu = match row.parse::<u32>(5, "gpu_request")? {
        0 => GpuRequest::None,
        n => GpuRequest::Whole(n),
    };
    let rdma: u64 = row.parse(7, "rdma_request")?;
    if rdma > RDMA_PER_NIC {
        return Err(row.error(format!(
            "column rdma_request: {rdma} is over {RDMA_PER_NIC}"
        )));
    }
    if rdma > 0 {
        pod.extended.push((RDMA_RESOURCE.to_string(), rdma));
    }
    if f[2].is_empty() {
        return Err(row.error("column app_name: empty".into()));
    }
    pod.app = Some(f[2].to_string());
    pod.max_instances_per_node = match row.parse::<i64>(13, "max_instance_per_node")? {
        -1 => None,
        k if k >= 1 && k <= i64::from(u32::MAX) => Some(k as u32),
        k => {
            return Err(row.error(format!(
                "column max_instance_per_node: {k} is neither -1 nor positive"
            )));
        }
    };
    let arrival_ms = row.scaled_opt(14, "creation_time", 1000.0)?.unwrap_or(0);
    row.scaled_opt(15, "scheduled_time", 1000.0)?;
    let departure_ms = row.scaled_opt(16, "deletion_time", 1000.0)?;
    if departure_ms.is_some_and(|d| d < arrival_ms) {
        return Err(row.error("deletion_time before creation_time".into()));
    }
    pod.arrival_ms = Some(arrival_ms);
    pod.departure_ms = departure_ms;
    pod.labels.insert(ROLE_LABEL.into(), role.as_str().into());
    if config.pin_roles {
        pod.node_selector
            .insert(ROLE_LABEL.into(), role.as_str().into());
    }
    Ok(pod)
}

/// `n_cn` CN nodes and `n_hn` HN nodes of the given shapes, named `dlrm-cn-00000`, ...,
/// labelled with their pool.
pub fn nodes(pools: &Pools, n_cn: usize, n_hn: usize) -> Vec<NodeSpec> {
    let mut out = Vec::with_capacity(n_cn + n_hn);
    for (role, shape, n) in [(Role::Cn, &pools.cn, n_cn), (Role::Hn, &pools.hn, n_hn)] {
        let prefix = format!("dlrm-{}", role.as_str().to_ascii_lowercase());
        for i in 0..n {
            let mut node = NodeSpec::new(
                format!("{prefix}-{i:05}"),
                shape.cpu_milli,
                shape.memory_mib,
            );
            node.disk_mib = shape.disk_mib;
            node.gpus = shape.gpus;
            node.gpu_model = shape.gpu_model.map(str::to_string);
            if shape.rdma_nics > 0 {
                let rdma = u64::from(shape.rdma_nics) * RDMA_PER_NIC;
                node.extended.push((RDMA_RESOURCE.to_string(), rdma));
            }
            node.instance_type = Some(prefix.clone());
            node.labels.insert(ROLE_LABEL.into(), role.as_str().into());
            out.push(node);
        }
    }
    out
}

/// Peak concurrent demand of one role's pods over the trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeakDemand {
    pub pods: u64,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub gpus: u64,
    pub rdma: u64,
}

/// Each resource's peak (pods present at the start counted from 0, censored pods to
/// the end), for `role`'s pods; resources may peak at different times.
pub fn peak_demand(pods: &[PodSpec], role: Role) -> PeakDemand {
    // (time, +1 arrival / -1 departure, pod); departures sort first at equal times.
    let mut events: Vec<(u64, i8, usize)> = Vec::new();
    for (idx, pod) in pods.iter().enumerate() {
        if Role::of(pod) != Some(role) {
            continue;
        }
        events.push((pod.arrival_ms.unwrap_or(0), 1, idx));
        if let Some(d) = pod.departure_ms {
            events.push((d, -1, idx));
        }
    }
    events.sort_unstable();
    let mut now = [0i64; 5];
    let mut peak = [0i64; 5];
    for (_, sign, idx) in events {
        let pod = &pods[idx];
        let rdma = pod
            .extended
            .iter()
            .filter(|(n, _)| n == RDMA_RESOURCE)
            .map(|(_, v)| *v)
            .sum::<u64>();
        let demand = [
            1,
            pod.cpu_milli,
            pod.memory_mib,
            pod.gpu.milli() / 1000,
            rdma,
        ];
        for i in 0..5 {
            now[i] += i64::from(sign) * demand[i] as i64;
            peak[i] = peak[i].max(now[i]);
        }
    }
    let [pods, cpu_milli, memory_mib, gpus, rdma] = peak.map(|v| v as u64);
    PeakDemand {
        pods,
        cpu_milli,
        memory_mib,
        gpus,
        rdma,
    }
}

/// A lower bound on a pool's node count: the most any one resource's peak needs
/// (bin packing may need more; add headroom).
pub fn pool_size_lower_bound(peak: &PeakDemand, shape: &PoolShape) -> usize {
    let need = |demand: u64, capacity: u64| {
        if demand == 0 {
            0
        } else if capacity == 0 {
            usize::MAX
        } else {
            demand.div_ceil(capacity) as usize
        }
    };
    [
        need(peak.cpu_milli, shape.cpu_milli),
        need(peak.memory_mib, shape.memory_mib),
        need(peak.gpus, u64::from(shape.gpus)),
        need(peak.rdma, u64::from(shape.rdma_nics) * RDMA_PER_NIC),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// Pods per app, for reporting the per-node caps.
pub fn pods_per_app(pods: &[PodSpec]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for pod in pods {
        if let Some(app) = &pod.app {
            *out.entry(app.as_str()).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time";

    #[test]
    fn maps_units_times_and_caps() {
        let text = format!(
            "{HEAD}\n\
             i0,HN,app_0,12,12,1,1,25,25,120.0,120.0,640.0,800.0,8,,,\n\
             i1,CN,app_42,192,192,0,0,51,51,937.5,937.5,510.0,600.0,-1,1.5,2.0,123435.00000000001\n"
        );
        let pods = parse_pods("t.csv", &text, LoadConfig::default()).unwrap();
        let (hn, cn) = (&pods[0], &pods[1]);
        assert_eq!(
            (hn.cpu_milli, hn.memory_mib, hn.disk_mib),
            (12_000, 122_880, 655_360)
        );
        assert_eq!(hn.gpu, GpuRequest::Whole(1));
        assert_eq!(hn.extended, [(RDMA_RESOURCE.to_string(), 25)]);
        assert_eq!(hn.max_instances_per_node, Some(8));
        assert_eq!((hn.arrival_ms, hn.departure_ms), (Some(0), None));
        assert_eq!(hn.node_selector[ROLE_LABEL], "HN");
        assert_eq!(cn.memory_mib, 960_000);
        assert_eq!(cn.max_instances_per_node, None);
        assert_eq!(
            (cn.arrival_ms, cn.departure_ms),
            (Some(1500), Some(123_435_000))
        );
        assert_eq!(Role::of(cn), Some(Role::Cn));
    }

    #[test]
    fn peak_and_pool_size() {
        let text = format!(
            "{HEAD}\n\
             a,HN,app_0,12,12,1,1,25,25,1,1,1,1,8,0,,10\n\
             b,HN,app_0,12,12,1,1,25,25,1,1,1,1,8,10,,20\n\
             c,HN,app_0,12,12,1,1,25,25,1,1,1,1,8,5,,\n"
        );
        let pods = parse_pods("t.csv", &text, LoadConfig::default()).unwrap();
        let peak = peak_demand(&pods, Role::Hn);
        // a departs at 10 as b arrives: departures first, so two at once, not three.
        assert_eq!((peak.pods, peak.gpus, peak.rdma), (2, 2, 50));
        assert_eq!(peak_demand(&pods, Role::Cn), PeakDemand::default());
        assert_eq!(pool_size_lower_bound(&peak, &DEFAULT_POOLS.hn), 1);
        let nodes = nodes(&DEFAULT_POOLS, 2, 1);
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[2].name, "dlrm-hn-00000");
        assert_eq!(nodes[2].gpus, 8);
        assert_eq!(nodes[0].labels[ROLE_LABEL], "CN");
    }
}
