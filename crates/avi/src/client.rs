//! One connection to a controller: endpoints with failover, authentication, retries.
//!
//! Every request goes through [`Connection::get`], which owns the whole policy in one place:
//! it starts at the endpoint that last answered, moves to the next one on a connection error,
//! a timeout, a TLS failure or a 5xx, backs off (jittered, exponential, bounded) after a
//! full round of endpoints has failed, and gives up after [`PollerSettings::retries`] extra
//! rounds. With session auth it logs in once per endpoint and reuses the session; a 401 (or
//! 419) on a request invalidates that session and logs in again exactly once before the
//! request is retried; a refused login is remembered for
//! [`PollerSettings::login_retry_after`], so wrong credentials cost one login attempt per
//! poll, however many requests are waiting.
//!
//! Answers are read chunk by chunk and dropped, with their connection, as soon as they pass
//! [`PollerSettings::max_response_bytes`]: an endpoint streaming an endless body costs at most
//! that much memory. Each endpoint has a circuit breaker: after
//! [`PollerSettings::circuit_failures`] failures in a row it is not asked for
//! [`PollerSettings::circuit_open_for`]; then one request probes it, and closes the breaker if
//! it succeeds.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::{AuthMode, EntityType, k8s::jiff::Timestamp};
use bytes::{Bytes, BytesMut};
use reqwest::{StatusCode, header};
use tokio::time::Instant;
use url::Url;

use crate::{
    config::ConnectionKey,
    error::redacted,
    error::{Error, Kind},
    query::{Answer, EntitySelector},
    stats::{CircuitObserver, RequestEvent, RequestKind, StatsHub},
    tls,
    transport::{MetricsRequest, Transport, encode_list},
};

/// Settings shared by every connection of a poller (a subset of `PollerSettings`).
#[derive(Clone)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub login_retry_after: Duration,
    pub user_agent: String,
    /// The largest answer read, in bytes.
    pub max_response_bytes: usize,
    /// Failures in a row that open an endpoint's circuit breaker.
    pub circuit_failures: u32,
    /// How long an open breaker keeps requests away from its endpoint.
    pub circuit_open_for: Duration,
    /// Told when a breaker opens or closes.
    pub circuit_observer: Option<CircuitObserver>,
}

/// A successful (non-auth-failure, non-5xx) answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// The URL that answered (for error messages).
    pub url: Url,
}

/// A GET request to send to whichever endpoint answers.
#[derive(Debug)]
pub(crate) struct ApiRequest<'a> {
    pub kind: RequestKind,
    /// Path relative to the endpoint, for example `api/analytics/prometheus-metrics/pool`.
    pub path: &'a str,
    /// The encoded query string, without `?`.
    pub query: &'a str,
    /// `X-Avi-Tenant`, for the JSON APIs.
    pub tenant_header: Option<&'a str>,
    /// The batch this request belongs to (0: none). A login refused for a batch is not tried
    /// again for the same batch.
    pub poll: u64,
    /// The largest answer accepted, in bytes (at most the policy's `max_response_bytes`).
    pub max_bytes: usize,
}

/// A refused login: when, for which batch, and the error to repeat.
struct LoginFailure {
    at: Instant,
    poll: u64,
    error: Error,
}

#[derive(Clone)]
struct Session {
    cookie: header::HeaderValue,
    generation: u64,
}

#[derive(Default)]
struct SessionSlot {
    session: Option<Session>,
    generation: u64,
}

/// The circuit breaker of one endpoint.
#[derive(Default)]
struct Breaker {
    /// Failures in a row.
    failures: u32,
    /// While set and in the future, the endpoint is not asked.
    open_until: Option<Instant>,
    /// When the one request let through after `open_until` started (half-open).
    probe_since: Option<Instant>,
    /// The failure that opened the breaker, shown with the fast failures.
    last: Option<Error>,
}

/// Whether a request may go to an endpoint.
enum Admission {
    /// The breaker is closed, or this request is its probe.
    Send,
    /// The breaker is open: fail with this error without asking.
    Refuse(Error),
}

