//! The policy for inline connections (`spec.controller`): whether they are allowed at all,
//! where they may go, and whether they may skip certificate checks.
//!
//! An inline connection lets whoever may create an AviAutoscaler choose a URL and a Secret, so
//! it is off unless the operator runs with `--allow-inline-controllers`. With it on,
//! `--allowed-endpoints` limits the destinations: each pattern is a host name (`avi.example.com`),
//! a wildcard (`*.example.com`, any name below the domain) or a CIDR (`10.0.0.0/8`,
//! `fd00::/8`; a bare address is a one-address CIDR). An endpoint whose host is matched by a
//! name pattern is allowed; any other host is resolved and allowed only when every address it
//! resolves to lies in a CIDR pattern (an IP literal is checked as it is). The check runs before
//! any request, and the addresses it checked are pinned into the connection
//! ([`avi::ConnectionConfig::pinned_addresses`]), so a DNS answer that changes between the
//! check and the connection cannot send it elsewhere. A name matched by a name pattern is
//! trusted as a name and resolved when connecting.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use api::ControllerSpec;
use ipnet::IpNet;
use url::{Host, Url};

/// One `--allowed-endpoints` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointPattern {
    /// Exactly this host name (lower case, no trailing dot).
    Host(String),
    /// Any name below this domain (`*.example.com` is stored as `example.com`).
    Subdomain(String),
    /// Any address in this network.
    Net(IpNet),
}

/// A pattern that is neither a host name, a `*.domain` nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a host name, *.domain or CIDR")]
pub struct PatternError(String);

/// A host name as compared: lower case, without the root's trailing dot.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is a DNS name of letters, digits, `-` and `_` labels.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl FromStr for EndpointPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(EndpointPattern::Net(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(EndpointPattern::Net(IpNet::from(ip)));
        }
        let invalid = || PatternError(s.to_owned());
        if let Some(domain) = s.strip_prefix("*.") {
            let domain = normalise(domain);
            return is_host_name(&domain)
                .then_some(EndpointPattern::Subdomain(domain))
                .ok_or_else(invalid);
        }
        let host = normalise(s);
        is_host_name(&host)
            .then_some(EndpointPattern::Host(host))
            .ok_or_else(invalid)
    }
}

impl fmt::Display for EndpointPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointPattern::Host(h) => f.write_str(h),
            EndpointPattern::Subdomain(d) => write!(f, "*.{d}"),
            EndpointPattern::Net(n) => write!(f, "{n}"),
        }
    }
}

impl EndpointPattern {
    /// Whether this name pattern matches host name `name` (normalised).
    fn matches_name(&self, name: &str) -> bool {
        match self {
            EndpointPattern::Host(h) => h == name,
            EndpointPattern::Subdomain(d) => name
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            EndpointPattern::Net(_) => false,
        }
    }

    /// Whether this CIDR pattern contains `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        matches!(self, EndpointPattern::Net(n) if n.contains(&ip))
    }
}

/// Why an inline connection is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Inline connections are off.
    #[error(
        "spec.controller (an inline connection) is not allowed by this operator \
         (it runs without --allow-inline-controllers); use spec.controllerRef to an AviController"
    )]
    InlineOff,
    /// `insecureSkipVerify` without `--allow-insecure-inline`.
    #[error(
        "spec.controller.tls.insecureSkipVerify is not allowed on inline connections \
         (the operator runs without --allow-insecure-inline)"
    )]
    InsecureSkipVerify,
    /// An endpoint outside `--allowed-endpoints`.
    #[error("endpoint {endpoint} is not allowed by --allowed-endpoints{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OutsideAllowedEndpoints {
        /// The endpoint as written in the spec.
        endpoint: String,
        /// What was found (the address outside every CIDR, or the failed resolution).
        detail: Option<String>,
    },
}

impl PolicyError {
    /// The condition reason for this refusal.
    pub fn reason(&self) -> api::Reason {
        match self {
            PolicyError::InlineOff => api::Reason::InlineControllerNotAllowed,
            PolicyError::InsecureSkipVerify | PolicyError::OutsideAllowedEndpoints { .. } => {
                api::Reason::EndpointNotAllowed
            }
        }
    }
}

/// The addresses an allowed connection must use, by host name.
pub type Pinned = BTreeMap<String, BTreeSet<SocketAddr>>;

