//! The Avi connection of an AviAutoscaler, built from `spec.controller` and its Secrets.
//!
//! Secrets are read only from the AviAutoscaler's own namespace, with `get` (never list or
//! watch: the operator needs no cluster-wide view of Secrets). Only a Secret labelled
//! [`CREDENTIALS_LABEL`]` = "true"` is used: its metadata is read first (a
//! PartialObjectMetadata `get`, which carries no data), and its data only when the label is
//! there, so pointing an inline connection at another Secret reveals nothing of it. Each
//! usable Secret is cached for
//! [`SECRET_TTL`], so a thousand autoscalers sharing one Secret cost one read per TTL; a changed
//! Secret is picked up within the TTL, and at once after the controller refuses the
//! credentials (the cache entry is dropped on an auth failure).

use std::{collections::BTreeMap, time::Duration};

use api::{ControllerSpec, SecretKeyRef};
use avi::{ConnectionConfig, Credentials};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client};

use crate::ttl_cache::TtlCache;

/// The label a Secret needs before an inline connection may use it.
pub const CREDENTIALS_LABEL: &str = "autoscaling.avi.dev/credentials";

/// How long a Secret read is reused.
pub const SECRET_TTL: Duration = Duration::from_secs(30);

/// Why no connection could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
    },
    /// The Secret lacks a key.
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    MissingKey {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The Secret lacks the [`CREDENTIALS_LABEL`] label (its data was not read).
    #[error(
        "Secret {namespace}/{name} is not labelled {CREDENTIALS_LABEL}=\"true\", so it may not be used by an inline connection"
    )]
    SecretNotAllowed {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
    },
    /// The operator may not read the Secret (the API server answered 403).
    #[error("reading Secret {namespace}/{name} is forbidden")]
    SecretForbidden {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Reading the Secret failed for another reason.
    #[error("reading Secret {namespace}/{name}")]
    Read {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// `spec.controller` cannot be turned into a connection (an endpoint that is no URL: the
    /// operator checks specs against the CRD first, so only a gap in that check leads here).
    #[error("spec.controller")]
    Config(#[source] avi::Error),
}

impl ConnectionError {
    /// The condition reason for this error.
    pub fn reason(&self) -> api::Reason {
        match self {
            ConnectionError::SecretNotFound { .. } | ConnectionError::MissingKey { .. } => {
                api::Reason::SecretNotFound
            }
            ConnectionError::SecretForbidden { .. } => api::Reason::SecretForbidden,
            ConnectionError::SecretNotAllowed { .. } => api::Reason::SecretNotAllowed,
            ConnectionError::Read { .. } => api::Reason::SecretNotFound,
            ConnectionError::Config(_) => api::Reason::InvalidSpec,
        }
    }

    /// The error for a failed read of Secret `namespace/name`.
    fn read(namespace: &str, name: &str, source: kube::Error) -> Self {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        match &source {
            kube::Error::Api(status) if status.code == 403 => ConnectionError::SecretForbidden {
                namespace,
                name,
                source,
            },
            _ => ConnectionError::Read {
                namespace,
                name,
                source,
            },
        }
    }
}

/// The data of a Secret.
type SecretData = BTreeMap<String, ByteString>;

/// Whose Secrets a connection reads, which decides whether they must carry the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretOrigin {
    /// An AviController's Secrets in the cluster-resource namespace, set up by the cluster's
    /// administrators: read as they are.
    AviController,
    /// An inline `spec.controller`'s Secrets in the autoscaler's namespace: only those labelled
    /// `autoscaling.avi.dev/credentials: "true"`, and their data only after the label is seen.
    Inline,
}

/// Builds connections, caching Secret reads.
pub struct Connections {
    client: Client,
    /// Secret data by (namespace, name), and whether the Secret carries the credentials label.
    secrets: TtlCache<(String, String), (SecretData, bool)>,
}

impl Connections {
    /// A connection builder reading Secrets with `client`.
    pub fn new(client: Client) -> Self {
        Connections {
            client,
            secrets: TtlCache::new(SECRET_TTL),
        }
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
        origin: SecretOrigin,
    ) -> Result<SecretData, ConnectionError> {
        let require_label = origin == SecretOrigin::Inline;
        let not_found = || ConnectionError::SecretNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let not_allowed = || ConnectionError::SecretNotAllowed {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let key = (namespace.to_owned(), name.to_owned());
        if let Some((data, labelled)) = self.secrets.get(&key) {
            // A Secret cached for an AviController is no inline connection's to use unless it
            // carries the label too.
            if require_label && !labelled {
                return Err(not_allowed());
            }
            return Ok(data);
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        if require_label {
            // The label is checked on the metadata alone, so an unlabelled Secret's data is
            // never transferred.
            let meta = api
                .get_metadata_opt(name)
                .await
                .map_err(|source| ConnectionError::read(namespace, name, source))?;
            let Some(meta) = meta else {
                return Err(not_found());
            };
            if !is_labelled(meta.metadata.labels.as_ref()) {
                return Err(not_allowed());
            }
        }
        let secret = api
            .get_opt(name)
            .await
            .map_err(|source| ConnectionError::read(namespace, name, source))?;
        let Some(secret) = secret else {
            return Err(not_found());
        };
        let labelled = is_labelled(secret.metadata.labels.as_ref());
        // The label may have been removed between the two reads.
        if require_label && !labelled {
            return Err(not_allowed());
        }
        let data = secret.data.unwrap_or_default();
        self.secrets.insert(key, (data.clone(), labelled));
        Ok(data)
    }

    /// Drops the cached Secrets that no AviAutoscaler references any more (`is_referenced`
    /// gets namespace and name) and those past their time to live.
    pub fn retain_secrets(&self, is_referenced: impl Fn(&str, &str) -> bool) {
        self.secrets.retain(|(ns, name)| is_referenced(ns, name));
    }

    /// The Secrets `spec.controller` reads: the credentials and the optional CA bundle.
    pub fn secret_names(controller: &ControllerSpec) -> impl Iterator<Item = &str> {
        std::iter::once(controller.credentials_secret_ref.name.as_str()).chain(
            controller
                .tls
                .as_ref()
                .and_then(|t| t.ca_secret_ref.as_ref())
                .map(|ca| ca.name.as_str()),
        )
    }

    /// Forgets a cached Secret, so the next reconcile reads it again.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.secrets
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Forgets every Secret an AviAutoscaler's `spec.controller` uses (after the controller
    /// refused them).
    pub fn forget_for(&self, namespace: &str, controller: &ControllerSpec) {
        for name in Self::secret_names(controller) {
            self.forget(namespace, name);
        }
    }

    fn key(
        data: &SecretData,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Vec<u8>, ConnectionError> {
        data.get(key)
            .map(|b| b.0.clone())
            .ok_or_else(|| ConnectionError::MissingKey {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                key: key.to_owned(),
            })
    }

    /// The connection described by `c`, with its Secrets from `namespace`: an AviAutoscaler's
    /// own namespace for an inline `spec.controller`, the cluster-resource namespace for an
    /// AviController.
    pub async fn build(
        &self,
        namespace: &str,
        c: &ControllerSpec,
        origin: SecretOrigin,
    ) -> Result<ConnectionConfig, ConnectionError> {
        let secret_name = &c.credentials_secret_ref.name;
        let data = self.secret(namespace, secret_name, origin).await?;
        let username = Self::key(&data, namespace, secret_name, "username")?;
        let password = Self::key(&data, namespace, secret_name, "password")?;
        let extra_ca_pem = match c.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
            Some(SecretKeyRef { name, key }) => {
                let ca = self.secret(namespace, name, origin).await?;
                Some(Self::key(&ca, namespace, name, key)?)
            }
            None => None,
        };
        let credentials = Credentials::new(
            String::from_utf8_lossy(&username).trim().to_owned(),
            String::from_utf8_lossy(&password)
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        );
        ConnectionConfig::from_spec(c, credentials, extra_ca_pem).map_err(ConnectionError::Config)
    }
}

/// Whether a Secret's labels carry [`CREDENTIALS_LABEL`]` = "true"`.
fn is_labelled(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(CREDENTIALS_LABEL))
        .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("refused", reason).with_code(code)))
    }

    #[test]
    fn a_forbidden_secret_is_not_reported_as_missing() {
        let e = ConnectionError::read("ns", "avi", api_error(403, "Forbidden"));
        assert!(
            matches!(e, ConnectionError::SecretForbidden { .. }),
            "{e:?}"
        );
        assert_eq!(e.reason(), api::Reason::SecretForbidden);
        assert_eq!(e.to_string(), "reading Secret ns/avi is forbidden");
    }

    #[test]
    fn only_the_exact_label_value_allows_a_secret() {
        let labels = |v: &str| BTreeMap::from([(CREDENTIALS_LABEL.to_owned(), v.to_owned())]);
        assert!(is_labelled(Some(&labels("true"))));
        assert!(!is_labelled(Some(&labels("True"))));
        assert!(!is_labelled(Some(&labels(""))));
        assert!(!is_labelled(Some(&BTreeMap::new())));
        assert!(!is_labelled(None));
        let e = ConnectionError::SecretNotAllowed {
            namespace: "ns".into(),
            name: "avi".into(),
        };
        assert_eq!(e.reason(), api::Reason::SecretNotAllowed);
        assert!(e.to_string().contains(CREDENTIALS_LABEL), "{e}");
    }

    #[test]
    fn other_read_failures_keep_their_reason() {
        let e = ConnectionError::read("ns", "avi", api_error(500, "InternalError"));
        assert!(matches!(e, ConnectionError::Read { .. }), "{e:?}");
        assert_eq!(e.reason(), api::Reason::SecretNotFound);
        let missing = ConnectionError::SecretNotFound {
            namespace: "ns".into(),
            name: "avi".into(),
        };
        assert_eq!(missing.reason(), api::Reason::SecretNotFound);
    }
}
