//! SVG plots of a [`ScenarioReport`], embedded in its Markdown report:
//! - throughput per algorithm, a bar each, labelled with its pods/s;
//! - scheduling-cycle latency CDFs, a line per algorithm over log-scale microseconds;
//! - for GPU clusters with a curve (openb-fgd), the FGD paper's (ATC'23) figures:
//!   unallocated GPU and GPU allocation rate over arrived GPU load, a line per
//!   algorithm and, where the cluster starts empty, the ideal of a scheduler that never
//!   fragments.
//!
//! Rendering is pure: a report in, SVG text out; [`ScenarioReport::write_files`] does the
//! writing. The same report gives byte-identical SVG (no clock, no randomness, fixed
//! sizes, text left to the viewer's fonts as `<text>` elements). Algorithm `i` of the
//! report has colour `i` of [`PALETTE`] in every plot; past its length the colours
//! repeat.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::metrics::CurvePoint;
use crate::report::ScenarioReport;

/// Width of the bar chart.
const BAR_PLOT_WIDTH_PX: u32 = 800;
/// Size of the line plots, the legend column included.
const LINE_PLOT_WIDTH_PX: u32 = 960;
const LINE_PLOT_HEIGHT_PX: u32 = 480;
const LEGEND_WIDTH_PX: u32 = 190;
/// The legend's first row, level with the top of the chart, and its row pitch.
const LEGEND_TOP_PX: i32 = 20;
const LEGEND_ROW_PX: i32 = 22;
/// The bar chart grows with the number of algorithms, up to this height.
const BAR_HEIGHT_BASE_PX: u32 = 120;
const BAR_HEIGHT_PER_ALGORITHM_PX: u32 = 48;
const MAX_BAR_HEIGHT_PX: u32 = 2000;
/// Room left of the bars for the longest algorithm name, at most this much.
const MAX_NAME_AREA_PX: u32 = 240;

const FONT: &str = "sans-serif";
const CAPTION_FONT_PX: u32 = 22;
const LABEL_FONT_PX: u32 = 15;
const LINE_WIDTH_PX: u32 = 2;

/// Ten categorical colours, distinct and readable on white: one per shipped algorithm.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1F, 0x77, 0xB4), // blue
    RGBColor(0xFF, 0x7F, 0x0E), // orange
    RGBColor(0x2C, 0xA0, 0x2C), // green
    RGBColor(0xD6, 0x27, 0x28), // red
    RGBColor(0x94, 0x67, 0xBD), // purple
    RGBColor(0x8C, 0x56, 0x4B), // brown
    RGBColor(0xE3, 0x77, 0xC2), // pink
    RGBColor(0x7F, 0x7F, 0x7F), // grey
    RGBColor(0xBC, 0xBD, 0x22), // olive
    RGBColor(0x17, 0xBE, 0xCF), // cyan
];

/// The reference line (a scheduler without fragmentation): black and dashed, unlike
/// any algorithm's line.
const REFERENCE: RGBColor = BLACK;
const DASH_PX: u32 = 6;

/// The colour of the report's `algorithm_idx`-th algorithm.
pub fn colour(algorithm_idx: usize) -> RGBColor {
    PALETTE[algorithm_idx % PALETTE.len()]
}

/// The plots a report can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    Throughput,
    LatencyCdf,
    GpuUnallocated,
    GpuAlloc,
}

impl PlotKind {
    pub const ALL: [PlotKind; 4] = [
        PlotKind::Throughput,
        PlotKind::LatencyCdf,
        PlotKind::GpuUnallocated,
        PlotKind::GpuAlloc,
    ];

