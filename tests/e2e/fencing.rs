//! End-to-end: the real `avi-autoscaler run` binary's writes are safe against a lost lease and
//! a concurrent change of the target.
//!
//! - Fencing: while the leader waits on a slow Avi answer, another identity takes the Lease
//!   (written through the stand-in); from the handover on, the old leader writes nothing, not
//!   even when the answer it waited for arrives and asks for a scale.
//! - Conditional Lease writes: a replica whose Lease another identity took reads it again and
//!   never renews it.
//! - Conditional `/scale` writes: the target changes between the operator's read and its write;
//!   the write carries the resourceVersion read, gets a 409 and overwrites nothing; a repeat is
//!   reported with a `ScaleConflict` Event, and the next clean read scales.
//! - A lost status write: the status write after a scale fails (two server errors, then a
//!   conflict); the operator decides from the status it could not write, so the rate limit
//!   counts the scale and no second step follows; every status write carries the
//!   resourceVersion it was decided from.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use api::k8s::jiff::Timestamp;
use avi_sim::{FaultKind, FaultSpec, RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, Cluster, DEPLOYMENT, NAMESPACE, Operator, kuard_manifests};
use serde_json::{Value, json};
use testkit::{Fault, ObjectRef};

const PASSWORD: &str = "s3cret-fencing";
/// The Avi metrics request of the seed autoscaler, as avi-sim counts it.
const METRICS_REQUEST: &str = "GET /api/analytics/prometheus-metrics/pool";

/// The seed setup with `spec` merged in; the simulated clock is paused at the start (no load).
async fn seed(spec: Value) -> (Cluster, RunningSim) {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec));
    drop(e2e::sync_pool_members(&cluster, &sim));
    (cluster, sim)
}

/// Moves the simulated clock to `t` seconds after the scenario's start (1000 users by 300 s).
async fn at(sim: &RunningSim, t: f64) {
    sim.handle()
        .set_elapsed(t)
        .await
        .expect("the clock moves forward");
}

/// Waits until the seed AviAutoscaler has a status (the operator reconciled it once).
async fn wait_first_status(cluster: &Cluster) {
    cluster
        .wait("a first status", |c| {
            c.autoscaler()?.get("status").map(|_| ())
        })
        .await;
}

