//! What a decision says to do, and why.

use api::{
    AviAutoscalerStatus, ConditionType, EventReason, EventType, FreshnessRecord, Reason,
    ScaleEvent,
    k8s::{Time, jiff::Timestamp},
};

use crate::{
    clock::{secs_of, time_at},
    conditions::{self, ConditionSet},
    inputs::Failure,
};

/// The outcome of [`decide`](crate::decide): what to write, and what to report.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The replica count the target should have. When `scale` is false this is the count it
    /// already has (or, when the target could not be read, the last count decided on; in a dry
    /// run, the count it would have).
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

/// What [`Decision::scale_failed`] needs to take the scale back out of the status: the
/// conditions as decided, still over the previous status's (so that setting them again moves
/// `lastTransitionTime` only on a flip), and the status fields as they were before the scale.
#[derive(Clone, Debug, PartialEq)]
struct Rollback {
    conditions: ConditionSet,
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

    /// Remembers what the status held before the scale, and the conditions decided, so
    /// [`Decision::scale_failed`] can undo the scale.
    pub(crate) fn with_rollback(
        mut self,
        previous: &AviAutoscalerStatus,
        conditions: ConditionSet,
        scale_events: Vec<ScaleEvent>,
        reason: String,
    ) -> Self {
        self.rollback = Some(Rollback {
            conditions,
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
        let mut conditions = rollback.conditions.at(time_at(secs_of(now)));
        let message = conditions::failed_update_scale(error);
        for ty in [ConditionType::AbleToScale, ConditionType::Ready] {
            conditions.set(ty, false, Reason::FailedUpdateScale, &message);
        }
        status.conditions = conditions.to_conditions();
        self.events
            .retain(|e| e.reason != EventReason::SuccessfulRescale);
        self.events.push(Event::failed_rescale(
            self.desired_replicas,
            &rollback.reason,
            error,
        ));
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

/// A Kubernetes Event to record on the AviAutoscaler. Its type and action follow from its
/// reason ([`EventReason::type_and_action`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The reason, for example `SuccessfulRescale`.
    pub reason: EventReason,
    /// The message, for example `New size: 5; reason: pool/kuard l4_server.avg_open_conns above
    /// target`.
    pub message: String,
}

impl Event {
    /// An event with `reason` and `message`.
    pub fn new(reason: EventReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// Normal or Warning, from the reason.
    pub fn type_(&self) -> EventType {
        self.reason.event_type()
    }

    /// `SuccessfulRescale`, worded as the HorizontalPodAutoscaler words it; `why` is one of the
    /// [`rescale`] texts.
    pub(crate) fn successful_rescale(replicas: i32, why: &str) -> Self {
        Self::new(
            EventReason::SuccessfulRescale,
            format!("New size: {replicas}; reason: {why}"),
        )
    }

    /// `Activated`: a metric above its activation value wakes a target at zero replicas.
    pub(crate) fn activated(metric: &str, value: &str, activation: &str, replicas: i32) -> Self {
        Self::new(
            EventReason::Activated,
            format!(
                "{metric} is {value}, above its activationValue {activation}: scaling from 0 to {replicas}"
            ),
        )
    }

    /// `DryRunRescale`: in a dry run, the count the target would be scaled to changed.
    pub(crate) fn dry_run_rescale(from: i32, to: i32, why: &str) -> Self {
        Self::new(
            EventReason::DryRunRescale,
            format!("would scale from {from} to {to}; reason: {why}"),
        )
    }

    /// `FailedRescale`: the scale to `replicas` for `why` could not be written.
    pub(crate) fn failed_rescale(replicas: i32, why: &str, error: &str) -> Self {
        Self::new(
            EventReason::FailedRescale,
            format!("New size: {replicas}; reason: {why}; error: {error}"),
        )
    }

    /// `Resumed`: `spec.paused` was cleared.
    pub(crate) fn resumed() -> Self {
        Self::new(
            EventReason::Resumed,
            "spec.paused was cleared: the autoscaler manages the replica count again",
        )
    }

    /// `FallbackCleared`: the metrics can be read again.
    pub(crate) fn fallback_cleared() -> Self {
        Self::new(
            EventReason::FallbackCleared,
            "the metrics can be read again: the fallback no longer applies",
        )
    }
}

/// Why a scale was made: the `reason: …` of its event, as the HorizontalPodAutoscaler words it
/// (`horizontal.go`, `rescaleReason`).
pub(crate) mod rescale {
    /// The precheck above `maxReplicas`.
    pub(crate) const ABOVE_MAX: &str = "Current number of replicas above Spec.MaxReplicas";
    /// The precheck below `minReplicas`.
    pub(crate) const BELOW_MIN: &str = "Current number of replicas below Spec.MinReplicas";
    /// A scale-down on the metrics.
    pub(crate) const ALL_BELOW_TARGET: &str = "All metrics below target";
    /// A scale up that only the stabilization window asks for.
    pub(crate) const HIGHER_IN_WINDOW: &str =
        "a higher recommendation is inside the stabilization window";
    /// A scale down that only the stabilization window asks for.
    pub(crate) const LOWER_IN_WINDOW: &str =
        "a lower recommendation is inside the stabilization window";

    /// A scale-up driven by `metric`.
    pub(crate) fn above_target(metric: &str) -> String {
        format!("{metric} above target")
    }

    /// A scale from zero because `metric` read `value`, above its activation value.
    pub(crate) fn activated(metric: &str, value: &str) -> String {
        format!("{metric} is active ({value})")
    }

    /// A scale to zero after the cooldown.
    pub(crate) fn cooled_down(seconds: u64) -> String {
        format!("no metric above its activationValue for {seconds}s (scaleToZeroCooldownSeconds)")
    }

    /// A scale to the fallback replica count.
    pub(crate) fn fallback(threshold: i32) -> String {
        format!("fallback: the metrics could not be read for {threshold} polls in a row")
    }
}
