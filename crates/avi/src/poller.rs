//! The batching poller. How a tick is served, and why an absent value is looked up, is
//! described in the crate documentation ("Batching and the tick", "The JSON APIs").
//!
//! A caller never waits without limit: each fetch gives up after its deadline (at most the
//! connection's timeout times its endpoints), and at most
//! [`PollerSettings::max_waiting_per_connection`] callers wait on one connection at a time,
//! so a dead controller holds only that many of the caller's workers.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::EntityType;
use futures::StreamExt;
use tokio::{sync::watch, time::Instant};

use crate::{
    absent::{self, Absent, no_value},
    client::{Connection, ControllerInfo, InventoryEntity, RetryPolicy},
    config::{ConnectionConfig, ConnectionKey},
    error::{Error, Kind},
    plan::{RequestOutcome, fetch_split, plan_chunks},
    query::{Answer, Lookup, MetricQuery, Sample, SelectorKind},
    stats::{CircuitObserver, PollerStats, RequestObserver, StatsHub},
    transport::{MetricsRequest, Pair, Transport, encode_list},
};

/// Tuning of a [`Poller`]. The defaults suit a controller serving thousands of autoscalers.
#[derive(Clone)]
pub struct PollerSettings {
    /// Most entities named in one request: the batch size. Default 50.
    pub max_entities_per_request: usize,
    /// Longest request URL, in bytes; longer batches are split. Default 6000, below the 8 KiB
    /// request line common web servers (the controller's nginx among them) accept.
    pub max_url_len: usize,
    /// How long the first caller of a batch waits for others to join. Default 50 ms.
    pub coalesce_window: Duration,
    /// How long an answer (or error) serves later asks, and how close asks of one pair must be
    /// to count as one tick; a pair asked periodically keeps its answer for three quarters of
    /// its period if that is longer. Default 5 s (see the crate docs).
    pub cache_ttl: Duration,
    /// How long a pair asked for only once is still fetched ahead with its batch. Default
    /// 3660 s, the longest polling interval plus a minute. Zero turns fetching ahead off.
    pub interest_ttl: Duration,
    /// Extra rounds over all endpoints after a round where every endpoint failed with a
    /// connection error, timeout or 5xx. Default 2.
    pub retries: u32,
    /// Backoff before the first extra round; it doubles each round, with jitter. Default 200 ms.
    pub backoff: Duration,
    /// Cap of the backoff. Default 2 s.
    pub max_backoff: Duration,
    /// A refused login is not tried again for this long, so wrong credentials cost one login
    /// per tick. Default 5 s.
    pub login_retry_after: Duration,
    /// Requests of one batch in flight at once, per connection. Default 4.
    pub max_concurrent_requests: usize,
    /// Absent pairs whose cause is looked up per batch (the rest report no data). Default 8.
    pub max_lookups_per_batch: usize,
    /// A connection (HTTP client and session) unused this long is dropped. Default 15 min,
    /// Avi's default session idle timeout.
    pub idle_connection_ttl: Duration,
    /// Called once per HTTP request (for latency histograms). Default none.
    pub observer: Option<RequestObserver>,
    /// The User-Agent of every request, so that the controller's logs name the client.
    /// Default `avi-autoscaler/<crate version>`; the operator adds its commit.
    pub user_agent: String,
    /// The largest answer read, in bytes: a larger one is dropped while it streams in
    /// ([`Error::is_too_large`]). Default 8 MiB, some thousand times a 50-pool answer and well
    /// inside the operator's memory limit. The metric catalog's pages share one such budget.
    pub max_response_bytes: usize,
    /// Failures in a row (connection, timeout, TLS, 5xx, oversized answer) after which an
    /// endpoint's circuit breaker opens: it is not asked for [`circuit_open_for`](Self::circuit_open_for),
    /// requests to it fail at once as unreachable, then one request probes it. Default 3,
    /// one failed poll with the default retries.
    pub circuit_failures: u32,
    /// How long an open breaker keeps requests away from its endpoint. Default 5 s.
    pub circuit_open_for: Duration,
    /// Told when an endpoint's breaker opens or closes (for a gauge). Default none.
    pub circuit_observer: Option<CircuitObserver>,
    /// Callers that may wait on one connection at the same time; one more gets
    /// [`Error::is_busy`] at once (its pairs are still fetched and cached, so asking again
    /// shortly finds them). Default unlimited; the operator allows half its workers.
    pub max_waiting_per_connection: usize,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            max_entities_per_request: 50,
            max_url_len: 6000,
            coalesce_window: Duration::from_millis(50),
            cache_ttl: Duration::from_secs(5),
            interest_ttl: Duration::from_secs(3660),
            retries: 2,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            login_retry_after: Duration::from_secs(5),
            max_concurrent_requests: 4,
            max_lookups_per_batch: 8,
            idle_connection_ttl: Duration::from_secs(15 * 60),
            observer: None,
            user_agent: concat!("avi-autoscaler/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_response_bytes: 8 << 20,
            circuit_failures: 3,
            circuit_open_for: Duration::from_secs(5),
            circuit_observer: None,
            max_waiting_per_connection: usize::MAX,
        }
    }
}

