//! A scenario run's results: JSON for machines (every key carries its unit:
//! `pods_per_s`, `latency_us_p99`, `unallocated_gpu_frac`, ...), a table for the
//! terminal and a Markdown report whose SVG plots ([`crate::plots`]) sit beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::metrics::{Counts, CurvePoint, Quality, peak_rss_bytes};
use crate::plots::{self, PlotKind};
use crate::scenario::Scenario;
use crate::sim::AlgorithmRun;
use crate::sim::workload::Workload;
use crate::stats::{CdfPoint, LatencySummary};

/// Throughput of the measured pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Measured pods over the summed cycle times: the algorithm alone.
    pub pods_per_s: f64,
    /// Measured pods over the wall time of the scheduling loop (bookkeeping included).
    pub wall_pods_per_s: f64,
    pub sched_time_ms: f64,
    pub wall_time_ms: f64,
    /// Simulated time at the end of the last cycle.
    pub sim_time_ms: f64,
}

/// One algorithm's results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlgorithmReport {
    pub algorithm: String,
    /// The scheduler lacks a plugin the shape needs: its constraints were not enforced.
    pub plugin_pending: bool,
    pub missing_plugins: Vec<String>,
    pub counts: Counts,
    pub throughput: Throughput,
    /// Per-pod cycle latency (`latency_us_*`).
    pub scheduling: LatencySummary,
    /// The same cycle latency as a CDF, for the latency plot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_cdf: Vec<CdfPoint>,
    /// Per-pod wait from arrival to the start of its cycle, simulated time.
    pub queue_wait: LatencySummary,
    pub quality: Quality,
    /// Quality over arrived GPU load (openb-fgd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_curve: Vec<CurvePoint>,
    pub placements_fnv64: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scheduler_errors: Vec<String>,
    /// The algorithm's whole run: scheduler cache filled, initial pods placed,
    /// measured pods scheduled and tracked, quality computed.
    pub run_time_ms: f64,
    /// Of it, the scheduler's own work outside the measured cycles: its cache filled
    /// with the nodes, its snapshot built, each binding confirmed in its cache (and
    /// the initial pods' cycles when the scheduler places them).
    pub scheduler_side_ms: f64,
}

/// What the harness itself costs: everything but the scheduler's work.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HarnessCost {
    /// Generating or loading the nodes and pods (once per scenario).
    pub workload_build_ms: f64,
    /// The algorithms' runs, summed ([`AlgorithmReport::run_time_ms`]).
    pub runs_ms: f64,
    /// The scheduler's work, summed: the measured pods' cycles (`sched_time_ms`)
    /// and its work around them (`scheduler_side_ms`).
    pub scheduler_ms: f64,
    /// `1 - scheduler_ms / (workload_build_ms + runs_ms)`: the share of the run spent
    /// generating the cluster and pods, tracking them (placements, devices, quality)
    /// and measuring. Wall time of a single-threaded loop, so the share of its CPU
    /// time too (rayon's filter threads run inside the cycles).
    pub harness_frac: f64,
    /// CPU time of the whole process (every thread) over the workload build and the
    /// runs, where the platform reports it (`/proc/self/stat`, 10 ms ticks).
    pub process_cpu_ms: Option<f64>,
    /// The harness's time (`workload_build_ms + runs_ms - scheduler_ms`, all on the
    /// driving thread) as a share of `process_cpu_ms`: the share of the run's CPU.
    /// Lower than `harness_frac` when the scheduler's filters run on several threads.
    pub harness_cpu_frac: Option<f64>,
}

impl HarnessCost {
    pub fn new(
        workload_build_ms: f64,
        runs: &[AlgorithmReport],
        process_cpu_ms: Option<f64>,
    ) -> HarnessCost {
        let runs_ms: f64 = runs.iter().map(|a| a.run_time_ms).sum();
        let scheduler_ms: f64 = runs
            .iter()
            .map(|a| a.throughput.sched_time_ms + a.scheduler_side_ms)
            .sum();
        let total = workload_build_ms + runs_ms;
        let harness_ms = (total - scheduler_ms).max(0.0);
        HarnessCost {
            workload_build_ms,
            runs_ms,
            scheduler_ms,
            harness_frac: if total > 0.0 { harness_ms / total } else { 0.0 },
            process_cpu_ms,
            harness_cpu_frac: process_cpu_ms
                .filter(|&cpu| cpu > 0.0)
                .map(|cpu| (harness_ms / cpu).min(1.0)),
        }
    }
}

/// A scenario's results, every algorithm side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub shape: String,
    pub labels: Vec<String>,
    pub seed: u64,
    pub n_nodes: usize,
    pub n_initial_pods: usize,
    pub n_pods_to_schedule: usize,
    pub cluster_has_gpus: bool,
    pub algorithms: Vec<AlgorithmReport>,
    pub peak_rss_bytes: Option<u64>,
    pub harness: HarnessCost,
    /// The same algorithms end to end through the API server and the scheduler
    /// service, when run ([`crate::e2e`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub e2e: Vec<crate::e2e::E2eReport>,
}