    /// What ends the file name, after the scenario's name.
    pub fn suffix(self) -> &'static str {
        match self {
            PlotKind::Throughput => "throughput",
            PlotKind::LatencyCdf => "latency-cdf",
            PlotKind::GpuUnallocated => "gpu-unallocated",
            PlotKind::GpuAlloc => "gpu-alloc",
        }
    }

    /// `<scenario>-<suffix>.svg`, relative to the report's directory.
    pub fn file_name(self, scenario: &str) -> String {
        format!("{scenario}-{}.svg", self.suffix())
    }

    /// The plot's title, also its image's alternative text.
    pub fn title(self) -> &'static str {
        match self {
            PlotKind::Throughput => "Throughput per algorithm",
            PlotKind::LatencyCdf => "Scheduling cycle latency CDF",
            PlotKind::GpuUnallocated => "Unallocated GPU over arrived GPU load",
            PlotKind::GpuAlloc => "GPU allocation rate over arrived GPU load",
        }
    }

    /// A GPU-curve plot, drawn only for reports with a GPU curve.
    pub fn is_gpu(self) -> bool {
        matches!(self, PlotKind::GpuUnallocated | PlotKind::GpuAlloc)
    }
}

/// Drawing failed. Drawing into a string does no IO: this is the layout or the font
/// estimate refusing, which sizes fixed in this module should never cause.
#[derive(Debug, thiserror::Error)]
#[error("the {kind:?} plot of scenario {scenario}: {message}")]
pub struct PlotError {
    pub kind: PlotKind,
    pub scenario: String,
    pub message: String,
}

/// The plots `report` has: throughput and latency always, the GPU curves when some
/// algorithm has GPU curve points.
pub fn plot_kinds(report: &ScenarioReport) -> Vec<PlotKind> {
    let has_curve = report.algorithms.iter().any(|a| !a.gpu_curve.is_empty());
    PlotKind::ALL
        .into_iter()
        .filter(|k| has_curve || !k.is_gpu())
        .collect()
}

/// Every plot of [`plot_kinds`], rendered.
pub fn render_all(report: &ScenarioReport) -> Result<Vec<(PlotKind, String)>, PlotError> {
    plot_kinds(report)
        .into_iter()
        .map(|kind| Ok((kind, render(report, kind)?)))
        .collect()
}

/// One plot as an SVG document. A GPU plot of a report without a GPU curve has axes
/// and no lines.
pub fn render(report: &ScenarioReport, kind: PlotKind) -> Result<String, PlotError> {
    let mut svg = String::new();
    let drawn = match kind {
        PlotKind::Throughput => throughput(report, &mut svg),
        PlotKind::LatencyCdf => latency_cdf(report, &mut svg),
        PlotKind::GpuUnallocated => gpu_curve(report, &mut svg, &UNALLOCATED),
        PlotKind::GpuAlloc => gpu_curve(report, &mut svg, &ALLOC),
    };
    drawn.map_err(|e| PlotError {
        kind,
        scenario: report.scenario.clone(),
        message: e.to_string(),
    })?;
    assert!(svg.starts_with("<svg"), "the backend writes one document");
    Ok(svg)
}

type DrawError = DrawingAreaErrorKind<std::io::Error>;

fn label_font() -> TextStyle<'static> {
    TextStyle::from((FONT, LABEL_FONT_PX).into_font())
}

/// A value fit for an axis: NaN and infinities (a run that measured nothing) are 0.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Horizontal bars, the report's first algorithm on top, each labelled with its pods/s.
fn throughput(report: &ScenarioReport, out: &mut String) -> Result<(), DrawError> {
    let names: Vec<&str> = report
        .algorithms
        .iter()
        .map(|a| a.algorithm.as_str())
        .collect();
    let values: Vec<f64> = report
        .algorithms
        .iter()
        .map(|a| finite(a.throughput.pods_per_s).max(0.0))
        .collect();
    let n = names.len() as u32;
    let height = (BAR_HEIGHT_BASE_PX + BAR_HEIGHT_PER_ALGORITHM_PX * n).min(MAX_BAR_HEIGHT_PX);
    // Room right of the longest bar for its label.
    let max = values.iter().copied().fold(0.0, f64::max);
    let x_max = if max > 0.0 { max * 1.2 } else { 1.0 };
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0) as u32;
    let name_area_px = (longest * LABEL_FONT_PX * 3 / 5 + 24).min(MAX_NAME_AREA_PX);
    // Bar `i` sits in segment `row(i)`: the first algorithm gets the top one.
    let row = |i: usize| n - 1 - i as u32;

    let root = SVGBackend::with_string(out, (BAR_PLOT_WIDTH_PX, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: {}", PlotKind::Throughput.title(), report.scenario),
            (FONT, CAPTION_FONT_PX),
        )
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(name_area_px)
        .build_cartesian_2d(0.0..x_max, (0..n.saturating_sub(1)).into_segmented())?;
    let name_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(r) if *r < n => names[(n - 1 - r) as usize].to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(names.len().max(1))
        .y_label_formatter(&name_of)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("pods/s (measured pods over summed cycle time)")
        .label_style(label_font())
        .axis_desc_style(label_font())
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
        let r = row(i);
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(r)),
                (v, SegmentValue::Exact(r + 1)),
            ],
            colour(i).filled(),
        );
        bar.set_margin(8, 8, 0, 0);
        bar
    }))?;
    let value_style = label_font().pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
        EmptyElement::at((v, SegmentValue::CenterOf(row(i))))
            + Text::new(format!("{v:.0}"), (6, 0), value_style.clone())
    }))?;
    root.present()
}

