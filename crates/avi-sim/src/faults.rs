//! Fault injection: what can go wrong, when, and for which requests.
//!
//! A fault is data ([`FaultSpec`]): it comes from the scenario file, a `--fault` flag, the
//! admin endpoint `POST /_sim/faults` or [`crate::SimHandle::add_fault`]. Request faults
//! (errors, latency, hangs, broken bodies, empty results) apply to the next `count` matching
//! requests or for `durationSeconds` of simulated time; event faults (session expiry, a node
//! going down or up) happen once, when they become due.

use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// Answer with an HTTP error (`status`, default 503) and `{"error": message}`.
    Error,
    /// Wait `delayMs` before handling the request normally.
    Latency,
    /// Never answer: hold the request for `delayMs` (default one hour, or until the node goes
    /// down or the simulator stops), then close the connection without a response.
    Hang,
    /// Answer with a syntactically broken body (status and headers as usual).
    Malformed,
    /// Answer with the first half of the body only (`Content-Length` matches what is sent).
    Truncated,
    /// Send the headers and half the body, then abort the connection.
    Reset,
    /// Answer metric and inventory requests with an empty result.
    Empty,
    /// Answer as usual, then keep streaming comment lines until the body is `bytes` long
    /// (default 1 GiB), chunked, without a `Content-Length`. The padding is one shared chunk
    /// sent again and again, so the simulator itself allocates almost nothing.
    HugeBody,
    /// Expire every session (event).
    ExpireSessions,
    /// Take `node` down: its listener refuses connections and open connections are cut (event).
    /// With `durationSeconds` the node comes back up after that much simulated time.
    NodeDown,
    /// Bring `node` back up (event).
    NodeUp,
}

impl FaultKind {
    /// Whether the fault happens once rather than applying to requests.
    pub fn is_event(self) -> bool {
        matches!(self, Self::ExpireSessions | Self::NodeDown | Self::NodeUp)
    }
}

/// One fault, as written in a scenario, a `--fault` flag or an admin request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// What happens.
    pub kind: FaultKind,
    /// Simulated seconds since the start when the fault becomes active (default: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
    /// How many matching requests it applies to (default 1, unless `durationSeconds` is set,
    /// in which case every matching request until it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// How long (simulated seconds) it stays active after `at`. For `nodeDown`: when the node
    /// comes back up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Only requests whose path starts with this (default: every controller API request,
    /// `/login` and `/logout` included; admin requests under `/_sim/` never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only requests to this node (listener index, 0-based). Required for `nodeDown`/`nodeUp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// `error`: the HTTP status (400-599, default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `error`: the message in `{"error": …}` (default the status's reason phrase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `latency`: the added delay (required); `hang`: how long to hold before closing
    /// (default 3 600 000). Real milliseconds, not simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `hugeBody`: the length of the whole body in bytes (default 1 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// Default time a hang holds a request: far past any client timeout.
pub const DEFAULT_HANG_MS: u64 = 3_600_000;

/// Default length of a `hugeBody` answer: 1 GiB, more than any operator's memory limit.
pub const DEFAULT_HUGE_BODY_BYTES: u64 = 1 << 30;

