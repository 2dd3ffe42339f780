//! Client assertions: instead of sending its secret, the client sends a short-lived JWT it
//! signed (RFC 7523 §2.2, OpenID Connect Core §9), with a private key (`private_key_jwt`) or
//! with the client secret (`client_secret_jwt`).
//!
//! An assertion says who the client is (`iss` = `sub` = client id), whom it is for (`aud`, the
//! token endpoint unless configured otherwise), and when it was made and stops being valid
//! (`iat`, `nbf`, `exp`). Each token request gets a new one with a random `jti`, retries
//! included: servers accept each `jti` once, so an assertion that leaks cannot be replayed,
//! and a retry must not reuse one.
//!
//! Signing uses `jsonwebtoken` on aws-lc-rs, the provider reqwest's rustls already builds.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::{AuthMethod, Endpoint, Grant, Requested};
use crate::credential::ClientKey;
use crate::error::{TokenError, TokenErrorKind};

/// The `typ` of a client assertion by draft-ietf-oauth-rfc7523bis (explicit typing, RFC 8725
/// §3.11); otherwise assertions have `JWT`.
const CLIENT_AUTHENTICATION_TYP: &str = "client-authentication+jwt";

/// The claims of an assertion (RFC 7523 §3).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    /// The requested scopes, for a grant that reads them here (Google's service accounts).
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// Makes the client assertions of one token endpoint, or the assertions of its JWT bearer
/// grant.
pub(crate) struct AssertionSigner {
    /// The client key; `None` for `client_secret_jwt`, which signs with the current secret.
    key: Option<EncodingKey>,
    header: Header,
    issuer: String,
    subject: String,
    audience: String,
    scope: Option<String>,
    lifetime_secs: u64,
}

impl AssertionSigner {
    /// The signer for `endpoint`'s method, or `None` for a method without assertions to sign
    /// (`private_key_jwt` with assertions from a source).
    pub(crate) fn new(endpoint: &Endpoint) -> Option<Self> {
        let assertion = &endpoint.assertion;
        let (key, header) = match endpoint.auth_method {
            AuthMethod::PrivateKeyJwt => {
                let key = assertion.client_key.as_ref()?;
                (Some(key.encoding_key().clone()), key.header())
            }
            AuthMethod::ClientSecretJwt => (None, Header::new(Algorithm::HS256)),
            _ => return None,
        };
        let mut header = header;
        if assertion.rfc7523bis {
            header.typ = Some(CLIENT_AUTHENTICATION_TYP.to_owned());
        }
        let audience = assertion.audience.as_deref().unwrap_or(endpoint.token_url.as_str());
        Some(Self {
            key,
            header,
            issuer: endpoint.client_id.clone(),
            subject: endpoint.client_id.clone(),
            audience: audience.to_owned(),
            scope: None,
            // Whole seconds, rounded up: `build` refuses lifetimes under a second.
            lifetime_secs: assertion.lifetime.as_secs_f64().ceil() as u64,
        })
    }

    /// The signer of the JWT bearer grant's assertions, when this crate signs them (with the
    /// client key, for `requested`'s scopes); `None` for any other grant.
    pub(crate) fn for_grant(endpoint: &Endpoint, requested: &Requested) -> Option<Self> {
        let Grant::JwtBearer(bearer) = &requested.grant else { return None };
        if bearer.assertion.is_some() {
            return None;
        }
        let assertion = &endpoint.assertion;
        // `build` refuses a signed grant without a key.
        let key = assertion.client_key.as_ref()?;
        let claims = &bearer.claims;
        let issuer = claims.issuer.clone().unwrap_or_else(|| endpoint.client_id.clone());
        let audience = assertion.audience.as_deref().unwrap_or(endpoint.token_url.as_str());
        let scopes = requested.scopes.join(" ");
        Some(Self {
            key: Some(key.encoding_key().clone()),
            header: key.header(),
            subject: claims.subject.clone().unwrap_or_else(|| issuer.clone()),
            issuer,
            audience: audience.to_owned(),
            scope: (claims.scope_claim && !scopes.is_empty()).then_some(scopes),
            lifetime_secs: assertion.lifetime.as_secs_f64().ceil() as u64,
        })
    }

