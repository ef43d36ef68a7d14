//! Who this binary is: the name, version and commit it shows in `--version` and in the
//! User-Agent of every Kubernetes and Avi request, so that an API server's audit log, its
//! per-client metrics and the controller's logs can tell the operator apart.

use http::{HeaderValue, header::USER_AGENT as USER_AGENT_HEADER};

/// `<version> (<git sha>)`; the sha comes from build.rs (`unknown` when it could not be read).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("AVI_AUTOSCALER_GIT_SHA"),
    ")"
);

/// `avi-autoscaler/<version> (<git sha>)`, as client-go names its binaries.
pub const USER_AGENT: &str = concat!(
    "avi-autoscaler/",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("AVI_AUTOSCALER_GIT_SHA"),
    ")"
);

/// Makes every request of a client built from `config` carry [`USER_AGENT`].
pub fn identify(config: &mut kube::Config) {
    config.headers.retain(|(name, _)| name != USER_AGENT_HEADER);
    // build.rs keeps only header-safe characters in the sha, so the value is always valid.
    config
        .headers
        .push((USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_product_version_and_commit() {
        let (product, rest) = USER_AGENT
            .split_once(' ')
            .expect("a comment after the product");
        assert_eq!(
            product,
            concat!("avi-autoscaler/", env!("CARGO_PKG_VERSION"))
        );
        let sha = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .expect("the sha in parentheses");
        assert!(!sha.is_empty() && HeaderValue::from_str(USER_AGENT).is_ok());
        assert!(USER_AGENT.ends_with(VERSION));
    }

    #[test]
    fn identify_sets_one_user_agent() {
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().expect("a URI"));
        config
            .headers
            .push((USER_AGENT_HEADER, HeaderValue::from_static("other/1")));
        identify(&mut config);
        identify(&mut config);
        let agents: Vec<_> = config
            .headers
            .iter()
            .filter(|(n, _)| n == USER_AGENT_HEADER)
            .map(|(_, v)| v.to_str().expect("ASCII"))
            .collect();
        assert_eq!(agents, [USER_AGENT]);
    }
}
