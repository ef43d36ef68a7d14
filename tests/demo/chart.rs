//! The picture of a run: load and open connections on top, replicas below, over simulated
//! minutes (plotters, SVG backend, as `avi-autoscaler simulate` draws its charts).

use plotters::{
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use crate::report::{Limits, Load, Sample, Verdict, arrows, clock, span};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 800;
const USERS_COLOR: RGBColor = RGBColor(150, 150, 150);
const AVI_COLOR: RGBColor = RGBColor(31, 119, 180);
const READ_COLOR: RGBColor = RGBColor(255, 127, 14);
const TARGET_COLOR: RGBColor = RGBColor(214, 39, 40);
const CURRENT_COLOR: RGBColor = RGBColor(31, 119, 180);
const DESIRED_COLOR: RGBColor = RGBColor(255, 127, 14);
const READY_COLOR: RGBColor = RGBColor(44, 160, 44);
const MARK_COLOR: RGBColor = RGBColor(90, 90, 90);
const FONT: &str = "sans-serif";

/// What the chart shows.
pub struct Chart<'a> {
    /// One sample per tick.
    pub samples: &'a [Sample],
    /// The load.
    pub load: Load,
    /// The autoscaler's limits and target.
    pub limits: Limits,
    /// The verdict (for the markers and the footer).
    pub verdict: &'a Verdict,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Requests the operator made to Avi.
    pub avi_requests: u64,
    /// The scale-down stabilization window, simulated seconds.
    pub scale_down_window: f64,
}

/// Keeps only the points where the value changes (and the last), so the SVG stays small.
fn changes(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for p in points {
        if out.last().is_none_or(|l| l.1 != p.1) {
            out.push(p);
        }
    }
    out
}