    /// Whether the requested scopes go into the assertion instead of the form.
    pub(crate) fn has_scope(&self) -> bool {
        self.scope.is_some()
    }

    /// Signs with `key` from now on: the client key file changed.
    pub(crate) fn use_key(&mut self, key: &ClientKey) {
        let typ = self.header.typ.take();
        self.key = Some(key.encoding_key().clone());
        self.header = Header { typ, ..key.header() };
    }

    /// A new assertion, made at `now`, with a `jti` never used before; for
    /// `client_secret_jwt`, signed with `secret`.
    pub(crate) fn sign(
        &self,
        now: SystemTime,
        secret: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        let failed =
            |detail: String| TokenError::with_detail(TokenErrorKind::ClientAssertion, detail);
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        let claims = Claims {
            iss: &self.issuer,
            sub: &self.subject,
            aud: &self.audience,
            scope: self.scope.as_deref(),
            jti: random_id().map_err(|()| failed("no randomness for the `jti`".to_owned()))?,
            iat,
            nbf: iat,
            exp: iat.saturating_add(self.lifetime_secs),
        };
        let from_secret;
        let key = match (&self.key, secret) {
            (Some(key), _) => key,
            (None, Some(secret)) => {
                from_secret = EncodingKey::from_secret(secret.expose_secret().as_bytes());
                &from_secret
            }
            (None, None) => return Err(failed("no secret to sign with".to_owned())),
        };
        jsonwebtoken::encode(&self.header, &claims, key)
            .map(SecretString::from)
            .map_err(|e| failed(e.to_string()))
    }
}