/// Takes the operator's Lease for `replica-b` for a minute, through kubectl, as a forced
/// takeover would.
fn take_lease_as_replica_b(cluster: &Cluster) {
    let now = format!("{:.6}", Timestamp::now());
    cluster.kubectl_ok(
        &[
            "patch",
            "lease",
            "avi-autoscaler",
            "-n",
            "default",
            "--type",
            "merge",
            "-p",
            &json!({"spec": {"holderIdentity": "replica-b", "renewTime": now,
                             "acquireTime": now, "leaseDurationSeconds": 60}})
            .to_string(),
        ],
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_during_a_slow_fetch_leaves_the_old_leader_no_write() {
    let (cluster, sim) = seed(json!({"pollingIntervalSeconds": 2})).await;
    // A long lease renewed rarely: the lease manager of the old leader does not look at the
    // Lease again during the test, so only the fence can see the handover.
    let leader = Operator::start(
        &cluster,
        "replica-a",
        &[
            ALLOW_INLINE,
            "--leader-election",
            "--lease-namespace",
            "default",
            "--lease-duration-seconds",
            "60",
            "--lease-renew-grace-seconds",
            "10",
        ],
    );
    cluster
        .wait("replica-a holding the lease", |c| {
            (c.lease_holder()? == "replica-a").then_some(())
        })
        .await;
    wait_first_status(&cluster).await;

    // Every metrics answer now takes 3 s, and the next one asks for 4 replicas.
    sim.handle()
        .add_fault(
            FaultSpec::new(FaultKind::Latency)
                .delay_ms(3000)
                .times(1_000_000)
                .on_path("/api/analytics/"),
        )
        .await
        .expect("a fault");
    let answered_before = sim.handle().counters().responses(METRICS_REQUEST, 200);
    at(&sim, 300.0).await;
    cluster
        .wait("a slow metrics request in flight", |_| {
            let c = sim.handle().counters();
            (c.requests(METRICS_REQUEST) > c.responses(METRICS_REQUEST, 200)
                && c.responses(METRICS_REQUEST, 200) == answered_before)
                .then_some(())
        })
        .await;

    // Another identity takes the Lease while the leader waits on Avi.
    take_lease_as_replica_b(&cluster);
    let handover = cluster.kube.last_request_seq();

    // The slow answer arrives (it asks for 4 replicas); the old leader abandons that reconcile
    // and the next one (or, unfenced, writes).
    let writes_since_handover = |c: &Cluster| -> Vec<String> {
        c.kube
            .requests_since(handover)
            .iter()
            .filter(|r| r.client.as_deref() == Some("replica-a"))
            .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD") && r.status < 400)
            .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
            .collect()
    };
    cluster
        .wait("two abandoned reconciles or a write", |c| {
            let abandoned = leader
                .logs()
                .iter()
                .filter(|l| l.contains("lease not confirmed"))
                .count();
            (abandoned >= 2 || !writes_since_handover(c).is_empty()).then_some(())
        })
        .await;
    let writes = writes_since_handover(&cluster);
    assert!(
        writes.is_empty(),
        "the old leader wrote after the handover: {writes:?}"
    );
    assert!(
        sim.handle().counters().responses(METRICS_REQUEST, 200) > answered_before,
        "the slow answer was delivered"
    );
    assert!(cluster.scale_writes("replica-a").is_empty());
    assert_eq!(cluster.replicas(), Some(1));
    assert_eq!(cluster.lease_holder().as_deref(), Some("replica-b"));
    drop(leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_change_between_read_and_write_is_never_overwritten() {
    let (cluster, sim) = seed(json!({"pollingIntervalSeconds": 1})).await;
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    wait_first_status(&cluster).await;

    // The operator's scale writes now take a second to arrive, and meanwhile someone keeps
    // scaling the Deployment by hand: each write was decided on a Deployment that has changed.
    let slow_write = cluster.kube.inject(
        Fault::delay(Duration::from_secs(1))
            .method("PATCH")
            .path(&format!(
                "/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}/scale"
            ))
            .client("operator"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let by_hand = {
        let store = cluster.kube.store();
        let stop = stop.clone();
        let deployment = ObjectRef::namespaced("apps/v1", "Deployment", NAMESPACE, DEPLOYMENT);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(200));
            for n in [2, 3].into_iter().cycle() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                store.set_scale(&deployment, n).expect("a manual scale");
                interval.tick().await;
            }
        })
    };

    // The load asks for 4: every write meets a changed Deployment.
    at(&sim, 300.0).await;
    let message = cluster.wait_event("ScaleConflict").await;
    assert!(message.contains("changed since"), "{message}");
    stop.store(true, Ordering::Release);
    by_hand.await.expect("the manual scaler ends");
    cluster.kube.remove_fault(slow_write);

    // Each conflicting write carried the resourceVersion it was decided on and changed
    // nothing; the first write on a clean read scales.
    let conflicts: Vec<Value> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator"))
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/scale") && r.status == 409)
        .map(|r| serde_json::from_str(&r.body).expect("a JSON patch"))
        .collect();
    assert!(conflicts.len() >= 2, "{conflicts:?}");
    for patch in &conflicts {
        assert!(
            patch.pointer("/metadata/resourceVersion").is_some(),
            "a scale write without a resourceVersion: {patch}"
        );
    }
    cluster.wait_replicas(4).await;
    cluster.wait_scale_writes("operator", &[4]).await;
    drop(operator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_whose_status_write_failed_is_not_forgotten() {
    // One pod per 10 minutes: a decision that forgot the first step would take a second one
    // at once.
    let (cluster, sim) = seed(json!({
        "pollingIntervalSeconds": 1,
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0,
                                 "policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]}}
    }))
    .await;
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    wait_first_status(&cluster).await;

    // The status writes after the scale fail: twice a server error, once a conflict.
    let status_path = "/apis/autoscaling.avi.dev/v1alpha1/namespaces/*/aviautoscalers/*/status";
    for fault in [Fault::status(500).times(2), Fault::status(409).times(1)] {
        cluster
            .kube
            .inject(fault.method("PATCH").path(status_path).client("operator"));
    }
    // The load asks for 4; the policy allows 1 → 2.
    at(&sim, 300.0).await;
    cluster.wait_scale_writes("operator", &[2]).await;
    let recorded = cluster
        .wait("the scale recorded in status", |c| {
            let status = c.autoscaler()?.get("status")?.clone();
            (status["currentReplicas"] == 2).then_some(status)
        })
        .await;
    let events = recorded["scaleEvents"].as_array().expect("scale events");
    assert_eq!(events.len(), 1, "{recorded}");
    assert_eq!(
        (events[0]["from"].clone(), events[0]["to"].clone()),
        (json!(1), json!(2))
    );

    // Fresh samples keep asking for 4; the rate limit, known from the remembered scale, holds
    // the target at 2 over several more reconciles.
    let before = operator.reconciles().await;
    at(&sim, 330.0).await;
    operator.wait_reconciles(before, 5).await;
    assert_eq!(cluster.scale_writes("operator"), vec![2]);
    assert_eq!(cluster.replicas(), Some(2));

    // Every status write carried the resourceVersion its decision was made from, and the three
    // failures happened.
    let writes: Vec<_> = cluster
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.client.as_deref() == Some("operator"))
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/status"))
        .collect();
    assert_eq!(
        writes.iter().filter(|r| r.status >= 400).count(),
        3,
        "{writes:?}"
    );
    for w in &writes {
        let body: Value = serde_json::from_str(&w.body).expect("a JSON patch");
        assert!(
            body.pointer("/metadata/resourceVersion").is_some(),
            "a status write without a resourceVersion: {body}"
        );
    }
    drop(operator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_never_renews_a_lease_another_identity_took() {
    let (cluster, _sim) = seed(json!({})).await;
    // A short lease renewed every 2 s: the old holder looks at the Lease again soon after the
    // takeover.
    let replica = Operator::start(
        &cluster,
        "replica-a",
        &[
            ALLOW_INLINE,
            "--leader-election",
            "--lease-namespace",
            "default",
            "--lease-duration-seconds",
            "4",
            "--lease-renew-grace-seconds",
            "2",
        ],
    );
    cluster
        .wait("replica-a holding the lease", |c| {
            (c.lease_holder()? == "replica-a").then_some(())
        })
        .await;

    // Another identity takes the Lease (as after a forced takeover) for a minute.
    take_lease_as_replica_b(&cluster);
    let handover = cluster.kube.last_request_seq();
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/avi-autoscaler";
    let lease_requests = |c: &Cluster, method: &str| -> Vec<String> {
        c.kube
            .requests_since(handover)
            .iter()
            .filter(|r| r.client.as_deref() == Some("replica-a") && r.path == lease_path)
            .filter(|r| r.method == method)
            .map(|r| format!("{} → {}: {}", r.method, r.status, r.body))
            .collect()
    };
    // Three reads of the Lease span more than one renewal period of the old holder.
    cluster
        .wait("replica-a reading the Lease three times", |c| {
            (lease_requests(c, "GET").len() >= 3).then_some(())
        })
        .await;
    let writes: Vec<String> = lease_requests(&cluster, "PATCH")
        .into_iter()
        .filter(|w| !w.contains("→ 409"))
        .collect();
    assert!(
        writes.is_empty(),
        "replica-a wrote the Lease replica-b holds: {writes:?}"
    );
    assert_eq!(cluster.lease_holder().as_deref(), Some("replica-b"));
    assert!(
        !replica
            .logs()
            .iter()
            .rev()
            .find(|l| l.contains("leadership changed"))
            .is_some_and(|l| l.contains("\"leader\":true")),
        "replica-a still believes it leads"
    );
    drop(replica);
}
