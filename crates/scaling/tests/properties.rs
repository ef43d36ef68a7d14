//! Property tests of `decide`: bounds, rate policies, determinism, monotonicity, stabilization
//! and status churn, over generated specs, histories, targets and samples.

mod common;

use api::{
    AviAutoscalerStatus, Behavior, DirectionRules, PolicyType, Reason, Recommendation,
    ResolvedSpec, ScaleEvent, SelectPolicy, k8s::Time,
};
use common::*;
use proptest::prelude::*;
use scaling::{Decision, Failure, Inputs, Sample, TargetState, decide};
use serde_json::{Value, json};

/// The time of the decisions under test (the generated histories lie before it).
const NOW: i64 = 100_000;

fn policy() -> impl Strategy<Value = Value> {
    (prop::bool::ANY, 1i32..200, 1i32..600).prop_map(|(pods, value, period)| {
        json!({"type": if pods { "Pods" } else { "Percent" }, "value": value, "periodSeconds": period})
    })
}

fn rules() -> impl Strategy<Value = Value> {
    (
        prop::option::of(0i32..600),
        prop::option::of(prop::sample::select(vec!["Max", "Min", "Disabled"])),
        prop::option::of(prop::collection::vec(policy(), 1..3)),
        prop::option::of(0.0f64..0.3),
    )
        .prop_map(|(window, select, policies, tolerance)| {
            let mut r = json!({});
            if let Some(w) = window {
                r["stabilizationWindowSeconds"] = json!(w);
            }
            if let Some(s) = select {
                r["selectPolicy"] = json!(s);
            }
            if let Some(p) = policies {
                r["policies"] = json!(p);
            }
            if let Some(t) = tolerance {
                r["tolerance"] = json!(t);
            }
            r
        })
}

fn target_metric() -> impl Strategy<Value = Value> {
    (prop::bool::ANY, 1.0f64..500.0).prop_map(|(value, amount)| {
        metric(if value { "Value" } else { "AverageValue" }, amount.round())
    })
}

/// A valid spec: 1 to 3 metrics, min 1..5, max above it, legacy or a random `behavior`, maybe a
/// fallback.
fn any_spec() -> impl Strategy<Value = ResolvedSpec> {
    (
        1i32..5,
        0i32..10,
        prop::collection::vec(target_metric(), 1..4),
        0.0f64..0.3,
        prop::option::of((prop::option::of(rules()), prop::option::of(rules()))),
        prop::option::of((1i32..4, 1i32..20)),
    )
        .prop_map(|(min, extra, metrics, tolerance, behavior, fallback)| {
            let metrics: Vec<Value> = metrics
                .into_iter()
                .enumerate()
                .map(|(i, mut m)| {
                    m["entity"]["name"] = json!(format!("pool-{i}"));
                    m
                })
                .collect();
            let mut patch = json!({
                "minReplicas": min,
                "maxReplicas": min + extra,
                "metrics": metrics,
                "tolerance": tolerance,
            });
            if let Some((up, down)) = behavior {
                let mut b = json!({});
                if let Some(up) = up {
                    b["scaleUp"] = up;
                }
                if let Some(down) = down {
                    b["scaleDown"] = down;
                }
                patch["behavior"] = b;
            }
            if let Some((threshold, replicas)) = fallback {
                patch["fallback"] = json!({"failureThreshold": threshold, "replicas": replicas});
            }
            spec(patch)
        })
}

fn time(offset: i64) -> Time {
    Time(at(offset))
}

/// A previous status with a random history (times before NOW) and no freshness record.
fn any_status() -> impl Strategy<Value = Option<AviAutoscalerStatus>> {
    prop::option::of((
        prop::collection::vec((0i32..15, 0i64..900), 0..6),
        prop::collection::vec((0i32..15, 0i32..15, 0i64..900), 0..6),
        0i32..4,
    ))
    .prop_map(|s| {
        s.map(|(recs, events, failures)| {
            let mut recs: Vec<(i32, i64)> = recs;
            recs.sort_by_key(|&(_, ago)| std::cmp::Reverse(ago));
            let mut events = events;
            events.sort_by_key(|&(_, _, ago)| std::cmp::Reverse(ago));
            AviAutoscalerStatus {
                recommendations: recs
                    .into_iter()
                    .map(|(replicas, ago)| Recommendation {
                        time: time(NOW - ago),
                        replicas,
                    })
                    .collect(),
                scale_events: events
                    .into_iter()
                    .map(|(from, to, ago)| ScaleEvent {
                        time: time(NOW - ago),
                        from,
                        to,
                    })
                    .collect(),
                consecutive_failures: failures,
                ..Default::default()
            }
        })
    })
}

