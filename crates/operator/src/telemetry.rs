//! Logs and Prometheus metrics.
//!
//! Every metric carries the `avi_autoscaler_` prefix; durations are in seconds. `docs/metrics.md`
//! documents each one with its labels and cardinality.
//!
//! Per-object series are bounded: one series per AviAutoscaler (per metric entry, per condition
//! type) and per AviController, each dropped when its object is deleted.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use crate::cli::LogFormat;

/// Sets up `tracing`: `RUST_LOG` wins over `level`; `format` picks text or JSON lines.
pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only for a person at a terminal, never in a log file or a collector's pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second initialisation (only possible in tests) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Outcome of one reconcile.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReconcileResult {
    /// The reconcile ran to the end (whatever it decided).
    Success,
    /// The reconcile failed and will be retried with backoff.
    Error,
    /// Skipped: this replica does not hold the leader lease.
    NotLeader,
    /// Put off for a moment: enough reconciles already wait on the same Avi controller.
    Deferred,
    /// Skipped: while the shard count changes, an older shard Lease still claims the object.
    ShardWait,
}

impl ReconcileResult {
    /// The label value: `success`, `error`, `not_leader`, `deferred` or `shard_wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::NotLeader => "not_leader",
            ReconcileResult::Deferred => "deferred",
            ReconcileResult::ShardWait => "shard_wait",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AviLabels {
    endpoint: String,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeLabels {
    verb: &'static str,
    resource: &'static str,
    outcome: &'static str,
}

/// Labels that identify one AviAutoscaler.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Namespace of the AviAutoscaler.
    pub namespace: Arc<str>,
    /// Name of the AviAutoscaler.
    pub name: Arc<str>,
}

impl ObjectLabels {
    /// The labels of the AviAutoscaler `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectLabels {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

// The per-object label sets share one allocation of the namespace and the name (`Arc<str>`),
// and the values from a closed set (condition types, statuses, reasons) are static strings:
// at 10,000 objects, owned copies of them in each of the nine series of an object made up
// most of the memory of `/metrics`.

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    namespace: Arc<str>,
    name: Arc<str>,
    entity: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    namespace: Arc<str>,
    name: Arc<str>,
    entity: String,
    metric: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    namespace: Arc<str>,
    name: Arc<str>,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: Arc<str>,
    name: Arc<str>,
    r#type: Cow<'static, str>,
    status: Cow<'static, str>,
    reason: Cow<'static, str>,
}

/// `value` as a static string when it is one of `known`, else an owned copy.
fn intern(value: &str, known: impl IntoIterator<Item = &'static str>) -> Cow<'static, str> {
    known
        .into_iter()
        .find(|k| *k == value)
        .map_or_else(|| Cow::Owned(value.to_owned()), Cow::Borrowed)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    name: String,
}

/// The per-object series that exist for one AviAutoscaler, so that they can be removed with it.
/// An object has a handful of each, so vectors: a hash table per object cost more memory than
/// the series themselves at 10,000 objects.
#[derive(Debug, Default)]
struct ObjectSeries {
    /// `(entity, metric)` of each `metric_value` series.
    metrics: Vec<(String, String)>,
    /// The `metric_target` series.
    targets: Vec<TargetLabels>,
    /// The one `condition` series of each condition type.
    conditions: Vec<ConditionLabels>,
}

/// The operator's metrics, registered in one registry.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    reconcile_failures: Family<CategoryLabels, Counter>,
    avi_requests: Family<AviLabels, Counter>,
    avi_request_duration: Family<AviLabels, Histogram>,
    kube_requests: Family<KubeLabels, Counter>,
    metric_value: Family<MetricLabels, Gauge<f64, AtomicU64>>,
    metric_target: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    desired_replicas: Family<ObjectLabels, Gauge>,
    current_replicas: Family<ObjectLabels, Gauge>,
    ready_replicas: Family<ObjectLabels, Gauge>,
    reconciles_in_flight: Gauge,
    objects_watched: Gauge,
    shard_objects: Family<ShardLabels, Gauge>,
    resident_memory: Gauge,
    scale_events: Family<ScaleLabels, Counter>,
    ready: Family<ObjectLabels, Gauge>,
    condition: Family<ConditionLabels, Gauge>,
    controller_ready: Family<ControllerLabels, Gauge>,
    leader: Gauge,
    circuit_open: Family<EndpointLabels, Gauge>,
    /// Which per-object series exist (prometheus-client families cannot be iterated).
    objects: Mutex<HashMap<ObjectLabels, ObjectSeries>>,
    /// The size of the last `/metrics` answer.
    last_scrape_len: std::sync::atomic::AtomicUsize,
}

fn duration_histogram() -> Histogram {
    // 1 ms to ~16 s: covers a cached poll as well as a request that times out.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("avi_autoscaler");
        let m = Metrics {
            reconciliations: Family::default(),
            reconcile_duration: duration_histogram(),
            reconcile_failures: Family::default(),
            avi_requests: Family::default(),
            avi_request_duration: Family::new_with_constructor(duration_histogram),
            kube_requests: Family::default(),
            metric_value: Family::default(),
            metric_target: Family::default(),
            desired_replicas: Family::default(),
            current_replicas: Family::default(),
            ready_replicas: Family::default(),
            reconciles_in_flight: Gauge::default(),
            objects_watched: Gauge::default(),
            shard_objects: Family::default(),
            resident_memory: Gauge::default(),
            scale_events: Family::default(),
            ready: Family::default(),
            condition: Family::default(),
            controller_ready: Family::default(),
            leader: Gauge::default(),
            circuit_open: Family::default(),
            objects: Mutex::default(),
            last_scrape_len: std::sync::atomic::AtomicUsize::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "reconciliations",
            "Reconciles of AviAutoscalers, by result (success, error, not_leader)",
            m.reconciliations.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took, Avi polling included",
            Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that could not complete, by error category",
            m.reconcile_failures.clone(),
        );
        registry.register(
            "avi_requests",
            "HTTP requests to Avi controllers, by controller endpoint, kind and outcome",
            m.avi_requests.clone(),
        );
        registry.register_with_unit(
            "avi_request_duration",
            "Latency of HTTP requests to Avi controllers, by controller endpoint, kind and outcome",
            Unit::Seconds,
            m.avi_request_duration.clone(),
        );
        registry.register(
            "kube_requests",
            "Kubernetes API requests the reconciler made, by verb, resource and outcome",
            m.kube_requests.clone(),
        );
        registry.register(
            "metric_value",
            "Last value read per AviAutoscaler metric (after aggregation)",
            m.metric_value.clone(),
        );
        registry.register(
            "metric_target",
            "Target of each AviAutoscaler metric, by target type (Value, AverageValue per replica)",
            m.metric_target.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replica count each AviAutoscaler decided on",
            m.desired_replicas.clone(),
        );
        registry.register(
            "current_replicas",
            "Replica count of each AviAutoscaler's target at the last reconcile",
            m.current_replicas.clone(),
        );
        registry.register(
            "ready_replicas",
            "Ready replicas of each AviAutoscaler's target at the last reconcile",
            m.ready_replicas.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now; at --concurrency, due reconciles wait",
            m.reconciles_in_flight.clone(),
        );
        registry.register(
            "objects",
            "AviAutoscalers in the operator's watch caches",
            m.objects_watched.clone(),
        );
        registry.register(
            "shard_objects",
            "AviAutoscalers this process's shard manages (label shard: its --shard-index)",
            m.shard_objects.clone(),
        );
        registry.register_with_unit(
            "resident_memory",
            "Resident memory of the operator process",
            Unit::Bytes,
            m.resident_memory.clone(),
        );
        registry.register(
            "scale_events",
            "Changes of a target's replica count, by direction",
            m.scale_events.clone(),
        );
        registry.register(
            "ready",
            "1 while an AviAutoscaler's Ready condition is True, 0 otherwise",
            m.ready.clone(),
        );
        registry.register(
            "condition",
            "1 for the current status and reason of each condition type of each AviAutoscaler",
            m.condition.clone(),
        );
        registry.register(
            "avicontroller_ready",
            "1 while an AviController's Ready condition is True, 0 otherwise",
            m.controller_ready.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or runs without leader election)",
            m.leader.clone(),
        );
        registry.register(
            "avi_circuit_open",
            "1 while the circuit breaker of an Avi controller endpoint is open (the endpoint is not asked)",
            m.circuit_open.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        // Read at scrape time, so the value is as fresh as the scrape.
        if let Some(usage) = memory_stats::memory_stats() {
            self.resident_memory
                .set(i64::try_from(usage.physical_mem).unwrap_or(i64::MAX));
        }
        // Sized like the last scrape, so a large one is not copied through every doubling.
        let mut out = String::with_capacity(
            self.last_scrape_len
                .load(std::sync::atomic::Ordering::Relaxed)
                * 9
                / 8,
        );
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        self.last_scrape_len
            .store(out.len(), std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// Counts a reconcile as running until the returned guard is dropped.
    pub fn reconcile_started(&self) -> InFlight<'_> {
        self.reconciles_in_flight.inc();
        InFlight(&self.reconciles_in_flight)
    }

    /// Records how many AviAutoscalers the watches hold.
    pub fn set_objects(&self, count: usize) {
        self.objects_watched
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets how many AviAutoscalers belong to `shard` (and match `--selector`).
    pub fn set_shard_objects(&self, shard: crate::shard::Shard, count: usize) {
        self.shard_objects
            .get_or_create(&ShardLabels {
                shard: shard.index.to_string(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts a reconcile and its duration.
    pub fn reconciled(&self, result: ReconcileResult, seconds: f64) {
        self.reconciliations
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// Counts a reconcile failure by category.
    pub fn reconcile_failed(&self, category: &'static str) {
        self.reconcile_failures
            .get_or_create(&CategoryLabels { category })
            .inc();
    }

    /// Counts one Avi HTTP request by controller endpoint (its URL as configured, one per
    /// configured endpoint), kind (`login`, `metrics`, `inventory`, `metric_catalog`, `version`) and outcome (`ok` or
    /// an error category).
    pub fn avi_request(
        &self,
        endpoint: &url::Url,
        kind: &'static str,
        outcome: &'static str,
        seconds: f64,
    ) {
        let labels = AviLabels {
            endpoint: endpoint.as_str().to_owned(),
            kind,
            outcome,
        };
        self.avi_requests.get_or_create(&labels).inc();
        self.avi_request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Counts one Kubernetes API request of the reconciler.
    pub fn kube_request(&self, verb: &'static str, resource: &'static str, ok: bool) {
        let outcome = if ok { "success" } else { "error" };
        self.kube_requests
            .get_or_create(&KubeLabels {
                verb,
                resource,
                outcome,
            })
            .inc();
    }

    /// Records the latest metric value of an AviAutoscaler (or forgets it when `None`).
    pub fn set_metric_value(
        &self,
        object: &ObjectLabels,
        entity: &str,
        metric: &str,
        value: Option<f64>,
    ) {
        let labels = MetricLabels {
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            entity: entity.to_owned(),
            metric: metric.to_owned(),
        };
        let mut objects = self
            .objects
            .lock()
            .expect("metrics bookkeeping lock poisoned");
        let series = &mut objects.entry(object.clone()).or_default().metrics;
        let known = series
            .iter()
            .position(|(e, m)| *e == labels.entity && *m == labels.metric);
        match (value, known) {
            (Some(v), known) => {
                self.metric_value.get_or_create(&labels).set(v);
                if known.is_none() {
                    series.push((labels.entity, labels.metric));
                }
            }
            (None, known) => {
                self.metric_value.remove(&labels);
                if let Some(i) = known {
                    series.swap_remove(i);
                }
            }
        }
    }

    /// Records the target of one metric of an AviAutoscaler.
    pub fn set_metric_target(
        &self,
        object: &ObjectLabels,
        entity: &str,
        metric: &str,
        target: api::resolved::Target,
    ) {
        let labels = TargetLabels {
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            entity: entity.to_owned(),
            metric: metric.to_owned(),
            r#type: match target {
                api::resolved::Target::Value(_) => "Value",
                api::resolved::Target::AverageValue(_) => "AverageValue",
            },
        };
        let mut objects = self
            .objects
            .lock()
            .expect("metrics bookkeeping lock poisoned");
        let targets = &mut objects.entry(object.clone()).or_default().targets;
        // A target whose type changed leaves no stale series of the old type behind.
        targets.retain(|old| {
            let stale = old.entity == labels.entity
                && old.metric == labels.metric
                && old.r#type != labels.r#type;
            if stale {
                self.metric_target.remove(old);
            }
            !stale
        });
        self.metric_target
            .get_or_create(&labels)
            .set(target.amount());
        if !targets.contains(&labels) {
            targets.push(labels);
        }
    }

    /// Records the ready replicas of an AviAutoscaler's target.
    pub fn set_ready_replicas(&self, object: &ObjectLabels, ready: i32) {
        self.objects
            .lock()
            .expect("metrics bookkeeping lock poisoned")
            .entry(object.clone())
            .or_default();
        self.ready_replicas
            .get_or_create(object)
            .set(i64::from(ready));
    }

    /// Records current and desired replicas of an AviAutoscaler.
    pub fn set_replicas(&self, object: &ObjectLabels, current: i32, desired: i32) {
        self.objects
            .lock()
            .expect("metrics bookkeeping lock poisoned")
            .entry(object.clone())
            .or_default();
        self.current_replicas
            .get_or_create(object)
            .set(i64::from(current));
        self.desired_replicas
            .get_or_create(object)
            .set(i64::from(desired));
    }

    /// Records the conditions of an AviAutoscaler: one `condition` series per type (the previous
    /// series of a type is removed when its status or reason changes) and `ready` from the
    /// `Ready` condition (0 while it is missing or not `True`).
    pub fn set_conditions(&self, object: &ObjectLabels, conditions: &[api::k8s::Condition]) {
        let mut objects = self
            .objects
            .lock()
            .expect("metrics bookkeeping lock poisoned");
        let current = &mut objects.entry(object.clone()).or_default().conditions;
        let mut ready = false;
        for c in conditions {
            let labels = ConditionLabels {
                namespace: object.namespace.clone(),
                name: object.name.clone(),
                r#type: intern(&c.type_, api::ConditionType::ALL.iter().map(|t| t.as_str())),
                status: intern(&c.status, ["True", "False", "Unknown"]),
                reason: intern(&c.reason, api::Reason::ALL.iter().map(|r| r.as_str())),
            };
            if c.type_ == api::ConditionType::Ready.as_str() {
                ready = c.status == "True";
            }
            self.condition.get_or_create(&labels).set(1);
            match current.iter_mut().find(|old| old.r#type == labels.r#type) {
                Some(old) if *old != labels => {
                    self.condition.remove(old);
                    *old = labels;
                }
                Some(_) => {}
                None => current.push(labels),
            }
        }
        current.retain(|labels| {
            let keep = conditions.iter().any(|c| c.type_ == labels.r#type);
            if !keep {
                self.condition.remove(labels);
            }
            keep
        });
        self.ready.get_or_create(object).set(i64::from(ready));
    }

    /// Records whether the AviController `name` is Ready. The AviController reconciler calls it
    /// after each probe; [`Metrics::forget_controller`] removes the series when the object goes.
    pub fn set_controller_ready(&self, name: &str, ready: bool) {
        self.controller_ready
            .get_or_create(&ControllerLabels {
                name: name.to_owned(),
            })
            .set(i64::from(ready));
    }

    /// Removes the series of a deleted AviController.
    pub fn forget_controller(&self, name: &str) {
        self.controller_ready.remove(&ControllerLabels {
            name: name.to_owned(),
        });
    }

    /// Counts a change of a target's replica count.
    pub fn scaled(&self, object: &ObjectLabels, from: i32, to: i32) {
        let direction = if to > from { "up" } else { "down" };
        self.scale_events
            .get_or_create(&ScaleLabels {
                namespace: object.namespace.clone(),
                name: object.name.clone(),
                direction,
            })
            .inc();
    }

    /// Records whether the circuit breaker of Avi endpoint `endpoint` is open.
    pub fn set_circuit_open(&self, endpoint: &str, open: bool) {
        self.circuit_open
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .set(i64::from(open));
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Drops the per-object series of AviAutoscalers that no longer exist, so deleted objects do
    /// not linger in `/metrics`.
    pub fn retain_objects(&self, exists: impl Fn(&str, &str) -> bool) {
        let mut objects = self
            .objects
            .lock()
            .expect("metrics bookkeeping lock poisoned");
        objects.retain(|object, series| {
            if exists(&object.namespace, &object.name) {
                return true;
            }
            self.current_replicas.remove(object);
            self.desired_replicas.remove(object);
            for direction in ["up", "down"] {
                self.scale_events.remove(&ScaleLabels {
                    namespace: object.namespace.clone(),
                    name: object.name.clone(),
                    direction,
                });
            }
            self.ready.remove(object);
            self.ready_replicas.remove(object);
            for labels in series.targets.drain(..) {
                self.metric_target.remove(&labels);
            }
            for labels in series.conditions.drain(..) {
                self.condition.remove(&labels);
            }
            for (entity, metric) in series.metrics.drain(..) {
                self.metric_value.remove(&MetricLabels {
                    namespace: object.namespace.clone(),
                    name: object.name.clone(),
                    entity,
                    metric,
                });
            }
            false
        });
    }
}

/// Marks one reconcile as running; dropping it (on any path out of the reconcile) ends it.
#[must_use = "the reconcile counts as running only while the guard lives"]
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::k8s::{Condition, Time};

    fn object(name: &str) -> ObjectLabels {
        ObjectLabels {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn condition(kind: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Time(api::k8s::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    fn lines_of(m: &Metrics, metric: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(&format!("avi_autoscaler_{metric}{{")))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn one_condition_series_per_type_and_ready_follows_the_ready_condition() {
        let m = Metrics::new();
        let web = object("web");
        m.set_conditions(
            &web,
            &[
                condition("Ready", "False", "FailedGetAviMetric"),
                condition("ScalingLimited", "False", "DesiredWithinRange"),
            ],
        );
        assert_eq!(
            lines_of(&m, "ready"),
            ["avi_autoscaler_ready{namespace=\"shop\",name=\"web\"} 0"]
        );
        m.set_conditions(
            &web,
            &[
                condition("Ready", "True", "ValidMetricFound"),
                condition("ScalingLimited", "True", "TooManyReplicas"),
            ],
        );
        let mut conditions = lines_of(&m, "condition");
        conditions.sort();
        assert_eq!(
            conditions,
            [
                "avi_autoscaler_condition{namespace=\"shop\",name=\"web\",type=\"Ready\",status=\"True\",reason=\"ValidMetricFound\"} 1",
                "avi_autoscaler_condition{namespace=\"shop\",name=\"web\",type=\"ScalingLimited\",status=\"True\",reason=\"TooManyReplicas\"} 1",
            ]
        );
        assert_eq!(
            lines_of(&m, "ready"),
            ["avi_autoscaler_ready{namespace=\"shop\",name=\"web\"} 1"]
        );
        // A condition type that disappears takes its series with it.
        m.set_conditions(&web, &[condition("Ready", "True", "ValidMetricFound")]);
        assert_eq!(lines_of(&m, "condition").len(), 1);
    }

    #[test]
    fn a_deleted_autoscaler_loses_all_its_series() {
        let m = Metrics::new();
        let (web, api) = (object("web"), object("api"));
        for o in [&web, &api] {
            m.set_replicas(o, 1, 2);
            m.set_ready_replicas(o, 1);
            m.set_metric_target(
                o,
                "pool/p",
                "l4_server.avg_open_conns",
                api::resolved::Target::AverageValue(200.0),
            );
            m.set_metric_value(o, "pool/p", "l4_server.avg_open_conns", Some(5.0));
            m.set_conditions(o, &[condition("Ready", "True", "ValidMetricFound")]);
        }
        m.retain_objects(|_, name| name == "api");
        let text = m.encode();
        assert!(
            !text.contains("name=\"web\""),
            "web's series remain:\n{text}"
        );
        for metric in [
            "ready",
            "condition",
            "metric_value",
            "metric_target",
            "ready_replicas",
            "desired_replicas",
            "current_replicas",
        ] {
            assert_eq!(lines_of(&m, metric).len(), 1, "{metric} in:\n{text}");
        }
    }

    #[test]
    fn reconcile_failures_are_counted_by_category() {
        let m = Metrics::new();
        m.reconcile_failed("patch_scale");
        assert_eq!(
            lines_of(&m, "reconcile_failures_total"),
            ["avi_autoscaler_reconcile_failures_total{category=\"patch_scale\"} 1"]
        );
    }

    #[test]
    fn controller_ready_is_set_and_forgotten() {
        let m = Metrics::new();
        m.set_controller_ready("avi-prod", false);
        m.set_controller_ready("avi-lab", true);
        m.set_controller_ready("avi-prod", true);
        let mut lines = lines_of(&m, "avicontroller_ready");
        lines.sort();
        assert_eq!(
            lines,
            [
                "avi_autoscaler_avicontroller_ready{name=\"avi-lab\"} 1",
                "avi_autoscaler_avicontroller_ready{name=\"avi-prod\"} 1",
            ]
        );
        m.forget_controller("avi-prod");
        assert_eq!(
            lines_of(&m, "avicontroller_ready"),
            ["avi_autoscaler_avicontroller_ready{name=\"avi-lab\"} 1"]
        );
    }

    #[test]
    fn a_target_whose_type_changes_keeps_one_series() {
        let m = Metrics::new();
        let web = object("web");
        let set = |target| m.set_metric_target(&web, "pool/p", "l4_server.avg_open_conns", target);
        set(api::resolved::Target::AverageValue(200.0));
        set(api::resolved::Target::Value(1000.0));
        assert_eq!(
            lines_of(&m, "metric_target"),
            [
                "avi_autoscaler_metric_target{namespace=\"shop\",name=\"web\",entity=\"pool/p\",metric=\"l4_server.avg_open_conns\",type=\"Value\"} 1000.0"
            ]
        );
    }

    #[test]
    fn in_flight_counts_running_reconciles_and_memory_is_reported() {
        let m = Metrics::new();
        let first = m.reconcile_started();
        let second = m.reconcile_started();
        assert!(
            m.encode()
                .contains("avi_autoscaler_reconciles_in_flight 2\n")
        );
        drop(first);
        drop(second);
        let text = m.encode();
        assert!(
            text.contains("avi_autoscaler_reconciles_in_flight 0\n"),
            "{text}"
        );
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("avi_autoscaler_resident_memory_bytes "))
            .expect("resident memory is exported");
        assert!(rss.parse::<i64>().expect("an integer") > 0, "{text}");
    }
}
