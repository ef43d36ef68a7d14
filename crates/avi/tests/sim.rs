//! The client against a running avi-sim over HTTPS: both auth modes, session expiry, wrong
//! credentials, failover, every injected fault, unknown entities and metrics, tenants,
//! `X-Avi-Version`, TLS trust, and batching proven with the simulator's request counters.
//!
//! Each test starts its own simulator on 127.0.0.1 with its clock paused, moved forward by
//! hand so that Avi's 300 s buckets are closed and values are fixed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use api::{Aggregation, AuthMode, EntityType};
use avi::{
    ConnectionConfig, Credentials, EntitySelector, Error, MetricQuery, Poller, PollerSettings,
    RequestEvent, RequestKind, Sample, TlsConfig,
};
use avi_sim::{FaultKind, FaultSpec, RunningSim, Scenario, Sim, SimConfig};
use serde_json::json;

const PASSWORD: &str = "pw-that-must-not-leak";
const OPEN: &str = "l4_server.avg_open_conns";
const METRICS: &str = "GET /api/analytics/prometheus-metrics/pool";
const LOGIN: &str = "POST /login";

/// A controller with pools `web` (2 members, 1000 users), `api` (1 member, 300 users),
/// `alpha-web` in tenant `alpha` and `rt` (realtime metrics enabled), virtual service `vs-web`
/// in front of `web` and `api`, plus `pool-<i>` (i users) for i < `extra`, 1 member each.
fn scenario(extra: usize) -> Scenario {
    let mut pools = vec![
        json!({"name": "web", "servers": {"count": 2}, "load": {"maxUsers": 1000.0}}),
        json!({"name": "api", "servers": {"count": 1}, "load": {"maxUsers": 300.0}}),
        json!({"name": "alpha-web", "tenant": "alpha", "load": {"maxUsers": 50.0}}),
        json!({"name": "rt", "realtime": true, "load": {"maxUsers": 20.0}}),
    ];
    pools.extend(
        (0..extra).map(|i| json!({"name": format!("pool-{i}"), "load": {"maxUsers": i as f64}})),
    );
    serde_json::from_value(json!({
        "users": [{"username": "admin", "password": PASSWORD}],
        "tenants": [{"name": "alpha"}],
        "pools": pools,
        "virtualServices": [{"name": "vs-web", "pools": ["web", "api"]}],
    }))
    .expect("a valid scenario")
}

async fn start(scenario: Scenario, nodes: usize) -> RunningSim {
    let sim = Sim::start(SimConfig::new(scenario).nodes(nodes).paused())
        .await
        .expect("avi-sim starts");
    // Two closed 300 s buckets, so every value is settled.
    sim.handle().advance(600.0).await.expect("clock moves");
    sim
}

fn conn(sim: &RunningSim, auth_mode: AuthMode) -> ConnectionConfig {
    ConnectionConfig {
        endpoints: sim.urls().iter().map(|u| u.parse().unwrap()).collect(),
        auth_mode,
        credentials: Credentials::new("admin", PASSWORD),
        tenant: "admin".into(),
        api_version: Some("20.1.1".into()),
        tls: TlsConfig {
            insecure_skip_verify: false,
            extra_ca_pem: Some(sim.ca_pem().as_bytes().to_vec()),
        },
        timeout: Duration::from_secs(5),
        pinned_addresses: Default::default(),
    }
}

/// Every fetch is its own tick (no cache, no fetching ahead), retries are quick.
fn settings() -> PollerSettings {
    PollerSettings {
        cache_ttl: Duration::ZERO,
        interest_ttl: Duration::ZERO,
        login_retry_after: Duration::ZERO,
        coalesce_window: Duration::from_millis(20),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..PollerSettings::default()
    }
}

fn pool(name: &str) -> MetricQuery {
    MetricQuery {
        entity_type: EntityType::Pool,
        entity: EntitySelector::Name(name.into()),
        metric_id: OPEN.into(),
        aggregation: None,
        realtime: false,
    }
}

async fn one(poller: &Poller, conn: &ConnectionConfig, q: MetricQuery) -> Result<Sample, Error> {
    poller.fetch(conn, &[q]).await.remove(0)
}

fn no_secret(e: &Error) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PASSWORD), "credential in an error: {text}");
}

