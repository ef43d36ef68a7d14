//! The spec converted once into validated, defaulted values.
//!
//! What a valid spec is, is said once: by the CRD's schema and CEL rules, generated from the
//! types in [`crate::spec`]. The API server enforces them, and the operator checks every object
//! against the same generated CRD before it acts, because objects also arrive from places that
//! skip the API server's checks (scenario files for `simulate`, API servers without CEL).
//! [`AviAutoscalerSpec::resolve`] then only applies defaults and converts to typed values.
//! Everything downstream works on [`ResolvedSpec`] and never re-reads raw fields.

use std::{fmt, time::Duration};

use crate::spec::{
    Aggregation, AviAutoscalerSpec, ControllerSpec, EntityRef, EntityType, Fallback, MetricSpec,
    PolicyType, ScaleTargetRef, ScalingPolicy, ScalingRules, SelectPolicy, TargetType,
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

/// A field of a spec that cannot be used: it breaks a rule of the CRD, or it has no typed form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecViolation {
    /// Path of the offending field, for example `spec.metrics[0].target.averageValue`.
    pub field: String,
    /// What is wrong, as the API server says it (`Invalid value: 0: …`) for a broken rule.
    pub message: String,
}

/// Every field of a spec that cannot be used.
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

/// Where an AviAutoscaler's connection to Avi is defined.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionSource {
    /// `spec.controllerRef`: the named cluster-scoped AviController.
    Reference(String),
    /// `spec.controller`: an inline connection with a Secret in the autoscaler's namespace.
    Inline(ControllerSpec),
}

/// A validated spec with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSpec {
    /// The workload to scale.
    pub scale_target_ref: ScaleTargetRef,
    /// Where the connection to the Avi controller comes from.
    pub connection: ConnectionSource,
    /// Lower replica limit (>= 0; 0 lets the target scale to zero, see
    /// [`ResolvedSpec::scale_to_zero_cooldown`]).
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
    /// Whether decisions are only published, never written to the target's `scale`.
    pub dry_run: bool,
    /// With `min_replicas` 0: how long no metric may have been active, on fresh samples,
    /// before the target goes to zero.
    pub scale_to_zero_cooldown: Duration,
}

impl ResolvedSpec {
    /// Whether a target at zero replicas is the autoscaler's to wake: some metric has an
    /// activation value. Without one, a target at zero is held there (autoscaling disabled,
    /// as the HorizontalPodAutoscaler does).
    pub fn activates_from_zero(&self) -> bool {
        self.metrics.iter().any(|m| m.activation_value.is_some())
    }
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

    fn merged(mut self, v: &mut Violations, field: &str, rules: Option<&ScalingRules>) -> Self {
        let Some(rules) = rules else { return self };
        if let Some(w) = rules.stabilization_window_seconds {
            self.stabilization_window =
                v.seconds(&format!("{field}.stabilizationWindowSeconds"), w);
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
    /// The metric is active while its value is above this (`None`: never active).
    pub activation_value: Option<f64>,
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
    /// Applies every default and converts the spec into typed values.
    ///
    /// It checks no rule: the CRD's schema and CEL rules are the only statement of what a
    /// valid spec is, and the operator checks objects against them before resolving. The error
    /// names the fields that have no typed form (a negative number of seconds, a target without
    /// its number), which only an object that skipped that validation can have.
    pub fn resolve(&self) -> Result<ResolvedSpec, InvalidSpec> {
        let mut v = Violations::default();
        let polling_interval =
            v.seconds("spec.pollingIntervalSeconds", self.polling_interval_seconds);
        let scale_to_zero_cooldown = v.seconds(
            "spec.scaleToZeroCooldownSeconds",
            self.scale_to_zero_cooldown_seconds,
        );
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
            Some(b) => Behavior::Rules {
                scale_up: DirectionRules::default_scale_up(self.tolerance).merged(
                    &mut v,
                    "spec.behavior.scaleUp",
                    b.scale_up.as_ref(),
                ),
                scale_down: DirectionRules::default_scale_down(self.tolerance).merged(
                    &mut v,
                    "spec.behavior.scaleDown",
                    b.scale_down.as_ref(),
                ),
            },
        };
        let fallback = self
            .fallback
            .as_ref()
            .map(|f| resolve_fallback(f, self.min_replicas, self.max_replicas));
        // The CRD refuses both and neither; a conversion needs one.
        let connection = match (&self.controller_ref, &self.controller) {
            (Some(r), _) => Some(ConnectionSource::Reference(r.name.clone())),
            (None, Some(c)) => Some(ConnectionSource::Inline(c.clone())),
            (None, None) => {
                v.push("spec.controllerRef", "no connection to convert");
                None
            }
        };
        v.finish()?;
        let connection = connection.expect("finish() returned early without a connection");
        Ok(ResolvedSpec {
            scale_target_ref: self.scale_target_ref.clone(),
            connection,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            polling_interval,
            behavior,
            metrics,
            fallback,
            paused: self.paused,
            dry_run: self.dry_run,
            scale_to_zero_cooldown,
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

    /// A number of seconds as a [`Duration`]; a negative one has none.
    fn seconds(&mut self, field: &str, seconds: i32) -> Duration {
        match u64::try_from(seconds) {
            Ok(s) => Duration::from_secs(s),
            Err(_) => {
                self.push(
                    field,
                    format!("{seconds} cannot be converted to a duration"),
                );
                Duration::ZERO
            }
        }
    }

    fn finish(self) -> Result<(), InvalidSpec> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(InvalidSpec(self.0))
        }
    }
}

fn resolve_metric(v: &mut Violations, field: &str, m: &MetricSpec) -> Option<ResolvedMetric> {
    // Only a pool answers several series; the others have nothing to combine.
    let aggregation = match m.entity.kind {
        EntityType::Pool => Some(m.aggregation.unwrap_or_default()),
        EntityType::VirtualService | EntityType::ServiceEngine => None,
    };
    let t = &m.target;
    let (target, number) = match t.kind {
        TargetType::Value => (t.value.map(Target::Value), "value"),
        TargetType::AverageValue => (t.average_value.map(Target::AverageValue), "averageValue"),
    };
    let Some(target) = target else {
        v.push(
            format!("{field}.target.{number}"),
            "absent, so the target cannot be converted",
        );
        return None;
    };
    Some(ResolvedMetric {
        entity: m.entity.clone(),
        metric_id: m.metric_id.clone(),
        aggregation,
        realtime: m.realtime,
        target,
        activation_value: m.activation_value,
    })
}

fn resolve_fallback(f: &Fallback, min: i32, max: i32) -> ResolvedFallback {
    ResolvedFallback {
        failure_threshold: f.failure_threshold,
        replicas: f.replicas.clamp(min.min(max), max.max(min)),
    }
}
