//! End-to-end: AviAutoscalers that use a shared, cluster-scoped AviController through
//! `spec.controllerRef`, with the real binary, kube-standin, avi-sim and kubectl.
//!
//! The AviController's Secrets live in the operator's namespace ([`OPERATOR_NAMESPACE`],
//! given with `--cluster-resource-namespace`); the autoscalers live in application namespaces.

use std::time::Duration;

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use e2e::{Cluster, NAMESPACE, Operator, kuard_manifests};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-avic";
/// The operator's own namespace: where AviController Secrets are read.
const OPERATOR_NAMESPACE: &str = "avi-system";
/// The AviController every autoscaler here references.
const CONTROLLER: &str = "avi";
/// How long the operator waits between probes of an AviController.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// The operator namespace, the AviController's credentials (with `password`) and CA Secrets
/// there, and the AviController itself with `spec` merged in.
fn controller_manifests(sim: &RunningSim, password: &str, spec: &Value) -> String {
    let mut avic = json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviController",
        "metadata": {"name": CONTROLLER},
        "spec": {"endpoints": sim.urls(), "credentialsSecretRef": {"name": "avi-credentials"},
                 "authMode": "session", "tenant": "admin",
                 "tls": {"caSecretRef": {"name": "avi-ca", "key": "ca.crt"}}}
    });
    e2e::merge(&mut avic["spec"], spec);
    [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}),
        credentials(password),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "avi-ca", "namespace": OPERATOR_NAMESPACE},
               "stringData": {"ca.crt": sim.ca_pem()}}),
        avic,
    ]
    .iter()
    .map(|d| serde_json::to_string(d).expect("JSON"))
    .collect::<Vec<_>>()
    .join("\n---\n")
}

fn credentials(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "avi-credentials", "namespace": OPERATOR_NAMESPACE},
           "stringData": {"username": "admin", "password": password}})
}

/// The seed experiment with its autoscaler on the AviController, and the AviController with
/// `password` and `avic` merged into its spec. Returns the cluster, the paused simulator and
/// the running operator.
async fn seed(password: &str, avic: &Value) -> (Cluster, RunningSim, Operator) {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    cluster.apply(&controller_manifests(&sim, password, avic));
    let spec = json!({"pollingIntervalSeconds": 1, "controller": null,
                      "controllerRef": {"name": CONTROLLER}});
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec));
    drop(e2e::sync_pool_members(&cluster, &sim));
    let operator = Operator::start(
        &cluster,
        "operator",
        &["--cluster-resource-namespace", OPERATOR_NAMESPACE],
    );
    (cluster, sim, operator)
}

fn controller(cluster: &Cluster) -> Option<Value> {
    cluster.kube.store().get(&testkit::ObjectRef::new(
        "autoscaling.avi.dev/v1alpha1",
        "AviController",
        CONTROLLER,
    ))
}

/// The AviController's Ready condition: (status, reason, message).
fn controller_ready(cluster: &Cluster) -> Option<(String, String, String)> {
    let c = controller(cluster)?;
    let ready = c
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    let s = |k: &str| ready[k].as_str().unwrap_or_default().to_owned();
    Some((s("status"), s("reason"), s("message")))
}

