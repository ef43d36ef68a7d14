//! `decide` end to end: each rule through the public API, with the status read back from JSON
//! between polls as the API server would hand it back.

mod common;

use api::{
    AviAutoscalerStatus, ConditionType::*, EventReason, InvalidSpec, Reason, ScaleDirection,
    SpecViolation,
};
use common::*;
use rstest::rstest;
use scaling::{
    EventType, Failure, HeldInputs, Inputs, InvalidInputs, Sample, TargetState, decide,
    decide_held, decide_invalid,
};
use serde_json::json;

#[test]
fn the_seed_first_poll_scales_up_as_far_as_the_legacy_cap() {
    let s = spec(json!({}));
    let d = poll(&s, None, steady(1), vec![sample(1000.0, 0)], 0);
    assert!(d.scale);
    // ceil(1000 / 200) = 5, but without behavior one step reaches at most max(2 × 1, 4).
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(d.proposals[0].replicas, Some(5));
    assert_eq!(
        d.events[0].message,
        "New size: 4; reason: pool/kuard l4_server.avg_open_conns above target"
    );
    assert_eq!(d.events[0].type_(), EventType::Normal);
    assert_eq!(d.events[0].reason, EventReason::SuccessfulRescale);
    assert_eq!(reason(&d, AbleToScale), is("True", "SucceededRescale"));
    assert_eq!(
        condition(&d, AbleToScale).message,
        "the autoscaler was able to update the target scale to 4"
    );
    assert_eq!(reason(&d, ScalingActive), is("True", "ValidMetricFound"));
    assert_eq!(reason(&d, ScalingLimited), is("True", "ScaleUpLimit"));
    assert_eq!(reason(&d, Ready), is("True", "Active"));
    let st = &d.status;
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!((st.current_replicas, st.desired_replicas), (1, 4));
    assert_eq!(st.last_scale_time.as_ref().map(|t| t.0), Some(at(0)));
    assert_eq!(st.metric_summary.as_deref(), Some("1000/200 (avg)"));
    let m = &st.current_metrics[0];
    assert_eq!(
        (m.value, m.average_value, m.series),
        (Some(1000.0), Some(1000.0), Some(1))
    );
    // The history: the seed (current replicas, superseded now) and the recommendation.
    let recs: Vec<(i32, i64)> = st
        .recommendations
        .iter()
        .map(|r| (r.replicas, r.time.0.as_second() - T0))
        .collect();
    assert_eq!(recs, [(1, 0), (5, 0)]);
    // Without behavior no scale events are kept (storeScaleEvent).
    assert!(st.scale_events.is_empty());
    let f = st.freshness.as_ref().unwrap();
    assert_eq!(f.direction, ScaleDirection::Up);
    assert_eq!(f.samples[0].value, 1000.0);
    // Conditions come in a fixed order, all stamped now.
    let types: Vec<&str> = st.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["AbleToScale", "ScalingActive", "ScalingLimited", "Ready"]
    );
}

#[test]
fn unchanged_polls_return_the_previous_status() {
    let mut l = Loop::new(spec(json!({})), 1);
    l.poll(vec![sample(300.0, 0)], 0);
    assert_eq!(l.replicas(), 2);
    let settled = l.poll(vec![sample(300.0, 15)], 15);
    assert!(!settled.scale);
    for t in (30..300).step_by(15) {
        let d = l.poll(vec![sample(300.0, t)], t);
        assert!(!d.scale, "t={t}");
        assert!(d.events.is_empty(), "t={t}: {:?}", d.events);
        assert_eq!(d.status, settled.status, "the status moved at t={t}");
    }
}

