//! How fast the stand-in lists and watches 1000 AviAutoscalers (the operator's memory test
//! puts about that many in it). Run with `make bench` or
//! `cargo bench -p testkit --bench list_watch`; prints one line per measurement.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use testkit::{Config, KubeStandin, WorkloadSim};

const N: usize = 1000;
const ROUNDS: usize = 20;
const PATH: &str = "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers";

fn aas(i: usize) -> Value {
    json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1",
        "kind": "AviAutoscaler",
        "metadata": {"name": format!("aas-{i:04}"), "namespace": "default", "labels": {"bench": "true"}},
        "spec": {
            "scaleTargetRef": {"name": format!("web-{i:04}")},
            "maxReplicas": 5,
            "controller": {"endpoints": ["https://avi.example.com"], "credentialsSecretRef": {"name": "avi"}},
            "metrics": [{"entity": {"type": "pool", "name": format!("pool-{i}")}, "metricId": "l4_server.avg_open_conns",
                         "target": {"type": "AverageValue", "averageValue": 200}}]
        }
    })
}

async fn get(client: &Client, uri: &str, accept: Option<&str>) -> (usize, Duration) {
    let started = Instant::now();
    let mut b = http::Request::builder().uri(uri);
    if let Some(a) = accept {
        b = b.header("Accept", a);
    }
    let resp = client
        .send(b.body(kube::client::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (bytes.len(), started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(what: &str, d: Duration, extra: &str) {
    println!("{what:<58} {:>10.2} ms  {extra}", d.as_secs_f64() * 1000.0);
}

#[tokio::main]
async fn main() {
    let config = Config {
        workloads: WorkloadSim {
            enabled: false,
            ..WorkloadSim::default()
        },
        ..Config::default()
    };
    let standin = KubeStandin::start(config).await.unwrap();
    let crd_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/crd/aviautoscalers.autoscaling.avi.dev.yaml"
    );
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(crd_path).unwrap()).unwrap();
    let store = standin.store();
    store.create(crd).unwrap();

    let started = Instant::now();
    for i in 0..N {
        store.create(aas(i)).unwrap();
    }
    report(
        &format!("create {N} AviAutoscalers (schema + CEL, direct)"),
        started.elapsed(),
        "",
    );

    let kc = Kubeconfig::from_yaml(&standin.kubeconfig()).unwrap();
    let client = Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();

    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..ROUNDS {
        let (n, d) = get(&client, PATH, None).await;
        size = n;
        times.push(d);
    }
    report(
        &format!("list {N} over HTTP (median of {ROUNDS})"),
        median(times),
        &format!("{} KiB", size / 1024),
    );

    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let resp = client
            .send(
                http::Request::builder()
                    .uri(format!("{PATH}?limit=500"))
                    .body(kube::client::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let page: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
        get(&client, &format!("{PATH}?limit=500&continue={token}"), None).await;
        times.push(started.elapsed());
    }
    report(
        &format!("list {N} in pages of 500, as kube-rs does (median of {ROUNDS})"),
        median(times),
        "2 requests",
    );

    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        times.push(
            get(
                &client,
                PATH,
                Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
            )
            .await
            .1,
        );
    }
    report(
        &format!("Table of {N} for kubectl get (median of {ROUNDS})"),
        median(times),
        "",
    );

    // A watch from resourceVersion 0 delivers every object as ADDED.
    let started = Instant::now();
    let resp = client
        .send(
            http::Request::builder()
                .uri(format!("{PATH}?watch=true&resourceVersion=0"))
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut lines = 0;
    while lines < N {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            lines += data.iter().filter(|b| **b == b'\n').count();
        }
    }
    report(
        &format!("watch from 0: {N} ADDED events"),
        started.elapsed(),
        "",
    );

    // Status writes fanned out to ten watchers.
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let resp = client
            .send(
                http::Request::builder()
                    .uri(format!(
                        "{PATH}?watch=true&resourceVersion={}",
                        store.resource_version()
                    ))
                    .body(kube::client::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        watchers.push(tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut lines = 0;
            while lines < N {
                let frame = body.frame().await.unwrap().unwrap();
                if let Ok(data) = frame.into_data() {
                    lines += data.iter().filter(|b| **b == b'\n').count();
                }
            }
        }));
    }
    let started = Instant::now();
    for i in 0..N {
        let status = json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "observedGeneration": 1}});
        let req = http::Request::builder()
            .method("PATCH")
            .uri(format!("/apis/autoscaling.avi.dev/v1alpha1/namespaces/default/aviautoscalers/aas-{i:04}/status?fieldManager=bench&force=true"))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(kube::client::Body::from(status.to_string().into_bytes()))
            .unwrap();
        let resp = client.send(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
    }
    let applied = started.elapsed();
    for w in watchers {
        w.await.unwrap();
    }
    report(
        &format!("{N} status applies over HTTP"),
        applied,
        "one at a time",
    );
    report(
        &format!("... and all {N} events seen by 10 watchers"),
        started.elapsed(),
        "",
    );

    let started = Instant::now();
    for i in 0..N {
        let r = testkit::ObjectRef::namespaced(
            "autoscaling.avi.dev/v1alpha1",
            "AviAutoscaler",
            "default",
            &format!("aas-{i:04}"),
        );
        let config = json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "observedGeneration": 1}});
        store
            .patch_status(
                &r,
                testkit::Patch::Apply {
                    config,
                    field_manager: "bench".into(),
                    force: true,
                },
            )
            .unwrap();
    }
    report(
        &format!("{N} status applies, direct (no HTTP)"),
        started.elapsed(),
        "10 watchers closed",
    );
    standin.shutdown().await;
}
