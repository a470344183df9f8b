//! The openb trace (Alibaba `cluster-trace-gpu-v2023`, Weng et al., "Beware of
//! Fragmentation", USENIX ATC '23): node lists and pod lists, mapped as
//! `datasets/README.md` ("Suggested mapping") says:
//!
//! - nodes: `cpu_milli` and `memory_mib` one-to-one, `gpu` devices of 1000 milli-GPU
//!   each, `model` as the `gpu-model` label;
//! - pods: `num_gpu` = 1 with `gpu_milli` < 1000 is a fraction of one device
//!   ([`GpuRequest::Fraction`]), otherwise `num_gpu` whole devices; `gpu_spec` (models
//!   separated by `|`) is the set of allowed models; `qos` sets the priority
//!   (LS > Burstable/Guaranteed > BE); `creation_time`/`deletion_time` become arrival and
//!   departure in ms, with a deletion at the trace end ([`TRACE_END_S`]) censored
//!   (`departure_ms: None`); an empty `scheduled_time` (a pod never scheduled in
//!   production) clears `scheduled_in_trace`.
//!
//! The `multigpu*` lists have only the first five columns: their pods have no model
//! constraint, QoS ([`QosClass::Standard`]) or times.

use crate::datasets::{Csv, DatasetError, Datasets, Row, check_rows, parse_error};
use crate::model::{GPU_MILLI_PER_GPU, GpuRequest, NodeSpec, PodSpec, QosClass};

/// Directory of the openb files inside `datasets/`.
pub const DIR: &str = "alibaba-gpu-v2023-openb";
/// A `deletion_time` of this many seconds means the pod was alive at the trace end.
pub const TRACE_END_S: u64 = 12_902_960;

const NODE_HEADER: &[&str] = &["sn", "cpu_milli", "memory_mib", "gpu", "model"];
const POD_HEADER_FULL: &[&str] = &[
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
];
const POD_HEADER_SHORT: &[&str] = &["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"];
/// Bound on GPUs a node or a pod may state (the trace has at most 8).
const MAX_GPUS: u32 = 64;

/// Which node list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeList {
    /// All 1,523 nodes, GPU and CPU-only.
    AllNode,
    /// The 1,213 GPU nodes: the cluster the FGD paper simulates.
    GpuNode,
}

impl NodeList {
    pub const ALL: [NodeList; 2] = [NodeList::AllNode, NodeList::GpuNode];

    pub fn file(self) -> &'static str {
        match self {
            NodeList::AllNode => "alibaba-gpu-v2023-openb/openb_node_list_all_node.csv",
            NodeList::GpuNode => "alibaba-gpu-v2023-openb/openb_node_list_gpu_node.csv",
        }
    }
}

/// Which pod list: `default` and the 23 variants of the FGD paper's sensitivity figures
/// (see the README's table). The name is the file's suffix, e.g. `gpushare40`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PodList(&'static str);

impl PodList {
    pub const DEFAULT: PodList = PodList("default");
    /// Every shipped pod list.
    pub const ALL: [PodList; 24] = [
        PodList("default"),
        PodList("cpu0"),
        PodList("cpu037"),
        PodList("cpu050"),
        PodList("cpu072"),
        PodList("cpu100"),
        PodList("cpu200"),
        PodList("cpu235"),
        PodList("cpu250"),
        PodList("cpu300"),
        PodList("gpushare20"),
        PodList("gpushare40"),
        PodList("gpushare60"),
        PodList("gpushare80"),
        PodList("gpushare100"),
        PodList("gpuspec05"),
        PodList("gpuspec10"),
        PodList("gpuspec20"),
        PodList("gpuspec25"),
        PodList("gpuspec33"),
        PodList("multigpu20"),
        PodList("multigpu30"),
        PodList("multigpu40"),
        PodList("multigpu50"),
    ];

    /// The list named `name` (e.g. `"gpushare40"`), if shipped.
    pub fn named(name: &str) -> Option<PodList> {
        PodList::ALL.into_iter().find(|l| l.0 == name)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// Path relative to `datasets/`.
    pub fn file(self) -> String {
        format!("{DIR}/openb_pod_list_{}.csv", self.0)
    }

    /// Whether the file has only the first five columns (no spec, QoS or times).
    pub fn is_short(self) -> bool {
        self.0.starts_with("multigpu")
    }
}

impl Datasets {
    /// Loads an openb node list, verified against its checksum.
    pub fn openb_nodes(&self, list: NodeList) -> Result<Vec<NodeSpec>, DatasetError> {
        let (text, shipped) = self.read_text(list.file())?;
        let file = self.root().join(list.file()).display().to_string();
        let nodes = parse_nodes(&file, &text)?;
        check_rows(&file, shipped, nodes.len())?;
        Ok(nodes)
    }