#[test]
fn a_stale_bucket_does_not_step_twice_in_one_direction() {
    // Value on a pool Sum, 300 connections, target 200: the HPA would go 1 → 2 → 3 → 5 on one
    // bucket; here each further step waits for a newer one.
    let s = spec(json!({"metrics": [metric("Value", 200.0)]}));
    let mut l = Loop::new(s, 1);
    assert!(l.poll(vec![sample(300.0, 0)], 0).scale);
    assert_eq!(l.replicas(), 2);
    let mut message = String::new();
    for t in (15..300).step_by(15) {
        let d = l.poll(vec![sample(300.0, t)], t);
        message = condition(&d, AbleToScale).message.clone();
        assert!(!d.scale, "t={t}: stepped on the same bucket");
        assert_eq!(reason(&d, AbleToScale), is("True", "WaitingForFreshSample"));
        assert_eq!(d.proposals[0].replicas, Some(2));
        assert_eq!(d.proposals[0].held_from, Some(3));
        assert_eq!(reason(&d, Ready), is("True", "Active"));
    }
    assert!(message.contains("still reads 300"), "{message}");
    assert!(message.contains("2026-01-01T00:05:00Z"), "{message}");
    // A full aggregation period after the scale the same value is a new bucket.
    let d = l.poll(vec![sample(300.0, 300)], 300);
    assert!(d.scale);
    assert_eq!(d.desired_replicas, 3);
}

#[test]
fn a_changed_value_is_fresh_at_once() {
    let s = spec(json!({"metrics": [metric("Value", 200.0)]}));
    let mut l = Loop::new(s, 1);
    l.poll(vec![sample(300.0, 0)], 0);
    assert!(!l.poll(vec![sample(300.0, 15)], 15).scale);
    let d = l.poll(vec![sample(310.0, 30)], 30);
    assert!(d.scale, "{:?}", d.status.conditions);
    assert_eq!(d.desired_replicas, 4); // ceil(310 / 200 × 2)
}

#[test]
fn the_freshness_rule_holds_only_the_direction_of_the_last_scale() {
    let s = spec(json!({
        "metrics": [metric("Value", 200.0)],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
    }));
    let first = poll(&s, None, steady(1), vec![sample(300.0, 0)], 0);
    assert_eq!(first.desired_replicas, 2);
    // The same, stale value; no pod is ready, so the Value target proposes 0: a step down, the
    // other direction from the last scale, which the rule does not hold.
    let unready = TargetState {
        spec_replicas: 2,
        status_replicas: 2,
        ready_replicas: Some(0),
    };
    let d = poll(
        &s,
        Some(&round_trip(&first.status)),
        unready,
        vec![sample(300.0, 15)],
        15,
    );
    assert_eq!(d.proposals[0].held_from, None);
    assert_eq!((d.scale, d.desired_replicas), (true, 1));
    assert_eq!(
        d.status.freshness.as_ref().unwrap().direction,
        ScaleDirection::Down
    );
}

#[test]
fn a_rate_limited_step_completes_on_the_same_bucket_but_goes_no_further() {
    // AverageValue, 1000 connections: 1 → 4 (legacy cap), then on to the recommendation 5 it
    // was made for at the next poll, as the HorizontalPodAutoscaler would: re-reading the same
    // value is no new information, but finishing the step it asked for is not a second step.
    let mut l = Loop::new(spec(json!({})), 1);
    let first = l.poll(vec![sample(1000.0, 0)], 0);
    assert_eq!(l.replicas(), 4);
    let record = first.status.freshness.clone().unwrap();
    assert_eq!(record.recommendation, Some(5));
    assert_eq!(record.samples[0].replicas, Some(5));
    let d = l.poll(vec![sample(1000.0, 15)], 15);
    assert_eq!((d.scale, d.desired_replicas), (true, 5));
    // The continuation keeps the record of the scale that first read the value.
    assert_eq!(d.status.freshness, Some(record));

    // A Value target on a sum, capped the same way, completes its step but never multiplies the
    // stale ratio by the new replica count: 1000/200 on 1 ready pod asks for 5, capped at 4;
    // at 4 ready pods the same value would ask for 20.
    let s = spec(json!({"metrics": [metric("Value", 200.0)], "maxReplicas": 20}));
    let mut l = Loop::new(s, 1);
    l.poll(vec![sample(1000.0, 0)], 0);
    assert_eq!(l.replicas(), 4);
    let d = l.poll(vec![sample(1000.0, 15)], 15);
    assert_eq!((d.scale, d.desired_replicas), (true, 5));
    assert_eq!(d.proposals[0].held_from, Some(20));
    let d = l.poll(vec![sample(1000.0, 30)], 30);
    assert!(!d.scale, "stepped past the recommendation on a stale value");
    assert_eq!(reason(&d, AbleToScale), is("True", "WaitingForFreshSample"));
}