/// 128 random bits, base64url: unique among all the assertions any client ever makes.
fn random_id() -> Result<String, ()> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::credential::SigningAlgorithm;

    fn rsa_pem() -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        key.serialize_pem()
    }

    fn ec_pem(algorithm: &'static rcgen::SignatureAlgorithm) -> String {
        let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
        key.serialize_pem()
    }

    fn payload(jwt: &str) -> serde_json::Value {
        let part = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn header(jwt: &str) -> serde_json::Value {
        let part = jwt.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn signer(key: ClientKey) -> AssertionSigner {
        let config = Config::builder_without_secret("https://idp.example/token", "my-client")
            .client_key(key)
            .build()
            .unwrap();
        AssertionSigner::new(&config.endpoint).unwrap()
    }

    #[test]
    fn an_assertion_names_the_client_the_endpoint_and_a_short_validity() {
        let key =
            ClientKey::from_pem(ec_pem(&rcgen::PKCS_ECDSA_P256_SHA256), SigningAlgorithm::Es256)
                .unwrap()
                .with_key_id("k1");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = signer(key).sign(now, None).unwrap();
        let claims = payload(jwt.expose_secret());
        assert_eq!(claims["iss"], "my-client");
        assert_eq!(claims["sub"], "my-client");
        assert_eq!(claims["aud"], "https://idp.example/token");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_060);
        let header = header(jwt.expose_secret());
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
    }

    #[test]
    fn assertions_are_typed_jwt_or_by_rfc7523bis_for_the_issuer() {
        let key = || ClientKey::from_pem(rsa_pem(), SigningAlgorithm::Rs256).unwrap();
        let jwt = signer(key()).sign(SystemTime::now(), None).unwrap();
        assert_eq!(header(jwt.expose_secret())["typ"], "JWT");
        let config = Config::builder_without_secret("https://idp.example/oauth2/token", "c")
            .client_key(key())
            .issuer("https://idp.example")
            .assertion_audience("issuer")
            .build()
            .unwrap();
        let mut signer = AssertionSigner::new(&config.endpoint).unwrap();
        signer.use_key(&key());
        let jwt = signer.sign(SystemTime::now(), None).unwrap();
        assert_eq!(header(jwt.expose_secret())["typ"], "client-authentication+jwt");
        assert_eq!(payload(jwt.expose_secret())["aud"], "https://idp.example");
    }

    #[test]
    fn a_grant_assertion_names_its_subject_and_may_carry_the_scopes() {
        let config = Config::builder_without_secret("https://oauth2.example/token", "sa@example")
            .client_key(ClientKey::from_pem(rsa_pem(), SigningAlgorithm::Rs256).unwrap())
            .grant(crate::JwtBearer::signed().subject("user@example").scope_claim())
            .scope("a b")
            .build()
            .unwrap();
        assert_eq!(config.endpoint.auth_method, AuthMethod::None);
        assert!(AssertionSigner::new(&config.endpoint).is_none(), "no client assertion");
        let signer = AssertionSigner::for_grant(&config.endpoint, &config.requested).unwrap();
        let claims = payload(signer.sign(SystemTime::now(), None).unwrap().expose_secret());
        assert_eq!(claims["iss"], "sa@example");
        assert_eq!(claims["sub"], "user@example");
        assert_eq!(claims["aud"], "https://oauth2.example/token");
        assert_eq!(claims["scope"], "a b");
    }

    #[test]
    fn every_assertion_gets_its_own_jti() {
        let key = ClientKey::from_pem(rsa_pem(), SigningAlgorithm::Ps256).unwrap();
        let signer = signer(key);
        let now = SystemTime::now();
        let jtis: std::collections::HashSet<String> = (0..20)
            .map(|_| payload(signer.sign(now, None).unwrap().expose_secret())["jti"].to_string())
            .collect();
        assert_eq!(jtis.len(), 20);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let pem = rsa_pem();
        let key = ClientKey::from_pem(&pem, SigningAlgorithm::Rs256).unwrap().with_key_id("k1");
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]") && debug.contains("Rs256"), "{debug}");
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!debug.contains(line), "{debug}");
        }
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_when_loaded() {
        let not_a_key = ClientKey::from_pem("hello", SigningAlgorithm::Rs256).unwrap_err();
        assert_eq!(not_a_key.field(), "client_key");
        let ec_for_rsa =
            ClientKey::from_pem(ec_pem(&rcgen::PKCS_ECDSA_P256_SHA256), SigningAlgorithm::Rs256);
        assert_eq!(ec_for_rsa.unwrap_err().field(), "client_key");
        let p384_for_es256 =
            ClientKey::from_pem(ec_pem(&rcgen::PKCS_ECDSA_P384_SHA384), SigningAlgorithm::Es256);
        let error = p384_for_es256.unwrap_err();
        assert!(error.to_string().contains("cannot sign ES256"), "{error}");
    }

    #[test]
    fn a_certificate_puts_its_thumbprints_in_the_header() {
        let certified = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
        let key =
            ClientKey::from_pem(certified.signing_key.serialize_pem(), SigningAlgorithm::Es256)
                .unwrap()
                .with_certificate(certified.cert.pem())
                .unwrap();
        let jwt = signer(key).sign(SystemTime::now(), None).unwrap();
        let header = header(jwt.expose_secret());
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, certified.cert.der());
        assert_eq!(header["x5t#S256"], URL_SAFE_NO_PAD.encode(sha256));
        assert_eq!(header["x5t"].as_str().unwrap().len(), 27, "a SHA-1 digest, base64url");
        let error = ClientKey::from_pem(rsa_pem(), SigningAlgorithm::Rs256)
            .unwrap()
            .with_certificate("no certificate here")
            .unwrap_err();
        assert_eq!(error.field(), "client_key");
    }

    #[test]
    fn client_secret_jwt_signs_with_the_secret() {
        let config = Config::builder("https://idp.example/token", "my-client", "s3cret")
            .auth_method(AuthMethod::ClientSecretJwt)
            .assertion_audience("https://idp.example")
            .build()
            .unwrap();
        let signer = AssertionSigner::new(&config.endpoint).unwrap();
        let jwt = signer.sign(SystemTime::now(), Some(&config.endpoint.client_secret)).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_audience(&["https://idp.example"]);
        let key = jsonwebtoken::DecodingKey::from_secret(b"s3cret");
        jsonwebtoken::decode::<serde_json::Value>(jwt.expose_secret(), &key, &validation).unwrap();
    }
}
