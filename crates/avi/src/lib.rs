//! The Avi controller client of avi-autoscaler: it reads pool, virtual-service and
//! service-engine metrics from an Avi (NSX Advanced Load Balancer) controller for thousands of
//! autoscalers at a cost that grows with the number of controllers and tenants, not with the
//! number of autoscalers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), avi::Error> {
//! use std::time::Duration;
//! use avi::{ConnectionConfig, Credentials, EntitySelector, MetricQuery, Poller, PollerSettings, TlsConfig};
//!
//! let poller = Poller::new(PollerSettings::default()); // one per process, cheap to clone
//! let conn = ConnectionConfig {
//!     endpoints: vec!["https://avi-1.example.com".parse().unwrap()],
//!     auth_mode: api::AuthMode::Session,
//!     credentials: Credentials::new("admin", "secret"),
//!     tenant: "admin".into(),
//!     api_version: Some("22.1.3".into()),
//!     tls: TlsConfig::default(),
//!     timeout: Duration::from_secs(10),
//!     pinned_addresses: Default::default(),
//! };
//! let query = MetricQuery {
//!     entity_type: api::EntityType::Pool,
//!     entity: EntitySelector::Name("k8s--kuard.example.com_-ns-kuard".into()),
//!     metric_id: "l4_server.avg_open_conns".into(),
//!     aggregation: Some(api::Aggregation::Sum),
//!     realtime: false,
//! };
//! for result in poller.fetch(&conn, &[query]).await {
//!     match result {
//!         Ok(sample) => println!("{} over {} members", sample.value, sample.series),
//!         Err(e) => println!("{e} → condition reason {}", e.reason()),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Connections
//!
//! A [`ConnectionConfig`] comes from an AviAutoscaler's `spec.controller` and its Secret(s)
//! ([`ConnectionConfig::from_spec`]). Equal configurations (ignoring the tenant, which is a
//! per-request setting) share one reqwest client, its connection pool, and one session per
//! endpoint; a changed Secret is a different configuration, so it gets a fresh client and login.
//! A connection unused for [`PollerSettings::idle_connection_ttl`] is dropped.
//!
//! * **Failover.** Endpoints are tried in order, starting at the one that answered last: a
//!   connection error, a timeout, a TLS failure or a 5xx (or 429) moves to the next. After a
//!   round in which every endpoint failed with a connection error, timeout or 5xx, the client
//!   waits (exponential backoff from [`PollerSettings::backoff`], doubled each round, capped at
//!   [`PollerSettings::max_backoff`], with jitter: a random point in the upper half) and goes
//!   round again, at most [`PollerSettings::retries`] more times. TLS failures are not retried
//!   after a round: waiting does not fix a certificate. The healthy node is remembered, so a
//!   node that failed is tried again only when the one after it fails.
//! * **Session auth** (the default): `POST /login` (form-encoded) once per endpoint, then the
//!   session cookies on every request. A 401 (or 419) logs in again once and retries once;
//!   a second 401 is final for that request. Concurrent requests wait for one login. A refused
//!   login is repeated without asking the controller for the rest of its batch and for
//!   [`PollerSettings::login_retry_after`], so wrong credentials cost exactly one login
//!   attempt per poll, not one per request or autoscaler.
//! * **Basic auth**: `Authorization: Basic` on every request; a 401 is final.
//! * **Tenant**: the `tenant` query parameter on the Prometheus endpoint (what Avi documents
//!   for it), `X-Avi-Tenant` on the JSON APIs.
//! * **`X-Avi-Version`** on every request when set.
//! * **TLS**: rustls with the ring provider, configured here and handed to reqwest, verifying
//!   against the system roots (`rustls-native-certs`, read once per process) plus the optional
//!   CA bundle. `insecure_skip_verify` accepts any certificate (handshake signatures are still
//!   checked) and only when asked. Redirects are not followed, so credentials never go
//!   elsewhere.
//! * **Timeouts**: [`ConnectionConfig::timeout`] bounds each request: connecting, sending and
//!   reading the whole answer. A fetch as a whole gives up after the timeout times the number
//!   of endpoints, or the caller's own deadline ([`Poller::fetch_within_deadline`]) if shorter.
//! * **Limits**: an answer is read in chunks and dropped, with its connection, as soon as it
//!   passes [`PollerSettings::max_response_bytes`] (default 8 MiB); the parser refuses more
//!   lines, series or labels per line than a real controller sends. Either is
//!   [`Error::is_too_large`] (`AviResponseTooLarge`), counted as a failure of that endpoint,
//!   and nothing is read from part of an answer.
//! * **Circuit breakers**: after [`PollerSettings::circuit_failures`] failures in a row an
//!   endpoint is not asked for [`PollerSettings::circuit_open_for`]; requests fail over or
//!   fail at once as unreachable, without waiting on the network. Then one request probes it
//!   and closes the breaker if it gets an answer.
//! * **Isolation**: at most [`PollerSettings::max_waiting_per_connection`] callers wait on one
//!   connection; one more gets [`Error::is_busy`] at once, so a slow or dead controller holds
//!   only that share of the caller's workers.
//!
//! # Batching and the tick
//!
//! The operator requeues every AviAutoscaler at its polling interval, aligned to wall-clock
//! multiples of that interval, so all objects with the same interval reconcile in the same
//! moment and call [`Poller::fetch`] within a short spread. Each (entity, metric) pair of a
//! batch key (connection, tenant, entity type, realtime, name-or-uuid) is either answered
//! (less than [`PollerSettings::cache_ttl`] ago), on its way, or idle:
//!
//! 1. The first caller whose pair is idle opens a batch and waits
//!    [`PollerSettings::coalesce_window`] (50 ms) for others: every pair asked for meanwhile
//!    joins it.
//! 2. When the window closes, the batch also takes every pair that is *due*: asked in earlier
//!    ticks at a period that says it will be asked again within half a period, and not yet
//!    answered for that ask. So a tick costs
//!    ceil(pairs / [`PollerSettings::max_entities_per_request`]) requests even when the
//!    operator's reconciles trickle in over several seconds (its concurrency is limited), not
//!    one request per coalescing window.
//! 3. The batch becomes one request per chunk: comma lists of entity names (or ids) and metric
//!    ids, split only to stay under [`PollerSettings::max_url_len`] and
//!    `max_entities_per_request`. Callers asking while it is on its way wait for it
//!    (single-flight) instead of sending their own. Requests of a batch run
//!    [`PollerSettings::max_concurrent_requests`] at a time.
//! 4. Answers are cached for `cache_ttl`, or three quarters of the period of a pair asked
//!    periodically; asks within the tick are answered from the cache, errors included, so a
//!    failing controller is asked once per tick, not once per autoscaler.
//!
//! Each caller says how old an answer it takes ([`Poller::fetch_within`]); the operator passes
//! the time since its tick began (at most half its polling interval), so it never reads an
//! answer that was there at its previous poll, while every reconcile in the first half of a
//! tick shares that tick's batch however long the reconciles take: at 10,000 autoscalers they
//! spread over more than the 5 s of `cache_ttl`, and answers that expired after 5 s cost a
//! second and third round of batches. `cache_ttl` is the grouping of asks into ticks and the
//! cache time of pairs without a period: longer than the spread of one tick's asks of a pair
//! and shorter than the shortest polling interval in use. The default, 5 s, is Avi's realtime
//! bucket, and a third of the default 15 s interval. A pair not asked for two of its periods
//! (its autoscaler was deleted or changed) is forgotten; a pair asked only once is fetched
//! ahead for at most [`PollerSettings::interest_ttl`].
//!
//! If the controller refuses a batch with 400 (some controllers may refuse an unknown name
//! instead of ignoring it; Avi's behaviour is not documented), the batch is split in halves
//! until the offending pair stands alone, so one bad autoscaler cannot fail its neighbours.
//!
//! # Values
//!
//! Pools answer one series per member (label `server`); [`MetricQuery::aggregation`] combines
//! them: `Sum` (default) is the pool total, `Average` the mean per member, `Max` the busiest
//! member, and [`Sample::series`] is the member count. Virtual services and service engines
//! answer one series. A duplicate series is counted once (the newest by timestamp, else the
//! later line). A NaN or infinite member makes the whole value "no data": a total without one
//! member would look like a drop in load, and missing data must hold, never scale.
//! [`Sample::read_at`] is when the controller answered: Avi's samples carry no time of their
//! own.
//!
//! # The JSON APIs: only to explain an absence
//!
//! The Prometheus-text endpoint gives everything a value needs, batched (many entities and
//! metrics per request), so values always come from it. The JSON metrics API
//! (`/api/analytics/metrics/<type>/<uuid>`) would add the one thing the text lacks, the
//! bucket timestamp, but it takes one entity per request (cost growing with the number of
//! autoscalers); its batch form is a POST, which needs a CSRF token and `Referer` with session
//! auth; and how it aggregates a pool's members is undocumented. The scaling engine's
//! freshness rule works from the read time and value changes instead, so the timestamp is not
//! worth that cost.
//!
//! What the text cannot say is *why* a pair is absent: an unknown entity, an unknown metric,
//! and an entity that has no value now (a pool without members, realtime metrics not enabled)
//! all look the same. So when a pair is absent, and only then, the poller asks the JSON APIs,
//! at most [`PollerSettings::max_lookups_per_batch`] times per batch:
//! `GET /api/analytics/metric_id` (the catalog Avi's docs point to for valid ids, read once an
//! hour per connection) says whether the metric id exists for the entity type, and
//! `GET /api/<type>?name=<name>` (or `/api/<type>/<uuid>`) with `X-Avi-Tenant` whether the
//! entity exists. The result is [`Error::is_unknown_metric`], [`Error::is_unknown_entity`] or
//! [`Error::is_no_data`]; an absent value is never read as zero. If a lookup itself fails, the
//! pair reports no data.
//!
//! `avi-autoscaler doctor` reads the same APIs directly, once per run, to say what is wrong
//! with a spec: [`Poller::metric_catalog`] and [`Poller::inventory`] (every entity of a type in
//! the tenant, page by page, with its realtime-metrics setting). The operator never calls them.
//!
//! # The Prometheus text parser: our own, measured
//!
//! [`prometheus`] is a line-based parser written for this crate. It was chosen over
//! `prometheus-parse` (the most used parser crate) on correctness first, then speed:
//!
//! * Correctness (`tests/parser_comparison.rs` runs both on the same inputs):
//!   `prometheus-parse` keeps the space of Avi's `", "` label separator in label names, so
//!   `name` and `server` are not found on real Avi output; it silently drops lines it cannot
//!   read, so an answer cut by a broken connection reads as a pool with fewer members (a lower
//!   sum) instead of an error; it does not unescape label values; it drops `name{} value`
//!   samples; it accepts junk after the timestamp and duplicate label names. Ours handles every
//!   case the format defines (HELP/TYPE/comments, escapes, NaN, ±Inf, exponents, optional
//!   timestamps, CRLF, blank lines, `,` or `, `, a trailing comma, non-contiguous families,
//!   duplicates) and names the line of any error.
//! * Speed: `benches/parser.rs` (`make bench`) runs both parsers in the same run on a 50-pool,
//!   4-member, 10-metric answer, and ours is several times faster. It borrows from the input
//!   and unescapes only on demand; `prometheus-parse` runs regexes and allocates a
//!   `HashMap<String, String>` of labels per line.
//! * Robustness: a cargo-fuzz target (`fuzz/`) feeds it arbitrary input, and a property test
//!   checks that any sample written in the format parses back exactly.
//!
//! # Errors
//!
//! [`Error`] is opaque, with predicates for each kind and [`Error::reason`] giving the
//! AviAutoscaler condition reason: `AviAuthFailed` (401 after a fresh login, 403),
//! `AviTLSError` (a failed TLS handshake, told by the rustls error in the source chain),
//! `AviUnreachable` (connection, timeout, 5xx on every endpoint, an open circuit breaker),
//! `AviResponseTooLarge` (an answer over a limit), `FailedGetAviMetric` (unknown entity or
//! metric, no data, malformed answer) and `InvalidSpec` (unusable connection settings). Passwords, session cookies and `Authorization` headers never appear
//! in `Display` or `Debug` output; endpoints are shown without user info or query.
//!
//! # Observing
//!
//! [`Poller::stats`] gives cumulative counters (requests by kind and outcome, queries by how
//! they were answered); [`PollerSettings::observer`] is called once per HTTP request with its
//! kind, endpoint, outcome, status and duration, for latency histograms.
#![warn(missing_docs)]

mod absent;
mod client;
mod config;
mod error;
mod plan;
mod poller;
pub mod prometheus;
mod query;
mod stats;
mod tls;
mod transport;

pub use client::{ControllerInfo, InventoryEntity};
pub use config::{ConnectionConfig, Credentials, TlsConfig};
pub use error::Error;
pub use poller::{Poller, PollerSettings};
pub use query::{EntitySelector, MetricQuery, Sample};
pub use stats::{CircuitObserver, PollerStats, RequestEvent, RequestKind, RequestObserver};