impl std::fmt::Debug for PollerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerSettings")
            .field("max_entities_per_request", &self.max_entities_per_request)
            .field("max_url_len", &self.max_url_len)
            .field("coalesce_window", &self.coalesce_window)
            .field("cache_ttl", &self.cache_ttl)
            .field("interest_ttl", &self.interest_ttl)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("login_retry_after", &self.login_retry_after)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("max_lookups_per_batch", &self.max_lookups_per_batch)
            .field("idle_connection_ttl", &self.idle_connection_ttl)
            .field("observer", &self.observer.as_ref().map(|_| "<fn>"))
            .field("user_agent", &self.user_agent)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("circuit_failures", &self.circuit_failures)
            .field("circuit_open_for", &self.circuit_open_for)
            .field(
                "circuit_observer",
                &self.circuit_observer.as_ref().map(|_| "<fn>"),
            )
            .field(
                "max_waiting_per_connection",
                &self.max_waiting_per_connection,
            )
            .finish()
    }
}

/// Reads metrics for many autoscalers, batched and cached per tick. Cheap to clone; one per
/// process.
#[derive(Clone)]
pub struct Poller {
    core: Arc<Core<Connection>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("settings", &self.core.settings)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// A poller with `settings`.
    pub fn new(settings: PollerSettings) -> Self {
        let stats = Arc::new(StatsHub::new(settings.observer.clone()));
        let policy = RetryPolicy {
            retries: settings.retries,
            backoff: settings.backoff,
            max_backoff: settings.max_backoff,
            login_retry_after: settings.login_retry_after,
            user_agent: settings.user_agent.clone(),
            max_response_bytes: settings.max_response_bytes,
            circuit_failures: settings.circuit_failures,
            circuit_open_for: settings.circuit_open_for,
            circuit_observer: settings.circuit_observer.clone(),
        };
        let connect_stats = stats.clone();
        let connect = move |key: &ConnectionKey| {
            Connection::new(key.clone(), policy.clone(), connect_stats.clone())
        };
        Poller {
            core: Arc::new(Core::new(settings, stats, Box::new(connect))),
        }
    }

    /// Reads `queries` from the controller of `conn`: one result per query, in the same order.
    /// Queries of concurrent calls that share the connection, tenant, entity type and realtime
    /// flag are batched into shared requests (see the module docs). Answers up to
    /// [`PollerSettings::cache_ttl`] old are reused.
    pub async fn fetch(
        &self,
        conn: &ConnectionConfig,
        queries: &[MetricQuery],
    ) -> Vec<Result<Sample, Error>> {
        self.core
            .fetch(conn, queries, self.core.settings.cache_ttl)
            .await
    }

    /// [`fetch`](Self::fetch), reusing only answers at most `max_age` old. An autoscaler that
    /// polls every `interval` passes the time since its tick began, so it never reads an answer
    /// that was already there at its previous poll. Answers are kept for
    /// [`PollerSettings::cache_ttl`], or three quarters of the period of a pair asked
    /// periodically (see the crate documentation, "Batching and the tick").
    pub async fn fetch_within(
        &self,
        conn: &ConnectionConfig,
        queries: &[MetricQuery],
        max_age: Duration,
    ) -> Vec<Result<Sample, Error>> {
        self.core.fetch(conn, queries, max_age).await
    }

