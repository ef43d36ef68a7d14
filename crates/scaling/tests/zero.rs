//! Scale to zero and back (`minReplicas: 0`, `activationValue`, `scaleToZeroCooldownSeconds`)
//! and the dry run (`dryRun`), through `decide`.

mod common;

use api::{ConditionType::*, EventReason, Mode, ResolvedSpec};
use common::*;
use proptest::prelude::*;
use scaling::{Failure, Sample};
use serde_json::json;

const COOLDOWN: i64 = 60;

/// A virtual service's new connections, active above 0, with an AverageValue target of 50 per
/// replica, and the pool metric of the seed spec; `minReplicas: 0`, max 5, a 60 s cooldown.
fn zero_spec(patch: serde_json::Value) -> ResolvedSpec {
    let mut spec = json!({
        "minReplicas": 0,
        "scaleToZeroCooldownSeconds": COOLDOWN,
        "metrics": [
            {
                "entity": {"type": "virtualservice", "name": "kuard-vs"},
                "metricId": "l4_client.avg_new_established_conns",
                "realtime": true,
                "target": {"type": "AverageValue", "averageValue": 50},
                "activationValue": 0
            },
            metric("AverageValue", 200.0)
        ],
    });
    if let (Some(s), serde_json::Value::Object(p)) = (spec.as_object_mut(), patch) {
        s.extend(p);
    }
    spec_of(spec)
}

fn spec_of(patch: serde_json::Value) -> ResolvedSpec {
    common::spec(patch)
}

/// The virtual service reads `conns`; the pool reads `pool` (with no members at zero replicas,
/// which the engine treats as a failed read).
fn samples(replicas: i32, conns: f64, pool: f64, offset: i64) -> Vec<Result<Sample, Failure>> {
    let members = u32::try_from(replicas).unwrap_or(0);
    vec![
        sample(conns, offset),
        Ok(Sample {
            value: pool,
            series: members,
            read_at: at(offset),
        }),
    ]
}

fn step(l: &mut Loop, conns: f64, pool: f64, offset: i64) -> scaling::Decision {
    let s = samples(l.replicas(), conns, pool, offset);
    l.poll(s, offset)
}

#[test]
fn at_zero_without_clients_the_target_stays_at_zero() {
    let mut l = Loop::new(zero_spec(json!({})), 0);
    let d = step(&mut l, 0.0, 0.0, 0);
    assert!(!d.scale);
    assert_eq!(d.desired_replicas, 0);
    assert_eq!(d.status.desired_replicas, 0);
    assert_eq!(reason(&d, ScalingActive), is("False", "ScaledToZero"));
    assert_eq!(reason(&d, Ready), is("True", "Active"));
    assert!(!event_reasons(&d).contains(&EventReason::Activated));
}

#[test]
fn the_first_client_wakes_the_target() {
    let mut l = Loop::new(zero_spec(json!({})), 0);
    step(&mut l, 0.0, 0.0, 0);
    let d = step(&mut l, 3.0, 0.0, 5);
    assert!(d.scale);
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(
        event_reasons(&d),
        vec![EventReason::Activated, EventReason::SuccessfulRescale]
    );
    let activated = &d.events[0].message;
    assert!(
        activated.contains("virtualservice/kuard-vs l4_client.avg_new_established_conns")
            && activated.contains("is 3"),
        "{activated}"
    );
    assert_eq!(reason(&d, ScalingActive), is("True", "ValidMetricFound"));
    assert_eq!(d.status.last_active_time, Some(api::k8s::Time(at(5))));
}

#[test]
fn a_target_at_zero_wakes_to_min_replicas_when_that_is_above_one() {
    let spec = zero_spec(json!({"minReplicas": 2}));
    let mut l = Loop::new(spec, 0);
    let d = step(&mut l, 1.0, 0.0, 0);
    assert!(d.scale);
    assert_eq!(d.desired_replicas, 2);
    assert_eq!(
        d.status.last_active_time, None,
        "only minReplicas 0 keeps it"
    );
}

#[test]
fn a_target_at_zero_without_activation_values_stays_disabled() {
    let mut l = Loop::new(spec_of(json!({})), 0);
    let d = l.poll(vec![sample(5000.0, 0)], 0);
    assert!(!d.scale);
    assert_eq!(reason(&d, ScalingActive), is("False", "ScalingDisabled"));
}

#[test]
fn a_failed_activation_metric_at_zero_is_reported() {
    let mut l = Loop::new(zero_spec(json!({})), 0);
    let d = l.poll(
        vec![
            Err(Failure::new(
                api::Reason::AviUnreachable,
                "connection refused",
            )),
            Err(Failure::new(api::Reason::FailedGetAviMetric, "no members")),
        ],
        0,
    );
    assert!(!d.scale);
    assert_eq!(reason(&d, ScalingActive), is("False", "ScaledToZero"));
    assert_eq!(reason(&d, Ready), is("False", "AviUnreachable"));
}

#[test]
fn between_zero_and_the_cooldown_the_floor_is_one() {
    let mut l = Loop::new(zero_spec(json!({})), 3);
    // Clients keep coming, a few: the arithmetic alone would propose zero replicas (after the
    // 300 s scale-down window).
    let mut last = None;
    for t in (0..450).step_by(15) {
        last = Some(step(&mut l, 0.5, 0.0, t));
        assert!(l.replicas() >= 1, "at {t}s: {}", l.replicas());
    }
    let d = last.unwrap();
    assert_eq!(l.replicas(), 1);
    assert_ne!(reason(&d, ScalingActive).1, "ScaledToZero");
}