impl Chart<'_> {
    /// The stretches after the load stopped in which the operator's reading proposed fewer
    /// replicas than the Deployment had (ceil(read / averageValue), at least minReplicas), so
    /// the scale-down stabilization window held the count up: (start, end) in simulated seconds.
    fn held_down(&self) -> Vec<(f64, f64)> {
        let mut runs: Vec<(f64, f64)> = Vec::new();
        let mut start: Option<f64> = None;
        for s in self.samples.iter().filter(|s| s.t >= self.load.stop_at) {
            let proposal = s
                .read
                .map(|r| ((r / self.limits.average_value).ceil() as i64).max(self.limits.min));
            let held = proposal.is_some_and(|p| p < s.current);
            match (held, start) {
                (true, None) => start = Some(s.t),
                (false, Some(a)) => {
                    runs.push((a, s.t));
                    start = None;
                }
                _ => {}
            }
        }
        if let (Some(a), Some(last)) = (start, self.samples.last()) {
            runs.push((a, last.t));
        }
        runs
    }

    /// The SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let mut buffer = String::new();
        self.draw(&mut buffer).map_err(|e| e.to_string())?;
        Ok(buffer)
    }

    fn draw(&self, buffer: &mut String) -> Result<(), Box<dyn std::error::Error>> {
        let minutes = |t: f64| t / 60.0;
        let last_t = self.samples.last().map_or(60.0, |s| s.t);
        let end = (minutes(last_t)).ceil().max(1.0);
        let stop = minutes(self.load.stop_at);

        let root = SVGBackend::with_string(buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            "avi-autoscaler: the seed experiment, end to end",
            (FONT, 24).into_font().style(FontStyle::Bold),
        )?;
        let (header, rest) = root.split_vertically(28);
        let real = self.samples.last().map_or(0.0, |s| s.real.as_secs_f64());
        header.draw_text(
            &format!(
                "avi-autoscaler run · kube-standin (Kubernetes API) · avi-sim (Avi controller over HTTPS) · \
                 time ×{}: {} simulated in {:.0} s",
                self.time_scale,
                span(last_t),
                real
            ),
            &(FONT, 15)
                .into_font()
                .color(&MARK_COLOR)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (WIDTH as i32 / 2, 2),
        )?;
        let footer_height = 34;
        let (charts, footer) = rest.split_vertically(rest.dim_in_pixel().1 - footer_height);
        let (top, bottom) = charts.split_vertically(charts.dim_in_pixel().1 * 55 / 100);

        // Open connections.
        let capacity = self.limits.average_value * self.limits.max as f64;
        let mut y_max = self.load.max_users.max(capacity);
        for s in self.samples {
            for v in [Some(s.users), s.avi, s.read].into_iter().flatten() {
                y_max = y_max.max(v);
            }
        }
        let y_max = y_max * 1.6;
        let mut chart = ChartBuilder::on(&top)
            .margin_left(16)
            .margin_right(28)
            .margin_top(8)
            .caption(
                "load on the kuard pool: open connections",
                (FONT, 17).into_font(),
            )
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..end, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("simulated minutes")
            .y_desc("open connections")
            .x_labels(((end / 5.0).ceil() as usize + 1).max(2))
            .y_labels(8)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let users = self.samples.iter().map(|s| (minutes(s.t), s.users));
        chart
            .draw_series(LineSeries::new(users, USERS_COLOR.stroke_width(1)))?
            .label(format!(
                "simulated users: {} spawning at {}/s, one open connection each",
                self.load.max_users, self.load.spawn_rate
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], USERS_COLOR));
        let target = changes(
            self.samples
                .iter()
                .map(|s| (minutes(s.t), self.limits.average_value * s.current as f64)),
        );
        chart
            .draw_series(LineSeries::new(
                present::steps(target, end),
                TARGET_COLOR.mix(0.8).stroke_width(1),
            ))?
            .label(format!(
                "target: {} per replica × current replicas",
                self.limits.average_value
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], TARGET_COLOR));
        let avi = changes(
            self.samples
                .iter()
                .filter_map(|s| Some((minutes(s.t), s.avi?))),
        );
        chart
            .draw_series(LineSeries::new(
                present::steps(avi, end),
                AVI_COLOR.stroke_width(3),
            ))?
            .label("Avi reports: pool total, average of the last 5-minute bucket")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], AVI_COLOR.stroke_width(3))
            });
        let read = changes(
            self.samples
                .iter()
                .filter_map(|s| Some((minutes(s.t), s.read?))),
        );
        chart
            .draw_series(DashedLineSeries::new(
                present::steps(read, end),
                6,
                4,
                READ_COLOR.stroke_width(2),
            ))?
            .label("read by the operator (status.currentMetrics)")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], READ_COLOR.stroke_width(2))
            });
        // The load's start and stop.
        let marker = |x: f64, top: f64| {
            DashedLineSeries::new(vec![(x, 0.0), (x, top)], 5, 5, MARK_COLOR.stroke_width(1))
        };
        let note = |text: String, at: (f64, f64), hpos: HPos| {
            Text::new(
                text,
                at,
                (FONT, 13)
                    .into_font()
                    .color(&MARK_COLOR)
                    .pos(Pos::new(hpos, VPos::Bottom)),
            )
        };
        chart.draw_series(marker(stop, y_max))?;
        chart.draw_series([
            note(
                " load starts".to_owned(),
                (0.0, self.load.max_users * 1.04),
                HPos::Left,
            ),
            note(
                format!(" load stops at {}", clock(self.load.stop_at)),
                (stop, self.load.max_users * 1.04),
                HPos::Left,
            ),
        ])?;
        // The legend last, so that its box covers the marker.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 13))
            .draw()?;

        // Replicas.
        let r_max = self.limits.max as f64 + 3.0;
        let held = self.held_down();
        let mut chart = ChartBuilder::on(&bottom)
            .margin_left(16)
            .margin_right(28)
            .margin_top(4)
            .caption("kuard-deployment replicas", (FONT, 17).into_font())
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..end, 0f64..r_max)?;
        chart
            .configure_mesh()
            .x_desc("simulated minutes")
            .y_desc("replicas")
            .x_labels(((end / 5.0).ceil() as usize + 1).max(2))
            .y_labels(r_max as usize + 1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for &(a, b) in &held {
            chart.draw_series([Rectangle::new(
                [
                    (minutes(a), 0.0),
                    (minutes(b), self.limits.max as f64 + 0.6),
                ],
                MARK_COLOR.mix(0.12).filled(),
            )])?;
        }
        if let (Some(first), Some(last)) = (held.first(), held.last()) {
            chart.draw_series([note(
                format!(
                    "scale-down held by the {} stabilization window",
                    span(self.scale_down_window)
                ),
                (
                    (minutes(first.0) + minutes(last.1)) / 2.0,
                    self.limits.max as f64 + 0.7,
                ),
                HPos::Center,
            )])?;
        }
        let points = |value: fn(&Sample) -> Option<f64>| {
            present::steps(
                changes(
                    self.samples
                        .iter()
                        .filter_map(|s| Some((minutes(s.t), value(s)?))),
                ),
                end,
            )
        };
        // Drawn wide to narrow, so that lines on top of each other all stay visible.
        let ready_style = READY_COLOR.mix(0.45).stroke_width(8);
        chart
            .draw_series(LineSeries::new(
                points(|s| Some(s.ready as f64)),
                ready_style,
            ))?
            .label("ready (pods serving, pool members)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ready_style));
        let current_style = CURRENT_COLOR.stroke_width(3);
        chart
            .draw_series(LineSeries::new(
                points(|s| Some(s.current as f64)),
                current_style,
            ))?
            .label("current (spec.replicas, set by the operator)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], current_style));
        let desired_style = DESIRED_COLOR.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                points(|s| s.desired.map(|d| d as f64)),
                6,
                4,
                desired_style,
            ))?
            .label("desired (status.desiredReplicas)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], desired_style));
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, self.limits.max as f64), (end, self.limits.max as f64)],
            2,
            4,
            TARGET_COLOR.mix(0.6).stroke_width(1),
        ))?;
        chart.draw_series([note(
            format!("maxReplicas {}", self.limits.max),
            (0.1, self.limits.max as f64 + 0.1),
            HPos::Left,
        )])?;
        chart.draw_series(marker(stop, r_max))?;
        let v = self.verdict;
        let point = |x: f64, y: f64| Circle::new((x, y), 5, MARK_COLOR.filled());
        if let Some(up) = v.up {
            chart.draw_series([point(minutes(up.t), self.limits.max as f64)])?;
            chart.draw_series([note(
                format!(
                    "{} replicas {} after the load started",
                    self.limits.max,
                    span(up.t)
                ),
                // Below the line, right of the point: the space above holds the legend.
                (minutes(up.t) + 0.8, self.limits.max as f64 - 0.8),
                HPos::Left,
            )])?;
        }
        if let (Some(down), Some(stop_at)) = (v.down, v.stop) {
            chart.draw_series([point(minutes(down.t), self.limits.min as f64)])?;
            // Near the right edge the text ends at the point instead of centring on it.
            let hpos = if minutes(down.t) > end * 0.7 {
                HPos::Right
            } else {
                HPos::Center
            };
            chart.draw_series([note(
                format!(
                    "back to {} {} after the load stopped ",
                    self.limits.min,
                    span(down.t - stop_at.t)
                ),
                (minutes(down.t), self.limits.min as f64 + 0.3),
                hpos,
            )])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 13))
            .draw()?;

        let result = if v.ok { "" } else { "FAILED: " };
        footer.draw_text(
            &format!(
                "{result}replicas {} · peak {} · {} Avi requests by the operator · minReplicas {}, maxReplicas {}, \
                 AverageValue {} per replica",
                arrows(&v.path),
                v.peak,
                self.avi_requests,
                self.limits.min,
                self.limits.max,
                self.limits.average_value
            ),
            &(FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
            (WIDTH as i32 / 2, footer_height as i32 / 2),
        )?;
        root.present()?;
        Ok(())
    }
}
