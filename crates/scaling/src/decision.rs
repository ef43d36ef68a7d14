//! What a decision says to do, and why.

use api::{
    AviAutoscalerStatus, ConditionType, EventReason, FreshnessRecord, Reason, ScaleEvent,
    k8s::{Condition, Time, jiff::Timestamp},
};

use crate::{
    clock::{secs_of, time_at},
    conditions,
    inputs::Failure,
};

/// The outcome of [`decide`](crate::decide): what to write, and what to report.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The replica count the target should have. When `scale` is false this is the count it
    /// already has (or, when the target could not be read, the last count decided on).
    pub desired_replicas: i32,
    /// Whether to write `desired_replicas` to the target's `scale` subresource. If that write
    /// fails, call [`Decision::scale_failed`] and write the status it returns instead.
    pub scale: bool,
    /// Per metric, in spec order: the value read and the replica count it proposes, or why it
    /// proposes none. Empty when the spec is invalid or the target could not be read.
    pub proposals: Vec<MetricProposal>,
    /// The complete new status. On unchanged inputs it equals the previous status, so it needs
    /// writing only when it differs.
    pub status: AviAutoscalerStatus,
    /// Events to record: one on a scale, and one when the `Ready` condition changes reason
    /// (never one per poll).
    pub events: Vec<Event>,
    /// What to restore if the scale write fails.
    rollback: Option<Rollback>,
}

/// The status as it would be without the scale, for [`Decision::scale_failed`].
#[derive(Clone, Debug, PartialEq)]
struct Rollback {
    previous_conditions: Vec<Condition>,
    desired_replicas: i32,
    last_scale_time: Option<Time>,
    scale_events: Vec<ScaleEvent>,
    freshness: Option<FreshnessRecord>,
    reason: String,
}

impl Decision {
    pub(crate) fn new(
        desired_replicas: i32,
        scale: bool,
        proposals: Vec<MetricProposal>,
        status: AviAutoscalerStatus,
        events: Vec<Event>,
    ) -> Self {
        Self {
            desired_replicas,
            scale,
            proposals,
            status,
            events,
            rollback: None,
        }
    }

    /// Remembers what the status held before the scale, so [`Decision::scale_failed`] can undo
    /// it.
    pub(crate) fn with_rollback(
        mut self,
        previous: &AviAutoscalerStatus,
        scale_events: Vec<ScaleEvent>,
        reason: String,
    ) -> Self {
        self.rollback = Some(Rollback {
            previous_conditions: previous.conditions.clone(),
            desired_replicas: previous.desired_replicas,
            last_scale_time: previous.last_scale_time.clone(),
            scale_events,
            freshness: previous.freshness.clone(),
            reason,
        });
        self
    }

    /// The decision after the `scale` write failed with `error`: nothing was scaled, so the
    /// scale is not recorded (no scale event, no `lastScaleTime`, no freshness record, the
    /// previous `desiredReplicas`), `AbleToScale` and `Ready` turn False with reason
    /// `FailedUpdateScale`, and the `SuccessfulRescale` event becomes a `FailedRescale` warning
    /// (`New size: N; reason: …; error: …`). The recommendation stays recorded, as in the
    /// HorizontalPodAutoscaler. A decision that did not scale is returned unchanged.
    pub fn scale_failed(mut self, error: &str, now: Timestamp) -> Decision {
        let Some(rollback) = self.rollback.take() else {
            return self;
        };
        if !self.scale {
            return self;
        }
        let status = &mut self.status;
        status.desired_replicas = rollback.desired_replicas;
        status.last_scale_time = rollback.last_scale_time;
        status.scale_events = rollback.scale_events;
        status.freshness = rollback.freshness;
        let now = time_at(secs_of(now));
        let message = conditions::failed_update_scale(error);
        let generation = status.observed_generation;
        for ty in [ConditionType::AbleToScale, ConditionType::Ready] {
            let condition = conditions::transition(
                &rollback.previous_conditions,
                ty,
                false,
                Reason::FailedUpdateScale,
                &message,
                &now,
                generation,
            );
            conditions::replace(&mut status.conditions, condition);
        }
        self.events
            .retain(|e| e.reason != EventReason::SuccessfulRescale);
        self.events.push(Event {
            type_: EventType::Warning,
            reason: EventReason::FailedRescale,
            message: format!(
                "New size: {}; reason: {}; error: {error}",
                self.desired_replicas, rollback.reason
            ),
        });
        self.scale = false;
        self
    }
}

/// What one metric proposes.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricProposal {
    /// The metric, as `type/name metricId` (for example `pool/kuard l4_server.avg_open_conns`).
    pub metric: String,
    /// The value read, or why none could be.
    pub value: Result<f64, Failure>,
    /// The replica count the metric proposes: from its target, held by the freshness rule,
    /// or `spec.fallback.replicas` when it could not be read and the fallback applies. `None`
    /// when it could not be read and no fallback applies.
    pub replicas: Option<i32>,
    /// When the freshness rule held this proposal at the current count: what the metric would
    /// have proposed. Its value is the one the last scale was based on, and a further step in
    /// the same direction waits for a newer Avi aggregation bucket.
    pub held_from: Option<i32>,
    /// Whether `replicas` is the fallback.
    pub fallback: bool,
}

/// The type of an [`Event`], as Kubernetes Events spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    /// `Normal` or `Warning`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A Kubernetes Event to record on the AviAutoscaler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Normal or Warning.
    pub type_: EventType,
    /// The reason, for example `SuccessfulRescale`.
    pub reason: EventReason,
    /// The message, for example `New size: 5; reason: pool/kuard l4_server.avg_open_conns above
    /// target`.
    pub message: String,
}
