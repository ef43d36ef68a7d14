//! End-to-end: one autoscaler per workload. Two AviAutoscalers on one Deployment and a
//! HorizontalPodAutoscaler on another, with the real `avi-autoscaler run` binary, testkit's
//! Kubernetes API stand-in and an avi-sim controller under load.
//!
//! Timings are compressed as in the operator tests: one-second polling, realtime metrics and
//! avi-sim's simulated clock moved by the test.

use std::time::Duration;

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, AUTOSCALER, Cluster, DEPLOYMENT, NAMESPACE, Operator};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-e2e";
/// The newer AviAutoscaler on the seed Deployment.
const NEWER: &str = "kuard-newer";
/// The second Deployment, its HorizontalPodAutoscaler and its AviAutoscaler share this name.
const OTHER: &str = "kuard-other";

async fn seed_controller() -> RunningSim {
    Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts")
}

/// The `/scale` writes of the operator to the Deployment `name`, in order.
fn scale_writes_to(cluster: &Cluster, name: &str) -> Vec<i64> {
    let path = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}/scale");
    cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator"))
        .filter(|r| r.method == "PATCH" && r.path == path && r.status < 300)
        .filter_map(|r| {
            serde_json::from_str::<Value>(&r.body)
                .ok()?
                .pointer("/spec/replicas")?
                .as_i64()
        })
        .collect()
}

fn replicas_of(cluster: &Cluster, name: &str) -> Option<i64> {
    cluster
        .get("apps/v1", "Deployment", NAMESPACE, name)?
        .pointer("/spec/replicas")?
        .as_i64()
}

fn reasons_of(cluster: &Cluster, name: &str) -> Vec<String> {
    cluster
        .events_of(name)
        .into_iter()
        .map(|(_, reason, _)| reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_autoscalers_on_one_deployment_and_an_hpa_on_another_do_not_fight() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = seed_controller().await;
    let spec = |max: i64, target: &str| {
        json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "maxReplicas": max,
            "pollingIntervalSeconds": 1,
            "metrics": [{
                "entity": {"type": "pool", "name": avi_sim::SEED_POOL},
                "metricId": "l4_server.avg_open_conns",
                "aggregation": "Sum",
                "realtime": true,
                "target": {"type": "AverageValue", "averageValue": 200}
            }]
        })
    };
    // The seed: namespace, Secrets, kuard-deployment and the older AviAutoscaler (max 10).
    let manifests = e2e::kuard_manifests(&sim, PASSWORD, &spec(10, DEPLOYMENT));
    let docs: Vec<Value> = manifests
        .split("\n---\n")
        .map(|d| serde_json::from_str(d).expect("JSON"))
        .collect();
    cluster.apply(&manifests);
    let autoscaler = docs.last().expect("the AviAutoscaler comes last").clone();
    let mut deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the seed has a Deployment")
        .clone();

    // The newer AviAutoscaler (max 3). Created in the same second, the name decides, and
    // `kuard` sorts first.
    let mut newer = autoscaler.clone();
    newer["metadata"]["name"] = json!(NEWER);
    e2e::merge(&mut newer["spec"], &spec(3, DEPLOYMENT));
    // A second Deployment, scaled by a HorizontalPodAutoscaler and named by an AviAutoscaler.
    deployment["metadata"]["name"] = json!(OTHER);
    deployment["spec"]["replicas"] = json!(2);
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": OTHER, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": OTHER},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]
        }
    });
    let mut other = autoscaler.clone();
    other["metadata"]["name"] = json!(OTHER);
    e2e::merge(&mut other["spec"], &spec(10, OTHER));
    let more: Vec<String> = [&newer, &deployment, &hpa, &other]
        .iter()
        .map(|d| d.to_string())
        .collect();
    cluster.apply(&more.join("\n---\n"));

    drop(e2e::sync_pool_members(&cluster, &sim));
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);

    // Both conflicts are reported at once, naming the other object.
    let ambiguous = cluster
        .wait_reason_of(NEWER, "AbleToScale", "AmbiguousTarget")
        .await;
    assert!(
        ambiguous.contains(&format!("AviAutoscaler {AUTOSCALER}")),
        "{ambiguous}"
    );
    let conflicting = cluster
        .wait_reason_of(OTHER, "AbleToScale", "ConflictingHorizontalPodAutoscaler")
        .await;
    assert!(
        conflicting.contains(&format!("HorizontalPodAutoscaler {OTHER}")),
        "{conflicting}"
    );
    cluster.wait_event_of(NEWER, "AmbiguousTarget").await;
    cluster
        .wait_event_of(OTHER, "ConflictingHorizontalPodAutoscaler")
        .await;

    // Full load (1000 open connections, 200 per replica): the older one scales to 5.
    sim.handle()
        .set_elapsed(600.0)
        .await
        .expect("the clock moves forward");
    cluster.wait_replicas(5).await;
    // A few more polls of the three autoscalers at full load: nothing moves back.
    let settled = operator.reconciles().await;
    operator.wait_reconciles(settled, 15).await;

    let writes = scale_writes_to(&cluster, DEPLOYMENT);
    assert!(
        writes.windows(2).all(|w| w[0] < w[1]),
        "the seed Deployment's writes only go up (one writer): {writes:?}"
    );
    assert_eq!(writes.last(), Some(&5), "{writes:?}");
    assert!(
        !writes.contains(&3),
        "the newer autoscaler's max never reached the Deployment: {writes:?}"
    );
    assert_eq!(replicas_of(&cluster, DEPLOYMENT), Some(5));
    assert!(
        !reasons_of(&cluster, NEWER).contains(&"SuccessfulRescale".to_owned()),
        "{:?}",
        cluster.events_of(NEWER)
    );
    let newer_status = cluster.autoscaler_named(NEWER).expect("the newer exists");
    assert_eq!(
        (
            &newer_status["status"]["currentReplicas"],
            &newer_status["status"]["desiredReplicas"]
        ),
        (&json!(5), &json!(5)),
        "{newer_status:#}"
    );
    let (ready, reason, _) = cluster
        .condition_of(NEWER, "Ready")
        .expect("the newer has Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "AmbiguousTarget")
    );

    // The HPA's Deployment was never written, whatever the load.
    assert!(
        scale_writes_to(&cluster, OTHER).is_empty(),
        "{:?}",
        scale_writes_to(&cluster, OTHER)
    );
    assert_eq!(replicas_of(&cluster, OTHER), Some(2));

    // The HPA goes: its AviAutoscaler takes over and scales.
    cluster.kubectl_ok(&["delete", "hpa", OTHER, "-n", NAMESPACE], None);
    cluster
        .wait("the freed AviAutoscaler to scale", |c| {
            scale_writes_to(c, OTHER).last().copied()
        })
        .await;
    cluster
        .wait_reason_of(OTHER, "AbleToScale", "SucceededRescale")
        .await;
    // The seed Deployment still has one writer.
    assert_eq!(
        scale_writes_to(&cluster, DEPLOYMENT),
        writes,
        "{:?}",
        operator.logs()
    );
}