fn any_target() -> impl Strategy<Value = TargetState> {
    (0i32..20, 0i32..20, prop::option::of(0i32..20)).prop_map(|(spec, status, ready)| TargetState {
        spec_replicas: spec,
        status_replicas: status,
        ready_replicas: ready.map(|r| r.min(status)),
    })
}

fn any_sample() -> impl Strategy<Value = Result<Sample, Failure>> {
    prop_oneof![
        8 => (0.0f64..5000.0).prop_map(|v| sample(v, NOW)),
        1 => Just(Err(Failure::new(Reason::AviUnreachable, "no endpoint answered"))),
    ]
}

fn inputs<'a>(
    spec: &'a ResolvedSpec,
    status: Option<&'a AviAutoscalerStatus>,
    target: TargetState,
    samples: Vec<Result<Sample, Failure>>,
) -> Inputs<'a> {
    Inputs {
        spec,
        generation: Some(3),
        status,
        target: Ok(target),
        samples,
        now: at(NOW),
    }
}

fn samples_for(count: usize) -> impl Strategy<Value = Vec<Result<Sample, Failure>>> {
    prop::collection::vec(any_sample(), count)
}

fn case() -> impl Strategy<
    Value = (
        ResolvedSpec,
        Option<AviAutoscalerStatus>,
        TargetState,
        Vec<Result<Sample, Failure>>,
    ),
> {
    any_spec().prop_flat_map(|spec| {
        let samples = samples_for(spec.metrics.len());
        (Just(spec), any_status(), any_target(), samples)
    })
}

