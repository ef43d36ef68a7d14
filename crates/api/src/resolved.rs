//! The spec converted once into validated, defaulted values.
//!
//! The API server enforces the schema and its CEL rules, but objects also arrive from places
//! that skip them (scenario files for `simulate`, clusters where the CRD was edited, tests), so
//! [`AviAutoscalerSpec::resolve`] checks the same rules again and names the field that breaks
//! one. Everything downstream works on [`ResolvedSpec`] and never re-reads raw fields.

use std::{fmt, time::Duration};

use crate::spec::{
    Aggregation, AviAutoscalerSpec, EntityRef, EntityType, Fallback, MetricSpec, PolicyType,
    ScalingPolicy, ScalingRules, SelectPolicy, TargetType,
};

/// Avi's aggregation period for non-realtime metrics (the controller's 5-minute buckets).
pub const AGGREGATION_PERIOD: Duration = Duration::from_secs(300);
/// Avi's aggregation period for realtime metrics.
pub const REALTIME_AGGREGATION_PERIOD: Duration = Duration::from_secs(5);
/// The scale-down stabilization window when none is set: the HorizontalPodAutoscaler's
/// `--horizontal-pod-autoscaler-downscale-stabilization` default.
pub const DEFAULT_SCALE_DOWN_WINDOW: Duration = Duration::from_secs(300);
/// Without `behavior`, one step may grow to at most `LEGACY_SCALE_UP_FACTOR` × current
/// replicas (the HorizontalPodAutoscaler's `scaleUpLimitFactor`)…
pub const LEGACY_SCALE_UP_FACTOR: f64 = 2.0;
/// …or to `LEGACY_SCALE_UP_MINIMUM`, whichever is larger (`scaleUpLimitMinimum`).
pub const LEGACY_SCALE_UP_MINIMUM: i32 = 4;

/// A spec rule that an object breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecViolation {
    /// Path of the offending field, for example `spec.metrics[0].target.averageValue`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// All the rules a spec breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSpec(pub Vec<SpecViolation>);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidSpec {}

/// A validated spec with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSpec {
    /// Lower replica limit (>= 1).
    pub min_replicas: i32,
    /// Upper replica limit (>= min_replicas).
    pub max_replicas: i32,
    /// Time between polls.
    pub polling_interval: Duration,
    /// Scaling rules, or the HorizontalPodAutoscaler's behaviour without `behavior`.
    pub behavior: Behavior,
    /// The metrics, in spec order.
    pub metrics: Vec<ResolvedMetric>,
    /// The fallback, if configured.
    pub fallback: Option<ResolvedFallback>,
    /// Whether scaling is paused.
    pub paused: bool,
}

/// Scaling rules in force.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// No `spec.behavior`: the HorizontalPodAutoscaler's legacy normalisation (scale-down
    /// stabilization over [`DEFAULT_SCALE_DOWN_WINDOW`], scale-up capped at max(2 × current, 4)
    /// per step, no scale-down rate limit).
    Legacy {
        /// The scale-down stabilization window.
        scale_down_window: Duration,
        /// Tolerance, both directions.
        tolerance: f64,
    },
    /// `spec.behavior` with the autoscaling/v2 defaults filled in.
    Rules {
        /// Scale-up rules.
        scale_up: DirectionRules,
        /// Scale-down rules.
        scale_down: DirectionRules,
    },
}

impl Behavior {
    /// The tolerance for a ratio above 1 (scaling up).
    pub fn tolerance_up(&self) -> f64 {
        match self {
            Behavior::Legacy { tolerance, .. } => *tolerance,
            Behavior::Rules { scale_up, .. } => scale_up.tolerance,
        }
    }

    /// The tolerance for a ratio below 1 (scaling down).
    pub fn tolerance_down(&self) -> f64 {
        match self {
            Behavior::Legacy { tolerance, .. } => *tolerance,
            Behavior::Rules { scale_down, .. } => scale_down.tolerance,
        }
    }

    /// The longest stabilization window: recommendations older than this can be pruned.
    pub fn longest_window(&self) -> Duration {
        match self {
            Behavior::Legacy {
                scale_down_window, ..
            } => *scale_down_window,
            Behavior::Rules {
                scale_up,
                scale_down,
            } => scale_up
                .stabilization_window
                .max(scale_down.stabilization_window),
        }
    }

