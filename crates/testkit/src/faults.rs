//! Fault injection and the request log.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// A rule that makes matching requests fail or slow down.
///
/// A request matches when every set criterion holds. `path` is a pattern over the request path
/// (without the query and without a `/_client/{marker}` prefix) in which `*` matches any run
/// of characters, `/` included: `/apis/apps/v1/namespaces/*/deployments/*/scale`.
///
/// In JSON (for `POST /_testkit/faults`) the fields are camelCase:
/// `{"method": "PATCH", "path": "/apis/*/status", "status": 500, "times": 2}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// HTTP method (`GET`, `PATCH`, …); any when unset.
    pub method: Option<String>,
    /// Path pattern with `*` wildcards; any path when unset.
    pub path: Option<String>,
    /// Only watch requests (`true`), only other requests (`false`), or both (unset).
    pub watch: Option<bool>,
    /// Only requests through this client marker (see `KubeStandin::url_for`).
    pub client: Option<String>,
    /// Only requests whose `User-Agent` contains this text.
    pub user_agent: Option<String>,
    /// Answer with this HTTP status as a `metav1.Status` (429 with `Retry-After`, 500
    /// `InternalError`, 503 `ServiceUnavailable`, 504 `Timeout`, …).
    pub status: Option<u16>,
    /// `Retry-After` seconds for a 429 or 503 answer (default 1).
    pub retry_after_seconds: Option<u32>,
    /// The Status message (a default per code otherwise).
    pub message: Option<String>,
    /// Wait this long before handling (or before answering with `status`).
    pub delay_ms: Option<u64>,
    /// Close the connection without an answer.
    pub reset: bool,
    /// Fire this many times, then disappear; unset means until removed.
    pub times: Option<u32>,
}

impl Fault {
    /// Answers matching requests with `code`.
    pub fn status(code: u16) -> Self {
        Self {
            status: Some(code),
            ..Self::default()
        }
    }

    /// Delays matching requests.
    pub fn delay(d: Duration) -> Self {
        Self {
            delay_ms: Some(d.as_millis().try_into().unwrap_or(u64::MAX)),
            ..Self::default()
        }
    }

    /// Closes the connection of matching requests without an answer.
    pub fn reset() -> Self {
        Self {
            reset: true,
            ..Self::default()
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_ascii_uppercase());
        self
    }

    /// Only requests whose path matches this pattern (`*` matches anything).
    pub fn path(mut self, pattern: &str) -> Self {
        self.path = Some(pattern.to_owned());
        self
    }

    /// Only watch requests.
    pub fn watches(mut self) -> Self {
        self.watch = Some(true);
        self
    }

    /// Only requests that are not watches.
    pub fn non_watches(mut self) -> Self {
        self.watch = Some(false);
        self
    }

    /// Only requests through the client marker `name`.
    pub fn client(mut self, name: &str) -> Self {
        self.client = Some(name.to_owned());
        self
    }

    /// Only requests whose user agent contains `text`.
    pub fn user_agent(mut self, text: &str) -> Self {
        self.user_agent = Some(text.to_owned());
        self
    }

    /// Fire `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// The `Retry-After` of a 429/503 answer.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Also delay (before answering with the status, if any).
    pub fn with_delay(mut self, d: Duration) -> Self {
        self.delay_ms = Some(d.as_millis().try_into().unwrap_or(u64::MAX));
        self
    }

    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(req.method))
            && self.path.as_deref().is_none_or(|p| glob(p, req.path))
            && self.watch.is_none_or(|w| w == req.watch)
            && self.client.as_deref().is_none_or(|c| req.client == Some(c))
            && self
                .user_agent
                .as_deref()
                .is_none_or(|u| req.user_agent.contains(u))
    }

    /// The error this fault answers with, if it answers.
    pub(crate) fn error(&self) -> Option<ApiError> {
        let code = self.status?;
        let retry = self.retry_after_seconds.unwrap_or(1);
        let mut e = match code {
            429 => ApiError::too_many_requests(retry),
            500 => ApiError::internal(self.message.as_deref().unwrap_or("injected fault")),
            503 => {
                let mut e = ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                );
                e.retry_after = Some(retry);
                e
            }
            504 => ApiError::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            404 => ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
            409 => ApiError::new(409, "Conflict", "injected conflict"),
            410 => ApiError::expired("injected expiry"),
            c => ApiError::new(c, "InternalError", "injected fault"),
        };
        if let Some(m) = &self.message
            && code != 500
        {
            e.message = m.clone();
        }
        Some(e)
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(rest) = text.strip_prefix(parts[0]) else {
        return false;
    };
    let mut rest = rest;
    for (i, part) in parts[1..].iter().enumerate() {
        let last = i == parts.len() - 2;
        if last {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    true
}

/// The identifier of an injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

/// What a request looks like to fault matching.
pub(crate) struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub watch: bool,
    pub client: Option<&'a str>,
    pub user_agent: &'a str,
}

