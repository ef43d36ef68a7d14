//! `AviAutoscaler.status`: what the operator saw and did, and the history it decides from.
//!
//! The histories (`recommendations`, `scaleEvents`, `freshness`, `consecutiveFailures`) are
//! the scaling engine's only memory. They live here, not in the process, so that a restart or a
//! leader change does not forget a stabilization window, a rate limit or a failure streak.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::EntityRef;

/// Observed state of an AviAutoscaler.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AviAutoscalerStatus {
    /// The `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Replica count of the target (its `scale.spec.replicas`) at the last reconcile.
    #[serde(default)]
    pub current_replicas: i32,

    /// Replica count the autoscaler last decided on.
    #[serde(default)]
    pub desired_replicas: i32,

    /// When the autoscaler last changed the target's replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,

    /// The last value read for each metric of the spec, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_metrics: Vec<MetricStatus>,

    /// Current / target of the first two metrics, as `kubectl get aas` shows them, for example
    /// `1000/200 (avg)`; `<unknown>` when a metric could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_summary: Option<String>,

    /// AbleToScale, ScalingActive, ScalingLimited (with the HorizontalPodAutoscaler's reasons)
    /// and Ready, which summarises them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The replica recommendations (before stabilization) inside the longest stabilization
    /// window, one entry per distinct value, oldest first: the last entry is the current
    /// recommendation with the time it was first made; each earlier one carries the time it was
    /// last replaced (until then it counted as recommended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<Recommendation>,

    /// Replica changes inside the longest scaling-policy period, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_events: Vec<ScaleEvent>,

    /// The samples the last scale was based on, so that one Avi aggregation bucket, read again
    /// on later polls, never causes a second step in the same direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessRecord>,

    /// Polls in a row in which a metric could not be read; drives `spec.fallback`. Counted up to
    /// `spec.fallback.failureThreshold` (1 without a fallback), so that an outage does not rewrite
    /// the status on every poll; the Ready condition's lastTransitionTime says when it began.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_failures: i32,

    /// Configuration that works but probably does not do what was meant (for example a `Value`
    /// target on a pool `Sum`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,

    /// With `minReplicas: 0`: when a fresh sample last showed a metric above its
    /// `activationValue`. The scale-to-zero cooldown counts from here; kept in status so that a
    /// restart does not start it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,

    /// Whether decisions are applied (`Active`), only published (`DryRun`) or not made
    /// (`Paused`), for the `Mode` printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,

    /// The shard of the operator process that manages this autoscaler (its `--shard-index`;
    /// 0 when the operator runs as one shard). Objects map to shards by a fixed hash of
    /// `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub shard: Option<i32>,
}

/// How the autoscaler acts on its decisions.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[schemars(transform = crate::spec::without_description)]
pub enum Mode {
    /// Decisions are written to the target's `scale` subresource.
    Active,
    /// `spec.dryRun`: decisions are published in status and Events, never written.
    DryRun,
    /// `spec.paused`: no decisions are made.
    Paused,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// The last reading of one metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// The entity the metric was read from.
    pub entity: EntityRef,
    /// The Avi metric id.
    pub metric_id: String,
    /// The value read, after combining a pool's member series per `aggregation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// For AverageValue targets: the value divided by the target's replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<f64>,
    /// How many series the value combines (the pool's member count; 1 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<i32>,
    /// When this value was first read: a value read again on later polls keeps its time (Avi's
    /// samples carry no timestamp of their own, and one aggregation bucket is read many times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_time: Option<Time>,
    /// Why no value could be read, when none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One replica recommendation of the scaling engine (before stabilization).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// When it was made.
    pub time: Time,
    /// The recommended replica count.
    pub replicas: i32,
}

/// One change of the target's replica count made by the autoscaler.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEvent {
    /// When the change was written.
    pub time: Time,
    /// Replica count before.
    pub from: i32,
    /// Replica count after.
    pub to: i32,
}

impl ScaleEvent {
    /// The direction of the change.
    pub fn direction(&self) -> ScaleDirection {
        if self.to >= self.from {
            ScaleDirection::Up
        } else {
            ScaleDirection::Down
        }
    }

    /// The absolute number of replicas added or removed.
    pub fn magnitude(&self) -> i32 {
        (i64::from(self.to) - i64::from(self.from))
            .unsigned_abs()
            .min(i32::MAX as u64) as i32
    }
}

/// Direction of a scale change.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleDirection {
    /// More replicas.
    Up,
    /// Fewer replicas.
    Down,
}

/// What the freshness rule remembers about the last scale: its time, direction and the samples
/// it was based on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FreshnessRecord {
    /// When the scale was written.
    pub time: Time,
    /// Its direction.
    pub direction: ScaleDirection,
    /// The metric values it was based on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<BasisSample>,
    /// The recommendation (before stabilization and rate limits) the samples gave: on the same
    /// samples, a step short of it (cut by a rate policy) may still continue up to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<i32>,
}

/// A metric value a scale decision was based on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BasisSample {
    /// The entity the metric was read from.
    pub entity: EntityRef,
    /// The Avi metric id.
    pub metric_id: String,
    /// The value read.
    pub value: f64,
    /// The replica count this metric proposed from that value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}