    /// [`fetch_within`](Self::fetch_within), giving up after `deadline`: queries without an
    /// answer by then fail as timed out. Every fetch also gives up after the connection's
    /// timeout times its endpoints (plus the coalescing window), however many retry rounds
    /// the request itself still has; an autoscaler passes its polling interval, so it is never
    /// late for its next poll.
    pub async fn fetch_within_deadline(
        &self,
        conn: &ConnectionConfig,
        queries: &[MetricQuery],
        max_age: Duration,
        deadline: Duration,
    ) -> Vec<Result<Sample, Error>> {
        self.core
            .fetch_until(conn, queries, max_age, deadline)
            .await
    }

    /// Drops what nobody asks for any more: (entity, metric) pairs not asked for two of their
    /// periods, with their cached answers, batches left without pairs, and connections idle
    /// for [`PollerSettings::idle_connection_ttl`]. Without it each is dropped only when its
    /// batch runs again or another connection is made; the operator calls it periodically,
    /// so deleted autoscalers leave nothing behind.
    pub fn forget_unused(&self) {
        self.core.forget_unused()
    }

    /// Logs in to the controller of `conn` and reads its version, through the same shared
    /// connection, pool and session the metric reads of `conn` use.
    pub async fn probe(&self, conn: &ConnectionConfig) -> Result<ControllerInfo, Error> {
        let (_, connection, _) = self.core.connection(conn)?;
        connection.probe().await
    }

    /// The controller's metric catalog (`GET /api/analytics/metric_id`): for each metric id,
    /// the entity types it is offered for (an empty list: every type). Cached like the
    /// catalog the absence lookups read.
    pub async fn metric_catalog(
        &self,
        conn: &ConnectionConfig,
    ) -> Result<Arc<HashMap<String, Vec<String>>>, Error> {
        let (_, connection, _) = self.core.connection(conn)?;
        connection.metric_catalog().await
    }

    /// Every entity of `entity_type` the tenant of `conn` sees (`GET /api/<type>` with
    /// `X-Avi-Tenant`), with its realtime-metrics setting. Not cached: `doctor` reads it once.
    pub async fn inventory(
        &self,
        conn: &ConnectionConfig,
        entity_type: EntityType,
    ) -> Result<Vec<InventoryEntity>, Error> {
        let (_, connection, _) = self.core.connection(conn)?;
        connection.inventory(&conn.tenant, entity_type).await
    }

    /// Cumulative counters since the poller was created.
    pub fn stats(&self) -> PollerStats {
        self.core.stats.snapshot()
    }
}

type Connect<T> = Box<dyn Fn(&ConnectionKey) -> Result<T, Error> + Send + Sync>;

type EntryKey = Pair;
type EntryOutcome = Result<Arc<Answer>, Error>;
type BatchResult = Arc<HashMap<EntryKey, EntryOutcome>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BatchKey {
    conn: u64,
    tenant: String,
    entity_type: EntityType,
    realtime: bool,
    by: SelectorKind,
}

struct ConnSlot<T> {
    id: u64,
    conn: Arc<T>,
    /// Callers waiting on this connection now.
    waiting: Arc<AtomicUsize>,
}

/// One caller counted in a connection's `waiting` until it is dropped, answered or not.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// Counts a caller in, unless `limit` callers already wait.
    fn enter(count: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(count.clone()))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct Core<T: Transport> {
    settings: PollerSettings,
    stats: Arc<StatsHub>,
    connect: Connect<T>,
    connections: Mutex<HashMap<ConnectionKey, ConnSlot<T>>>,
    next_conn_id: AtomicU64,
    next_poll: AtomicU64,
    batches: Mutex<HashMap<BatchKey, BatchState<T>>>,
}

struct BatchState<T> {
    conn: Arc<T>,
    entries: HashMap<EntryKey, Entry>,
    pending: Option<PendingBatch>,
}

struct PendingBatch {
    tx: watch::Sender<Option<BatchResult>>,
    keys: Vec<EntryKey>,
}

enum EntryState {
    Idle,
    Pending(watch::Receiver<Option<BatchResult>>),
    Ready {
        outcome: EntryOutcome,
        /// When the batch that answered was sent.
        fetched: Instant,
        until: Instant,
    },
}