/// What the matching faults make of a request.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub delay: Duration,
    pub error: Option<ApiError>,
    pub reset: bool,
}

/// The active faults.
#[derive(Default)]
pub(crate) struct Faults {
    inner: Mutex<(u64, Vec<(FaultId, Fault)>)>,
}

impl Faults {
    pub(crate) fn add(&self, f: Fault) -> FaultId {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let id = FaultId(g.0);
        g.1.push((id, f));
        id
    }

    pub(crate) fn remove(&self, id: FaultId) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = g.1.len();
        g.1.retain(|(i, _)| *i != id);
        g.1.len() != before
    }

    pub(crate) fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clear();
    }

    pub(crate) fn list(&self) -> Vec<(FaultId, Fault)> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Applies every matching fault: delays add up, the first failing one answers.
    pub(crate) fn evaluate(&self, req: &RequestInfo<'_>) -> Verdict {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = Verdict::default();
        for (_, f) in g.1.iter_mut() {
            if !f.matches(req) {
                continue;
            }
            let fails = f.reset || f.status.is_some();
            if fails && (v.error.is_some() || v.reset) {
                continue;
            }
            if let Some(ms) = f.delay_ms {
                v.delay += Duration::from_millis(ms);
            }
            if f.reset {
                v.reset = true;
            } else if let Some(e) = f.error() {
                v.error = Some(e);
            }
            if let Some(t) = f.times.as_mut() {
                *t = t.saturating_sub(1);
            }
        }
        g.1.retain(|(_, f)| f.times != Some(0));
        v
    }
}

/// One request the stand-in answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Increasing sequence number, from 1.
    pub seq: u64,
    /// When the request was handled, after any injected delay (RFC 3339 with microseconds, so
    /// the order of events within a second can be checked).
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Path without the query and without a client marker prefix.
    pub path: String,
    /// The raw query string (empty when there is none).
    pub query: String,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `Accept`, if sent.
    pub accept: Option<String>,
    /// `User-Agent`, if sent.
    pub user_agent: Option<String>,
    /// The client marker of the URL the request came through (`/_client/{marker}/…`).
    pub client: Option<String>,
    /// The body as text (the values of Secret `data` and `stringData` are redacted).
    pub body: String,
    /// The HTTP status answered (for watches, the status the stream started with; 0 for a
    /// connection reset by a fault).
    pub status: u16,
    /// Whether this was a watch.
    pub watch: bool,
    /// Whether an injected fault answered (or reset) it.
    pub injected: bool,
}

impl RequestRecord {
    /// `path?query`.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether the client asked for metadata only (`Accept: …;as=PartialObjectMetadata` or
    /// `…List`): the answer then carried no `data`, `spec` or `status`.
    pub fn metadata_only(&self) -> bool {
        self.accept.as_deref().is_some_and(|a| {
            a.split(',').all(|range| {
                let params: Vec<&str> = range.split(';').map(str::trim).collect();
                params
                    .iter()
                    .any(|p| p.starts_with("as=PartialObjectMetadata"))
                    && params.contains(&"g=meta.k8s.io")
            })
        })
    }

    /// The body parsed as JSON (or YAML, for apply patches).
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(&self.body)
            .ok()
            .or_else(|| serde_yaml::from_str(&self.body).ok())
    }

    /// Whether the path matches a pattern with `*` wildcards.
    pub fn path_matches(&self, pattern: &str) -> bool {
        glob(pattern, &self.path)
    }
}

/// The bounded log of requests.
pub(crate) struct RequestLog {
    inner: Mutex<(u64, VecDeque<RequestRecord>)>,
    limit: usize,
    pub(crate) notify: tokio::sync::watch::Sender<u64>,
}

