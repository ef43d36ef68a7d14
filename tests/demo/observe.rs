//! What the demo reads and writes over the real endpoints: kube-standin's Kubernetes API (HTTP)
//! and request log, avi-sim's admin endpoints (`/_sim/`, HTTPS) and, through a second node of
//! the simulated cluster, what Avi reports for the pool.

use std::{sync::Arc, time::Duration};

use e2e::{AUTOSCALER, DEPLOYMENT, NAMESPACE, POOL};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::{Value, json};

use crate::error::DemoError;

/// Each request's deadline: the servers answer on loopback in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The metric the seed experiment scales on (`examples/kuard/aviautoscaler.yaml`).
const METRIC: &str = "l4_server.avg_open_conns";
/// The client marker the operator's Kubernetes requests carry in kube-standin's request log.
pub const OPERATOR_CLIENT: &str = "avi-autoscaler";

/// The simulated controller's state at one moment (`GET /_sim/state`).
#[derive(Debug, Clone, Copy)]
pub struct SimState {
    /// Simulated seconds since the load's start.
    pub elapsed: f64,
    /// Users on the kuard pool now.
    pub users: f64,
    /// Members of the kuard pool now.
    pub members: u32,
    /// The aggregation period of Avi's metrics, seconds.
    pub bucket: f64,
}

/// The kuard Deployment's replica counts.
#[derive(Debug, Clone, Copy)]
pub struct Replicas {
    /// `spec.replicas`: what the operator last set.
    pub current: i64,
    /// `status.readyReplicas`.
    pub ready: i64,
}

/// The AviAutoscaler's status, as far as the demo shows it.
#[derive(Debug, Clone, Default)]
pub struct AutoscalerView {
    /// `status.desiredReplicas`.
    pub desired: Option<i64>,
    /// `status.currentMetrics[0].value`: the pool total the operator last read.
    pub read: Option<f64>,
    /// The `Ready` condition: (status, reason).
    pub ready: Option<(String, String)>,
}

/// The newest Event about the AviAutoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// The Event reason.
    pub reason: String,
    /// Its note.
    pub note: String,
    /// How often it happened (events.k8s.io `series.count`, else 1).
    pub count: i64,
    /// When it last happened (RFC 3339).
    pub time: String,
}

/// HTTP access to kube-standin and avi-sim.
pub struct Endpoints {
    http: reqwest::Client,
    /// kube-standin's base URL.
    kube: String,
    /// avi-sim's node 0: the controller the operator uses, and its admin endpoints.
    avi: String,
    /// avi-sim's node 1: where the demo reads what Avi reports, so that its reads are not
    /// counted among the operator's requests (the counters are kept per node).
    avi_reader: String,
    password: String,
}

