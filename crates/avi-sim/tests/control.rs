//! Faults, cluster nodes, request counters and the admin endpoints, over HTTPS with a real
//! client.

mod support;

use std::time::{Duration, Instant};

use avi_sim::{FaultKind, FaultSpec, Scenario, SimConfig};
use serde_json::{Value, json};
use support::{client_for, get_basic, login, start, start_with};

const POOL_METRICS: &str =
    "/api/analytics/prometheus-metrics/pool?metric_id=l4_server.avg_open_conns";

fn seed() -> Scenario {
    Scenario::builtin("pw")
}

#[tokio::test]
async fn error_fault_answers_the_next_n_matching_requests() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    h.add_fault(FaultSpec::error(503, 2).on_path("/api/analytics/"))
        .await
        .unwrap();
    let metrics = format!("{}{POOL_METRICS}", sim.url());
    let inventory = format!("{}/api/pool", sim.url());
    assert_eq!(
        get_basic(&client, &inventory, "pw").await.0,
        200,
        "other paths unaffected"
    );
    for _ in 0..2 {
        let (status, body) = get_basic(&client, &metrics, "pw").await;
        assert_eq!(
            (status, body.as_str()),
            (503, r#"{"error":"Service Unavailable"}"#)
        );
    }
    assert_eq!(get_basic(&client, &metrics, "pw").await.0, 200);
    assert!(h.faults().is_empty(), "used up");
    let counters = h.counters();
    let endpoint = "GET /api/analytics/prometheus-metrics/pool";
    assert_eq!(counters.requests(endpoint), 3);
    assert_eq!(counters.responses(endpoint, 503), 2);
    assert_eq!(counters.responses(endpoint, 200), 1);
    assert_eq!(counters.requests("GET /api/pool"), 1);

    let mut custom = FaultSpec::error(500, 1);
    custom.message = Some("boom".into());
    h.add_fault(custom).await.unwrap();
    let (status, body) = get_basic(&client, &metrics, "pw").await;
    assert_eq!((status, body.as_str()), (500, r#"{"error":"boom"}"#));
}

#[tokio::test]
async fn error_fault_for_a_stretch_of_simulated_time() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    let mut leader_loss = FaultSpec::error(503, 1);
    leader_loss.count = None;
    leader_loss.at = Some(60.0);
    leader_loss.duration_seconds = Some(150.0);
    h.add_fault(leader_loss).await.unwrap();
    let url = format!("{}{POOL_METRICS}", sim.url());
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
    h.advance(60.0).await.unwrap();
    for _ in 0..3 {
        assert_eq!(get_basic(&client, &url, "pw").await.0, 503);
    }
    h.advance(150.0).await.unwrap();
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
}

#[tokio::test]
async fn latency_fault_delays_the_answer() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    let url = format!("{}{POOL_METRICS}", sim.url());
    h.add_fault(FaultSpec::new(FaultKind::Latency).delay_ms(300))
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    h.add_fault(FaultSpec::new(FaultKind::Latency).delay_ms(60_000))
        .await
        .unwrap();
    let impatient = client_for(sim.ca_pem(), Duration::from_millis(200));
    let err = impatient
        .get(&url)
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn hang_fault_never_answers() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    let url = format!("{}{POOL_METRICS}", sim.url());
    h.add_fault(FaultSpec::new(FaultKind::Hang)).await.unwrap();
    let impatient = client_for(sim.ca_pem(), Duration::from_millis(200));
    let err = impatient
        .get(&url)
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // A short hang ends with the connection closed and no response at all.
    h.add_fault(FaultSpec::new(FaultKind::Hang).delay_ms(100))
        .await
        .unwrap();
    let err = client
        .get(&url)
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    let endpoint = "GET /api/analytics/prometheus-metrics/pool";
    support::eventually("the hang to be counted as aborted", || async {
        h.counters()
            .endpoints
            .get(endpoint)
            .is_some_and(|c| c.aborted >= 1)
    })
    .await;
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
}

