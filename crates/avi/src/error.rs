//! The one error type of this crate.
//!
//! Like reqwest's, it is opaque: a private kind answered by predicates (`is_timeout`,
//! `is_unauthorized`, …), the endpoint and HTTP status when there was one, and the underlying
//! error as `source()`. Transport failures are classified by walking the `source()` chain for
//! rustls and I/O errors, never by matching message text. Nothing in it can carry a password,
//! a session cookie or an `Authorization` header: endpoints are stored without user info or
//! query, and the only text taken from a response is the controller's own error message (the
//! `error` or `detail` field of its JSON error body, or the login page's one-line answer), cut
//! short; any other body is summarised by its HTTP status, so that a connection pointed at
//! another service cannot read that service's answers back through status or Events.

use std::{error::Error as StdError, fmt, sync::Arc};

use api::Reason;
use reqwest::StatusCode;
use url::Url;

/// The longest piece of a controller's error message kept in an [`Error`].
const MAX_DETAIL: usize = 200;

/// A failed Avi request or an unusable answer.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: Kind,
    endpoint: Option<Url>,
    status: Option<StatusCode>,
    detail: Option<String>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The connection could not be made or broke (refused, reset, DNS, truncated body).
    Unreachable,
    /// A request took longer than the connection's timeout.
    Timeout,
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol error).
    Tls,
    /// The controller refused the credentials or the session (401, 419).
    Unauthorized,
    /// The user may not read this (403).
    Forbidden,
    /// The entity does not exist on the controller, in this tenant.
    UnknownEntity,
    /// The controller does not know this metric id (for this entity type).
    UnknownMetric,
    /// The entity and the metric exist but the controller has no value for them now.
    NoData,
    /// The answer could not be understood (malformed, truncated, unexpected status).
    BadResponse,
    /// The controller answered 5xx (or 429).
    ServerError,
    /// The connection settings cannot be used (bad CA bundle, no endpoint).
    Config,
    /// The answer exceeds a limit (body size, lines, series, labels per line).
    TooLarge,
    /// Too many callers already wait on this connection; nothing was asked for this one.
    Busy,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Unreachable => "the Avi controller could not be reached",
            Kind::Timeout => "the Avi controller did not answer in time",
            Kind::Tls => "TLS with the Avi controller failed",
            Kind::Unauthorized => "the Avi controller refused the credentials",
            Kind::Forbidden => "the Avi user may not read this",
            Kind::UnknownEntity => "the Avi controller has no such entity",
            Kind::UnknownMetric => "the Avi controller has no such metric",
            Kind::NoData => "the Avi controller has no value for this metric",
            Kind::BadResponse => "the Avi controller's answer could not be used",
            Kind::ServerError => "the Avi controller failed to answer",
            Kind::Config => "the Avi connection settings cannot be used",
            Kind::TooLarge => "the Avi controller's answer exceeds a limit",
            Kind::Busy => "the Avi controller is already being waited on",
        }
    }

    fn category(self) -> &'static str {
        match self {
            Kind::Unreachable => "unreachable",
            Kind::Timeout => "timeout",
            Kind::Tls => "tls",
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::UnknownEntity => "unknown_entity",
            Kind::UnknownMetric => "unknown_metric",
            Kind::NoData => "no_data",
            Kind::BadResponse => "bad_response",
            Kind::ServerError => "server_error",
            Kind::Config => "config",
            Kind::TooLarge => "too_large",
            Kind::Busy => "busy",
        }
    }
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                endpoint: None,
                status: None,
                detail: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_endpoint(mut self, url: &Url) -> Self {
        self.inner.endpoint = Some(redacted(url));
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let mut d: String = detail.into();
        if d.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !d.is_char_boundary(cut) {
                cut -= 1;
            }
            d.truncate(cut);
            d.push('…');
        }
        self.inner.detail = Some(d);
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Classifies a transport error from reqwest by walking its `source()` chain.
    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        let kind = classify(&err);
        Error::new(kind).with_source(err.without_url())
    }

    /// No endpoint could be connected to, or the connection broke.
    pub fn is_unreachable(&self) -> bool {
        self.inner.kind == Kind::Unreachable
    }

    /// A request took longer than the configured timeout.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// The TLS handshake failed, for example because the certificate is not trusted.
    pub fn is_tls(&self) -> bool {
        self.inner.kind == Kind::Tls
    }

    /// The controller refused the credentials (a failed login, or 401 after logging in again).
    pub fn is_unauthorized(&self) -> bool {
        self.inner.kind == Kind::Unauthorized
    }

    /// The user is authenticated but may not read this (403).
    pub fn is_forbidden(&self) -> bool {
        self.inner.kind == Kind::Forbidden
    }

    /// The entity does not exist on the controller (in the connection's tenant).
    pub fn is_unknown_entity(&self) -> bool {
        self.inner.kind == Kind::UnknownEntity
    }

    /// The controller does not offer this metric id for this entity type.
    pub fn is_unknown_metric(&self) -> bool {
        self.inner.kind == Kind::UnknownMetric
    }

    /// The entity and metric exist but there is no value now: an empty answer ("0 metrics"),
    /// a pool without members, realtime metrics not enabled, or a NaN/infinite value. Never
    /// read this as zero.
    pub fn is_no_data(&self) -> bool {
        self.inner.kind == Kind::NoData
    }

    /// The answer was malformed, truncated, or had an unexpected status.
    pub fn is_bad_response(&self) -> bool {
        self.inner.kind == Kind::BadResponse
    }

    /// The controller answered with a server error (5xx or 429) on every endpoint tried.
    pub fn is_server_error(&self) -> bool {
        self.inner.kind == Kind::ServerError
    }

    /// The connection settings cannot be used (for example a CA bundle without certificates).
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }

    /// The answer was larger than a limit allows (body bytes, lines, series or labels per
    /// line); it was dropped unread, so nothing is decided on part of it.
    pub fn is_too_large(&self) -> bool {
        self.inner.kind == Kind::TooLarge
    }

    /// The call was turned away at once because enough callers already wait on the same
    /// controller ([`PollerSettings::max_waiting_per_connection`](crate::PollerSettings::max_waiting_per_connection)).
    /// Nothing failed: ask again shortly, when the answer being fetched is cached.
    pub fn is_busy(&self) -> bool {
        self.inner.kind == Kind::Busy
    }

    /// The HTTP status of the answer, when the error comes from one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The endpoint (scheme, host, port and path; no user info, no query) the error came from.
    pub fn endpoint(&self) -> Option<&Url> {
        self.inner.endpoint.as_ref()
    }

    /// A fixed, low-cardinality name for the kind of failure, for metric labels:
    /// `unreachable`, `timeout`, `tls`, `unauthorized`, `forbidden`, `unknown_entity`,
    /// `unknown_metric`, `no_data`, `bad_response`, `server_error`, `config`, `too_large` or
    /// `busy`.
    pub fn category(&self) -> &'static str {
        self.inner.kind.category()
    }

    /// The AviAutoscaler condition reason for this error: `AviAuthFailed` for refused
    /// credentials or permissions, `AviTLSError` for a failed TLS handshake,
    /// `AviUnreachable` when no endpoint answered usefully (connection, timeout, 5xx),
    /// `AviResponseTooLarge` for an answer over a limit, `InvalidSpec` for unusable connection
    /// settings, and `FailedGetAviMetric` when the controller answered but the metric could
    /// not be read.
    pub fn reason(&self) -> Reason {
        match self.inner.kind {
            Kind::Unauthorized | Kind::Forbidden => Reason::AviAuthFailed,
            Kind::Tls => Reason::AviTLSError,
            Kind::TooLarge => Reason::AviResponseTooLarge,
            Kind::Unreachable | Kind::Timeout | Kind::ServerError | Kind::Busy => {
                Reason::AviUnreachable
            }
            Kind::Config => Reason::InvalidSpec,
            Kind::UnknownEntity | Kind::UnknownMetric | Kind::NoData | Kind::BadResponse => {
                Reason::FailedGetAviMetric
            }
        }
    }

    /// Whether trying again (on this or another endpoint) may help.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::Unreachable | Kind::Timeout | Kind::ServerError
        )
    }

    /// Whether another endpoint may do better (TLS too: each node may have its own
    /// certificate; an oversized answer too: the node may be the only one misbehaving).
    pub(crate) fn is_failover(&self) -> bool {
        self.is_retryable() || matches!(self.inner.kind, Kind::Tls | Kind::TooLarge)
    }
}