#[test]
fn an_object_without_a_freshness_record_is_not_held_back() {
    let s = spec(json!({"metrics": [metric("Value", 200.0)]}));
    let mut l = Loop::new(s, 1);
    l.poll(vec![sample(300.0, 0)], 0);
    l.status.as_mut().unwrap().freshness = None;
    let d = l.poll(vec![sample(300.0, 15)], 15);
    assert_eq!((d.scale, d.desired_replicas), (true, 3));
}

#[test]
fn sample_time_is_when_a_value_was_first_read() {
    let mut l = Loop::new(spec(json!({})), 2);
    l.poll(vec![sample(300.0, 0)], 0);
    let d = l.poll(vec![sample(300.0, 15)], 15);
    assert_eq!(
        d.status.current_metrics[0].sample_time.as_ref().unwrap().0,
        at(0)
    );
    let d = l.poll(vec![sample(320.0, 30)], 30);
    assert_eq!(
        d.status.current_metrics[0].sample_time.as_ref().unwrap().0,
        at(30)
    );
}

#[test]
fn transition_times_move_only_when_a_condition_flips() {
    let mut l = Loop::new(spec(json!({})), 2);
    let first = l.poll(vec![sample(300.0, 0)], 0);
    let ready_since = condition(&first, Ready).last_transition_time.clone();
    // AbleToScale stays True while its reason changes; ScalingActive flips to False and back.
    let failing = l.poll(
        vec![Err(Failure::new(
            Reason::AviUnreachable,
            "no endpoint answered",
        ))],
        15,
    );
    assert_eq!(
        condition(&failing, AbleToScale).last_transition_time.0,
        at(0)
    );
    assert_eq!(
        condition(&failing, ScalingActive).last_transition_time.0,
        at(15)
    );
    assert_eq!(condition(&failing, Ready).last_transition_time.0, at(15));
    let back = l.poll(vec![sample(300.0, 30)], 30);
    assert_eq!(
        condition(&back, ScalingActive).last_transition_time.0,
        at(30)
    );
    assert_ne!(condition(&back, Ready).last_transition_time, ready_since);
    let again = l.poll(vec![sample(300.0, 45)], 45);
    assert_eq!(condition(&again, Ready).last_transition_time.0, at(30));
}

#[rstest]
#[case::disabled_at_zero(0, 0, false, is("False", "ScalingDisabled"), "")]
#[case::above_max(
    7,
    5,
    true,
    is("True", "ValidMetricFound"),
    "Current number of replicas above Spec.MaxReplicas"
)]
#[case::below_min(
    1,
    2,
    true,
    is("True", "ValidMetricFound"),
    "Current number of replicas below Spec.MinReplicas"
)]
fn prechecks(
    #[case] current: i32,
    #[case] expected: i32,
    #[case] scales: bool,
    #[case] scaling_active: (String, String),
    #[case] why: &str,
) {
    let s = spec(json!({"minReplicas": 2, "maxReplicas": 5}));
    // 400 connections want 2: the prechecks ignore it.
    let d = poll(&s, None, steady(current), vec![sample(400.0, 0)], 0);
    assert_eq!((d.scale, d.desired_replicas), (scales, expected));
    assert_eq!(d.status.desired_replicas, expected);
    assert_eq!(reason(&d, ScalingActive), scaling_active);
    if scales {
        assert_eq!(
            d.events[0].message,
            format!("New size: {expected}; reason: {why}")
        );
        // The prechecks skip normalization: nothing recorded but the seed.
        assert_eq!(d.status.recommendations.len(), 1);
    } else {
        assert_eq!(reason(&d, Ready), is("False", "ScalingDisabled"));
        assert!(d.events.is_empty());
    }
}