#[tokio::test]
async fn malformed_truncated_and_reset_bodies() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    let url = format!("{}/api/analytics/prometheus-metrics/pool", sim.url());
    let (_, whole) = get_basic(&client, &url, "pw").await;

    h.add_fault(FaultSpec::new(FaultKind::Malformed))
        .await
        .unwrap();
    let (status, broken) = get_basic(&client, &url, "pw").await;
    assert_eq!(status, 200);
    assert_eq!(
        broken.lines().next(),
        whole.lines().next(),
        "the header line survives"
    );
    assert!(broken.lines().skip(1).all(|l| !l.contains('}')), "{broken}");

    h.add_fault(FaultSpec::new(FaultKind::Malformed))
        .await
        .unwrap();
    let (status, body) = get_basic(&client, &format!("{}/api/pool", sim.url()), "pw").await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    h.add_fault(FaultSpec::new(FaultKind::Truncated))
        .await
        .unwrap();
    let resp = client
        .get(&url)
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.content_length(), Some((whole.len() / 2) as u64));
    let cut = resp.text().await.unwrap();
    assert_eq!(cut, whole[..whole.len() / 2]);

    h.add_fault(FaultSpec::new(FaultKind::Reset)).await.unwrap();
    let resp = client
        .get(&url)
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.content_length(),
        Some(whole.len() as u64),
        "the full length is announced"
    );
    assert!(resp.text().await.is_err(), "the body breaks off");
    assert_eq!(get_basic(&client, &url, "pw").await.1, whole);
}

#[tokio::test]
async fn empty_fault_gives_empty_results() {
    let (sim, client) = start(seed()).await;
    let h = sim.handle();
    let mut spec = FaultSpec::new(FaultKind::Empty);
    spec.count = Some(3);
    h.add_fault(spec).await.unwrap();
    let (_, text) = get_basic(&client, &format!("{}{POOL_METRICS}", sim.url()), "pw").await;
    assert_eq!(text, "# Successfully gathered 0 metrics for pool\n");
    let (_, body) = get_basic(&client, &format!("{}/api/pool", sim.url()), "pw").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"count": 0, "results": []})
    );
    let uuid = h.state()["pools"][0]["uuid"].as_str().unwrap().to_string();
    let (_, body) = get_basic(
        &client,
        &format!("{}/api/analytics/metrics/pool/{uuid}/?metric_id=l4_server.avg_open_conns&pad_missing_data=false", sim.url()),
        "pw",
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["series"][0].get("data").is_none(), "{v}");
}

