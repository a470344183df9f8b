//! The Markdown report's SVG plots: every link of the Markdown is a file written beside
//! it, every SVG is well formed with a line (or bar) and a legend entry per algorithm,
//! the same report renders to the same bytes, and GPU plots appear only with a GPU
//! curve. Hand-built reports pin the details; short scenario runs check the whole path.

use std::collections::BTreeSet;
use std::path::Path;

use bosun_harness::metrics::{Counts, CurvePoint, Quality};
use bosun_harness::plots::{PlotKind, colour, plot_kinds, render, render_all};
use bosun_harness::report::{AlgorithmReport, ScenarioReport, Throughput};
use bosun_harness::scenario::load_scenario;
use bosun_harness::sim::{RunOptions, run_scenario};
use bosun_harness::stats::{CdfPoint, LatencySummary, MAX_CDF_POINTS};

fn algorithm(name: &str, pods_per_s: f64, cdf: &[(f64, u64)]) -> AlgorithmReport {
    AlgorithmReport {
        algorithm: name.to_string(),
        plugin_pending: false,
        missing_plugins: Vec::new(),
        counts: Counts::default(),
        throughput: Throughput {
            pods_per_s,
            ..Throughput::default()
        },
        scheduling: LatencySummary::default(),
        latency_cdf: cdf
            .iter()
            .map(|&(quantile, latency_us)| CdfPoint {
                quantile,
                latency_us,
            })
            .collect(),
        queue_wait: LatencySummary::default(),
        quality: Quality::default(),
        gpu_curve: Vec::new(),
        placements_fnv64: String::new(),
        scheduler_errors: Vec::new(),
        run_time_ms: 0.0,
        scheduler_side_ms: 0.0,
    }
}

/// Points `(arrived, allocated)` as fractions of GPU capacity.
fn curve(points: &[(f64, f64)]) -> Vec<CurvePoint> {
    points
        .iter()
        .map(|&(arrived, alloc)| CurvePoint {
            arrived_gpu_frac: arrived,
            pods_arrived: 0,
            pods_failed: 0,
            gpu_alloc_frac: alloc,
            unallocated_gpu_frac: 1.0 - alloc,
            gpu_frag_frac: 0.0,
        })
        .collect()
}

fn report(algorithms: Vec<AlgorithmReport>) -> ScenarioReport {
    ScenarioReport {
        scenario: "hand-built".to_string(),
        shape: "SchedulingBasic".to_string(),
        labels: vec!["short".to_string()],
        seed: 1,
        n_nodes: 4,
        n_initial_pods: 0,
        n_pods_to_schedule: 100,
        cluster_has_gpus: false,
        algorithms,
        peak_rss_bytes: None,
        harness: Default::default(),
        e2e: Vec::new(),
    }
}

/// Two algorithms with CDFs and throughput, no GPU curve.
fn two_algorithms() -> ScenarioReport {
    report(vec![
        algorithm("default", 1234.4, &[(0.0, 80), (0.5, 120), (1.0, 900)]),
        algorithm("fgd", 567.8, &[(0.0, 150), (0.9, 200), (1.0, 4000)]),
    ])
}

/// `two_algorithms` with a GPU curve for `fgd` only.
fn with_gpu_curve() -> ScenarioReport {
    let mut r = two_algorithms();
    r.cluster_has_gpus = true;
    r.algorithms[1].gpu_curve = curve(&[(0.25, 0.25), (0.75, 0.7), (1.3, 0.9)]);
    r
}

/// Tags balance (each opened one closed, in order), the root is one `<svg>` element,
/// and text holds no raw `<` or `&`: XML as far as these plots use it.
fn check_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        for (i, _) in rest[..start].match_indices('&') {
            let entity = &rest[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "a raw & in text: {}",
                &entity[..entity.len().min(20)]
            );
        }
        let end = rest[start..].find('>').expect("every tag closes") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "tag inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing {name}");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().expect("a tag name"));
        }
        if open.is_empty() {
            assert!(rest[end + 1..].trim().is_empty(), "one root element");
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
}