#[test]
fn an_invalid_spec_holds_and_names_the_field() {
    let invalid = InvalidSpec(vec![SpecViolation {
        field: "spec.maxReplicas".to_owned(),
        message: "Invalid value: 2: maxReplicas must be greater than or equal to minReplicas"
            .to_owned(),
    }]);
    let poll_invalid = |status: Option<&AviAutoscalerStatus>, offset| {
        decide_invalid(&InvalidInputs {
            invalid: &invalid,
            generation: Some(1),
            status,
            target: Ok(steady(3)),
            now: at(offset),
        })
    };
    let d = poll_invalid(None, 0);
    assert!(!d.scale);
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(d.status.current_replicas, 3);
    assert!(d.proposals.is_empty());
    assert_eq!(reason(&d, ScalingActive), is("False", "InvalidSpec"));
    assert_eq!(reason(&d, Ready), is("False", "InvalidSpec"));
    let message = &condition(&d, Ready).message;
    assert!(message.contains("spec.maxReplicas"), "{message}");
    assert_eq!(
        message,
        "the spec cannot be used: spec.maxReplicas: Invalid value: 2: maxReplicas must be greater than or equal to minReplicas"
    );
    assert_eq!(event_reasons(&d), [EventReason::InvalidSpec]);
    // Polled again, unchanged: no new event, same status.
    let again = poll_invalid(Some(&round_trip(&d.status)), 15);
    assert!(again.events.is_empty());
    assert_eq!(again.status, d.status);
}

#[test]
fn a_held_autoscaler_keeps_the_count_says_why_and_resumes() {
    let s = spec(json!({}));
    let before = poll(&s, None, steady(2), vec![sample(400.0, 0)], 0).status;
    let hold = Failure::new(
        Reason::ConflictingHorizontalPodAutoscaler,
        "the HorizontalPodAutoscaler kuard also manages Deployment kuard; this autoscaler holds",
    );
    let held = |status: &AviAutoscalerStatus, replicas, t| {
        decide_held(&HeldInputs {
            hold: &hold,
            generation: Some(1),
            status: Some(status),
            target: Ok(steady(replicas)),
            now: at(t),
        })
    };
    // The HPA moved the target to 7: reported, never undone.
    let d = held(&before, 7, 15);
    assert!(!d.scale);
    assert_eq!(
        (
            d.status.current_replicas,
            d.status.desired_replicas,
            d.desired_replicas
        ),
        (7, 7, 7)
    );
    assert!(d.proposals.is_empty());
    assert_eq!(
        reason(&d, AbleToScale),
        is("False", "ConflictingHorizontalPodAutoscaler")
    );
    assert_eq!(condition(&d, AbleToScale).message, hold.message);
    assert_eq!(
        reason(&d, Ready),
        is("False", "ConflictingHorizontalPodAutoscaler")
    );
    assert_eq!(
        event_reasons(&d),
        [EventReason::ConflictingHorizontalPodAutoscaler]
    );
    // Still held: no new event, the same status.
    let again = held(&round_trip(&d.status), 7, 30);
    assert!(again.events.is_empty());
    assert_eq!(again.status, d.status);
    // The conflict ended: the next poll decides from the metrics again.
    let resumed = poll(
        &s,
        Some(&round_trip(&again.status)),
        steady(7),
        vec![sample(400.0, 45)],
        45,
    );
    assert_eq!(reason(&resumed, AbleToScale).0, "True");
    assert_eq!(reason(&resumed, Ready), is("True", "Active"));
}

#[test]
fn an_unreadable_target_holds_and_reports_once() {
    let s = spec(json!({}));
    let before = poll(&s, None, steady(2), vec![sample(400.0, 0)], 0).status;
    let inputs = |status, t| Inputs {
        spec: &s,
        generation: Some(1),
        status,
        target: Err(Failure::new(
            Reason::FailedGetScale,
            "deployments.apps \"kuard\" not found",
        )),
        samples: vec![],
        now: at(t),
    };
    let d = decide(&inputs(Some(&before), 15));
    assert!(!d.scale);
    assert_eq!(d.desired_replicas, before.desired_replicas);
    assert_eq!(reason(&d, AbleToScale), is("False", "FailedGetScale"));
    assert_eq!(
        condition(&d, AbleToScale).message,
        "the autoscaler was unable to get the target's current scale: deployments.apps \"kuard\" not found"
    );
    assert_eq!(reason(&d, Ready), is("False", "FailedGetScale"));
    assert_eq!(event_reasons(&d), [EventReason::FailedGetScale]);
    assert_eq!(d.status.current_metrics, before.current_metrics);
    assert_eq!(d.status.recommendations, before.recommendations);
    let again = decide(&inputs(Some(&d.status), 30));
    assert!(again.events.is_empty());
    assert_eq!(again.status, d.status);
}