#[test]
fn the_target_goes_to_zero_after_the_cooldown_without_clients() {
    let mut l = Loop::new(zero_spec(json!({})), 1);
    step(&mut l, 2.0, 10.0, 0);
    // Idle from here on: the cooldown counts from the last active sample at 0 s.
    for t in [15, 30, 45, 55] {
        let d = step(&mut l, 0.0, 0.0, t);
        assert_eq!(l.replicas(), 1, "at {t}s");
        assert_eq!(d.status.last_active_time, Some(api::k8s::Time(at(0))));
    }
    let d = step(&mut l, 0.0, 0.0, COOLDOWN);
    assert!(d.scale);
    assert_eq!(d.desired_replicas, 0);
    assert_eq!(reason(&d, ScalingActive), is("False", "ScaledToZero"));
    let rescale = d.events.last().unwrap();
    assert_eq!(rescale.reason, EventReason::SuccessfulRescale);
    assert!(
        rescale.message.contains("scaleToZeroCooldownSeconds"),
        "{}",
        rescale.message
    );
    // And it stays there.
    let d = step(&mut l, 0.0, 0.0, COOLDOWN + 15);
    assert!(!d.scale);
    assert_eq!(reason(&d, ScalingActive), is("False", "ScaledToZero"));
    assert_eq!(
        reason(&d, ScalingLimited),
        is("False", "DesiredWithinRange")
    );
    assert_eq!(reason(&d, Ready), is("True", "Active"));
}

#[test]
fn a_restart_does_not_reset_the_cooldown() {
    let mut l = Loop::new(zero_spec(json!({})), 1);
    step(&mut l, 2.0, 10.0, 0);
    step(&mut l, 0.0, 0.0, 30);
    // A new process: only the status read back from the API server remains.
    let status = round_trip(l.status.as_ref().unwrap());
    let d = poll(
        &l.spec,
        Some(&status),
        steady(1),
        samples(1, 0.0, 0.0, COOLDOWN),
        COOLDOWN,
    );
    assert!(d.scale);
    assert_eq!(d.desired_replicas, 0);
}

#[test]
fn a_failed_activation_read_never_scales_to_zero() {
    let mut l = Loop::new(zero_spec(json!({})), 1);
    step(&mut l, 2.0, 10.0, 0);
    let d = l.poll(
        vec![
            Err(Failure::new(
                api::Reason::AviUnreachable,
                "connection refused",
            )),
            sample(0.0, 100),
        ],
        100,
    );
    assert_eq!(l.replicas(), 1);
    assert!(!d.scale);
}

#[test]
fn a_dry_run_follows_the_active_path_without_writing() {
    let active = zero_spec(json!({"minReplicas": 1}));
    let dry = zero_spec(json!({"minReplicas": 1, "dryRun": true}));
    let mut a = Loop::new(active, 1);
    let mut d_loop = Loop::new(dry, 1);
    let load = [
        (0, 100.0, 1000.0),
        (15, 120.0, 1000.0),
        (30, 150.0, 1200.0),
        (45, 40.0, 300.0),
        (400, 20.0, 100.0),
        (800, 10.0, 50.0),
    ];
    let mut dry_run_events = 0;
    for (t, conns, pool) in load {
        let da = a.poll(vec![sample(conns, t), sample(pool, t)], t);
        let dd = d_loop.poll(vec![sample(conns, t), sample(pool, t)], t);
        assert!(!dd.scale, "a dry run never writes");
        assert_eq!(d_loop.replicas(), 1);
        assert_eq!(
            dd.status.desired_replicas, da.status.desired_replicas,
            "at {t}s"
        );
        assert_eq!(dd.status.mode, Some(Mode::DryRun));
        assert_eq!(reason(&dd, Ready), is("True", "DryRun"));
        assert!(!event_reasons(&dd).contains(&EventReason::SuccessfulRescale));
        let rescales = dd
            .events
            .iter()
            .filter(|e| e.reason == EventReason::DryRunRescale)
            .count();
        assert_eq!(rescales, usize::from(da.scale), "at {t}s");
        if let Some(e) = dd
            .events
            .iter()
            .find(|e| e.reason == EventReason::DryRunRescale)
        {
            assert!(e.message.starts_with("would scale from "), "{}", e.message);
            assert!(e.message.contains("; reason: "), "{}", e.message);
        }
        dry_run_events += rescales;
        assert_eq!(da.status.mode, Some(Mode::Active));
    }
    assert!(dry_run_events >= 2, "the load moves the would-be count");
}

proptest! {
    /// Never to zero while a metric is active or within the cooldown; never stuck at zero when
    /// a fresh active sample arrives.
    #[test]
    fn zero_transitions(
        polls in prop::collection::vec((1i64..40, prop::option::of(0.0f64..200.0), 0.0f64..2000.0), 1..60),
        start in 0i32..4,
    ) {
        let mut l = Loop::new(zero_spec(json!({})), start);
        let mut t = 0;
        let mut last_active: Option<i64> = None;
        for (dt, conns, pool) in polls {
            t += dt;
            // None: no clients at all (0), otherwise a small positive count.
            let conns = conns.map_or(0.0, |c| c + 0.01);
            let before = l.replicas();
            let d = step(&mut l, conns, pool, t);
            if conns > 0.0 {
                last_active = Some(t);
                prop_assert!(l.replicas() >= 1, "active at {}s but at zero", t);
            }
            if before > 0 && l.replicas() == 0 {
                prop_assert!(d.scale);
                let since = last_active.map_or(i64::MAX, |a| t - a);
                prop_assert!(since >= COOLDOWN, "to zero {}s after an active sample", since);
            }
            prop_assert!(l.replicas() <= 5);
        }
    }
}
