//! Request counters per endpoint, so tests and benchmarks can prove how many calls a client
//! makes.
//!
//! An endpoint is the method and the path with identifiers taken out:
//! `GET /api/analytics/prometheus-metrics/pool`, `GET /api/analytics/metrics/pool/{uuid}`,
//! `GET /api/pool`, `GET /api/pool/{uuid}`, `POST /login`. Trailing slashes do not matter.
//! Admin requests (`/_sim/…`) are not counted. Requests are also counted by their User-Agent,
//! so that a test can prove which client made them.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts for one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCount {
    /// Requests received (faulted ones included).
    pub requests: u64,
    /// Responses sent, by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no complete response (hang, reset, connection closed).
    pub aborted: u64,
}

/// A snapshot of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Every request, by endpoint.
    pub endpoints: BTreeMap<String, EndpointCount>,
    /// The same, per node (listener index).
    pub nodes: Vec<BTreeMap<String, EndpointCount>>,
    /// Every request, by its `User-Agent` header (empty when absent or not text).
    pub user_agents: BTreeMap<String, u64>,
}

impl Counters {
    /// Requests to `endpoint` (for example `GET /api/analytics/prometheus-metrics/pool`).
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.endpoints.get(endpoint).map_or(0, |c| c.requests)
    }

    /// Responses with `status` from `endpoint`.
    pub fn responses(&self, endpoint: &str, status: u16) -> u64 {
        self.endpoints
            .get(endpoint)
            .and_then(|c| c.by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to every endpoint.
    pub fn total(&self) -> u64 {
        self.endpoints.values().map(|c| c.requests).sum()
    }

    /// Requests to `endpoint` on node `node`.
    pub fn node_requests(&self, node: usize, endpoint: &str) -> u64 {
        self.nodes
            .get(node)
            .and_then(|m| m.get(endpoint))
            .map_or(0, |c| c.requests)
    }
}

/// The live counters.
#[derive(Debug)]
pub(crate) struct CounterBook {
    counters: Counters,
}

impl CounterBook {
    pub fn new(nodes: usize) -> Self {
        Self {
            counters: Counters {
                endpoints: BTreeMap::new(),
                nodes: vec![BTreeMap::new(); nodes],
                user_agents: BTreeMap::new(),
            },
        }
    }

    fn both(&mut self, node: usize, endpoint: &str, f: impl Fn(&mut EndpointCount)) {
        f(self
            .counters
            .endpoints
            .entry(endpoint.to_string())
            .or_default());
        if let Some(m) = self.counters.nodes.get_mut(node) {
            f(m.entry(endpoint.to_string()).or_default());
        }
    }

    pub fn request(&mut self, node: usize, endpoint: &str, user_agent: &str) {
        self.both(node, endpoint, |c| c.requests += 1);
        *self
            .counters
            .user_agents
            .entry(user_agent.to_owned())
            .or_default() += 1;
    }

    pub fn response(&mut self, node: usize, endpoint: &str, status: u16) {
        self.both(node, endpoint, |c| {
            *c.by_status.entry(status).or_default() += 1
        });
    }

    pub fn aborted(&mut self, node: usize, endpoint: &str) {
        self.both(node, endpoint, |c| c.aborted += 1);
    }

    pub fn snapshot(&self) -> Counters {
        self.counters.clone()
    }

    pub fn reset(&mut self) {
        let nodes = self.counters.nodes.len();
        *self = Self::new(nodes);
    }
}

/// The endpoint a request counts under.
pub(crate) fn endpoint_key(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let normalized = match segments.as_slice() {
        ["api", "analytics", "metrics", kind, _uuid, ..] if *kind != "collection" => {
            format!("/api/analytics/metrics/{kind}/{{uuid}}")
        }
        [
            "api",
            kind @ ("pool" | "virtualservice" | "serviceengine" | "tenant"),
            _uuid,
        ] => {
            format!("/api/{kind}/{{uuid}}")
        }
        [] => "/".to_string(),
        _ => format!("/{}", segments.join("/")),
    };
    format!("{method} {normalized}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_slashes_are_folded() {
        assert_eq!(
            endpoint_key("GET", "/api/analytics/prometheus-metrics/pool/"),
            "GET /api/analytics/prometheus-metrics/pool"
        );
        assert_eq!(
            endpoint_key("GET", "/api/analytics/metrics/pool/pool-1234/"),
            "GET /api/analytics/metrics/pool/{uuid}"
        );
        assert_eq!(
            endpoint_key("GET", "/api/pool/pool-1"),
            "GET /api/pool/{uuid}"
        );
        assert_eq!(endpoint_key("GET", "/api/pool"), "GET /api/pool");
        assert_eq!(endpoint_key("POST", "/login"), "POST /login");
    }

    #[test]
    fn counts_per_endpoint_status_and_node() {
        let mut book = CounterBook::new(2);
        book.request(1, "GET /api/pool", "avi-autoscaler/0.1.0 (abc)");
        book.response(1, "GET /api/pool", 200);
        book.request(0, "GET /api/pool", "");
        book.aborted(0, "GET /api/pool");
        let c = book.snapshot();
        assert_eq!(c.requests("GET /api/pool"), 2);
        assert_eq!(c.responses("GET /api/pool", 200), 1);
        assert_eq!(c.node_requests(1, "GET /api/pool"), 1);
        assert_eq!(c.endpoints["GET /api/pool"].aborted, 1);
        assert_eq!(c.total(), 2);
        assert_eq!(
            c.user_agents,
            BTreeMap::from([
                (String::new(), 1),
                ("avi-autoscaler/0.1.0 (abc)".to_owned(), 1)
            ])
        );
        book.reset();
        assert_eq!(book.snapshot().total(), 0);
        assert_eq!(book.snapshot().nodes.len(), 2);
    }
}
