//! The scenario file: parsing and validation, with errors that name the field.

use api::{
    Aggregation, AviAutoscalerSpec, AviAutoscalerStatus, EntityType, InvalidSpec, Reason,
    ResolvedSpec,
    k8s::{
        ObjectMeta,
        jiff::{SignedDuration, Timestamp},
    },
};
use load_model::{LoadSpec, Per, Polyline, Traffic};
use serde::Deserialize;

/// The default `startTime`.
const DEFAULT_START: &str = "2026-01-01T00:00:00Z";
/// The longest scenario accepted: a week of virtual time.
const MAX_DURATION_SECONDS: i64 = 7 * 24 * 3600;
/// The longest ready delay accepted: a day.
const MAX_READY_DELAY_SECONDS: i64 = 24 * 3600;
/// The largest replica count a scenario may start with.
const MAX_INITIAL_REPLICAS: i32 = 10_000;

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `autoscaler.metadata.name`, or `scenario` when unset.
    pub name: String,
    /// `autoscaler.metadata.generation`, if set.
    pub generation: Option<i64>,
    /// The spec, checked against the CRD and resolved, as the operator does it.
    pub resolved: ResolvedSpec,
    /// The status to start from: it may carry history.
    pub status: Option<AviAutoscalerStatus>,
    /// The wall-clock time of t = 0.
    pub start: Timestamp,
    /// The target at t = 0.
    pub initial: Initial,
    /// How long a new replica takes to become ready, in seconds.
    pub ready_delay: i64,
    /// How long to simulate, in seconds.
    pub duration: i64,
    /// Whether the target's kind reports readyReplicas (as the operator decides it).
    pub has_ready_replicas: bool,
    /// One model per `spec.metrics` entry.
    pub metrics: Vec<MetricModel>,
}

/// The target's replica counts at t = 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial {
    /// `scale.spec.replicas`.
    pub spec: i32,
    /// Pods that exist.
    pub status: i32,
    /// Pods that are ready.
    pub ready: i32,
}

/// What one metric does over time.
#[derive(Clone, Debug)]
pub enum MetricModel {
    /// What Avi reports, piecewise constant from each point on.
    Series(Vec<Point>),
    /// Users generating connections, turned into Avi's bucket averages.
    Load(Load),
}

/// One point of a series: from `at` seconds on, Avi reports `reading`.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Seconds from the start.
    pub at: i64,
    /// The value, or the failure the poll meets.
    pub reading: Result<f64, Reason>,
}

/// A load model, as the shared load model evaluates it.
#[derive(Clone, Debug)]
pub struct Load {
    /// Users over time.
    pub users: Polyline,
    /// What each user does (its open connections).
    pub traffic: Traffic,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawScenario {
    /// Checked against the CRD before it is read as a [`RawAutoscaler`].
    autoscaler: serde_json::Value,
    start_time: Option<String>,
    initial_replicas: Option<serde_yaml::Value>,
    #[serde(default)]
    ready_delay_seconds: i64,
    duration_seconds: i64,
    metrics: Vec<RawMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAutoscaler {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: AviAutoscalerSpec,
    status: Option<AviAutoscalerStatus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInitial {
    spec: i32,
    status: Option<i32>,
    ready: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    series: Option<Vec<RawPoint>>,
    load: Option<LoadSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    at: i64,
    value: Option<f64>,
    error: Option<String>,
}

/// The failures a series point may simulate.
const FAILURE_REASONS: [Reason; 4] = [
    Reason::FailedGetAviMetric,
    Reason::AviUnreachable,
    Reason::AviAuthFailed,
    Reason::SecretNotFound,
];

impl Scenario {
    /// Parses and validates a scenario. The error names the offending field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawScenario = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let a = autoscaler(&raw.autoscaler)?;
        if let Some(v) = a.api_version.as_deref()
            && v != format!("{}/{}", api::GROUP, api::VERSION)
        {
            return Err(format!(
                "autoscaler.apiVersion: expected {}/{}, got {v}",
                api::GROUP,
                api::VERSION
            ));
        }
        if let Some(k) = a.kind.as_deref()
            && k != "AviAutoscaler"
        {
            return Err(format!("autoscaler.kind: expected AviAutoscaler, got {k}"));
        }
        let resolved = a
            .spec
            .resolve()
            .map_err(|invalid| in_autoscaler(&invalid))?;
        let start: Timestamp = raw
            .start_time
            .as_deref()
            .unwrap_or(DEFAULT_START)
            .parse()
            .map_err(|e| format!("startTime: not an RFC 3339 time ({e})"))?;
        if !(1..=MAX_DURATION_SECONDS).contains(&raw.duration_seconds) {
            return Err(format!(
                "durationSeconds: must be between 1 and {MAX_DURATION_SECONDS}"
            ));
        }
        if start
            .checked_add(SignedDuration::from_secs(raw.duration_seconds))
            .is_err()
        {
            return Err(
                "startTime: too late: the scenario would run past the year 9999".to_owned(),
            );
        }
        if !(0..=MAX_READY_DELAY_SECONDS).contains(&raw.ready_delay_seconds) {
            return Err(format!(
                "readyDelaySeconds: must be between 0 and {MAX_READY_DELAY_SECONDS}"
            ));
        }
        let initial = initial(raw.initial_replicas)?;
        if raw.metrics.len() != a.spec.metrics.len() {
            return Err(format!(
                "metrics: {} entries, but autoscaler.spec.metrics has {}: give one per metric, in the same order",
                raw.metrics.len(),
                a.spec.metrics.len()
            ));
        }
        let metrics = raw
            .metrics
            .into_iter()
            .zip(&resolved.metrics)
            .enumerate()
            .map(|(i, (m, spec))| metric_model(i, m, spec))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario {
            name: a.metadata.name.unwrap_or_else(|| "scenario".to_owned()),
            generation: a.metadata.generation,
            has_ready_replicas: crate::target::reports_ready_replicas(&a.spec.scale_target_ref),
            resolved,
            status: a.status,
            start,
            initial,
            ready_delay: raw.ready_delay_seconds,
            duration: raw.duration_seconds,
            metrics,
        })
    }
}

/// The scenario's AviAutoscaler, checked against the CRD as the operator checks the objects it
/// reads, with the schema's defaults applied.
fn autoscaler(value: &serde_json::Value) -> Result<RawAutoscaler, String> {
    // apiVersion and kind are checked with their own messages below; the schema does not
    // cover them.
    let stored = crate::validation::admit(value).map_err(|invalid| in_autoscaler(&invalid))?;
    serde_json::from_value(stored).map_err(|e| format!("autoscaler: {e}"))
}

/// The fields of an invalid spec, named from the scenario's top level.
fn in_autoscaler(invalid: &InvalidSpec) -> String {
    invalid
        .0
        .iter()
        .map(|v| format!("autoscaler.{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn initial(value: Option<serde_yaml::Value>) -> Result<Initial, String> {
    let check = |field: &str, n: i32| {
        if (0..=MAX_INITIAL_REPLICAS).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "initialReplicas{field}: must be between 0 and {MAX_INITIAL_REPLICAS}"
            ))
        }
    };
    let Some(value) = value else {
        return Ok(Initial {
            spec: 1,
            status: 1,
            ready: 1,
        });
    };
    if let Some(n) = value.as_i64() {
        let n = check("", i32::try_from(n).unwrap_or(-1))?;
        return Ok(Initial {
            spec: n,
            status: n,
            ready: n,
        });
    }
    let raw: RawInitial = serde_yaml::from_value(value).map_err(|e| {
        format!("initialReplicas: expected a replica count or {{spec, status, ready}} ({e})")
    })?;
    let spec = check(".spec", raw.spec)?;
    let status = check(".status", raw.status.unwrap_or(spec))?;
    let ready = check(".ready", raw.ready.unwrap_or(status))?;
    if ready > status {
        return Err("initialReplicas.ready: must not exceed status (ready pods exist)".to_owned());
    }
    Ok(Initial {
        spec,
        status,
        ready,
    })
}

