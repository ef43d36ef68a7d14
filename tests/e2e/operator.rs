//! End-to-end: the real `avi-autoscaler run` binary against testkit's Kubernetes API stand-in
//! (driven with the real kubectl) and an avi-sim controller over HTTPS.
//!
//! Timings are compressed: one-second polling, short stabilization windows, and avi-sim's
//! simulated clock moved by the test (300-second Avi buckets pass in an instant), so each step
//! waits on an observable condition instead of on time.

use std::time::{Duration, Instant};

use avi_sim::{FaultKind, FaultSpec, RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, AUTOSCALER, Cluster, DEPLOYMENT, NAMESPACE, Operator, kuard_manifests};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-e2e";

/// A paused seed controller (1000 users at 5/s from t=0, stopped at t=1320 s).
async fn seed_controller() -> RunningSim {
    Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts")
}

/// Moves the simulated clock to `t` seconds after the scenario's start.
async fn at(sim: &RunningSim, t: f64) {
    sim.handle()
        .set_elapsed(t)
        .await
        .expect("the clock moves forward");
}

/// The seed setup: CRD, the kuard example pointed at `sim` with `spec` merged in, and pool
/// members following the Deployment's ready replicas.
async fn seed(spec: Value) -> (Cluster, RunningSim) {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = seed_controller().await;
    let mut spec = spec;
    e2e::merge(&mut spec, &json!({"pollingIntervalSeconds": 1}));
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec));
    // Pool members follow the pods, as AKO makes them (a detached task that ends with the
    // test's runtime).
    drop(e2e::sync_pool_members(&cluster, &sim));
    (cluster, sim)
}

fn short_scale_down(window: u32) -> Value {
    json!({"behavior": {"scaleDown": {"stabilizationWindowSeconds": window}}})
}