impl FaultSpec {
    /// A fault of `kind` with every option at its default.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            at: None,
            count: None,
            duration_seconds: None,
            path: None,
            node: None,
            status: None,
            message: None,
            delay_ms: None,
            bytes: None,
        }
    }

    /// `error` with `status` for the next `count` requests.
    pub fn error(status: u16, count: u64) -> Self {
        Self {
            status: Some(status),
            count: Some(count),
            ..Self::new(FaultKind::Error)
        }
    }

    /// Restricts the fault to paths starting with `prefix`.
    pub fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.path = Some(prefix.into());
        self
    }

    /// Restricts the fault to one node.
    pub fn on_node(mut self, node: usize) -> Self {
        self.node = Some(node);
        self
    }

    /// Sets how many requests it applies to.
    pub fn times(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Sets the delay (latency, hang).
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Sets the body length (huge body).
    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    /// Checks the fields that only some kinds take; `nodes` is the number of listeners, if
    /// known. The error names the field.
    pub fn validate(&self, nodes: Option<usize>) -> Result<(), (String, String)> {
        let bad = |field: &str, msg: String| Err((field.to_string(), msg));
        if let Some(at) = self.at
            && !(at.is_finite())
        {
            return bad(
                "at",
                format!("must be a finite number of seconds, got {at}"),
            );
        }
        if let Some(d) = self.duration_seconds
            && !(d.is_finite() && d > 0.0)
        {
            return bad("durationSeconds", format!("must be > 0, got {d}"));
        }
        if self.count == Some(0) {
            return bad("count", "must be at least 1".into());
        }
        if let Some(status) = self.status {
            if self.kind != FaultKind::Error {
                return bad("status", "only an `error` fault takes a status".into());
            }
            if !(400..=599).contains(&status) {
                return bad("status", format!("must be 400-599, got {status}"));
            }
        }
        if self.message.is_some() && self.kind != FaultKind::Error {
            return bad("message", "only an `error` fault takes a message".into());
        }
        match self.kind {
            FaultKind::Latency if self.delay_ms.is_none() => {
                return bad("delayMs", "a `latency` fault needs delayMs".into());
            }
            FaultKind::Latency | FaultKind::Hang => {}
            _ if self.delay_ms.is_some() => {
                return bad(
                    "delayMs",
                    "only `latency` and `hang` faults take delayMs".into(),
                );
            }
            _ => {}
        }
        if self.bytes.is_some() && self.kind != FaultKind::HugeBody {
            return bad("bytes", "only a `hugeBody` fault takes bytes".into());
        }
        if let Some(p) = &self.path
            && !p.starts_with('/')
        {
            return bad("path", format!("must start with '/', got {p:?}"));
        }
        match self.kind {
            FaultKind::NodeDown | FaultKind::NodeUp => {
                let Some(node) = self.node else {
                    return bad("node", "a node event needs the node index".into());
                };
                if let Some(n) = nodes
                    && node >= n
                {
                    return bad(
                        "node",
                        format!("no node {node}: there are {n} (indices from 0)"),
                    );
                }
                if self.kind == FaultKind::NodeUp && self.duration_seconds.is_some() {
                    return bad("durationSeconds", "`nodeUp` takes no duration".into());
                }
                if self.count.is_some() || self.path.is_some() {
                    return bad(
                        "count",
                        "node events apply to the node, not to requests".into(),
                    );
                }
            }
            FaultKind::ExpireSessions => {
                if self.count.is_some() || self.path.is_some() || self.duration_seconds.is_some() {
                    return bad(
                        "kind",
                        "`expireSessions` happens once and takes no count, path or duration".into(),
                    );
                }
            }
            _ => {
                if let Some(node) = self.node
                    && let Some(n) = nodes
                    && node >= n
                {
                    return bad(
                        "node",
                        format!("no node {node}: there are {n} (indices from 0)"),
                    );
                }
            }
        }
        Ok(())
    }
}

/// An installed fault and how much of it is left.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFault {
    /// Its id (for `DELETE /_sim/faults/{id}`).
    pub id: u64,
    /// The fault as given.
    pub spec: FaultSpec,
    /// Simulated seconds since the start when it becomes (or became) active.
    pub active_from: f64,
    /// Simulated seconds since the start when it ends, if it has a duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_until: Option<f64>,
    /// Requests it still applies to (`None`: every matching request until it ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Requests it has applied to so far.
    pub applied: u64,
}

/// The faults a request meets, taken from the book when it arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Triggered {
    pub error: Option<(u16, String)>,
    pub latency_ms: u64,
    pub hang_ms: Option<u64>,
    pub malformed: bool,
    pub truncated: bool,
    pub reset: bool,
    pub empty: bool,
    /// The length to pad the body to.
    pub huge_body: Option<u64>,
}

/// Installed faults, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    next_id: u64,
    faults: Vec<ActiveFault>,
    /// Event faults not yet due, with their ids.
    events: Vec<ActiveFault>,
}