/// What the operator's flags allow for inline connections.
#[derive(Clone, Debug, Default)]
pub struct InlinePolicy {
    /// `--allow-inline-controllers`.
    pub allowed: bool,
    /// `--allowed-endpoints` (empty: any endpoint).
    pub endpoints: Vec<EndpointPattern>,
    /// `--allow-insecure-inline`.
    pub allow_insecure: bool,
}

impl InlinePolicy {
    /// Checks an inline connection against the policy, resolving host names that no name
    /// pattern matches; returns the addresses the connection must use for those names. Makes
    /// no request to the endpoints.
    pub async fn check(&self, spec: &ControllerSpec) -> Result<Pinned, PolicyError> {
        if !self.allowed {
            return Err(PolicyError::InlineOff);
        }
        if spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify) && !self.allow_insecure {
            return Err(PolicyError::InsecureSkipVerify);
        }
        let mut pinned = Pinned::new();
        if self.endpoints.is_empty() {
            return Ok(pinned);
        }
        for endpoint in &spec.endpoints {
            if let Some((name, addrs)) = self.check_endpoint(endpoint).await? {
                pinned.entry(name).or_default().extend(addrs);
            }
        }
        Ok(pinned)
    }

    /// Checks one endpoint; for a host name checked by its addresses, returns them.
    async fn check_endpoint(
        &self,
        endpoint: &str,
    ) -> Result<Option<(String, Vec<SocketAddr>)>, PolicyError> {
        let refuse = |detail: Option<String>| PolicyError::OutsideAllowedEndpoints {
            endpoint: endpoint.to_owned(),
            detail,
        };
        let url = Url::parse(endpoint).map_err(|_| refuse(Some("not a URL".to_owned())))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let (name, addresses): (Option<String>, Vec<SocketAddr>) = match url.host() {
            None => return Err(refuse(Some("no host".to_owned()))),
            Some(Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            Some(Host::Domain(host)) => {
                let name = normalise(host);
                if self.endpoints.iter().any(|p| p.matches_name(&name)) {
                    return Ok(None);
                }
                if !self
                    .endpoints
                    .iter()
                    .any(|p| matches!(p, EndpointPattern::Net(_)))
                {
                    return Err(refuse(None));
                }
                let addresses = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| refuse(Some(format!("resolving {name}: {e}"))))?
                    .collect();
                // Pinned under the name as the URL spells it: that is what the client looks up.
                (Some(host.to_owned()), addresses)
            }
        };
        if addresses.is_empty() {
            return Err(refuse(Some("the name resolves to no address".to_owned())));
        }
        match addresses
            .iter()
            .find(|a| !self.endpoints.iter().any(|p| p.contains(a.ip())))
        {
            Some(outside) => Err(refuse(Some(format!(
                "{} is outside every allowed CIDR",
                outside.ip()
            )))),
            None => Ok(name.map(|n| (n, addresses))),
        }
    }
}

#[cfg(test)]
mod tests {
    use api::TlsSpec;

    use super::*;

    fn policy(patterns: &[&str]) -> InlinePolicy {
        InlinePolicy {
            allowed: true,
            endpoints: patterns.iter().map(|p| p.parse().unwrap()).collect(),
            allow_insecure: false,
        }
    }

    fn spec(endpoints: &[&str]) -> ControllerSpec {
        let mut spec: ControllerSpec = serde_json::from_value(serde_json::json!({
            "endpoints": endpoints,
            "credentialsSecretRef": {"name": "avi"},
        }))
        .unwrap();
        spec.tls = None;
        spec
    }

    async fn allowed(patterns: &[&str], endpoint: &str) -> bool {
        policy(patterns).check(&spec(&[endpoint])).await.is_ok()
    }