    /// The longest policy period: scale events older than this can be pruned.
    pub fn longest_period(&self) -> Duration {
        match self {
            Behavior::Legacy { .. } => Duration::ZERO,
            Behavior::Rules {
                scale_up,
                scale_down,
            } => scale_up.longest_period().max(scale_down.longest_period()),
        }
    }
}

/// Rules for one direction, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectionRules {
    /// Stabilization window.
    pub stabilization_window: Duration,
    /// How policies combine.
    pub select_policy: SelectPolicy,
    /// Rate limits (at least one).
    pub policies: Vec<ScalingPolicy>,
    /// Tolerance for this direction.
    pub tolerance: f64,
}

impl DirectionRules {
    /// The autoscaling/v2 scale-up defaults: no window, `Max` of `Pods 4 / 15s` and
    /// `Percent 100 / 15s`.
    pub fn default_scale_up(tolerance: f64) -> Self {
        DirectionRules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyType::Pods,
                    value: 4,
                    period_seconds: 15,
                },
                ScalingPolicy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ],
            tolerance,
        }
    }

    /// The autoscaling/v2 scale-down defaults: a 300 s window, `Max` of `Percent 100 / 15s`.
    pub fn default_scale_down(tolerance: f64) -> Self {
        DirectionRules {
            stabilization_window: DEFAULT_SCALE_DOWN_WINDOW,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyType::Percent,
                value: 100,
                period_seconds: 15,
            }],
            tolerance,
        }
    }

    fn merged(mut self, rules: Option<&ScalingRules>) -> Self {
        let Some(rules) = rules else { return self };
        if let Some(w) = rules.stabilization_window_seconds {
            self.stabilization_window = Duration::from_secs(w.max(0) as u64);
        }
        if let Some(p) = rules.select_policy {
            self.select_policy = p;
        }
        if let Some(p) = &rules.policies {
            self.policies = p.clone();
        }
        if let Some(t) = rules.tolerance {
            self.tolerance = t;
        }
        self
    }

    /// The longest policy period of this direction.
    pub fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|p| Duration::from_secs(p.period_seconds.max(0) as u64))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// A metric with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedMetric {
    /// The entity.
    pub entity: EntityRef,
    /// The Avi metric id.
    pub metric_id: String,
    /// How member series combine (pools only; `None` for one-series entities).
    pub aggregation: Option<Aggregation>,
    /// Whether realtime samples are read.
    pub realtime: bool,
    /// The target.
    pub target: Target,
}

impl ResolvedMetric {
    /// How long one Avi sample stays the same: 300 s, or 5 s for realtime metrics.
    pub fn aggregation_period(&self) -> Duration {
        if self.realtime {
            REALTIME_AGGREGATION_PERIOD
        } else {
            AGGREGATION_PERIOD
        }
    }

    /// A short human description, for example `pool/kuard l4_server.avg_open_conns`.
    pub fn describe(&self) -> String {
        format!("{} {}", describe_entity(&self.entity), self.metric_id)
    }

    /// Whether this is a `Value` target on a pool `Sum`, which grows with the replica count.
    pub fn is_value_on_sum(&self) -> bool {
        matches!(self.target, Target::Value(_)) && self.aggregation == Some(Aggregation::Sum)
    }
}

/// Formats an entity as `type/name` or `type/uuid`.
pub fn describe_entity(e: &EntityRef) -> String {
    let id = e.name.as_deref().or(e.uuid.as_deref()).unwrap_or("?");
    format!("{}/{id}", e.kind.as_str())
}

/// A metric target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// `type: Value` with its value (> 0).
    Value(f64),
    /// `type: AverageValue` with its per-replica value (> 0).
    AverageValue(f64),
}

impl Target {
    /// The configured number.
    pub fn amount(self) -> f64 {
        match self {
            Target::Value(v) | Target::AverageValue(v) => v,
        }
    }
}

/// The fallback with defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedFallback {
    /// Failed polls in a row before it applies (>= 1).
    pub failure_threshold: i32,
    /// Replicas to use (already within min/max).
    pub replicas: i32,
}

