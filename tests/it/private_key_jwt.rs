//! Client assertions (`private_key_jwt`, `client_secret_jwt`) against a token endpoint that
//! verifies them as a real server does: the signature with the client's public key (or the
//! secret), `iss` and `sub`, `aud`, `exp`, and each `jti` once only. Its errors reach the
//! caller as they are.
//!
//! Keys are made at run time with rcgen (RSA 2048 for RS256 and PS256, P-256 for ES256).

use crate::common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use common::{api_client, ApiServer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::net::TcpListener;
use tower::retry::RetryLayer;
use tower::{Layer, ServiceExt};
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, ClientKey, Config, ConfigBuilder, ErrorClass,
    RetryUnauthorized, SigningAlgorithm, TokenError,
};

const CLIENT_ID: &str = "jwt-client";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key pair made for one test: the private key as the client loads it, the public key as
/// the server holds it.
struct KeyPair {
    private_pem: String,
    public_pem: String,
}

impl KeyPair {
    fn generate(algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
        Self { private_pem: key.serialize_pem(), public_pem: key.public_key_pem() }
    }

    fn rsa() -> Self {
        Self::generate(&rcgen::PKCS_RSA_SHA256)
    }

    fn p256() -> Self {
        Self::generate(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    fn client_key(&self, algorithm: SigningAlgorithm) -> ClientKey {
        ClientKey::from_pem(&self.private_pem, algorithm).unwrap().with_key_id("key-1")
    }
}

/// How the server checks assertions.
#[derive(Clone)]
struct Verifier {
    key: DecodingKey,
    algorithm: Algorithm,
    /// The `aud` it accepts; `None`: its own token URL.
    audience: Option<String>,
    /// How far the server's clock runs ahead of the client's, in seconds.
    clock_ahead: u64,
}

impl Verifier {
    fn public_key(keys: &KeyPair, algorithm: Algorithm) -> Self {
        let key = match algorithm {
            Algorithm::ES256 => DecodingKey::from_ec_pem(keys.public_pem.as_bytes()),
            _ => DecodingKey::from_rsa_pem(keys.public_pem.as_bytes()),
        };
        Self { key: key.unwrap(), algorithm, audience: None, clock_ahead: 0 }
    }

    fn secret(secret: &str) -> Self {
        let key = DecodingKey::from_secret(secret.as_bytes());
        Self { key, algorithm: Algorithm::HS256, audience: None, clock_ahead: 0 }
    }
}

/// The form fields the server reads.
#[derive(Deserialize, Clone, Debug)]
struct TokenForm {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

#[derive(Deserialize, Debug)]
struct Claims {
    iss: String,
    sub: String,
    jti: String,
    exp: u64,
}

struct ServerState {
    verifier: Mutex<Verifier>,
    url: String,
    used_jtis: Mutex<HashSet<String>>,
    received: Mutex<Vec<TokenForm>>,
    issued: Mutex<usize>,
}

/// A token endpoint on 127.0.0.1 that accepts only valid client assertions.
struct AssertionServer {
    url: String,
    state: Arc<ServerState>,
}

impl AssertionServer {
    async fn start(verifier: Verifier) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let state = Arc::new(ServerState {
            verifier: Mutex::new(verifier),
            url: url.clone(),
            used_jtis: Mutex::default(),
            received: Mutex::default(),
            issued: Mutex::new(0),
        });
        let router = Router::new().route("/token", post(issue)).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, state }
    }

    /// From now on, trusts `verifier` instead.
    fn trust(&self, verifier: Verifier) {
        *self.state.verifier.lock().unwrap() = verifier;
    }

    fn config(&self) -> ConfigBuilder {
        Config::builder_without_secret(&self.url, CLIENT_ID)
    }

    fn received(&self) -> Vec<TokenForm> {
        self.state.received.lock().unwrap().clone()
    }

    fn issued(&self) -> usize {
        *self.state.issued.lock().unwrap()
    }

    /// Sends `form` as it is, outside the crate: for showing what the server does with a
    /// replayed assertion.
    async fn post_raw(&self, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
    }
}

async fn issue(State(state): State<Arc<ServerState>>, Form(form): Form<TokenForm>) -> Response {
    state.received.lock().unwrap().push(form.clone());
    match verify(&state, &form) {
        Ok(()) => {
            let mut issued = state.issued.lock().unwrap();
            *issued += 1;
            let token = format!("token-{issued}");
            Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))
                .into_response()
        }
        Err(description) => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "invalid_client", "error_description": description})),
        )
            .into_response(),
    }
}

