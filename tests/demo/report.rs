//! The run's record: one sample per tick, the live table, and the verdict at the end.

use std::{fmt::Write as _, time::Duration};

use serde_json::{Value, json};

use crate::observe::EventView;

/// What the demo saw at one tick.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Real time since the load started.
    pub real: Duration,
    /// Simulated seconds since the load started.
    pub t: f64,
    /// Users on the pool now (each holds one open connection).
    pub users: f64,
    /// The pool total Avi reports (the last completed bucket).
    pub avi: Option<f64>,
    /// The pool total the operator last read (`status.currentMetrics[0].value`).
    pub read: Option<f64>,
    /// `status.desiredReplicas`.
    pub desired: Option<i64>,
    /// The Deployment's `spec.replicas`.
    pub current: i64,
    /// The Deployment's ready replicas.
    pub ready: i64,
    /// The newest Event about the AviAutoscaler.
    pub event: Option<EventView>,
}

/// The load the simulated users put on the pool (avi-sim's seed load).
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Users at the end of the ramp.
    pub max_users: f64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Simulated second the users stop.
    pub stop_at: f64,
}

/// The AviAutoscaler's limits and target, as the demo applies them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `minReplicas`.
    pub min: i64,
    /// `maxReplicas`.
    pub max: i64,
    /// `target.averageValue`: open connections per replica.
    pub average_value: f64,
}

/// `mm:ss` of simulated seconds (`h:mm:ss` from an hour on).
pub fn clock(t: f64) -> String {
    let t = t.max(0.0).round() as u64;
    let (h, m, s) = (t / 3600, (t % 3600) / 60, t % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// A duration in simulated seconds as `13 min 5 s`.
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// A metric value: `-` when absent, whole numbers without decimals.
pub fn number(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) if (v - v.round()).abs() < 0.05 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

fn count(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The live table's header.
pub fn header() -> String {
    format!(
        "{:>6} {:>7} {:>6} {:>9} {:>7} {:>8} {:>8} {:>6}  {}",
        "sim", "real", "users", "Avi conns", "read", "desired", "current", "ready", "last event"
    )
}

/// One table line; `new_event` shows the sample's Event (only new ones are worth a mention).
pub fn row(s: &Sample, note: &str, new_event: bool) -> String {
    let event = s
        .event
        .as_ref()
        .filter(|_| new_event)
        .map(event_text)
        .unwrap_or_default();
    let last = if note.is_empty() {
        event
    } else if event.is_empty() {
        note.to_owned()
    } else {
        format!("{note} | {event}")
    };
    format!(
        "{:>6} {:>6.1}s {:>6} {:>9} {:>7} {:>8} {:>8} {:>6}  {}",
        clock(s.t),
        s.real.as_secs_f64(),
        number(Some(s.users)),
        number(s.avi),
        number(s.read),
        count(s.desired),
        s.current,
        s.ready,
        last
    )
}

/// The one-line status shown (and rewritten) at the bottom of a terminal.
pub fn status_line(s: &Sample, phase: &str) -> String {
    format!(
        "sim {} ({:.1} s real) | {phase} | users {} | Avi {} | read {} | replicas desired {} current {} ready {}",
        clock(s.t),
        s.real.as_secs_f64(),
        number(Some(s.users)),
        number(s.avi),
        number(s.read),
        count(s.desired),
        s.current,
        s.ready
    )
}

/// `Reason: note` of an Event, shortened for a table cell (the AKO pool name is long; the
/// full text is in `kubectl describe`).
pub fn event_text(e: &EventView) -> String {
    let note = e.note.replace(e2e::POOL, "…kuard-ingress");
    let mut text = format!("{}: {note}", e.reason);
    if e.count > 1 {
        let _ = write!(text, " (x{})", e.count);
    }
    const WIDTH: usize = 110;
    if text.chars().count() > WIDTH {
        text = text.chars().take(WIDTH - 1).collect::<String>() + "…";
    }
    text
}

/// What changed between two samples that deserves a table line (users change continuously
/// during the ramp and are left to the status line).
pub fn changed(a: &Sample, b: &Sample) -> bool {
    // Member shares add up to the pool total with float rounding: 1000 may come back as
    // 999.9999999999999 from the next bucket.
    let differ = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() >= 0.05,
        (x, y) => x.is_some() != y.is_some(),
    };
    differ(a.avi, b.avi)
        || differ(a.read, b.read)
        || a.desired != b.desired
        || a.current != b.current
        || a.ready != b.ready
        || a.event != b.event
}

/// A moment of the run, in simulated seconds and real time since the load started.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// Simulated seconds.
    pub t: f64,
    /// Real time.
    pub real: Duration,
}

/// The result of the run and the numbers that back it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Whether the run showed 1 → max → 1.
    pub ok: bool,
    /// Why not, one line per failed check.
    pub failures: Vec<String>,
    /// The replica counts the Deployment went through: its start, then every write.
    pub path: Vec<i64>,
    /// The highest replica count seen.
    pub peak: i64,
    /// The replica count at the end.
    pub last: i64,
    /// When the Deployment first had `max` replicas.
    pub up: Option<Moment>,
    /// When it was back at `min` (and ready) after the load stopped, for good.
    pub down: Option<Moment>,
    /// When the load stopped.
    pub stop: Option<Moment>,
}