#[tokio::test]
async fn session_auth_logs_in_once_and_reuses_the_session() {
    let sim = start(scenario(0), 1).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let poller = Poller::new(PollerSettings {
        observer: Some(Arc::new(move |e: &RequestEvent<'_>| {
            seen.lock().unwrap().push((e.kind, e.outcome, e.status));
        })),
        ..settings()
    });
    let c = conn(&sim, AuthMode::Session);
    let mut avg = pool("web");
    avg.aggregation = Some(Aggregation::Average);
    let mut max = pool("web");
    max.aggregation = Some(Aggregation::Max);
    for _ in 0..3 {
        let r = poller
            .fetch(&c, &[pool("web"), avg.clone(), max.clone()])
            .await;
        let sum = r[0].as_ref().expect("a value");
        let avg = r[1].as_ref().expect("a value");
        let max = r[2].as_ref().expect("a value");
        assert_eq!(sum.series, 2);
        assert!((sum.value - 1000.0).abs() < 1e-6, "{sum:?}");
        assert!((avg.value * 2.0 - sum.value).abs() < 1e-6, "{avg:?}");
        assert!(max.value >= avg.value);
    }
    let counters = sim.handle().counters();
    assert_eq!(counters.requests(LOGIN), 1);
    assert_eq!(counters.requests(METRICS), 3);
    let stats = poller.stats();
    assert_eq!(stats.requests(RequestKind::Login, "ok"), 1);
    assert_eq!(stats.requests(RequestKind::Metrics, "ok"), 3);
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0], (RequestKind::Login, "ok", Some(200)));
    assert!(
        events[1..]
            .iter()
            .all(|e| *e == (RequestKind::Metrics, "ok", Some(200)))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_probe_reads_the_version_over_the_session_the_metric_reads_share() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    let info = poller.probe(&c).await.expect("the probe succeeds");
    assert_eq!(info.endpoint, sim.urls()[0].trim_end_matches('/'));
    assert!(!info.version.is_empty(), "{info:?}");
    one(&poller, &c, pool("web")).await.expect("a value");
    let counters = sim.handle().counters();
    assert_eq!(counters.requests("GET /api/cluster/version"), 1);
    assert_eq!(
        counters.requests(LOGIN),
        1,
        "one session for the probe and the reads"
    );
    assert_eq!(poller.stats().requests(RequestKind::Version, "ok"), 1);

    for mode in [AuthMode::Session, AuthMode::Basic] {
        let mut wrong = conn(&sim, mode);
        wrong.credentials = Credentials::new("admin", "wrong-password");
        let e = poller.probe(&wrong).await.unwrap_err();
        assert!(e.is_unauthorized(), "{mode:?}: {e}");
        assert!(!format!("{e} {e:?}").contains("wrong-password"));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_inventory_lists_every_page_of_the_tenant_with_realtime_settings() {
    // 4 pools in tenant admin plus 250 more: two pages of 200.
    let sim = start(scenario(250), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    let pools = poller.inventory(&c, EntityType::Pool).await.expect("pools");
    assert_eq!(pools.len(), 253, "alpha-web belongs to another tenant");
    assert!(!pools.iter().any(|p| p.name == "alpha-web"));
    let rt = pools.iter().find(|p| p.name == "rt").expect("rt");
    assert_eq!(rt.realtime, Some(true));
    assert!(rt.uuid.starts_with("pool-"), "{rt:?}");
    let web = pools.iter().find(|p| p.name == "web").expect("web");
    assert_eq!(web.realtime, Some(false));
    assert_eq!(sim.handle().counters().requests("GET /api/pool"), 2);

    let vss = poller
        .inventory(&c, EntityType::VirtualService)
        .await
        .expect("virtual services");
    assert_eq!(vss.len(), 1);
    assert_eq!(vss[0].realtime, Some(false));

    let mut alpha = c.clone();
    alpha.tenant = "alpha".into();
    let pools = poller
        .inventory(&alpha, EntityType::Pool)
        .await
        .expect("alpha");
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha-web"]);

    let catalog = poller.metric_catalog(&c).await.expect("the catalog");
    assert!(
        catalog[OPEN].iter().any(|t| t == "pool"),
        "{:?}",
        catalog[OPEN]
    );
    assert!(
        !catalog["l7_client.avg_complete_responses"]
            .iter()
            .any(|t| t == "pool")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn basic_auth_sends_credentials_on_every_request_and_never_logs_in() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Basic);
    for _ in 0..2 {
        let s = one(&poller, &c, pool("api")).await.expect("a value");
        assert!((s.value - 300.0).abs() < 1e-6, "{s:?}");
    }
    let counters = sim.handle().counters();
    assert_eq!(counters.requests(LOGIN), 0);
    assert_eq!(counters.requests(METRICS), 2);
    // Switched off on the controller (its default): an auth failure, not retried.
    sim.handle().set_basic_auth(false);
    let e = one(&poller, &c, pool("api")).await.unwrap_err();
    assert_eq!(e.reason(), api::Reason::AviAuthFailed, "{e}");
    no_secret(&e);
    assert_eq!(sim.handle().counters().requests(METRICS), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_session_is_renewed_once() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    one(&poller, &c, pool("web")).await.expect("a value");
    assert!(sim.handle().expire_sessions() >= 1);
    one(&poller, &c, pool("web"))
        .await
        .expect("a value after logging in again");
    let counters = sim.handle().counters();
    assert_eq!(counters.requests(LOGIN), 2);
    // The first, a refused one with the expired session, and the retry.
    assert_eq!(counters.requests(METRICS), 3);
    assert_eq!(counters.responses(METRICS, 401), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_costs_one_login_attempt_per_poll() {
    let sim = start(scenario(30), 1).await;
    let poller = Poller::new(PollerSettings {
        max_entities_per_request: 10,
        // Generous, so all 30 calls of a poll join one batch even on a loaded machine.
        coalesce_window: Duration::from_millis(500),
        ..settings()
    });
    let mut c = conn(&sim, AuthMode::Session);
    c.credentials = Credentials::new("admin", "wrong-password");
    for poll in 1..=2u64 {
        // 30 autoscalers reconciling at once: 3 batched requests would need a session.
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let (poller, c) = (poller.clone(), c.clone());
                tokio::spawn(async move { one(&poller, &c, pool(&format!("pool-{i}"))).await })
            })
            .collect();
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(e.is_unauthorized(), "{e}");
            assert_eq!(e.reason(), api::Reason::AviAuthFailed);
            assert!(!format!("{e} {e:?}").contains("wrong-password"));
        }
        let counters = sim.handle().counters();
        assert_eq!(counters.requests(LOGIN), poll, "poll {poll}");
        assert_eq!(counters.requests(METRICS), 0);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn fails_over_to_the_second_node_and_back() {
    let sim = start(scenario(0), 2).await;
    let h = sim.handle();
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    h.set_node_up(0, false).await.unwrap();
    one(&poller, &c, pool("web")).await.expect("node 1 answers");
    assert_eq!(h.counters().node_requests(1, METRICS), 1);
    // Node 0 is back, but node 1 is remembered as healthy: no flapping back.
    h.set_node_up(0, true).await.unwrap();
    one(&poller, &c, pool("web")).await.expect("node 1 answers");
    assert_eq!(h.counters().node_requests(1, METRICS), 2);
    assert_eq!(h.counters().node_requests(0, METRICS), 0);
    // Node 1 goes down: back to node 0, with a login there.
    h.set_node_up(1, false).await.unwrap();
    one(&poller, &c, pool("web")).await.expect("node 0 answers");
    assert_eq!(h.counters().node_requests(0, METRICS), 1);
    assert_eq!(h.counters().node_requests(0, LOGIN), 1);
    // Both down: unreachable, with the reason the operator shows.
    h.set_node_up(0, false).await.unwrap();
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert_eq!(e.reason(), api::Reason::AviUnreachable);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_5xx_on_one_node_moves_to_the_next() {
    let sim = start(scenario(0), 2).await;
    let h = sim.handle();
    h.add_fault(FaultSpec::error(500, 100).on_node(0).on_path("/api/"))
        .await
        .unwrap();
    let poller = Poller::new(settings());
    let s = one(&poller, &conn(&sim, AuthMode::Basic), pool("web")).await;
    assert!(s.is_ok(), "{s:?}");
    assert_eq!(h.counters().node_requests(0, METRICS), 1);
    assert_eq!(h.counters().node_requests(1, METRICS), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_passing_5xx_is_retried_and_a_lasting_one_is_a_server_error() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Basic);
    h.add_fault(FaultSpec::error(503, 1)).await.unwrap();
    one(&poller, &c, pool("web"))
        .await
        .expect("the retry succeeds");
    assert_eq!(h.counters().requests(METRICS), 2);
    h.add_fault(FaultSpec::error(503, 100)).await.unwrap();
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_server_error(), "{e}");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503));
    // One request and `retries` (2) more, then it gives up.
    assert_eq!(h.counters().requests(METRICS), 2 + 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_below_the_timeout_is_fine_a_hang_is_a_timeout() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    let poller = Poller::new(PollerSettings {
        retries: 0,
        ..settings()
    });
    let mut c = conn(&sim, AuthMode::Basic);
    c.timeout = Duration::from_secs(2);
    h.add_fault(FaultSpec::new(FaultKind::Latency).delay_ms(200))
        .await
        .unwrap();
    one(&poller, &c, pool("web")).await.expect("a slow answer");
    h.add_fault(FaultSpec::new(FaultKind::Hang)).await.unwrap();
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.reason(), api::Reason::AviUnreachable);
    sim.shutdown().await;
}

#[tokio::test]
async fn broken_bodies_are_bad_responses_or_retried() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    let poller = Poller::new(PollerSettings {
        retries: 0,
        ..settings()
    });
    let c = conn(&sim, AuthMode::Basic);
    for kind in [FaultKind::Malformed, FaultKind::Truncated] {
        h.add_fault(FaultSpec::new(kind).on_path("/api/analytics/"))
            .await
            .unwrap();
        let e = one(&poller, &c, pool("web")).await.unwrap_err();
        assert!(e.is_bad_response(), "{kind:?}: {e}");
        assert_eq!(e.reason(), api::Reason::FailedGetAviMetric);
    }
    // A connection cut in the middle of the body is worth another try.
    let poller = Poller::new(settings());
    h.add_fault(FaultSpec::new(FaultKind::Reset).on_path("/api/analytics/"))
        .await
        .unwrap();
    one(&poller, &c, pool("web"))
        .await
        .expect("the retry succeeds");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_huge_body_is_dropped_at_the_limit_while_it_streams() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    let poller = Poller::new(PollerSettings {
        retries: 0,
        max_response_bytes: 1 << 20,
        ..settings()
    });
    let c = conn(&sim, AuthMode::Basic);
    // Padding under the limit is valid text: the value reads as usual.
    h.add_fault(
        FaultSpec::new(FaultKind::HugeBody)
            .bytes(512 << 10)
            .on_path("/api/analytics/"),
    )
    .await
    .unwrap();
    one(&poller, &c, pool("web"))
        .await
        .expect("an answer under the limit");
    // 1 GiB: reading it whole would take many seconds and a gigabyte; the client stops at
    // 1 MiB.
    h.add_fault(FaultSpec::new(FaultKind::HugeBody).on_path("/api/analytics/"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_too_large(), "{e} {e:?}");
    assert_eq!(e.reason(), api::Reason::AviResponseTooLarge);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    no_secret(&e);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_endpoint_opens_its_breaker_and_a_probe_closes_it() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    let changes = Arc::new(Mutex::new(Vec::new()));
    let seen = changes.clone();
    let poller = Poller::new(PollerSettings {
        retries: 2,
        circuit_failures: 3,
        circuit_open_for: Duration::from_millis(300),
        circuit_observer: Some(Arc::new(move |url: &url::Url, open: bool| {
            seen.lock().unwrap().push((url.to_string(), open));
        })),
        ..settings()
    });
    let c = conn(&sim, AuthMode::Basic);
    let outage = h
        .add_fault(FaultSpec::error(503, 1_000_000).on_path("/api/"))
        .await
        .unwrap();
    // One poll: three failed rounds open the breaker.
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_server_error(), "{e}");
    assert_eq!(h.counters().requests(METRICS), 3);
    assert_eq!(changes.lock().unwrap().len(), 1);
    assert!(changes.lock().unwrap()[0].1, "opened");
    // While it is open, polls fail at once as unreachable, naming the last failure, and the
    // controller is not asked.
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert_eq!(e.reason(), api::Reason::AviUnreachable);
    let chain = format!("{e:?}");
    assert!(chain.contains("503"), "{chain}");
    assert_eq!(h.counters().requests(METRICS), 3);
    // The controller recovers: once the open period is over, one probe closes the breaker.
    h.remove_fault(outage);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if one(&poller, &c, pool("web")).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never closed"
        );
        // Poll the condition, not the clock: the breaker's own period decides.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.counters().requests(METRICS), 4, "one probe");
    assert_eq!(
        changes.lock().unwrap().last().map(|(_, open)| *open),
        Some(false)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_empty_answer_is_no_data_not_zero() {
    let sim = start(scenario(0), 1).await;
    let h = sim.handle();
    h.add_fault(FaultSpec::new(FaultKind::Empty).on_path("/api/analytics/prometheus-metrics/"))
        .await
        .unwrap();
    let poller = Poller::new(settings());
    let e = one(&poller, &conn(&sim, AuthMode::Basic), pool("web"))
        .await
        .unwrap_err();
    assert!(e.is_no_data(), "{e}");
    assert_eq!(e.reason(), api::Reason::FailedGetAviMetric);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_entities_and_metrics_are_told_apart() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    let mut bad_metric = pool("web");
    bad_metric.metric_id = "l4_server.no_such_metric".into();
    let r = poller
        .fetch(&c, &[pool("web"), pool("no-such-pool"), bad_metric])
        .await;
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let e = r[1].as_ref().unwrap_err();
    assert!(e.is_unknown_entity(), "{e}");
    let e = r[2].as_ref().unwrap_err();
    assert!(e.is_unknown_metric(), "{e}");
    // One batched metrics request; the causes come from the catalog and the inventory.
    let counters = sim.handle().counters();
    assert_eq!(counters.requests(METRICS), 1);
    assert_eq!(counters.requests("GET /api/pool"), 1);
    assert_eq!(counters.requests("GET /api/analytics/metric_id"), 1);
    // By UUID too.
    let mut by_uuid = pool("x");
    by_uuid.entity = EntitySelector::Uuid("pool-00000000-no-such".into());
    let e = one(&poller, &c, by_uuid).await.unwrap_err();
    assert!(e.is_unknown_entity(), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_controller_that_refuses_unknown_names_fails_only_them() {
    let mut s = scenario(8);
    s.controller.behaviour.unknown_selection = serde_json::from_value(json!("error")).unwrap();
    let sim = start(s, 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Basic);
    let mut queries: Vec<_> = (0..8).map(|i| pool(&format!("pool-{i}"))).collect();
    queries.push(pool("typo"));
    let r = poller.fetch(&c, &queries).await;
    for (i, r) in r.iter().take(8).enumerate() {
        assert!((r.as_ref().expect("a value").value - i as f64).abs() < 1e-6);
    }
    let e = r[8].as_ref().unwrap_err();
    assert!(e.is_unknown_entity(), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_tenant_selects_the_entities() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let mut c = conn(&sim, AuthMode::Session);
    c.tenant = "alpha".into();
    let s = one(&poller, &c, pool("alpha-web")).await.expect("a value");
    assert!((s.value - 50.0).abs() < 1e-6, "{s:?}");
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_unknown_entity(), "{e}");
    c.tenant = "admin".into();
    let e = one(&poller, &c, pool("alpha-web")).await.unwrap_err();
    assert!(e.is_unknown_entity(), "{e}");
    c.tenant = "no-such-tenant".into();
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert_eq!(e.reason(), api::Reason::FailedGetAviMetric, "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn x_avi_version_is_sent() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let mut c = conn(&sim, AuthMode::Basic);
    c.api_version = Some("99.1.1".into());
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(400), "{e}");
    assert!(e.to_string().contains("99.1.1"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_skipped() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let mut c = conn(&sim, AuthMode::Session);
    c.tls.extra_ca_pem = None;
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_tls(), "{e} {e:?}");
    assert_eq!(e.reason(), api::Reason::AviTLSError);
    no_secret(&e);
    assert_eq!(sim.handle().counters().requests(LOGIN), 0);
    c.tls.insecure_skip_verify = true;
    one(&poller, &c, pool("web"))
        .await
        .expect("a value without verification");
    // A CA bundle that is not PEM is a configuration error.
    c.tls = TlsConfig {
        insecure_skip_verify: false,
        extra_ca_pem: Some(b"not a certificate".to_vec()),
    };
    let e = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(e.is_config(), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn n_autoscalers_cost_ceil_n_over_batch_size_requests_per_tick() {
    const N: usize = 120;
    const BATCH: usize = 25;
    let sim = start(scenario(N), 1).await;
    let h = sim.handle();
    let poller = Poller::new(PollerSettings {
        max_entities_per_request: BATCH,
        // A generous window so that every task of the tick has joined on a loaded machine;
        // no cache, so each round of calls below is a tick of its own.
        coalesce_window: Duration::from_millis(500),
        cache_ttl: Duration::ZERO,
        ..PollerSettings::default()
    });
    let c = conn(&sim, AuthMode::Session);
    for tick in 1..=2 {
        h.reset_counters();
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let (poller, c) = (poller.clone(), c.clone());
                tokio::spawn(async move { one(&poller, &c, pool(&format!("pool-{i}"))).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let s = t.await.unwrap().unwrap_or_else(|e| panic!("pool-{i}: {e}"));
            assert!((s.value - i as f64).abs() < 1e-6, "pool-{i}: {s:?}");
        }
        assert_eq!(
            h.counters().requests(METRICS),
            N.div_ceil(BATCH) as u64,
            "tick {tick}"
        );
    }
    assert_eq!(
        h.counters().requests(LOGIN),
        0,
        "the session of tick 1 is reused"
    );
    sim.shutdown().await;
}

/// Waits (with a deadline) until `done` holds, checking every 20 ms.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn event_faults_expire_sessions_and_take_a_node_down() {
    let sim = start(scenario(0), 2).await;
    let h = sim.handle();
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    one(&poller, &c, pool("web")).await.expect("a value");
    h.add_fault(FaultSpec::new(FaultKind::ExpireSessions))
        .await
        .unwrap();
    wait_until("the sessions expired", || h.session_count() == 0).await;
    one(&poller, &c, pool("web"))
        .await
        .expect("a value after logging in again");
    assert_eq!(h.counters().requests(LOGIN), 2);
    h.add_fault(FaultSpec::new(FaultKind::NodeDown).on_node(0))
        .await
        .unwrap();
    wait_until("node 0 is down", || !h.is_node_up(0)).await;
    one(&poller, &c, pool("web")).await.expect("node 1 answers");
    assert_eq!(h.counters().node_requests(1, METRICS), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn realtime_and_virtual_service_metrics() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let c = conn(&sim, AuthMode::Session);
    let mut rt = pool("rt");
    rt.realtime = true;
    let mut not_enabled = pool("web");
    not_enabled.realtime = true;
    let vs = MetricQuery {
        entity_type: EntityType::VirtualService,
        entity: EntitySelector::Name("vs-web".into()),
        metric_id: "l4_client.max_open_conns".into(),
        aggregation: None,
        realtime: false,
    };
    let r = poller.fetch(&c, &[rt, not_enabled, vs]).await;
    let s = r[0].as_ref().expect("a realtime value");
    assert!((s.value - 20.0).abs() < 1e-6, "{s:?}");
    // Realtime metrics not enabled on the pool: it exists, but has no realtime value.
    let e = r[1].as_ref().unwrap_err();
    assert!(e.is_no_data(), "{e}");
    let s = r[2].as_ref().expect("a virtual-service value");
    assert_eq!(s.series, 1);
    assert!(s.value > 0.0, "{s:?}");
    let counters = sim.handle().counters();
    // Both realtime pool queries share one request; the virtual service has its own.
    assert_eq!(counters.requests(METRICS), 1);
    assert_eq!(
        counters.requests("GET /api/analytics/prometheus-metrics/virtualservice"),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pinned_addresses_are_connected_to_instead_of_resolving_the_name() {
    let sim = start(scenario(0), 1).await;
    let poller = Poller::new(settings());
    let addr = sim.addrs()[0];
    // A name no resolver knows (RFC 6761 `.invalid`); certificates are not checked, so only the
    // address decides whether the connection reaches avi-sim.
    let mut c = conn(&sim, AuthMode::Basic);
    c.endpoints = vec![
        format!("https://avi.pinned.invalid:{}", addr.port())
            .parse()
            .unwrap(),
    ];
    c.tls = TlsConfig {
        insecure_skip_verify: true,
        extra_ca_pem: None,
    };
    let unpinned = one(&poller, &c, pool("web")).await.unwrap_err();
    assert!(unpinned.is_unreachable(), "{unpinned:?}");
    c.pinned_addresses = [("avi.pinned.invalid".to_owned(), [addr].into())].into();
    let sample = one(&poller, &c, pool("web")).await.expect("a value");
    assert_eq!(sample.series, 2);
}
