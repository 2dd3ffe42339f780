//! The grants (token exchange, RFC 8693; the JWT bearer grant, RFC 7523 §2.1) where they meet
//! the rest of the crate, attacked as a hostile network and a careless user would: one user's
//! subject token that hangs, panics or comes back expired; hostile token-endpoint answers to a
//! token exchange; a rotated client key reaching every signed assertion; a discovered issuer
//! as the audience; exchanged tokens and origins, redirects, replicas, eviction; secrets in
//! logs; grant settings that cannot work.
//!
//! Against real loopback servers; the clock is paused wherever no other process is involved.
//! A presented token's `exp` is read against the wall clock, which paused time does not move.

use crate::common;
use common::grants::{
    claims_of, exchanged, grant_naming_token_server, header_of, jwt_with, named, unix_now,
};
use common::memory_store::MemoryStore;
use common::origin::{found, ok, Origin};
use common::{
    api_client, get, get_with, request_with, ApiServer, Folder, Reply, TokenServer, CLIENT_ID,
    CLIENT_SECRET,
};

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get as get_route;
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::time::advance;
use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, ClientKey, Config, Grant, JwtBearer, Settings,
    SigningAlgorithm, TokenError, TokenErrorKind, TokenExchange, TokenParams,
};
use tracing_subscriber::fmt::MakeWriter;

// ---------------------------------------------------------------------------------------------
// Helpers

fn on_behalf_of(user: &str) -> TokenParams {
    TokenParams::new().grant(TokenExchange::subject_token(user, TokenExchange::JWT))
}

fn secret(token: Result<tower_client_credentials::AccessToken, TokenError>) -> String {
    token.map(|t| t.secret().to_owned()).unwrap_or_else(|e| format!("error: {e}"))
}

/// A P-256 key pair: the private key's PEM and the public key.
struct KeyPair {
    pem: String,
    public: DecodingKey,
}

impl KeyPair {
    fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
        Self { pem: key.serialize_pem(), public }
    }

    fn signed(&self, jwt: &str) -> bool {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(jwt, &self.public, &validation).is_ok()
    }
}

/// A subject token source that never answers.
#[derive(Debug)]
struct Hanging;

impl CredentialSource for Hanging {
    fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
        Box::pin(std::future::pending())
    }
}

/// A subject token source that panics.
#[derive(Debug)]
struct Panicking;

impl CredentialSource for Panicking {
    fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
        panic!("the session store is gone")
    }
}

// ---------------------------------------------------------------------------------------------
// One user's subject token holds back no other token

/// One user's subject token comes from a source that never answers (a session service that
/// hangs). That user's token request times out, but the token endpoint was never asked: the
/// layer's own token and another user's must be fetched at once, not held back by the
/// endpoint's backoff as though the endpoint were down.
#[tokio::test(start_paused = true)]
async fn a_hanging_subject_token_source_of_one_user_holds_back_no_other_token() {
    let tokens = grant_naming_token_server().await;
    let config = tokens.config().request_timeout(Duration::from_secs(2)).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let hanging = TokenParams::new().grant(TokenExchange::subject_token_source(Hanging, "jwt"));

    let error = layer.token_for(&hanging).await.unwrap_err();
    assert_eq!(tokens.count(), 0, "nothing was sent for the hanging user: {error}");
    // The others come a moment later, once the hanging user's token request has ended.
    advance(Duration::from_millis(100)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }

    assert_eq!(secret(layer.token().await), "cc-1", "the layer's own token");
    assert_eq!(secret(layer.token_for(&on_behalf_of("bob")).await), "te.bob-2", "bob's token");
}

/// One user's subject token source panics: that request fails, and nothing else does.
#[tokio::test(start_paused = true)]
async fn a_panicking_subject_token_source_of_one_user_holds_back_no_other_token() {
    let tokens = grant_naming_token_server().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let panicking = TokenParams::new().grant(TokenExchange::subject_token_source(Panicking, "jwt"));

    let error = layer.token_for(&panicking).await.unwrap_err();
    assert_eq!(tokens.count(), 0, "nothing was sent for the panicking user: {error}");

    assert_eq!(secret(layer.token().await), "cc-1", "the layer's own token");
    assert_eq!(secret(layer.token_for(&on_behalf_of("bob")).await), "te.bob-2", "bob's token");
}