struct Entry {
    state: EntryState,
    /// The first ask of the latest tick in which the pair was asked for.
    last_ask: Instant,
    /// Time between the first asks of the last two ticks, once there were two.
    period: Option<Duration>,
    /// The latest ask.
    latest_ask: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            state: EntryState::Idle,
            last_ask: now,
            period: None,
            latest_ask: now,
        }
    }

    /// Records an ask; asks within `tick` of the last one belong to the same tick.
    fn asked(&mut self, now: Instant, tick: Duration) {
        self.latest_ask = now;
        let since = now.saturating_duration_since(self.last_ask);
        if since > tick {
            self.period = Some(since);
            self.last_ask = now;
        }
    }

    /// Whether the pair is expected to be asked for within half its period from `now`, so
    /// that a tick whose reconciles spread over up to half the period still costs one batch,
    /// and a batch late in a tick does not fetch again what was asked early in it.
    fn is_due(&self, now: Instant, tick: Duration, interest_ttl: Duration) -> bool {
        match self.period {
            Some(p) => now + p / 2 >= self.last_ask + p && !self.is_dead(now, tick, interest_ttl),
            None => now.saturating_duration_since(self.last_ask) <= interest_ttl,
        }
    }

    /// How long an answer serves asks: `tick`, or for a pair asked periodically three
    /// quarters of its period, so that every ask of one tick finds it however the tick's
    /// reconciles spread. (Each caller still bounds the age it accepts.)
    fn answer_ttl(&self, tick: Duration) -> Duration {
        self.period.map_or(tick, |p| tick.max(p * 3 / 4))
    }

    /// Whether the cached answer was fetched before the pair's latest ask, so that the ask of
    /// the pair's next tick, which takes only an answer of its own tick, cannot use it.
    fn is_answer_used(&self) -> bool {
        matches!(&self.state, EntryState::Ready { fetched, .. } if *fetched <= self.latest_ask)
            && self.period.is_some()
    }

    /// Whether the pair was not asked for two of its periods (or within `interest_ttl` when
    /// its period is unknown).
    fn is_dead(&self, now: Instant, tick: Duration, interest_ttl: Duration) -> bool {
        let since = now.saturating_duration_since(self.last_ask);
        match self.period {
            Some(p) => since > p * 2 + tick,
            None => since > interest_ttl,
        }
    }
}

enum Wait {
    Ready(EntryOutcome),
    Pending(watch::Receiver<Option<BatchResult>>, EntryKey),
}

impl<T: Transport> Core<T> {
    pub(crate) fn new(settings: PollerSettings, stats: Arc<StatsHub>, connect: Connect<T>) -> Self {
        Core {
            settings,
            stats,
            connect,
            connections: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(0),
            next_poll: AtomicU64::new(0),
            batches: Mutex::new(HashMap::new()),
        }
    }

    /// The shared connection for `conn` (its id, transport and waiting callers), created on
    /// first use; idle ones are dropped here.
    fn connection(
        &self,
        conn: &ConnectionConfig,
    ) -> Result<(u64, Arc<T>, Arc<AtomicUsize>), Error> {
        let key = ConnectionKey::from(conn);
        let mut conns = self.connections.lock().expect("connections lock poisoned");
        if let Some(slot) = conns.get(&key) {
            slot.conn.touch();
            return Ok((slot.id, slot.conn.clone(), slot.waiting.clone()));
        }
        let ttl = self.settings.idle_connection_ttl;
        let before = conns.len();
        conns.retain(|_, slot| slot.conn.idle_for() < ttl);
        if conns.len() < before {
            let live: Vec<u64> = conns.values().map(|s| s.id).collect();
            self.batches
                .lock()
                .expect("batches lock poisoned")
                .retain(|k, _| live.contains(&k.conn));
        }
        let t = (self.connect)(&key)?;
        t.touch();
        let id = self
            .next_conn_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::new(t);
        let waiting = Arc::new(AtomicUsize::new(0));
        conns.insert(
            key,
            ConnSlot {
                id,
                conn: conn.clone(),
                waiting: waiting.clone(),
            },
        );
        Ok((id, conn, waiting))
    }