#[rstest]
#[case::unreachable(
    Err(Failure::new(Reason::AviUnreachable, "no endpoint answered")),
    "AviUnreachable",
    "no endpoint answered"
)]
#[case::auth(
    Err(Failure::new(Reason::AviAuthFailed, "login refused")),
    "AviAuthFailed",
    "login refused"
)]
#[case::nan(sample(f64::NAN, 0), "FailedGetAviMetric", "NaN")]
#[case::infinite(sample(f64::INFINITY, 0), "FailedGetAviMetric", "inf")]
#[case::negative(sample(-3.0, 0), "FailedGetAviMetric", "-3")]
#[case::no_members(Ok(Sample { value: 0.0, series: 0, read_at: at(0) }), "FailedGetAviMetric", "no series")]
fn a_failed_or_bad_metric_holds(
    #[case] reading: Result<Sample, Failure>,
    #[case] why: &str,
    #[case] mentioned: &str,
) {
    let s = spec(json!({}));
    let d = poll(&s, None, steady(3), vec![reading.clone()], 0);
    assert!(!d.scale);
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(d.proposals[0].replicas, None);
    assert_eq!(reason(&d, ScalingActive), is("False", why));
    assert_eq!(reason(&d, Ready), is("False", why));
    assert!(condition(&d, ScalingActive).message.starts_with("the autoscaler was unable to compute the replica count: pool/kuard l4_server.avg_open_conns: "));
    assert_eq!(d.events.len(), 1);
    let e = &d.events[0];
    assert_eq!((e.type_(), e.reason.as_str()), (EventType::Warning, why));
    assert!(
        e.message
            .starts_with("invalid metrics (1 invalid out of 1), first error is: "),
        "{}",
        e.message
    );
    assert!(e.message.contains(mentioned), "{}", e.message);
    assert_eq!(d.status.consecutive_failures, 1);
    assert_eq!(
        d.status.metric_summary.as_deref(),
        Some("<unknown>/200 (avg)")
    );
    // The same failure again: no event, no status change.
    let again = poll(
        &s,
        Some(&round_trip(&d.status)),
        steady(3),
        vec![reading],
        15,
    );
    assert!(again.events.is_empty());
    assert_eq!(again.status, d.status);
}

#[test]
fn a_missing_sample_is_a_failed_read() {
    let s = spec(json!({}));
    let d = poll(&s, None, steady(3), vec![], 0);
    assert_eq!(reason(&d, ScalingActive), is("False", "FailedGetAviMetric"));
}

fn two_metrics() -> serde_json::Value {
    let mut second = metric("AverageValue", 100.0);
    second["metricId"] = json!("l7_client.avg_complete_responses");
    second["entity"] = json!({"type": "virtualservice", "name": "kuard-vs"});
    second.as_object_mut().unwrap().remove("aggregation");
    json!({"metrics": [metric("AverageValue", 200.0), second]})
}

#[rstest]
// Every metric failed: hold.
#[case::all_failed(None, None, 3, false, "AviUnreachable")]
// One failed, the other wants fewer: hold (a partial reading never scales down).
#[case::partial_down(Some(100.0), None, 3, false, "AviUnreachable")]
// One failed, the other wants more: scale up on it.
#[case::partial_up(Some(1000.0), None, 5, true, "ValidMetricFound")]
// Both read: the largest proposal wins.
#[case::largest_wins(Some(400.0), Some(450.0), 5, true, "ValidMetricFound")]
fn several_metrics(
    #[case] first: Option<f64>,
    #[case] second: Option<f64>,
    #[case] expected: i32,
    #[case] scales: bool,
    #[case] scaling_active: &str,
) {
    let s = spec(two_metrics());
    let read = |v: Option<f64>| {
        v.map_or_else(
            || Err(Failure::new(Reason::AviUnreachable, "timed out")),
            |v| sample(v, 0),
        )
    };
    let d = poll(&s, None, steady(3), vec![read(first), read(second)], 0);
    assert_eq!((d.desired_replicas, d.scale), (expected, scales));
    assert_eq!(condition(&d, ScalingActive).reason, scaling_active);
    if first.is_some() && second.is_some() {
        assert_eq!(reason(&d, Ready), is("True", "Active"));
        assert!(d.events.iter().any(|e| e.message.ends_with(
            "reason: virtualservice/kuard-vs l7_client.avg_complete_responses above target"
        )));
        assert_eq!(
            d.status.metric_summary.as_deref(),
            Some("133.33/200 (avg), 150/100 (avg)")
        );
    } else {
        // Working on what it has, but not as configured.
        assert_eq!(condition(&d, Ready).status, "False");
        assert!(
            condition(&d, Ready)
                .message
                .starts_with("invalid metrics (")
        );
    }
}