/// The token endpoint answers one user's exchange with a token that has already expired (its
/// subject token was about to): that says nothing about the endpoint, which answered at
/// once. Another user's token and the layer's own are fetched without waiting.
#[tokio::test(start_paused = true)]
async fn an_exchange_answered_with_an_expired_token_for_one_user_holds_back_no_other_token() {
    let tokens = TokenServer::start_judging(|n, received| match received.param("subject_token") {
        Some("dying") => {
            let token = jwt_with(&format!(r#"{{"sub":"dying","exp":{}}}"#, unix_now() - 10));
            let body = format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","issued_token_type":"{}"}}"#,
                TokenExchange::ACCESS_TOKEN
            );
            Reply::json(200, body)
        }
        Some(subject) => exchanged(&format!("te.{subject}-{n}"), 3600),
        None => Reply::token(n, 3600),
    })
    .await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let error = layer.token_for(&on_behalf_of("dying")).await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::ExpiredOnArrival, "{error}");
    let asked = tokens.count();

    let bob = secret(layer.token_for(&on_behalf_of("bob")).await);
    assert_eq!(bob, format!("te.bob-{}", asked + 1), "bob's token");
    assert_eq!(secret(layer.token().await), format!("token-{}", asked + 2), "the layer's own");
}

// ---------------------------------------------------------------------------------------------
// Hostile answers to a token exchange

