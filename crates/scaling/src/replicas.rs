//! The replica count one metric proposes: autoscaling/v2 Object-metric arithmetic.
//!
//! Follows kubernetes/kubernetes `pkg/controller/podautoscaler/replica_calculator.go`:
//! `GetObjectMetricReplicas` with `getUsageRatioReplicaCount` for `Value` targets and
//! `GetObjectPerPodMetricReplicas` for `AverageValue` targets, with the tolerance test of
//! `Tolerances.isWithin`. The HorizontalPodAutoscaler works on milli-quantities converted to
//! `float64`; Avi's values are already floating point, so the same operations run on them
//! directly, in the same order (the ratio first, then the multiplication), which gives the same
//! rounding at the edges.

use api::Target;

use crate::inputs::TargetState;

/// The replica count a metric with `target` proposes for the reading `value`.
///
/// * `Value`: `ratio = value / target`; inside the tolerance band the proposal is the spec
///   replica count, otherwise `ceil(ratio × ready replicas)`.
/// * `AverageValue`: `ratio = value / (averageValue × status replicas)`; inside the band the
///   proposal is the *status* replica count, otherwise `ceil(value / averageValue)`. With 0 status
///   replicas the ratio is infinite (or NaN), never inside the band.
///
/// The band is inclusive: `1 - tolerance_down <= ratio <= 1 + tolerance_up`.
///
/// One deliberate difference: the HorizontalPodAutoscaler reports an error for a `Value` metric
/// when the target has no pods at all (`no pods returned by selector`); here such a metric
/// proposes the spec replica count, which has the same effect on the combined proposal (it can
/// neither lower it nor raise it) without calling the metric broken.
pub(crate) fn propose(
    target: Target,
    value: f64,
    state: &TargetState,
    tolerance_up: f64,
    tolerance_down: f64,
) -> i32 {
    match target {
        Target::Value(target) => {
            let ratio = value / target;
            if is_within_tolerance(ratio, tolerance_up, tolerance_down)
                || state.status_replicas == 0
            {
                state.spec_replicas
            } else {
                ceil_replicas(ratio * f64::from(state.ready()))
            }
        }
        Target::AverageValue(target) => {
            let ratio = value / (target * f64::from(state.status_replicas));
            if is_within_tolerance(ratio, tolerance_up, tolerance_down) {
                state.status_replicas
            } else {
                ceil_replicas(value / target)
            }
        }
    }
}

/// Whether `ratio` is inside the inclusive tolerance band (`Tolerances.isWithin`).
pub(crate) fn is_within_tolerance(ratio: f64, up: f64, down: f64) -> bool {
    (1.0 - down) <= ratio && ratio <= (1.0 + up)
}