#[test]
fn fallback_applies_after_the_threshold_and_clears_on_success() {
    let s = spec(json!({"fallback": {"failureThreshold": 3, "replicas": 9}}));
    let down = || {
        vec![Err(Failure::new(
            Reason::AviUnreachable,
            "no endpoint answered",
        ))]
    };
    let mut l = Loop::new(s, 2);
    for (t, streak) in [(0, 1), (15, 2)] {
        let d = l.poll(down(), t);
        assert!(!d.scale, "t={t}");
        assert_eq!(d.status.consecutive_failures, streak);
        assert_eq!(reason(&d, ScalingActive), is("False", "AviUnreachable"));
    }
    let d = l.poll(down(), 30);
    // fallback.replicas 9 is kept within maxReplicas 5; the legacy cap allows 2 → 4 first.
    assert_eq!(d.proposals[0].replicas, Some(5));
    assert!(d.proposals[0].fallback);
    assert_eq!((d.scale, d.desired_replicas), (true, 4));
    assert_eq!(reason(&d, ScalingActive), is("False", "FallbackActive"));
    assert_eq!(reason(&d, Ready), is("False", "FallbackActive"));
    assert_eq!(
        event_reasons(&d),
        [EventReason::FallbackActive, EventReason::SuccessfulRescale]
    );
    assert_eq!(
        d.events[1].message,
        "New size: 4; reason: fallback: the metrics could not be read for 3 polls in a row"
    );
    // The streak stops counting at the threshold: an outage does not rewrite status each poll.
    let d = l.poll(down(), 45);
    assert_eq!(d.status.consecutive_failures, 3);
    assert_eq!((d.scale, d.desired_replicas), (true, 5));
    let steady_status = l.poll(down(), 60).status;
    assert_eq!(l.poll(down(), 75).status, steady_status);
    // Metrics are back: the streak resets, the fallback clears.
    let d = l.poll(vec![sample(600.0, 90)], 90);
    assert_eq!(d.status.consecutive_failures, 0);
    assert_eq!(reason(&d, Ready), is("True", "Active"));
    assert_eq!(event_reasons(&d), [EventReason::FallbackCleared]);
}

#[test]
fn without_a_fallback_failures_hold_and_the_streak_stays_at_one() {
    let s = spec(json!({}));
    let mut l = Loop::new(s, 2);
    for t in [0, 15, 30] {
        let d = l.poll(vec![Err(Failure::new(Reason::AviUnreachable, "down"))], t);
        assert_eq!((d.scale, d.status.consecutive_failures), (false, 1));
    }
}

#[test]
fn paused_reads_reports_and_holds() {
    let paused = spec(json!({"paused": true}));
    let d = poll(&paused, None, steady(1), vec![sample(1000.0, 0)], 0);
    assert!(!d.scale);
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(d.proposals[0].replicas, Some(5));
    assert_eq!(d.status.current_metrics[0].value, Some(1000.0));
    assert_eq!(reason(&d, ScalingActive), is("False", "Paused"));
    assert_eq!(reason(&d, Ready), is("False", "Paused"));
    assert_eq!(d.events[0].reason, EventReason::Paused);
    assert_eq!(d.events[0].type_(), EventType::Normal);
    // Resumed: an event, and scaling again.
    let resumed = spec(json!({}));
    let d = poll(
        &resumed,
        Some(&round_trip(&d.status)),
        steady(1),
        vec![sample(1000.0, 15)],
        15,
    );
    assert_eq!(
        event_reasons(&d),
        [EventReason::Resumed, EventReason::SuccessfulRescale]
    );
    assert!(d.scale);
}