    /// See [`Poller::forget_unused`].
    pub(crate) fn forget_unused(&self) {
        let now = Instant::now();
        let tick = self.settings.cache_ttl;
        let interest = self.settings.interest_ttl;
        let ttl = self.settings.idle_connection_ttl;
        let live: Vec<u64> = {
            let mut conns = self.connections.lock().expect("connections lock poisoned");
            conns.retain(|_, slot| slot.conn.idle_for() < ttl);
            conns.values().map(|s| s.id).collect()
        };
        self.batches
            .lock()
            .expect("batches lock poisoned")
            .retain(|k, state| {
                state.entries.retain(|_, e| {
                    matches!(e.state, EntryState::Pending(_)) || !e.is_dead(now, tick, interest)
                });
                // A batch on its way keeps its state: its callers wait for the answer.
                state.pending.is_some() || (live.contains(&k.conn) && !state.entries.is_empty())
            });
    }

    #[cfg(test)]
    fn batch_count(&self) -> usize {
        self.batches.lock().expect("batches lock poisoned").len()
    }

    /// `max_age`: how old a cached answer may be to serve this call.
    pub(crate) async fn fetch(
        self: &Arc<Self>,
        conn: &ConnectionConfig,
        queries: &[MetricQuery],
        max_age: Duration,
    ) -> Vec<Result<Sample, Error>> {
        self.fetch_until(conn, queries, max_age, Duration::MAX)
            .await
    }

    /// [`fetch`](Self::fetch); `deadline`: how long the caller may wait (further bounded by
    /// the connection's timeout times its endpoints).
    pub(crate) async fn fetch_until(
        self: &Arc<Self>,
        conn: &ConnectionConfig,
        queries: &[MetricQuery],
        max_age: Duration,
        deadline: Duration,
    ) -> Vec<Result<Sample, Error>> {
        StatsHub::add(&self.stats.queries, queries.len() as u64);
        let deadline = deadline.min(
            conn.timeout
                .saturating_mul(u32::try_from(conn.endpoints.len().max(1)).unwrap_or(u32::MAX))
                .saturating_add(self.settings.coalesce_window),
        );
        let (conn_id, transport, waiting) = match self.connection(conn) {
            Ok(c) => c,
            Err(e) => return queries.iter().map(|_| Err(e.clone())).collect(),
        };
        let now = Instant::now();
        let tick = self.settings.cache_ttl;
        let mut waits = Vec::with_capacity(queries.len());
        {
            let mut batches = self.batches.lock().expect("batches lock poisoned");
            for q in queries {
                let bkey = BatchKey {
                    conn: conn_id,
                    tenant: conn.tenant.clone(),
                    entity_type: q.entity_type,
                    realtime: q.realtime,
                    by: q.entity.kind(),
                };
                let state = batches.entry(bkey.clone()).or_insert_with(|| BatchState {
                    conn: transport.clone(),
                    entries: HashMap::new(),
                    pending: None,
                });
                let ekey = (q.entity.value().to_owned(), q.metric_id.clone());
                let entry = state
                    .entries
                    .entry(ekey.clone())
                    .or_insert_with(|| Entry::new(now));
                entry.asked(now, tick);
                let wait = match &entry.state {
                    EntryState::Ready {
                        outcome,
                        fetched,
                        until,
                    } if now < *until && now.saturating_duration_since(*fetched) <= max_age => {
                        StatsHub::add(&self.stats.cache_hits, 1);
                        Wait::Ready(outcome.clone())
                    }
                    // A closed channel means the batch task died; ask again.
                    EntryState::Pending(rx) if rx.has_changed().is_ok() => {
                        StatsHub::add(&self.stats.joined_in_flight, 1);
                        Wait::Pending(rx.clone(), ekey)
                    }
                    _ => {
                        StatsHub::add(&self.stats.batched, 1);
                        let pending = state.pending.get_or_insert_with(|| {
                            let (tx, _) = watch::channel(None);
                            tokio::spawn(self.clone().run_batch(bkey.clone()));
                            PendingBatch {
                                tx,
                                keys: Vec::new(),
                            }
                        });
                        pending.keys.push(ekey.clone());
                        let rx = pending.tx.subscribe();
                        // The entry was looked up above; re-borrow it to set its state.
                        if let Some(e) = state.entries.get_mut(&ekey) {
                            e.state = EntryState::Pending(rx.clone());
                        }
                        Wait::Pending(rx, ekey)
                    }
                };
                waits.push(wait);
            }
        }
        let must_wait = waits.iter().any(|w| matches!(w, Wait::Pending(..)));
        let _waiting = if must_wait {
            match Waiting::enter(&waiting, self.settings.max_waiting_per_connection) {
                Some(w) => Some(w),
                None => {
                    StatsHub::add(&self.stats.busy, 1);
                    let busy = busy(self.settings.max_waiting_per_connection);
                    return queries
                        .iter()
                        .zip(waits)
                        .map(|(q, w)| match w {
                            Wait::Ready(o) => o.and_then(|answer| read(&answer, q)),
                            Wait::Pending(..) => Err(busy.clone()),
                        })
                        .collect();
                }
            }
        } else {
            None
        };
        let until = Instant::now() + deadline.min(Duration::from_secs(86_400 * 365));
        let mut out = Vec::with_capacity(queries.len());
        for (q, wait) in queries.iter().zip(waits) {
            let outcome = match wait {
                Wait::Ready(o) => o,
                Wait::Pending(mut rx, key) => {
                    match tokio::time::timeout_at(until, rx.wait_for(Option::is_some)).await {
                        Ok(Ok(result)) => result
                            .as_ref()
                            .and_then(|r| r.get(&key).cloned())
                            .unwrap_or_else(|| Err(abandoned())),
                        Ok(Err(_)) => Err(abandoned()),
                        Err(_) => Err(late(deadline)),
                    }
                }
            };
            out.push(outcome.and_then(|answer| read(&answer, q)));
        }
        out
    }