/// The contents of the `<text>` elements.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').expect("a text tag closes") + 1..];
            body[..body.find("</text>").expect("text ends")]
                .trim()
                .to_string()
        })
        .collect()
}

fn hex(algorithm_idx: usize) -> String {
    let c = colour(algorithm_idx);
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// How many elements named `element` have `attr` set to the algorithm's colour.
fn count_coloured(svg: &str, element: &str, attr: &str, algorithm_idx: usize) -> usize {
    let want = format!("{attr}=\"{}\"", hex(algorithm_idx));
    svg.lines()
        .filter(|l| l.starts_with(&format!("<{element} ")) && l.contains(&want))
        .count()
}

#[test]
fn throughput_has_a_bar_and_a_value_per_algorithm() {
    let r = two_algorithms();
    let svg = render(&r, PlotKind::Throughput).unwrap();
    check_well_formed(&svg);
    let texts = texts(&svg);
    for want in [
        "default",
        "fgd",
        "1234",
        "568",
        "Throughput per algorithm: hand-built",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("pods/s")), "x axis unit");
    for i in 0..2 {
        assert_eq!(
            count_coloured(&svg, "rect", "fill", i),
            1,
            "one bar for {i}"
        );
    }
}

#[test]
fn latency_cdf_has_a_line_and_a_legend_entry_per_algorithm() {
    let mut r = two_algorithms();
    r.algorithms
        .push(algorithm("measured-nothing", f64::NAN, &[]));
    let svg = render(&r, PlotKind::LatencyCdf).unwrap();
    check_well_formed(&svg);
    for i in 0..2 {
        // The line and its legend swatch.
        assert_eq!(count_coloured(&svg, "polyline", "stroke", i), 2, "{i}");
    }
    assert_eq!(count_coloured(&svg, "polyline", "stroke", 2), 0);
    let texts = texts(&svg);
    assert!(texts.iter().any(|t| t == "default"));
    assert!(texts.iter().any(|t| t == "fgd"));
    assert!(
        !texts.iter().any(|t| t == "measured-nothing"),
        "no line, no legend entry"
    );
    assert!(texts.iter().any(|t| t.contains("(µs, log scale)")));
    // 80..4000 µs: the axis spans whole decades, 10 to 10000.
    assert!(texts.iter().any(|t| t == "10"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "10000"), "{texts:?}");
}

#[test]
fn gpu_plots_only_for_reports_with_a_gpu_curve() {
    assert_eq!(
        plot_kinds(&two_algorithms()),
        [PlotKind::Throughput, PlotKind::LatencyCdf]
    );
    let r = with_gpu_curve();
    assert_eq!(plot_kinds(&r), PlotKind::ALL);
    for kind in [PlotKind::GpuUnallocated, PlotKind::GpuAlloc] {
        let svg = render(&r, kind).unwrap();
        check_well_formed(&svg);
        assert_eq!(
            count_coloured(&svg, "polyline", "stroke", 0),
            0,
            "default has no curve"
        );
        assert_eq!(count_coloured(&svg, "polyline", "stroke", 1), 2, "fgd");
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "fgd"));
        assert!(!texts.iter().any(|t| t == "default"));
        assert!(texts.iter().any(|t| t == "no fragmentation"));
        assert!(
            texts
                .iter()
                .any(|t| t == "arrived GPU load (% of GPU capacity)")
        );
        // The curve reaches 130% of capacity: the axis does too.
        assert!(texts.iter().any(|t| t == "120"), "{texts:?}");
    }
    // Initial pods hold GPUs the arrived load does not count: no ideal to compare with.
    let mut started_full = r.clone();
    started_full.n_initial_pods = 10;
    let svg = render(&started_full, PlotKind::GpuAlloc).unwrap();
    assert!(!texts(&svg).iter().any(|t| t == "no fragmentation"));
    assert!(!started_full.to_markdown().contains("dashed line"));
    assert!(r.to_markdown().contains("dashed line"));
}

