//! Freshness gating: never two steps in the same direction on one Avi aggregation bucket.
//!
//! The rule, why Avi's timestamp-less bucket averages need it, and its limits are explained
//! once, in the crate documentation (`# Freshness gating` in `lib.rs`).

use api::{BasisSample, FreshnessRecord, ResolvedMetric, ScaleDirection};

use crate::{
    clock::{Seconds, secs, secs_of},
    inputs::Sample,
};

/// Whether `sample` of `metric` is the value the last scale was based on, read within one
/// aggregation period of it.
pub(crate) fn is_stale(record: &FreshnessRecord, metric: &ResolvedMetric, sample: &Sample) -> bool {
    basis(record, metric).is_some_and(|b| {
        b.value == sample.value && secs_of(sample.read_at) < fresh_from(record, metric)
    })
}

/// From when a re-read of the basis value counts as a new bucket.
pub(crate) fn fresh_from(record: &FreshnessRecord, metric: &ResolvedMetric) -> Seconds {
    let period = Seconds::try_from(metric.aggregation_period().as_secs()).unwrap_or(Seconds::MAX);
    secs(&record.time).saturating_add(period)
}

/// What `metric` proposed when the last scale was made, if it was read then.
pub(crate) fn basis_replicas(record: &FreshnessRecord, metric: &ResolvedMetric) -> Option<i32> {
    basis(record, metric).and_then(|b| b.replicas)
}

/// The value of `metric` the last scale was based on, if it was read then.
pub(crate) fn basis<'a>(
    record: &'a FreshnessRecord,
    metric: &ResolvedMetric,
) -> Option<&'a BasisSample> {
    record
        .samples
        .iter()
        .find(|b| b.entity == metric.entity && b.metric_id == metric.metric_id)
}

/// The furthest a stale reading may go in `direction`: what it proposed when the scale was
/// made, or the current count if that went less far (or is unknown).
pub(crate) fn limit(direction: ScaleDirection, current: i32, recorded: Option<i32>) -> i32 {
    let recorded = recorded.unwrap_or(current);
    match direction {
        ScaleDirection::Up => current.max(recorded),
        ScaleDirection::Down => current.min(recorded),
    }
}

/// A stale proposal, held in `direction` at [`limit`].
pub(crate) fn hold(
    direction: ScaleDirection,
    proposal: i32,
    current: i32,
    recorded: Option<i32>,
) -> i32 {
    let limit = limit(direction, current, recorded);
    match direction {
        ScaleDirection::Up => proposal.min(limit),
        ScaleDirection::Down => proposal.max(limit),
    }
}

#[cfg(test)]
mod tests {
    use api::{EntityRef, EntityType, Target, k8s::jiff::Timestamp};
    use rstest::rstest;

    use super::*;
    use crate::clock::time_at;

    fn metric(realtime: bool) -> ResolvedMetric {
        ResolvedMetric {
            entity: EntityRef {
                kind: EntityType::Pool,
                name: Some("web".into()),
                uuid: None,
            },
            metric_id: "l4_server.avg_open_conns".into(),
            aggregation: Some(api::Aggregation::Sum),
            realtime,
            target: Target::AverageValue(200.0),
            activation_value: None,
        }
    }

    fn record(at: Seconds, value: f64) -> FreshnessRecord {
        FreshnessRecord {
            time: time_at(at),
            direction: ScaleDirection::Up,
            samples: vec![BasisSample {
                entity: metric(false).entity,
                metric_id: metric(false).metric_id,
                value,
                replicas: Some(2),
            }],
            recommendation: Some(2),
        }
    }

    fn sample(value: f64, at: Seconds) -> Sample {
        Sample {
            value,
            series: 1,
            read_at: Timestamp::from_second(at).unwrap(),
        }
    }

    #[rstest]
    #[case::same_value_same_bucket(false, 300.0, 1000 + 15, true)]
    #[case::same_value_just_before_a_period(false, 300.0, 1000 + 299, true)]
    #[case::same_value_a_period_later(false, 300.0, 1000 + 300, false)]
    #[case::new_value(false, 301.0, 1000 + 15, false)]
    #[case::realtime_period(true, 300.0, 1000 + 4, true)]
    #[case::realtime_a_period_later(true, 300.0, 1000 + 5, false)]
    fn staleness(
        #[case] realtime: bool,
        #[case] value: f64,
        #[case] at: Seconds,
        #[case] stale: bool,
    ) {
        assert_eq!(
            is_stale(&record(1000, 300.0), &metric(realtime), &sample(value, at)),
            stale
        );
    }

    #[test]
    fn a_metric_without_a_basis_is_fresh() {
        let mut r = record(1000, 300.0);
        r.samples.clear();
        assert!(!is_stale(&r, &metric(false), &sample(300.0, 1001)));
    }

    #[rstest]
    #[case::up_beyond_current(ScaleDirection::Up, 7, 3, None, 3)]
    #[case::up_below_current(ScaleDirection::Up, 2, 3, None, 2)]
    #[case::down_beyond_current(ScaleDirection::Down, 1, 3, None, 3)]
    #[case::down_above_current(ScaleDirection::Down, 5, 3, None, 5)]
    #[case::up_to_the_recorded_proposal(ScaleDirection::Up, 5, 4, Some(5), 5)]
    #[case::up_not_past_the_recorded_proposal(ScaleDirection::Up, 8, 4, Some(5), 5)]
    #[case::up_recorded_below_current(ScaleDirection::Up, 8, 4, Some(3), 4)]
    #[case::down_to_the_recorded_proposal(ScaleDirection::Down, 1, 4, Some(2), 2)]
    #[case::down_recorded_above_current(ScaleDirection::Down, 1, 4, Some(6), 4)]
    fn holding(
        #[case] d: ScaleDirection,
        #[case] p: i32,
        #[case] current: i32,
        #[case] recorded: Option<i32>,
        #[case] held: i32,
    ) {
        assert_eq!(hold(d, p, current, recorded), held);
    }
}