/// `int32(math.Ceil(x))`, saturating at 0 and `i32::MAX` as the HorizontalPodAutoscaler's
/// callers do.
pub(crate) fn ceil_replicas(x: f64) -> i32 {
    let c = x.ceil();
    if c.is_nan() || c <= 0.0 {
        0
    } else if c >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        c as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn state(spec: i32, status: i32, ready: Option<i32>) -> TargetState {
        TargetState {
            spec_replicas: spec,
            status_replicas: status,
            ready_replicas: ready,
        }
    }

    #[rstest]
    // Tolerance boundaries (inclusive, 0.1): ratio exactly 1.1 and 0.9 stay; just outside moves.
    #[case::value_at_upper_edge(Target::Value(200.0), 220.0, state(10, 10, Some(10)), 10)]
    #[case::value_just_above_edge(Target::Value(200.0), 220.2, state(10, 10, Some(10)), 12)]
    #[case::value_at_lower_edge(Target::Value(200.0), 180.0, state(10, 10, Some(10)), 10)]
    #[case::value_just_below_edge(Target::Value(200.0), 179.8, state(10, 10, Some(10)), 9)]
    #[case::value_below_edge_scales_down(Target::Value(200.0), 100.0, state(4, 4, Some(4)), 2)]
    // ceil at exact integers: 2.0 stays 2, a hair above goes to 3.
    #[case::value_ceil_exact(Target::Value(100.0), 200.0, state(1, 1, Some(1)), 2)]
    #[case::value_ceil_above(Target::Value(100.0), 200.1, state(1, 1, Some(1)), 3)]
    // Value multiplies the ready replicas, not spec or status (reference 1.2: 3 pods, 1 ready).
    #[case::value_uses_ready(Target::Value(10.0), 50.0, state(3, 3, Some(1)), 5)]
    #[case::value_all_unready(Target::Value(10.0), 50.0, state(3, 3, Some(0)), 0)]
    #[case::value_ready_unknown_uses_status(Target::Value(10.0), 50.0, state(3, 2, None), 10)]
    // Inside the band Value keeps spec replicas even if status differs.
    #[case::value_within_keeps_spec(Target::Value(100.0), 105.0, state(4, 2, Some(1)), 4)]
    #[case::value_no_pods_holds(Target::Value(100.0), 500.0, state(3, 0, Some(0)), 3)]
    // AverageValue: ceil(value / target), independent of the replica count outside the band.
    #[case::average_seed_1000(Target::AverageValue(200.0), 1000.0, state(1, 1, Some(1)), 5)]
    #[case::average_seed_300(Target::AverageValue(200.0), 300.0, state(1, 1, Some(1)), 2)]
    #[case::average_settles(Target::AverageValue(200.0), 300.0, state(2, 2, Some(2)), 2)]
    #[case::average_first_bucket(Target::AverageValue(200.0), 666.7, state(1, 1, Some(1)), 4)]
    #[case::average_ceil_exact(Target::AverageValue(200.0), 800.0, state(1, 1, Some(1)), 4)]
    // Inside the band AverageValue keeps *status* replicas (reference 1.3).
    #[case::average_within_keeps_status(
        Target::AverageValue(100.0),
        410.0,
        state(5, 4, Some(4)),
        4
    )]
    #[case::average_at_upper_edge(Target::AverageValue(100.0), 440.0, state(4, 4, Some(4)), 4)]
    #[case::average_zero_status(Target::AverageValue(100.0), 0.0, state(3, 0, Some(0)), 0)]
    #[case::average_zero_status_load(Target::AverageValue(100.0), 250.0, state(3, 0, Some(0)), 3)]
    #[case::average_zero_load(Target::AverageValue(200.0), 0.0, state(5, 5, Some(5)), 0)]
    fn proposals(
        #[case] target: Target,
        #[case] value: f64,
        #[case] state: TargetState,
        #[case] expected: i32,
    ) {
        assert_eq!(propose(target, value, &state, 0.1, 0.1), expected);
    }

    #[rstest]
    // Reference 1.4: 20666 vs 20000 (ratio 1.033) keeps 3 with 10 % but gives 4 with 1 % up.
    #[case::default_band(0.1, 0.1, 3)]
    #[case::tight_up(0.01, 0.1, 4)]
    #[case::zero_tolerance(0.0, 0.0, 4)]
    fn per_direction_tolerance(#[case] up: f64, #[case] down: f64, #[case] expected: i32) {
        let s = state(3, 3, Some(3));
        assert_eq!(
            propose(Target::Value(20000.0), 20666.0, &s, up, down),
            expected
        );
    }

    #[test]
    fn a_down_tolerance_does_not_widen_the_up_band() {
        let s = state(3, 3, Some(3));
        // ratio 0.95: inside with down 0.1, outside with down 0.01 → ceil(2.85) = 3 anyway.
        assert_eq!(propose(Target::Value(100.0), 95.0, &s, 0.5, 0.01), 3);
        // ratio 0.5 with a 0.6 down tolerance stays.
        assert_eq!(propose(Target::Value(100.0), 50.0, &s, 0.0, 0.6), 3);
        assert_eq!(propose(Target::Value(100.0), 50.0, &s, 0.6, 0.0), 2);
    }

    #[rstest]
    #[case(0.0, 0)]
    #[case(-0.5, 0)]
    #[case(1.0, 1)]
    #[case(1.000_000_1, 2)]
    #[case(f64::NAN, 0)]
    #[case(f64::INFINITY, i32::MAX)]
    #[case(3.0e9, i32::MAX)]
    fn ceil_saturates(#[case] x: f64, #[case] expected: i32) {
        assert_eq!(ceil_replicas(x), expected);
    }
}