/// What a server checks (RFC 7523 §3), in the order a server checks it.
fn verify(state: &ServerState, form: &TokenForm) -> Result<(), String> {
    let verifier = &state.verifier.lock().unwrap().clone();
    if form.grant_type != "client_credentials" {
        return Err("unexpected grant_type".into());
    }
    if form.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
        return Err("client_assertion_type must be jwt-bearer".into());
    }
    let assertion = form.client_assertion.as_deref().ok_or("client_assertion missing")?;
    let mut validation = Validation::new(verifier.algorithm);
    validation.set_audience(&[verifier.audience.as_deref().unwrap_or(&state.url)]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "jti"]);
    validation.validate_exp = false; // checked below, on this server's clock
    let claims = jsonwebtoken::decode::<Claims>(assertion, &verifier.key, &validation)
        .map_err(|e| format!("client assertion rejected: {e}"))?
        .claims;
    if claims.iss != CLIENT_ID || claims.sub != CLIENT_ID {
        return Err("iss and sub must be the client id".into());
    }
    if form.client_id.as_deref().is_some_and(|id| id != CLIENT_ID) {
        return Err("client_id does not match the assertion".into());
    }
    let now = jsonwebtoken::get_current_timestamp() + verifier.clock_ahead;
    if claims.exp <= now {
        return Err("client assertion has expired".into());
    }
    if !state.used_jtis.lock().unwrap().insert(claims.jti) {
        return Err("client assertion jti already used".into());
    }
    Ok(())
}

/// The JSON of the JWT part `index` (0: header, 1: claims).
fn jwt_part(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&json).unwrap()
}

async fn token_error(config: ConfigBuilder) -> TokenError {
    let layer = ClientCredentialsLayer::new(config.build().unwrap());
    layer.token().await.expect_err("the server must refuse the assertion")
}

#[tokio::test]
async fn a_good_key_gets_a_token_with_each_algorithm() {
    let (rsa, p256) = (KeyPair::rsa(), KeyPair::p256());
    for (keys, signing, algorithm) in [
        (&rsa, SigningAlgorithm::Rs256, Algorithm::RS256),
        (&rsa, SigningAlgorithm::Ps256, Algorithm::PS256),
        (&p256, SigningAlgorithm::Es256, Algorithm::ES256),
    ] {
        let server = AssertionServer::start(Verifier::public_key(keys, algorithm)).await;
        let config = server.config().client_key(keys.client_key(signing)).build().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);

        let token = ClientCredentialsLayer::new(config).token().await;
        assert_eq!(token.unwrap().secret(), "token-1", "{signing}");

        let form = &server.received()[0];
        assert_eq!(form.client_id.as_deref(), Some(CLIENT_ID), "Entra ID requires it");
        assert_eq!(form.client_secret, None);
        let assertion = form.client_assertion.as_deref().unwrap();
        let header = jwt_part(assertion, 0);
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some(signing.as_str()), Some("key-1"))
        );
        let claims = jwt_part(assertion, 1);
        assert_eq!(claims["aud"], server.url.as_str(), "the token endpoint, by default");
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 60);
    }
}

#[tokio::test]
async fn a_wrong_key_is_rejected_with_the_servers_error() {
    let (registered, other) = (KeyPair::p256(), KeyPair::p256());
    let server = AssertionServer::start(Verifier::public_key(&registered, Algorithm::ES256)).await;

    let error =
        token_error(server.config().client_key(other.client_key(SigningAlgorithm::Es256))).await;

    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    assert_eq!(error.error_description(), Some("client assertion rejected: InvalidSignature"));
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert_eq!(server.issued(), 0);
}

