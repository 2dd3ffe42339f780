//! A private key that signs client assertions (`private_key_jwt`, RFC 7523 §2.2): the
//! credential of [`ConfigBuilder::client_key`](crate::ConfigBuilder::client_key). The signing
//! itself happens per token request, on the request side.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::error::ConfigError;

/// How a [`ClientKey`] signs client assertions (the JWS `alg`, RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, with an RSA key of at least 2048 bits: the one every
    /// server supports. The default.
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256, with an RSA key of at least 2048 bits: what FAPI profiles and
    /// Microsoft Entra ID recommend.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl SigningAlgorithm {
    /// The JWS name: `RS256`, `PS256` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Ps256 => "PS256",
            SigningAlgorithm::Es256 => "ES256",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Ps256 => Algorithm::PS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The private key that signs client assertions for `private_key_jwt`, with the algorithm it
/// signs with and what names it in the JWT header.
///
/// `Debug` never shows the key. Give it to
/// [`ConfigBuilder::client_key`](crate::ConfigBuilder::client_key).
///
/// ```no_run
/// use tower_client_credentials::{ClientKey, Config, SigningAlgorithm};
///
/// let key = ClientKey::from_pem(std::fs::read("client-key.pem")?, SigningAlgorithm::Rs256)?
///     .with_key_id("2024-06"); // the `kid` of the public key the server knows
/// let config = Config::builder_without_secret("https://idp.example.com/token", "my-client")
///     .client_key(key) // implies `private_key_jwt`
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientKey {
    key: EncodingKey,
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    /// `x5t` and `x5t#S256`: the SHA-1 and SHA-256 thumbprints of the key's certificate.
    thumbprints: Option<(String, String)>,
}

impl ClientKey {
    /// A private key in PEM, to sign with `algorithm`: an RSA key (PKCS #1
    /// `BEGIN RSA PRIVATE KEY` or PKCS #8 `BEGIN PRIVATE KEY`) for [`SigningAlgorithm::Rs256`]
    /// and [`SigningAlgorithm::Ps256`]; a P-256 key in PKCS #8 for [`SigningAlgorithm::Es256`]
    /// (convert a SEC 1 `BEGIN EC PRIVATE KEY` with `openssl pkcs8 -topk8 -nocrypt`).
    ///
    /// The key signs once here, so that a key that cannot sign fails now rather than at the
    /// first token request.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `client_key` when the PEM holds no such key, or the key cannot
    /// sign with `algorithm` (an RSA key under 2048 bits, an EC key on another curve).
    pub fn from_pem(
        pem: impl AsRef<[u8]>,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, ConfigError> {
        let pem = pem.as_ref();
        let key = match algorithm {
            SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => EncodingKey::from_rsa_pem(pem)
                .map_err(|_| {
                    ConfigError::new(
                        "client_key",
                        "is not a PEM RSA private key (PKCS #1 or PKCS #8, unencrypted)",
                    )
                })?,
            SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem).map_err(|_| {
                ConfigError::new(
                    "client_key",
                    "is not a PEM EC private key in PKCS #8 (`BEGIN PRIVATE KEY`, unencrypted)",
                )
            })?,
        };
        jsonwebtoken::crypto::sign(b"probe", &key, algorithm.jwt()).map_err(|e| {
            ConfigError::new("client_key", format!("cannot sign {algorithm} ({e})"))
        })?;
        Ok(Self { key, algorithm, key_id: None, thumbprints: None })
    }

    /// Names the key in the JWT header (`kid`), for a server that holds several keys of the
    /// client (a JWKS) and picks by `kid`: Okta and Keycloak do. Default: no `kid`.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Names the key by its X.509 certificate in the JWT header: `x5t#S256` and `x5t`, the
    /// base64url SHA-256 and SHA-1 thumbprints of the certificate's DER, as Microsoft Entra ID
    /// requires for certificate credentials. The first certificate of the PEM is taken; that it
    /// holds this key's public key is not checked. Default: no thumbprint.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `client_key` when the PEM holds no certificate.
    pub fn with_certificate(
        mut self,
        certificate_pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let der = first_certificate(certificate_pem.as_ref()).ok_or_else(|| {
            ConfigError::new("client_key", "the certificate PEM holds no `CERTIFICATE`")
        })?;
        let digest = |algorithm| URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(algorithm, &der));
        self.thumbprints = Some((
            digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
            digest(&aws_lc_rs::digest::SHA256),
        ));
        Ok(self)
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The `kid` sent in the JWT header, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The key, to sign with.
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// The JWT header of this key's assertions.
    pub(crate) fn header(&self) -> Header {
        let mut header = Header::new(self.algorithm.jwt());
        header.kid.clone_from(&self.key_id);
        if let Some((sha1, sha256)) = &self.thumbprints {
            header.x5t = Some(sha1.clone());
            header.x5t_s256 = Some(sha256.clone());
        }
        header
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("x5t#S256", &self.thumbprints.as_ref().map(|(_, sha256)| sha256))
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The DER of the first `CERTIFICATE` in a PEM text.
fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let (_, rest) = text.split_once("-----BEGIN CERTIFICATE-----")?;
    let (body, _) = rest.split_once("-----END CERTIFICATE-----")?;
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(body).ok()
}
