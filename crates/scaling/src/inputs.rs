//! What a decision is made from.

use api::{AviAutoscalerStatus, InvalidSpec, Reason, ResolvedSpec, k8s::jiff::Timestamp};

/// Everything one decision needs. The engine keeps no memory of its own: whatever it must
/// remember between polls (histories, conditions, freshness, failure streak) comes back in
/// `status`.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The spec, validated against the CRD and resolved (a spec that cannot be used goes to
    /// [`decide_invalid`](crate::decide_invalid) instead).
    pub spec: &'a ResolvedSpec,
    /// `metadata.generation`, written to `status.observedGeneration` and to each condition.
    pub generation: Option<i64>,
    /// The status the previous decision returned (as read back from the API server), or `None`
    /// for a new object.
    pub status: Option<&'a AviAutoscalerStatus>,
    /// The target's `scale` subresource, or why it could not be read (reason `FailedGetScale`):
    /// the decision then only reports the failure and holds.
    pub target: Result<TargetState, Failure>,
    /// One sample per `spec.metrics` entry, in the same order. A missing entry counts as a
    /// failed read. Ignored when the target could not be read.
    pub samples: Vec<Result<Sample, Failure>>,
    /// The time of the decision. Fractions of a second are dropped (status stores whole
    /// seconds).
    pub now: Timestamp,
}

/// What a decision on a spec that cannot be used is made from: it holds the replica count and
/// says why, so it needs no samples.
#[derive(Clone, Debug)]
pub struct InvalidInputs<'a> {
    /// Every field of the spec that cannot be used, with the API server's message.
    pub invalid: &'a InvalidSpec,
    /// `metadata.generation`, written to `status.observedGeneration` and to each condition.
    pub generation: Option<i64>,
    /// The status the previous decision returned, or `None` for a new object.
    pub status: Option<&'a AviAutoscalerStatus>,
    /// The target's `scale` subresource, if it could be read: the held count is reported as
    /// `currentReplicas` and `desiredReplicas`.
    pub target: Result<TargetState, Failure>,
    /// The time of the decision.
    pub now: Timestamp,
}

/// What a decision on an autoscaler that holds is made from: why it holds, and the target's
/// count to report. It reads no samples.
#[derive(Clone, Debug)]
pub struct HeldInputs<'a> {
    /// Why it holds: the reason of `AbleToScale` and `Ready` (for example `AmbiguousTarget`) and
    /// a message naming the other object.
    pub hold: &'a Failure,
    /// `metadata.generation`, written to `status.observedGeneration` and to each condition.
    pub generation: Option<i64>,
    /// The status the previous decision returned, or `None` for a new object.
    pub status: Option<&'a AviAutoscalerStatus>,
    /// The target's `scale` subresource, if it could be read: the held count is reported as
    /// `currentReplicas` and `desiredReplicas`.
    pub target: Result<TargetState, Failure>,
    /// The time of the decision.
    pub now: Timestamp,
}

/// The replica counts of the target, from its `scale` subresource and its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetState {
    /// `scale.spec.replicas`: the count the autoscaler compares against and changes.
    pub spec_replicas: i32,
    /// `scale.status.replicas`: the pods that exist (used by `AverageValue` targets).
    pub status_replicas: i32,
    /// The target's `status.readyReplicas` where its kind has one (Deployment, StatefulSet,
    /// ReplicaSet); `None` for kinds without it, which then use `status_replicas`. `Value`
    /// targets multiply by it, as the HorizontalPodAutoscaler multiplies by its ready pods, so
    /// that pods that do not serve yet do not multiply the ratio again.
    pub ready_replicas: Option<i32>,
}

impl TargetState {
    /// The ready replica count `Value` targets multiply by.
    pub fn ready(&self) -> i32 {
        self.ready_replicas.unwrap_or(self.status_replicas)
    }
}

/// One reading of one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The value, after combining a pool's member series per `aggregation`. A value that is not
    /// a finite number at least 0 is treated as a failed read: bad data is never a reason to
    /// scale.
    pub value: f64,
    /// How many series the value combines: the pool's member count, 1 for other entities.
    /// A pool without members (0) is treated as a failed read.
    pub series: u32,
    /// When the value was read. Avi's samples carry no time of their own.
    pub read_at: Timestamp,
}

/// Why something could not be read. Keep messages stable between polls (no durations or
/// counters): they go to status, and a message that changes on every poll rewrites it on every
/// poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `FailedGetAviMetric`, `AviUnreachable`, `AviAuthFailed`, `SecretNotFound` for metrics;
    /// `FailedGetScale` for the target.
    pub reason: Reason,
    /// What failed, for people. Never a credential.
    pub message: String,
}

impl Failure {
    /// A failure with its reason and message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}
