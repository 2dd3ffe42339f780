//! A signing key or client certificate rotated in its files reaches every token cache that
//! uses it (DESIGN.md §4, "Credentials that rotate"): the layer's own token, a token for other
//! `TokenParams` of the same layer (§11), and the token of a second layer built from a clone
//! of the same `Config`. Each keeps its own record of the files' modification times, so one
//! cache noticing the change never hides it from the others (STYLE.md 16).
//!
//! The token endpoints on loopback trust one key (or certificate) at a time and revoke the old
//! one at the rotation: a token request that still signs with (or presents) the old one is
//! answered `401 invalid_client`.

use crate::common;
use common::mtls::{MtlsServer, TestCa};
use common::Folder;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Received, Reply, TokenServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::time::advance;
use tower_client_credentials::{
    AccessToken, ClientCredentialsLayer, Config, SigningAlgorithm, TokenError, TokenParams,
};

const CLIENT_ID: &str = "rotating-client";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tokens live an hour; each round moves the clock past that.
const LIFETIME: u64 = 3600;
const PAST_THE_LIFETIME: Duration = Duration::from_secs(LIFETIME + 1);

/// The three token caches of the tests: a layer's own token, that layer's token for the
/// audience `orders`, and the own token of a second layer made from a clone of the config.
struct ThreeCaches {
    layer: ClientCredentialsLayer,
    other: ClientCredentialsLayer,
    orders: TokenParams,
}

impl ThreeCaches {
    fn new(config: Config) -> Self {
        let other = ClientCredentialsLayer::new(config.clone());
        let layer = ClientCredentialsLayer::new(config);
        Self { layer, other, orders: TokenParams::new().audience("orders") }
    }

    /// A token from each cache in turn: the token, or the error's text.
    async fn tokens(&self) -> [Result<String, String>; 3] {
        let text = |token: Result<_, TokenError>| {
            token
                .map(|t: AccessToken| t.secret().to_owned())
                .map_err(|e| format!("{e} ({:?})", e.oauth_error()))
        };
        [
            text(self.layer.token().await),
            text(self.layer.token_for(&self.orders).await),
            text(self.other.token().await),
        ]
    }
}

/// The token a server issues for a request: `<audience>-<n>`, valid for an hour.
fn token_for(n: usize, form: &[(String, String)]) -> Reply {
    let audience = form.iter().find(|(name, _)| name == "audience").map(|(_, v)| v.as_str());
    let token = format!("{}-{n}", audience.unwrap_or("default"));
    Reply::json(
        200,
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{LIFETIME}}}"#),
    )
}

fn invalid_client() -> Reply {
    Reply::json(401, r#"{"error":"invalid_client","error_description":"unknown key"}"#)
}

/// A P-256 key pair: the private key in PEM as the client's file holds it, and the public key
/// as the server holds it.
struct SigningKey {
    private_pem: String,
    public: DecodingKey,
}

impl SigningKey {
    fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
        Self { private_pem: key.serialize_pem(), public }
    }
}

/// What the token endpoint knows of the client's keys, and what it saw.
struct KeyRegistry {
    /// Every key the client ever had, by name, to tell which one signed an assertion.
    keys: Vec<(&'static str, DecodingKey)>,
    /// The one key the endpoint accepts now; the others are revoked.
    trusted: &'static str,
    /// The name of the key that signed each token request, in order (`"none"` if none did).
    signed_by: Vec<&'static str>,
}

impl KeyRegistry {
    /// The key among `keys` whose signature `assertion` carries.
    fn signer(&self, assertion: &str) -> &'static str {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        validation.validate_exp = false; // the signature is what this endpoint is about
        let verifies = |key| jsonwebtoken::decode::<serde_json::Value>(assertion, key, &validation);
        let signer = self.keys.iter().find(|(_, key)| verifies(key).is_ok());
        signer.map_or("none", |(name, _)| name)
    }
}

/// A token endpoint that issues a token only to an assertion signed by the trusted key.
async fn key_checking_token_server(registry: Arc<Mutex<KeyRegistry>>) -> TokenServer {
    TokenServer::start_judging(move |n, received: &Received| {
        let mut registry = registry.lock().unwrap();
        let assertion = (received.param("client_id") == Some(CLIENT_ID)
            && received.param("client_assertion_type") == Some(ASSERTION_TYPE))
        .then(|| received.param("client_assertion"))
        .flatten();
        let signer = assertion.map_or("none", |assertion| registry.signer(assertion));
        registry.signed_by.push(signer);
        if signer == registry.trusted {
            token_for(n, &received.form)
        } else {
            invalid_client()
        }
    })
    .await
}