#[tokio::test]
async fn an_expired_assertion_is_rejected_and_a_longer_lifetime_covers_the_skew() {
    let keys = KeyPair::p256();
    // The server's clock runs two minutes ahead: a 60-second assertion has expired on arrival.
    let verifier = Verifier { clock_ahead: 120, ..Verifier::public_key(&keys, Algorithm::ES256) };
    let server = AssertionServer::start(verifier).await;
    let config = || server.config().client_key(keys.client_key(SigningAlgorithm::Es256));

    let error = token_error(config()).await;
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert_eq!(error.error_description(), Some("client assertion has expired"));
    assert!(error.to_string().contains("client assertion has expired"), "{error}");

    let layer = config().assertion_lifetime(Duration::from_secs(300)).build().unwrap();
    ClientCredentialsLayer::new(layer).token().await.expect("valid for five minutes");
}

#[tokio::test]
async fn a_retried_request_signs_a_new_assertion_and_a_replayed_one_is_refused() {
    let keys = KeyPair::rsa();
    let server = AssertionServer::start(Verifier::public_key(&keys, Algorithm::PS256)).await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let config = server.config().client_key(keys.client_key(SigningAlgorithm::Ps256));
    let layer = ClientCredentialsLayer::new(config.build().unwrap());
    let service = RetryLayer::new(RetryUnauthorized::new()).layer(api_client(&layer));

    // token-1 is refused by the API; the retry fetches token-2, which the server issues only
    // for an assertion with a `jti` it has not seen.
    let request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "Bearer token-2");
    let assertions: Vec<String> =
        server.received().into_iter().filter_map(|form| form.client_assertion).collect();
    assert_eq!(assertions.len(), 2);
    let jti = |jwt: &str| jwt_part(jwt, 1)["jti"].as_str().unwrap().to_owned();
    assert_ne!(jti(&assertions[0]), jti(&assertions[1]));

    // What the fresh `jti` protects against: the same assertion sent again is refused.
    let replay = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertions[0].as_str()),
    ];
    let (status, body) = server.post_raw(&replay).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "client assertion jti already used");
    assert_eq!(server.issued(), 2);
}

#[tokio::test]
async fn client_secret_jwt_signs_with_the_secret_and_never_sends_it() {
    let secret = "a-shared-secret-long-enough-for-hs256-0123456789";
    let verifier =
        Verifier { audience: Some("https://issuer.example".into()), ..Verifier::secret(secret) };
    let server = AssertionServer::start(verifier).await;
    let config = |secret: &str| {
        Config::builder(&server.url, CLIENT_ID, secret)
            .auth_method(AuthMethod::ClientSecretJwt)
            .assertion_audience("https://issuer.example")
    };

    ClientCredentialsLayer::new(config(secret).build().unwrap()).token().await.unwrap();
    let form = &server.received()[0];
    assert_eq!(form.client_secret, None);
    assert!(!form.client_assertion.as_deref().unwrap().contains(secret));

    let error = token_error(config("another-secret-of-the-same-client-0123456789")).await;
    assert_eq!(error.error_description(), Some("client assertion rejected: InvalidSignature"));
}

/// A signing key rotated in its file: the next token request of the same layer signs with the
/// new key, which the server now trusts instead.
#[tokio::test]
async fn a_client_key_rotated_in_its_file_signs_the_next_token_request() {
    let (first, second) = (KeyPair::p256(), KeyPair::p256());
    let server = AssertionServer::start(Verifier::public_key(&first, Algorithm::ES256)).await;
    let dir = std::env::temp_dir().join(format!("tcc-key-rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("signing.key");
    let write = |keys: &KeyPair| {
        std::fs::write(dir.join("signing.key.new"), &keys.private_pem).unwrap();
        std::fs::rename(dir.join("signing.key.new"), &file).unwrap();
    };
    write(&first);
    let config = server.config().client_key_file(&file, SigningAlgorithm::Es256).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    assert_eq!(layer.token().await.unwrap().secret(), "token-1");

    write(&second);
    server.trust(Verifier::public_key(&second, Algorithm::ES256));
    // Past the hour the token lives, then real time again for the request.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(3600)).await;
    tokio::time::resume();
    assert_eq!(layer.token().await.expect("signed with the new key").secret(), "token-2");
    assert_eq!(server.received().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