impl Verdict {
    /// Judges the samples and the operator's `/scale` writes.
    pub fn judge(samples: &[Sample], writes: &[i64], load: Load, limits: Limits) -> Verdict {
        let mut failures = Vec::new();
        let first = samples.first();
        let start = first.map_or(0, |s| s.current);
        let mut path = vec![start];
        path.extend_from_slice(writes);
        let peak = samples
            .iter()
            .map(|s| s.current)
            .chain(writes.iter().copied())
            .max()
            .unwrap_or(0);
        let last_sample = samples.last();
        let last = last_sample.map_or(0, |s| s.current);
        let moment = |s: &Sample| Moment {
            t: s.t,
            real: s.real,
        };
        let up = samples.iter().find(|s| s.current >= limits.max).map(moment);
        let stop = samples.iter().find(|s| s.t >= load.stop_at).map(moment);
        // The first sample after the load stopped from which the Deployment stays at min.
        let down = samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.t >= load.stop_at)
            .find(|(i, _)| {
                samples[*i..]
                    .iter()
                    .all(|s| s.current == limits.min && s.ready == limits.min)
            })
            .map(|(_, s)| moment(s));

        if start != limits.min {
            failures.push(format!(
                "the Deployment started at {start} replicas, not at minReplicas {}",
                limits.min
            ));
        }
        if peak > limits.max {
            failures.push(format!(
                "the Deployment went to {peak} replicas, above maxReplicas {}",
                limits.max
            ));
        }
        match up {
            None => failures.push(format!(
                "the Deployment never reached {} replicas under the load (peak {peak})",
                limits.max
            )),
            Some(u) if u.t >= load.stop_at => failures.push(format!(
                "the Deployment reached {} replicas only at {}, after the load stopped at {}",
                limits.max,
                clock(u.t),
                clock(load.stop_at)
            )),
            Some(_) => {}
        }
        if stop.is_none() {
            failures.push(format!(
                "the run ended before the load stopped at {}",
                clock(load.stop_at)
            ));
        } else if down.is_none() {
            failures.push(format!(
                "the Deployment was not back at {} ready replica(s) at the end ({} at {}, {} ready)",
                limits.min,
                last,
                clock(last_sample.map_or(0.0, |s| s.t)),
                last_sample.map_or(0, |s| s.ready)
            ));
        }
        if writes.last().is_some_and(|&w| w != limits.min) {
            failures.push(format!(
                "the operator's last scale write was {:?}, not {}",
                writes.last(),
                limits.min
            ));
        }
        Verdict {
            ok: failures.is_empty(),
            failures,
            path,
            peak,
            last,
            up,
            down,
            stop,
        }
    }
}

/// `a → b → c`.
pub fn arrows(path: &[i64]) -> String {
    path.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Everything the summary reports.
pub struct Summary<'a> {
    /// The verdict.
    pub verdict: &'a Verdict,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// The load.
    pub load: Load,
    /// The autoscaler's limits.
    pub limits: Limits,
    /// avi-sim's counters of node 0 (`{endpoint: {requests, byStatus, aborted}}`).
    pub avi_requests: &'a Value,
    /// The demo's whole run, start-up and shutdown included.
    pub wall: Duration,
    /// `(name, pid, how it ended)` of every process the demo started.
    pub processes: &'a [(String, u32, String)],
}