impl ScenarioReport {
    pub fn new(
        scenario: &Scenario,
        workload: &Workload,
        runs: &[AlgorithmRun],
        workload_build_ms: f64,
        process_cpu_ms: Option<f64>,
    ) -> ScenarioReport {
        let algorithms: Vec<AlgorithmReport> = runs.iter().map(|r| r.report.clone()).collect();
        ScenarioReport {
            scenario: scenario.name.clone(),
            shape: scenario.shape.as_str().to_string(),
            labels: scenario.labels.clone(),
            seed: scenario.seed,
            n_nodes: workload.nodes.len(),
            n_initial_pods: workload.n_initial,
            n_pods_to_schedule: workload.schedule.len(),
            cluster_has_gpus: workload.has_gpus,
            harness: HarnessCost::new(workload_build_ms, &algorithms, process_cpu_ms),
            algorithms,
            peak_rss_bytes: peak_rss_bytes(),
            e2e: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// A fixed-width table, one row per algorithm.
    pub fn terminal_table(&self) -> String {
        let mut out = format!(
            "{} ({} nodes, {} initial pods, {} to schedule, seed {})\n",
            self.scenario, self.n_nodes, self.n_initial_pods, self.n_pods_to_schedule, self.seed
        );
        let header = [
            "algorithm",
            "placed",
            "unsched",
            "pods/s",
            "p50 us",
            "p99 us",
            "max us",
            "wait p99 us",
            "cpu alloc",
            "cpu cv",
            "gpu unalloc",
            "gpu frag",
            "note",
        ];
        let rows: Vec<Vec<String>> = self.algorithms.iter().map(table_row).collect();
        out += &fixed_width_table(&header, &rows);
        let h = &self.harness;
        out += &format!(
            "harness: workload {:.0} ms, runs {:.0} ms of which the scheduler's {:.0} ms: \
             harness {:.1}%{}{}\n",
            h.workload_build_ms,
            h.runs_ms,
            h.scheduler_ms,
            h.harness_frac * 100.0,
            h.harness_cpu_frac.map_or(String::new(), |f| format!(
                " of the time, {:.1}% of the process's {:.0} ms of CPU",
                f * 100.0,
                h.process_cpu_ms.unwrap_or_default()
            )),
            self.peak_rss_bytes
                .map_or(String::new(), |b| format!(", peak RSS {} MiB", b >> 20))
        );
        if !self.e2e.is_empty() {
            out += &crate::e2e::terminal_table(&self.algorithms, &self.e2e);
        }
        out
    }

    /// The Markdown report: the table, then counts, quality and the GPU curve, with
    /// links to the plots [`ScenarioReport::write_files`] writes beside it.
    pub fn to_markdown(&self) -> String {
        let mut md = format!("# Scenario {}\n\n", self.scenario);
        let _ = writeln!(
            md,
            "Shape {}, labels [{}], seed {}: {} nodes, {} initial pods, {} pods to schedule.",
            self.shape,
            self.labels.join(", "),
            self.seed,
            self.n_nodes,
            self.n_initial_pods,
            self.n_pods_to_schedule
        );
        if let Some(rss) = self.peak_rss_bytes {
            let _ = writeln!(md, "Peak RSS of the process: {} MiB.", rss >> 20);
        }
        let h = &self.harness;
        let _ = writeln!(
            md,
            "Harness cost: workload built in {:.0} ms; of {:.0} ms of runs, {:.0} ms were \
             the scheduler's, so {:.1}% of the run's time was the harness{}.",
            h.workload_build_ms,
            h.runs_ms,
            h.scheduler_ms,
            h.harness_frac * 100.0,
            h.harness_cpu_frac.map_or(String::new(), |f| format!(
                " ({:.1}% of the process's {:.0} ms of CPU)",
                f * 100.0,
                h.process_cpu_ms.unwrap_or_default()
            ))
        );
        let _ = writeln!(
            md,
            "Latency is one scheduling cycle (snapshot update, filter, score, assume); queue \
             wait is simulated time from arrival to the start of the pod's cycle. Times on a \
             shared machine are noise: compare algorithms within one run.\n"
        );
        md += "| algorithm | placed | unschedulable | pods/s | p50 µs | p90 µs | p99 µs | p999 µs | max µs | wait p99 µs | note |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
        for a in &self.algorithms {
            let l = &a.scheduling;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                a.algorithm,
                a.counts.pods_placed,
                a.counts.pods_unschedulable,
                a.throughput.pods_per_s,
                l.latency_us_p50,
                l.latency_us_p90,
                l.latency_us_p99,
                l.latency_us_p999,
                l.latency_us_max,
                a.queue_wait.latency_us_p99,
                note(a)
            );
        }
        let kinds = plots::plot_kinds(self);
        self.plot_links(&mut md, kinds.iter().filter(|k| !k.is_gpu()));
        md += "\n## Placement quality\n\n";
        md += "| algorithm | cpu alloc | mem alloc | cpu cv | nodes used | max pods/node | first failure at (pods, cpu alloc) | gpu alloc | unallocated gpu | gpu frag |\n";
        md += "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n";
        for a in &self.algorithms {
            let q = &a.quality;
            let first = q.first_failure.as_ref().map_or("-".to_string(), |f| {
                format!("{}, {:.3}", f.pods_arrived, f.cpu_alloc_frac)
            });
            let gpu = |f: fn(&crate::metrics::GpuQuality) -> f64| {
                q.gpu
                    .as_ref()
                    .map_or("-".to_string(), |g| format!("{:.4}", f(g)))
            };
            let _ = writeln!(
                md,
                "| {} | {:.4} | {:.4} | {:.4} | {} | {} | {} | {} | {} | {} |",
                a.algorithm,
                q.cpu_alloc_frac,
                q.memory_alloc_frac,
                q.cpu_alloc_cv,
                q.nodes_used,
                q.pods_per_node_max,
                first,
                gpu(|g| g.gpu_alloc_frac),
                gpu(|g| g.unallocated_gpu_frac),
                gpu(|g| g.gpu_frag_frac),
            );
        }
        if kinds.iter().any(|k| k.is_gpu()) {
            md += "\n## GPU allocation over arrived load\n";
            if plots::draws_ideal(self) {
                md += "\nThe dashed line is a scheduler that never fragments: every arrived \
                       GPU request placed until the cluster is full.\n";
            }
            self.plot_links(&mut md, kinds.iter().filter(|k| k.is_gpu()));
        }
        for a in self.algorithms.iter().filter(|a| !a.gpu_curve.is_empty()) {
            let _ = writeln!(
                md,
                "\n## {}: GPU allocation over arrived load\n\n| arrived gpu | pods arrived | failed | gpu alloc | unallocated gpu | gpu frag |\n|---:|---:|---:|---:|---:|---:|",
                a.algorithm
            );
            for p in &a.gpu_curve {
                let _ = writeln!(
                    md,
                    "| {:.3} | {} | {} | {:.4} | {:.4} | {:.4} |",
                    p.arrived_gpu_frac,
                    p.pods_arrived,
                    p.pods_failed,
                    p.gpu_alloc_frac,
                    p.unallocated_gpu_frac,
                    p.gpu_frag_frac
                );
            }
        }
        if !self.e2e.is_empty() {
            md += &crate::e2e::markdown(&self.algorithms, &self.e2e);
        }
        md
    }

    /// One image link per plot, relative to the Markdown's directory.
    fn plot_links<'k>(&self, md: &mut String, kinds: impl Iterator<Item = &'k PlotKind>) {
        for kind in kinds {
            let _ = writeln!(
                md,
                "\n![{}]({})",
                kind.title(),
                kind.file_name(&self.scenario)
            );
        }
    }