/// A connection to one controller (all its endpoints), shared by every tenant.
pub(crate) struct Connection {
    key: ConnectionKey,
    http: reqwest::Client,
    /// Endpoints with a path ending in `/`, so that joining a relative path keeps it.
    bases: Vec<Url>,
    preferred: AtomicUsize,
    sessions: Vec<tokio::sync::Mutex<SessionSlot>>,
    login_failure: Mutex<Option<LoginFailure>>,
    policy: RetryPolicy,
    stats: Arc<StatsHub>,
    jitter: RandomState,
    jitter_counter: AtomicU64,
    /// Milliseconds since `created` when the connection was last used (for eviction).
    last_used_ms: AtomicU64,
    created: Instant,
    catalog: tokio::sync::Mutex<Option<CachedCatalog>>,
    breakers: Vec<Mutex<Breaker>>,
}

impl Connection {
    pub(crate) fn new(
        key: ConnectionKey,
        policy: RetryPolicy,
        stats: Arc<StatsHub>,
    ) -> Result<Self, Error> {
        if key.endpoints.is_empty() {
            return Err(Error::new(Kind::Config).with_detail("no endpoint configured"));
        }
        let tls = tls::client_config(&key.tls)?;
        let mut builder = reqwest::Client::builder();
        for (host, addrs) in &key.pinned_addresses {
            let addrs: Vec<_> = addrs.iter().copied().collect();
            builder = builder.resolve_to_addrs(host, &addrs);
        }
        let http = builder
            .tls_backend_preconfigured(tls)
            .timeout(key.timeout)
            .connect_timeout(key.timeout)
            // A redirect would be followed with the credentials; Avi does not redirect its API.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(policy.user_agent.as_str())
            .build()
            .map_err(|e| Error::new(Kind::Config).with_source(e))?;
        let bases = key
            .endpoints
            .iter()
            .map(|u| {
                let mut u = u.clone();
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                u.set_query(None);
                u.set_fragment(None);
                u
            })
            .collect::<Vec<_>>();
        let sessions = bases.iter().map(|_| Default::default()).collect();
        let breakers = bases.iter().map(|_| Default::default()).collect();
        Ok(Connection {
            key,
            http,
            bases,
            preferred: AtomicUsize::new(0),
            sessions,
            login_failure: Mutex::new(None),
            policy,
            stats,
            jitter: RandomState::new(),
            jitter_counter: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(0),
            created: Instant::now(),
            catalog: tokio::sync::Mutex::new(None),
            breakers,
        })
    }