impl Summary<'_> {
    /// Requests the operator made to Avi, and how many did not get a 2xx answer.
    pub fn avi_totals(&self) -> (u64, u64) {
        let mut total = 0;
        let mut failed = 0;
        for c in self
            .avi_requests
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, c)| c)
        {
            total += c["requests"].as_u64().unwrap_or(0);
            for (status, n) in c["byStatus"].as_object().into_iter().flatten() {
                if !status.starts_with('2') {
                    failed += n.as_u64().unwrap_or(0);
                }
            }
            failed += c["aborted"].as_u64().unwrap_or(0);
        }
        (total, failed)
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let v = self.verdict;
        let mut out = String::new();
        let _ = writeln!(out, "Summary");
        let _ = writeln!(
            out,
            "  replicas            {} (the operator's scale writes), peak {}",
            arrows(&v.path),
            v.peak
        );
        let moment = |m: Option<Moment>, from: Option<Moment>| match (m, from) {
            (Some(m), Some(f)) => format!(
                "{} simulated, {:.1} s real",
                span(m.t - f.t),
                m.real.saturating_sub(f.real).as_secs_f64()
            ),
            _ => "never".to_owned(),
        };
        let start = Some(Moment {
            t: 0.0,
            real: Duration::ZERO,
        });
        let _ = writeln!(
            out,
            "  scale up            load start → {} replicas: {}",
            self.limits.max,
            moment(v.up, start)
        );
        let _ = writeln!(
            out,
            "  scale down          load stop ({}) → back to {}: {}",
            clock(self.load.stop_at),
            self.limits.min,
            moment(v.down, v.stop)
        );
        let (total, failed) = self.avi_totals();
        let endpoints: Vec<String> = self
            .avi_requests
            .as_object()
            .into_iter()
            .flatten()
            .map(|(e, c)| format!("{} {e}", c["requests"].as_u64().unwrap_or(0)))
            .collect();
        let _ = writeln!(
            out,
            "  Avi requests        {total} by the operator ({}), {failed} failed",
            endpoints.join(", ")
        );
        let _ = writeln!(
            out,
            "  time                ×{} time scale; {:.0} s wall time, start-up and shutdown included",
            self.time_scale,
            self.wall.as_secs_f64()
        );
        let stopped: Vec<String> = self
            .processes
            .iter()
            .map(|(name, pid, how)| format!("{name} (pid {pid}) {how}"))
            .collect();
        let _ = writeln!(out, "  processes stopped   {}", stopped.join("; "));
        if v.ok {
            let _ = writeln!(out, "  result              OK: {}", arrows(&dedup(&v.path)));
        } else {
            for f in &v.failures {
                let _ = writeln!(out, "  FAILED              {f}");
            }
        }
        out
    }

    /// The summary as JSON (`summary.json`), for scripts and the demo's test.
    pub fn json(&self) -> Value {
        let v = self.verdict;
        let moment = |m: Option<Moment>, from: Option<Moment>| match (m, from) {
            (Some(m), Some(f)) => json!({
                "simulatedSeconds": (m.t - f.t).round(),
                "realSeconds": (m.real.saturating_sub(f.real).as_secs_f64() * 10.0).round() / 10.0,
            }),
            _ => Value::Null,
        };
        let start = Some(Moment {
            t: 0.0,
            real: Duration::ZERO,
        });
        let (total, failed) = self.avi_totals();
        json!({
            "ok": v.ok,
            "failures": v.failures,
            "timeScale": self.time_scale,
            "replicas": v.path,
            "peakReplicas": v.peak,
            "finalReplicas": v.last,
            "loadStopSeconds": self.load.stop_at,
            "scaleUp": moment(v.up, start),
            "scaleDown": moment(v.down, v.stop),
            "aviRequests": {"total": total, "failed": failed, "byEndpoint": self.avi_requests},
            "wallSeconds": (self.wall.as_secs_f64() * 10.0).round() / 10.0,
            "processes": self.processes.iter().map(|(name, pid, how)| json!({"name": name, "pid": pid, "stopped": how})).collect::<Vec<_>>(),
        })
    }
}

/// The path without repeats: `[1, 4, 5, 2, 1]` → `1 → 4 → 5 → 2 → 1`; the headline keeps only
/// the turning points (`1 → 5 → 1`).
fn dedup(path: &[i64]) -> Vec<i64> {
    let mut turns: Vec<i64> = Vec::new();
    for &n in path {
        if turns.last() == Some(&n) {
            continue;
        }
        // Drop a middle point that continues the direction of the previous step.
        if turns.len() >= 2 {
            let (a, b) = (turns[turns.len() - 2], turns[turns.len() - 1]);
            if (b - a).signum() == (n - b).signum() {
                turns.pop();
            }
        }
        turns.push(n);
    }
    turns
}