#[test]
fn value_on_a_pool_sum_is_warned_about() {
    let s = spec(json!({"metrics": [metric("Value", 200.0)]}));
    let d = poll(&s, None, steady(1), vec![sample(100.0, 0)], 0);
    assert_eq!(d.status.warnings.len(), 1);
    assert!(d.status.warnings[0].starts_with("spec.metrics[0]: a Value target on a pool Sum"));
    assert!(d.status.warnings[0].contains("averageValue 200"));
    assert_eq!(d.status.metric_summary.as_deref(), Some("100/200"));
    let fine = poll(&spec(json!({})), None, steady(1), vec![sample(100.0, 0)], 0);
    assert!(fine.status.warnings.is_empty());
}

#[test]
fn value_targets_multiply_ready_replicas() {
    let s = spec(json!({"metrics": [metric("Value", 100.0)], "maxReplicas": 20}));
    // 3 pods, 1 ready, 500 vs 100: ceil(5 × 1) = 5, not 15.
    let target = TargetState {
        spec_replicas: 3,
        status_replicas: 3,
        ready_replicas: Some(1),
    };
    let d = poll(&s, None, target, vec![sample(500.0, 0)], 0);
    assert_eq!(d.proposals[0].replicas, Some(5));
    // A kind without readyReplicas uses status replicas.
    let target = TargetState {
        ready_replicas: None,
        ..target
    };
    let d = poll(&s, None, target, vec![sample(500.0, 0)], 0);
    assert_eq!(d.proposals[0].replicas, Some(15));
}

#[test]
fn a_restart_in_the_middle_of_a_scale_down_window_does_not_scale_down_early() {
    let mut l = Loop::new(spec(json!({})), 1);
    l.poll(vec![sample(1000.0, 0)], 0);
    l.poll(vec![sample(1000.0, 300)], 300);
    assert_eq!(l.replicas(), 5);
    // The load goes; the 5 stays inside the 300 s window.
    let d = l.poll(vec![sample(0.0, 600)], 600);
    assert_eq!(
        (d.scale, reason(&d, AbleToScale)),
        (false, is("True", "ScaleDownStabilized"))
    );
    // "Restart": a new process reads the status back and decides from it alone.
    let stored = serde_json::to_string(&l.status).unwrap();
    // The 5 was superseded at t=600 and the legacy window counts it through t=900 inclusive:
    // one poll longer than the HPA, whose last entry for 5 would be from t=585.
    for t in (615..=900).step_by(15) {
        let status: api::AviAutoscalerStatus = serde_json::from_str(&stored).unwrap();
        let d = poll(&l.spec, Some(&status), steady(5), vec![sample(0.0, t)], t);
        assert!(!d.scale, "scaled down at t={t}, inside the window");
    }
    let status: api::AviAutoscalerStatus = serde_json::from_str(&stored).unwrap();
    let d = poll(
        &l.spec,
        Some(&status),
        steady(5),
        vec![sample(0.0, 915)],
        915,
    );
    assert_eq!((d.scale, d.desired_replicas), (true, 1));
}

#[test]
fn a_failed_scale_write_is_not_recorded() {
    let s = spec(json!({"behavior": {}}));
    let before = poll(&s, None, steady(2), vec![sample(400.0, 0)], 0);
    assert!(!before.scale);
    let previous = round_trip(&before.status);
    let d = poll(&s, Some(&previous), steady(2), vec![sample(1000.0, 15)], 15);
    assert!(d.scale);
    assert_eq!(d.status.scale_events.len(), 1);
    let failed = d.clone().scale_failed(
        "the server is currently unable to handle the request",
        at(15),
    );
    assert!(!failed.scale);
    let st = &failed.status;
    assert!(st.scale_events.is_empty());
    assert_eq!(st.last_scale_time, previous.last_scale_time);
    assert_eq!(st.freshness, previous.freshness);
    assert_eq!(st.desired_replicas, previous.desired_replicas);
    // The recommendation stays recorded, as in the HPA.
    assert_eq!(st.recommendations, d.status.recommendations);
    assert_eq!(
        reason(&failed, AbleToScale),
        is("False", "FailedUpdateScale")
    );
    assert_eq!(reason(&failed, Ready), is("False", "FailedUpdateScale"));
    assert_eq!(
        condition(&failed, AbleToScale).last_transition_time.0,
        at(15)
    );
    assert_eq!(event_reasons(&failed), [EventReason::FailedRescale]);
    assert_eq!(
        failed.events[0].message,
        "New size: 5; reason: pool/kuard l4_server.avg_open_conns above target; error: the server is currently unable to handle the request"
    );
    // A decision that did not scale is returned unchanged.
    assert_eq!(before.clone().scale_failed("x", at(0)), before);
}

