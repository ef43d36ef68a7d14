//! The poller's batching, single-flight, cache, prefetch and diagnosis, over a fake transport
//! that answers from a table and counts requests. Timers run on tokio's paused clock.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::{Aggregation, AuthMode, EntityType, k8s::jiff::Timestamp};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::*;
use crate::{Credentials, EntitySelector, TlsConfig};

#[derive(Default)]
struct FakeState {
    /// (entity, metric id) → member values.
    data: Mutex<HashMap<(String, String), Vec<f64>>>,
    /// Entities that exist without data.
    existing: Mutex<HashSet<String>>,
    /// Metric ids the catalog lists.
    catalog: Mutex<HashSet<String>>,
    /// Every metrics request, in order.
    requests: Mutex<Vec<MetricsRequest>>,
    inventory_lookups: AtomicUsize,
    /// Answer 400 when a request names an unknown entity.
    refuse_unknown: bool,
    /// Fail every metrics request with this error.
    fail: Mutex<Option<Error>>,
    /// When set, each metrics request waits for a permit (to hold requests in flight).
    gate: Option<Arc<Semaphore>>,
}

#[derive(Clone, Default)]
struct Fake(Arc<FakeState>);

impl Fake {
    fn with(f: impl FnOnce(&mut FakeState)) -> Self {
        let mut s = FakeState::default();
        f(&mut s);
        Fake(Arc::new(s))
    }

    fn set(&self, entity: &str, metric: &str, members: &[f64]) {
        self.0
            .data
            .lock()
            .unwrap()
            .insert((entity.into(), metric.into()), members.to_vec());
        self.0.catalog.lock().unwrap().insert(metric.into());
    }

    fn requests(&self) -> Vec<MetricsRequest> {
        self.0.requests.lock().unwrap().clone()
    }

    fn request_count(&self) -> usize {
        self.0.requests.lock().unwrap().len()
    }
}

impl Transport for Fake {
    async fn fetch_metrics(&self, req: &MetricsRequest) -> Result<Answer, Error> {
        self.0.requests.lock().unwrap().push(req.clone());
        if let Some(gate) = &self.0.gate {
            gate.acquire().await.unwrap().forget();
        }
        if let Some(e) = self.0.fail.lock().unwrap().clone() {
            return Err(e);
        }
        let data = self.0.data.lock().unwrap().clone();
        let known = |e: &str| {
            data.keys().any(|(x, _)| x == e) || self.0.existing.lock().unwrap().contains(e)
        };
        if self.0.refuse_unknown && req.entities.iter().any(|e| !known(e)) {
            return Err(Error::new(Kind::BadResponse).with_status(StatusCode::BAD_REQUEST));
        }
        let mut lines = Vec::new();
        for e in &req.entities {
            for m in &req.metric_ids {
                for (i, v) in data
                    .get(&(e.clone(), m.clone()))
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    lines.push(format!(
                        "{}{{uuid=\"{e}-uuid\", type=\"pool\", tenant=\"{}\", server=\"10.0.0.{i}:80\", name=\"{e}\"}} {v:?}",
                        crate::query::prometheus_name(m),
                        req.tenant
                    ));
                }
            }
        }
        let text = format!(
            "# Successfully gathered {} metrics for pool\n{}\n",
            lines.len(),
            lines.join("\n")
        );
        Answer::parse(&text, req.by, Timestamp::UNIX_EPOCH)
    }

    async fn entity_exists(
        &self,
        _tenant: &str,
        _entity_type: EntityType,
        entity: &EntitySelector,
    ) -> Result<bool, Error> {
        self.0.inventory_lookups.fetch_add(1, Ordering::SeqCst);
        let e = entity.value();
        Ok(self.0.data.lock().unwrap().keys().any(|(x, _)| x == e)
            || self.0.existing.lock().unwrap().contains(e))
    }

    async fn metric_known(&self, _entity_type: EntityType, metric_id: &str) -> Result<bool, Error> {
        Ok(self.0.catalog.lock().unwrap().contains(metric_id))
    }

    fn url_prefix_len(&self, _entity_type: EntityType) -> usize {
        "https://avi.example/api/analytics/prometheus-metrics/pool".len()
    }

    fn touch(&self) {}

    fn idle_for(&self) -> Duration {
        Duration::ZERO
    }
}

