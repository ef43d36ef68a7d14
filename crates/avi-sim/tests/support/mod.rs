//! Shared helpers for the integration tests: a real HTTPS client that trusts the simulator's
//! CA, cookie handling, and the workspace's Python.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};

/// Generous: the machine is shared and loaded.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A client that trusts `ca_pem` only.
pub fn client_for(ca_pem: &str, timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM")])
        .timeout(timeout)
        .build()
        .expect("client")
}

/// A started simulator (paused clock) and a client for it.
pub async fn start(scenario: Scenario) -> (RunningSim, reqwest::Client) {
    start_with(SimConfig::new(scenario).paused()).await
}

/// A started simulator and a client for it.
pub async fn start_with(config: SimConfig) -> (RunningSim, reqwest::Client) {
    let sim = Sim::start(config).await.expect("simulator starts");
    let client = client_for(sim.ca_pem(), TIMEOUT);
    (sim, client)
}

/// The value of cookie `name` among the response's `Set-Cookie` headers.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k.trim() == name).then(|| v.to_string())
        })
}

/// A logged-in session: the cookie header to send and the CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Logs in with a form body.
pub async fn login(client: &reqwest::Client, url: &str, user: &str, password: &str) -> Session {
    let resp = client
        .post(format!("{url}/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("login request");
    assert_eq!(resp.status(), 200, "login as {user}");
    let sid = set_cookie(&resp, "avi-sessionid").expect("avi-sessionid cookie");
    let csrf = set_cookie(&resp, "csrftoken").expect("csrftoken cookie");
    Session {
        cookie: format!("avi-sessionid={sid}; sessionid={sid}; csrftoken={csrf}"),
        csrf,
    }
}

/// GET with basic auth admin/`password`, returning status and body.
pub async fn get_basic(client: &reqwest::Client, url: &str, password: &str) -> (u16, String) {
    let resp = client
        .get(url)
        .basic_auth("admin", Some(password))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The workspace's Python (from `make venv`), or `AVI_AUTOSCALER_PYTHON`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AVI_AUTOSCALER_PYTHON") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run make venv (or set AVI_AUTOSCALER_PYTHON)",
        p.display()
    );
    p
}

/// Waits for `check` to hold, polling, up to [`TIMEOUT`]; panics with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