    /// Loads an openb pod list, verified against its checksum.
    pub fn openb_pods(&self, list: PodList) -> Result<Vec<PodSpec>, DatasetError> {
        let (text, shipped) = self.read_text(&list.file())?;
        let file = self.root().join(list.file()).display().to_string();
        let pods = parse_pods(&file, &text)?;
        check_rows(&file, shipped, pods.len())?;
        Ok(pods)
    }
}

/// Parses an openb node list; `file` names it in errors.
pub fn parse_nodes(file: &str, text: &str) -> Result<Vec<NodeSpec>, DatasetError> {
    let (csv, _) = Csv::new(file, text, &[NODE_HEADER])?;
    let mut nodes = Vec::new();
    csv.for_each_row(|row| {
        nodes.push(node_from_row(&row)?);
        Ok(())
    })?;
    Ok(nodes)
}

fn node_from_row(row: &Row<'_, '_>) -> Result<NodeSpec, DatasetError> {
    let f = row.fields;
    let cpu_milli: u64 = row.parse(1, "cpu_milli")?;
    let memory_mib: u64 = row.parse(2, "memory_mib")?;
    let gpus: u32 = row.parse(3, "gpu")?;
    if gpus > MAX_GPUS {
        return Err(row.error(format!("column gpu: {gpus} is over {MAX_GPUS}")));
    }
    let model = f[4];
    if (gpus > 0) == model.is_empty() {
        return Err(row.error(format!("{gpus} GPUs with model {model:?}")));
    }
    let mut node = NodeSpec::new(f[0], cpu_milli, memory_mib);
    node.gpus = gpus;
    node.gpu_model = (!model.is_empty()).then(|| model.to_string());
    let gpu_part = if gpus > 0 {
        format!("-{gpus}x{model}")
    } else {
        String::new()
    };
    node.instance_type = Some(format!(
        "openb-{}c-{}Gi{gpu_part}",
        cpu_milli / 1000,
        memory_mib / 1024
    ));
    Ok(node)
}

/// Parses an openb pod list (full or five-column layout); `file` names it in errors.
pub fn parse_pods(file: &str, text: &str) -> Result<Vec<PodSpec>, DatasetError> {
    let (csv, layout) = Csv::new(file, text, &[POD_HEADER_FULL, POD_HEADER_SHORT])?;
    let full = layout == 0;
    let mut pods = Vec::new();
    csv.for_each_row(|row| {
        pods.push(pod_from_row(&row, full)?);
        Ok(())
    })?;
    if pods.is_empty() {
        return Err(parse_error(file, 2, "no pods".into()));
    }
    Ok(pods)
}

fn pod_from_row(row: &Row<'_, '_>, full: bool) -> Result<PodSpec, DatasetError> {
    let mut pod = PodSpec::new(
        row.fields[0],
        row.parse(1, "cpu_milli")?,
        row.parse(2, "memory_mib")?,
    );
    pod.gpu = gpu_request(row)?;
    if !full {
        return Ok(pod);
    }
    let f = row.fields;
    pod.gpu_models = gpu_models(f[5]);
    pod.qos = match f[6] {
        "LS" => QosClass::Ls,
        "BE" => QosClass::Be,
        "Burstable" => QosClass::Burstable,
        "Guaranteed" => QosClass::Guaranteed,
        other => return Err(row.error(format!("column qos: unknown class {other:?}"))),
    };
    pod.priority = pod.qos.priority();
    if !matches!(f[7], "Running" | "Failed" | "Pending" | "Succeeded") {
        return Err(row.error(format!("column pod_phase: unknown phase {:?}", f[7])));
    }
    let creation_s: u64 = row.parse(8, "creation_time")?;
    let deletion_s: u64 = row.parse(9, "deletion_time")?;
    if deletion_s < creation_s {
        return Err(row.error(format!(
            "deletion_time {deletion_s} before creation_time {creation_s}"
        )));
    }
    pod.arrival_ms = Some(creation_s * 1000);
    pod.departure_ms = (deletion_s < TRACE_END_S).then_some(deletion_s * 1000);
    pod.scheduled_in_trace = row.parse_opt::<u64>(10, "scheduled_time")?.is_some();
    Ok(pod)
}

fn gpu_request(row: &Row<'_, '_>) -> Result<GpuRequest, DatasetError> {
    let num_gpu: u32 = row.parse(3, "num_gpu")?;
    let gpu_milli: u32 = row.parse(4, "gpu_milli")?;
    match (num_gpu, gpu_milli) {
        (0, 0) => Ok(GpuRequest::None),
        (1, m) if m > 0 && m < GPU_MILLI_PER_GPU => Ok(GpuRequest::Fraction(m)),
        (n, GPU_MILLI_PER_GPU) if n > 0 && n <= MAX_GPUS => Ok(GpuRequest::Whole(n)),
        (n, m) => Err(row.error(format!(
            "num_gpu {n} with gpu_milli {m}: neither CPU-only, a fraction of one GPU nor whole GPUs"
        ))),
    }
}

/// `A|B|B` to `[A, B]`: the trace repeats some models.
fn gpu_models(spec: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for model in spec.split('|').filter(|m| !m.is_empty()) {
        if !out.iter().any(|m| m == model) {
            out.push(model.to_string());
        }
    }
    out
}

/// `nodes` repeated `factor` times with names suffixed `-r<k>` (copy 0 keeps its
/// names): the README's way to reach 10k nodes with the trace's proportions of shapes.
pub fn replicate_nodes(nodes: &[NodeSpec], factor: usize) -> Vec<NodeSpec> {
    let mut out = Vec::with_capacity(nodes.len() * factor);
    for copy in 0..factor {
        out.extend(nodes.iter().map(|n| {
            let mut n = n.clone();
            if copy > 0 {
                n.name = format!("{}-r{copy}", n.name);
            }
            n
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_gpu_request_kind() {
        let text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,1000,100,0,0,,BE,Running,0,12902960,0\n\
                    p1,1000,100,1,460,T4|T4|P100,LS,Pending,5,9,\n\
                    p2,1000,100,8,1000,,Guaranteed,Running,5,5,5\n";
        let pods = parse_pods("t.csv", text).unwrap();
        assert_eq!(pods[0].gpu, GpuRequest::None);
        assert_eq!(
            pods[0].departure_ms, None,
            "deletion at trace end is censored"
        );
        assert_eq!(pods[1].gpu, GpuRequest::Fraction(460));
        assert_eq!(pods[1].gpu_models, ["T4", "P100"]);
        assert!(!pods[1].scheduled_in_trace);
        assert_eq!(
            (pods[1].arrival_ms, pods[1].departure_ms),
            (Some(5000), Some(9000))
        );
        assert_eq!(pods[2].gpu, GpuRequest::Whole(8));
        assert_eq!(pods[2].priority, QosClass::Guaranteed.priority());
    }

    #[test]
    fn rejects_bad_rows_with_line_numbers() {
        // (row, expected message prefix)
        let cases = [
            (
                "p,1,1,2,500,,LS,Running,0,1,0",
                "t.csv:2: num_gpu 2 with gpu_milli 500",
            ),
            (
                "p,1,1,0,0,,XX,Running,0,1,0",
                "t.csv:2: column qos: unknown class",
            ),
            (
                "p,1,1,0,0,,LS,Running,5,1,0",
                "t.csv:2: deletion_time 1 before creation_time 5",
            ),
            (
                "p,x,1,0,0,,LS,Running,0,1,0",
                "t.csv:2: column cpu_milli: \"x\"",
            ),
            ("p,1,1,0,0,,LS", "t.csv:2: 7 fields, expected 11"),
        ];
        let header = POD_HEADER_FULL.join(",");
        for (row, want) in cases {
            let err = parse_pods("t.csv", &format!("{header}\n{row}\n")).unwrap_err();
            assert!(err.to_string().starts_with(want), "{row}: {err}");
        }
    }

    #[test]
    fn five_column_lists_have_no_times() {
        let pods = parse_pods(
            "t.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,2,4,1000\n",
        )
        .unwrap();
        assert_eq!(pods[0].gpu, GpuRequest::Whole(4));
        assert_eq!(pods[0].arrival_ms, None);
        assert_eq!(pods[0].qos, QosClass::Standard);
    }

    #[test]
    fn nodes_map_model_and_shape() {
        let text = "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,393216,8,G2\nn1,32000,262144,0,\n";
        let nodes = parse_nodes("t.csv", text).unwrap();
        assert_eq!(nodes[0].gpu_milli_capacity(), 8000);
        assert_eq!(nodes[0].gpu_model.as_deref(), Some("G2"));
        assert_eq!(
            nodes[0].instance_type.as_deref(),
            Some("openb-96c-384Gi-8xG2")
        );
        assert_eq!(nodes[1].gpu_model, None);
        let err =
            parse_nodes("t.csv", "sn,cpu_milli,memory_mib,gpu,model\nn,1,1,2,\n").unwrap_err();
        assert!(
            err.to_string().starts_with("t.csv:2: 2 GPUs with model"),
            "{err}"
        );
        let replicated = replicate_nodes(&nodes, 3);
        assert_eq!(replicated.len(), 6);
        assert_eq!(replicated[2].name, "n0-r1");
    }
}