/// One line of a line plot.
struct Line {
    name: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// What a line plot shows, whatever its x axis.
struct LinePlot {
    title: String,
    x_desc: &'static str,
    y_desc: &'static str,
    y_range: Range<f64>,
    y_fmt: fn(&f64) -> String,
    lines: Vec<Line>,
    /// A dashed black line drawn under the others.
    reference: Option<Line>,
}

/// The chart, with the legend in a column of its own right of it: with ten algorithms
/// a legend inside the chart would hide some lines wherever it went.
fn draw_lines<X, XR>(
    plot: &LinePlot,
    x: XR,
    x_fmt: &dyn Fn(&f64) -> String,
    out: &mut String,
) -> Result<(), DrawError>
where
    XR: AsRangedCoord<CoordDescType = X, Value = f64>,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let root =
        SVGBackend::with_string(out, (LINE_PLOT_WIDTH_PX, LINE_PLOT_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&plot.title, (FONT, CAPTION_FONT_PX))?;
    let (chart_area, legend_area) = body.split_horizontally(LINE_PLOT_WIDTH_PX - LEGEND_WIDTH_PX);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, plot.y_range.clone())?;
    chart
        .configure_mesh()
        .x_label_formatter(x_fmt)
        .y_label_formatter(&plot.y_fmt)
        .x_desc(plot.x_desc)
        .y_desc(plot.y_desc)
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .label_style(label_font())
        .axis_desc_style(label_font())
        .draw()?;
    if let Some(line) = &plot.reference {
        let style = line.colour.stroke_width(LINE_WIDTH_PX);
        let points = line.points.iter().copied();
        chart.draw_series(DashedLineSeries::new(points, DASH_PX, DASH_PX, style))?;
    }
    for line in &plot.lines {
        let style = line.colour.stroke_width(LINE_WIDTH_PX);
        chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?;
    }
    let entries = plot.reference.iter().map(|l| (l, true));
    let entries = entries.chain(plot.lines.iter().map(|l| (l, false)));
    for (row, (line, dashed)) in entries.enumerate() {
        legend_entry(&legend_area, row, line, dashed)?;
    }
    root.present()
}

/// The legend's `row`-th entry: a swatch of the line and its name.
fn legend_entry(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    row: usize,
    line: &Line,
    dashed: bool,
) -> Result<(), DrawError> {
    let y = LEGEND_TOP_PX + LEGEND_ROW_PX * row as i32;
    let style = line.colour.stroke_width(LINE_WIDTH_PX);
    if dashed {
        area.draw(&PathElement::new(vec![(0, y), (10, y)], style))?;
        area.draw(&PathElement::new(vec![(14, y), (24, y)], style))?;
    } else {
        area.draw(&PathElement::new(vec![(0, y), (24, y)], style))?;
    }
    let text_style = label_font().pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(line.name.as_str(), (32, y), text_style))
}