async fn wait_controller(cluster: &Cluster, status: &str, reason: &str) -> String {
    cluster
        .wait(&format!("AviController Ready {status}/{reason}"), |c| {
            controller_ready(c)
                .filter(|(s, r, _)| s == status && r == reason)
                .map(|(_, _, m)| m)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaler_scales_through_an_avicontroller_whose_secret_stays_in_the_operator_namespace()
 {
    let (cluster, sim, _operator) = seed(PASSWORD, &json!({})).await;
    wait_controller(&cluster, "True", "Connected").await;
    cluster.wait_reason("Ready", "Active").await;
    sim.handle()
        .set_elapsed(600.0)
        .await
        .expect("the clock moves");
    cluster.wait_replicas(5).await;

    let status = cluster
        .wait("the AviController counting its autoscaler", |c| {
            let s = controller(c)?["status"].clone();
            (s["autoscalers"] == json!(1)).then_some(s)
        })
        .await;
    let version = status["version"].as_str().expect("a version").to_owned();
    assert!(!version.is_empty());
    assert!(status["activeEndpoint"].as_str().is_some(), "{status}");
    assert!(status["lastProbeTime"].as_str().is_some(), "{status}");
    let table = cluster.kubectl_ok(&["get", "avic"], None);
    let row = table
        .lines()
        .find(|l| l.starts_with(CONTROLLER))
        .unwrap_or_else(|| panic!("no row for {CONTROLLER}: {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.get(1), Some(&"True"), "{table}");
    assert!(cells.contains(&version.as_str()), "{table}");
    assert!(cells.contains(&"1"), "{table}");

    let outside: Vec<String> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator") && r.path.contains("/secrets"))
        .filter(|r| {
            !r.path
                .starts_with(&format!("/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/"))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        outside.is_empty(),
        "Secret reads outside {OPERATOR_NAMESPACE}: {outside:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_selector_does_not_allow_holds_until_it_is_labelled() {
    let selector = json!({"namespaceSelector": {"matchLabels": {"avi-access": "granted"}}});
    let (cluster, sim, _operator) = seed(PASSWORD, &selector).await;
    sim.handle()
        .set_elapsed(600.0)
        .await
        .expect("the clock moves");
    let message = cluster
        .wait_reason("ScalingActive", "ControllerNotAllowed")
        .await;
    assert!(message.contains(CONTROLLER), "{message}");
    assert!(message.contains("avi-access=granted"), "{message}");
    assert_eq!(cluster.replicas(), Some(1));
    assert!(cluster.scale_writes("operator").is_empty());

    cluster.kubectl_ok(
        &["label", "namespace", NAMESPACE, "avi-access=granted"],
        None,
    );
    cluster.wait_replicas(5).await;
    cluster
        .wait("the AviController counting the allowed autoscaler", |c| {
            (controller(c)?.pointer("/status/autoscalers") == Some(&json!(1))).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_holds_every_autoscaler_and_fixing_the_secret_recovers_both() {
    let (cluster, sim, _operator) = seed("not-the-password", &json!({})).await;
    sim.handle()
        .set_elapsed(600.0)
        .await
        .expect("the clock moves");
    let refused = wait_controller(&cluster, "False", "AviAuthFailed").await;
    assert!(!refused.contains("not-the-password"), "{refused}");
    // Before the first probe the autoscaler holds as NotProbed; then with the probe's reason.
    let held = cluster
        .wait("the autoscaler held with the AviController's reason", |c| {
            c.condition("ScalingActive")
                .filter(|(_, r, m)| r == "ControllerNotReady" && m.contains("AviAuthFailed"))
                .map(|(_, _, m)| m)
        })
        .await;
    assert!(held.contains(CONTROLLER), "{held}");
    cluster
        .wait("a Warning Event on the AviController", |c| {
            c.kube
                .store()
                .list("events.k8s.io/v1", "Event", None)
                .into_iter()
                .find(|e| {
                    e.pointer("/regarding/kind") == Some(&json!("AviController"))
                        && e["reason"] == "AviAuthFailed"
                })
        })
        .await;

    assert!(
        cluster.scale_writes("operator").is_empty(),
        "nothing may scale while the AviController is not Ready"
    );
    assert_eq!(cluster.replicas(), Some(1));

    let fixed = std::time::Instant::now();
    cluster.apply(&serde_json::to_string(&credentials(PASSWORD)).expect("JSON"));
    wait_controller(&cluster, "True", "Connected").await;
    cluster.wait_replicas(5).await;
    let took = fixed.elapsed();
    assert!(
        took <= PROBE_INTERVAL + Duration::from_secs(10),
        "recovered after {took:?}"
    );
}

const SCALE_INTERVAL: u64 = 2;
const SCALE_OBJECTS: usize = 200;

fn scale_pool(i: usize) -> String {
    format!("k8s-03-cluster--app{i}.example.com_-scale-app{i}-ingress")
}

/// Creates `SCALE_OBJECTS` Deployments and AviAutoscalers on the AviController, spread over
/// `namespaces` namespaces named `{prefix}-{k}`, and waits until each has been reconciled.
async fn create_autoscalers(cluster: &Cluster, prefix: &str, namespaces: usize) {
    let store = cluster.kube.store();
    for k in 0..namespaces {
        store
            .create(json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": format!("{prefix}-{k}")}}))
            .expect("namespace");
    }
    for i in 0..SCALE_OBJECTS {
        let ns = format!("{prefix}-{}", i % namespaces);
        store
            .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("app{i}"), "namespace": ns},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": format!("app{i}")}},
                         "template": {"metadata": {"labels": {"app": format!("app{i}")}},
                                      "spec": {"containers": [{"name": "app", "image": "app"}]}}}}))
            .expect("deployment");
        store
            .create(
                json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
                "metadata": {"name": format!("app{i}"), "namespace": ns},
                "spec": {"scaleTargetRef": {"name": format!("app{i}")}, "maxReplicas": 10,
                         "pollingIntervalSeconds": SCALE_INTERVAL,
                         "controllerRef": {"name": CONTROLLER},
                         "metrics": [{"entity": {"type": "pool", "name": scale_pool(i)},
                                      "metricId": "l4_server.avg_open_conns",
                                      "target": {"type": "AverageValue", "averageValue": 200}}]}}),
            )
            .expect("autoscaler");
    }
    let prefix = format!("{prefix}-");
    cluster
        .wait("every autoscaler reconciled", |c| {
            let active = c
                .kube
                .store()
                .list("autoscaling.avi.dev/v1alpha1", "AviAutoscaler", None)
                .iter()
                .filter(|a| {
                    a.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .is_some_and(|ns| ns.starts_with(&prefix))
                        && a.pointer("/status/currentMetrics/0/value").is_some()
                })
                .count();
            (active == SCALE_OBJECTS).then_some(())
        })
        .await;
}

/// Avi metric requests per polling tick, over `ticks` ticks from the middle of one tick to the
/// middle of another (so exactly `ticks` ticks fall in the window).
async fn metric_requests_per_tick(sim: &RunningSim, ticks: u64) -> f64 {
    let interval_ms = SCALE_INTERVAL * 1000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let mid = (now_ms / interval_ms + 1) * interval_ms + interval_ms / 2;
    // A measurement window, not a synchronisation: the rate over whole ticks is the figure.
    tokio::time::sleep(Duration::from_millis(mid - now_ms)).await;
    let endpoint = "GET /api/analytics/prometheus-metrics/pool";
    let before = sim.handle().counters().requests(endpoint);
    tokio::time::sleep(Duration::from_millis(interval_ms * ticks)).await;
    let after = sim.handle().counters().requests(endpoint);
    (after - before) as f64 / ticks as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscalers_in_many_namespaces_share_one_batch_per_tick() {
    let pools: Vec<Value> = (0..SCALE_OBJECTS)
        .map(|i| json!({"name": scale_pool(i),
                        "servers": {"count": 1, "firstIp": format!("10.1.{}.10", i % 250), "port": 8080},
                        "load": {"spawnRate": 10, "maxUsers": 100, "startAt": 0, "connsPerUser": 1}}))
        .collect();
    let scenario = Scenario::from_yaml(
        &serde_json::to_string(&json!({
            "users": [{"username": "admin", "password": PASSWORD}],
            "tenants": [{"name": "admin"}],
            "pools": pools,
        }))
        .expect("JSON"),
    )
    .expect("a valid scenario");
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(scenario))
        .await
        .expect("avi-sim starts");
    cluster.apply(&controller_manifests(&sim, PASSWORD, &json!({})));
    let _operator = Operator::start(
        &cluster,
        "operator",
        &[
            "--cluster-resource-namespace",
            OPERATOR_NAMESPACE,
            "--log-level",
            "warn",
        ],
    );
    wait_controller(&cluster, "True", "Connected").await;

    create_autoscalers(&cluster, "single", 1).await;
    let one_namespace = metric_requests_per_tick(&sim, 5).await;
    let store = cluster.kube.store();
    for i in 0..SCALE_OBJECTS {
        store
            .delete(&testkit::ObjectRef::namespaced(
                "autoscaling.avi.dev/v1alpha1",
                "AviAutoscaler",
                "single-0",
                &format!("app{i}"),
            ))
            .expect("delete");
    }
    create_autoscalers(&cluster, "spread", 20).await;
    let twenty_namespaces = metric_requests_per_tick(&sim, 5).await;
    println!(
        "Avi metric requests per tick for {SCALE_OBJECTS} autoscalers: {one_namespace} in one \
         namespace, {twenty_namespaces} in 20 namespaces"
    );
    assert!(one_namespace >= 1.0, "{one_namespace}");
    // How many requests one tick needs depends on how the reconciles of a tick fall into the
    // poller's coalescing windows, which varies a little from run to run on a loaded machine;
    // what must not happen is a cost that grows with the namespaces (20 namespaces keyed
    // apart would need at least 20 requests per tick, and twice the single-namespace cost).
    assert!(
        twenty_namespaces <= one_namespace * 1.25 + 1.0,
        "{twenty_namespaces} requests per tick in 20 namespaces against {one_namespace} in one"
    );
}