impl AviAutoscalerSpec {
    /// Checks the spec against the same rules as the CRD schema and its CEL rules, and applies
    /// every default. The error names each offending field.
    pub fn resolve(&self) -> Result<ResolvedSpec, InvalidSpec> {
        let mut v = Violations::default();
        if self.min_replicas < 1 {
            v.push("spec.minReplicas", "must be at least 1");
        }
        if self.max_replicas < 1 {
            v.push("spec.maxReplicas", "must be at least 1");
        }
        if self.max_replicas < self.min_replicas {
            v.push(
                "spec.maxReplicas",
                "maxReplicas must be greater than or equal to minReplicas",
            );
        }
        if !(1..=3600).contains(&self.polling_interval_seconds) {
            v.push("spec.pollingIntervalSeconds", "must be between 1 and 3600");
        }
        check_tolerance(&mut v, "spec.tolerance", self.tolerance);
        check_controller(&mut v, self);
        if self.metrics.is_empty() || self.metrics.len() > 10 {
            v.push("spec.metrics", "must list between 1 and 10 metrics");
        }
        let metrics: Vec<ResolvedMetric> = self
            .metrics
            .iter()
            .enumerate()
            .filter_map(|(i, m)| resolve_metric(&mut v, &format!("spec.metrics[{i}]"), m))
            .collect();
        let behavior = match &self.behavior {
            None => Behavior::Legacy {
                scale_down_window: DEFAULT_SCALE_DOWN_WINDOW,
                tolerance: self.tolerance,
            },
            Some(b) => {
                for (dir, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                    if let Some(r) = rules {
                        check_rules(&mut v, &format!("spec.behavior.{dir}"), r);
                    }
                }
                Behavior::Rules {
                    scale_up: DirectionRules::default_scale_up(self.tolerance)
                        .merged(b.scale_up.as_ref()),
                    scale_down: DirectionRules::default_scale_down(self.tolerance)
                        .merged(b.scale_down.as_ref()),
                }
            }
        };
        let fallback = self
            .fallback
            .as_ref()
            .map(|f| resolve_fallback(&mut v, f, self.min_replicas, self.max_replicas));
        v.finish()?;
        Ok(ResolvedSpec {
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            polling_interval: Duration::from_secs(self.polling_interval_seconds as u64),
            behavior,
            metrics,
            fallback,
            paused: self.paused,
        })
    }
}

#[derive(Default)]
struct Violations(Vec<SpecViolation>);

impl Violations {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecViolation {
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), InvalidSpec> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(InvalidSpec(self.0))
        }
    }
}

fn check_tolerance(v: &mut Violations, field: &str, t: f64) {
    if !(t.is_finite() && (0.0..1.0).contains(&t)) {
        v.push(field, "must be a fraction in [0, 1), for example 0.1");
    }
}

fn check_controller(v: &mut Violations, spec: &AviAutoscalerSpec) {
    let c = &spec.controller;
    if c.endpoints.is_empty() || c.endpoints.len() > 8 {
        v.push(
            "spec.controller.endpoints",
            "must list between 1 and 8 URLs",
        );
    }
    for (i, e) in c.endpoints.iter().enumerate() {
        if !is_https_url(e) {
            v.push(
                format!("spec.controller.endpoints[{i}]"),
                "each endpoint must be an https:// URL with a host, for example https://avi.example.com",
            );
        }
    }
    if c.credentials_secret_ref.name.is_empty() {
        v.push(
            "spec.controller.credentialsSecretRef.name",
            "must not be empty",
        );
    }
    if c.tenant.is_empty() {
        v.push("spec.controller.tenant", "must not be empty");
    }
    if let Some(ver) = &c.api_version {
        let ok = ver.split('.').count() == 3
            && ver
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            v.push("spec.controller.apiVersion", "must look like 22.1.3");
        }
    }
    if let Some(tls) = &c.tls
        && tls.insecure_skip_verify
        && tls.ca_secret_ref.is_some()
    {
        v.push(
            "spec.controller.tls",
            "caSecretRef has no effect when insecureSkipVerify is true; set only one of them",
        );
    }
    if !(1..=60).contains(&c.timeout_seconds) {
        v.push("spec.controller.timeoutSeconds", "must be between 1 and 60");
    }
}

