//! TLS to the token endpoint: the client certificate of mutual TLS (RFC 8705), and extra roots
//! for a token endpoint whose certificate authority the system does not know.
//!
//! Both go into the HTTP client this crate builds for itself; a client of your own (given to
//! [`http_client`](crate::ConfigBuilder::http_client)) is already built, so they cannot be
//! added to it: configure them on it instead.

use std::error::Error;
use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretSlice};

use crate::error::ConfigError;

/// A TLS client certificate and its private key, for mutual TLS with the token endpoint:
/// `tls_client_auth` or `self_signed_tls_client_auth` (RFC 8705 §2), or certificate-bound
/// tokens with any method (RFC 8705 §3).
///
/// `Debug` never shows the private key. Give it to
/// [`ConfigBuilder::client_certificate`](crate::ConfigBuilder::client_certificate).
///
/// ```no_run
/// use tower_client_credentials::{ClientCertificate, Config};
///
/// let certificate = ClientCertificate::from_pem(
///     std::fs::read("client.crt")?, // the certificate, then any intermediates
///     std::fs::read("client.key")?, // its private key, unencrypted
/// )?;
/// let config = Config::builder_without_secret("https://idp.example.com/token", "my-client")
///     .client_certificate(certificate) // implies `tls_client_auth`
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientCertificate {
    identity: reqwest::Identity,
    /// How many certificates the chain holds, for `Debug`.
    certificates: usize,
}

impl ClientCertificate {
    /// A certificate chain (the client's certificate first, then any intermediates) and the
    /// certificate's private key, both PEM. The key may be PKCS #8 (`BEGIN PRIVATE KEY`),
    /// PKCS #1 (`BEGIN RSA PRIVATE KEY`) or SEC 1 (`BEGIN EC PRIVATE KEY`), unencrypted.
    ///
    /// That the key belongs to the certificate is checked when the configuration is built.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `client_certificate` when the chain holds no certificate, the
    /// key no private key, or the key is encrypted.
    pub fn from_pem(
        certificate_chain: impl AsRef<[u8]>,
        private_key: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::new("client_certificate", reason);
        let chain = certificate_chain.as_ref();
        let certificates = count(chain, b"-----BEGIN CERTIFICATE-----");
        if certificates == 0 {
            return Err(invalid("the certificate chain holds no PEM `CERTIFICATE`"));
        }
        let key = private_key.as_ref();
        if count(key, b"ENCRYPTED PRIVATE KEY-----") > 0 {
            return Err(invalid("the private key is encrypted; give it decrypted"));
        }
        if count(key, b"PRIVATE KEY-----") == 0 {
            return Err(invalid("the private key PEM holds no `PRIVATE KEY`"));
        }
        // The key first: reqwest takes the last key and every certificate of one buffer.
        let mut pem = Vec::with_capacity(key.len() + chain.len() + 1);
        pem.extend_from_slice(key);
        pem.push(b'\n');
        pem.extend_from_slice(chain);
        let pem = SecretSlice::from(pem);
        let identity = reqwest::Identity::from_pem(pem.expose_secret()).map_err(|e| {
            ConfigError::new("client_certificate", format!("is not usable ({})", causes(&e)))
        })?;
        Ok(Self { identity, certificates })
    }
}