    /// Waits for the coalescing window, then sends the batch of `bkey` with every due pair.
    async fn run_batch(self: Arc<Self>, bkey: BatchKey) {
        tokio::time::sleep(self.settings.coalesce_window).await;
        let now = Instant::now();
        let tick = self.settings.cache_ttl;
        let interest = self.settings.interest_ttl;
        let (conn, keys, tx) = {
            let mut batches = self.batches.lock().expect("batches lock poisoned");
            let Some(state) = batches.get_mut(&bkey) else {
                return;
            };
            let Some(pending) = state.pending.take() else {
                return;
            };
            let mut keys = pending.keys;
            let rx = pending.tx.subscribe();
            let mut prefetched = 0;
            state.entries.retain(|k, e| match &e.state {
                EntryState::Pending(r) if r.has_changed().is_ok() => true,
                EntryState::Ready { until, .. } if now < *until && !e.is_answer_used() => true,
                _ if !interest.is_zero() && e.is_due(now, tick, interest) => {
                    keys.push(k.clone());
                    e.state = EntryState::Pending(rx.clone());
                    prefetched += 1;
                    true
                }
                _ => !e.is_dead(now, tick, interest),
            });
            StatsHub::add(&self.stats.prefetched, prefetched);
            (state.conn.clone(), keys, pending.tx)
        };
        StatsHub::add(&self.stats.batches, 1);
        let fetched = Instant::now();
        let result: BatchResult = Arc::new(self.execute(&conn, &bkey, keys).await);
        let answered = Instant::now();
        let probe = tx.subscribe();
        {
            let mut batches = self.batches.lock().expect("batches lock poisoned");
            if let Some(state) = batches.get_mut(&bkey) {
                for (k, outcome) in result.iter() {
                    if let Some(e) = state.entries.get_mut(k)
                        && matches!(&e.state, EntryState::Pending(r) if r.same_channel(&probe))
                    {
                        e.state = EntryState::Ready {
                            outcome: outcome.clone(),
                            fetched,
                            until: answered + e.answer_ttl(tick),
                        };
                    }
                }
            }
        }
        let _ = tx.send(Some(result));
    }

