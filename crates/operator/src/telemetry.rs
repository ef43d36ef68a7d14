//! Logs and Prometheus metrics.
//!
//! Every metric carries the `avi_autoscaler_` prefix; durations are in seconds. The README's
//! "Observe" section documents each one.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, atomic::AtomicU64},
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
}

impl ReconcileResult {
    /// The label value: `success`, `error`, `not_leader` or `deferred`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::NotLeader => "not_leader",
            ReconcileResult::Deferred => "deferred",
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
    pub namespace: String,
    /// Name of the AviAutoscaler.
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    namespace: String,
    name: String,
    entity: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    namespace: String,
    name: String,
    direction: &'static str,
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
    desired_replicas: Family<ObjectLabels, Gauge>,
    current_replicas: Family<ObjectLabels, Gauge>,
    scale_events: Family<ScaleLabels, Counter>,
    leader: Gauge,
    circuit_open: Family<EndpointLabels, Gauge>,
    /// Which per-object series exist (prometheus-client families cannot be iterated).
    objects: Mutex<HashMap<ObjectLabels, HashSet<(String, String)>>>,
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
            desired_replicas: Family::default(),
            current_replicas: Family::default(),
            scale_events: Family::default(),
            leader: Gauge::default(),
            circuit_open: Family::default(),
            objects: Mutex::default(),
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
            "HTTP requests to Avi controllers, by kind and outcome",
            m.avi_requests.clone(),
        );
        registry.register_with_unit(
            "avi_request_duration",
            "Latency of HTTP requests to Avi controllers, by kind and outcome",
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
            "scale_events",
            "Changes of a target's replica count, by direction",
            m.scale_events.clone(),
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
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
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

    /// Counts one Avi HTTP request by kind (`login`, `metrics`, `inventory`, `metric_catalog`, `version`)
    /// and outcome (`ok` or an error category).
    pub fn avi_request(&self, kind: &'static str, outcome: &'static str, seconds: f64) {
        let labels = AviLabels { kind, outcome };
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
        let series = objects.entry(object.clone()).or_default();
        match value {
            Some(v) => {
                self.metric_value.get_or_create(&labels).set(v);
                series.insert((labels.entity, labels.metric));
            }
            None => {
                self.metric_value.remove(&labels);
                series.remove(&(labels.entity, labels.metric));
            }
        }
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
            for (entity, metric) in series.drain() {
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
