//! The three output formats of `simulate`: a table for people, JSON records, an SVG chart.

use std::fmt::Write as _;

use api::{ConditionType, Target};
use plotters::prelude::*;
use serde::Serialize;

use super::{model::Tick, scenario::Scenario};

/// One JSON record per tick (the record shape documented in the README's Simulate section).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    t: i64,
    current_replicas: i32,
    metrics: &'a [Option<f64>],
    desired_replicas: i32,
    scaled: bool,
    reasons: Vec<&'a str>,
}

/// The condition reasons of the decision's status, then the reasons of its events.
fn reasons(tick: &Tick) -> Vec<&str> {
    let d = &tick.decision;
    d.status
        .conditions
        .iter()
        .map(|c| c.reason.as_str())
        .chain(d.events.iter().map(|e| e.reason.as_str()))
        .collect()
}

/// A JSON array with one record per tick, one record per line.
pub fn json(ticks: &[Tick]) -> String {
    let records: Vec<String> = ticks
        .iter()
        .map(|tick| {
            let record = Record {
                t: tick.t,
                current_replicas: tick.target.spec_replicas,
                metrics: &tick.metrics,
                desired_replicas: tick.decision.desired_replicas,
                scaled: tick.decision.scale,
                reasons: reasons(tick),
            };
            serde_json::to_string(&record).expect("a record of numbers and strings serializes")
        })
        .collect();
    format!("[\n{}\n]\n", records.join(",\n"))
}