fn core(fake: &Fake, settings: PollerSettings) -> Arc<Core<Fake>> {
    let fake = fake.clone();
    Arc::new(Core::new(
        settings,
        Arc::new(StatsHub::new(None)),
        Box::new(move |_| Ok(fake.clone())),
    ))
}

fn settings(batch: usize) -> PollerSettings {
    PollerSettings {
        max_entities_per_request: batch,
        ..PollerSettings::default()
    }
}

fn conn() -> ConnectionConfig {
    ConnectionConfig {
        endpoints: vec!["https://avi.example".parse().unwrap()],
        auth_mode: AuthMode::Session,
        credentials: Credentials::new("admin", "pw"),
        tenant: "admin".into(),
        api_version: None,
        tls: TlsConfig::default(),
        timeout: Duration::from_secs(10),
        pinned_addresses: Default::default(),
    }
}

fn pool(name: &str, metric: &str) -> MetricQuery {
    MetricQuery {
        entity_type: EntityType::Pool,
        entity: EntitySelector::Name(name.into()),
        metric_id: metric.into(),
        aggregation: None,
        realtime: false,
    }
}

const OPEN: &str = "l4_server.avg_open_conns";
/// The default cache TTL: the most a cached answer may be reused for.
const TICK: Duration = Duration::from_secs(5);