impl Endpoints {
    /// A client trusting avi-sim's CA (`ca_pem`).
    pub fn new(
        kube: &str,
        avi: &str,
        avi_reader: &str,
        ca_pem: &str,
        password: &str,
    ) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("avi-sim's CA is not valid PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("avi-sim's CA cannot be used: {e}"))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REQUEST_TIMEOUT)
            .user_agent("avi-demo")
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Endpoints {
            http,
            kube: kube.trim_end_matches('/').to_owned(),
            avi: avi.trim_end_matches('/').to_owned(),
            avi_reader: avi_reader.trim_end_matches('/').to_owned(),
            password: password.to_owned(),
        })
    }

    async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, DemoError> {
        let http = |source| DemoError::Http {
            what,
            url: url.to_owned(),
            source,
        };
        request
            .send()
            .await
            .map_err(http)?
            .error_for_status()
            .map_err(http)
    }

    async fn json(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, DemoError> {
        self.send(what, request, url)
            .await?
            .json()
            .await
            .map_err(|source| DemoError::Http {
                what,
                url: url.to_owned(),
                source,
            })
    }

    /// A GET of a JSON document; `None` on 404.
    async fn get_optional(
        &self,
        what: &'static str,
        url: &str,
    ) -> Result<Option<Value>, DemoError> {
        match self.json(what, self.http.get(url), url).await {
            Ok(v) => Ok(Some(v)),
            Err(DemoError::Http { source, .. })
                if source.status() == Some(reqwest::StatusCode::NOT_FOUND) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The simulated clock and the kuard pool.
    pub async fn sim_state(&self) -> Result<SimState, DemoError> {
        let url = format!("{}/_sim/state", self.avi);
        let state = self
            .json("avi-sim state", self.http.get(&url), &url)
            .await?;
        let bad = |detail: &str| DemoError::Answer {
            what: "avi-sim state",
            url: url.clone(),
            detail: detail.to_owned(),
        };
        let pool = state["pools"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == POOL))
            .ok_or_else(|| bad("no kuard pool"))?;
        Ok(SimState {
            elapsed: state
                .pointer("/clock/elapsedSeconds")
                .and_then(Value::as_f64)
                .ok_or_else(|| bad("no clock.elapsedSeconds"))?,
            users: pool["users"].as_f64().ok_or_else(|| bad("no pool users"))?,
            members: pool["servers"].as_array().map_or(0, |s| s.len() as u32),
            bucket: state
                .pointer("/controller/metricsPeriodSeconds")
                .and_then(Value::as_f64)
                .unwrap_or(300.0),
        })
    }

    /// Starts (or stops) avi-sim's simulated clock.
    pub async fn set_clock_paused(&self, paused: bool) -> Result<(), DemoError> {
        let url = format!("{}/_sim/clock", self.avi);
        self.send(
            "avi-sim clock",
            self.http.post(&url).json(&json!({ "paused": paused })),
            &url,
        )
        .await
        .map(drop)
    }

    /// Sets the kuard pool's member count, as AKO does when pods become ready or go.
    pub async fn set_pool_members(&self, count: u32) -> Result<(), DemoError> {
        let url = format!("{}/_sim/pools/{POOL}/servers", self.avi);
        self.send(
            "avi-sim pool members",
            self.http.put(&url).json(&json!({ "count": count })),
            &url,
        )
        .await
        .map(drop)
    }

    /// The pool's total open connections as Avi reports them now (the last completed bucket,
    /// summed over the members' series), read from the Prometheus endpoint of node 1.
    pub async fn avi_pool_total(&self) -> Result<f64, DemoError> {
        // The pool name and the metric id need no escaping in a query (letters, digits, `-`,
        // `.`, `_`).
        let url = format!(
            "{}/api/analytics/prometheus-metrics/pool?entity_name={POOL}&metric_id={METRIC}",
            self.avi_reader
        );
        let request = self
            .http
            .get(&url)
            .basic_auth("admin", Some(&self.password));
        let text = self
            .send("Avi pool metric", request, &url)
            .await?
            .text()
            .await
            .map_err(|source| DemoError::Http {
                what: "Avi pool metric",
                url: url.clone(),
                source,
            })?;
        parse_prometheus_sum(&text).ok_or_else(|| DemoError::Answer {
            what: "Avi pool metric",
            url,
            detail: format!("not a sample line in {text:?}"),
        })
    }

    /// avi-sim's request counters of node 0: every request the operator made.
    pub async fn operator_avi_requests(&self) -> Result<Value, DemoError> {
        let url = format!("{}/_sim/counters", self.avi);
        let counters = self
            .json("avi-sim counters", self.http.get(&url), &url)
            .await?;
        Ok(counters.pointer("/nodes/0").cloned().unwrap_or(json!({})))
    }

    /// The kuard Deployment's replicas (`None` before it exists).
    pub async fn deployment(&self) -> Result<Option<Replicas>, DemoError> {
        let url = format!(
            "{}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}",
            self.kube
        );
        Ok(self
            .get_optional("the Deployment", &url)
            .await?
            .map(|d| Replicas {
                current: d
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
                // The API server omits zero counts.
                ready: d
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            }))
    }

    /// The AviAutoscaler's status.
    pub async fn autoscaler(&self) -> Result<AutoscalerView, DemoError> {
        let url = format!(
            "{}/apis/autoscaling.avi.dev/v1alpha1/namespaces/{NAMESPACE}/aviautoscalers/{AUTOSCALER}",
            self.kube
        );
        let Some(aas) = self.get_optional("the AviAutoscaler", &url).await? else {
            return Ok(AutoscalerView::default());
        };
        let ready = aas
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or_default().to_owned(),
                    c["reason"].as_str().unwrap_or_default().to_owned(),
                )
            });
        Ok(AutoscalerView {
            desired: aas
                .pointer("/status/desiredReplicas")
                .and_then(Value::as_i64),
            read: aas
                .pointer("/status/currentMetrics/0/value")
                .and_then(Value::as_f64),
            ready,
        })
    }

    /// The newest Event about the AviAutoscaler (events.k8s.io/v1, as the operator writes
    /// them).
    pub async fn last_event(&self) -> Result<Option<EventView>, DemoError> {
        let url = format!(
            "{}/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events",
            self.kube
        );
        let list = self.json("Events", self.http.get(&url), &url).await?;
        let newest = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e.pointer("/regarding/kind") == Some(&json!("AviAutoscaler"))
                    && e.pointer("/regarding/name") == Some(&json!(AUTOSCALER))
            })
            .map(|e| {
                let text = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default();
                let time = [text("/series/lastObservedTime"), text("/eventTime")]
                    .into_iter()
                    .find(|t| !t.is_empty())
                    .unwrap_or_else(|| text("/metadata/creationTimestamp"))
                    .to_owned();
                EventView {
                    type_: text("/type").to_owned(),
                    reason: text("/reason").to_owned(),
                    note: text("/note").to_owned(),
                    count: e
                        .pointer("/series/count")
                        .and_then(Value::as_i64)
                        .unwrap_or(1),
                    time,
                }
            })
            // RFC 3339 times in UTC, all with the same precision, sort as text.
            .max_by(|a, b| a.time.cmp(&b.time));
        Ok(newest)
    }

    /// The replica counts the operator wrote through `/scale`, in order (kube-standin's
    /// request log).
    pub async fn scale_writes(&self) -> Result<Vec<i64>, DemoError> {
        let url = format!("{}/_testkit/requests", self.kube);
        let log = self
            .json("kube-standin request log", self.http.get(&url), &url)
            .await?;
        let records: Vec<testkit::RequestRecord> =
            serde_json::from_value(log).map_err(|e| DemoError::Answer {
                what: "kube-standin request log",
                url: url.clone(),
                detail: e.to_string(),
            })?;
        Ok(records
            .iter()
            .filter(|r| r.client.as_deref() == Some(OPERATOR_CLIENT))
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/scale") && r.status < 300)
            .filter_map(|r| r.body_json()?.pointer("/spec/replicas")?.as_i64())
            .collect())
    }
}

