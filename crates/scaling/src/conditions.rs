//! Conditions: setting them without moving `lastTransitionTime` needlessly, and their messages.
//!
//! Reasons and messages are the HorizontalPodAutoscaler's (`horizontal.go`, `setCondition` and
//! its callers), with "the HPA controller" / "the HPA" read as "the autoscaler"; the Avi-specific
//! ones follow the same style. No message contains the current time or a counter, so a condition
//! that holds stays byte-for-byte the same from poll to poll.

use api::{
    ConditionType, Reason, ScaleDirection,
    k8s::{Condition, Time, jiff::Timestamp},
};

/// The conditions of the new status, starting from the previous ones. [`ConditionSet::set`] is
/// the only way a condition changes, so `lastTransitionTime` follows one rule everywhere.
#[derive(Clone, Debug, PartialEq)]
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

    /// The same conditions, with later changes made at `now` (a failed scale write is found
    /// after the decision).
    pub(crate) fn at(self, now: Time) -> Self {
        Self { now, ..self }
    }

    /// Sets a condition. Its `lastTransitionTime` moves only when its status differs from the
    /// previous status's (like `setConditionInList`); reason and message are overwritten.
    pub(crate) fn set(&mut self, ty: ConditionType, status: bool, reason: Reason, message: &str) {
        let status = if status { "True" } else { "False" };
        let last_transition_time = match find(&self.previous, ty) {
            Some(old) if old.status == status => old.last_transition_time.clone(),
            _ => self.now.clone(),
        };
        let condition = Condition {
            type_: ty.as_str().to_owned(),
            status: status.to_owned(),
            reason: reason.as_str().to_owned(),
            message: message.to_owned(),
            last_transition_time,
            observed_generation: self.generation,
        };
        match self.list.iter_mut().find(|c| c.type_ == condition.type_) {
            Some(c) => *c = condition,
            None => self.list.push(condition),
        }
    }

    /// The conditions in a fixed order (AbleToScale, ScalingActive, ScalingLimited, Ready, then
    /// any others as they were), so that the same conditions always compare equal.
    pub(crate) fn to_conditions(&self) -> Vec<Condition> {
        let mut list = self.list.clone();
        list.sort_by_key(|c| {
            ConditionType::parse(&c.type_)
                .and_then(|t| ConditionType::ALL.iter().position(|&a| a == t))
                .unwrap_or(ConditionType::ALL.len())
        });
        list
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

/// `WaitingForFreshSample`: a further step in `direction` after the scale at `scaled_at` waits
/// for the `stale` metrics (each worded by [`still_stale`]).
pub(crate) fn waiting_for_fresh_sample(
    direction: ScaleDirection,
    scaled_at: Timestamp,
    stale: &[String],
) -> String {
    let direction = match direction {
        ScaleDirection::Up => "scale-up",
        ScaleDirection::Down => "scale-down",
    };
    format!(
        "a further {direction} waits for a sample from a newer Avi aggregation bucket than the scale at {scaled_at} was based on: {}",
        stale.join("; ")
    )
}

/// One stale metric in the `WaitingForFreshSample` message.
pub(crate) fn still_stale(metric: &str, value: &str, fresh_from: Timestamp) -> String {
    format!(
        "{metric} still reads {value} (a new value, or the same one read from {fresh_from} on, counts as fresh)"
    )
}

// ScalingActive
pub(crate) const SCALING_DISABLED: &str =
    "scaling is disabled since the replica count of the target is zero";
pub(crate) const PAUSED: &str =
    "spec.paused is true: the metrics are read and reported, the replica count is left alone";

pub(crate) const SCALED_TO_ZERO: &str =
    "the target is at zero replicas: no metric is above its activationValue";
pub(crate) const DRY_RUN: &str = "spec.dryRun is true: decisions are made and published in status and Events, the target's scale is never written";

pub(crate) fn valid_metric_found(metric: &str) -> String {
    format!("the autoscaler was able to successfully calculate a replica count from {metric}")
}

pub(crate) fn unable_to_compute(first_error: &str) -> String {
    format!("the autoscaler was unable to compute the replica count: {first_error}")
}

pub(crate) fn invalid_spec(violations: &str) -> String {
    format!("the spec cannot be used: {violations}")
}

/// A metric with no sample (the operator passed fewer samples than metrics).
pub(crate) const NO_SAMPLE: &str = "no sample was taken for this metric";
/// A pool without members.
pub(crate) const NO_SERIES: &str = "the controller answered no series (a pool without members)";

/// A value that cannot be a count of anything.
pub(crate) fn not_a_finite_count(value: f64) -> String {
    format!("the controller answered {value}, which is not a finite number of at least 0")
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

/// A hold with no failed metric to name: it cannot happen, and says so rather than panic.
pub(crate) const NO_METRIC_EVALUATED: &str = "no metric could be evaluated";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::time_at;

    fn set_at(previous: &[Condition], now: i64, status: bool, reason: Reason) -> Condition {
        let mut set = ConditionSet::new(previous, Some(2), time_at(now));
        set.set(ConditionType::AbleToScale, status, reason, "m");
        set.to_conditions().remove(0)
    }

    #[test]
    fn last_transition_time_moves_only_when_the_status_flips() {
        let first = set_at(&[], 10, true, Reason::SucceededGetScale);
        assert_eq!(first.last_transition_time, time_at(10));
        // Same status, other reason: the time stays.
        let same = set_at(
            std::slice::from_ref(&first),
            20,
            true,
            Reason::SucceededRescale,
        );
        assert_eq!(same.last_transition_time, time_at(10));
        assert_eq!(same.reason, "SucceededRescale");
        assert_eq!(same.observed_generation, Some(2));
        // Flipped: the time moves.
        let flipped = set_at(&[first], 30, false, Reason::FailedGetScale);
        assert_eq!(flipped.last_transition_time, time_at(30));
    }

    #[test]
    fn a_later_change_compares_with_the_previous_status_not_the_draft() {
        let previous = set_at(&[], 10, true, Reason::SucceededGetScale);
        let mut set = ConditionSet::new(&[previous], None, time_at(20));
        set.set(
            ConditionType::AbleToScale,
            true,
            Reason::SucceededRescale,
            "m",
        );
        set.set(ConditionType::Ready, true, Reason::Active, "m");
        let mut set = set.at(time_at(25));
        set.set(
            ConditionType::AbleToScale,
            false,
            Reason::FailedUpdateScale,
            "m",
        );
        let conditions = set.to_conditions();
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["AbleToScale", "Ready"]);
        assert_eq!(conditions[0].last_transition_time, time_at(25));
        assert_eq!(conditions[0].reason, "FailedUpdateScale");
        assert_eq!(conditions[1].last_transition_time, time_at(20));
    }
}