    /// Writes `<dir>/<scenario>.json`, `<dir>/<scenario>.md` and the plots it links,
    /// `<dir>/<scenario>-<plot>.svg`; returns the JSON's and the Markdown's paths.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        // Rendered first, so that a failure leaves no Markdown linking missing plots.
        let svgs = plots::render_all(self).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        for (kind, svg) in &svgs {
            std::fs::write(dir.join(kind.file_name(&self.scenario)), svg)?;
        }
        let json = dir.join(format!("{}.json", self.scenario));
        let md = dir.join(format!("{}.md", self.scenario));
        std::fs::write(&json, self.to_json())?;
        std::fs::write(&md, self.to_markdown())?;
        Ok((json, md))
    }
}

/// Right-aligned columns, two spaces apart, one line per row.
pub(crate) fn fixed_width_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

fn note(a: &AlgorithmReport) -> String {
    let mut notes = Vec::new();
    if a.plugin_pending {
        notes.push(format!("plugin pending: {}", a.missing_plugins.join(",")));
    }
    if a.counts.pods_failed_gpu_device > 0 {
        notes.push(format!(
            "{} gpu-device failures",
            a.counts.pods_failed_gpu_device
        ));
    }
    if a.counts.pods_scheduler_error > 0 {
        notes.push(format!(
            "{} scheduler errors",
            a.counts.pods_scheduler_error
        ));
    }
    notes.join("; ")
}

fn table_row(a: &AlgorithmReport) -> Vec<String> {
    let gpu = a.quality.gpu.as_ref();
    vec![
        a.algorithm.clone(),
        format!("{}/{}", a.counts.pods_placed, a.counts.pods_to_schedule),
        a.counts.pods_unschedulable.to_string(),
        format!("{:.0}", a.throughput.pods_per_s),
        a.scheduling.latency_us_p50.to_string(),
        a.scheduling.latency_us_p99.to_string(),
        a.scheduling.latency_us_max.to_string(),
        a.queue_wait.latency_us_p99.to_string(),
        format!("{:.3}", a.quality.cpu_alloc_frac),
        format!("{:.3}", a.quality.cpu_alloc_cv),
        gpu.map_or("-".into(), |g| format!("{:.3}", g.unallocated_gpu_frac)),
        gpu.map_or("-".into(), |g| format!("{:.3}", g.gpu_frag_frac)),
        note(a),
    ]
}