/// The highest (scale-up) or lowest (scale-down) count the policies allow, computed from the
/// reference's formulas independently of the engine.
fn policy_bound(rules: &DirectionRules, up: bool, current: i32, events: &[ScaleEvent]) -> i64 {
    if rules.select_policy == SelectPolicy::Disabled {
        return i64::from(current);
    }
    let bounds = rules.policies.iter().map(|p| {
        let cutoff = T0 + NOW - i64::from(p.period_seconds);
        let (mut added, mut removed) = (0i64, 0i64);
        for e in events.iter().filter(|e| e.time.0.as_second() > cutoff) {
            let change = i64::from(e.to) - i64::from(e.from);
            if change >= 0 {
                added += change;
            } else {
                removed -= change;
            }
        }
        let start = (i64::from(current) - added + removed) as f64;
        let v = f64::from(p.value);
        match (p.kind, up) {
            (PolicyType::Pods, true) => start as i64 + i64::from(p.value),
            (PolicyType::Percent, true) => (start * (1.0 + v / 100.0)).ceil() as i64,
            (PolicyType::Pods, false) => start as i64 - i64::from(p.value),
            (PolicyType::Percent, false) => (start * (1.0 - v / 100.0)) as i64,
        }
    });
    // "Max" allows the largest change: the highest bound up, the lowest down.
    match (rules.select_policy, up) {
        (SelectPolicy::Max, true) | (SelectPolicy::Min, false) => bounds.max().unwrap(),
        _ => bounds.min().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_result_stays_within_min_and_max((spec, status, target, samples) in case()) {
        let resolved = &spec;
        let d = decide(&inputs(&spec, status.as_ref(), target, samples));
        if target.spec_replicas == 0 {
            prop_assert_eq!(d.desired_replicas, 0);
            prop_assert!(!d.scale);
        } else {
            prop_assert!(
                (resolved.min_replicas..=resolved.max_replicas).contains(&d.desired_replicas),
                "{} outside [{}, {}]", d.desired_replicas, resolved.min_replicas, resolved.max_replicas
            );
        }
        prop_assert_eq!(d.scale, d.desired_replicas != target.spec_replicas);
    }

    #[test]
    fn the_same_inputs_give_the_same_decision((spec, status, target, samples) in case()) {
        let a = decide(&inputs(&spec, status.as_ref(), target, samples.clone()));
        let b = decide(&inputs(&spec, status.as_ref(), target, samples));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_step_never_exceeds_what_the_policies_allow((spec, status, target, samples) in case()) {
        let resolved = &spec;
        let Behavior::Rules { scale_up, scale_down } = &resolved.behavior else {
            return Ok(());
        };
        let current = target.spec_replicas;
        if current < resolved.min_replicas || current > resolved.max_replicas {
            return Ok(()); // the prechecks skip the policies
        }
        let events = status.as_ref().map(|s| s.scale_events.clone()).unwrap_or_default();
        let d = decide(&inputs(&spec, status.as_ref(), target, samples));
        let desired = i64::from(d.desired_replicas);
        if d.desired_replicas > current {
            let bound = policy_bound(scale_up, true, current, &events).max(i64::from(current));
            prop_assert!(desired <= bound, "up to {desired}, policies allow {bound}");
        } else if d.desired_replicas < current {
            let bound = policy_bound(scale_down, false, current, &events).min(i64::from(current));
            prop_assert!(desired >= bound, "down to {desired}, policies allow {bound}");
        }
    }

    #[test]
    fn a_larger_metric_never_gives_fewer_replicas(
        (spec, status, replicas, samples) in any_spec().prop_flat_map(|spec| {
            let samples = samples_for(spec.metrics.len());
            (Just(spec), any_status(), 1i32..20, samples)
        }),
        which in 0usize..3,
        increase in 0.0f64..3000.0,
    ) {
        // Steady target (spec = status = ready): Value and AverageValue both monotone there.
        let target = steady(replicas);
        let which = which % samples.len();
        let mut larger = samples.clone();
        if let Ok(s) = &mut larger[which] {
            s.value += increase;
        }
        let a = decide(&inputs(&spec, status.as_ref(), target, samples));
        let b = decide(&inputs(&spec, status.as_ref(), target, larger));
        prop_assert!(
            a.desired_replicas <= b.desired_replicas,
            "{} then {} after increasing metric {which} by {increase}", a.desired_replicas, b.desired_replicas
        );
    }

    #[test]
    fn unchanged_inputs_leave_the_status_unchanged(
        (spec, status, target, samples) in case(),
    ) {
        // Every metric reads (a failed poll extends the failure streak by design).
        let samples: Vec<_> = samples
            .into_iter()
            .map(|s| s.or_else(|_| sample(100.0, NOW)))
            .collect();
        // Let the target follow until a poll does not scale, then poll again, unchanged.
        let mut status = status;
        let mut target = target;
        let mut first = decide(&inputs(&spec, status.as_ref(), target, samples.clone()));
        for _ in 0..10 {
            if !first.scale {
                break;
            }
            target = steady(first.desired_replicas);
            status = Some(round_trip(&first.status));
            first = decide(&inputs(&spec, status.as_ref(), target, samples.clone()));
        }
        prop_assume!(!first.scale);
        let stored = round_trip(&first.status);
        prop_assert_eq!(&stored, &first.status);
        let second = decide(&inputs(&spec, Some(&stored), target, samples));
        prop_assert!(second.events.is_empty(), "{:?}", second.events);
        prop_assert_eq!(second.status, first.status);
    }

    /// Run a random load against the engine, the target following each decision: no scale-down
    /// ever goes below a recommendation the HorizontalPodAutoscaler would still hold in its
    /// scale-down window.
    #[test]
    fn no_scale_down_while_a_higher_recommendation_is_inside_the_window(
        spec in any_spec(),
        polls in prop::collection::vec((1i64..120, 0.0f64..3000.0), 1..50),
    ) {
        let resolved = &spec;
        let (window, inclusive) = match &resolved.behavior {
            Behavior::Legacy { scale_down_window, .. } => (scale_down_window.as_secs() as i64, true),
            Behavior::Rules { scale_down, .. } => (scale_down.stabilization_window.as_secs() as i64, false),
        };
        let mut status: Option<AviAutoscalerStatus> = None;
        let mut replicas = resolved.min_replicas;
        let mut log: Vec<(i32, i64)> = Vec::new();
        let mut now = 0;
        for (gap, value) in polls {
            now += gap;
            // Without a freshness record every proposal is recorded as it is.
            if let Some(s) = status.as_mut() {
                s.freshness = None;
            }
            if status.is_none() {
                log.push((replicas, now)); // the seed
            }
            let samples = spec.metrics.iter().map(|_| sample(value, now)).collect();
            let d: Decision = decide(&Inputs {
                spec: &spec,
                generation: Some(1),
                status: status.as_ref(),
                target: Ok(steady(replicas)),
                samples,
                now: at(now),
            });
            if let Some(r) = d.proposals.iter().filter_map(|p| p.replicas).max() {
                log.push((r, now));
            }
            if d.scale && d.desired_replicas < replicas {
                for &(r, t) in &log {
                    let inside = if inclusive { now - t <= window } else { now - t < window };
                    prop_assert!(
                        !inside || r <= d.desired_replicas,
                        "scaled down to {} at {now} while {r} from {t} is inside the {window} s window",
                        d.desired_replicas
                    );
                }
            }
            if d.scale {
                replicas = d.desired_replicas;
            }
            status = Some(round_trip(&d.status));
        }
    }
}
