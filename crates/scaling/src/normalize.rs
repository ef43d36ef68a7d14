//! From the combined proposal to the replica count to write: stabilization, rate limits and
//! min/max.
//!
//! Follows kubernetes/kubernetes `pkg/controller/podautoscaler/horizontal.go`:
//! `normalizeDesiredReplicas` with `convertDesiredReplicasWithRules` when `spec.behavior` is
//! absent (the legacy path), and `normalizeDesiredReplicasWithBehaviors` with
//! `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
//! `calculateScaleUpLimitWithScalingRules` and `calculateScaleDownLimitWithBehaviors` when it is
//! present. This module only computes; the caller records the recommendation afterwards, as the
//! HorizontalPodAutoscaler records it after reading the window.

use api::{Behavior, DirectionRules, PolicyType, Reason, ResolvedSpec, SelectPolicy};

use crate::{
    clock::Seconds,
    conditions,
    history::{Edge, Recommendations, ScaleEvents},
};

/// The normalised replica count and the conditions that explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Normalized {
    /// The replica count to have.
    pub(crate) replicas: i32,
    /// AbleToScale (always True here): `ReadyForNewScale`, `ScaleUpStabilized` or
    /// `ScaleDownStabilized`.
    pub(crate) able_to_scale: (Reason, &'static str),
    /// ScalingLimited: whether the limits changed the stabilized count, and the reason.
    pub(crate) limited: (bool, Reason),
}

/// Normalises the combined proposal `desired` for a target at `current` replicas.
pub(crate) fn normalize(
    spec: &ResolvedSpec,
    current: i32,
    desired: i32,
    history: &Recommendations,
    events: &ScaleEvents,
    now: Seconds,
) -> Normalized {
    let (stabilized, able_to_scale) = stabilize(&spec.behavior, current, desired, history, now);
    let (replicas, reason) = match &spec.behavior {
        Behavior::Legacy { .. } => {
            legacy_limits(current, stabilized, spec.min_replicas, spec.max_replicas)
        }
        Behavior::Rules {
            scale_up,
            scale_down,
        } => rate_limits(
            current,
            stabilized,
            spec.min_replicas,
            spec.max_replicas,
            scale_up,
            scale_down,
            events,
            now,
        ),
    };
    Normalized {
        replicas,
        able_to_scale,
        limited: (replicas != stabilized, reason),
    }
}