    pub(crate) fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_used_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Index of the endpoint that answered last (0 at the start).
    #[cfg(test)]
    pub(crate) fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed)
    }

    /// Sends `req`, failing over across endpoints and retrying with backoff.
    pub(crate) async fn get(&self, req: &ApiRequest<'_>) -> Result<Reply, Error> {
        let n = self.bases.len();
        let mut last: Option<Error> = None;
        for round in 0..=self.policy.retries {
            if round > 0 {
                tokio::time::sleep(self.backoff(round)).await;
            }
            let start = self.preferred.load(Ordering::Relaxed);
            let mut sent = false;
            for k in 0..n {
                let idx = (start + k) % n;
                if let Admission::Refuse(e) = self.admit(idx) {
                    last = Some(e);
                    continue;
                }
                sent = true;
                let result = self.get_on(idx, req).await;
                self.settle(idx, &result);
                match result {
                    Ok(reply) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        return Ok(reply);
                    }
                    Err(e) if e.is_failover() => {
                        tracing::debug!(
                            endpoint = %self.bases[idx],
                            error = &e as &dyn std::error::Error,
                            "Avi endpoint failed, trying the next one"
                        );
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            // TLS failures do not go away by waiting, and open breakers stay open longer than a
            // retry round waits.
            if !sent || !last.as_ref().is_some_and(Error::is_retryable) {
                break;
            }
        }
        Err(last.unwrap_or_else(|| Error::new(Kind::Config).with_detail("no endpoint configured")))
    }

    /// Whether a request may go to endpoint `idx` now (see [`Breaker`]).
    fn admit(&self, idx: usize) -> Admission {
        let mut b = self.breakers[idx].lock().expect("breaker lock poisoned");
        let Some(until) = b.open_until else {
            return Admission::Send;
        };
        let now = Instant::now();
        // A probe that never settled (its request was dropped) no longer holds the slot.
        let probing = b
            .probe_since
            .is_some_and(|since| now.saturating_duration_since(since) < self.key.timeout * 2);
        if now >= until && !probing {
            b.probe_since = Some(now);
            return Admission::Send;
        }
        let mut e = Error::new(Kind::Unreachable)
            .with_endpoint(&self.bases[idx])
            .with_detail(format!(
                "it failed {} times in a row and is not asked again before {}s have passed",
                b.failures,
                self.policy.circuit_open_for.as_secs_f64()
            ));
        if let Some(last) = &b.last {
            e = e.with_source(last.clone());
        }
        Admission::Refuse(e)
    }

    /// Records the outcome of a request to endpoint `idx` in its breaker.
    fn settle(&self, idx: usize, result: &Result<Reply, Error>) {
        let mut b = self.breakers[idx].lock().expect("breaker lock poisoned");
        let was_open = b.open_until.is_some();
        match result {
            Err(e) if e.is_failover() => {
                b.failures = b.failures.saturating_add(1);
                let probe_failed = b.probe_since.take().is_some();
                if probe_failed || b.failures >= self.policy.circuit_failures.max(1) {
                    b.open_until = Some(Instant::now() + self.policy.circuit_open_for);
                    b.last = Some(e.clone());
                }
            }
            // Any answer, even a refusal, shows the endpoint is there.
            _ => *b = Breaker::default(),
        }
        let is_open = b.open_until.is_some();
        drop(b);
        if was_open != is_open {
            self.report_circuit(idx, is_open);
        }
    }

    fn report_circuit(&self, idx: usize, open: bool) {
        if open {
            tracing::warn!(endpoint = %redacted(&self.key.endpoints[idx]), "Avi endpoint circuit opened");
        } else {
            tracing::info!(endpoint = %redacted(&self.key.endpoints[idx]), "Avi endpoint circuit closed");
        }
        if let Some(observer) = &self.policy.circuit_observer {
            observer(&redacted(&self.key.endpoints[idx]), open);
        }
    }

    /// Jittered exponential backoff before retry round `round` (>= 1): a random duration in
    /// [d/2, d] with d = backoff × 2^(round-1), capped at max_backoff.
    fn backoff(&self, round: u32) -> Duration {
        let d = self
            .policy
            .backoff
            .saturating_mul(1 << (round - 1).min(16))
            .min(self.policy.max_backoff);
        let r = self
            .jitter
            .hash_one(self.jitter_counter.fetch_add(1, Ordering::Relaxed));
        let frac = 0.5 + 0.5 * (r % 1_000_000) as f64 / 1_000_000.0;
        d.mul_f64(frac)
    }

    async fn get_on(&self, idx: usize, req: &ApiRequest<'_>) -> Result<Reply, Error> {
        let url = self.url(idx, req.path, Some(req.query))?;
        match self.key.auth_mode {
            AuthMode::Basic => self.send(idx, &url, req, None).await,
            AuthMode::Session => {
                let session = self.session(idx, req.poll).await?;
                match self.send(idx, &url, req, Some(&session)).await {
                    Err(e) if e.is_unauthorized() => {
                        // The session expired (or the controller restarted): log in again,
                        // once, and retry once. A second refusal is final for this request.
                        self.invalidate(idx, session.generation).await;
                        let session = self.session(idx, req.poll).await?;
                        self.send(idx, &url, req, Some(&session)).await
                    }
                    other => other,
                }
            }
        }
    }

    fn url(&self, idx: usize, path: &str, query: Option<&str>) -> Result<Url, Error> {
        let mut url = self.bases[idx].join(path).map_err(|e| {
            Error::new(Kind::Config)
                .with_endpoint(&self.bases[idx])
                .with_source(e)
        })?;
        url.set_query(query.filter(|q| !q.is_empty()));
        Ok(url)
    }

    async fn send(
        &self,
        idx: usize,
        url: &Url,
        req: &ApiRequest<'_>,
        session: Option<&Session>,
    ) -> Result<Reply, Error> {
        let mut rb = self.http.get(url.clone());
        if let Some(v) = &self.key.api_version {
            rb = rb.header("X-Avi-Version", v);
        }
        if let Some(t) = req.tenant_header {
            rb = rb.header("X-Avi-Tenant", t);
        }
        match session {
            Some(s) => rb = rb.header(header::COOKIE, s.cookie.clone()),
            None => {
                rb = rb.basic_auth(
                    self.key.credentials.username(),
                    Some(self.key.credentials.password()),
                )
            }
        }
        let started = Instant::now();
        let limit = req.max_bytes.min(self.policy.max_response_bytes);
        let result = read_reply(rb.send().await, url, limit).await;
        let result = result.and_then(|reply| match reply.status.as_u16() {
            401 | 419 => Err(status_error(Kind::Unauthorized, &reply)),
            403 => Err(status_error(Kind::Forbidden, &reply)),
            429 | 500..=599 => Err(status_error(Kind::ServerError, &reply)),
            _ => Ok(reply),
        });
        let outcome = match &result {
            Ok(r) if r.status.is_success() => ("ok", Some(r.status.as_u16())),
            Ok(r) => ("bad_response", Some(r.status.as_u16())),
            Err(e) => (e.category(), e.status().map(|s| s.as_u16())),
        };
        self.record(req.kind, idx, outcome, started);
        result
    }

    fn record(
        &self,
        kind: RequestKind,
        idx: usize,
        (outcome, status): (&'static str, Option<u16>),
        started: Instant,
    ) {
        self.stats.record(&RequestEvent {
            kind,
            endpoint: &self.key.endpoints[idx],
            outcome,
            status,
            duration: started.elapsed(),
        });
    }

    /// The session for endpoint `idx`, logging in if there is none. Concurrent callers wait
    /// for one login; a refused login is repeated, without asking the controller, for the
    /// rest of its batch and for `login_retry_after`.
    async fn session(&self, idx: usize, poll: u64) -> Result<Session, Error> {
        let mut slot = self.sessions[idx].lock().await;
        if let Some(s) = &slot.session {
            return Ok(s.clone());
        }
        if let Some(err) = self.remembered_login_failure(poll) {
            return Err(err);
        }
        match self.login(idx).await {
            Ok(cookie) => {
                slot.generation += 1;
                let s = Session {
                    cookie,
                    generation: slot.generation,
                };
                slot.session = Some(s.clone());
                *self.login_failure.lock().expect("lock poisoned") = None;
                Ok(s)
            }
            Err(e) => {
                if e.is_unauthorized() || e.is_forbidden() {
                    *self.login_failure.lock().expect("lock poisoned") = Some(LoginFailure {
                        at: Instant::now(),
                        poll,
                        error: e.clone(),
                    });
                }
                Err(e)
            }
        }
    }

    fn remembered_login_failure(&self, poll: u64) -> Option<Error> {
        let guard = self.login_failure.lock().expect("lock poisoned");
        match &*guard {
            Some(f)
                if (poll != 0 && f.poll == poll)
                    || f.at.elapsed() < self.policy.login_retry_after =>
            {
                Some(f.error.clone())
            }
            _ => None,
        }
    }

    /// Forgets session `generation` of endpoint `idx` (if it is still the current one: a
    /// concurrent request may already have replaced it).
    async fn invalidate(&self, idx: usize, generation: u64) {
        let mut slot = self.sessions[idx].lock().await;
        if slot.session.as_ref().map(|s| s.generation) == Some(generation) {
            slot.session = None;
        }
    }

    async fn login(&self, idx: usize) -> Result<header::HeaderValue, Error> {
        let url = self.url(idx, "login", None)?;
        let mut rb = self.http.post(url.clone()).form(&[
            ("username", self.key.credentials.username()),
            ("password", self.key.credentials.password()),
        ]);
        if let Some(v) = &self.key.api_version {
            rb = rb.header("X-Avi-Version", v);
        }
        let started = Instant::now();
        let response = rb.send().await;
        let result = match response {
            Err(e) => Err(Error::from_transport(e).with_endpoint(&url)),
            Ok(resp) => {
                let status = resp.status();
                let cookies: Vec<String> = resp
                    .headers()
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|v| v.split(';').next())
                    .map(|pair| pair.trim().to_owned())
                    .filter(|pair| pair.contains('='))
                    .collect();
                let reply = read_reply(Ok(resp), &url, self.policy.max_response_bytes).await;
                reply.and_then(|reply| match status.as_u16() {
                    200..=299 => {
                        if cookies.is_empty() {
                            return Err(Error::new(Kind::BadResponse)
                                .with_endpoint(&url)
                                .with_status(status)
                                .with_detail("the login answer set no session cookie"));
                        }
                        let mut value = header::HeaderValue::from_str(&cookies.join("; "))
                            .map_err(|e| {
                                Error::new(Kind::BadResponse)
                                    .with_endpoint(&url)
                                    .with_source(e)
                            })?;
                        value.set_sensitive(true);
                        Ok(value)
                    }
                    401 | 419 => Err(status_error(Kind::Unauthorized, &reply)),
                    403 => Err(status_error(Kind::Forbidden, &reply)),
                    429 | 500..=599 => Err(status_error(Kind::ServerError, &reply)),
                    _ => Err(status_error(Kind::BadResponse, &reply)),
                })
            }
        };
        let outcome = match &result {
            Ok(_) => ("ok", Some(200)),
            Err(e) => (e.category(), e.status().map(|s| s.as_u16())),
        };
        self.record(RequestKind::Login, idx, outcome, started);
        result
    }
}

impl Drop for Connection {
    /// A dropped connection (idle, or its Secret changed) no longer shows an open breaker.
    fn drop(&mut self) {
        for idx in 0..self.breakers.len() {
            let open = self.breakers[idx]
                .get_mut()
                .map(|b| b.open_until.is_some())
                .unwrap_or(false);
            if open {
                self.report_circuit(idx, false);
            }
        }
    }
}

/// Reads an answer of at most `limit` bytes, chunk by chunk. A larger one is dropped as soon
/// as it passes the limit (or at once when its `Content-Length` says so), which also closes
/// its connection: it is never held whole in memory.
async fn read_reply(
    response: Result<reqwest::Response, reqwest::Error>,
    url: &Url,
    limit: usize,
) -> Result<Reply, Error> {
    let mut resp = response.map_err(|e| Error::from_transport(e).with_endpoint(url))?;
    let status = resp.status();
    let too_large = || {
        Error::new(Kind::TooLarge)
            .with_endpoint(url)
            .with_status(status)
            .with_detail(format!("the answer is larger than {limit} bytes"))
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                // The connection broke (or stalled) while the body was read: a cut answer,
                // worth another try. No decompression is enabled, so it is never a decoding
                // problem.
                let timeout = Error::from_transport(e);
                let kind = if timeout.is_timeout() {
                    Kind::Timeout
                } else {
                    Kind::Unreachable
                };
                return Err(Error::new(kind)
                    .with_endpoint(url)
                    .with_status(status)
                    .with_detail("the connection broke while the answer was read")
                    .with_source(timeout));
            }
        }
    }
    Ok(Reply {
        status,
        body: body.freeze(),
        url: url.clone(),
    })
}