fn metric_model(i: usize, m: RawMetric, spec: &api::ResolvedMetric) -> Result<MetricModel, String> {
    let field = format!("metrics[{i}]");
    match (m.series, m.load) {
        (Some(points), None) => series(&field, points).map(MetricModel::Series),
        (None, Some(load)) => self::load(&field, load, spec).map(MetricModel::Load),
        _ => Err(format!("{field}: set exactly one of series and load")),
    }
}

fn series(field: &str, raw: Vec<RawPoint>) -> Result<Vec<Point>, String> {
    if raw.is_empty() {
        return Err(format!("{field}.series: must have at least one point"));
    }
    let mut points = Vec::with_capacity(raw.len());
    for (j, p) in raw.into_iter().enumerate() {
        let here = format!("{field}.series[{j}]");
        if j == 0 && p.at != 0 {
            return Err(format!("{here}.at: the first point must be at 0"));
        }
        if let Some(prev) = points.last().map(|p: &Point| p.at)
            && p.at <= prev
        {
            return Err(format!(
                "{here}.at: points must be in increasing order of time ({} after {prev})",
                p.at
            ));
        }
        let reading = match (p.value, p.error) {
            // NaN, infinite and negative values are allowed: they show what the engine does
            // with bad data (it treats them as failed reads).
            (Some(v), None) => Ok(v),
            (None, Some(reason)) => Err(Reason::parse(&reason)
                .filter(|r| FAILURE_REASONS.contains(r))
                .ok_or_else(|| {
                    format!(
                        "{here}.error: must be one of {}",
                        FAILURE_REASONS.map(Reason::as_str).join(", ")
                    )
                })?),
            _ => return Err(format!("{here}: set exactly one of value and error")),
        };
        points.push(Point { at: p.at, reading });
    }
    Ok(points)
}

fn load(field: &str, raw: LoadSpec, spec: &api::ResolvedMetric) -> Result<Load, String> {
    let here = format!("{field}.load");
    raw.validate()
        .map_err(|e| format!("{here}.{}: {}", e.field, e.message))?;
    // Scenario files have always stated how fast a ramp's users arrive.
    if raw.series.is_none() && raw.spawn_rate.is_none() {
        return Err(format!(
            "{here}.spawnRate: a ramp needs spawnRate (users started per second)"
        ));
    }
    // The model's value must be what the metric reads.
    match (spec.entity.kind, spec.aggregation, raw.per) {
        (EntityType::Pool, Some(Aggregation::Sum), Per::Member) => {
            return Err(format!(
                "{here}.per: member gives the value per pool member, but the metric's aggregation is Sum (the pool total); use per: pool"
            ));
        }
        (EntityType::Pool, Some(Aggregation::Average | Aggregation::Max), Per::Pool) => {
            return Err(format!(
                "{here}.per: pool gives the pool total, but the metric's aggregation reads a value per member; use per: member"
            ));
        }
        (EntityType::VirtualService | EntityType::ServiceEngine, _, Per::Member) => {
            return Err(format!(
                "{here}.per: member applies to pools only: virtual services and service engines answer one series"
            ));
        }
        _ => {}
    }
    Ok(Load {
        users: raw.users(),
        traffic: raw.traffic(),
    })
}
