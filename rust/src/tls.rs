//! TLS client settings mirroring the Go LXD client: client identity, pinned server certificate,
//! private CA, or the system trust store.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{self, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::error::{chain, Error};

/// PEM inputs of an HTTPS endpoint, as the provider config names them.
#[derive(Debug, Default, Clone, Copy)]
pub struct TlsOptions<'a> {
    /// Client certificate (chain) presented to the server.
    pub client_cert: Option<&'a [u8]>,
    /// Private key of the client certificate (PKCS#1, PKCS#8 or SEC1).
    pub client_key: Option<&'a [u8]>,
    /// The server's own certificate: trusted exactly, whatever its name or issuer.
    pub server_cert: Option<&'a [u8]>,
    /// A CA that must have issued the server's certificate (name is still checked).
    pub ca_cert: Option<&'a [u8]>,
}

/// Build the rustls client configuration for `opts`; bad PEM is an `Error::Invalid`.
pub fn client_config(opts: &TlsOptions<'_>) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if let Some(pem) = opts.server_cert {
        Arc::new(PinnedServerCert {
            pinned: first_cert(pem, "server_cert")?,
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let roots = match opts.ca_cert {
            Some(pem) => ca_roots(pem)?,
            None => system_roots(),
        };
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::Invalid(format!("unusable CA certificates: {e}")))?
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (opts.client_cert, opts.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client_cert")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => {
                        invalid("client_key does not belong to client_cert")
                    }
                    other => Error::Invalid(format!("client_key: unusable key: {other}")),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(invalid("client_cert is set but client_key is not")),
        (None, Some(_)) => return Err(invalid("client_key is set but client_cert is not")),
    };
    Ok(Arc::new(config))
}

fn invalid(msg: &str) -> Error {
    Error::Invalid(msg.to_owned())
}

/// A one-line, human description of a PEM decoding failure.
fn pem_problem(err: &pem::Error) -> &'static str {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line",
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM section",
        pem::Error::NoItemsFound => "no PEM section of the expected type",
        pem::Error::SectionTooLarge => "PEM section too large",
        _ => "unreadable PEM data",
    }
}

/// All certificates in a PEM bundle; at least one is required.
fn certs(pem: &[u8], field: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("{field}: {}", pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(Error::Invalid(format!("{field}: no PEM CERTIFICATE found")));
    }
    Ok(certs)
}

fn first_cert(pem: &[u8], field: &str) -> Result<CertificateDer<'static>, Error> {
    let mut all = certs(pem, field)?;
    Ok(all.swap_remove(0))
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            "client_key: no PEM private key found (expected PRIVATE KEY, RSA PRIVATE KEY \
             or EC PRIVATE KEY)",
        ),
        other => Error::Invalid(format!("client_key: {}", pem_problem(&other))),
    })
}

fn ca_roots(pem: &[u8]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem, "ca_cert")? {
        roots
            .add(cert)
            .map_err(|e| Error::Invalid(format!("ca_cert: not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

// The operating system's store, as Go's crypto/x509 uses it: honours SSL_CERT_FILE and
// SSL_CERT_DIR and certificates an operator installed, and follows distribution updates
// without rebuilding the wheel (webpki-roots would freeze Mozilla's list at build time).
// Unreadable entries are skipped; an empty store makes every handshake fail with a clear
// "unknown issuer" error at request time.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// A one-line description of a failed handshake, naming the certificate problem plainly.
pub fn handshake_problem(err: &std::io::Error) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return chain(err);
    };
    match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other.0.to_string(),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "server certificate is not issued by a trusted CA (unknown issuer)".to_owned()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server refused the handshake (TLS alert {alert:?})")
        }
        other => other.to_string(),
    }
}

/// Accepts exactly one server certificate, byte for byte, like the Go LXD client's
/// `TLSServerCert`; handshake signatures are still verified against it.
#[derive(Debug)]
struct PinnedServerCert {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
struct PinMismatch;

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("server certificate does not match the configured server_cert")
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Arc<ClientConfig>, Error>) -> String {
        match result {
            Ok(_) => String::from("ok"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_to_system_roots_without_client_identity() {
        assert_eq!(message(client_config(&TlsOptions::default())), "ok");
    }

    #[test]
    fn garbage_server_cert_is_rejected() {
        let opts = TlsOptions {
            server_cert: Some(b"not a certificate"),
            ..TlsOptions::default()
        };
        assert_eq!(
            message(client_config(&opts)),
            "server_cert: no PEM CERTIFICATE found"
        );
    }

    #[test]
    fn broken_base64_in_ca_cert_is_rejected() {
        let opts = TlsOptions {
            ca_cert: Some(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            ..TlsOptions::default()
        };
        assert_eq!(
            message(client_config(&opts)),
            "ca_cert: invalid base64 inside a PEM section"
        );
    }

    #[test]
    fn key_without_certificate_is_rejected() {
        let opts = TlsOptions {
            client_key: Some(b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
            ..TlsOptions::default()
        };
        assert_eq!(
            message(client_config(&opts)),
            "client_key is set but client_cert is not"
        );
    }
}
