//! End-to-end: scale to zero and back, and the dry run, with the real `avi-autoscaler run`
//! binary, testkit's Kubernetes API stand-in and an avi-sim controller.
//!
//! Timings are compressed as in the operator tests: one-second polling, realtime metrics,
//! a three-second scale-to-zero cooldown, and avi-sim's simulated clock moved by the test.

use std::time::Duration;

use avi_sim::{RunningSim, SEED_POOL, SEED_VS, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, AUTOSCALER, Cluster, Operator, kuard_manifests};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-e2e";

async fn seed_controller() -> RunningSim {
    Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts")
}

async fn at(sim: &RunningSim, t: f64) {
    sim.handle()
        .set_elapsed(t)
        .await
        .expect("the clock moves forward");
}

/// The events of the seed AviAutoscaler with `reason`: their notes, in order.
fn notes(cluster: &Cluster, reason: &str) -> Vec<String> {
    cluster
        .events()
        .into_iter()
        .filter(|(_, r, _)| r == reason)
        .map(|(_, _, note)| note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_wakes_a_deployment_at_zero_and_it_sleeps_after_the_cooldown() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = seed_controller().await;
    let spec = json!({
        "minReplicas": 0,
        "pollingIntervalSeconds": 1,
        "scaleToZeroCooldownSeconds": 3,
        "metrics": [
            {
                "entity": {"type": "virtualservice", "name": SEED_VS},
                "metricId": "l7_client.avg_complete_responses",
                "realtime": true,
                "activationValue": 0,
                "target": {"type": "AverageValue", "averageValue": 1000000}
            },
            {
                "entity": {"type": "pool", "name": SEED_POOL},
                "metricId": "l4_server.avg_open_conns",
                "aggregation": "Sum",
                "realtime": true,
                "target": {"type": "AverageValue", "averageValue": 200}
            }
        ]
    });
    // The Deployment starts at zero, as examples/scale-to-zero has it.
    let manifests: Vec<String> = kuard_manifests(&sim, PASSWORD, &spec)
        .split("\n---\n")
        .map(|doc| {
            let mut v: Value = serde_json::from_str(doc).unwrap();
            if v["kind"] == "Deployment" {
                v["spec"]["replicas"] = json!(0);
            }
            v.to_string()
        })
        .collect();
    cluster.apply(&manifests.join("\n---\n"));
    // Pool members follow the ready pods, none at zero: the pool has no value then, and the
    // virtual service keeps counting clients.
    drop(e2e::sync_pool_members_at_least(&cluster, &sim, 0));
    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);

    // No clients yet: it stays at zero.
    cluster.wait_reason("ScalingActive", "ScaledToZero").await;
    assert_eq!(cluster.replicas(), Some(0));
    assert!(cluster.scale_writes("operator").is_empty());

    // The first clients (25 to 50 users in the 5-second bucket [5, 10)) wake it.
    at(&sim, 10.0).await;
    cluster.wait_replicas(1).await;
    let activated = cluster.wait_event("Activated").await;
    assert!(
        activated.contains(SEED_VS) && activated.contains("l7_client.avg_complete_responses"),
        "{activated}"
    );
    assert!(activated.contains("scaling from 0 to 1"), "{activated}");
    // The pod is ready and in the pool before the load moves on (a member that joins at the
    // paused clock's instant would miss the realtime bucket that ends there).
    cluster
        .wait("one pool member", |_| {
            (sim.handle().pool_servers(e2e::POOL).ok()?.len() == 1).then_some(())
        })
        .await;

    // Under the full load (1000 open connections, 200 per replica) it grows to the maximum.
    at(&sim, 600.0).await;
    cluster.wait_replicas(5).await;
    cluster
        .wait_reason("ScalingActive", "ValidMetricFound")
        .await;

    // The users stopped at 1320 s: no clients from here on; after the cooldown it goes to 0.
    at(&sim, 1400.0).await;
    cluster.wait_replicas(0).await;
    cluster.wait_reason("ScalingActive", "ScaledToZero").await;
    let (ready, reason, _) = cluster.condition("Ready").expect("Ready");
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "Active"));

    let writes = cluster.scale_writes("operator");
    assert_eq!(writes.first(), Some(&1), "woken to 1: {writes:?}");
    assert_eq!(writes.last(), Some(&0), "back to 0: {writes:?}");
    assert!(writes.contains(&5), "{writes:?}");
    // The event follows the status write.
    let to_zero = cluster
        .wait("the SuccessfulRescale event to 0", |c| {
            notes(c, "SuccessfulRescale")
                .into_iter()
                .find(|n| n.starts_with("New size: 0"))
        })
        .await;
    assert!(to_zero.contains("scaleToZeroCooldownSeconds"), "{to_zero}");
    let aas = cluster.autoscaler().expect("the autoscaler");
    assert!(aas.pointer("/status/lastActiveTime").is_some(), "{aas:#}");
    assert_eq!(aas.pointer("/status/mode"), Some(&json!("Active")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_never_writes_scale_and_follows_the_active_path() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = seed_controller().await;
    let spec = json!({
        "dryRun": true,
        "pollingIntervalSeconds": 1,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 6}}
    });
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec));
    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    let desired = |c: &Cluster, n: i64| {
        c.autoscaler()
            .filter(|a| a.pointer("/status/desiredReplicas") == Some(&json!(n)))
            .map(|_| ())
    };

    cluster.wait_reason("Ready", "DryRun").await;
    // The seed's path, as the active run in the operator tests takes it: 1 -> 4 -> 5, then
    // after the load 2 (held by the window) -> 1. The pool's total does not depend on the
    // member count, so the Deployment staying at one replica does not change the metric.
    at(&sim, 300.0).await;
    cluster.wait("desiredReplicas 4", |c| desired(c, 4)).await;
    at(&sim, 600.0).await;
    cluster.wait("desiredReplicas 5", |c| desired(c, 5)).await;
    at(&sim, 1500.0).await;
    cluster.wait("desiredReplicas 2", |c| desired(c, 2)).await;
    at(&sim, 1800.0).await;
    cluster.wait("desiredReplicas 1", |c| desired(c, 1)).await;

    // The events follow the status writes.
    let would = cluster
        .wait("four DryRunRescale events", |c| {
            Some(notes(c, "DryRunRescale")).filter(|n| n.len() >= 4)
        })
        .await;
    assert_eq!(
        would
            .iter()
            .map(|n| n.split("; reason:").next().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "would scale from 1 to 4",
            "would scale from 4 to 5",
            "would scale from 5 to 2",
            "would scale from 2 to 1"
        ],
        "{would:?}"
    );
    assert!(notes(&cluster, "SuccessfulRescale").is_empty());
    // The request log: no write to /scale at all, and the Deployment untouched.
    let scale_writes: Vec<String> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/scale") && !matches!(r.method.as_str(), "GET" | "HEAD"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(scale_writes.is_empty(), "{scale_writes:?}");
    assert_eq!(cluster.replicas(), Some(1));
    let aas = cluster
        .autoscaler_named(AUTOSCALER)
        .expect("the autoscaler");
    assert_eq!(aas.pointer("/status/mode"), Some(&json!("DryRun")));
    assert_eq!(aas.pointer("/status/currentReplicas"), Some(&json!(1)));
    let (ready, reason, _) = cluster.condition("Ready").expect("Ready");
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "DryRun"));
}