/// An error for an HTTP status, with the controller's own message when the body is an Avi
/// error: JSON with a string `error` or `detail`, or (from the login page only) a line of
/// plain text. Any other body is left out, so the error says only the status and the URL: a
/// connection pointed at some other service must not copy that service's answer into status
/// or Events.
pub(crate) fn status_error(kind: Kind, reply: &Reply) -> Error {
    let mut e = Error::new(kind)
        .with_endpoint(&reply.url)
        .with_status(reply.status);
    let login = reply.url.path().ends_with("/login");
    if let Some(msg) = avi_message(&reply.body, login) {
        e = e.with_detail(msg);
    }
    e
}

/// The controller's message in an error body, if the body is an Avi error. `login` allows the
/// login page's plain-text answers (Django's "CSRF token missing or incorrect.").
fn avi_message(body: &[u8], login: bool) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct AviError {
        error: Option<String>,
        detail: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<AviError>(body) {
        return e.error.or(e.detail).filter(|m| !m.trim().is_empty());
    }
    if !login {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let mut lines = text.lines();
    let first = lines.next()?.trim();
    // One short line of text, not a page: the login page answers refusals with a sentence.
    let one_line = lines.all(|l| l.trim().is_empty());
    (one_line && !first.is_empty() && !first.starts_with(['<', '{', '['])).then(|| first.to_owned())
}

/// The metric ids a controller offers, per entity type (`GET /api/analytics/metric_id`).
type Catalog = HashMap<String, Vec<String>>;
/// The catalog (or why it could not be read) and when.
type CachedCatalog = (Instant, Result<Arc<Catalog>, Error>);

/// How long the metric catalog is kept: it changes only with a controller upgrade.
const CATALOG_TTL: Duration = Duration::from_secs(3600);
/// How long a failed catalog read is remembered before it is tried again.
const CATALOG_RETRY: Duration = Duration::from_secs(60);
/// At most this many pages of the catalog are read (Avi pages collections).
const CATALOG_MAX_PAGES: usize = 20;
/// At most this many metric ids are kept from the catalog: Avi's catalog lists about a
/// thousand, so a hundred times that is no real controller's.
const MAX_CATALOG_METRICS: usize = 100_000;

impl Connection {
    async fn catalog(&self) -> Result<Arc<Catalog>, Error> {
        let mut cached = self.catalog.lock().await;
        if let Some((at, c)) = &*cached {
            let ttl = if c.is_ok() {
                CATALOG_TTL
            } else {
                CATALOG_RETRY
            };
            if at.elapsed() < ttl {
                return c.clone();
            }
        }
        let c = self.read_catalog().await.map(Arc::new);
        *cached = Some((Instant::now(), c.clone()));
        c
    }

    async fn read_catalog(&self) -> Result<Catalog, Error> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            results: Vec<MetricInfo>,
            #[serde(default)]
            next: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct MetricInfo {
            name: String,
            #[serde(default)]
            entity_types: Vec<String>,
        }
        let mut catalog = Catalog::new();
        let mut page = 1usize;
        // All pages together are held to the one answer limit.
        let mut budget = self.policy.max_response_bytes;
        loop {
            let query = format!("page_size=1000&page={page}");
            let reply: JsonReply<Page> = self
                .get_json(
                    &ApiRequest {
                        kind: RequestKind::MetricCatalog,
                        path: "api/analytics/metric_id",
                        query: &query,
                        tenant_header: None,
                        poll: 0,
                        max_bytes: budget,
                    },
                    "the metric catalog",
                )
                .await?;
            budget = budget.saturating_sub(reply.bytes);
            let parsed = reply.value;
            if catalog.len() + parsed.results.len() > MAX_CATALOG_METRICS {
                return Err(Error::new(Kind::TooLarge)
                    .with_endpoint(&reply.url)
                    .with_detail(format!(
                        "the metric catalog lists more than {MAX_CATALOG_METRICS} metrics"
                    )));
            }
            for m in parsed.results {
                catalog.insert(m.name, m.entity_types);
            }
            if parsed.next.is_none() || page >= CATALOG_MAX_PAGES {
                return Ok(catalog);
            }
            page += 1;
        }
    }
}