/// The samples as CSV (`timeline.csv`).
pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "simulated_seconds,real_seconds,users,avi_pool_total,operator_read,desired,current,ready,last_event\n",
    );
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
    for s in samples {
        let event = s
            .event
            .as_ref()
            .map(|e| format!("{}: {}", e.reason, e.note).replace('"', "'"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:.1},{:.3},{:.1},{},{},{},{},{},\"{}\"",
            s.t,
            s.real.as_secs_f64(),
            s.users,
            opt(s.avi),
            opt(s.read),
            s.desired.map_or_else(String::new, |d| d.to_string()),
            s.current,
            s.ready,
            event
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, current: i64, ready: i64) -> Sample {
        Sample {
            real: Duration::from_secs_f64(t / 15.0),
            t,
            users: 0.0,
            avi: None,
            read: None,
            desired: Some(current),
            current,
            ready,
            event: None,
        }
    }

    const LOAD: Load = Load {
        max_users: 1000.0,
        spawn_rate: 5.0,
        stop_at: 1320.0,
    };
    const LIMITS: Limits = Limits {
        min: 1,
        max: 5,
        average_value: 200.0,
    };

    #[test]
    fn a_run_up_to_max_and_back_passes() {
        let samples = [
            sample(0.0, 1, 1),
            sample(300.0, 4, 1),
            sample(330.0, 4, 4),
            sample(600.0, 5, 5),
            sample(1320.0, 5, 5),
            sample(1800.0, 2, 2),
            sample(2100.0, 1, 1),
            sample(2200.0, 1, 1),
        ];
        let v = Verdict::judge(&samples, &[4, 5, 2, 1], LOAD, LIMITS);
        assert!(v.ok, "{:?}", v.failures);
        assert_eq!(v.path, vec![1, 4, 5, 2, 1]);
        assert_eq!(v.up.unwrap().t, 600.0);
        assert_eq!(v.stop.unwrap().t, 1320.0);
        assert_eq!(v.down.unwrap().t, 2100.0);
        assert_eq!(dedup(&v.path), vec![1, 5, 1]);
    }

    #[test]
    fn a_run_that_stays_up_or_never_gets_there_fails_with_reasons() {
        let stuck = [sample(0.0, 1, 1), sample(600.0, 5, 5), sample(2400.0, 2, 2)];
        let v = Verdict::judge(&stuck, &[5, 2], LOAD, LIMITS);
        assert!(!v.ok);
        assert!(
            v.failures.iter().any(|f| f.contains("not back at 1")),
            "{:?}",
            v.failures
        );

        let low = [sample(0.0, 1, 1), sample(600.0, 4, 4), sample(2400.0, 1, 1)];
        let v = Verdict::judge(&low, &[4, 1], LOAD, LIMITS);
        assert!(
            v.failures.iter().any(|f| f.contains("never reached 5")),
            "{:?}",
            v.failures
        );

        // Back at 1 once, then up again: not back "for good".
        let bounce = [
            sample(0.0, 1, 1),
            sample(600.0, 5, 5),
            sample(2000.0, 1, 1),
            sample(2100.0, 2, 2),
        ];
        assert!(!Verdict::judge(&bounce, &[5, 1, 2], LOAD, LIMITS).ok);
    }

    #[test]
    fn a_table_line_needs_a_visible_change() {
        let a = Sample {
            avi: Some(1000.0),
            ..sample(600.0, 5, 5)
        };
        let rounding = Sample {
            avi: Some(999.9999999999999),
            t: 900.0,
            ..a.clone()
        };
        assert!(!changed(&a, &rounding));
        let step = Sample {
            avi: Some(400.0),
            ..rounding.clone()
        };
        assert!(changed(&rounding, &step));
        let gone = Sample {
            avi: None,
            ..step.clone()
        };
        assert!(changed(&step, &gone));
        let ready = Sample {
            ready: 4,
            ..a.clone()
        };
        assert!(changed(&a, &ready));
    }

    #[test]
    fn turning_points_and_times_read_well() {
        assert_eq!(dedup(&[1, 4, 5, 2, 1]), vec![1, 5, 1]);
        assert_eq!(dedup(&[1, 5, 5, 1]), vec![1, 5, 1]);
        assert_eq!(dedup(&[1, 4, 2, 5, 1]), vec![1, 4, 2, 5, 1]);
        assert_eq!(clock(1320.0), "22:00");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(span(785.0), "13 min 5 s");
        assert_eq!(number(Some(666.6667)), "666.7");
        assert_eq!(number(Some(1000.0)), "1000");
    }
}