    #[test]
    fn patterns_parse_into_their_kind() {
        let p = |s: &str| s.parse::<EndpointPattern>().unwrap();
        assert_eq!(
            p("Avi.Example.com."),
            EndpointPattern::Host("avi.example.com".into())
        );
        assert_eq!(
            p("*.example.com"),
            EndpointPattern::Subdomain("example.com".into())
        );
        assert_eq!(
            p("10.1.2.3/8"),
            EndpointPattern::Net("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            p("fd00::/8"),
            EndpointPattern::Net("fd00::/8".parse().unwrap())
        );
        assert_eq!(
            p("10.0.0.7"),
            EndpointPattern::Net("10.0.0.7/32".parse().unwrap())
        );
        for bad in ["", "*.", "a..b", "http://x", "10.0.0.0/33", "*.*.x", "a b"] {
            assert!(bad.parse::<EndpointPattern>().is_err(), "{bad:?} parsed");
        }
    }

    #[tokio::test]
    async fn host_and_wildcard_patterns_match_names() {
        assert!(allowed(&["avi.example.com"], "https://AVI.example.com:8443").await);
        assert!(!allowed(&["avi.example.com"], "https://avi2.example.com").await);
        assert!(allowed(&["*.example.com"], "https://a.b.example.com").await);
        // The wildcard is for names below the domain, not the domain or look-alikes.
        assert!(!allowed(&["*.example.com"], "https://example.com").await);
        assert!(!allowed(&["*.example.com"], "https://evilexample.com").await);
        // A name pattern does not match an address.
        assert!(!allowed(&["avi.example.com"], "https://10.0.0.1").await);
    }

    #[tokio::test]
    async fn cidr_patterns_match_addresses_v4_and_v6() {
        assert!(allowed(&["10.0.0.0/8"], "https://10.20.30.40").await);
        assert!(!allowed(&["10.0.0.0/8"], "https://11.0.0.1").await);
        assert!(allowed(&["fd00::/8"], "https://[fd12::1]:443").await);
        assert!(!allowed(&["fd00::/8"], "https://[fe80::1]").await);
        assert!(allowed(&["10.0.0.0/8"], "https://[::ffff:10.0.0.1]").await);
        assert!(allowed(&["192.168.1.5"], "https://192.168.1.5").await);
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        // localhost resolves to loopback addresses (127.0.0.1 and, where configured, ::1).
        assert!(allowed(&["127.0.0.0/8", "::1/128"], "https://localhost:8443").await);
        let refused = policy(&["10.0.0.0/8"])
            .check(&spec(&["https://localhost"]))
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), api::Reason::EndpointNotAllowed);
        assert!(
            refused.to_string().contains("outside every allowed CIDR"),
            "{refused}"
        );
        // A name that does not resolve is refused, not let through.
        assert!(!allowed(&["10.0.0.0/8"], "https://no-such-host.invalid").await);
        // Without any CIDR pattern an unmatched name is refused without a lookup.
        assert!(!allowed(&["avi.example.com"], "https://localhost").await);
    }

    #[tokio::test]
    async fn resolved_names_are_pinned_to_the_checked_addresses() {
        let pinned = policy(&["127.0.0.0/8", "::1/128"])
            .check(&spec(&["https://localhost:8443", "https://127.0.0.2"]))
            .await
            .unwrap();
        let addrs = &pinned["localhost"];
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8443),
            "{addrs:?}"
        );
        // Addresses need no pin; names matched by a name pattern are trusted as names.
        assert_eq!(pinned.len(), 1, "{pinned:?}");
        let by_name = policy(&["localhost"])
            .check(&spec(&["https://localhost"]))
            .await
            .unwrap();
        assert!(by_name.is_empty(), "{by_name:?}");
    }

    #[tokio::test]
    async fn every_endpoint_must_be_allowed() {
        let p = policy(&["10.0.0.0/8"]);
        assert!(
            p.check(&spec(&["https://10.0.0.1", "https://10.0.0.2"]))
                .await
                .is_ok()
        );
        let e = p
            .check(&spec(&["https://10.0.0.1", "https://172.16.0.1"]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("https://172.16.0.1"), "{e}");
    }

    #[tokio::test]
    async fn no_patterns_allow_any_endpoint_but_not_inline_when_off() {
        assert!(allowed(&[], "https://anything.example").await);
        let off = InlinePolicy::default();
        let e = off.check(&spec(&["https://10.0.0.1"])).await.unwrap_err();
        assert_eq!(e.reason(), api::Reason::InlineControllerNotAllowed);
        assert!(e.to_string().contains("--allow-inline-controllers"), "{e}");
    }

    #[tokio::test]
    async fn insecure_needs_its_own_flag() {
        let mut s = spec(&["https://10.0.0.1"]);
        s.tls = Some(TlsSpec {
            insecure_skip_verify: true,
            ..Default::default()
        });
        let mut p = policy(&[]);
        let e = p.check(&s).await.unwrap_err();
        assert_eq!(e.reason(), api::Reason::EndpointNotAllowed);
        assert!(e.to_string().contains("--allow-insecure-inline"), "{e}");
        p.allow_insecure = true;
        assert!(p.check(&s).await.is_ok());
    }
}
