//! The rustls client configuration: ring provider, system roots plus an optional CA bundle, or
//! no verification at all when `insecureSkipVerify` asks for it.
//!
//! reqwest is built with `rustls-no-provider`, so the configuration is built here and handed
//! to it whole: that gives exact control over the provider (ring, never aws-lc-rs) and the
//! trust store.

use std::sync::{Arc, OnceLock};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

use crate::{
    config::TlsConfig,
    error::{Error, Kind},
};

/// The system's trusted roots, loaded once per process (reading them means reading files).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            tracing::warn!(
                errors = found.errors.len(),
                loaded = found.certs.len(),
                "some system CA certificates could not be loaded"
            );
        }
        found.certs
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration for `tls`.
pub(crate) fn client_config(tls: &TlsConfig) -> Result<ClientConfig, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(Kind::Config).with_source(e))?;
    let mut config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        // A system root rustls cannot use is skipped, as every TLS client does.
        let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(pem) = &tls.extra_ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    Error::new(Kind::Config)
                        .with_detail(format!("the CA bundle is not valid PEM: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::new(Kind::Config)
                        .with_detail("the CA bundle holds a certificate that cannot be used")
                        .with_source(e)
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(
                    Error::new(Kind::Config).with_detail("the CA bundle holds no PEM certificate")
                );
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any certificate but still checks the handshake signatures, so the connection is
/// at least consistent (what reqwest's `danger_accept_invalid_certs` does).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_verifies_with_system_roots() {
        let c = client_config(&TlsConfig::default()).unwrap();
        assert_eq!(c.alpn_protocols.len(), 2);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let e = client_config(&TlsConfig {
            insecure_skip_verify: false,
            extra_ca_pem: Some(b"not a pem at all".to_vec()),
        })
        .unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn a_broken_certificate_is_refused() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = client_config(&TlsConfig {
            insecure_skip_verify: false,
            extra_ca_pem: Some(pem.to_vec()),
        })
        .unwrap_err();
        assert!(e.is_config(), "{e}");
    }
}
