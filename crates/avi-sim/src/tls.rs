//! TLS: a CA and a server certificate generated at start, or a certificate and key from files.
//! rustls with the ring provider, HTTP/1.1 only.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the server certificate comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TlsSource {
    /// A fresh CA and a server certificate signed by it, with SANs for `127.0.0.1`, `::1`,
    /// `localhost` and every listen host.
    #[default]
    Generate,
    /// A PEM certificate chain and PEM private key. The chain is what is published as "the CA"
    /// (write-out and [`crate::RunningSim::ca_pem`]), so give a self-signed certificate or put
    /// the CA in the chain.
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("cannot read {what} from {path}")]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// Generating the certificates failed.
    #[error("cannot generate the certificates")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("the certificate and key are not usable")]
    Config(#[from] rustls::Error),
}

/// The server's TLS configuration and the CA clients should trust.
pub(crate) struct TlsMaterial {
    pub config: Arc<ServerConfig>,
    pub ca_pem: String,
}

/// Builds the TLS configuration.
pub(crate) fn material(source: &TlsSource, hosts: &[IpAddr]) -> Result<TlsMaterial, TlsError> {
    let (chain, key, ca_pem) = match source {
        TlsSource::Generate => generate(hosts)?,
        TlsSource::Files { cert, key } => from_files(cert, key)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        ca_pem,
    })
}

type Chain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String);

fn generate(hosts: &[IpAddr]) -> Result<Chain, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "avi-sim CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for h in hosts {
        let s = h.to_string();
        if !h.is_unspecified() && !names.contains(&s) {
            names.push(s);
        }
    }
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "avi-sim controller");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Generate(rcgen::Error::PemError(e.to_string())))?;
    Ok((
        vec![cert.der().clone(), ca.der().clone()],
        key_der,
        ca.pem(),
    ))
}

fn from_files(cert: &Path, key: &Path) -> Result<Chain, TlsError> {
    fn file_err(
        what: &'static str,
        path: &Path,
    ) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + use<> {
        let path = path.to_path_buf();
        move |source| TlsError::File { what, path, source }
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(file_err("certificate", cert))?
        .collect::<Result<_, _>>()
        .map_err(file_err("certificate", cert))?;
    if chain.is_empty() {
        return Err(TlsError::File {
            what: "certificate",
            path: cert.to_path_buf(),
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(file_err("private key", key))?;
    let pem = std::fs::read_to_string(cert).map_err(|e| TlsError::File {
        what: "certificate",
        path: cert.to_path_buf(),
        source: rustls::pki_types::pem::Error::Io(e),
    })?;
    Ok((chain, key_der, pem))
}