/// Step 1: the stabilization window(s).
///
/// Legacy: `max(desired, recommendations inside the scale-down window)`
/// (`stabilizeRecommendation`). With `behavior`: a scale-up goes only to the lowest
/// recommendation of the scale-up window, a scale-down only to the highest of the scale-down
/// window: `min(max(current, upRec), downRec)`.
fn stabilize(
    behavior: &Behavior,
    current: i32,
    desired: i32,
    history: &Recommendations,
    now: Seconds,
) -> (i32, (Reason, &'static str)) {
    match behavior {
        Behavior::Legacy {
            scale_down_window, ..
        } => {
            let stabilized = history
                .max_within(now, *scale_down_window, Edge::Inclusive)
                .map_or(desired, |m| m.max(desired));
            let able = if stabilized != desired {
                (
                    Reason::ScaleDownStabilized,
                    conditions::SCALE_DOWN_STABILIZED,
                )
            } else {
                (Reason::ReadyForNewScale, conditions::READY_FOR_NEW_SCALE)
            };
            (stabilized, able)
        }
        Behavior::Rules {
            scale_up,
            scale_down,
        } => {
            let up = history
                .min_within(now, scale_up.stabilization_window, Edge::Exclusive)
                .map_or(desired, |m| m.min(desired));
            let down = history
                .max_within(now, scale_down.stabilization_window, Edge::Exclusive)
                .map_or(desired, |m| m.max(desired));
            let stabilized = current.max(up).min(down);
            let able = if stabilized == desired {
                (Reason::ReadyForNewScale, conditions::READY_FOR_NEW_SCALE)
            } else if desired >= current {
                (Reason::ScaleUpStabilized, conditions::SCALE_UP_STABILIZED)
            } else {
                (
                    Reason::ScaleDownStabilized,
                    conditions::SCALE_DOWN_STABILIZED,
                )
            };
            (stabilized, able)
        }
    }
}

/// Step 2 without `behavior` (`convertDesiredReplicasWithRules`): at most
/// `max(2 × current, 4)` per step, then min/max. No scale-down rate limit.
fn legacy_limits(current: i32, stabilized: i32, min: i32, max: i32) -> (i32, Reason) {
    // int32(math.Max(scaleUpLimitFactor*float64(currentReplicas), scaleUpLimitMinimum))
    let scale_up_limit = saturate(
        (api::resolved::LEGACY_SCALE_UP_FACTOR * f64::from(current))
            .max(f64::from(api::resolved::LEGACY_SCALE_UP_MINIMUM)) as i64,
    );
    let (max_allowed, cap_reason) = if max > scale_up_limit {
        (scale_up_limit, Reason::ScaleUpLimit)
    } else {
        (max, Reason::TooManyReplicas)
    };
    if stabilized < min {
        (min, Reason::TooFewReplicas)
    } else if stabilized > max_allowed {
        (max_allowed, cap_reason)
    } else {
        (stabilized, Reason::DesiredWithinRange)
    }
}

/// Step 2 with `behavior` (`convertDesiredReplicasWithBehaviorRate`): the rate policies of the
/// direction of movement, never past the current count, then min or max in that direction only.
#[allow(clippy::too_many_arguments)]
fn rate_limits(
    current: i32,
    stabilized: i32,
    min: i32,
    max: i32,
    up: &DirectionRules,
    down: &DirectionRules,
    events: &ScaleEvents,
    now: Seconds,
) -> (i32, Reason) {
    if stabilized > current {
        let limit = scale_up_limit(current, up, events, now).max(current);
        let (allowed, reason) = if max > limit {
            (limit, Reason::ScaleUpLimit)
        } else {
            (max, Reason::TooManyReplicas)
        };
        if stabilized > allowed {
            return (allowed, reason);
        }
    } else if stabilized < current {
        let limit = scale_down_limit(current, down, events, now).min(current);
        let (allowed, reason) = if min < limit {
            (limit, Reason::ScaleDownLimit)
        } else {
            (min, Reason::TooFewReplicas)
        };
        if stabilized < allowed {
            return (allowed, reason);
        }
    }
    (stabilized, Reason::DesiredWithinRange)
}

/// The highest count the scale-up policies allow now (`calculateScaleUpLimitWithScalingRules`).
/// Each policy starts from the count at the start of its period:
/// `current - added + removed` over the scale events younger than `periodSeconds`.
fn scale_up_limit(current: i32, rules: &DirectionRules, events: &ScaleEvents, now: Seconds) -> i32 {
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, events, now, p.period_seconds);
        match p.kind {
            PolicyType::Pods => start + i64::from(p.value),
            // Rounded up, or a small target could never grow.
            PolicyType::Percent => {
                (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
            }
        }
    });
    let limit = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => proposals.max(),
        SelectPolicy::Min => proposals.min(),
    };
    limit.map_or(current, saturate)
}

/// The lowest count the scale-down policies allow now (`calculateScaleDownLimitWithBehaviors`).
fn scale_down_limit(
    current: i32,
    rules: &DirectionRules,
    events: &ScaleEvents,
    now: Seconds,
) -> i32 {
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, events, now, p.period_seconds);
        match p.kind {
            PolicyType::Pods => start - i64::from(p.value),
            // int32(float64(periodStartReplicas) * (1 - value/100)): truncated.
            PolicyType::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
        }
    });
    // The policy allowing the largest change gives the lowest count.
    let limit = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => proposals.min(),
        SelectPolicy::Min => proposals.max(),
    };
    limit.map_or(current, saturate)
}