/// The cycle latency CDFs over log-scale microseconds, whole decades on the axis.
fn latency_cdf(report: &ScenarioReport, out: &mut String) -> Result<(), DrawError> {
    let lines: Vec<Line> = report
        .algorithms
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.latency_cdf.is_empty())
        .map(|(i, a)| Line {
            name: a.algorithm.clone(),
            colour: colour(i),
            points: a
                .latency_cdf
                .iter()
                .map(|p| (p.latency_us.max(1) as f64, p.quantile))
                .collect(),
        })
        .collect();
    let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let lo = xs().fold(f64::INFINITY, f64::min);
    let hi = xs().fold(1.0, f64::max);
    let lo_decade = if lo.is_finite() {
        lo.log10().floor()
    } else {
        0.0
    };
    let hi_decade = hi.log10().ceil().max(lo_decade + 1.0);
    let plot = LinePlot {
        title: format!("{}: {}", PlotKind::LatencyCdf.title(), report.scenario),
        x_desc: "latency of one scheduling cycle (µs, log scale)",
        y_desc: "fraction of pods (at most this latency)",
        y_range: 0.0..1.0,
        y_fmt: |v| format!("{v:.1}"),
        lines,
        reference: None,
    };
    let x = (10f64.powf(lo_decade)..10f64.powf(hi_decade)).log_scale();
    draw_lines(&plot, x, &|v| format!("{v:.0}"), out)
}

/// One GPU-curve plot: which value of a point it draws, and the ideal.
struct GpuPlot {
    kind: PlotKind,
    y_desc: &'static str,
    /// The plotted value of a curve point, as a fraction of GPU capacity.
    y_frac: fn(&CurvePoint) -> f64,
    /// The value without fragmentation at an arrived load, as a fraction.
    ideal_frac: fn(f64) -> f64,
}

const UNALLOCATED: GpuPlot = GpuPlot {
    kind: PlotKind::GpuUnallocated,
    y_desc: "unallocated GPU (% of GPU capacity)",
    y_frac: |p| p.unallocated_gpu_frac,
    ideal_frac: |x| (1.0 - x).max(0.0),
};

const ALLOC: GpuPlot = GpuPlot {
    kind: PlotKind::GpuAlloc,
    y_desc: "GPU allocation rate (% of GPU capacity)",
    y_frac: |p| p.gpu_alloc_frac,
    ideal_frac: |x| x.min(1.0),
};

/// Whether the GPU plots draw the ideal: only where the cluster starts empty, since the
/// arrived load counts the measured pods alone.
pub fn draws_ideal(report: &ScenarioReport) -> bool {
    report.n_initial_pods == 0
}

/// Percent over arrived GPU load in percent of capacity, as the FGD paper draws it.
fn gpu_curve(report: &ScenarioReport, out: &mut String, g: &GpuPlot) -> Result<(), DrawError> {
    let lines: Vec<Line> = report
        .algorithms
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.gpu_curve.is_empty())
        .map(|(i, a)| Line {
            name: a.algorithm.clone(),
            colour: colour(i),
            points: a
                .gpu_curve
                .iter()
                .map(|p| {
                    (
                        100.0 * finite(p.arrived_gpu_frac),
                        100.0 * finite((g.y_frac)(p)),
                    )
                })
                .collect(),
        })
        .collect();
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(100.0, f64::max);
    // The ideal bends at full load: its three corners are the whole line.
    let reference = draws_ideal(report).then(|| Line {
        name: "no fragmentation".to_string(),
        colour: REFERENCE,
        points: [0.0, 1.0, x_max / 100.0]
            .iter()
            .map(|&x| (100.0 * x, 100.0 * (g.ideal_frac)(x)))
            .collect(),
    });
    let plot = LinePlot {
        title: format!("{}: {}", g.kind.title(), report.scenario),
        x_desc: "arrived GPU load (% of GPU capacity)",
        y_desc: g.y_desc,
        y_range: 0.0..100.0,
        y_fmt: |v| format!("{v:.0}"),
        lines,
        reference,
    };
    draw_lines(&plot, 0.0..x_max, &|v| format!("{v:.0}"), out)
}