/// The operator replaces the signing key in its file and the endpoint revokes the old key.
/// Over the three rounds that follow, each of the three caches needs a new token once per
/// round: all nine token requests must be signed with the new key, and every cache gets its
/// token.
#[tokio::test(start_paused = true)]
async fn a_rotated_signing_key_signs_the_next_token_request_of_every_cache() {
    let (first, second) = (SigningKey::generate(), SigningKey::generate());
    let registry = Arc::new(Mutex::new(KeyRegistry {
        keys: vec![("first", first.public), ("second", second.public)],
        trusted: "first",
        signed_by: Vec::new(),
    }));
    let tokens = key_checking_token_server(registry.clone()).await;
    let folder = Folder::new("key-rotation-every-cache");
    let file = folder.path("signing.key");
    common::rotate(&file, &first.private_pem);
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key_file(&file, SigningAlgorithm::Es256)
        .build()
        .unwrap();
    let caches = ThreeCaches::new(config);

    let before = caches.tokens().await;
    assert_eq!(before, [Ok("default-1".into()), Ok("orders-2".into()), Ok("default-3".into())]);
    assert_eq!(registry.lock().unwrap().signed_by, ["first"; 3]);

    common::rotate(&file, &second.private_pem);
    registry.lock().unwrap().trusted = "second";
    let mut failures = Vec::new();
    for round in 1..=3 {
        advance(PAST_THE_LIFETIME).await;
        let names = ["the layer's own token", "the orders token", "the other layer's token"];
        for (cache, token) in names.into_iter().zip(caches.tokens().await) {
            if let Err(error) = token {
                failures.push(format!("round {round}, {cache}: {error}"));
            }
        }
    }

    let after = registry.lock().unwrap().signed_by[3..].to_vec();
    assert_eq!(after, ["second"; 9], "the key that signed each token request after the rotation");
    assert_eq!(failures, Vec::<String>::new(), "no cache fails");
    assert_eq!(tokens.count(), 12);
}

/// cert-manager renews the client certificate in its files and the endpoint registers the new
/// one: over the three rounds that follow, each of the three caches presents the new
/// certificate (9 of 9 token requests) and gets its token.
#[tokio::test]
async fn a_renewed_client_certificate_is_presented_by_every_cache() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let (first, renewed) = (ca.client(), ca.client());
    let server = MtlsServer::start(&ca, &first, CLIENT_ID, token_for).await;
    let folder = Folder::new("certificate-rotation-every-cache");
    let (chain, key) = (folder.path("tls.crt"), folder.path("tls.key"));
    common::rotate(&chain, &first.certificate_pem);
    common::rotate(&key, &first.key_pem());
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate_files(&chain, &key)
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    let caches = ThreeCaches::new(config);

    let before = caches.tokens().await;
    assert_eq!(before, [Ok("default-1".into()), Ok("orders-2".into()), Ok("default-3".into())]);

    common::rotate(&chain, &renewed.certificate_pem);
    common::rotate(&key, &renewed.key_pem());
    server.register(&renewed);
    let mut failures = Vec::new();
    for round in 1..=3 {
        // Past the tokens' lifetime, then real time again: TLS handshakes on loopback must
        // not race a paused clock's timeouts.
        common::jump(PAST_THE_LIFETIME).await;
        let names = ["the layer's own token", "the orders token", "the other layer's token"];
        for (cache, token) in names.into_iter().zip(caches.tokens().await) {
            if let Err(error) = token {
                failures.push(format!("round {round}, {cache}: {error}"));
            }
        }
    }

    let name = |presented: &Option<Vec<u8>>| match presented.as_deref() {
        Some(der) if der == first.certificate.as_ref() => "first",
        Some(der) if der == renewed.certificate.as_ref() => "renewed",
        Some(_) => "another",
        None => "none",
    };
    let presented: Vec<&str> = server.presented().iter().map(name).collect();
    assert_eq!(presented[..3], ["first"; 3]);
    assert_eq!(presented[3..], ["renewed"; 9], "the certificate of each token request after");
    assert_eq!(failures, Vec::<String>::new(), "no cache fails");
}