/// The URL without user info, query or fragment: what an error may show.
pub(crate) fn redacted(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u
}

fn classify(err: &reqwest::Error) -> Kind {
    if let Some(kind) = classify_chain(err) {
        kind
    } else if err.is_timeout() {
        Kind::Timeout
    } else if err.is_decode() {
        Kind::BadResponse
    } else {
        Kind::Unreachable
    }
}

/// Looks through the `source()` chain for a TLS failure or an I/O timeout. An `io::Error`
/// is looked into with `get_ref()`: its own `source()` skips the error it wraps, and hyper and
/// tokio-rustls nest rustls errors two `io::Error`s deep.
fn classify_chain(err: &(dyn StdError + 'static)) -> Option<Kind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return Some(Kind::Tls);
        }
        cur = match e.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::TimedOut => return Some(Kind::Timeout),
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.kind.describe())?;
        if let Some(url) = &self.inner.endpoint {
            write!(f, " ({url}")?;
            if let Some(s) = self.inner.status {
                write!(f, ", HTTP {}", s.as_u16())?;
            }
            f.write_str(")")?;
        } else if let Some(s) = self.inner.status {
            write!(f, " (HTTP {})", s.as_u16())?;
        }
        if let Some(d) = &self.inner.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("avi::Error");
        d.field("kind", &self.inner.kind);
        if let Some(url) = &self.inner.endpoint {
            d.field("endpoint", &url.as_str());
        }
        if let Some(s) = &self.inner.status {
            d.field("status", s);
        }
        if let Some(detail) = &self.inner.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_shown_without_user_info_or_query() {
        let url: Url = "https://admin:s3cret@avi.example.com/api/x?tenant=admin#f"
            .parse()
            .unwrap();
        let e = Error::new(Kind::Unauthorized)
            .with_endpoint(&url)
            .with_status(StatusCode::UNAUTHORIZED)
            .with_detail("Invalid credentials");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("admin@"), "{text}");
        assert_eq!(
            e.to_string(),
            "the Avi controller refused the credentials (https://avi.example.com/api/x, HTTP 401): Invalid credentials"
        );
        assert!(e.is_unauthorized());
        assert_eq!(e.reason(), Reason::AviAuthFailed);
        assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn long_details_are_cut_on_a_char_boundary() {
        let e = Error::new(Kind::BadResponse).with_detail("é".repeat(300));
        assert!(e.to_string().len() < 300);
        assert!(e.to_string().ends_with('…'));
    }

    #[test]
    fn reasons_cover_every_kind() {
        let cases = [
            (Kind::Unreachable, Reason::AviUnreachable),
            (Kind::Timeout, Reason::AviUnreachable),
            (Kind::Tls, Reason::AviTLSError),
            (Kind::TooLarge, Reason::AviResponseTooLarge),
            (Kind::ServerError, Reason::AviUnreachable),
            (Kind::Unauthorized, Reason::AviAuthFailed),
            (Kind::Forbidden, Reason::AviAuthFailed),
            (Kind::UnknownEntity, Reason::FailedGetAviMetric),
            (Kind::UnknownMetric, Reason::FailedGetAviMetric),
            (Kind::NoData, Reason::FailedGetAviMetric),
            (Kind::BadResponse, Reason::FailedGetAviMetric),
            (Kind::Config, Reason::InvalidSpec),
            (Kind::Busy, Reason::AviUnreachable),
        ];
        for (kind, reason) in cases {
            assert_eq!(Error::new(kind).reason(), reason, "{kind:?}");
        }
    }

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn source_chain_is_walked_for_tls_and_io_timeouts() {
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_chain(&Wrapper(Box::new(tls))), Some(Kind::Tls));
        let direct = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(classify_chain(&Wrapper(Box::new(direct))), Some(Kind::Tls));
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert_eq!(
            classify_chain(&Wrapper(Box::new(timeout))),
            Some(Kind::Timeout)
        );
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert_eq!(classify_chain(&Wrapper(Box::new(nested))), Some(Kind::Tls));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "no");
        assert_eq!(classify_chain(&Wrapper(Box::new(refused))), None);
    }
}