#[tokio::test]
async fn session_expiry_fault_ends_every_session() {
    let (sim, client) = start(seed()).await;
    let s = login(&client, &sim.url(), "admin", "pw").await;
    let get = || {
        client
            .get(format!("{}/api/pool", sim.url()))
            .header("cookie", &s.cookie)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    let mut at = FaultSpec::new(FaultKind::ExpireSessions);
    at.at = Some(30.0);
    sim.handle().add_fault(at).await.unwrap();
    assert_eq!(get().await.unwrap().status(), 200, "not due yet");
    sim.handle().advance(30.0).await.unwrap();
    assert_eq!(get().await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_node_down_refuses_connections_and_comes_back() {
    let (sim, client) = start_with(SimConfig::new(seed()).nodes(2).paused()).await;
    let urls = sim.urls();
    let h = sim.handle();
    let on = |i: usize| format!("{}/api/pool", urls[i]);
    assert_eq!(
        get_basic(&client, &on(1), "pw").await.0,
        200,
        "opens a keep-alive connection"
    );

    // Through the admin endpoint of the other node.
    let resp = client
        .post(format!("{}/_sim/nodes/1/down", urls[0]))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!h.is_node_up(1));
    // Fresh clients: a pooled connection to the node was cut and must not be reused.
    let fresh = || client_for(sim.ca_pem(), support::TIMEOUT);
    let err = fresh()
        .get(on(1))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(get_basic(&fresh(), &on(0), "pw").await.0, 200);

    h.set_node_up(1, true).await.unwrap();
    assert_eq!(get_basic(&fresh(), &on(1), "pw").await.0, 200);

    // A scheduled outage with automatic recovery, on the simulated clock.
    let mut outage = FaultSpec::new(FaultKind::NodeDown).on_node(0);
    outage.at = Some(100.0);
    outage.duration_seconds = Some(180.0);
    h.add_fault(outage).await.unwrap();
    h.advance(100.0).await.unwrap();
    assert!(!h.is_node_up(0));
    assert!(fresh().get(on(0)).send().await.unwrap_err().is_connect());
    h.advance(180.0).await.unwrap();
    assert!(h.is_node_up(0));
    assert_eq!(get_basic(&fresh(), &on(0), "pw").await.0, 200);
}

#[tokio::test]
async fn faults_can_target_one_node() {
    let (sim, client) = start_with(SimConfig::new(seed()).nodes(2).paused()).await;
    let urls = sim.urls();
    sim.handle()
        .add_fault(FaultSpec::error(502, 5).on_node(1))
        .await
        .unwrap();
    assert_eq!(
        get_basic(&client, &format!("{}/api/pool", urls[0]), "pw")
            .await
            .0,
        200
    );
    assert_eq!(
        get_basic(&client, &format!("{}/api/pool", urls[1]), "pw")
            .await
            .0,
        502
    );
    let c = sim.handle().counters();
    assert_eq!(c.node_requests(0, "GET /api/pool"), 1);
    assert_eq!(c.node_requests(1, "GET /api/pool"), 1);
}

#[tokio::test]
async fn scenario_faults_start_with_the_simulator() {
    let mut scenario = seed();
    let mut fault = FaultSpec::error(503, 1);
    fault.at = Some(300.0);
    scenario.faults.push(fault);
    let (sim, client) = start(scenario).await;
    let url = format!("{}/api/pool", sim.url());
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
    sim.handle().advance(300.0).await.unwrap();
    assert_eq!(get_basic(&client, &url, "pw").await.0, 503);
    assert_eq!(get_basic(&client, &url, "pw").await.0, 200);
}

// ---------- admin endpoints ----------

async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Value,
) -> (u16, Value) {
    let resp = client
        .request(method, url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[tokio::test]
async fn admin_endpoints_reach_everything_the_library_can() {
    use reqwest::Method;
    let (sim, client) = start(seed()).await;
    let base = format!("{}/_sim", sim.url());
    let pool = urlencode(avi_sim::SEED_POOL);

    let (status, index) = admin(&client, Method::GET, &format!("{base}/"), json!({})).await;
    assert_eq!(status, 200);
    assert!(index["endpoints"].as_array().unwrap().len() > 15);

    let (_, clock) = admin(
        &client,
        Method::POST,
        &format!("{base}/clock"),
        json!({"advanceSeconds": 600}),
    )
    .await;
    assert_eq!(clock["elapsedSeconds"], 600.0);
    let (status, err) = admin(
        &client,
        Method::POST,
        &format!("{base}/clock"),
        json!({"elapsedSeconds": 10}),
    )
    .await;
    assert_eq!(status, 400, "{err}");

    let (_, p) = admin(
        &client,
        Method::PUT,
        &format!("{base}/pools/{pool}/servers"),
        json!({"count": 3}),
    )
    .await;
    assert_eq!(p["servers"].as_array().unwrap().len(), 3);
    let (_, p) = admin(
        &client,
        Method::PUT,
        &format!("{base}/pools/{pool}/users"),
        json!({"users": 300}),
    )
    .await;
    assert_eq!(p["users"], 300.0);
    let (_, p) = admin(
        &client,
        Method::PUT,
        &format!("{base}/pools/{pool}/load"),
        json!({"series": [{"at": 0, "users": 50}]}),
    )
    .await;
    assert_eq!(p["users"], 50.0);
    let (status, err) = admin(
        &client,
        Method::PUT,
        &format!("{base}/pools/{pool}/load"),
        json!({"maxUsers": 5, "connsPerUser": 2}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("load.connsPerUser"),
        "{err}"
    );
    let (status, _) = admin(
        &client,
        Method::GET,
        &format!("{base}/pools/no-such-pool"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, created) = admin(
        &client,
        Method::POST,
        &format!("{base}/faults"),
        json!({"kind": "error", "status": 500, "count": 4}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, list) = admin(&client, Method::GET, &format!("{base}/faults"), json!({})).await;
    assert_eq!(list[0]["remaining"], 4);
    let id = created["id"].as_u64().unwrap();
    let (status, _) = admin(
        &client,
        Method::DELETE,
        &format!("{base}/faults/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = admin(
        &client,
        Method::POST,
        &format!("{base}/faults"),
        json!({"kind": "latency"}),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str().unwrap().split(':').next()),
        (400, Some("delayMs"))
    );

    let (_, users) = admin(
        &client,
        Method::PUT,
        &format!("{base}/users/ops"),
        json!({"password": "ops-pw"}),
    )
    .await;
    assert_eq!(users, json!(["admin", "ops"]));
    assert_eq!(
        get_basic_as(&client, &sim.url(), "ops", "ops-pw").await,
        200
    );
    let (status, _) = admin(
        &client,
        Method::DELETE,
        &format!("{base}/users/ops"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get_basic_as(&client, &sim.url(), "ops", "ops-pw").await,
        401
    );

    let (_, settings) = admin(
        &client,
        Method::PATCH,
        &format!("{base}/controller"),
        json!({"basicAuth": false, "behaviour": {"unknownSelection": "error"}}),
    )
    .await;
    assert_eq!(settings["basicAuth"], false);
    assert_eq!(settings["behaviour"]["unknownSelection"], "error");
    assert_eq!(
        settings["behaviour"]["members"], "bucket",
        "other choices kept as they were"
    );
    assert_eq!(get_basic_as(&client, &sim.url(), "admin", "pw").await, 401);

    let s = login(&client, &sim.url(), "admin", "pw").await;
    let (_, expired) = admin(
        &client,
        Method::POST,
        &format!("{base}/sessions/expire"),
        json!({}),
    )
    .await;
    assert_eq!(expired["expired"], 1);
    let resp = client
        .get(format!("{}/api/pool", sim.url()))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let (_, counters) = admin(&client, Method::GET, &format!("{base}/counters"), json!({})).await;
    assert_eq!(counters["endpoints"]["GET /api/pool"]["requests"], 4);
    assert_eq!(counters["endpoints"]["GET /api/pool"]["byStatus"]["401"], 3);
    assert_eq!(counters["endpoints"]["POST /login"]["requests"], 1);
    assert!(
        counters["endpoints"].get("GET /_sim/counters").is_none(),
        "admin calls are not counted"
    );
    let (_, counters) = admin(
        &client,
        Method::DELETE,
        &format!("{base}/counters"),
        json!({}),
    )
    .await;
    assert_eq!(counters["endpoints"], json!({}));

    let (_, nodes) = admin(&client, Method::GET, &format!("{base}/nodes"), json!({})).await;
    assert_eq!(nodes[0]["leader"], true);
    let (_, state) = admin(&client, Method::GET, &format!("{base}/state"), json!({})).await;
    assert_eq!(state["pools"][0]["name"], avi_sim::SEED_POOL);
    assert!(
        !state.to_string().contains("\"pw\""),
        "no password in the state"
    );
    let (status, _) = admin(&client, Method::GET, &format!("{base}/nope"), json!({})).await;
    assert_eq!(status, 404);
}

async fn get_basic_as(client: &reqwest::Client, base: &str, user: &str, password: &str) -> u16 {
    client
        .get(format!("{base}/api/pool"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
