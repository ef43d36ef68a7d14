//! How to reach and authenticate to one Avi controller.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::SocketAddr,
    time::Duration,
};

use api::AuthMode;
use url::Url;

use crate::error::{Error, Kind};

/// Everything needed to talk to one controller, built from an AviAutoscaler's
/// `spec.controller` and its Secret(s).
///
/// `Hash`/`Eq` identify a distinct connection: the [`Poller`](crate::Poller) shares one HTTP
/// client, connection pool and session among equal configurations (ignoring `tenant`, which is
/// a per-request setting), so a changed Secret gives a new client and a fresh login.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionConfig {
    /// The controller's HTTPS URLs (cluster VIP or nodes), tried in order.
    pub endpoints: Vec<Url>,
    /// Session login (default) or HTTP basic authentication.
    pub auth_mode: AuthMode,
    /// User name and password (or API token).
    pub credentials: Credentials,
    /// The Avi tenant (by name) that owns the entities.
    pub tenant: String,
    /// The `X-Avi-Version` header, if set.
    pub api_version: Option<String>,
    /// Certificate verification.
    pub tls: TlsConfig,
    /// Timeout of each request (connect, send and read the whole answer).
    pub timeout: Duration,
    /// Addresses to connect to instead of resolving a host name, by host name (the ports are
    /// taken from the endpoints). Set by a caller that checked where the names resolve, so the
    /// connection goes to the addresses it checked and not to a later, different DNS answer.
    /// Empty: names are resolved when connecting.
    pub pinned_addresses: BTreeMap<String, BTreeSet<SocketAddr>>,
}

impl ConnectionConfig {
    /// Builds the configuration from an AviAutoscaler's `spec.controller`, the credentials read
    /// from its Secret and, when `tls.caSecretRef` is set, the PEM bundle read from that Secret.
    ///
    /// The spec is expected to be valid against the CRD (which allows only `https://` endpoints
    /// with a host, and a timeout of 1 to 60 seconds); this only converts it. Fails (with
    /// [`Error::is_config`]) when a field has no typed form: an endpoint that is no URL, a
    /// negative timeout, no endpoint at all.
    pub fn from_spec(
        spec: &api::ControllerSpec,
        credentials: Credentials,
        extra_ca_pem: Option<Vec<u8>>,
    ) -> Result<Self, Error> {
        let mut endpoints = Vec::with_capacity(spec.endpoints.len());
        for (i, e) in spec.endpoints.iter().enumerate() {
            let url = Url::parse(e).map_err(|_| {
                Error::new(Kind::Config)
                    .with_detail(format!("spec.controller.endpoints[{i}] is not a URL"))
            })?;
            endpoints.push(url);
        }
        if endpoints.is_empty() {
            return Err(Error::new(Kind::Config).with_detail("no endpoint configured"));
        }
        let timeout = u64::try_from(spec.timeout_seconds).map_err(|_| {
            Error::new(Kind::Config)
                .with_detail("spec.controller.timeoutSeconds is not a number of seconds")
        })?;
        let insecure_skip_verify = spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify);
        Ok(ConnectionConfig {
            endpoints,
            auth_mode: spec.auth_mode,
            credentials,
            tenant: spec.tenant.clone(),
            api_version: spec.api_version.clone(),
            tls: TlsConfig {
                insecure_skip_verify,
                extra_ca_pem,
            },
            timeout: Duration::from_secs(timeout),
            pinned_addresses: BTreeMap::new(),
        })
    }
}

/// A user name and password (or Avi API token). `Debug` shows the user name only; there is no
/// `Display`, and the password can be read only inside this crate.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials from a Secret's `username` and `password` keys.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Certificate verification settings.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    /// Accept any certificate. Only for labs: anyone on the path can read the credentials.
    pub insecure_skip_verify: bool,
    /// PEM certificates trusted in addition to the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field(
                "extra_ca_pem",
                &self
                    .extra_ca_pem
                    .as_ref()
                    .map(|p| format!("<{} bytes>", p.len())),
            )
            .finish()
    }
}

/// The part of a [`ConnectionConfig`] that decides the HTTP client and session: everything
/// but the tenant, which is a per-request setting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionKey {
    pub endpoints: Vec<Url>,
    pub auth_mode: AuthMode,
    pub credentials: Credentials,
    pub api_version: Option<String>,
    pub tls: TlsConfig,
    pub timeout: Duration,
    pub pinned_addresses: BTreeMap<String, BTreeSet<SocketAddr>>,
}

impl From<&ConnectionConfig> for ConnectionKey {
    fn from(c: &ConnectionConfig) -> Self {
        ConnectionKey {
            endpoints: c.endpoints.clone(),
            auth_mode: c.auth_mode,
            credentials: c.credentials.clone(),
            api_version: c.api_version.clone(),
            tls: c.tls.clone(),
            timeout: c.timeout,
            pinned_addresses: c.pinned_addresses.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoints: &[&str]) -> api::ControllerSpec {
        serde_json::from_value(serde_json::json!({
            "endpoints": endpoints,
            "credentialsSecretRef": {"name": "avi"},
            "tls": {"insecureSkipVerify": true},
            "apiVersion": "22.1.3",
            "timeoutSeconds": 7,
        }))
        .unwrap()
    }

    #[test]
    fn from_spec_applies_every_field() {
        let c = ConnectionConfig::from_spec(
            &spec(&["https://a.example", "https://b.example:8443/"]),
            Credentials::new("admin", "pw"),
            None,
        )
        .unwrap();
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.endpoints[1].port(), Some(8443));
        assert_eq!(c.auth_mode, AuthMode::Session);
        assert_eq!(c.tenant, "admin");
        assert_eq!(c.api_version.as_deref(), Some("22.1.3"));
        assert!(c.tls.insecure_skip_verify);
        assert_eq!(c.timeout, Duration::from_secs(7));
    }

    #[test]
    fn from_spec_refuses_an_endpoint_that_is_no_url() {
        let e = ConnectionConfig::from_spec(
            &spec(&["https://a.example", "avi controller"]),
            Credentials::new("admin", "pw"),
            None,
        )
        .unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains("endpoints[1]"), "{e}");
    }

    #[test]
    fn from_spec_uses_the_timeout_as_validated() {
        // The CRD's upper bound is 60 s; what the schema admits is used as it is, unclamped.
        let mut s = spec(&["https://a.example"]);
        s.timeout_seconds = 60;
        let c = ConnectionConfig::from_spec(&s, Credentials::new("admin", "pw"), None).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(60));
        s.timeout_seconds = -1;
        let e = ConnectionConfig::from_spec(&s, Credentials::new("admin", "pw"), None).unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains("timeoutSeconds"), "{e}");
    }

    #[test]
    fn debug_output_never_shows_the_password_or_ca() {
        let c = ConnectionConfig::from_spec(
            &spec(&["https://a.example"]),
            Credentials::new("admin", "hunter2-secret"),
            Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
        )
        .unwrap();
        let text = format!("{c:?} {:?}", ConnectionKey::from(&c));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("BEGIN"), "{text}");
        assert!(text.contains("admin"));
    }

    #[test]
    fn a_changed_password_is_a_different_connection() {
        let a = Credentials::new("admin", "one");
        let b = Credentials::new("admin", "two");
        assert_ne!(a, b);
    }
}
