//! Conditions: setting them without moving `lastTransitionTime` needlessly, and their messages.
//!
//! Reasons and messages are the HorizontalPodAutoscaler's (`horizontal.go`, `setCondition` and
//! its callers), with "the HPA controller" / "the HPA" read as "the autoscaler"; the Avi-specific
//! ones follow the same style. No message contains the current time or a counter, so a condition
//! that holds stays byte-for-byte the same from poll to poll.

use api::{
    ConditionType, Reason,
    k8s::{Condition, Time},
};

/// The conditions of the new status, starting from the previous ones.
#[derive(Clone, Debug)]
pub(crate) struct ConditionSet {
    previous: Vec<Condition>,
    list: Vec<Condition>,
    generation: Option<i64>,
    now: Time,
}

impl ConditionSet {
    /// Starts from the previous status's conditions: a condition nobody sets keeps its old value
    /// (the HorizontalPodAutoscaler also leaves, for example, ScalingLimited alone on the min/max
    /// precheck path).
    pub(crate) fn new(previous: &[Condition], generation: Option<i64>, now: Time) -> Self {
        Self {
            previous: previous.to_vec(),
            list: previous.to_vec(),
            generation,
            now,
        }
    }

    /// Sets a condition. Its `lastTransitionTime` moves only when its status differs from the
    /// previous status's (like `setConditionInList`); reason and message are overwritten.
    pub(crate) fn set(&mut self, ty: ConditionType, status: bool, reason: Reason, message: &str) {
        let c = transition(
            &self.previous,
            ty,
            status,
            reason,
            message,
            &self.now,
            self.generation,
        );
        replace(&mut self.list, c);
    }

    /// The conditions in a fixed order (AbleToScale, ScalingActive, ScalingLimited, Ready, then
    /// any others as they were), so that the same conditions always compare equal.
    pub(crate) fn into_conditions(mut self) -> Vec<Condition> {
        self.list.sort_by_key(|c| {
            ConditionType::parse(&c.type_)
                .and_then(|t| ConditionType::ALL.iter().position(|&a| a == t))
                .unwrap_or(ConditionType::ALL.len())
        });
        self.list
    }
}

/// The condition `ty` with the given status, reason and message, keeping the previous
/// `lastTransitionTime` unless the status flipped.
pub(crate) fn transition(
    previous: &[Condition],
    ty: ConditionType,
    status: bool,
    reason: Reason,
    message: &str,
    now: &Time,
    generation: Option<i64>,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = match find(previous, ty) {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: ty.as_str().to_owned(),
        status: status.to_owned(),
        reason: reason.as_str().to_owned(),
        message: message.to_owned(),
        last_transition_time,
        observed_generation: generation,
    }
}

/// Puts `condition` into `list`, replacing the one of the same type.
pub(crate) fn replace(list: &mut Vec<Condition>, condition: Condition) {
    match list.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(c) => *c = condition,
        None => list.push(condition),
    }
}

/// The condition of type `ty` in `list`.
pub(crate) fn find(list: &[Condition], ty: ConditionType) -> Option<&Condition> {
    list.iter().find(|c| c.type_ == ty.as_str())
}

// AbleToScale
pub(crate) const SUCCEEDED_GET_SCALE: &str =
    "the autoscaler was able to get the target's current scale";
pub(crate) const READY_FOR_NEW_SCALE: &str = "recommended size matches current size";
pub(crate) const SCALE_UP_STABILIZED: &str =
    "recent recommendations were lower than current one, applying the lowest recent recommendation";
pub(crate) const SCALE_DOWN_STABILIZED: &str = "recent recommendations were higher than current one, applying the highest recent recommendation";

pub(crate) fn failed_get_scale(error: &str) -> String {
    format!("the autoscaler was unable to get the target's current scale: {error}")
}

pub(crate) fn succeeded_rescale(replicas: i32) -> String {
    format!("the autoscaler was able to update the target scale to {replicas}")
}

pub(crate) fn failed_update_scale(error: &str) -> String {
    format!("the autoscaler was unable to update the target scale: {error}")
}

// ScalingActive
pub(crate) const SCALING_DISABLED: &str =
    "scaling is disabled since the replica count of the target is zero";
pub(crate) const PAUSED: &str =
    "spec.paused is true: the metrics are read and reported, the replica count is left alone";

pub(crate) fn valid_metric_found(metric: &str) -> String {
    format!("the autoscaler was able to successfully calculate a replica count from {metric}")
}

pub(crate) fn unable_to_compute(first_error: &str) -> String {
    format!("the autoscaler was unable to compute the replica count: {first_error}")
}

pub(crate) fn invalid_spec(violations: &str) -> String {
    format!("the spec cannot be used: {violations}")
}

pub(crate) fn fallback_active(threshold: i32, replicas: i32, first_error: &str) -> String {
    format!(
        "the metrics could not be read for {threshold} polls in a row, so each metric that fails proposes the fallback of {replicas} replicas; first error: {first_error}"
    )
}

// ScalingLimited
pub(crate) const DESIRED_WITHIN_RANGE: &str = "the desired count is within the acceptable range";
pub(crate) const TOO_MANY_REPLICAS: &str =
    "the desired replica count is more than the maximum replica count";
pub(crate) const TOO_FEW_REPLICAS: &str =
    "the desired replica count is less than the minimum replica count";
pub(crate) const SCALE_UP_LIMIT: &str =
    "the desired replica count is increasing faster than the maximum scale rate";
pub(crate) const SCALE_DOWN_LIMIT: &str =
    "the desired replica count is decreasing faster than the maximum scale rate";

// Ready
pub(crate) const ACTIVE: &str =
    "the autoscaler reads its metrics and manages the target's replica count";

/// `FailedComputeMetricsReplicas`' message in the HorizontalPodAutoscaler.
pub(crate) fn invalid_metrics(invalid: usize, total: usize, first_error: &str) -> String {
    format!("invalid metrics ({invalid} invalid out of {total}), first error is: {first_error}")
}

/// The ScalingLimited message for a reason.
pub(crate) fn limited_message(reason: Reason) -> &'static str {
    match reason {
        Reason::TooManyReplicas => TOO_MANY_REPLICAS,
        Reason::TooFewReplicas => TOO_FEW_REPLICAS,
        Reason::ScaleUpLimit => SCALE_UP_LIMIT,
        Reason::ScaleDownLimit => SCALE_DOWN_LIMIT,
        _ => DESIRED_WITHIN_RANGE,
    }
}