/// An event that became due.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DueEvent {
    ExpireSessions,
    NodeDown(usize),
    NodeUp(usize),
}

impl FaultBook {
    /// Installs a validated fault at simulated time `now`; returns its id.
    pub fn add(&mut self, spec: FaultSpec, now: f64) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let active_from = spec.at.unwrap_or(now);
        let active_until = spec.duration_seconds.map(|d| active_from + d);
        let remaining = match (spec.count, spec.duration_seconds) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(1),
        };
        let fault = ActiveFault {
            id,
            spec,
            active_from,
            active_until,
            remaining,
            applied: 0,
        };
        if fault.spec.kind.is_event() {
            self.events.push(fault);
        } else {
            self.faults.push(fault);
        }
        id
    }

    /// Every fault and pending event.
    pub fn list(&self, now: f64) -> Vec<ActiveFault> {
        let mut all: Vec<ActiveFault> = self
            .faults
            .iter()
            .chain(&self.events)
            .filter(|f| !is_spent(f, now))
            .cloned()
            .collect();
        all.sort_by_key(|f| f.id);
        all
    }

    /// Removes one fault; `false` if there was none with that id.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.faults.len() + self.events.len();
        self.faults.retain(|f| f.id != id);
        self.events.retain(|f| f.id != id);
        before != self.faults.len() + self.events.len()
    }

    /// Removes every fault and pending event.
    pub fn clear(&mut self) {
        self.faults.clear();
        self.events.clear();
    }

    /// Takes the events due at `now`, in time order. A `nodeDown` with a duration leaves a
    /// `nodeUp` behind for when it ends.
    pub fn take_due_events(&mut self, now: f64) -> Vec<DueEvent> {
        let mut due: Vec<ActiveFault> = Vec::new();
        let mut i = 0;
        while i < self.events.len() {
            if self.events[i].active_from <= now {
                due.push(self.events.remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by(|a, b| {
            a.active_from
                .total_cmp(&b.active_from)
                .then(a.id.cmp(&b.id))
        });
        let mut out = Vec::new();
        for f in due {
            match f.spec.kind {
                FaultKind::ExpireSessions => out.push(DueEvent::ExpireSessions),
                FaultKind::NodeDown => {
                    let node = f.spec.node.unwrap_or(0);
                    out.push(DueEvent::NodeDown(node));
                    if let Some(until) = f.active_until {
                        let mut up = FaultSpec::new(FaultKind::NodeUp);
                        up.node = Some(node);
                        up.at = Some(until);
                        self.add(up, now);
                    }
                }
                FaultKind::NodeUp => out.push(DueEvent::NodeUp(f.spec.node.unwrap_or(0))),
                _ => {}
            }
        }
        out
    }

    /// The simulated time of the next pending event, if any.
    #[cfg(test)]
    pub fn next_event_at(&self) -> Option<f64> {
        self.events
            .iter()
            .map(|f| f.active_from)
            .min_by(f64::total_cmp)
    }

    /// Applies the matching faults to a request to `path` on `node` at `now`.
    pub fn trigger(&mut self, path: &str, node: usize, now: f64) -> Triggered {
        let mut t = Triggered::default();
        for f in &mut self.faults {
            if is_spent(f, now) || f.active_from > now {
                continue;
            }
            if let Some(prefix) = &f.spec.path
                && !path.starts_with(prefix.as_str())
            {
                continue;
            }
            if f.spec.node.is_some_and(|n| n != node) {
                continue;
            }
            // An error answers at once, so a later error fault is not consumed by this request.
            if t.error.is_some() && f.spec.kind == FaultKind::Error {
                continue;
            }
            match f.spec.kind {
                FaultKind::Error => {
                    let status = f.spec.status.unwrap_or(503);
                    let message = f.spec.message.clone().unwrap_or_else(|| {
                        http::StatusCode::from_u16(status)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("Error")
                            .to_string()
                    });
                    t.error = Some((status, message));
                }
                FaultKind::Latency => t.latency_ms += f.spec.delay_ms.unwrap_or(0),
                FaultKind::Hang => {
                    t.hang_ms = Some(f.spec.delay_ms.unwrap_or(DEFAULT_HANG_MS));
                }
                FaultKind::Malformed => t.malformed = true,
                FaultKind::Truncated => t.truncated = true,
                FaultKind::Reset => t.reset = true,
                FaultKind::Empty => t.empty = true,
                FaultKind::HugeBody => {
                    t.huge_body = Some(f.spec.bytes.unwrap_or(DEFAULT_HUGE_BODY_BYTES));
                }
                FaultKind::ExpireSessions | FaultKind::NodeDown | FaultKind::NodeUp => continue,
            }
            f.applied += 1;
            if let Some(r) = &mut f.remaining {
                *r = r.saturating_sub(1);
            }
        }
        self.faults.retain(|f| !is_spent(f, now));
        t
    }
}

fn is_spent(f: &ActiveFault, now: f64) -> bool {
    f.remaining == Some(0) || f.active_until.is_some_and(|until| now >= until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limits_a_fault() {
        let mut book = FaultBook::default();
        book.add(FaultSpec::error(500, 2), 0.0);
        assert_eq!(
            book.trigger("/api/pool", 0, 1.0).error,
            Some((500, "Internal Server Error".into()))
        );
        assert!(book.trigger("/api/pool", 0, 1.0).error.is_some());
        assert_eq!(book.trigger("/api/pool", 0, 1.0), Triggered::default());
        assert!(book.list(1.0).is_empty());
    }

    #[test]
    fn path_node_and_time_select_requests() {
        let mut book = FaultBook::default();
        let mut spec = FaultSpec::new(FaultKind::Empty)
            .on_path("/api/analytics/")
            .on_node(1);
        spec.at = Some(100.0);
        spec.duration_seconds = Some(50.0);
        book.add(spec, 0.0);
        assert!(!book.trigger("/api/analytics/x", 1, 99.0).empty);
        assert!(!book.trigger("/api/pool", 1, 120.0).empty);
        assert!(!book.trigger("/api/analytics/x", 0, 120.0).empty);
        assert!(book.trigger("/api/analytics/x", 1, 120.0).empty);
        assert!(book.trigger("/api/analytics/x", 1, 149.0).empty);
        assert!(!book.trigger("/api/analytics/x", 1, 150.0).empty);
    }

    #[test]
    fn one_error_per_request() {
        let mut book = FaultBook::default();
        book.add(FaultSpec::error(500, 1), 0.0);
        book.add(FaultSpec::error(502, 1), 0.0);
        assert_eq!(book.trigger("/", 0, 0.0).error.unwrap().0, 500);
        assert_eq!(book.trigger("/", 0, 0.0).error.unwrap().0, 502);
    }

    #[test]
    fn node_down_with_duration_schedules_node_up() {
        let mut book = FaultBook::default();
        let mut down = FaultSpec::new(FaultKind::NodeDown).on_node(1);
        down.at = Some(10.0);
        down.duration_seconds = Some(30.0);
        book.add(down, 0.0);
        assert_eq!(book.next_event_at(), Some(10.0));
        assert!(book.take_due_events(5.0).is_empty());
        assert_eq!(book.take_due_events(10.0), vec![DueEvent::NodeDown(1)]);
        assert_eq!(book.next_event_at(), Some(40.0));
        assert_eq!(book.take_due_events(41.0), vec![DueEvent::NodeUp(1)]);
    }

    #[test]
    fn validation_names_the_field() {
        let latency = FaultSpec::new(FaultKind::Latency);
        assert_eq!(latency.validate(None).unwrap_err().0, "delayMs");
        let down = FaultSpec::new(FaultKind::NodeDown).on_node(3);
        assert_eq!(down.validate(Some(2)).unwrap_err().0, "node");
        let mut bad = FaultSpec::error(200, 1);
        assert_eq!(bad.validate(None).unwrap_err().0, "status");
        bad.status = Some(503);
        bad.count = Some(0);
        assert_eq!(bad.validate(None).unwrap_err().0, "count");
    }
}
