//! Counters for the operator's `/metrics`, and a hook for request latencies.
//!
//! [`Poller::stats`](crate::Poller::stats) returns cumulative counters (requests by kind and
//! outcome, queries by how they were answered). For latency histograms, set
//! [`PollerSettings::observer`](crate::PollerSettings::observer): it is called once per HTTP
//! request with its kind, endpoint, outcome and duration, so the operator can feed
//! prometheus-client directly without this crate depending on it.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use url::Url;

/// What an HTTP request to the controller was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// `POST /login` (session auth).
    Login,
    /// `GET /api/analytics/prometheus-metrics/<type>`.
    Metrics,
    /// `GET /api/<type>?name=…` or `/api/<type>/<uuid>`: does an entity that answered nothing
    /// exist?
    Inventory,
    /// `GET /api/analytics/metric_id`: which metric ids does the controller offer?
    MetricCatalog,
    /// `GET /api/cluster/version`: the probe of a shared controller connection.
    Version,
}

impl RequestKind {
    /// A fixed label value: `login`, `metrics`, `inventory`, `metric_catalog` or `version`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Login => "login",
            RequestKind::Metrics => "metrics",
            RequestKind::Inventory => "inventory",
            RequestKind::MetricCatalog => "metric_catalog",
            RequestKind::Version => "version",
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished HTTP request, as given to the observer.
#[derive(Clone, Debug)]
pub struct RequestEvent<'a> {
    /// What it was for.
    pub kind: RequestKind,
    /// The endpoint it went to, as configured.
    pub endpoint: &'a Url,
    /// `ok`, `bad_response` (an unexpected status), or an [`Error::category`](crate::Error::category).
    pub outcome: &'static str,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// From sending the request to reading the whole answer.
    pub duration: Duration,
}

/// A callback for every HTTP request (see the module docs).
pub type RequestObserver = Arc<dyn Fn(&RequestEvent<'_>) + Send + Sync>;

/// A callback for every change of an endpoint's circuit breaker: the endpoint (without user
/// info or query) and whether the breaker is now open (see [`PollerSettings::circuit_failures`](crate::PollerSettings::circuit_failures)).
pub type CircuitObserver = Arc<dyn Fn(&Url, bool) + Send + Sync>;

/// Cumulative counters of a poller since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollerStats {
    /// HTTP requests by kind and outcome.
    pub requests: BTreeMap<(RequestKind, &'static str), u64>,
    /// Queries passed to `fetch`.
    pub queries: u64,
    /// Queries answered from the cache of the current tick.
    pub cache_hits: u64,
    /// Queries that waited for a request already on its way (single-flight).
    pub joined_in_flight: u64,
    /// Queries that started or joined a new batch.
    pub batched: u64,
    /// (entity, metric) pairs fetched ahead because they were asked in earlier ticks.
    pub prefetched: u64,
    /// Batches sent (each is one or more requests).
    pub batches: u64,
    /// Calls turned away because too many callers already waited on their connection.
    pub busy: u64,
}

impl PollerStats {
    /// Requests of `kind` with `outcome`.
    pub fn requests(&self, kind: RequestKind, outcome: &str) -> u64 {
        self.requests
            .iter()
            .filter(|((k, o), _)| *k == kind && *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests of `kind`, whatever their outcome.
    pub fn total_requests(&self, kind: RequestKind) -> u64 {
        self.requests
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Where connections and the poller record what they do.
pub(crate) struct StatsHub {
    observer: Option<RequestObserver>,
    requests: Mutex<BTreeMap<(RequestKind, &'static str), u64>>,
    pub queries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub joined_in_flight: AtomicU64,
    pub batched: AtomicU64,
    pub prefetched: AtomicU64,
    pub batches: AtomicU64,
    pub busy: AtomicU64,
}

impl StatsHub {
    pub(crate) fn new(observer: Option<RequestObserver>) -> Self {
        StatsHub {
            observer,
            requests: Mutex::new(BTreeMap::new()),
            queries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            joined_in_flight: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            prefetched: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, event: &RequestEvent<'_>) {
        *self
            .requests
            .lock()
            .expect("stats lock poisoned")
            .entry((event.kind, event.outcome))
            .or_default() += 1;
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PollerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PollerStats {
            requests: self.requests.lock().expect("stats lock poisoned").clone(),
            queries: get(&self.queries),
            cache_hits: get(&self.cache_hits),
            joined_in_flight: get(&self.joined_in_flight),
            batched: get(&self.batched),
            prefetched: get(&self.prefetched),
            batches: get(&self.batches),
            busy: get(&self.busy),
        }
    }
}