impl ClientCertificate {
    /// Reads the certificate from its chain and key files; an error names the setting of the
    /// file at fault (`client_certificate_file`, `client_certificate_key_file`).
    pub(crate) fn read_files(chain: &Path, key: &Path) -> Result<Self, ConfigError> {
        let chain = super::read_pem("client_certificate_file", chain)?;
        let key = super::read_pem("client_certificate_key_file", key)?;
        Self::from_pem(chain, key)
            .map_err(|error| ConfigError::new("client_certificate_file", error.reason()))
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificates", &self.certificates)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// This crate's own client: no redirects, a `User-Agent` naming the crate, and the client
/// certificate and extra roots, if any.
pub(crate) fn default_http_client(
    certificate: Option<&ClientCertificate>,
    roots: &[Vec<u8>],
) -> Result<reqwest::Client, ConfigError> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")));
    build_client(builder, certificate, roots)
}

/// Adds the client certificate and the extra roots to `builder`, and builds the client.
fn build_client(
    mut builder: reqwest::ClientBuilder,
    certificate: Option<&ClientCertificate>,
    roots: &[Vec<u8>],
) -> Result<reqwest::Client, ConfigError> {
    for pem in roots {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|certificates| !certificates.is_empty())
            .ok_or_else(|| {
                ConfigError::new("tls_root_certificate", "holds no usable PEM `CERTIFICATE`")
            })?;
        builder = builder.tls_certs_merge(certificates);
    }
    if let Some(certificate) = certificate {
        builder = builder.identity(certificate.identity.clone());
    }
    builder.build().map_err(|e| match certificate {
        // The TLS configuration is assembled here: a key that does not match its certificate
        // shows now.
        Some(_) => {
            ConfigError::new("client_certificate", format!("is not usable ({})", causes(&e)))
        }
        None => ConfigError::new(
            "http_client",
            format!("could not build the default client ({})", causes(&e)),
        ),
    })
}

/// Refuses TLS settings that a client of the user's cannot receive.
pub(crate) fn check_own_client(
    certificate: Option<&ClientCertificate>,
    roots: &[Vec<u8>],
) -> Result<(), ConfigError> {
    if certificate.is_some() {
        return Err(ConfigError::new(
            "client_certificate",
            "cannot be added to a client given with `http_client`: give it to that client \
             (`reqwest::ClientBuilder::identity`) and choose the method with `auth_method`",
        ));
    }
    if !roots.is_empty() {
        return Err(ConfigError::new(
            "tls_root_certificate",
            "cannot be added to a client given with `http_client`: give it to that client \
             (`reqwest::ClientBuilder::tls_certs_merge`)",
        ));
    }
    Ok(())
}

/// An error and its causes, `: `-separated.
fn causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certified() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["client.example".to_owned()]).unwrap()
    }

    fn key_pem(key: &rcgen::KeyPair) -> String {
        key.serialize_pem()
    }

    fn cert_pem(certified: &rcgen::CertifiedKey<rcgen::KeyPair>) -> String {
        certified.cert.pem()
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let certified = certified();
        let key = key_pem(&certified.signing_key);
        let certificate = ClientCertificate::from_pem(cert_pem(&certified), &key).unwrap();
        let debug = format!("{certificate:?}");
        assert_eq!(debug, r#"ClientCertificate { certificates: 1, private_key: "[redacted]" }"#);
        let key_body = key.lines().nth(1).unwrap();
        assert!(!debug.contains(key_body));
    }

    #[test]
    fn swapped_missing_or_encrypted_parts_are_refused_with_a_reason() {
        let certified = certified();
        let key = key_pem(&certified.signing_key);
        let cert = cert_pem(&certified);
        let error = ClientCertificate::from_pem(&key, &cert).unwrap_err();
        assert_eq!(error.field(), "client_certificate");
        assert!(error.to_string().contains("no PEM `CERTIFICATE`"), "{error}");
        let error = ClientCertificate::from_pem(&cert, &cert).unwrap_err();
        assert!(error.to_string().contains("no `PRIVATE KEY`"), "{error}");
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        let error = ClientCertificate::from_pem(&cert, encrypted).unwrap_err();
        assert!(error.to_string().contains("encrypted"), "{error}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_when_the_client_is_built() {
        let (one, other) = (certified(), certified());
        let mismatched =
            ClientCertificate::from_pem(cert_pem(&one), key_pem(&other.signing_key)).unwrap();
        let error = build_client(reqwest::Client::builder(), Some(&mismatched), &[]).unwrap_err();
        assert_eq!(error.field(), "client_certificate");
    }

    #[test]
    fn a_root_that_is_not_a_certificate_is_refused() {
        let error =
            build_client(reqwest::Client::builder(), None, &[b"not a pem".to_vec()]).unwrap_err();
        assert_eq!(error.field(), "tls_root_certificate");
    }
}