impl RequestLog {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            inner: Mutex::new((0, VecDeque::new())),
            limit: limit.max(1),
            notify: tokio::sync::watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, mut r: RequestRecord) {
        let seq = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.0 += 1;
            r.seq = g.0;
            g.1.push_back(r);
            while g.1.len() > self.limit {
                g.1.pop_front();
            }
            g.0
        };
        self.notify.send_replace(seq);
    }

    pub(crate) fn since(&self, seq: u64) -> Vec<RequestRecord> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.iter().filter(|r| r.seq > seq).cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clear();
    }
}

/// Redacts the values of a Secret's `data` and `stringData` in a logged body.
pub(crate) fn redact_secret_body(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(body)
        .or_else(|_| serde_yaml::from_str::<Value>(body).map_err(|_| ()))
    else {
        return "<redacted>".to_owned();
    };
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if (k == "data" || k == "stringData")
                        && let Value::Object(d) = child
                    {
                        for val in d.values_mut() {
                            *val = Value::String("<redacted>".into());
                        }
                    } else {
                        walk(child);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(method: &'a str, path: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            method,
            path,
            watch: false,
            client: None,
            user_agent: "kube-rs",
        }
    }

    #[test]
    fn metadata_only_reads_are_told_apart() {
        let record = |accept: Option<&str>| RequestRecord {
            seq: 1,
            time: String::new(),
            method: "GET".into(),
            path: "/api/v1/namespaces/a/secrets/b".into(),
            query: String::new(),
            content_type: None,
            accept: accept.map(str::to_owned),
            user_agent: None,
            client: None,
            body: String::new(),
            status: 200,
            watch: false,
            injected: false,
        };
        assert!(
            record(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            ))
            .metadata_only()
        );
        assert!(
            record(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            ))
            .metadata_only()
        );
        assert!(!record(None).metadata_only());
        assert!(!record(Some("application/json")).metadata_only());
        // A fallback to the full object in the same Accept may be answered with it.
        assert!(
            !record(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
            ))
            .metadata_only()
        );
    }

    #[test]
    fn globs() {
        assert!(glob(
            "/apis/*/scale",
            "/apis/apps/v1/namespaces/a/deployments/b/scale"
        ));
        assert!(glob("*", "/anything"));
        assert!(glob("/api/v1", "/api/v1"));
        assert!(!glob("/api/v1", "/api/v1/x"));
        assert!(glob("/api/*/x*", "/api/v1/xy"));
        assert!(!glob("/apis/*/status", "/apis/x/scale"));
    }

    #[test]
    fn faults_fire_n_times() {
        let faults = Faults::default();
        faults.add(Fault::status(429).method("patch").path("*/scale").times(2));
        let r = req("PATCH", "/apis/apps/v1/namespaces/a/deployments/b/scale");
        assert_eq!(faults.evaluate(&r).error.unwrap().code, 429);
        assert_eq!(faults.evaluate(&r).error.unwrap().code, 429);
        assert!(faults.evaluate(&r).error.is_none());
        assert!(faults.list().is_empty());
        let id = faults.add(Fault::delay(Duration::from_millis(5)));
        let other = faults.add(Fault::status(500).path("/api/*"));
        let v = faults.evaluate(&req("GET", "/api/v1/secrets"));
        assert_eq!(v.delay, Duration::from_millis(5));
        assert_eq!(v.error.unwrap().reason, "InternalError");
        assert!(faults.remove(other));
        assert!(
            faults
                .evaluate(&req("GET", "/api/v1/secrets"))
                .error
                .is_none()
        );
        assert!(faults.remove(id));
        assert!(!faults.remove(id));
    }

    #[test]
    fn faults_deserialize_from_camel_case() {
        let f: Fault = serde_json::from_str(
            r#"{"method":"GET","path":"/api/*","status":429,"retryAfterSeconds":2,"times":1}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::status(429)
                .method("GET")
                .path("/api/*")
                .retry_after(2)
                .times(1)
        );
    }

    #[test]
    fn secret_bodies_are_redacted() {
        let b = redact_secret_body(
            r#"{"kind":"Secret","data":{"password":"c2VjcmV0"},"stringData":{"u":"x"}}"#,
        );
        assert!(!b.contains("c2VjcmV0") && !b.contains("\"x\""), "{b}");
        assert!(b.contains("<redacted>"));
    }
}