/// The sum of the sample values of a Prometheus text answer; `None` when it has no samples or
/// a sample line does not parse.
fn parse_prometheus_sum(text: &str) -> Option<f64> {
    let mut sum = 0.0;
    let mut samples = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let value: f64 = line.rsplit_once(' ')?.1.parse().ok()?;
        sum += value;
        samples += 1;
    }
    (samples > 0).then_some(sum)
}

#[cfg(test)]
mod tests {
    use super::parse_prometheus_sum;

    #[test]
    fn prometheus_member_series_add_up() {
        let text = "# Successfully gathered 2 metrics for pool\n\
            avi_l4_server_avg_open_conns{uuid=\"p\", type=\"pool\", tenant=\"admin\", server=\"10.244.1.10:8080\", name=\"k\"} 250.0\n\
            avi_l4_server_avg_open_conns{uuid=\"p\", type=\"pool\", tenant=\"admin\", server=\"10.244.1.11:8080\", name=\"k\"} 416.6666666666667\n";
        let sum = parse_prometheus_sum(text).unwrap();
        assert!((sum - 666.6666666666667).abs() < 1e-9, "{sum}");
        assert_eq!(
            parse_prometheus_sum("# Successfully gathered 0 metrics for pool\n"),
            None
        );
        assert_eq!(parse_prometheus_sum("x{a=\"b\"} nope\n"), None);
    }
}