/// A JSON answer, parsed.
struct JsonReply<T> {
    value: T,
    /// The size of the body.
    bytes: usize,
    /// The URL that answered.
    url: Url,
}

impl Connection {
    /// GETs `request` and parses the answer as JSON; `what` names it in errors. Anything but a
    /// success, or JSON of another shape, is a `BadResponse`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        request: &ApiRequest<'_>,
        what: &str,
    ) -> Result<JsonReply<T>, Error> {
        let reply = self.get(request).await?;
        if !reply.status.is_success() {
            return Err(status_error(Kind::BadResponse, &reply));
        }
        let value = serde_json::from_slice(&reply.body).map_err(|e| {
            Error::new(Kind::BadResponse)
                .with_endpoint(&reply.url)
                .with_detail(format!("{what} is not the expected JSON"))
                .with_source(e)
        })?;
        Ok(JsonReply {
            value,
            bytes: reply.body.len(),
            url: reply.url,
        })
    }
}

/// What a probe of a controller found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerInfo {
    /// The controller's software version (`Version` of `GET /api/cluster/version`).
    pub version: String,
    /// The endpoint that answered, as configured.
    pub endpoint: String,
}

impl Connection {
    /// Logs in (session auth) and reads the controller's version, failing over like every
    /// request. `api/cluster/version` needs authentication (unlike `api/initial-data`, which
    /// carries the same version), so a refused password shows in Basic mode too.
    pub(crate) async fn probe(&self) -> Result<ControllerInfo, Error> {
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(rename = "Version")]
            version: String,
        }
        let parsed: Version = self
            .get_json(
                &ApiRequest {
                    kind: RequestKind::Version,
                    path: "api/cluster/version",
                    query: "",
                    tenant_header: None,
                    poll: 0,
                    max_bytes: usize::MAX,
                },
                "the controller version",
            )
            .await?
            .value;
        let endpoint = self
            .key
            .endpoints
            .get(self.preferred.load(Ordering::Relaxed))
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(ControllerInfo {
            version: parsed.version,
            endpoint,
        })
    }
}

