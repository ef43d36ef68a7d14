//! The operator at scale: resident memory idle and with 1,000 AviAutoscalers, the time to
//! reconcile them all, and the Avi requests one tick costs.
//!
//! Runs the release `avi-autoscaler` binary (`make bench` builds it) against an in-process
//! kube-standin and an avi-sim controller serving 1,000 pools. Set `AVI_BENCH_OBJECTS` to change
//! the count. Prints the figures; speed and memory goals live here, not in the tests.

use std::time::{Duration, Instant};

use avi_sim::{Scenario, Sim, SimConfig};
use e2e::{Cluster, Operator};
use serde_json::{Value, json};
use testkit::ObjectRef;

const NAMESPACE: &str = "bench";
const INTERVAL: u64 = 15;

fn pool(i: usize) -> String {
    format!("k8s-03-cluster--app{i}.example.com_-bench-app{i}-ingress")
}

fn scenario(n: usize) -> Scenario {
    let pools: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": pool(i),
                "servers": {"count": 1, "firstIp": format!("10.{}.{}.10", 1 + i / 250, i % 250), "port": 8080},
                "load": {"spawnRate": 10, "maxUsers": 100 + (i % 7) * 100, "startAt": 0, "connsPerUser": 1}
            })
        })
        .collect();
    // 20× simulated time: Avi's 300 s buckets close every 15 s, once per polling interval, so
    // every tick reads new values and the targets scale.
    let yaml = serde_json::to_string(&json!({
        "controller": {"timeScale": 20.0},
        "users": [{"username": "admin", "password": "bench"}],
        "tenants": [{"name": "admin"}],
        "pools": pools,
    }))
    .expect("JSON");
    Scenario::from_yaml(&yaml).expect("a valid scenario")
}

fn deployment(i: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": format!("app{i}"), "namespace": NAMESPACE},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": format!("app{i}")}},
                    "template": {"metadata": {"labels": {"app": format!("app{i}")}},
                                 "spec": {"containers": [{"name": "app", "image": "app"}]}}}})
}

fn autoscaler(i: usize, url: &str) -> Value {
    json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
           "metadata": {"name": format!("app{i}"), "namespace": NAMESPACE},
           "spec": {"scaleTargetRef": {"name": format!("app{i}")}, "maxReplicas": 10,
                    "pollingIntervalSeconds": INTERVAL,
                    "controller": {"endpoints": [url], "credentialsSecretRef": {"name": "avi"},
                                   "tls": {"caSecretRef": {"name": "avi-ca"}}},
                    "metrics": [{"entity": {"type": "pool", "name": pool(i)},
                                 "metricId": "l4_server.avg_open_conns",
                                 "target": {"type": "AverageValue", "averageValue": 200}}]}})
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("AVI_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(scenario(n)))
        .await
        .expect("avi-sim starts");
    let store = cluster.kube.store();
    store
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        .expect("namespace");
    store
        .create(json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "avi", "namespace": NAMESPACE},
                       "stringData": {"username": "admin", "password": "bench"}}))
        .expect("secret");
    store
        .create(json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "avi-ca", "namespace": NAMESPACE},
                       "stringData": {"ca.crt": sim.ca_pem()}}))
        .expect("CA secret");

    let operator = Operator::start(&cluster, "operator", &["--log-level", "warn"]);
    operator.wait_log("watches synced");
    let idle = operator.rss_kib();

    let created = Instant::now();
    for i in 0..n {
        store.create(deployment(i)).expect("deployment");
        store.create(autoscaler(i, &sim.url())).expect("autoscaler");
    }
    let reconciled = |s: &testkit::Store| {
        s.list(
            "autoscaling.avi.dev/v1alpha1",
            "AviAutoscaler",
            Some(NAMESPACE),
        )
        .iter()
        .filter(|a| a.pointer("/status/observedGeneration").is_some())
        .count()
    };
    store
        .wait_for(|s| reconciled(s) == n, Duration::from_secs(600))
        .await
        .expect("every AviAutoscaler reconciled");
    let all_reconciled = created.elapsed();

    // Steady state: count Avi metric requests over a few ticks.
    let ticks = 3u64;
    let before = sim.handle().counters();
    let start = Instant::now();
    let until = start + Duration::from_secs(INTERVAL * ticks);
    let mut peak = operator.rss_kib();
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < until {
        every_second.tick().await;
        peak = peak.max(operator.rss_kib());
    }
    let after = sim.handle().counters();
    let metric_requests = after.requests("GET /api/analytics/prometheus-metrics/pool")
        - before.requests("GET /api/analytics/prometheus-metrics/pool");
    let scaled = store
        .list("apps/v1", "Deployment", Some(NAMESPACE))
        .iter()
        .filter(|d| d.pointer("/spec/replicas").and_then(Value::as_i64) > Some(1))
        .count();
    let busy = operator.rss_kib();
    let status_writes = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator") && r.path.ends_with("/status"))
        .count();
    let one = ObjectRef::namespaced(
        "autoscaling.avi.dev/v1alpha1",
        "AviAutoscaler",
        NAMESPACE,
        "app0",
    );
    let sample = store.get(&one).expect("app0");

    println!("operator at scale: {n} AviAutoscalers, one pool each, polling every {INTERVAL} s");
    println!("  resident memory idle (no AviAutoscalers): {}", mib(idle));
    println!(
        "  resident memory with {n} AviAutoscalers:   {} (peak {})",
        mib(busy),
        mib(peak)
    );
    println!("  time to reconcile all {n} once:           {all_reconciled:.2?}");
    println!(
        "  Avi metric requests per tick:             {:.1} (ceil({n} / 50) = {})",
        metric_requests as f64 / ticks as f64,
        n.div_ceil(50)
    );
    println!("  targets scaled above 1:                   {scaled}");
    println!("  status writes in total:                   {status_writes}");
    println!(
        "  app0: {} replicas desired, metric {}",
        sample["status"]["desiredReplicas"], sample["status"]["metricSummary"]
    );
    drop(operator);
}