/// Whether `s` is an absolute `https://` URL with a non-empty host (what the CEL rule
/// `isURL(e) && url(e).getScheme() == 'https' && url(e).getHostname() != ''` accepts).
pub fn is_https_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty() && !s.chars().any(char::is_whitespace)
}

fn resolve_metric(v: &mut Violations, field: &str, m: &MetricSpec) -> Option<ResolvedMetric> {
    let before = v.0.len();
    let e = &m.entity;
    if e.name.is_some() == e.uuid.is_some() {
        v.push(
            format!("{field}.entity"),
            "set exactly one of entity.name and entity.uuid",
        );
    }
    if e.name.as_deref() == Some("") || e.uuid.as_deref() == Some("") {
        v.push(format!("{field}.entity"), "name and uuid must not be empty");
    }
    if !is_metric_id(&m.metric_id) {
        v.push(
            format!("{field}.metricId"),
            "must look like <family>.<name>, for example l4_server.avg_open_conns",
        );
    }
    let aggregation = match (e.kind, m.aggregation) {
        (EntityType::Pool, a) => Some(a.unwrap_or_default()),
        (_, None) => None,
        (_, Some(_)) => {
            v.push(
                format!("{field}.aggregation"),
                "aggregation applies only to pool metrics: virtual services and service engines answer one series",
            );
            None
        }
    };
    let t = &m.target;
    let target = match t.kind {
        TargetType::Value => {
            if t.average_value.is_some() {
                v.push(
                    format!("{field}.target"),
                    "a target of type Value needs value (and no averageValue)",
                );
            }
            t.value.map(Target::Value)
        }
        TargetType::AverageValue => {
            if t.value.is_some() {
                v.push(
                    format!("{field}.target"),
                    "a target of type AverageValue needs averageValue (and no value)",
                );
            }
            t.average_value.map(Target::AverageValue)
        }
    };
    match target {
        None => v.push(
            format!("{field}.target"),
            match t.kind {
                TargetType::Value => "a target of type Value needs value (and no averageValue)",
                TargetType::AverageValue => {
                    "a target of type AverageValue needs averageValue (and no value)"
                }
            },
        ),
        Some(t) if !(t.amount().is_finite() && t.amount() > 0.0) => v.push(
            format!("{field}.target"),
            "the target must be greater than 0",
        ),
        Some(_) => {}
    }
    if v.0.len() > before {
        return None;
    }
    Some(ResolvedMetric {
        entity: m.entity.clone(),
        metric_id: m.metric_id.clone(),
        aggregation,
        realtime: m.realtime,
        target: target?,
    })
}

/// Whether `s` is shaped like an Avi metric id (`^[a-z0-9_]+\.[a-z0-9_]+$`).
pub fn is_metric_id(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match s.split_once('.') {
        Some((a, b)) => part(a) && part(b) && s.len() <= 128,
        None => false,
    }
}

fn check_rules(v: &mut Violations, field: &str, r: &ScalingRules) {
    if let Some(w) = r.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        v.push(
            format!("{field}.stabilizationWindowSeconds"),
            "must be between 0 and 3600",
        );
    }
    if let Some(t) = r.tolerance {
        check_tolerance(v, &format!("{field}.tolerance"), t);
    }
    if let Some(policies) = &r.policies {
        if policies.is_empty() || policies.len() > 10 {
            v.push(
                format!("{field}.policies"),
                "must list between 1 and 10 policies",
            );
        }
        for (i, p) in policies.iter().enumerate() {
            if p.value < 1 {
                v.push(
                    format!("{field}.policies[{i}].value"),
                    "must be greater than 0",
                );
            }
            if !(1..=1800).contains(&p.period_seconds) {
                v.push(
                    format!("{field}.policies[{i}].periodSeconds"),
                    "must be between 1 and 1800",
                );
            }
        }
    }
}

fn resolve_fallback(v: &mut Violations, f: &Fallback, min: i32, max: i32) -> ResolvedFallback {
    if f.failure_threshold < 1 {
        v.push("spec.fallback.failureThreshold", "must be at least 1");
    }
    if f.replicas < 1 {
        v.push("spec.fallback.replicas", "must be at least 1");
    }
    ResolvedFallback {
        failure_threshold: f.failure_threshold,
        replicas: f.replicas.clamp(min.min(max), max.max(min)),
    }
}