#[test]
fn rendering_is_deterministic() {
    let r = with_gpu_curve();
    let first = render_all(&r).unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(first, render_all(&r.clone()).unwrap());
    let mut faster = r.clone();
    faster.algorithms[0].throughput.pods_per_s *= 2.0;
    assert_ne!(
        render(&faster, PlotKind::Throughput).unwrap(),
        first[0].1,
        "the plot shows the data"
    );
}

#[test]
fn names_are_escaped() {
    let mut r = two_algorithms();
    r.algorithms[0].algorithm = "a<b&c".to_string();
    for (_, svg) in render_all(&r).unwrap() {
        check_well_formed(&svg);
        assert!(svg.contains("a&lt;b&amp;c"));
    }
}

/// The `](target)` of every Markdown image.
fn image_links(md: &str) -> Vec<String> {
    md.split("![")
        .skip(1)
        .map(|s| {
            let target = &s[s.find("](").expect("an image link") + 2..];
            target[..target.find(')').expect("a link ends")].to_string()
        })
        .collect()
}

fn svg_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".svg"))
        .collect()
}

fn run_short(name: &str, algorithms: &[&str]) -> ScenarioReport {
    let scenario = load_scenario(name).unwrap();
    let opts = RunOptions {
        algorithms: Some(algorithms.iter().map(|a| a.to_string()).collect()),
        ..RunOptions::quiet()
    };
    run_scenario(&scenario, &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the report, checks that the Markdown's links are exactly the SVGs written
/// and that each SVG names every algorithm; returns the links.
fn check_written(report: &ScenarioReport) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (json, md) = report.write_files(dir.path()).unwrap();
    assert!(json.is_file() && md.is_file());
    let links = image_links(&std::fs::read_to_string(&md).unwrap());
    let linked: BTreeSet<String> = links.iter().cloned().collect();
    assert_eq!(
        linked,
        svg_files(dir.path()),
        "every plot linked, every link a plot"
    );
    assert_eq!(linked.len(), links.len(), "each plot linked once");
    for link in &links {
        let svg = std::fs::read_to_string(dir.path().join(link)).unwrap();
        check_well_formed(&svg);
        let texts = texts(&svg);
        for a in &report.algorithms {
            assert!(texts.contains(&a.algorithm), "{link}: {}", a.algorithm);
        }
    }
    links
}

#[test]
fn a_short_run_without_gpus_writes_two_plots() {
    let report = run_short("SchedulingBasic-short", &["default", "most-allocated"]);
    let links = check_written(&report);
    assert_eq!(
        links,
        [
            "SchedulingBasic-short-throughput.svg",
            "SchedulingBasic-short-latency-cdf.svg"
        ]
    );
}

#[test]
fn a_short_openb_run_writes_the_gpu_plots_too() {
    let report = run_short("openb-fgd-short", &["default", "fgd"]);
    let links = check_written(&report);
    assert_eq!(
        links,
        [
            "openb-fgd-short-throughput.svg",
            "openb-fgd-short-latency-cdf.svg",
            "openb-fgd-short-gpu-unallocated.svg",
            "openb-fgd-short-gpu-alloc.svg"
        ]
    );
}

#[test]
fn the_latency_cdf_is_in_the_json_with_its_unit() {
    let report = run_short("SchedulingBasic-short", &["default"]);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let algo = &json["algorithms"][0];
    let cdf = algo["latency_cdf"].as_array().expect("a CDF");
    assert!((2..=MAX_CDF_POINTS).contains(&cdf.len()), "{}", cdf.len());
    assert_eq!(cdf[0]["quantile"], 0.0);
    let last = cdf.last().unwrap();
    assert_eq!(last["quantile"], 1.0);
    assert_eq!(last["latency_us"], algo["scheduling"]["latency_us_max"]);
    for w in cdf.windows(2) {
        assert!(w[0]["quantile"].as_f64() < w[1]["quantile"].as_f64());
        assert!(w[0]["latency_us"].as_u64() <= w[1]["latency_us"].as_u64());
    }
}
