//! One polling tick for 10,000 autoscalers on one simulated controller (avi-sim over HTTPS,
//! session auth, one tenant): wall time per tick (criterion) and controller requests per tick
//! (avi-sim's counters, printed after each group).
//!
//! Two shapes of tick: every autoscaler's reconcile calls `fetch` at once, and the more
//! realistic one where the operator's concurrency (64 reconciles at a time) spreads them out,
//! which the poller's fetching ahead keeps at the same cost.
//!
//! `cargo bench -p avi-autoscaler-avi --bench poller`

use std::{sync::Arc, time::Duration};

use api::{AuthMode, EntityType};
use avi::{
    ConnectionConfig, Credentials, EntitySelector, MetricQuery, Poller, PollerSettings, TlsConfig,
};
use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::{runtime::Runtime, sync::Semaphore};

const AUTOSCALERS: usize = 10_000;
const METRICS: &str = "GET /api/analytics/prometheus-metrics/pool";
/// Ticks are this far apart (unmeasured), so each finds the previous tick's answers expired,
/// as a 15 s polling interval would with the default 5 s cache.
const BETWEEN_TICKS: Duration = Duration::from_millis(5_100);

fn name(i: usize) -> String {
    // AKO's pool name shape: <cluster>--<host><path>-<namespace>-<ingress>.
    format!(
        "k8s-cluster--app{i}.apps.example.org_-team{}-app{i}-ingress",
        i % 50
    )
}

fn scenario() -> Scenario {
    let pools: Vec<_> = (0..AUTOSCALERS)
        .map(|i| {
            serde_json::json!({
                "name": name(i),
                "servers": {"count": 1 + i % 3, "firstIp": format!("10.{}.{}.10", 1 + i / 250, i % 250)},
                "load": {"maxUsers": (i % 200) as f64},
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "users": [{"username": "admin", "password": "bench"}],
        "pools": pools,
    }))
    .expect("a valid scenario")
}

struct Setup {
    sim: RunningSim,
    conn: ConnectionConfig,
    queries: Arc<Vec<MetricQuery>>,
}

async fn setup() -> Setup {
    let sim = Sim::start(SimConfig::new(scenario()).paused())
        .await
        .expect("avi-sim starts");
    sim.handle().advance(600.0).await.expect("clock moves");
    let conn = ConnectionConfig {
        endpoints: vec![sim.url().parse().unwrap()],
        auth_mode: AuthMode::Session,
        credentials: Credentials::new("admin", "bench"),
        tenant: "admin".into(),
        api_version: None,
        tls: TlsConfig {
            insecure_skip_verify: false,
            extra_ca_pem: Some(sim.ca_pem().as_bytes().to_vec()),
        },
        timeout: Duration::from_secs(30),
        pinned_addresses: Default::default(),
    };
    let queries = (0..AUTOSCALERS)
        .map(|i| MetricQuery {
            entity_type: EntityType::Pool,
            entity: EntitySelector::Name(name(i)),
            metric_id: "l4_server.avg_open_conns".into(),
            aggregation: None,
            realtime: false,
        })
        .collect();
    Setup {
        sim,
        conn,
        queries: Arc::new(queries),
    }
}

/// One tick: every autoscaler fetches its metric, at most `concurrency` at a time.
async fn tick(poller: &Poller, s: &Setup, concurrency: usize) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(AUTOSCALERS);
    for i in 0..AUTOSCALERS {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (poller, conn, queries) = (poller.clone(), s.conn.clone(), s.queries.clone());
        tasks.push(tokio::spawn(async move {
            let r = poller.fetch(&conn, &queries[i..=i]).await;
            drop(permit);
            r.into_iter().next().unwrap().expect("a value")
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let s = rt.block_on(setup());
    let mut group = c.benchmark_group("poller_tick_10000_autoscalers");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for concurrency in [AUTOSCALERS, 64] {
        let poller = Poller::new(PollerSettings::default());
        // Ticks 1 and 2 teach the poller what each autoscaler asks for, and how often; they
        // are not measured.
        for _ in 0..2 {
            rt.block_on(tick(&poller, &s, concurrency));
            rt.block_on(async { tokio::time::sleep(BETWEEN_TICKS).await });
        }
        let handle = s.sim.handle();
        let mut ticks = 0u64;
        handle.reset_counters();
        let label = if concurrency == AUTOSCALERS {
            "all at once".to_owned()
        } else {
            format!("{concurrency} concurrent reconciles")
        };
        group.bench_function(&label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(async { tokio::time::sleep(BETWEEN_TICKS).await });
                    let start = std::time::Instant::now();
                    rt.block_on(tick(&poller, &s, concurrency));
                    total += start.elapsed();
                    ticks += 1;
                }
                total
            })
        });
        let counters = handle.counters();
        eprintln!(
            "poller_tick_10000_autoscalers/{label}: {:.1} metrics requests per tick \
             ({} requests in {ticks} ticks; batch size {}), {} logins",
            counters.requests(METRICS) as f64 / ticks.max(1) as f64,
            counters.requests(METRICS),
            PollerSettings::default().max_entities_per_request,
            counters.requests("POST /login"),
        );
    }
    group.finish();
    rt.block_on(s.sim.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