/// Asserts the writes of `client` went to the Deployment only through `/scale` and to
/// AviAutoscalers only through `/status`.
fn assert_writes_only_through_subresources(cluster: &Cluster, client: &str) {
    let bad: Vec<String> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some(client))
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .filter(|r| {
            let deployment = r.path.contains("/deployments/");
            let autoscaler = r.path.contains("/aviautoscalers/");
            (deployment && !r.path.ends_with("/scale"))
                || (autoscaler && !r.path.ends_with("/status"))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        bad.is_empty(),
        "writes outside the scale/status subresources: {bad:?}"
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_experiment_scales_1_to_5_and_back_to_1() {
    let window = 6;
    let (cluster, sim) = seed(short_scale_down(window)).await;
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);

    // Before any bucket has closed the pool reads 0: the target stays at minReplicas.
    cluster.wait_reason("Ready", "Active").await;
    assert_eq!(cluster.replicas(), Some(1));

    let mut reactions = Vec::new();
    // First bucket [0, 300): the ramp to 1000 users averages 666.7 → ceil(666.7/200) = 4.
    let step = Instant::now();
    at(&sim, 300.0).await;
    cluster.wait_replicas(4).await;
    reactions.push(step.elapsed());
    // Second bucket: 1000 → 5, the maximum.
    let step = Instant::now();
    at(&sim, 600.0).await;
    cluster.wait_replicas(5).await;
    reactions.push(step.elapsed());
    at(&sim, 1200.0).await;
    cluster
        .wait("a poll of the 1000-connection bucket at 5 replicas", |c| {
            let s = c.autoscaler()?;
            (s.pointer("/status/currentMetrics/0/value") == Some(&json!(1000.0))
                && s.pointer("/status/desiredReplicas") == Some(&json!(5)))
            .then_some(())
        })
        .await;

    // The load stopped at 1320 s: bucket [1200, 1500) averages 400 → 2, held by the window.
    at(&sim, 1500.0).await;
    let low_seen = Instant::now();
    cluster.wait_replicas(2).await;
    let held = low_seen.elapsed();
    at(&sim, 1800.0).await;
    cluster.wait_replicas(1).await;

    let aas = cluster.autoscaler().expect("the autoscaler exists");
    let first_low = aas["status"]["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .find(|r| r["replicas"] == 2)
        .map(|r| r["time"].as_str().unwrap().to_owned());
    assert!(
        held >= Duration::from_secs(window as u64 - 1),
        "scaled down after {held:?}, inside the {window} s stabilization window (first recommendation of 2 at {first_low:?})"
    );

    // Never above maxReplicas; exactly the HPA's steps.
    cluster.wait_scale_writes("operator", &[4, 5, 2, 1]).await;
    assert_writes_only_through_subresources(&cluster, "operator");

    // One Normal SuccessfulRescale event per step (published right after the write).
    for n in [4, 5, 2, 1] {
        let prefix = format!("New size: {n};");
        cluster
            .wait(&format!("a SuccessfulRescale event {prefix}"), |c| {
                c.events()
                    .iter()
                    .any(|(t, r, m)| {
                        t == "Normal" && r == "SuccessfulRescale" && m.starts_with(&prefix)
                    })
                    .then_some(())
            })
            .await;
    }

    // What a user sees with the real kubectl.
    let describe = cluster.kubectl_ok(&["describe", "aas", AUTOSCALER, "-n", NAMESPACE], None);
    for needle in [
        "AbleToScale",
        "ScalingActive",
        "ScalingLimited",
        "Ready",
        "SuccessfulRescale",
        "New size: 5;",
        "avi-autoscaler",
    ] {
        assert!(
            describe.contains(needle),
            "kubectl describe lacks {needle:?}:\n{describe}"
        );
    }
    let get = cluster.kubectl_ok(&["get", "aas", "-n", NAMESPACE], None);
    assert!(
        get.contains("TARGET") && get.contains("METRIC") && get.contains(DEPLOYMENT),
        "{get}"
    );
    cluster.kubectl_ok(
        &[
            "wait",
            "--for=condition=Ready",
            &format!("aas/{AUTOSCALER}"),
            "-n",
            NAMESPACE,
            "--timeout=60s",
        ],
        None,
    );

    eprintln!(
        "reaction time from a load step at avi-sim to the scale: median {:?}, worst {:?} (samples {reactions:?})",
        median(reactions.clone()),
        reactions.iter().max().unwrap()
    );
    assert!(operator.stop().success(), "a clean exit on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avi_outages_never_scale_and_fallback_applies_after_the_threshold() {
    let (cluster, sim) = seed(json!({
        "controller": {"timeoutSeconds": 1},
        "fallback": {"failureThreshold": 3, "replicas": 2},
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 2}},
    }))
    .await;
    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    at(&sim, 300.0).await;
    cluster.wait_replicas(4).await;

    // The controller answers 503 to everything: no scale on bad data; after 3 failed polls the
    // fallback replica count applies (a scale-down, so after the stabilization window).
    let outage = sim
        .handle()
        .add_fault(FaultSpec::error(503, 1_000_000).on_path("/api/"))
        .await
        .expect("a fault");
    at(&sim, 600.0).await; // the load would ask for 5 now
    let message = cluster.wait_reason("ScalingActive", "AviUnreachable").await;
    assert!(
        message.contains("503") || message.to_lowercase().contains("unavailable"),
        "{message}"
    );
    assert!(
        !message.contains(PASSWORD),
        "a credential in a condition: {message}"
    );
    cluster.wait_reason("ScalingActive", "FallbackActive").await;
    cluster.wait_replicas(2).await;
    cluster.wait_event("FallbackActive").await;
    cluster.wait_scale_writes("operator", &[4, 2]).await; // only the fallback moved the count

    // Recovery: the controller answers again, the metric takes over.
    sim.handle().remove_fault(outage);
    cluster.wait_replicas(5).await;
    cluster.wait_reason("Ready", "Active").await;
    cluster.wait_scale_writes("operator", &[4, 2, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_slow_and_garbage_controllers_hold_the_count() {
    let (cluster, sim) = seed(json!({"controller": {"timeoutSeconds": 1}})).await;
    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    at(&sim, 300.0).await;
    cluster.wait_replicas(4).await;
    let handle = sim.handle();
    at(&sim, 600.0).await; // from here on a good read would ask for 5

    // Unreachable: the only node refuses connections.
    handle.set_node_up(0, false).await.expect("node down");
    cluster.wait_reason("ScalingActive", "AviUnreachable").await;
    assert_eq!(cluster.replicas(), Some(4));
    handle.set_node_up(0, true).await.expect("node up");
    cluster.wait_reason("Ready", "Active").await;
    cluster.wait_replicas(5).await;

    // Slow: every answer takes longer than the 1 s timeout.
    at(&sim, 1500.0).await; // 400 → 2 would be next (after the default 300 s window)
    let slow = handle
        .add_fault(
            FaultSpec::new(FaultKind::Latency)
                .delay_ms(3000)
                .times(1_000_000)
                .on_path("/api/"),
        )
        .await
        .expect("a fault");
    let message = cluster.wait_reason("ScalingActive", "AviUnreachable").await;
    assert!(
        message.to_lowercase().contains("timed out") || message.to_lowercase().contains("timeout"),
        "{message}"
    );
    handle.remove_fault(slow);
    cluster.wait_reason("Ready", "Active").await;

    // Garbage: a broken body is no data, not a zero.
    let garbage = handle
        .add_fault(
            FaultSpec::new(FaultKind::Malformed)
                .times(1_000_000)
                .on_path("/api/analytics"),
        )
        .await
        .expect("a fault");
    cluster
        .wait_reason("ScalingActive", "FailedGetAviMetric")
        .await;
    handle.remove_fault(garbage);
    cluster.wait_reason("Ready", "Active").await;

    // Through all of it the count only followed good data.
    cluster.wait_scale_writes("operator", &[4, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_surface_as_conditions_and_events_and_scale_nothing() {
    let (cluster, sim) = seed(json!({})).await;
    let mut base = e2e::kuard_autoscaler(&sim, &json!({"pollingIntervalSeconds": 1}));
    base["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    // Each on a Deployment of its own: on one workload all but the oldest would hold with
    // AmbiguousTarget instead of showing their own problem.
    let variant = |name: &str, patch: Value| {
        let mut v = base.clone();
        v["metadata"]["name"] = json!(name);
        v["spec"]["scaleTargetRef"]["name"] = json!(name);
        e2e::merge(&mut v["spec"], &patch);
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "app"}]}}}});
        format!("{deployment}\n---\n{v}")
    };
    cluster.apply(&variant(
        "no-secret",
        json!({"controller": {"credentialsSecretRef": {"name": "missing"}}}),
    ));
    // RBAC that does not let the operator read a Secret: the API server answers 403.
    cluster.kube.inject(
        testkit::Fault::status(403)
            .method("GET")
            .path("/api/v1/namespaces/*/secrets/forbidden"),
    );
    cluster.apply(&variant(
        "forbidden-secret",
        json!({"controller": {"credentialsSecretRef": {"name": "forbidden"}}}),
    ));
    cluster.apply(&[
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong","namespace":"routing-ns1","labels":{"autoscaling.avi.dev/credentials":"true"}},"stringData":{"username":"admin","password":"not-the-password"}}"#,
        &variant("wrong-password", json!({"controller": {"credentialsSecretRef": {"name": "wrong"}, "authMode": "session"}})),
    ].join("\n---\n"));
    cluster.apply(&variant("unknown-pool", json!({"metrics": [{"entity": {"type": "pool", "name": "no-such-pool"}, "metricId": "l4_server.avg_open_conns", "target": {"type": "AverageValue", "averageValue": 200}}]})));
    cluster.apply(&variant("unknown-metric", json!({"metrics": [{"entity": {"type": "pool", "name": e2e::POOL}, "metricId": "l4_server.no_such_metric", "target": {"type": "AverageValue", "averageValue": 200}}]})));
    cluster.apply(&variant(
        "missing-target",
        json!({"scaleTargetRef": {"name": "no-such-deployment"}}),
    ));
    cluster.apply(&[
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"not-scalable","namespace":"routing-ns1"},"data":{}}"#,
        &variant("no-scale-subresource", json!({"scaleTargetRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-scalable"}})),
    ].join("\n---\n"));
    // The working autoscaler was applied by seed(); drop it so nothing may scale.
    cluster.kubectl_ok(&["delete", "aas", AUTOSCALER, "-n", NAMESPACE], None);

    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    let started = Instant::now();
    at(&sim, 600.0).await; // a good read would ask for 5

    let cases = [
        ("no-secret", "ScalingActive", "SecretNotFound", "missing"),
        (
            "forbidden-secret",
            "ScalingActive",
            "SecretForbidden",
            "forbidden",
        ),
        ("wrong-password", "ScalingActive", "AviAuthFailed", ""),
        (
            "unknown-pool",
            "ScalingActive",
            "FailedGetAviMetric",
            "no-such-pool",
        ),
        (
            "unknown-metric",
            "ScalingActive",
            "FailedGetAviMetric",
            "no_such_metric",
        ),
        (
            "missing-target",
            "AbleToScale",
            "FailedGetScale",
            "no-such-deployment",
        ),
        (
            "no-scale-subresource",
            "AbleToScale",
            "FailedGetScale",
            "scale",
        ),
    ];
    for (name, condition, reason, mention) in cases {
        let message = cluster.wait_reason_of(name, condition, reason).await;
        assert!(
            message.contains(mention),
            "{name}: {condition} message lacks {mention:?}: {message}"
        );
        assert!(
            !message.contains(PASSWORD) && !message.contains("not-the-password"),
            "{name}: a credential leaked: {message}"
        );
        let (status, ready_reason, _) = cluster.condition_of(name, "Ready").expect("Ready");
        assert_eq!(
            (status.as_str(), ready_reason.as_str()),
            ("False", reason),
            "{name}"
        );
        let note = cluster.wait_event_of(name, reason).await;
        assert!(
            !note.contains(PASSWORD) && !note.contains("not-the-password"),
            "{name}: {note}"
        );
    }
    // The wrong password costs at most one login attempt per poll (the client waits before
    // trying a refused password again), never a storm: at one poll per second, no more logins
    // than seconds.
    let logins = sim.handle().counters().requests("POST /login");
    let seconds = started.elapsed().as_secs() + 1;
    assert!(
        (1..=seconds).contains(&logins),
        "{logins} logins in {seconds} s"
    );
    assert!(
        cluster.scale_writes("operator").is_empty(),
        "nothing may scale"
    );
    assert_eq!(cluster.replicas(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_inside_the_scale_down_window_does_not_scale_down_early() {
    let window: u64 = 12;
    let (cluster, sim) = seed(short_scale_down(window as u32)).await;
    let operator = Operator::start(&cluster, "first", &[ALLOW_INLINE]);
    at(&sim, 600.0).await;
    cluster.wait_replicas(5).await;

    at(&sim, 1800.0).await; // the load is gone: the recommendation drops to 1
    cluster
        .wait("a recommendation below 5", |c| {
            let recs = c.autoscaler()?["status"]["recommendations"]
                .as_array()?
                .clone();
            recs.iter()
                .any(|r| r["replicas"].as_i64() < Some(5))
                .then_some(())
        })
        .await;
    let low_seen = Instant::now();
    operator.kill(); // a crash, not a clean stop

    let _second = Operator::start(&cluster, "second", &[ALLOW_INLINE]);
    cluster.wait_replicas(1).await;
    let waited = low_seen.elapsed();
    // Status times are whole seconds, so the window may end up to a second early; the rest of
    // the slack covers observing the recommendation after it was written.
    assert!(
        waited >= Duration::from_secs(window - 2),
        "scaled down {waited:?} after the load dropped, inside the {window} s window, across a restart"
    );
    cluster.wait_scale_writes("second", &[1]).await;
    assert!(
        cluster
            .scale_writes("first")
            .iter()
            .all(|&n| n == 5 || n == 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_and_an_expired_resource_version_still_converge() {
    let (cluster, sim) = seed(json!({})).await;
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    at(&sim, 600.0).await;
    cluster.wait_replicas(5).await;

    // Every watch is cut; the operator re-watches and still sees a spec change.
    assert!(cluster.kube.drop_watches() > 0, "the operator was watching");
    cluster.patch_autoscaler(AUTOSCALER, &json!({"spec":{"maxReplicas":3}}));
    cluster.wait_replicas(3).await;

    // A restart that forgets the watch history: resuming gets 410 Gone, the operator relists.
    cluster
        .kube
        .restart(testkit::Restart {
            down_for: Duration::from_millis(500),
            keep_history: false,
        })
        .await
        .expect("restart");
    cluster.patch_autoscaler(AUTOSCALER, &json!({"spec":{"maxReplicas":4}}));
    cluster.wait_replicas(4).await;
    let relisted = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| {
            r.client.as_deref() == Some("operator")
                && r.path.ends_with("/aviautoscalers")
                && !r.watch
                && r.method == "GET"
        })
        .count();
    assert!(
        relisted >= 2,
        "expected a relist after 410, saw {relisted} lists"
    );
    drop(operator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_exactly_one_replica_writes_and_a_standby_takes_over() {
    let (cluster, sim) = seed(json!({})).await;
    let args = [
        ALLOW_INLINE,
        "--leader-election",
        "--lease-namespace",
        "default",
        "--lease-duration-seconds",
        "10",
        "--lease-renew-grace-seconds",
        "4",
    ];
    let a = Operator::start(&cluster, "replica-a", &args);
    let b = Operator::start(&cluster, "replica-b", &args);
    cluster.wait("a lease holder", Cluster::lease_holder).await;
    at(&sim, 300.0).await;
    cluster.wait_replicas(4).await;
    // Exactly one replica wrote: the one holding the lease.
    let writer = cluster
        .wait("the scale write to be logged", |c| {
            let a_wrote = !c.scale_writes("replica-a").is_empty();
            let b_wrote = !c.scale_writes("replica-b").is_empty();
            (a_wrote || b_wrote).then_some((a_wrote, b_wrote))
        })
        .await;
    assert!(writer != (true, true), "both replicas scaled");
    let (leader, standby) = if writer.0 { (a, b) } else { (b, a) };
    assert_eq!(cluster.scale_writes(&leader.client), vec![4]);
    let standby_status_writes = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| {
            r.client.as_deref() == Some(standby.client.as_str()) && r.path.ends_with("/status")
        })
        .count();
    assert_eq!(standby_status_writes, 0, "the standby wrote status");

    // The leader dies; the standby takes over within the lease duration and scales.
    let standby_name = standby.client.clone();
    leader.kill();
    cluster
        .wait("the standby holding the lease", |c| {
            (c.get(
                "coordination.k8s.io/v1",
                "Lease",
                "default",
                "avi-autoscaler",
            )?
            .pointer("/spec/holderIdentity")?
                == standby_name.as_str())
            .then_some(())
        })
        .await;
    at(&sim, 600.0).await;
    cluster.wait_replicas(5).await;
    cluster.wait_scale_writes(&standby_name, &[5]).await;
    assert_writes_only_through_subresources(&cluster, &standby_name);
    assert!(standby.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_autoscalers_read_but_never_scale() {
    let (cluster, sim) = seed(json!({"paused": true})).await;
    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    at(&sim, 600.0).await;
    let message = cluster.wait_reason("ScalingActive", "Paused").await;
    assert!(message.contains("paused"), "{message}");
    cluster
        .wait("the metric read while paused", |c| {
            (c.autoscaler()?.pointer("/status/currentMetrics/0/value")? == &json!(1000.0))
                .then_some(())
        })
        .await;
    assert!(cluster.scale_writes("operator").is_empty());
    assert_eq!(cluster.replicas(), Some(1));

    // Unpausing resumes scaling.
    cluster.patch_autoscaler(AUTOSCALER, &json!({"spec":{"paused":false}}));
    cluster.wait_replicas(4).await;
}

/// A StatefulSet for a second autoscaler.
const STATEFULSET: &str = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"kuard-set","namespace":"routing-ns1"},
"spec":{"replicas":1,"serviceName":"kuard","selector":{"matchLabels":{"app":"kuard-set"}},
"template":{"metadata":{"labels":{"app":"kuard-set"}},"spec":{"containers":[{"name":"kuard","image":"gcr.io/kuar-demo/kuard-amd64:blue"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_grants_exactly_what_the_operator_uses_and_telemetry_reports_it() {
    let (cluster, sim) = seed(json!({})).await;
    let mut set_aas = e2e::kuard_autoscaler(&sim, &json!({"pollingIntervalSeconds": 1}));
    set_aas["metadata"]["name"] = json!("kuard-set");
    set_aas["spec"]["scaleTargetRef"] =
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "kuard-set"});
    cluster.apply(&format!(
        "{STATEFULSET}\n---\n{set_aas}\n---\n{}",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"avi-autoscaler"}}"#
    ));
    let operator = Operator::start(
        &cluster,
        "operator",
        &[
            ALLOW_INLINE,
            "--leader-election",
            "--lease-namespace",
            "avi-autoscaler",
        ],
    );

    // Health: alive at once, ready once the watch has listed (it logs that after /readyz
    // turned ready).
    let health = operator.health_addr();
    assert_eq!(e2e::http_get(&health, "/healthz").await.0, 200);
    operator.wait_log("watches synced");
    assert_eq!(
        e2e::http_get(&health, "/readyz").await,
        (200, "ok\n".to_owned())
    );

    at(&sim, 300.0).await;
    cluster.wait_replicas(4).await;
    cluster
        .wait("the StatefulSet at 4", |c| {
            (c.get("apps/v1", "StatefulSet", NAMESPACE, "kuard-set")?
                .pointer("/spec/replicas")?
                == &json!(4))
                .then_some(())
        })
        .await;
    // The same Warning twice (an outage, a recovery, the same outage): the second is a patch of
    // the first Event's series, as kube-runtime's recorder does.
    for _ in 0..2 {
        sim.handle().set_node_up(0, false).await.expect("node down");
        cluster.wait_reason("Ready", "AviUnreachable").await;
        sim.handle().set_node_up(0, true).await.expect("node up");
        cluster.wait_reason("Ready", "Active").await;
    }
    cluster
        .wait("a repeated event patched", |c| {
            c.kube
                .requests()
                .iter()
                .any(|r| {
                    r.client.as_deref() == Some("operator")
                        && r.method == "PATCH"
                        && r.path.contains("/events/")
                })
                .then_some(())
        })
        .await;
    // A reconcile sets its gauges last, after its status write and its Events, so Ready=Active
    // can be seen before the recovered metric value is back in /metrics. The reconcile counter
    // moves after the gauges: one more finished reconcile than now means the one that wrote
    // Ready=Active has set them.
    let seen = operator.reconciles().await;
    operator.wait_reconciles(seen, 1).await;

    // /metrics reports what happened, in the Prometheus text format.
    let (status, metrics) = e2e::http_get(&operator.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let avi_requests = format!(
        "avi_autoscaler_avi_requests_total{{endpoint=\"{}/\",kind=\"metrics\",outcome=\"ok\"}}",
        sim.url().trim_end_matches('/')
    );
    for needle in [
        "avi_autoscaler_reconciliations_total{result=\"success\"}",
        "avi_autoscaler_reconcile_duration_seconds_bucket",
        avi_requests.as_str(),
        "avi_autoscaler_avi_request_duration_seconds_count",
        "avi_autoscaler_kube_requests_total",
        "avi_autoscaler_metric_value{namespace=\"routing-ns1\",name=\"kuard\"",
        "avi_autoscaler_desired_replicas{namespace=\"routing-ns1\",name=\"kuard\"} 4",
        "avi_autoscaler_current_replicas{namespace=\"routing-ns1\",name=\"kuard\"}",
        "avi_autoscaler_scale_events_total{namespace=\"routing-ns1\",name=\"kuard\",direction=\"up\"} 1",
        "avi_autoscaler_leader 1",
        "avi_autoscaler_ready{namespace=\"routing-ns1\",name=\"kuard\"} 1",
        "avi_autoscaler_condition{namespace=\"routing-ns1\",name=\"kuard\",type=\"Ready\",status=\"True\",reason=\"Active\"} 1",
        "avi_autoscaler_ready_replicas{namespace=\"routing-ns1\",name=\"kuard\"}",
        "avi_autoscaler_metric_target{namespace=\"routing-ns1\",name=\"kuard\"",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
    // Every metric the Grafana dashboard and the alert rules query is one the operator exports.
    e2e::assert_exports_every_queried_metric(&metrics);
    assert!(!metrics.contains(PASSWORD));
    assert!(operator.stop().success());

    // Every call the operator made is allowed by the RBAC of config/inline-controllers (the
    // default install with inline connections allowed, which these autoscalers use), and every
    // rule there was used (ReplicaSets aside: no e2e target is one).
    let log = cluster.dir().join("operator-requests.jsonl");
    let lines: Vec<String> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator"))
        .map(|r| {
            json!({"method": r.method, "path": r.uri(), "status": r.status, "userAgent": r.user_agent}).to_string()
        })
        .collect();
    std::fs::write(&log, lines.join("\n")).expect("writing the request log");
    let manifests = cluster.dir().join("default.yaml");
    let rendered = std::process::Command::new("kubectl")
        .args([
            "kustomize",
            e2e::workspace_root()
                .join("config/inline-controllers")
                .to_str()
                .unwrap(),
        ])
        .output()
        .expect("kubectl kustomize runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    std::fs::write(&manifests, &rendered.stdout).expect("writing the manifests");
    let audit = std::process::Command::new(e2e::venv_python())
        .arg(e2e::workspace_root().join("hack/rbac_audit.py"))
        .args([
            "--log",
            log.to_str().unwrap(),
            "--manifests",
            manifests.to_str().unwrap(),
        ])
        .args(["--service-account", "avi-autoscaler/avi-autoscaler"])
        .args(["--allow-unused", "apps:replicasets:get"])
        .args(["--allow-unused", "apps:replicasets:list"])
        .args(["--allow-unused", "apps:replicasets:watch"])
        .args(["--allow-unused", "apps:replicasets/scale:get"])
        .args(["--allow-unused", "apps:replicasets/scale:patch"])
        // This run has inline connections only, so no AviController status is written;
        // tests/e2e/avicontroller.rs writes them.
        .args([
            "--allow-unused",
            "autoscaling.avi.dev:avicontrollers/status:patch",
        ])
        .output()
        .expect("the audit runs");
    assert!(
        audit.status.success(),
        "RBAC audit:\n{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&audit.stdout));

    // Every call exists in Kubernetes 1.28, the oldest version the chart supports.
    let root = e2e::workspace_root();
    let api_check = std::process::Command::new(e2e::venv_python())
        .arg(root.join("hack/kube_api_check.py"))
        .args(["--log", log.to_str().unwrap()])
        .arg("--crd")
        .arg(root.join("config/crd/aviautoscalers.autoscaling.avi.dev.yaml"))
        .arg("--crd")
        .arg(root.join("config/crd/avicontrollers.autoscaling.avi.dev.yaml"))
        .output()
        .expect("the API check runs");
    assert!(
        api_check.status.success(),
        "Kubernetes 1.28 API check:\n{}{}",
        String::from_utf8_lossy(&api_check.stdout),
        String::from_utf8_lossy(&api_check.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&api_check.stdout));
}