fn period_start(current: i32, events: &ScaleEvents, now: Seconds, period_seconds: i32) -> i64 {
    let period = std::time::Duration::from_secs(u64::try_from(period_seconds).unwrap_or(0));
    let (added, removed) = events.changes_within(now, period);
    i64::from(current) - added + removed
}

fn saturate(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use api::{ScalingPolicy, resolved::DEFAULT_SCALE_DOWN_WINDOW};
    use rstest::rstest;

    use super::*;
    use crate::clock::time_at;

    const NOW: Seconds = 1_000_000;

    fn pods(value: i32, period_seconds: i32) -> ScalingPolicy {
        ScalingPolicy {
            kind: PolicyType::Pods,
            value,
            period_seconds,
        }
    }

    fn percent(value: i32, period_seconds: i32) -> ScalingPolicy {
        ScalingPolicy {
            kind: PolicyType::Percent,
            value,
            period_seconds,
        }
    }

    fn rules(window: u64, select: SelectPolicy, policies: Vec<ScalingPolicy>) -> DirectionRules {
        DirectionRules {
            stabilization_window: Duration::from_secs(window),
            select_policy: select,
            policies,
            tolerance: 0.1,
        }
    }

    fn events(list: &[(i64, i32, i32)]) -> ScaleEvents {
        let mut e = ScaleEvents::default();
        for &(ago, from, to) in list {
            e.record(from, to, NOW - ago);
        }
        e
    }

    fn history(list: &[(i32, i64)]) -> Recommendations {
        let status: Vec<api::Recommendation> = list
            .iter()
            .map(|&(replicas, ago)| api::Recommendation {
                time: time_at(NOW - ago),
                replicas,
            })
            .collect();
        Recommendations::from_status(&status)
    }

    // Reference 2.5 examples and the edges around periodSeconds.
    #[rstest]
    // current 10, desired 50, default policies → max(10 + 4, 20) = 20.
    #[case::defaults(10, &[], DirectionRules::default_scale_up(0.1), 20)]
    // Events up {1@100s, 5@60s, 9@20s}, Pods 150/120s, current 100 → start 85, limit 235.
    #[case::pods_over_period(100, &[(100, 0, 1), (60, 0, 5), (20, 0, 9)], rules(0, SelectPolicy::Max, vec![pods(150, 120)]), 235)]
    // Events up {4@60s} and down {2@60s}, Percent 300/300s, current 6 → start 4, limit 16.
    #[case::both_directions_count(6, &[(60, 0, 4), (60, 2, 0)], rules(0, SelectPolicy::Max, vec![percent(300, 300)]), 16)]
    // An event exactly periodSeconds old no longer counts; one a second younger does.
    #[case::event_just_outside(5, &[(15, 1, 5)], rules(0, SelectPolicy::Max, vec![pods(4, 15)]), 9)]
    #[case::event_just_inside(5, &[(14, 1, 5)], rules(0, SelectPolicy::Max, vec![pods(4, 15)]), 5)]
    // Min picks the smallest change, Disabled none.
    #[case::select_min(10, &[], rules(0, SelectPolicy::Min, vec![pods(4, 15), percent(100, 15)]), 14)]
    #[case::select_disabled(10, &[], rules(0, SelectPolicy::Disabled, vec![pods(4, 15)]), 10)]
    // Percent rounds up: 1 × 1.1 → 2.
    #[case::percent_rounds_up(1, &[], rules(0, SelectPolicy::Max, vec![percent(10, 60)]), 2)]
    fn scale_up_limits(
        #[case] current: i32,
        #[case] past: &[(i64, i32, i32)],
        #[case] rules: DirectionRules,
        #[case] expected: i32,
    ) {
        assert_eq!(
            scale_up_limit(current, &rules, &events(past), NOW),
            expected
        );
    }

    #[rstest]
    // Events down {10,10,10} within 120 s, Percent 10/120s, current 100 → start 130, trunc(117).
    #[case::percent_over_period(100, &[(100, 120, 110), (60, 110, 100), (20, 130, 120)], rules(300, SelectPolicy::Max, vec![percent(10, 120)]), 117)]
    #[case::defaults(10, &[], DirectionRules::default_scale_down(0.1), 0)]
    #[case::percent_truncates(7, &[], rules(300, SelectPolicy::Max, vec![percent(50, 60)]), 3)]
    #[case::pods(7, &[], rules(300, SelectPolicy::Max, vec![pods(2, 60)]), 5)]
    #[case::select_min(10, &[], rules(300, SelectPolicy::Min, vec![pods(2, 60), percent(50, 60)]), 8)]
    #[case::select_disabled(10, &[], rules(300, SelectPolicy::Disabled, vec![pods(2, 60)]), 10)]
    #[case::event_just_inside(5, &[(59, 7, 5)], rules(300, SelectPolicy::Max, vec![pods(2, 60)]), 5)]
    #[case::event_just_outside(5, &[(60, 7, 5)], rules(300, SelectPolicy::Max, vec![pods(2, 60)]), 3)]
    fn scale_down_limits(
        #[case] current: i32,
        #[case] past: &[(i64, i32, i32)],
        #[case] rules: DirectionRules,
        #[case] expected: i32,
    ) {
        assert_eq!(
            scale_down_limit(current, &rules, &events(past), NOW),
            expected
        );
    }

    fn behavior(up: DirectionRules, down: DirectionRules) -> Behavior {
        Behavior::Rules {
            scale_up: up,
            scale_down: down,
        }
    }

    fn spec(behavior: Behavior, min: i32, max: i32) -> ResolvedSpec {
        ResolvedSpec {
            scale_target_ref: api::ScaleTargetRef {
                api_version: "apps/v1".to_owned(),
                kind: "Deployment".to_owned(),
                name: "web".to_owned(),
            },
            connection: api::ConnectionSource::Reference("avi".to_owned()),
            min_replicas: min,
            max_replicas: max,
            polling_interval: Duration::from_secs(15),
            behavior,
            metrics: Vec::new(),
            fallback: None,
            paused: false,
            dry_run: false,
            scale_to_zero_cooldown: Duration::from_secs(300),
        }
    }

    fn legacy() -> Behavior {
        Behavior::Legacy {
            scale_down_window: DEFAULT_SCALE_DOWN_WINDOW,
            tolerance: 0.1,
        }
    }

    fn defaults() -> Behavior {
        behavior(
            DirectionRules::default_scale_up(0.1),
            DirectionRules::default_scale_down(0.1),
        )
    }

    #[rstest]
    // Reference 2.4: history {4 @120s, 5 @60s}, current 100, desired 3, down window 180 → 5.
    #[case::down_window(behavior(rules(0, SelectPolicy::Max, vec![pods(1000, 15)]), rules(180, SelectPolicy::Max, vec![percent(100, 15)])), &[(4, 120), (5, 60)], 100, 3, (1, 1000), (5, Reason::ScaleDownStabilized, (false, Reason::DesiredWithinRange)))]
    // Same history, current 1, desired 7, up window 300 → 4.
    #[case::up_window(behavior(rules(300, SelectPolicy::Max, vec![pods(100, 15)]), rules(0, SelectPolicy::Max, vec![percent(100, 15)])), &[(4, 120), (5, 60)], 1, 7, (1, 1000), (4, Reason::ScaleUpStabilized, (false, Reason::DesiredWithinRange)))]
    // History {2 @6000s, 3 @180s (current)}, current 2, desired 1, both windows 300 → 2.
    #[case::both_windows(behavior(rules(300, SelectPolicy::Max, vec![pods(4, 15)]), rules(300, SelectPolicy::Max, vec![percent(100, 15)])), &[(2, 6000), (3, 180)], 2, 1, (1, 10), (2, Reason::ScaleDownStabilized, (false, Reason::DesiredWithinRange)))]
    // Windows of 0: nothing from the past counts.
    #[case::zero_windows(behavior(rules(0, SelectPolicy::Max, vec![pods(4, 15)]), rules(0, SelectPolicy::Max, vec![percent(100, 15)])), &[(9, 1), (8, 0)], 5, 2, (1, 10), (2, Reason::ReadyForNewScale, (false, Reason::DesiredWithinRange)))]
    // Defaults: 10 → 50 is limited to 20.
    #[case::default_rate(defaults(), &[(10, 400)], 10, 50, (1, 100), (20, Reason::ReadyForNewScale, (true, Reason::ScaleUpLimit)))]
    #[case::max_caps(defaults(), &[(2, 400)], 2, 9, (1, 5), (5, Reason::ReadyForNewScale, (true, Reason::TooManyReplicas)))]
    #[case::min_floors(defaults(), &[(4, 400), (0, 400)], 4, 0, (2, 5), (2, Reason::ReadyForNewScale, (true, Reason::TooFewReplicas)))]
    // min = max: nothing moves, the limit says why.
    #[case::min_equals_max_up(defaults(), &[(3, 400)], 3, 9, (3, 3), (3, Reason::ReadyForNewScale, (true, Reason::TooManyReplicas)))]
    #[case::min_equals_max_down(defaults(), &[(1, 400)], 3, 1, (3, 3), (3, Reason::ReadyForNewScale, (true, Reason::TooFewReplicas)))]
    // selectPolicy Disabled holds the direction.
    #[case::up_disabled(behavior(rules(0, SelectPolicy::Disabled, vec![pods(4, 15)]), DirectionRules::default_scale_down(0.1)), &[(3, 400)], 3, 9, (1, 10), (3, Reason::ReadyForNewScale, (true, Reason::ScaleUpLimit)))]
    #[case::down_disabled(behavior(DirectionRules::default_scale_up(0.1), rules(0, SelectPolicy::Disabled, vec![pods(4, 15)])), &[(3, 400)], 3, 1, (1, 10), (3, Reason::ReadyForNewScale, (true, Reason::ScaleDownLimit)))]
    // Legacy: the 300 s window keeps the highest recommendation; scale-ups capped at max(2n, 4).
    #[case::legacy_window(legacy(), &[(5, 100), (2, 50)], 5, 2, (1, 10), (5, Reason::ScaleDownStabilized, (false, Reason::DesiredWithinRange)))]
    #[case::legacy_window_expired(legacy(), &[(5, 301), (2, 301)], 5, 1, (1, 10), (2, Reason::ScaleDownStabilized, (false, Reason::DesiredWithinRange)))]
    // The legacy window counts an entry exactly 300 s old (not Before(cutoff)).
    #[case::legacy_window_edge_inclusive(legacy(), &[(5, 300), (2, 300)], 5, 1, (1, 10), (5, Reason::ScaleDownStabilized, (false, Reason::DesiredWithinRange)))]
    #[case::legacy_cap_minimum(legacy(), &[(1, 400)], 1, 9, (1, 10), (4, Reason::ReadyForNewScale, (true, Reason::ScaleUpLimit)))]
    #[case::legacy_cap_double(legacy(), &[(3, 400)], 3, 9, (1, 10), (6, Reason::ReadyForNewScale, (true, Reason::ScaleUpLimit)))]
    #[case::legacy_cap_is_max(legacy(), &[(3, 400)], 3, 9, (1, 5), (5, Reason::ReadyForNewScale, (true, Reason::TooManyReplicas)))]
    #[case::legacy_min(legacy(), &[(0, 400)], 2, 0, (1, 5), (1, Reason::ReadyForNewScale, (true, Reason::TooFewReplicas)))]
    fn normalization(
        #[case] behavior: Behavior,
        #[case] past: &[(i32, i64)],
        #[case] current: i32,
        #[case] desired: i32,
        #[case] (min, max): (i32, i32),
        #[case] (expected, able, limited): (i32, Reason, (bool, Reason)),
    ) {
        let n = normalize(
            &spec(behavior, min, max),
            current,
            desired,
            &history(past),
            &ScaleEvents::default(),
            NOW,
        );
        assert_eq!(n.replicas, expected);
        assert_eq!(n.able_to_scale.0, able);
        assert_eq!(n.limited, limited);
    }
}