/// What a token exchange answer must come to.
#[derive(Debug)]
enum Expect {
    /// A token that lives this long (within a second).
    Lives(Duration),
    /// A token that lives less than this and more than a minute.
    LivesUnder(Duration),
    Fails(TokenErrorKind, Option<&'static str>),
}

/// Hostile answers to a token exchange, each to its own user's request on one layer: wrong
/// JSON types, a megabyte `issued_token_type`, `n_a` in lower case, absurd `refresh_in`, JWT
/// access tokens with an `exp` far away, past or not a number and no `expires_in`. None
/// panics; each is a token with a defined lifetime or an error of its own kind naming its
/// field, short and without control characters; no error token reaches the API.
#[tokio::test(start_paused = true)]
async fn hostile_token_exchange_answers_have_a_defined_outcome_and_a_typed_error() {
    use Expect::*;
    const ACCESS: &str = TokenExchange::ACCESS_TOKEN;
    const HOUR: Duration = Duration::from_secs(3600);
    let huge = "x".repeat(512 * 1024);
    let now = unix_now();
    let jwt_token = |exp: &str| jwt_with(&format!(r#"{{"sub":"u","exp":{exp}}}"#));
    let answer = |fields: &str| format!(r#"{{"access_token":"t",{fields}}}"#);
    let issued = format!(r#""issued_token_type":"{ACCESS}""#);
    let cases: Vec<(String, Option<&str>, Expect)> = vec![
        (
            answer(r#""issued_token_type":42"#),
            None,
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(r#""issued_token_type":[]"#),
            Some(ACCESS),
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(r#""issued_token_type":null"#),
            None,
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(r#""issued_token_type":{"uri":"x"}"#),
            None,
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(&format!(r#""issued_token_type":"{huge}""#)),
            Some(ACCESS),
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(&format!(r#""issued_token_type":"{ACCESS}\u001b[31m\r\nX: y""#)),
            Some(ACCESS),
            Fails(TokenErrorKind::IssuedTokenType, Some("issued_token_type")),
        ),
        (
            answer(&format!(r#"{issued},"token_type":"n_a""#)),
            None,
            Fails(TokenErrorKind::UnsupportedTokenType, Some("token_type")),
        ),
        (
            answer(&format!(r#"{issued},"token_type":"N_A""#)),
            Some(ACCESS),
            Fails(TokenErrorKind::UnsupportedTokenType, Some("token_type")),
        ),
        (
            answer(&format!(r#"{issued},"token_type":7"#)),
            None,
            Fails(TokenErrorKind::UnsupportedTokenType, Some("token_type")),
        ),
        (answer(&format!(r#"{issued},"expires_in":3600,"refresh_in":1e30"#)), None, Lives(HOUR)),
        (answer(&format!(r#"{issued},"expires_in":3600,"refresh_in":-5"#)), None, Lives(HOUR)),
        (answer(&format!(r#"{issued},"expires_in":3600,"refresh_in":"soon""#)), None, Lives(HOUR)),
        (
            answer(&format!(r#"{issued},"expires_in":3600,"refresh_in":{{"in":1}}"#)),
            None,
            Lives(HOUR),
        ),
        (
            answer(&format!(r#"{issued},"expires_in":"1e30""#)),
            None,
            LivesUnder(Duration::from_secs(400 * 24 * 3600)),
        ),
        (
            answer(&format!(r#"{issued},"expires_in":-1"#)),
            None,
            Fails(TokenErrorKind::InvalidExpiresIn, None),
        ),
        (
            format!(r#"{{"access_token":"{}",{issued}}}"#, jwt_token("1e300")),
            None,
            LivesUnder(Duration::from_secs(400 * 24 * 3600)),
        ),
        (
            format!(r#"{{"access_token":"{}",{issued}}}"#, jwt_token(&(now + 600).to_string())),
            None,
            LivesUnder(Duration::from_secs(601)),
        ),
        (
            format!(r#"{{"access_token":"{}",{issued}}}"#, jwt_token(r#""tomorrow""#)),
            None,
            Lives(Duration::from_secs(300)),
        ),
        (
            format!(r#"{{"access_token":"{}",{issued}}}"#, jwt_token("-1")),
            None,
            Lives(Duration::from_secs(300)),
        ),
        (
            format!(r#"{{"access_token":"{}",{issued}}}"#, jwt_token(&(now - 100).to_string())),
            None,
            Fails(TokenErrorKind::ExpiredOnArrival, None),
        ),
    ];
    let bodies: Vec<String> = cases.iter().map(|(body, _, _)| body.clone()).collect();
    let tokens = TokenServer::start_judging(move |_, received| {
        let case: usize = received.param("subject_token").unwrap().parse().unwrap();
        Reply::json(200, bodies[case].clone())
    })
    .await;
    let api = ApiServer::start().await;
    let config = tokens.config().default_lifetime(Duration::from_secs(300)).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    for (case, (body, requested, expect)) in cases.iter().enumerate() {
        let mut exchange = TokenExchange::subject_token(case.to_string(), TokenExchange::JWT);
        if let Some(requested) = requested {
            exchange = exchange.requested_token_type(requested);
        }
        let params = TokenParams::new().grant(exchange);
        let body = &body[..body.len().min(120)];
        let result = layer.token_for(&params).await;
        match (expect, result) {
            (Lives(expected), Ok(token)) => {
                let lifetime = token.lifetime();
                assert!(
                    lifetime.abs_diff(*expected) <= Duration::from_secs(1),
                    "{body}: {lifetime:?}"
                );
            }
            (LivesUnder(bound), Ok(token)) => {
                let lifetime = token.lifetime();
                assert!(
                    lifetime < *bound && lifetime > Duration::from_secs(60),
                    "{body}: {lifetime:?}"
                );
            }
            (Fails(kind, field), Err(error)) => {
                assert_eq!((error.kind(), error.field()), (*kind, *field), "{body}: {error}");
                let text = error.to_string();
                assert!(!text.chars().any(char::is_control), "{body}: {text:?}");
                assert!(text.len() < 600, "{body}: {} bytes", text.len());
                let through_service =
                    get_with(&service, request_with(&api.url, params.clone())).await;
                assert!(through_service.is_err(), "{body}");
            }
            (expect, result) => {
                panic!("{body}: expected {expect:?}, got {:?}", result.map(|t| t.lifetime()))
            }
        }
    }
    assert!(api.seen().is_empty(), "only failures went through the API client: {:?}", api.seen());
}

// ---------------------------------------------------------------------------------------------
// Signed assertions: the rotated key, the discovered issuer

/// The client key file is replaced: every JWT bearer assertion the crate signs after it is
/// signed with the new key, whichever cache it is for: the layer's own grant, a route's, a
/// request's made before the rotation, and a request's first made after it.
#[tokio::test(start_paused = true)]
async fn a_rotated_client_key_signs_the_jwt_bearer_assertions_of_every_cache() {
    let (first, second) = (KeyPair::generate(), KeyPair::generate());
    let tokens = TokenServer::start_judging(|n, received| {
        let assertion = received.param("assertion").unwrap_or("none.e30.none");
        let subject = claims_of(assertion)["sub"].as_str().unwrap_or("none").to_owned();
        named(&format!("{subject}-{n}"))
    })
    .await;
    let folder = Folder::new("grant-attacks-key-rotation");
    let file = folder.path("client.key");
    common::rotate(&file, &first.pem);
    let signed_for = |subject: &str| TokenParams::new().grant(JwtBearer::signed().subject(subject));
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key_file(&file, SigningAlgorithm::Es256)
        .grant(JwtBearer::signed())
        .route("http://routed.example", signed_for("routed"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let (routed, before, after) = (signed_for("routed"), signed_for("before"), signed_for("after"));

    assert_eq!(secret(layer.token().await), format!("{CLIENT_ID}-1"));
    assert_eq!(secret(layer.token_for(&routed).await), "routed-2");
    assert_eq!(secret(layer.token_for(&before).await), "before-3");
    common::rotate(&file, &second.pem);
    advance(Duration::from_secs(3601)).await;
    for params in [None, Some(&routed), Some(&before), Some(&after)] {
        match params {
            Some(params) => layer.token_for(params).await.unwrap(),
            None => layer.token().await.unwrap(),
        };
    }

    let received = tokens.received();
    assert_eq!(received.len(), 7);
    for (n, request) in received.iter().enumerate() {
        assert_eq!(request.param("client_assertion"), None, "the key signs the grant only");
        let assertion = request.param("assertion").expect("a signed assertion");
        let key = if n < 3 { &first } else { &second };
        let subject = claims_of(assertion)["sub"].clone();
        assert!(
            key.signed(assertion),
            "request {n} ({subject}) not signed with the key of its time"
        );
    }
}

/// Discovery against a metadata server on loopback, with `assertion_audience("issuer")`: the
/// client authenticates with `private_key_jwt` (the server lists it), and a request asks for
/// a JWT bearer token signed with the same key. Both assertions have the issuer as the
/// metadata names it (with its trailing `/`) as their sole `aud`. Only the client assertion
/// is typed `client-authentication+jwt` (the grant's is not client authentication); with
/// `client_assertion_type("jwt-spiffe")` the form says so.
#[tokio::test]
async fn a_discovered_issuer_is_the_audience_of_both_assertions_with_assertion_audience_issuer() {
    let tokens = grant_naming_token_server().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "issuer": format!("{issuer}/"),
        "token_endpoint": tokens.url,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
    });
    let router = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get_route(move || std::future::ready(axum::Json(document.clone()))),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let key = KeyPair::generate();

    let metadata = Config::discover(&issuer).await.unwrap();
    let config = metadata
        .builder_without_secret(CLIENT_ID)
        .client_key(ClientKey::from_pem(&key.pem, SigningAlgorithm::Es256).unwrap())
        .assertion_audience("issuer")
        .client_assertion_type("jwt-spiffe")
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);
    let layer = ClientCredentialsLayer::new(config);
    let signed = TokenParams::new().grant(JwtBearer::signed().subject("user@example.com"));
    assert_eq!(secret(layer.token_for(&signed).await), "jb-1");

    let received = &tokens.received()[0];
    assert_eq!(
        received.param("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-spiffe")
    );
    let client_assertion = received.param("client_assertion").expect("a client assertion");
    let grant_assertion = received.param("assertion").expect("the grant's assertion");
    for assertion in [client_assertion, grant_assertion] {
        assert!(key.signed(assertion));
        assert_eq!(claims_of(assertion)["aud"], format!("{issuer}/"), "{}", claims_of(assertion));
    }
    assert_eq!(header_of(client_assertion)["typ"], "client-authentication+jwt");
    assert_eq!(header_of(grant_assertion)["typ"], "JWT");
    assert_eq!(claims_of(grant_assertion)["sub"], "user@example.com");
    assert_eq!(claims_of(client_assertion)["sub"], CLIENT_ID);
}

/// DESIGN.md §12: "A key that signs the grant is not a client credential: such a client does
/// not authenticate unless `auth_method` says so." Saying so, `private_key_jwt`, with the
/// layer's grant `JwtBearer::signed()` and the key given: the client authenticates with an
/// assertion signed by that key, beside the grant's own.
#[tokio::test]
async fn a_key_that_signs_the_grant_authenticates_the_client_when_auth_method_says_so() {
    let tokens = grant_naming_token_server().await;
    let key = KeyPair::generate();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key(ClientKey::from_pem(&key.pem, SigningAlgorithm::Es256).unwrap())
        .grant(JwtBearer::signed())
        .auth_method(AuthMethod::PrivateKeyJwt)
        .build();
    let config = config.expect("auth_method says the client authenticates with its key");
    let layer = ClientCredentialsLayer::new(config);

    assert_eq!(secret(layer.token().await), "jb-1");
    let received = &tokens.received()[0];
    assert!(key.signed(received.param("client_assertion").expect("a client assertion")));
    assert!(key.signed(received.param("assertion").expect("the grant's assertion")));
}

/// `JwtBearer::signed()` on a client without a client id (what `builder_without_secret(url,
/// "")` and a Google key file with an empty `client_email` give) and without an `issuer`:
/// every assertion would say `iss: ""`, `sub: ""`, which no server takes. `build()` must
/// refuse it, naming the setting.
#[test]
fn a_signed_jwt_bearer_grant_without_an_issuer_is_a_build_error() {
    let key = KeyPair::generate();
    let client_key = || ClientKey::from_pem(&key.pem, SigningAlgorithm::Es256).unwrap();
    let build = |grant: JwtBearer| {
        Config::builder_without_secret("https://idp.example/token", "")
            .client_key(client_key())
            .grant(grant)
            .build()
    };
    let error = build(JwtBearer::signed()).expect_err("an assertion with `iss: \"\"`");
    assert!(["client_id", "issuer", "grant"].contains(&error.field()), "{error}");
    let with_empty_subject = Config::builder_without_secret("https://idp.example/token", "id")
        .client_key(client_key())
        .grant(JwtBearer::signed().subject(" "))
        .build();
    assert!(with_empty_subject.is_err(), "an assertion with `sub: \" \"`");
}

// ---------------------------------------------------------------------------------------------
// Where an exchanged token goes

/// A user's token exchange for a request that goes without our token (one that brings its
/// own `Authorization`, or is for an origin the allow-list leaves out): the user's subject
/// token is sent nowhere, not even to the token endpoint, through either front end.
#[tokio::test]
async fn a_request_that_goes_without_our_token_sends_its_subject_token_nowhere() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start().await;
    let listed = Origin::start(|_| ok()).await;
    let config = tokens.config().allowed_origin(&listed.url).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    let reqwest = common::reqwest_client(&layer);

    // The API's origin is not on the allow-list.
    let answer = get_with(&service, request_with(&api.url, on_behalf_of("alice"))).await.unwrap();
    assert_eq!(answer.0, 401);
    let response = reqwest.get(&api.url).with_extension(on_behalf_of("alice")).send().await;
    assert_eq!(response.unwrap().status(), 401);
    // Its own `Authorization`, to a listed origin.
    let mut request = request_with(&listed.url("/own"), on_behalf_of("alice"));
    request.headers_mut().insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    get_with(&service, request).await.unwrap();
    let response = reqwest
        .get(listed.url("/own"))
        .bearer_auth("users-own")
        .with_extension(on_behalf_of("alice"))
        .send()
        .await;
    assert_eq!(response.unwrap().status(), 200);

    assert_eq!(tokens.count(), 0, "the subject token went to the token endpoint");
    assert_eq!(api.seen(), [None, None]);
    assert_eq!(
        listed.authorization_for("/own"),
        [Some("Basic dXNlcjpwYXNz".to_owned()), Some("Bearer users-own".to_owned())]
    );
}

/// reqwest's default policy follows a redirect to another origin: a user's exchanged token
/// must not go there, and that origin's `401` drops nothing.
#[tokio::test]
async fn a_redirect_to_another_origin_carries_no_exchanged_token_and_its_401_drops_nothing() {
    let tokens = grant_naming_token_server().await;
    let elsewhere = Origin::start(|_| {
        http::Response::builder().status(401).body(axum::body::Body::empty()).unwrap()
    })
    .await;
    let target = elsewhere.url("/steal");
    let api = Origin::start(move |_| found(&target)).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let alice = on_behalf_of("alice");

    let response = common::reqwest_client(&layer)
        .get(api.url("/start"))
        .with_extension(alice.clone())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(api.authorization_for("/start"), [Some("Bearer te.alice-1".to_owned())]);
    assert_eq!(elsewhere.authorization_for("/steal"), [None]);
    assert_eq!(layer.stats_for(&alice).unwrap().invalidations, 0);
    assert_eq!(tokens.count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Replicas, eviction

/// Two replicas share a user's exchanged token through the store. The API rejects it: the
/// first replica to hear so exchanges again (deleting the rejected token from the store only
/// if it is still there), and the second, hearing it too, takes the new token from the store
/// rather than exchange once more. Each request is resent with the new token.
#[tokio::test]
async fn a_401_to_an_exchanged_token_shared_by_replicas_costs_one_new_exchange() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer te.alice-1").await;
    let store = MemoryStore::default();
    let replica = || {
        let config = tokens.config().store(store.clone()).build().unwrap();
        ClientCredentialsLayer::new(config)
    };
    let (one, two) = (replica(), replica());
    let alice = on_behalf_of("alice");
    assert_eq!(secret(one.token_for(&alice).await), "te.alice-1");
    assert_eq!(secret(two.token_for(&alice).await), "te.alice-1", "from the store");

    for replica in [&one, &two] {
        let response = common::reqwest_client(replica)
            .get(&api.url)
            .with_extension(alice.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Bearer te.alice-2");
    }

    assert_eq!(tokens.count(), 2, "one exchange, and one after the 401");
    assert_eq!(secret(two.token_for(&alice).await), "te.alice-2");
    assert_eq!(secret(replica().token_for(&alice).await), "te.alice-2", "a third replica");
}

/// A user's subject token file is refused (`invalid_grant`); other users' tokens push that
/// user's cache out (`max_cached_tokens` 1) while it backs off. Asked again, it still backs
/// off without asking, and no other user's token is held back by it. Once the file is
/// rewritten, the next request for it is sent at once.
#[tokio::test(start_paused = true)]
async fn a_refused_subject_token_file_rewritten_while_its_token_was_forgotten_is_sent_at_once() {
    let tokens = TokenServer::start_judging(|n, received| match received.param("subject_token") {
        Some("revoked") => {
            Reply::json(400, r#"{"error":"invalid_grant","error_description":"revoked"}"#)
        }
        Some(subject) => exchanged(&format!("te.{subject}-{n}"), 3600),
        None => Reply::token(n, 3600),
    })
    .await;
    let folder = Folder::new("grant-attacks-evicted-file");
    let file = folder.path("subject");
    common::rotate(&file, "revoked");
    let layer = ClientCredentialsLayer::new(tokens.config().max_cached_tokens(1).build().unwrap());
    let from_file =
        TokenParams::new().grant(TokenExchange::subject_token_file(&file, TokenExchange::JWT));

    let error = layer.token_for(&from_file).await.unwrap_err();
    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert_eq!(tokens.count(), 1);
    assert_eq!(secret(layer.token_for(&on_behalf_of("bob")).await), "te.bob-2");
    assert!(layer.stats_for(&from_file).is_none(), "forgotten for bob's");
    let error = layer.token_for(&from_file).await.unwrap_err();
    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert_eq!(tokens.count(), 2, "still backing off after its cache was made again");
    assert_eq!(secret(layer.token_for(&on_behalf_of("carol")).await), "te.carol-3");

    common::rotate(&file, "renewed");
    advance(Duration::from_millis(1)).await;
    assert_eq!(secret(layer.token_for(&from_file).await), "te.renewed-4");
}

// ---------------------------------------------------------------------------------------------
// The expiry hints

/// A server that answers every exchange with a `refresh_in` of a millisecond, on an hour's
/// token: the hint moves the refresh earlier, but must not make the client refresh at the rate
/// of its requests. A hundred requests a second apart cost a few token requests, as a server
/// that hands back short `expires_in` does (DESIGN.md §4: a bounded number per lifetime).
#[tokio::test(start_paused = true)]
async fn a_refresh_in_of_a_millisecond_does_not_refresh_at_the_rate_of_requests() {
    let tokens = TokenServer::start_with(|n| {
        let body = format!(
            r#"{{"access_token":"te-{n}","token_type":"Bearer","expires_in":3600,
                "refresh_in":0.001,"issued_token_type":"{}"}}"#,
            TokenExchange::ACCESS_TOKEN
        );
        Reply::json(200, body)
    })
    .await;
    let api = ApiServer::start().await;
    let exchange = TokenExchange::subject_token("workload", TokenExchange::JWT);
    let layer = ClientCredentialsLayer::new(tokens.config().grant(exchange).build().unwrap());
    let service = api_client(&layer);

    for _ in 0..100 {
        assert_eq!(get(&service, &api.url).await.unwrap().0, 200);
        advance(Duration::from_secs(1)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    assert!(tokens.count() <= 5, "{} token requests for 100 API requests", tokens.count());
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// Everything logged on this thread while the guard of [`capture_logs`] lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

thread_local! {
    static CAPTURING: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes into this thread's capture, if any.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|capturing| {
            if let Some(captured) = &*capturing.borrow() {
                captured.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for ThreadWriter {
    type Writer = ThreadWriter;

    fn make_writer(&self) -> ThreadWriter {
        ThreadWriter
    }
}

/// Stops capturing on drop.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.borrow_mut().take());
    }
}

/// Captures everything logged at TRACE on this thread (the tests' runtimes are current-thread)
/// while the guard lives. A scoped subscriber (`set_default`) misses events whose callsites
/// other tests' threads registered meanwhile with none: this one is the process's global
/// subscriber, installed once, and writes only what capturing threads log.
fn capture_logs() -> (Captured, Capturing) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let capturing = tracing_subscriber::filter::filter_fn(|_| {
            CAPTURING.with(|capturing| capturing.borrow().is_some())
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(ThreadWriter)
            .with_ansi(false)
            .with_filter(capturing);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let captured = Captured::default();
    CAPTURING.with(|capturing| *capturing.borrow_mut() = Some(captured.clone()));
    // Callsites other threads met first, before there was a subscriber, cached "never".
    tracing::callsite::rebuild_interest_cache();
    (captured, Capturing)
}

const SUBJECT_ALICE: &str = "subject-secret-alice";
const SUBJECT_BOB: &str = "subject-secret-bob";
const SUBJECT_CAROL: &str = "subject-secret-carol";
const ACTOR: &str = "actor-secret-gateway";
const ASSERTION: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhc3NlcnRpb24tc2VjcmV0In0.YXNzZXJ0aW9u";

/// Subject tokens, actor tokens, assertions given and assertions signed, and the tokens they
/// are exchanged for, through a flow with every kind of failure (`invalid_request`,
/// `invalid_grant`, the wrong `issued_token_type`, an expired subject JWT, the API's `401`)
/// logged at TRACE: none appears in the logs, in an error's `Display` or `Debug`, or in the
/// `Debug` of the layer, the configuration and the request's parameters.
#[tokio::test(start_paused = true)]
async fn no_presented_token_or_signed_assertion_reaches_logs_or_errors() {
    let (logs, _capturing) = capture_logs();

    let tokens = TokenServer::start_judging(|n, received| {
        let refused = |error: &str| Reply::json(400, format!(r#"{{"error":"{error}"}}"#));
        match (received.param("subject_token"), received.param("assertion")) {
            (Some(SUBJECT_ALICE), _) => refused("invalid_request"),
            (Some(SUBJECT_BOB), _) => Reply::json(
                200,
                format!(
                    r#"{{"access_token":"access-secret-bob","issued_token_type":"{}"}}"#,
                    TokenExchange::REFRESH_TOKEN
                ),
            ),
            (Some(_), _) => exchanged(&format!("access-secret-te-{n}"), 3600),
            (None, Some(ASSERTION)) => refused("invalid_grant"),
            (None, Some(_)) => named(&format!("access-secret-jb-{n}")),
            (None, None) => named(&format!("access-secret-cc-{n}")),
        }
    })
    .await;
    // The API rejects the first exchanged token it sees, once.
    let rejected = Arc::new(Mutex::new(None::<String>));
    let api = ApiServer::start_rejecting(move |auth| {
        let mut rejected = rejected.lock().unwrap();
        if rejected.is_none() && auth.contains("access-secret-te-") {
            *rejected = Some(auth.to_owned());
        }
        rejected.as_deref() == Some(auth)
    })
    .await;
    let key = KeyPair::generate();
    let config = tokens
        .config()
        .client_key(ClientKey::from_pem(&key.pem, SigningAlgorithm::Es256).unwrap())
        .auth_method(AuthMethod::ClientSecretBasic)
        .grant(JwtBearer::signed().subject("user@example.com"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config.clone());
    let service = api_client(&layer);
    let exchange = |subject: &str| {
        TokenParams::new().grant(
            TokenExchange::subject_token(subject, TokenExchange::ACCESS_TOKEN)
                .actor_token(ACTOR, TokenExchange::JWT)
                .requested_token_type(TokenExchange::ACCESS_TOKEN),
        )
    };
    let expired = jwt_with(&format!(r#"{{"sub":"expired-secret","exp":{}}}"#, unix_now() - 60));
    let failing = [
        exchange(SUBJECT_ALICE),
        exchange(SUBJECT_BOB),
        exchange(&expired),
        TokenParams::new().grant(JwtBearer::assertion(ASSERTION)),
    ];
    let carol = exchange(SUBJECT_CAROL);

    let mut texts = Vec::new();
    for params in &failing {
        let error = get_with(&service, request_with(&api.url, params.clone())).await.unwrap_err();
        texts.push(format!("{error} {error:?}"));
        let error = layer.token_for(params).await.unwrap_err();
        texts.push(format!("{error} {error:?}"));
        texts.push(format!("{params:?}"));
    }
    let (status, _) = get_with(&service, request_with(&api.url, carol.clone())).await.unwrap();
    assert_eq!(status, 401, "the API rejects carol's first token");
    let (status, _) = get_with(&service, request_with(&api.url, carol.clone())).await.unwrap();
    assert_eq!(status, 200, "a new token after the 401");
    assert_eq!(get(&service, &api.url).await.unwrap().0, 200, "the signed grant's token");
    texts.push(format!("{layer:?} {config:?} {carol:?} {:?}", layer.stats_for(&carol)));

    let logs = logs.text();
    // Run alone, every line is captured. Beside other tests, tracing's callsite interest
    // cache, filled by their threads, may hide some of this thread's events: demand only
    // that the capture works.
    assert!(logs.contains("tower_client_credentials"), "nothing captured:\n{logs}");
    texts.push(logs);
    let received = tokens.received();
    let signed: Vec<&str> = received.iter().filter_map(|r| r.param("assertion")).collect();
    assert!(signed.len() >= 2, "the signed grant and the given assertion were sent");
    let mut secrets =
        vec![SUBJECT_ALICE, SUBJECT_BOB, SUBJECT_CAROL, ACTOR, ASSERTION, &expired, CLIENT_SECRET];
    secrets.extend(signed);
    secrets.extend(["access-secret-bob", "access-secret-te-", "access-secret-jb-"]);
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings that cannot work

/// Settings as text, and the fields an error may name.
type SettingsCase<'a> = (Vec<(&'a str, &'a str)>, &'a [&'a str]);

/// Grant settings as a file or the environment gives them (text, read by the same serde code
/// as `Config::from_env`), each with one mistake: each is an error of `into_config()` (that is,
/// `build()`) naming the setting to fix, never a configuration whose token requests fail.
#[test]
fn grant_settings_that_cannot_work_are_build_errors_naming_the_setting() {
    let folder = Folder::new("grant-attacks-settings");
    let key_file = folder.path("client.key");
    std::fs::write(&key_file, KeyPair::generate().pem).unwrap();
    let key_file = key_file.display().to_string();
    let exchange = [("grant", "token_exchange"), ("subject_token_file", "/run/t")];
    let typed = [exchange[0], exchange[1], ("subject_token_type", "jwt")];
    let cases: Vec<SettingsCase> = vec![
        (vec![("grant", "token_exchange")], &["subject_token_file"]),
        (exchange.to_vec(), &["subject_token_type"]),
        (vec![exchange[0], exchange[1], ("subject_token_type", " ")], &["subject_token_type"]),
        (vec![exchange[0], exchange[1], ("subject_token_type", "urn:x:")], &["subject_token_type"]),
        ([&typed[..], &[("requested_token_type", "id token")]].concat(), &["requested_token_type"]),
        ([&typed[..], &[("actor_token_file", "/run/a")]].concat(), &["actor_token_type"]),
        ([&typed[..], &[("actor_token_type", "jwt")]].concat(), &["actor_token_file"]),
        (
            [&typed[..], &[("actor_token_file", "/run/a"), ("actor_token_type", "\t")]].concat(),
            &["actor_token_type"],
        ),
        ([&typed[..], &[("assertion_file", "/run/j")]].concat(), &["assertion_file"]),
        ([&typed[..], &[("assertion_subject", "u")]].concat(), &["assertion_subject"]),
        (vec![("subject_token_file", "/run/t")], &["subject_token_file"]),
        (
            vec![("grant", "client_credentials"), ("requested_token_type", "jwt")],
            &["requested_token_type"],
        ),
        (vec![("assertion_file", "/run/j")], &["assertion_file"]),
        (vec![("grant", "jwt_bearer"), ("subject_token_type", "jwt")], &["subject_token_type"]),
        (vec![("grant", "jwt_bearer"), ("client_secret", "")], &["client_key", "client_key_file"]),
        (
            vec![("grant", "jwt_bearer"), ("assertion_file", "/run/j"), ("assertion_subject", "u")],
            &["assertion_subject"],
        ),
        (vec![("grant", "saml_bearer")], &["grant"]),
        (vec![("grant", "")], &["grant"]),
        (vec![("auth_method", "none")], &["auth_method"]),
        (
            vec![
                ("grant", "jwt_bearer"),
                ("client_key_file", &key_file),
                ("client_key_algorithm", "ES256"),
                ("assertion_audience", "issuer"),
            ],
            &["assertion_audience"],
        ),
        (
            vec![
                ("grant", "jwt_bearer"),
                ("client_key_file", &key_file),
                ("client_key_algorithm", "ES256"),
                ("assertion_lifetime", "0s"),
            ],
            &["assertion_lifetime"],
        ),
        ([&typed[..], &[("client_assertion_type", "spiffe")]].concat(), &["client_assertion_type"]),
    ];
    for (settings, fields) in cases {
        let mut text = serde_json::Map::new();
        text.insert("token_url".into(), "https://idp.example/token".into());
        text.insert("client_id".into(), CLIENT_ID.into());
        text.insert("client_secret".into(), CLIENT_SECRET.into());
        for (name, value) in &settings {
            text.insert((*name).into(), (*value).into());
        }
        let parsed = serde_json::from_value::<Settings>(text.into());
        let error = match parsed {
            Err(error) => panic!("{settings:?} does not even parse: {error}"),
            Ok(settings) => settings.into_config(),
        };
        match error {
            Ok(config) => panic!("{settings:?} built: {config:?}"),
            Err(error) => assert!(fields.contains(&error.field()), "{settings:?}: {error}"),
        }
    }
}

/// The same mistakes in code: a `Grant` given to the builder or a route that holds what no
/// request could send is a `build()` error naming the setting.
#[test]
fn grants_in_code_that_cannot_work_are_build_errors_naming_the_setting() {
    let builder = || Config::builder("https://idp.example/token", CLIENT_ID, CLIENT_SECRET);
    let cases: Vec<(Grant, &str)> = vec![
        (TokenExchange::subject_token("", "jwt").into(), "subject_token"),
        (TokenExchange::subject_token("a\u{0}b", "jwt").into(), "subject_token"),
        (TokenExchange::subject_token("s", "").into(), "subject_token_type"),
        (TokenExchange::subject_token("s", "jwt").actor_token(" ", "jwt").into(), "actor_token"),
        (
            TokenExchange::subject_token("s", "jwt").actor_token("a", "a b").into(),
            "actor_token_type",
        ),
        (
            TokenExchange::subject_token("s", "jwt").requested_token_type("urn:\n").into(),
            "requested_token_type",
        ),
        (JwtBearer::assertion("\r\n").into(), "assertion"),
        (JwtBearer::signed().into(), "client_key"),
    ];
    for (grant, field) in cases {
        let debug = format!("{grant:?}");
        let error = builder().grant(grant.clone()).build().unwrap_err();
        assert_eq!(error.field(), field, "{debug}: {error}");
        let routed = builder().route("https://api.example", TokenParams::new().grant(grant));
        let error = routed.build().unwrap_err();
        assert!([field, "route"].contains(&error.field()), "{debug} on a route: {error}");
    }
}