#[test]
fn policies_limit_steps_with_the_history_read_back() {
    // Pods 1 per 60 s up: each poll may add one replica, then the period must pass.
    let s = spec(json!({
        "maxReplicas": 10,
        "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    }));
    let mut l = Loop::new(s, 1);
    let mut grown = Vec::new();
    for t in (0..=240).step_by(15) {
        // A changing value keeps every sample fresh, so only the policy limits.
        let d = l.poll(vec![sample(2000.0 + t as f64, t)], t);
        if d.scale {
            grown.push((t, d.desired_replicas));
            assert_eq!(reason(&d, ScalingLimited), is("True", "ScaleUpLimit"));
        }
    }
    // The event at t is inside the period until t + 59 and outside at t + 60.
    assert_eq!(grown, [(0, 2), (60, 3), (120, 4), (180, 5), (240, 6)]);
}

#[test]
fn select_policy_disabled_holds_a_direction() {
    let s = spec(
        json!({"behavior": {"scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}}}),
    );
    let d = poll(&s, None, steady(4), vec![sample(0.0, 0)], 0);
    assert!(!d.scale);
    assert_eq!(reason(&d, ScalingLimited), is("True", "ScaleDownLimit"));
}

#[test]
fn min_equal_to_max_never_moves() {
    let s = spec(
        json!({"minReplicas": 3, "maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}),
    );
    for v in [0.0, 600.0, 5000.0] {
        let d = poll(&s, None, steady(3), vec![sample(v, 0)], 0);
        assert!(!d.scale, "moved at {v}");
    }
}

#[test]
fn the_scale_down_window_holds_the_highest_recommendation() {
    let s = spec(json!({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}));
    let mut l = Loop::new(s, 5);
    // Seed at 5 (t=0); 400 connections want 2.
    let d = l.poll(vec![sample(400.0, 0)], 0);
    assert_eq!(reason(&d, AbleToScale), is("True", "ScaleDownStabilized"));
    let d = l.poll(vec![sample(400.0, 59)], 59);
    assert!(!d.scale);
    // The seed's 5 was superseded at t=0; at t=60 it is outside the 60 s window.
    let d = l.poll(vec![sample(400.0, 60)], 60);
    assert_eq!((d.scale, d.desired_replicas), (true, 2));
    assert_eq!(
        d.events[0].message,
        "New size: 2; reason: All metrics below target"
    );
}

#[test]
fn the_tolerance_band_is_inclusive_at_decide_level() {
    let s = spec(json!({"maxReplicas": 20}));
    // 10 replicas × 200 = 2000; ratio 1.1 exactly stays, a hair above scales.
    let d = poll(&s, None, steady(10), vec![sample(2200.0, 0)], 0);
    assert!(!d.scale);
    let d = poll(&s, None, steady(10), vec![sample(2200.2, 0)], 0);
    assert_eq!((d.scale, d.desired_replicas), (true, 12));
}

#[test]
fn status_round_trips_unchanged() {
    let mut l = Loop::new(spec(json!({"behavior": {}})), 1);
    for (t, v) in [
        (0, 1000.0),
        (15, 1000.0),
        (300, 50.0),
        (315, 50.0),
        (700, 0.0),
    ] {
        let d = l.poll(vec![sample(v, t)], t);
        assert_eq!(round_trip(&d.status), d.status, "t={t}");
    }
}