/// Runs one fetch per query concurrently, as autoscalers reconciling in the same moment do.
async fn fetch_all(
    core: &Arc<Core<Fake>>,
    queries: Vec<MetricQuery>,
) -> Vec<Result<Sample, Error>> {
    let tasks: Vec<_> = queries
        .into_iter()
        .map(|q| {
            let core = core.clone();
            tokio::spawn(async move { core.fetch(&conn(), &[q], TICK).await.remove(0) })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn concurrent_queries_cost_ceil_n_over_batch_size() {
    let fake = Fake::default();
    for i in 0..120 {
        fake.set(&format!("pool-{i}"), OPEN, &[i as f64]);
    }
    let core = core(&fake, settings(50));
    let results = fetch_all(
        &core,
        (0..120).map(|i| pool(&format!("pool-{i}"), OPEN)).collect(),
    )
    .await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().value, i as f64);
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(
        reqs.iter().map(|r| r.entities.len()).collect::<Vec<_>>(),
        vec![50, 50, 20]
    );
    assert!(reqs.iter().all(|r| r.metric_ids == vec![OPEN.to_owned()]));
}

#[tokio::test(start_paused = true)]
async fn types_realtime_and_selector_kinds_are_separate_batches() {
    let fake = Fake::default();
    fake.set("a", OPEN, &[1.0]);
    let core = core(&fake, settings(50));
    let mut realtime = pool("a", OPEN);
    realtime.realtime = true;
    let mut vs = pool("a", OPEN);
    vs.entity_type = EntityType::VirtualService;
    let mut by_uuid = pool("a-uuid", OPEN);
    by_uuid.entity = EntitySelector::Uuid("a-uuid".into());
    let results = fetch_all(&core, vec![pool("a", OPEN), realtime, vs, by_uuid]).await;
    // The fake answers by name only; what matters here is how the queries were grouped.
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    let mut keys: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| (r.entity_type, r.realtime, r.by))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn callers_wait_on_the_request_in_flight() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::with(|s| s.gate = Some(gate.clone()));
    fake.set("web", OPEN, &[3.0]);
    let core = core(&fake, settings(50));
    let first = tokio::spawn({
        let core = core.clone();
        async move { core.fetch(&conn(), &[pool("web", OPEN)], TICK).await }
    });
    // Wait (on the paused clock) until the request is on its way, then ask again.
    while fake.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = tokio::spawn({
        let core = core.clone();
        async move { core.fetch(&conn(), &[pool("web", OPEN)], TICK).await }
    });
    tokio::task::yield_now().await;
    gate.add_permits(10);
    assert_eq!(first.await.unwrap()[0].as_ref().unwrap().value, 3.0);
    assert_eq!(second.await.unwrap()[0].as_ref().unwrap().value, 3.0);
    assert_eq!(fake.request_count(), 1);
    assert_eq!(core.stats.snapshot().joined_in_flight, 1);
}

#[tokio::test(start_paused = true)]
async fn answers_are_cached_for_the_tick_only() {
    let fake = Fake::default();
    fake.set("web", OPEN, &[3.0]);
    let core = core(&fake, settings(50));
    core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    fake.set("web", OPEN, &[4.0]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cached = core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    assert_eq!(cached[0].as_ref().unwrap().value, 3.0);
    assert_eq!(fake.request_count(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fresh = core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    assert_eq!(fresh[0].as_ref().unwrap().value, 4.0);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_caller_with_a_short_interval_reads_no_answer_older_than_it_allows() {
    let fake = Fake::default();
    fake.set("web", OPEN, &[3.0]);
    let core = core(&fake, settings(50));
    core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    fake.set("web", OPEN, &[4.0]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // 400 ms old: fine for a caller that allows 500 ms, and for the default tick…
    let young = core
        .fetch(&conn(), &[pool("web", OPEN)], Duration::from_millis(500))
        .await;
    assert_eq!(young[0].as_ref().unwrap().value, 3.0);
    assert_eq!(fake.request_count(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …but 600 ms is too old for it: it asks again, and the answer serves later callers.
    let fresh = core
        .fetch(&conn(), &[pool("web", OPEN)], Duration::from_millis(500))
        .await;
    assert_eq!(fresh[0].as_ref().unwrap().value, 4.0);
    assert_eq!(fake.request_count(), 2);
    let shared = core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    assert_eq!(shared[0].as_ref().unwrap().value, 4.0);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn errors_are_cached_too_so_a_failing_controller_is_asked_once_per_tick() {
    let fake = Fake::with(|s| {
        *s.fail.get_mut().unwrap() = Some(Error::new(Kind::Unreachable));
    });
    let core = core(&fake, settings(50));
    let first = fetch_all(
        &core,
        (0..10).map(|i| pool(&format!("p{i}"), OPEN)).collect(),
    )
    .await;
    let later = fetch_all(
        &core,
        (0..10).map(|i| pool(&format!("p{i}"), OPEN)).collect(),
    )
    .await;
    assert!(
        first
            .iter()
            .chain(&later)
            .all(|r| r.as_ref().unwrap_err().is_unreachable())
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn later_ticks_prefetch_what_earlier_ticks_asked_even_when_callers_trickle_in() {
    let fake = Fake::default();
    for i in 0..100 {
        fake.set(&format!("p{i}"), OPEN, &[1.0]);
    }
    let core = core(&fake, settings(50));
    let names: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    for tick in 0..3u64 {
        // Align to a 15 s tick, then let the autoscalers reconcile one after the other, 20 ms
        // apart, as an operator with limited concurrency would.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let before = fake.request_count();
        for name in &names {
            let r = core.fetch(&conn(), &[pool(name, OPEN)], TICK).await;
            assert!(r[0].is_ok(), "tick {tick}: {r:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cost = fake.request_count() - before;
        if tick == 0 {
            // The first tick knows nothing yet: each caller opens its own window.
            assert!(cost > 2, "tick 0 cost {cost}");
        } else {
            assert_eq!(cost, 2, "tick {tick}");
        }
    }
    assert!(core.stats.snapshot().prefetched >= 98);
}

#[tokio::test(start_paused = true)]
async fn pairs_no_longer_asked_are_forgotten() {
    let fake = Fake::default();
    fake.set("keep", OPEN, &[1.0]);
    fake.set("gone", OPEN, &[1.0]);
    let core = core(&fake, settings(50));
    for _ in 0..2 {
        fetch_all(&core, vec![pool("keep", OPEN), pool("gone", OPEN)]).await;
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    // "gone" has a 15 s period now; after it stops being asked for, it is prefetched until
    // it has missed two periods, then dropped.
    for _ in 0..4 {
        fetch_all(&core, vec![pool("keep", OPEN)]).await;
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.entities, vec!["keep".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn pool_members_combine_per_query_from_one_request() {
    let fake = Fake::default();
    fake.set("web", OPEN, &[10.0, 30.0, 20.0]);
    let core = core(&fake, settings(50));
    let mut avg = pool("web", OPEN);
    avg.aggregation = Some(Aggregation::Average);
    let mut max = pool("web", OPEN);
    max.aggregation = Some(Aggregation::Max);
    let r = core
        .fetch(&conn(), &[pool("web", OPEN), avg, max], TICK)
        .await;
    let values: Vec<(f64, u32)> = r
        .iter()
        .map(|s| {
            let s = s.as_ref().unwrap();
            (s.value, s.series)
        })
        .collect();
    assert_eq!(values, vec![(60.0, 3), (20.0, 3), (30.0, 3)]);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn absent_pairs_are_unknown_entity_unknown_metric_or_no_data() {
    let fake = Fake::default();
    fake.set("web", OPEN, &[1.0]);
    fake.set("api", "l7_server.avg_complete_responses", &[2.0]);
    fake.0.existing.lock().unwrap().insert("empty-pool".into());
    fake.0
        .catalog
        .lock()
        .unwrap()
        .insert("l4_server.avg_pool_complete_conns".into());
    let core = core(&fake, settings(50));
    let r = core
        .fetch(
            &conn(),
            &[
                pool("web", OPEN),
                pool("nosuch", OPEN),
                pool("web", "l4_server.no_such_metric"),
                pool("empty-pool", OPEN),
                pool("api", OPEN),
                pool("web", "l4_server.avg_pool_complete_conns"),
            ],
            TICK,
        )
        .await;
    assert!(r[0].is_ok());
    let e = |i: usize| r[i].as_ref().unwrap_err();
    assert!(e(1).is_unknown_entity(), "{}", e(1));
    assert!(e(1).to_string().contains("pool/nosuch"), "{}", e(1));
    assert!(e(2).is_unknown_metric(), "{}", e(2));
    assert!(e(3).is_no_data(), "{}", e(3));
    assert!(e(4).is_no_data(), "{}", e(4));
    assert!(e(5).is_no_data(), "{}", e(5));
    for i in 1..6 {
        assert_eq!(e(i).reason(), api::Reason::FailedGetAviMetric);
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_is_no_data_never_zero() {
    let fake = Fake::default();
    fake.0
        .existing
        .lock()
        .unwrap()
        .extend((0..20).map(|i| format!("p{i}")));
    fake.0.catalog.lock().unwrap().insert(OPEN.into());
    let core = core(&fake, settings(50));
    let r = fetch_all(
        &core,
        (0..20).map(|i| pool(&format!("p{i}"), OPEN)).collect(),
    )
    .await;
    assert!(r.iter().all(|r| r.as_ref().unwrap_err().is_no_data()));
    // The causes of at most max_lookups_per_batch absences are looked up.
    assert_eq!(fake.0.inventory_lookups.load(Ordering::SeqCst), 8);
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_is_split_so_one_unknown_name_fails_alone() {
    let fake = Fake::with(|s| s.refuse_unknown = true);
    for i in 0..15 {
        fake.set(&format!("p{i}"), OPEN, &[i as f64]);
    }
    let core = core(&fake, settings(50));
    let mut queries: Vec<_> = (0..15).map(|i| pool(&format!("p{i}"), OPEN)).collect();
    queries.push(pool("typo", OPEN));
    let r = fetch_all(&core, queries).await;
    for (i, r) in r.iter().take(15).enumerate() {
        assert_eq!(r.as_ref().unwrap().value, i as f64);
    }
    assert!(
        r[15].as_ref().unwrap_err().is_unknown_entity(),
        "{:?}",
        r[15]
    );
    // 1 refused request + a bisection down to the bad name: log2(16) levels, two each.
    assert!(
        fake.request_count() <= 1 + 2 * 4,
        "{}",
        fake.request_count()
    );
}

#[tokio::test(start_paused = true)]
async fn nan_and_infinite_members_are_no_data() {
    let fake = Fake::default();
    fake.set("a", OPEN, &[1.0, f64::NAN]);
    fake.set("b", OPEN, &[f64::INFINITY]);
    let core = core(&fake, settings(50));
    let r = core
        .fetch(&conn(), &[pool("a", OPEN), pool("b", OPEN)], TICK)
        .await;
    assert!(r[0].as_ref().unwrap_err().is_no_data());
    assert!(
        r[1].as_ref().unwrap_err().to_string().contains("inf"),
        "{:?}",
        r[1]
    );
}

#[test]
fn batch_query_strings_are_exact() {
    let req = MetricsRequest {
        poll: 1,
        tenant: "team a".into(),
        entity_type: EntityType::Pool,
        realtime: true,
        by: SelectorKind::Name,
        entities: vec!["k8s--web.example.com_-ns-ing".into(), "b,c".into()],
        metric_ids: vec![OPEN.into(), "l7_server.avg_complete_responses".into()],
    };
    assert_eq!(
        req.query(),
        "entity_name=k8s--web.example.com_-ns-ing,b%2Cc&metric_id=l4_server.avg_open_conns,l7_server.avg_complete_responses&tenant=team+a&realtime=true"
    );
}

#[tokio::test(start_paused = true)]
async fn long_names_split_batches_by_url_length() {
    let fake = Fake::default();
    let long = |i: usize| format!("{}-{i}", "x".repeat(200));
    for i in 0..40 {
        fake.set(&long(i), OPEN, &[1.0]);
    }
    let core = core(
        &fake,
        PollerSettings {
            max_url_len: 2000,
            ..settings(50)
        },
    );
    let r = fetch_all(&core, (0..40).map(|i| pool(&long(i), OPEN)).collect()).await;
    assert!(r.iter().all(Result::is_ok));
    for req in fake.requests() {
        let url_len = fake.url_prefix_len(EntityType::Pool) + 1 + req.query().len();
        assert!(url_len <= 2000, "{url_len}");
    }
    assert_eq!(fake.request_count(), 5); // 40 names of ~204 bytes, 9 per 2000-byte URL
}

#[tokio::test(start_paused = true)]
async fn a_batch_refused_for_every_name_is_not_bisected_to_the_end() {
    // Every name unknown: both halves are refused, so the bisection stops after one split.
    let fake = Fake::with(|s| s.refuse_unknown = true);
    fake.0.catalog.lock().unwrap().insert(OPEN.into());
    let core = core(&fake, settings(50));
    let r = fetch_all(
        &core,
        (0..32).map(|i| pool(&format!("typo{i}"), OPEN)).collect(),
    )
    .await;
    assert!(r.iter().all(Result::is_err));
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_caller_gives_up_at_its_deadline_or_the_connections() {
    // The request never finishes: the gate is never opened.
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::with(|s| s.gate = Some(gate.clone()));
    fake.set("web", OPEN, &[3.0]);
    let core = core(&fake, settings(50));
    let started = Instant::now();
    let r = core
        .fetch_until(&conn(), &[pool("web", OPEN)], TICK, Duration::from_secs(3))
        .await
        .remove(0);
    let e = r.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    // Without a deadline of its own, the connection's timeout (10 s, one endpoint) bounds the
    // wait, plus the coalescing window.
    let started = Instant::now();
    let e = core
        .fetch(&conn(), &[pool("web", OPEN)], TICK)
        .await
        .remove(0)
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10) + PollerSettings::default().coalesce_window
    );
}

#[tokio::test(start_paused = true)]
async fn callers_beyond_the_waiting_limit_are_turned_away_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::with(|s| s.gate = Some(gate.clone()));
    fake.set("web", OPEN, &[3.0]);
    let core = core(
        &fake,
        PollerSettings {
            max_waiting_per_connection: 2,
            ..settings(50)
        },
    );
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let core = core.clone();
            tokio::spawn(async move { core.fetch(&conn(), &[pool("web", OPEN)], TICK).await })
        })
        .collect();
    while fake.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let third = core
        .fetch(&conn(), &[pool("web", OPEN)], TICK)
        .await
        .remove(0);
    let e = third.unwrap_err();
    assert!(e.is_busy(), "{e}");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "a busy caller never waits"
    );
    assert_eq!(core.stats.snapshot().busy, 1);
    gate.add_permits(1);
    for w in waiting {
        assert_eq!(w.await.unwrap()[0].as_ref().unwrap().value, 3.0);
    }
    // The answer the turned-away caller asked for is cached: asking again finds it.
    let again = core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    assert_eq!(again[0].as_ref().unwrap().value, 3.0);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn state_nobody_asks_for_is_forgotten() {
    let fake = Fake::default();
    fake.set("web", OPEN, &[3.0]);
    let core = core(
        &fake,
        PollerSettings {
            interest_ttl: Duration::from_secs(60),
            ..settings(50)
        },
    );
    core.fetch(&conn(), &[pool("web", OPEN)], TICK).await;
    core.forget_unused();
    assert_eq!(core.batch_count(), 1, "a pair asked a moment ago is kept");
    tokio::time::advance(Duration::from_secs(61) + TICK).await;
    core.forget_unused();
    assert_eq!(core.batch_count(), 0, "the pair's interest ran out");
}

/// One operator tick: `n` autoscalers with aligned `interval`s reconcile spread evenly over
/// `spread` (in a different order each tick), each taking only answers of its own tick.
async fn operator_tick(
    core: &Arc<Core<Fake>>,
    n: usize,
    tick: u64,
    interval: Duration,
    spread: Duration,
) {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let position = (i as u64 * 7919 + tick * 104_729) % n as u64;
        let at = start + spread.mul_f64(position as f64 / n as f64);
        let core = core.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let since_tick_start = tokio::time::Instant::now() - start;
            let r = core
                .fetch(&conn(), &[pool(&format!("p{i}"), OPEN)], since_tick_start)
                .await;
            assert!(r[0].is_ok(), "{r:?}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep_until(start + interval).await;
}

#[tokio::test(start_paused = true)]
async fn a_tick_spread_over_more_than_the_cache_ttl_still_costs_one_batch() {
    let fake = Fake::default();
    for i in 0..200 {
        fake.set(&format!("p{i}"), OPEN, &[1.0]);
    }
    let core = core(&fake, settings(50));
    let interval = Duration::from_secs(15);
    // Reconciles spread over 7 s, longer than the 5 s an answer is cached for by default.
    let spread = Duration::from_secs(7);
    for tick in 0..2 {
        operator_tick(&core, 200, tick, interval, spread).await;
    }
    // ceil(200 / 50) = 4 requests a tick; one more at most, when a pair whose ask moved from
    // late in the last tick to early in this one is not yet known to be due. (Before answers
    // outlived the cache TTL for callers of their own tick, every reconcile after the first
    // 5 s cost another batch: 40 requests a tick here.)
    for tick in 2..8 {
        let before = fake.request_count();
        operator_tick(&core, 200, tick, interval, spread).await;
        let cost = fake.request_count() - before;
        assert!((4..=5).contains(&cost), "tick {tick}: {cost} requests");
    }
}