    /// Sends the requests of one batch and works out every pair's outcome.
    async fn execute(
        &self,
        conn: &Arc<T>,
        bkey: &BatchKey,
        keys: Vec<EntryKey>,
    ) -> HashMap<EntryKey, EntryOutcome> {
        let entities: Vec<String> = keys
            .iter()
            .map(|k| k.0.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metrics: Vec<String> = keys
            .iter()
            .map(|k| k.1.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let base = MetricsRequest {
            poll: self
                .next_poll
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
            tenant: bkey.tenant.clone(),
            entity_type: bkey.entity_type,
            realtime: bkey.realtime,
            by: bkey.by,
            entities: Vec::new(),
            metric_ids: Vec::new(),
        };
        let fixed = conn.url_prefix_len(bkey.entity_type) + 1 + base.query().len();
        let enc_len = |s: &String| encode_list([s.as_str()]).len();
        let plan = plan_chunks(
            &entities.iter().map(enc_len).collect::<Vec<_>>(),
            &metrics.iter().map(enc_len).collect::<Vec<_>>(),
            fixed,
            self.settings.max_url_len,
            self.settings.max_entities_per_request.max(1),
        );
        let mut requests = Vec::new();
        for mrange in &plan.metric_groups {
            for erange in &plan.entity_chunks {
                let mut req = base.clone();
                req.entities = entities[erange.clone()].to_vec();
                req.metric_ids = metrics[mrange.clone()].to_vec();
                requests.push(req);
            }
        }
        let results: Vec<RequestOutcome> = futures::stream::iter(requests)
            .map(|req| fetch_split(conn.as_ref(), req))
            .buffer_unordered(self.settings.max_concurrent_requests.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        let mut by_pair: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, (req, _)) in results.iter().enumerate() {
            for e in &req.entities {
                for m in &req.metric_ids {
                    by_pair.insert((e.as_str(), m.as_str()), i);
                }
            }
        }

        let mut out = HashMap::with_capacity(keys.len());
        let mut to_diagnose: BTreeMap<EntryKey, Absent> = BTreeMap::new();
        for key in &keys {
            let Some(&i) = by_pair.get(&(key.0.as_str(), key.1.as_str())) else {
                out.insert(key.clone(), Err(abandoned()));
                continue;
            };
            let outcome = match &results[i].1 {
                Err(e) if e.status().is_some_and(|s| s.as_u16() == 400) => {
                    to_diagnose.insert(key.clone(), Absent::Refused(e.clone()));
                    continue;
                }
                Err(e) => Err(e.clone()),
                Ok(answer) => match answer.lookup(&key.0, &key.1, None) {
                    Lookup::Found(_) => Ok(answer.clone()),
                    Lookup::NoValueForEntity => Err(no_value(key)),
                    Lookup::EntityAbsent => {
                        to_diagnose.insert(key.clone(), Absent::Entity);
                        continue;
                    }
                    Lookup::MetricAbsent => {
                        to_diagnose.insert(key.clone(), Absent::Metric);
                        continue;
                    }
                },
            };
            out.insert(key.clone(), outcome);
        }
        drop(by_pair);
        let batch = absent::Batch {
            tenant: &bkey.tenant,
            entity_type: bkey.entity_type,
            by: bkey.by,
        };
        let explained = absent::explain(
            conn.as_ref(),
            &batch,
            to_diagnose,
            self.settings.max_lookups_per_batch,
            self.settings.max_concurrent_requests,
        )
        .await;
        out.extend(explained.into_iter().map(|(key, e)| (key, Err(e))));
        out
    }
}

fn read(answer: &Answer, q: &MetricQuery) -> Result<Sample, Error> {
    match answer.lookup(q.entity.value(), &q.metric_id, q.aggregation) {
        Lookup::Found(r) => r,
        // The batch classified absences already; an answer reaching here has the value.
        _ => Err(no_value(&(
            q.entity.value().to_owned(),
            q.metric_id.clone(),
        ))),
    }
}

fn late(deadline: Duration) -> Error {
    Error::new(Kind::Timeout).with_detail(format!(
        "timed out: no answer within the fetch's deadline of {:.1}s",
        deadline.as_secs_f64()
    ))
}

fn busy(limit: usize) -> Error {
    Error::new(Kind::Busy).with_detail(format!(
        "{limit} callers already wait on this controller; ask again shortly"
    ))
}

fn abandoned() -> Error {
    Error::new(Kind::BadResponse).with_detail("the request for this metric was abandoned")
}

#[cfg(test)]
mod tests;
