//! Requests and responses as the handlers see them, and the response body that can break on
//! purpose.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use serde_json::{Value, json};

/// A request with its body read.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Listener index.
    pub node: usize,
}

impl Request {
    pub fn new(parts: http::request::Parts, body: Bytes, node: usize) -> Self {
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            headers: parts.headers,
            body,
            node,
        }
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A comma-separated list parameter, repeated parameters merged, blanks dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// A boolean parameter (`true`/`True`/`1`); absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.param(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                _ => Err(format!("{name} must be true or false, got {v:?}")),
            },
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Whether the method changes state (and so needs a CSRF token with session auth).
    pub fn is_unsafe(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// What a handler answers.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            headers.insert(CONTENT_TYPE, v);
        }
        Self {
            status,
            headers,
            body: body.into(),
        }
    }

    pub fn json(status: StatusCode, value: &Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    pub fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// The controller's error shape: `{"error": "…"}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::json(status, &json!({ "error": message.into() }))
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(HeaderName::from_static(name), v);
        }
        self
    }

    fn is_json(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    }

    /// Breaks the body's syntax: JSON loses its closing bracket and gains a dangling key;
    /// Prometheus text loses the `}` closing each sample's labels.
    pub fn malformed(mut self) -> Self {
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let broken = if self.is_json() {
            let trimmed = text.trim_end();
            let cut = trimmed.strip_suffix(['}', ']']).unwrap_or(trimmed);
            format!("{cut}, \"")
        } else if text.is_empty() {
            "{\"".to_string()
        } else {
            text.lines()
                .map(|l| {
                    if l.starts_with('#') {
                        l.to_string()
                    } else {
                        l.replacen('}', "", 1)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        };
        self.body = Bytes::from(broken);
        self
    }

    /// Keeps the first half of the body.
    pub fn truncated(mut self) -> Self {
        let half = self.body.len() / 2;
        self.body = self.body.slice(..half);
        self
    }
}

/// A response body: whole, cut off half-way with the connection aborted, or padded to a
/// huge length.
pub(crate) struct SimBody {
    data: Option<Bytes>,
    /// Declared length; when more than `data` holds, the body fails after sending `data`.
    declared: u64,
    fail: bool,
    /// Before failing, a pause: hyper flushes what it has (headers, half the body) while the
    /// body is pending, so the client sees a response that breaks off rather than none.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Padding still to send after `data`, and the chunk it is sent in (shared, not copied).
    padding: Option<(u64, Bytes)>,
}

/// One chunk of a huge body's padding: comment lines, valid Prometheus text.
const PADDING_CHUNK: usize = 64 * 1024;

/// How long a reset body waits between its half and the abort.
const RESET_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl SimBody {
    pub fn full(data: Bytes) -> Self {
        Self {
            declared: data.len() as u64,
            data: Some(data),
            fail: false,
            pause: None,
            padding: None,
        }
    }

    /// Sends `data`, then comment lines until `total` bytes were sent, with no declared length
    /// (chunked): a client learns the size only by reading.
    pub fn huge(data: Bytes, total: u64) -> Self {
        let line = b"# padding of a huge answer\n";
        let chunk: Vec<u8> = line.iter().copied().cycle().take(PADDING_CHUNK).collect();
        Self {
            declared: total,
            padding: Some((total.saturating_sub(data.len() as u64), Bytes::from(chunk))),
            data: Some(data),
            fail: false,
            pause: None,
        }
    }

    /// Sends the first half of `data`, then fails, which makes hyper abort the connection.
    pub fn reset(data: Bytes) -> Self {
        let declared = data.len() as u64;
        Self {
            data: Some(data.slice(..data.len() / 2)),
            declared,
            fail: true,
            pause: Some(Box::pin(tokio::time::sleep(RESET_PAUSE))),
            padding: None,
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take()
            && !data.is_empty()
        {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some((left, chunk)) = self.padding.as_mut()
            && *left > 0
        {
            let n = (*left).min(chunk.len() as u64) as usize;
            *left -= n as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n)))));
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        if self.fail {
            self.fail = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset fault",
            ))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
            && !self.fail
            && self.padding.as_ref().is_none_or(|(left, _)| *left == 0)
    }

    fn size_hint(&self) -> SizeHint {
        if self.padding.is_some() {
            return SizeHint::default();
        }
        SizeHint::with_exact(self.declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_do_not_parse() {
        let json = Response::ok(&json!({"count": 1, "results": []})).malformed();
        assert!(serde_json::from_slice::<Value>(&json.body).is_err());
        let text = Response::new(
            StatusCode::OK,
            "text/plain",
            "# Successfully gathered 1 metrics for pool\navi_x{uuid=\"p\"} 1.0\n",
        )
        .malformed();
        assert_eq!(
            String::from_utf8_lossy(&text.body),
            "# Successfully gathered 1 metrics for pool\navi_x{uuid=\"p\" 1.0\n"
        );
    }

    #[test]
    fn list_parameters_merge_and_trim() {
        let req = Request::new(
            http::Request::get("/x?entity_name=a,%20b&entity_name=c&metric_id=&realtime=True")
                .body(())
                .unwrap()
                .into_parts()
                .0,
            Bytes::new(),
            0,
        );
        assert_eq!(req.list("entity_name"), ["a", "b", "c"]);
        assert!(req.list("metric_id").is_empty());
        assert_eq!(req.flag("realtime", false), Ok(true));
        assert_eq!(req.flag("description", false), Ok(false));
    }
}
