//! Shared helpers of the stand-in's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use http_body_util::BodyExt;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use testkit::{Config, KubeStandin, WorkloadSim};

/// Generous: the machine running the tests may be loaded.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A stand-in with quick bookmarks and workload controllers.
pub async fn start() -> KubeStandin {
    start_with(Config::default()).await
}

pub async fn start_with(mut config: Config) -> KubeStandin {
    config.bookmark_interval = Duration::from_millis(200);
    config.workloads = WorkloadSim {
        enabled: config.workloads.enabled,
        status_delay: Duration::from_millis(50),
        ready_delay: Duration::from_millis(50),
    };
    KubeStandin::start(config)
        .await
        .expect("the stand-in starts")
}

/// A kube-rs client for the stand-in (through a client marker when given) that does not
/// retry, so tests see every answer as sent.
pub async fn client(standin: &KubeStandin, marker: Option<&str>) -> Client {
    build_client(standin, marker, false).await
}

/// A kube-rs client as an operator builds it (retrying 429, 503 and 504).
pub async fn kube_client(standin: &KubeStandin, marker: Option<&str>) -> Client {
    build_client(standin, marker, true).await
}

async fn build_client(standin: &KubeStandin, marker: Option<&str>, retry: bool) -> Client {
    let yaml = match marker {
        Some(m) => standin.kubeconfig_for(m),
        None => standin.kubeconfig(),
    };
    let kc = Kubeconfig::from_yaml(&yaml).expect("the kubeconfig parses");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    config.default_retry = retry;
    Client::try_from(config).expect("a client builds")
}

/// The AviAutoscaler CRD checked in at config/crd, as JSON.
pub fn crd() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/crd/aviautoscalers.autoscaling.avi.dev.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the CRD file is checked in");
    serde_yaml::from_str(&text).expect("the CRD is YAML")
}

/// A valid AviAutoscaler.
pub fn aas(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1",
        "kind": "AviAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "controller": {"endpoints": ["https://avi.example.com"], "credentialsSecretRef": {"name": "avi"}},
            "metrics": [{"entity": {"type": "pool", "name": "pool-1"}, "metricId": "l4_server.avg_open_conns",
                         "target": {"type": "AverageValue", "averageValue": 200}}]
        }
    })
}

/// A valid Deployment.
pub fn deployment(ns: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}
        }
    })
}

/// Installs the AviAutoscaler CRD directly in the store.
pub fn install_crd(standin: &KubeStandin) {
    standin.store().create(crd()).expect("the CRD is accepted");
}

/// One raw HTTP answer.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: http::HeaderMap,
    pub body: Value,
}

/// Sends a raw request through the kube-rs client and returns the status and JSON body.
pub async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut b = http::Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    let bytes = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
    let req = b
        .body(kube::client::Body::from(bytes))
        .expect("a valid request");
    let resp = client.send(req).await.expect("the stand-in answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

/// A raw watch stream: yields one parsed event per line.
pub struct RawWatch {
    body: kube::client::Body,
    buf: Vec<u8>,
}

impl RawWatch {
    pub async fn open(client: &Client, uri: &str) -> (u16, Self) {
        let req = http::Request::builder()
            .uri(uri)
            .body(kube::client::Body::empty())
            .expect("a valid request");
        let resp = client.send(req).await.expect("the stand-in answers");
        (
            resp.status().as_u16(),
            Self {
                body: resp.into_body(),
                buf: Vec::new(),
            },
        )
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("each line is one JSON event"));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                _ => return None,
            }
        }
    }

    /// The next event within the deadline (panics on timeout, with `what` in the message).
    pub async fn expect(&mut self, what: &str) -> Option<Value> {
        tokio::time::timeout(DEADLINE, self.next())
            .await
            .unwrap_or_else(|_| panic!("no watch event in time: expected {what}"))
    }
}