/// `mm:ss`, or `h:mm:ss` from an hour on.
fn clock(t: i64) -> String {
    let (h, m, s) = (t / 3600, (t % 3600) / 60, t % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) if !v.is_finite() => format!("{v}"),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

fn target_text(target: Target) -> String {
    match target {
        Target::Value(v) => format!("Value {}", number(Some(v))),
        Target::AverageValue(v) => format!("AverageValue {} per replica", number(Some(v))),
    }
}

/// What a tick says, compactly: the scale or why not.
fn what(tick: &Tick) -> String {
    let d = &tick.decision;
    let mut parts: Vec<String> = Vec::new();
    let reason = |ty: ConditionType| {
        d.status
            .conditions
            .iter()
            .find(|c| c.type_ == ty.as_str())
            .map(|c| (c.status == "True", c.reason.as_str()))
    };
    if let Some((_, r)) = reason(ConditionType::AbleToScale)
        && !d.scale
    {
        parts.push(r.to_owned());
    }
    if let Some((false, r)) = reason(ConditionType::ScalingActive) {
        parts.push(r.to_owned());
    }
    if let Some((true, r)) = reason(ConditionType::ScalingLimited) {
        parts.push(r.to_owned());
    }
    for e in &d.events {
        parts.push(format!("{}: {}", e.reason, e.message));
    }
    parts.join("; ")
}

/// A table of the polls where something changed (and the first and last).
pub fn table(s: &Scenario, ticks: &[Tick]) -> String {
    let mut out = String::new();
    let r = &s.resolved;
    let _ = writeln!(
        out,
        "{}: minReplicas {}, maxReplicas {}, a poll every {} s, {}",
        s.name,
        r.min_replicas,
        r.max_replicas,
        r.polling_interval.as_secs(),
        if matches!(r.behavior, api::Behavior::Legacy { .. }) {
            "no behavior (300 s scale-down window, steps up to max(2 × current, 4))"
        } else {
            "behavior as configured"
        }
    );
    for (i, m) in r.metrics.iter().enumerate() {
        let _ = writeln!(
            out,
            "m{i}: {}{}, target {}",
            m.describe(),
            if m.realtime { " (realtime)" } else { "" },
            target_text(m.target)
        );
    }
    let _ = writeln!(out, "(only the polls where something changed are listed)\n");
    let mut header = format!("{:>8} {:>8} {:>5}", "time", "replicas", "ready");
    for i in 0..r.metrics.len() {
        let _ = write!(header, " {:>9}", format!("m{i}"));
    }
    let _ = write!(header, " {:>7}  what happened", "desired");
    let _ = writeln!(out, "{header}");
    let mut last_row = String::new();
    for (i, tick) in ticks.iter().enumerate() {
        let ready = tick
            .target
            .ready_replicas
            .unwrap_or(tick.target.status_replicas);
        let mut row = format!("{:>8} {:>5}", tick.target.spec_replicas, ready);
        for v in &tick.metrics {
            let _ = write!(row, " {:>9}", number(*v));
        }
        let _ = write!(
            row,
            " {:>7}  {}",
            tick.decision.desired_replicas,
            what(tick)
        );
        if row != last_row || i + 1 == ticks.len() {
            let _ = writeln!(out, "{:>8} {row}", clock(tick.t));
        }
        last_row = row;
    }
    let scales = ticks.iter().filter(|t| t.decision.scale).count();
    if let Some(peak) = ticks
        .iter()
        .max_by_key(|t| (t.decision.desired_replicas, -t.t))
    {
        let _ = writeln!(
            out,
            "\n{scales} scale(s); peak {} replicas at {}; {} replicas at the end",
            peak.decision.desired_replicas,
            clock(peak.t),
            ticks.last().map_or(0, |t| t.decision.desired_replicas)
        );
    }
    out
}

/// Stroke colours of the metric series.
const METRIC_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const TARGET_COLOR: RGBColor = RGBColor(214, 39, 40);
const CURRENT_COLOR: RGBColor = RGBColor(31, 119, 180);
const DESIRED_COLOR: RGBColor = RGBColor(255, 127, 14);
const READY_COLOR: RGBColor = RGBColor(127, 127, 127);

/// Reads one replica count of a tick.
type ReplicaCount = fn(&Tick) -> i32;

/// The chart: metrics and their targets on top, replicas below, over minutes.
pub fn svg(s: &Scenario, ticks: &[Tick]) -> Result<String, String> {
    let mut buffer = String::new();
    draw(s, ticks, &mut buffer).map_err(|e| e.to_string())?;
    Ok(buffer)
}

fn draw(
    s: &Scenario,
    ticks: &[Tick],
    buffer: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let end = s.duration as f64 / 60.0;
    let minutes = |t: i64| t as f64 / 60.0;
    let root = SVGBackend::with_string(buffer, (1000, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let r = &s.resolved;
    let title = format!(
        "{}: {}, minReplicas {}, maxReplicas {} (simulated)",
        s.name,
        r.metrics
            .iter()
            .map(|m| target_text(m.target))
            .collect::<Vec<_>>()
            .join(", "),
        r.min_replicas,
        r.max_replicas
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let (top, bottom) = root.split_vertically(380);

    // What each metric's target means in the metric's own units at the current replica count.
    let target_at = |target: Target, tick: &Tick| match target {
        Target::Value(v) => v,
        Target::AverageValue(v) => v * f64::from(tick.target.spec_replicas),
    };
    let mut y_max: f64 = 1.0;
    for tick in ticks {
        for v in tick.metrics.iter().flatten().filter(|v| v.is_finite()) {
            y_max = y_max.max(*v);
        }
        for m in &s.resolved.metrics {
            y_max = y_max.max(target_at(m.target, tick));
        }
    }
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .caption("metric and target", ("sans-serif", 16))
        .x_label_area_size(36)
        .y_label_area_size(64)
        // Headroom above the data for the legend.
        .build_cartesian_2d(0f64..end, 0f64..y_max * 1.4)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("metric value")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, m) in s.resolved.metrics.iter().enumerate() {
        let color = METRIC_COLORS[i % METRIC_COLORS.len()];
        let values = ticks.iter().filter_map(|t| {
            t.metrics[i]
                .filter(|v| v.is_finite())
                .map(|v| (minutes(t.t), v))
        });
        chart
            .draw_series(LineSeries::new(
                present::steps(values, end),
                color.stroke_width(2),
            ))?
            .label(format!("m{i}: {}", m.describe()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        let label = match m.target {
            Target::Value(v) => format!("m{i} target: {}", number(Some(v))),
            Target::AverageValue(v) => {
                format!("m{i} target: {} × current replicas", number(Some(v)))
            }
        };
        let targets = ticks.iter().map(|t| (minutes(t.t), target_at(m.target, t)));
        chart
            .draw_series(LineSeries::new(
                present::steps(targets, end),
                TARGET_COLOR.stroke_width(1),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TARGET_COLOR));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let r_max = ticks
        .iter()
        .map(|t| t.decision.desired_replicas.max(t.target.spec_replicas))
        .max()
        .unwrap_or(1)
        .max(s.resolved.max_replicas) as f64;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .caption("replicas", ("sans-serif", 16))
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, 0f64..r_max * 1.4 + 1.0)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("replicas")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    // Drawn wide to narrow, so that lines on top of each other all stay visible.
    let series: [(&str, ShapeStyle, ReplicaCount); 3] = [
        ("ready", READY_COLOR.mix(0.5).stroke_width(6), |t| {
            t.target.ready_replicas.unwrap_or(t.target.status_replicas)
        }),
        (
            "current (spec.replicas)",
            CURRENT_COLOR.stroke_width(3),
            |t| t.target.spec_replicas,
        ),
        ("desired", DESIRED_COLOR.stroke_width(1), |t| {
            t.decision.desired_replicas
        }),
    ];
    for (name, style, value) in series {
        let points = ticks.iter().map(|t| (minutes(t.t), f64::from(value(t))));
        chart
            .draw_series(LineSeries::new(present::steps(points, end), style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