/// An entity as the inventory lists it (`GET /api/<type>`): what `doctor` checks names and
/// settings against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryEntity {
    /// The entity's name.
    pub name: String,
    /// The entity's uuid.
    pub uuid: String,
    /// Whether realtime metrics are enabled on it (a pool's
    /// `analytics_policy.enable_realtime_metrics`, a virtual service's
    /// `analytics_policy.metrics_realtime_update.enabled`); `None` when the object has no such
    /// setting (service engines).
    pub realtime: Option<bool>,
}

/// At most this many inventory pages are read (Avi pages collections).
const INVENTORY_MAX_PAGES: usize = 50;

impl Connection {
    /// The metric catalog: the entity types each metric id is offered for (an empty list: all).
    pub(crate) async fn metric_catalog(&self) -> Result<Arc<Catalog>, Error> {
        self.catalog().await
    }

    /// Every entity of `entity_type` that `tenant` sees, read page by page.
    pub(crate) async fn inventory(
        &self,
        tenant: &str,
        entity_type: EntityType,
    ) -> Result<Vec<InventoryEntity>, Error> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            results: Vec<serde_json::Value>,
            #[serde(default)]
            next: Option<String>,
        }
        let path = format!("api/{}", entity_type.as_str());
        let mut out = Vec::new();
        let mut budget = self.policy.max_response_bytes;
        for page in 1..=INVENTORY_MAX_PAGES {
            let query = format!("page_size=200&page={page}");
            let reply: JsonReply<Page> = self
                .get_json(
                    &ApiRequest {
                        kind: RequestKind::Inventory,
                        path: &path,
                        query: &query,
                        tenant_header: Some(tenant),
                        poll: 0,
                        max_bytes: budget,
                    },
                    "the inventory answer",
                )
                .await?;
            budget = budget.saturating_sub(reply.bytes);
            let parsed = reply.value;
            out.extend(parsed.results.iter().map(inventory_entity));
            if parsed.next.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

/// The fields of an inventory object that `doctor` reads.
fn inventory_entity(v: &serde_json::Value) -> InventoryEntity {
    let text = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let policy = v.get("analytics_policy");
    let realtime = policy
        .and_then(|p| p.get("enable_realtime_metrics"))
        .or_else(|| policy.and_then(|p| p.pointer("/metrics_realtime_update/enabled")))
        .and_then(serde_json::Value::as_bool);
    InventoryEntity {
        name: text("name"),
        uuid: text("uuid"),
        realtime,
    }
}

impl Transport for Connection {
    async fn fetch_metrics(&self, req: &MetricsRequest) -> Result<Answer, Error> {
        let path = format!(
            "api/analytics/prometheus-metrics/{}",
            req.entity_type.as_str()
        );
        let query = req.query();
        let reply = self
            .get(&ApiRequest {
                kind: RequestKind::Metrics,
                path: &path,
                query: &query,
                tenant_header: None,
                poll: req.poll,
                max_bytes: usize::MAX,
            })
            .await?;
        if !reply.status.is_success() {
            return Err(status_error(Kind::BadResponse, &reply));
        }
        let text = std::str::from_utf8(&reply.body).map_err(|e| {
            Error::new(Kind::BadResponse)
                .with_endpoint(&reply.url)
                .with_detail("the answer is not UTF-8 text")
                .with_source(e)
        })?;
        Answer::parse(text, req.by, Timestamp::now()).map_err(|e| e.with_endpoint(&reply.url))
    }

    async fn entity_exists(
        &self,
        tenant: &str,
        entity_type: EntityType,
        entity: &EntitySelector,
    ) -> Result<bool, Error> {
        #[derive(serde::Deserialize)]
        struct Collection {
            #[serde(default)]
            count: Option<u64>,
            #[serde(default)]
            results: Vec<serde_json::Value>,
        }
        let (path, query) = match entity {
            EntitySelector::Name(name) => (
                format!("api/{}", entity_type.as_str()),
                format!("name={}&fields=uuid", encode_list([name.as_str()])),
            ),
            EntitySelector::Uuid(uuid) => (
                format!(
                    "api/{}/{}",
                    entity_type.as_str(),
                    encode_list([uuid.as_str()])
                ),
                "fields=uuid".to_owned(),
            ),
        };
        let reply = self
            .get(&ApiRequest {
                kind: RequestKind::Inventory,
                path: &path,
                query: &query,
                tenant_header: Some(tenant),
                poll: 0,
                max_bytes: usize::MAX,
            })
            .await?;
        match (reply.status.as_u16(), entity) {
            (404, EntitySelector::Uuid(_)) => Ok(false),
            (200, EntitySelector::Uuid(_)) => Ok(true),
            (200, EntitySelector::Name(_)) => {
                let c: Collection = serde_json::from_slice(&reply.body).map_err(|e| {
                    Error::new(Kind::BadResponse)
                        .with_endpoint(&reply.url)
                        .with_detail("the inventory answer is not the expected JSON")
                        .with_source(e)
                })?;
                Ok(c.count.unwrap_or(c.results.len() as u64) > 0)
            }
            _ => Err(status_error(Kind::BadResponse, &reply)),
        }
    }

    async fn metric_known(&self, entity_type: EntityType, metric_id: &str) -> Result<bool, Error> {
        let catalog = self.catalog().await?;
        Ok(catalog.get(metric_id).is_some_and(|types| {
            types.is_empty() || types.iter().any(|t| t == entity_type.as_str())
        }))
    }

    fn url_prefix_len(&self, entity_type: EntityType) -> usize {
        let path = "api/analytics/prometheus-metrics/".len() + entity_type.as_str().len();
        self.bases
            .iter()
            .map(|b| b.as_str().len())
            .max()
            .unwrap_or(0)
            + path
    }

    fn touch(&self) {
        Connection::touch(self)
    }

    fn idle_for(&self) -> Duration {
        Connection::idle_for(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avi_error_bodies_are_read() {
        assert_eq!(
            avi_message(br#"{"error": "Invalid credentials"}"#, false).as_deref(),
            Some("Invalid credentials")
        );
        assert_eq!(
            avi_message(
                br#"{"detail": "Authentication credentials were not provided."}"#,
                false
            )
            .as_deref(),
            Some("Authentication credentials were not provided.")
        );
        assert_eq!(
            avi_message(b"CSRF token missing or incorrect.\n", true).as_deref(),
            Some("CSRF token missing or incorrect.")
        );
        assert_eq!(avi_message(b"<html><body>502</body></html>", true), None);
        assert_eq!(avi_message(b"", false), None);
    }

    fn reply(url: &str, status: u16, body: &'static [u8]) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from_static(body),
            url: url.parse().unwrap(),
        }
    }

    #[test]
    fn other_services_bodies_never_reach_the_message() {
        let cases: [(&str, &[u8]); 5] = [
            (
                "https://10.0.0.5/api/analytics/metric_id",
                b"secret-token-123\n",
            ),
            (
                "https://10.0.0.5/api/analytics/metric_id",
                b"<html><title>secret-token-123</title></html>",
            ),
            (
                "https://10.0.0.5/api/analytics/metric_id",
                br#"{"token": "secret-token-123", "status": "ok"}"#,
            ),
            (
                "https://10.0.0.5/login",
                b"<!doctype html>\n<p>secret-token-123</p>",
            ),
            ("https://10.0.0.5/login", b"secret-token-123\nline two\n"),
        ];
        for (url, body) in cases {
            let e = status_error(Kind::BadResponse, &reply(url, 404, body));
            let text = format!("{e} {e:?}");
            assert!(!text.contains("secret-token-123"), "{text}");
            assert!(text.contains("HTTP 404"), "{text}");
            assert!(text.contains(url), "{text}");
        }
        let avi = status_error(
            Kind::Unauthorized,
            &reply(
                "https://10.0.0.5/login",
                401,
                br#"{"error": "Invalid credentials"}"#,
            ),
        );
        assert!(avi.to_string().ends_with(": Invalid credentials"), "{avi}");
    }

    #[test]
    fn backoff_is_jittered_and_bounded() {
        let key = ConnectionKey {
            endpoints: vec!["https://a.example".parse().unwrap()],
            auth_mode: AuthMode::Basic,
            credentials: crate::Credentials::new("u", "p"),
            api_version: None,
            tls: Default::default(),
            timeout: Duration::from_secs(1),
            pinned_addresses: Default::default(),
        };
        let policy = RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            login_retry_after: Duration::from_secs(5),
            user_agent: "avi-autoscaler-test".to_owned(),
            max_response_bytes: 1 << 20,
            circuit_failures: 3,
            circuit_open_for: Duration::from_secs(5),
            circuit_observer: None,
        };
        let c = Connection::new(key, policy, Arc::new(StatsHub::new(None))).unwrap();
        for _ in 0..100 {
            let b1 = c.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = c.backoff(3);
            assert!(b3 >= Duration::from_millis(150) && b3 <= Duration::from_millis(300));
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| c.backoff(2)).collect();
        assert!(distinct.len() > 1, "backoff is not jittered");
        assert_eq!(c.preferred(), 0);
    }
}
