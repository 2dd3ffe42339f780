//! Grants beyond client credentials, where they meet the rest of the crate: token exchange
//! (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1), against a token endpoint on loopback
//! that records every form parameter. What each request sends with each client authentication;
//! subject tokens and assertions read anew from files and sources as they rotate; tokens of
//! ours that are unusable (expired, missing, empty) never sent; the store, DPoP, several
//! grants in one layer (Tower service and reqwest), the expiry hints, and answers that issue
//! something other than an access token.
//!
//! The clock is paused wherever no other process is involved. A presented token's `exp` is
//! read against the wall clock, which paused time does not move.

use crate::common;
use common::grants::{claims_of, exchanged, grant_naming_token_server, jwt, unix_now};
use common::memory_store::MemoryStore;
use common::{
    api_client, get, get_with, origin, request_with, ApiServer, Folder, Received, Reply,
    TokenServer, CLIENT_ID, CLIENT_SECRET,
};

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::advance;
use tower_client_credentials::credential::{
    CredentialError, CredentialErrorKind, CredentialFuture, CredentialSource,
};
use tower_client_credentials::{
    AuthMethod, BoxError, ClientCredentialsLayer, ClientKey, Config, ConfigError, ErrorClass,
    Grant, JwtBearer, SigningAlgorithm, TokenError, TokenErrorKind, TokenExchange, TokenParams,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn invalid_grant() -> Reply {
    Reply::json(400, r#"{"error":"invalid_grant","error_description":"subject token revoked"}"#)
}

/// A token server whose `n`th answer is `exchanged("token-<n>", expires_in)`.
async fn exchange_token_server(expires_in: u64) -> TokenServer {
    TokenServer::start_with(move |n| exchanged(&format!("token-{n}"), expires_in)).await
}

/// The form a request carried, sorted: the order of the fields means nothing.
fn form_of(received: &Received) -> Vec<(String, String)> {
    let mut form = received.form.clone();
    form.sort();
    form
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        expected.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    pairs.sort();
    pairs
}

/// The parameter `name` of each token request, in order.
fn params_sent(tokens: &TokenServer, name: &str) -> Vec<String> {
    tokens.received().iter().map(|r| r.param(name).unwrap().to_owned()).collect()
}

/// The `TokenError` in the error a service returned.
fn token_error(error: &BoxError) -> &TokenError {
    TokenError::find(error.as_ref()).unwrap_or_else(|| panic!("not a token error: {error}"))
}

/// Lets a background token request finish without moving the clock.
async fn until_fetched(layer: &ClientCredentialsLayer, n: u64) {
    for _ in 0..10_000 {
        if layer.stats().tokens_fetched >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("token {n} never arrived");
}

/// A P-256 key for signing, and its public key for checking.
fn es256_key() -> (ClientKey, jsonwebtoken::DecodingKey) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = ClientKey::from_pem(pair.serialize_pem(), SigningAlgorithm::Es256).unwrap();
    let public = jsonwebtoken::DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap();
    (key, public)
}

/// A subject token of yours: `current`, at `version`. Counts the times it was asked with
/// `fresh` set.
#[derive(Debug, Default)]
struct Session {
    current: Mutex<String>,
    version: AtomicU64,
    fresh_asks: AtomicUsize,
}

impl Session {
    fn new(token: &str) -> Arc<Self> {
        Arc::new(Self { current: Mutex::new(token.to_owned()), ..Self::default() })
    }

    fn renew(&self, token: &str) {
        *self.current.lock().unwrap() = token.to_owned();
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

/// The source the crate holds: a handle on a [`Session`] the test keeps too.
#[derive(Debug)]
struct SessionSource(Arc<Session>);

impl CredentialSource for SessionSource {
    fn credential(&self, fresh: bool) -> CredentialFuture<'_> {
        if fresh {
            self.0.fresh_asks.fetch_add(1, Ordering::SeqCst);
        }
        let token = SecretString::from(self.0.current.lock().unwrap().clone());
        Box::pin(std::future::ready(Ok(token)))
    }

    fn version(&self) -> Option<u64> {
        Some(self.0.version.load(Ordering::SeqCst))
    }
}

// ---------------------------------------------------------------------------------------------
// Every form parameter, with every client authentication

/// A token exchange with everything set: the subject and actor tokens and their types, the
/// requested type, scopes, audience and resource, and the client in `Authorization: Basic`.
#[tokio::test]
async fn a_token_exchange_sends_every_parameter_and_the_client_in_basic() {
    let tokens = exchange_token_server(3600).await;
    let exchange = TokenExchange::subject_token("user-token", "access_token")
        .actor_token("actor-token", TokenExchange::JWT)
        .requested_token_type(TokenExchange::ACCESS_TOKEN);
    let config = tokens
        .config()
        .grant(exchange)
        .scope("orders:read orders:write")
        .audience("orders")
        .resource("https://orders.example/")
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    assert_eq!(layer.token().await.unwrap().secret(), "token-1");

    let received = &tokens.received()[0];
    assert_eq!(
        form_of(received),
        pairs(&[
            ("grant_type", TokenExchange::GRANT_TYPE),
            ("subject_token", "user-token"),
            ("subject_token_type", TokenExchange::ACCESS_TOKEN),
            ("actor_token", "actor-token"),
            ("actor_token_type", TokenExchange::JWT),
            ("requested_token_type", TokenExchange::ACCESS_TOKEN),
            ("scope", "orders:read orders:write"),
            ("audience", "orders"),
            ("resource", "https://orders.example/"),
        ])
    );
    assert_eq!(received.basic, Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())));
}

#[tokio::test]
async fn a_token_exchange_with_client_secret_post_puts_the_client_in_the_form() {
    let tokens = exchange_token_server(3600).await;
    let config = tokens
        .config()
        .auth_method(AuthMethod::ClientSecretPost)
        .grant(TokenExchange::subject_token("user-token", "jwt"))
        .audience("orders")
        .build()
        .unwrap();

    ClientCredentialsLayer::new(config).token().await.unwrap();

    let received = &tokens.received()[0];
    assert_eq!(
        form_of(received),
        pairs(&[
            ("grant_type", TokenExchange::GRANT_TYPE),
            ("subject_token", "user-token"),
            ("subject_token_type", TokenExchange::JWT),
            ("audience", "orders"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );
    assert_eq!(received.basic, None);
    assert!(received.headers.get("authorization").is_none());
}

/// Without a credential the client does not authenticate (`none`): it names itself in the
/// form if it has an id, and sends no `client_id` at all if it has none.
#[tokio::test]
async fn a_token_exchange_without_a_credential_names_the_client_only_if_it_has_an_id() {
    let tokens = exchange_token_server(3600).await;
    let grant = || TokenExchange::subject_token("user-token", "jwt");
    let named = Config::builder_without_secret(&tokens.url, CLIENT_ID).grant(grant());
    let anonymous = Config::builder_without_secret(&tokens.url, "").grant(grant());

    for builder in [named, anonymous] {
        ClientCredentialsLayer::new(builder.build().unwrap()).token().await.unwrap();
    }

    let received = tokens.received();
    let base = [
        ("grant_type", TokenExchange::GRANT_TYPE),
        ("subject_token", "user-token"),
        ("subject_token_type", TokenExchange::JWT),
    ];
    assert_eq!(form_of(&received[0]), pairs(&[&base[..], &[("client_id", CLIENT_ID)]].concat()));
    assert_eq!(form_of(&received[1]), pairs(&base));
    for received in &received {
        assert!(received.headers.get("authorization").is_none());
    }
}

/// The assertion comes from its file, trimmed; the scope stays in the form.
#[tokio::test]
async fn a_jwt_bearer_assertion_from_a_file_is_sent_trimmed_as_the_assertion() {
    let tokens = TokenServer::start().await;
    let folder = Folder::new("grants-assertion-form");
    let file = folder.path("assertion");
    let assertion = jwt("workload", unix_now() + 600);
    std::fs::write(&file, format!("{assertion}\n")).unwrap();
    let config = tokens
        .config()
        .grant(JwtBearer::assertion_file(&file))
        .scope("orders:read")
        .build()
        .unwrap();

    ClientCredentialsLayer::new(config).token().await.unwrap();

    let received = &tokens.received()[0];
    assert_eq!(
        form_of(received),
        pairs(&[
            ("grant_type", JwtBearer::GRANT_TYPE),
            ("assertion", &assertion),
            ("scope", "orders:read"),
        ])
    );
    assert_eq!(received.basic, Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())));
}

/// `JwtBearer::signed()` with its scopes in the assertion (Google's service accounts): each
/// token request carries a new assertion, signed with the client key, from the issuer about
/// the subject for the token endpoint, with the scopes in its `scope` claim and none in the
/// form, valid for the assertion lifetime, with a `jti` of its own.
#[tokio::test(start_paused = true)]
async fn a_signed_jwt_bearer_assertion_carries_its_claims_and_a_new_jti_for_each_request() {
    let tokens = TokenServer::start_with(|n| Reply::token(n, 100)).await;
    let (key, public) = es256_key();
    let grant =
        JwtBearer::signed().issuer("sa@project.iam.example").subject("user@example").scope_claim();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key(key)
        .grant(grant)
        .scope("b a")
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    for n in 1..=3 {
        assert_eq!(layer.token().await.unwrap().secret(), format!("token-{n}"));
        advance(Duration::from_secs(100)).await;
    }

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&tokens.url]);
    validation.set_issuer(&["sa@project.iam.example"]);
    validation.sub = Some("user@example".into());
    let mut jtis = Vec::new();
    for received in tokens.received() {
        let assertion = received.param("assertion").expect("an assertion");
        let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &public, &validation)
            .expect("signed with the client key, with the claims asked for")
            .claims;
        assert_eq!(claims["scope"], "b a");
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert_eq!(exp - iat, 60, "the default assertion lifetime");
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
        assert_eq!(received.param("scope"), None, "the scopes are in the assertion");
        assert_eq!(
            form_of(&received),
            pairs(&[
                ("grant_type", JwtBearer::GRANT_TYPE),
                ("assertion", assertion),
                ("client_id", CLIENT_ID),
            ])
        );
        assert!(received.headers.get("authorization").is_none(), "the key signs the grant only");
    }
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "a new jti for each token request");
}

// ---------------------------------------------------------------------------------------------
// Rotation: the token of the moment

/// Four token lifetimes of 100 s; the platform rewrites the file in the middle of each. The
/// token request of each lifetime must carry the file's content at that moment.
async fn each_token_request_presents_the_file_of_the_moment(
    grant: impl FnOnce(&Path) -> Grant,
    param: &str,
) {
    let tokens = TokenServer::start_judging(|n, received| match received.param("grant_type") {
        Some(TokenExchange::GRANT_TYPE) => exchanged(&format!("token-{n}"), 100),
        _ => Reply::token(n, 100),
    })
    .await;
    let api = ApiServer::start().await;
    let folder = Folder::new(&format!("grants-rotation-{param}"));
    let file = folder.path("token");
    let presented: Vec<String> =
        (1..=4).map(|n| jwt(&format!("v{n}"), unix_now() + 3600)).collect();
    std::fs::write(&file, &presented[0]).unwrap();
    let config = tokens.windowed_config().grant(grant(&file)).build().unwrap();
    let service = api_client(&ClientCredentialsLayer::new(config));

    for (n, next) in (1..).zip(presented.iter().skip(1).map(Some).chain([None])) {
        assert_eq!(get(&service, &api.url).await.unwrap(), (200, format!("Bearer token-{n}")));
        advance(Duration::from_secs(50)).await;
        if let Some(next) = next {
            common::rotate(&file, next);
        }
        // Past the token's `usable_until` (90 s): the next request waits for a new token.
        advance(Duration::from_secs(50)).await;
    }

    let sent = params_sent(&tokens, param);
    assert_eq!(sent, presented, "one token request per lifetime, with the file of its moment");
}

#[tokio::test(start_paused = true)]
async fn each_token_exchange_presents_the_subject_token_file_of_the_moment() {
    let grant = |file: &Path| TokenExchange::subject_token_file(file, "jwt").into();
    each_token_request_presents_the_file_of_the_moment(grant, "subject_token").await;
}

#[tokio::test(start_paused = true)]
async fn each_jwt_bearer_request_presents_the_assertion_file_of_the_moment() {
    let grant = |file: &Path| JwtBearer::assertion_file(file).into();
    each_token_request_presents_the_file_of_the_moment(grant, "assertion").await;
}

/// The server refuses the session's token (`invalid_grant`) and the session has renewed it
/// meanwhile: the crate asks the source afresh and sends the request once more, with the new
/// token. Two token requests, one token.
#[tokio::test(start_paused = true)]
async fn a_subject_token_source_renewed_after_invalid_grant_is_sent_at_once_and_only_once() {
    let session = Session::new("session-1");
    let renewer = Arc::clone(&session);
    let tokens = TokenServer::start_judging(move |n, received| {
        if received.param("subject_token") == Some("session-1") {
            renewer.renew("session-2");
            return invalid_grant();
        }
        exchanged(&format!("token-{n}"), 3600)
    })
    .await;
    let grant = TokenExchange::subject_token_source(SessionSource(session.clone()), "jwt");
    let config = tokens.config().grant(grant).build().unwrap();

    let token = ClientCredentialsLayer::new(config).token().await.unwrap();

    assert_eq!(token.secret(), "token-2");
    assert_eq!(tokens.count(), 2);
    assert_eq!(params_sent(&tokens, "subject_token"), ["session-1", "session-2"]);
    assert_eq!(session.fresh_asks.load(Ordering::SeqCst), 1);
}

/// A subject token that is simply wrong: one token request, no resend (it has not changed),
/// and the rejection backoff keeps the endpoint from being asked again at once.
#[tokio::test(start_paused = true)]
async fn a_wrong_subject_token_is_sent_once_and_then_backs_off() {
    let tokens = TokenServer::start_with(|_| invalid_grant()).await;
    let config = tokens
        .config()
        .grant(TokenExchange::subject_token("revoked-token", "access_token"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    for _ in 0..5 {
        let error = layer.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_grant"));
        assert_eq!(error.class(), ErrorClass::Rejected);
    }
    assert_eq!(tokens.count(), 1, "no resend of the same token, and no request while backing off");
    advance(Duration::from_secs(2)).await;
    assert!(layer.token().await.is_err());
    assert_eq!(tokens.count(), 1, "the first rejection backoff is at least 2.5 s");
    advance(Duration::from_secs(3)).await;
    assert!(layer.token().await.is_err());
    assert_eq!(tokens.count(), 2, "asked again once the backoff is over");
}

/// The subject token file held a revoked token; the platform replaces it a moment after the
/// server refused it. The new token is worth asking with at once, as a rotated client
/// credential is, not after the rejection backoff.
#[tokio::test(start_paused = true)]
async fn a_subject_token_file_replaced_after_invalid_grant_is_sent_at_once() {
    let tokens = TokenServer::start_judging(|n, received| match received.param("subject_token") {
        Some("revoked") => invalid_grant(),
        _ => exchanged(&format!("token-{n}"), 3600),
    })
    .await;
    let folder = Folder::new("grants-replaced-after-invalid-grant");
    let file = folder.path("subject");
    std::fs::write(&file, "revoked").unwrap();
    let config = tokens.config().grant(TokenExchange::subject_token_file(&file, "jwt")).build();
    let layer = ClientCredentialsLayer::new(config.unwrap());
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.oauth_error(), Some("invalid_grant"));
    assert_eq!(tokens.count(), 1, "the file had not changed: no resend");

    common::rotate(&file, "renewed");
    advance(Duration::from_millis(1)).await;
    let token = layer.token().await;

    assert_eq!(token.map(|t| t.secret().to_owned()).ok().as_deref(), Some("token-2"));
    assert_eq!(tokens.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Tokens of ours that cannot be sent

/// `grant` presents the token in `file`, which `spoil` makes unusable: nothing is sent, the
/// error is a transient `GrantToken` naming `field`, with a `CredentialError` of `kind` as its
/// source. Once the file holds a good token, the next request after the (transient) backoff
/// gets a token.
async fn a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(
    grant: impl FnOnce(&Path) -> Grant,
    spoil: impl FnOnce(&Path),
    field: &str,
    kind: CredentialErrorKind,
) {
    let tokens = exchange_token_server(3600).await;
    let api = ApiServer::start().await;
    let folder = Folder::new(&format!("grants-spoiled-{field}-{kind:?}"));
    let file = folder.path("token");
    spoil(&file);
    let config = tokens.config().grant(grant(&file)).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    for _ in 0..3 {
        let error = get(&service, &api.url).await.unwrap_err();
        let error = token_error(&error);
        assert_eq!(error.kind(), TokenErrorKind::GrantToken, "{error}");
        assert_eq!(error.field(), Some(field));
        assert!(error.is_transient());
        let source = std::error::Error::source(error).expect("the file's error");
        let source = source.downcast_ref::<CredentialError>().expect("a CredentialError");
        assert_eq!(source.kind(), kind);
    }
    assert_eq!(tokens.count(), 0, "nothing was sent");
    assert_eq!(api.seen(), []);

    common::rotate(&file, &jwt("fixed", unix_now() + 3600));
    advance(Duration::from_secs(1)).await; // the first transient backoff
    assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-1".to_owned()));
    assert_eq!(tokens.count(), 1);
    let sent = tokens.received()[0].param(field).map(claims_of);
    assert_eq!(sent.map(|c| c["sub"].clone()), Some("fixed".into()));
}

fn subject_file(file: &Path) -> Grant {
    TokenExchange::subject_token_file(file, "jwt").into()
}

fn write_expired(file: &Path) {
    std::fs::write(file, jwt("expired", unix_now() - 60)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_expired_subject_token_in_its_file_is_never_sent() {
    let expired = CredentialErrorKind::Expired;
    a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(
        subject_file,
        write_expired,
        "subject_token",
        expired,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_subject_token_file_sends_nothing() {
    let missing = CredentialErrorKind::Unreadable;
    a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(
        subject_file,
        |_| {},
        "subject_token",
        missing,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_subject_token_file_sends_nothing() {
    let empty = |file: &Path| std::fs::write(file, " \n").unwrap();
    let kind = CredentialErrorKind::Empty;
    a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(
        subject_file,
        empty,
        "subject_token",
        kind,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_actor_token_file_sends_nothing() {
    let grant = |file: &Path| {
        TokenExchange::subject_token("user-token", "access_token")
            .actor_token_file(file, "jwt")
            .into()
    };
    let missing = CredentialErrorKind::Unreadable;
    a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(grant, |_| {}, "actor_token", missing)
        .await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_jwt_bearer_assertion_in_its_file_is_never_sent() {
    let grant = |file: &Path| JwtBearer::assertion_file(file).into();
    let expired = CredentialErrorKind::Expired;
    a_spoiled_file_sends_nothing_and_a_fixed_one_recovers(
        grant,
        write_expired,
        "assertion",
        expired,
    )
    .await;
}

/// One user's subject token has expired: that request fails without sending anything, and
/// no other token of the layer is held back by it (the layer's own, another user's). It says
/// nothing about the token endpoint.
#[tokio::test(start_paused = true)]
async fn an_expired_per_request_subject_token_holds_back_no_other_token() {
    let tokens = grant_naming_token_server().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let user = |token: String| {
        TokenParams::new().grant(TokenExchange::subject_token(token, TokenExchange::JWT))
    };
    let expired = jwt("alice", unix_now() - 60);

    let error = layer.token_for(&user(expired)).await.unwrap_err();
    assert_eq!((error.kind(), error.field()), (TokenErrorKind::GrantToken, Some("subject_token")));
    assert_eq!(tokens.count(), 0);

    let own = layer.token().await.map(|t| t.secret().to_owned()).map_err(|e| e.to_string());
    assert_eq!(own.as_deref(), Ok("cc-1"), "the layer's own token");
    let bob = jwt("bob", unix_now() + 600);
    let other = layer.token_for(&user(bob.clone())).await;
    let other = other.map(|t| t.secret().to_owned()).map_err(|e| e.to_string());
    assert_eq!(other, Ok(format!("te.{bob}-2")), "another user's token");
}

/// A subject token taken from a request (a user's token) with a newline, or empty: the
/// request's `TokenParams` cannot go into a token request. Nothing is sent, through the Tower
/// service, reqwest or `token_for`.
#[tokio::test]
async fn a_per_request_subject_token_with_a_newline_or_empty_is_a_token_params_error() {
    let tokens = exchange_token_server(3600).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);
    let reqwest = common::reqwest_client(&layer);

    for bad in ["user-token\r\nx-injected: 1", "", "  "] {
        let params =
            TokenParams::new().grant(TokenExchange::subject_token(bad, TokenExchange::JWT));
        let check = |error: &TokenError| {
            assert_eq!(error.kind(), TokenErrorKind::TokenParams, "{bad:?}: {error}");
            let source = std::error::Error::source(error).expect("the parameter's error");
            let source = source.downcast_ref::<ConfigError>().expect("a ConfigError");
            assert_eq!(source.field(), "subject_token", "{bad:?}");
        };
        check(&layer.token_for(&params).await.unwrap_err());
        let error = get_with(&service, request_with(&api.url, params.clone())).await.unwrap_err();
        check(token_error(&error));
        let error = reqwest.get(&api.url).with_extension(params).send().await.unwrap_err();
        check(TokenError::find(&error).expect("a token error"));
    }
    assert_eq!(tokens.count(), 0);
    assert_eq!(api.seen(), []);
}

/// `JwtBearer::signed()` for one request, on a layer that has no client key to sign with:
/// the request's parameters cannot go into a token request. A token request without an
/// assertion must not be sent.
#[tokio::test]
async fn a_per_request_signed_jwt_bearer_without_a_client_key_sends_nothing() {
    let tokens = grant_naming_token_server().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let params = TokenParams::new().grant(JwtBearer::signed());

    let error = layer.token_for(&params).await.unwrap_err();

    assert_eq!(error.kind(), TokenErrorKind::TokenParams, "{error}");
    assert_eq!(tokens.count(), 0, "sent: {:?}", tokens.received().first().map(form_of));
}

/// A client without a credential (it exchanges tokens, `none`) asked for a client-credentials
/// token for one request: that grant authenticates the client, which it cannot. Nothing is
/// sent.
#[tokio::test]
async fn a_per_request_client_credentials_grant_on_a_client_without_credentials_sends_nothing() {
    let tokens = grant_naming_token_server().await;
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .grant(TokenExchange::subject_token("service-token", "jwt"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let params = TokenParams::new().grant(Grant::ClientCredentials);

    let error = layer.token_for(&params).await.unwrap_err();

    assert_eq!(error.kind(), TokenErrorKind::TokenParams, "{error}");
    assert_eq!(tokens.count(), 0, "sent: {:?}", tokens.received().first().map(form_of));
    assert!(layer.token().await.is_ok(), "the layer's own grant still works");
}

/// Subject tokens taken from requests, each distinct (one per user): each is a token of its
/// own, and the layer keeps at most `max_cached_tokens` of them.
#[tokio::test(start_paused = true)]
async fn thousands_of_distinct_per_request_subject_tokens_stay_within_max_cached_tokens() {
    const USERS: usize = 1000;
    let tokens = grant_naming_token_server().await;
    let layer = ClientCredentialsLayer::new(tokens.config().max_cached_tokens(10).build().unwrap());
    let user = |n: usize| {
        TokenParams::new().grant(TokenExchange::subject_token(format!("user-{n}"), "jwt"))
    };

    for n in 0..USERS {
        let token = layer.token_for(&user(n)).await.unwrap();
        assert_eq!(token.secret(), format!("te.user-{n}-{}", n + 1));
    }

    assert_eq!(tokens.count(), USERS);
    let kept = (0..USERS).filter(|&n| layer.stats_for(&user(n)).is_some()).count();
    assert!(kept <= 10, "tokens kept: {kept}");
    let last = layer.token_for(&user(USERS - 1)).await.unwrap();
    assert_eq!(last.secret(), format!("te.user-{}-{USERS}", USERS - 1), "the latest is kept");
    assert_eq!(tokens.count(), USERS);
}

// ---------------------------------------------------------------------------------------------
// The store

/// A replica: its own layer, the fleet's store, and the key the fleet agreed on (there is no
/// client secret to derive one from).
fn replica(
    tokens: &TokenServer,
    store: &MemoryStore,
    grant: impl Into<Grant>,
) -> ClientCredentialsLayer {
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .grant(grant)
        .store(store.clone())
        .store_encryption_key([7; 32])
        .build()
        .unwrap();
    ClientCredentialsLayer::new(config)
}

/// Two replicas ask for the token of `one` and of `two`; the tokens they get.
async fn tokens_of_two_replicas(
    tokens: &TokenServer,
    one: impl Into<Grant>,
    two: impl Into<Grant>,
) -> (String, String) {
    let store = MemoryStore::default();
    let first = replica(tokens, &store, one).token().await.unwrap();
    let second = replica(tokens, &store, two).token().await.unwrap();
    (first.secret().to_owned(), second.secret().to_owned())
}

#[tokio::test]
async fn replicas_exchanging_the_same_subject_token_share_one_token_and_others_do_not() {
    let tokens = grant_naming_token_server().await;
    let alice = || TokenExchange::subject_token("alice", "jwt");

    let shared = tokens_of_two_replicas(&tokens, alice(), alice()).await;
    assert_eq!(shared, ("te.alice-1".into(), "te.alice-1".into()));
    assert_eq!(tokens.count(), 1);

    let bob = TokenExchange::subject_token("bob", "jwt");
    let apart = tokens_of_two_replicas(&tokens, alice(), bob).await;
    assert_eq!(apart, ("te.alice-2".into(), "te.bob-3".into()));
    let other_type = TokenExchange::subject_token("alice", "access_token");
    let apart = tokens_of_two_replicas(&tokens, alice(), other_type).await;
    assert_eq!(apart, ("te.alice-4".into(), "te.alice-5".into()), "another subject type");
    let with_actor = alice().actor_token("gateway", "jwt");
    let apart = tokens_of_two_replicas(&tokens, alice(), with_actor).await;
    assert_eq!(apart, ("te.alice-6".into(), "te.alice-7".into()), "an actor");
    assert_eq!(tokens.count(), 7);
}

#[tokio::test]
async fn replicas_presenting_the_same_assertion_file_share_one_token_and_others_do_not() {
    let tokens = grant_naming_token_server().await;
    let folder = Folder::new("grants-store-assertion");
    let (one, two) = (folder.path("one"), folder.path("two"));
    std::fs::write(&one, jwt("workload", unix_now() + 600)).unwrap();
    std::fs::write(&two, jwt("workload", unix_now() + 600)).unwrap();

    let shared = tokens_of_two_replicas(
        &tokens,
        JwtBearer::assertion_file(&one),
        JwtBearer::assertion_file(&one),
    )
    .await;
    assert_eq!(shared, ("jb-1".into(), "jb-1".into()));
    let apart = tokens_of_two_replicas(
        &tokens,
        JwtBearer::assertion_file(&one),
        JwtBearer::assertion_file(&two),
    )
    .await;
    assert_eq!(apart, ("jb-2".into(), "jb-3".into()));
    assert_eq!(tokens.count(), 3);
}

/// Signed assertions: replicas with the same key, issuer and subject share; another subject
/// is another token.
#[tokio::test]
async fn replicas_signing_for_the_same_subject_share_one_token_and_others_do_not() {
    let tokens = grant_naming_token_server().await;
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    let store = MemoryStore::default();
    let replica = |subject: &str| {
        let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
            .client_key(ClientKey::from_pem(&pem, SigningAlgorithm::Es256).unwrap())
            .grant(JwtBearer::signed().subject(subject))
            .store(store.clone())
            .store_encryption_key([7; 32])
            .build()
            .unwrap();
        ClientCredentialsLayer::new(config)
    };

    let (a, b, c) = (replica("alice"), replica("alice"), replica("bob"));
    assert_eq!(a.token().await.unwrap().secret(), "jb-1");
    assert_eq!(b.token().await.unwrap().secret(), "jb-1");
    assert_eq!(c.token().await.unwrap().secret(), "jb-2");
    assert_eq!(tokens.count(), 2);
}

/// With a client secret the store's key comes from it; without one, and without
/// `store_encryption_key`, there is nothing to derive it from.
#[tokio::test]
async fn a_token_exchange_shares_through_the_store_with_the_key_from_the_client_secret() {
    let tokens = grant_naming_token_server().await;
    let store = MemoryStore::default();
    let replica = || {
        let config = tokens
            .config()
            .grant(TokenExchange::subject_token("alice", "jwt"))
            .store(store.clone())
            .build()
            .unwrap();
        ClientCredentialsLayer::new(config)
    };
    assert_eq!(replica().token().await.unwrap().secret(), "te.alice-1");
    assert_eq!(replica().token().await.unwrap().secret(), "te.alice-1");
    assert_eq!(tokens.count(), 1);

    let without_key = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .grant(TokenExchange::subject_token("alice", "jwt"))
        .store(store.clone())
        .build();
    assert_eq!(without_key.unwrap_err().field(), "store_encryption_key");
}

/// Subject tokens from sources given per request (each user's session): the store cannot tell
/// one source from another (it names them all `source`), so one user's token must never be
/// handed to another through it.
#[tokio::test]
async fn per_request_subject_token_sources_never_share_a_token_through_the_store() {
    let tokens = grant_naming_token_server().await;
    let config = tokens.config().store(MemoryStore::default()).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let session = |token: &str| {
        let source = SessionSource(Session::new(token));
        TokenParams::new().grant(TokenExchange::subject_token_source(source, "jwt"))
    };

    let alice = layer.token_for(&session("alice")).await.unwrap();
    let bob = layer.token_for(&session("bob")).await.unwrap();

    assert_eq!(alice.secret(), "te.alice-1");
    assert_eq!(bob.secret(), "te.bob-2", "bob got another user's token");
    assert_eq!(tokens.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// DPoP

mod dpop {
    use super::*;
    use common::dpop::{DpopServers, Outcome, RS_NONCE};
    use common::HttpClient;
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use tower::retry::{Retry, RetryLayer};
    use tower::{Layer, ServiceExt};
    use tower_client_credentials::{ClientCredentials, DpopAlgorithm, DpopKey, RetryUnauthorized};

    type Api = Retry<RetryUnauthorized, ClientCredentials<HttpClient>>;

    /// Gets a token by `grant` with a DPoP key and calls the API with it; returns the token
    /// calls as the token endpoint saw them. Both servers check every proof.
    async fn dpop_with(
        grant: impl Into<Grant>,
        client_key: Option<ClientKey>,
    ) -> Vec<common::dpop::TokenCall> {
        let servers = DpopServers::start().await;
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        let mut builder = servers.config().grant(grant).dpop(key.clone());
        if let Some(client_key) = client_key {
            builder = builder.client_key(client_key);
        }
        let layer = ClientCredentialsLayer::new(builder.build().unwrap());
        let api: Api = RetryLayer::new(RetryUnauthorized::new()).layer(api_client(&layer));

        let request = http::Request::get(&servers.api_url).body(Empty::<Bytes>::new()).unwrap();
        let response = api.oneshot(request).await.unwrap();

        assert_eq!(response.status(), 200);
        let token = layer.token().await.unwrap();
        assert_eq!(token.token_type(), "DPoP");
        assert_eq!(servers.jkt_of(token.secret()).as_deref(), Some(key.thumbprint()));
        assert_eq!(
            servers.api_outcomes(),
            [Outcome::Refused("nonce"), Outcome::Served],
            "the resource server's nonce round trip, then served"
        );
        let headers = servers.api_headers();
        let last = headers.last().unwrap();
        assert_eq!(last["authorization"], format!("DPoP {}", token.secret()).as_str());
        let proof = last["dpop"].to_str().unwrap();
        assert_eq!(claims_of(proof)["nonce"], RS_NONCE);
        assert_eq!(claims_of(proof)["ath"], common::dpop::ath(token.secret()));

        let calls = servers.token_calls();
        assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [400, 200]);
        for call in &calls {
            let claims = call.claims.as_ref().expect("a proof that verified");
            assert_eq!(claims["htm"], "POST");
            assert_eq!(claims["htu"], servers.token_url.as_str());
        }
        assert_eq!(calls[1].claims.as_ref().unwrap()["nonce"], "as-nonce-1");
        calls
    }

    #[tokio::test]
    async fn a_token_exchange_with_dpop_binds_the_token_to_the_key() {
        let exchange = TokenExchange::subject_token("user-token", "access_token");
        let calls = dpop_with(exchange, None).await;
        for call in &calls {
            assert_eq!(call.param("grant_type"), Some(TokenExchange::GRANT_TYPE));
            assert_eq!(call.param("subject_token"), Some("user-token"));
        }
    }

    #[tokio::test]
    async fn a_jwt_bearer_assertion_with_dpop_binds_the_token_to_the_key() {
        let assertion = jwt("workload", unix_now() + 600);
        let calls = dpop_with(JwtBearer::assertion(assertion.clone()), None).await;
        for call in &calls {
            assert_eq!(call.param("grant_type"), Some(JwtBearer::GRANT_TYPE));
            assert_eq!(call.param("assertion"), Some(assertion.as_str()));
        }
    }

    /// The token endpoint's nonce costs a second token request: its assertion is signed
    /// anew, with a `jti` of its own.
    #[tokio::test]
    async fn a_signed_jwt_bearer_with_dpop_signs_a_new_assertion_for_the_nonce_resend() {
        let (key, _) = es256_key();
        let calls = dpop_with(JwtBearer::signed(), Some(key)).await;
        let jtis: Vec<_> = calls
            .iter()
            .map(|call| claims_of(call.param("assertion").expect("an assertion"))["jti"].clone())
            .collect();
        assert_ne!(jtis[0], jtis[1]);
    }
}

// ---------------------------------------------------------------------------------------------
// Several grants in one layer

/// The layer's own client-credentials token for plain requests, a token exchange per user and
/// a JWT bearer token for requests that carry those grants, and a route whose grant is a token
/// exchange on behalf of a service account.
fn three_grants(tokens: &TokenServer, api: &ApiServer) -> ClientCredentialsLayer {
    let delegated = TokenParams::new().grant(TokenExchange::subject_token("svc", "jwt"));
    let config =
        tokens.config().route(format!("{}/delegated", origin(&api.url)), delegated).build();
    ClientCredentialsLayer::new(config.unwrap())
}

fn on_behalf_of(user: &str) -> TokenParams {
    TokenParams::new().grant(TokenExchange::subject_token(user, TokenExchange::ACCESS_TOKEN))
}

fn bearer_assertion() -> TokenParams {
    TokenParams::new().grant(JwtBearer::assertion("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3In0.c2ln"))
}

/// What each request is, the token it must carry, in order.
fn plan(api: &ApiServer) -> Vec<(String, Option<TokenParams>, &'static str)> {
    let things = api.url.clone();
    let delegated = format!("{}/delegated/7", origin(&api.url));
    vec![
        (things.clone(), None, "Bearer cc-1"),
        (things.clone(), Some(on_behalf_of("alice")), "Bearer te.alice-2"),
        (things.clone(), Some(on_behalf_of("alice")), "Bearer te.alice-2"),
        (things.clone(), Some(on_behalf_of("bob")), "Bearer te.bob-3"),
        (things.clone(), Some(bearer_assertion()), "Bearer jb-4"),
        (delegated.clone(), None, "Bearer te.svc-5"),
        (things.clone(), Some(bearer_assertion()), "Bearer jb-4"),
        (delegated, None, "Bearer te.svc-5"),
        (things, None, "Bearer cc-1"),
    ]
}

fn check_grants_asked(tokens: &TokenServer) {
    let asked = params_sent(tokens, "grant_type");
    let (cc, te, jb) = ("client_credentials", TokenExchange::GRANT_TYPE, JwtBearer::GRANT_TYPE);
    assert_eq!(asked, [cc, te, te, jb, te], "one token request per distinct grant");
}

#[tokio::test]
async fn one_tower_service_sends_each_request_the_token_of_its_grant() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start().await;
    let service = api_client(&three_grants(&tokens, &api));

    for (n, (url, params, expected)) in plan(&api).into_iter().enumerate() {
        let answer = match params {
            Some(params) => get_with(&service, request_with(&url, params)).await,
            None => get(&service, &url).await,
        };
        assert_eq!(answer.unwrap(), (200, expected.to_owned()), "request {n}");
    }
    check_grants_asked(&tokens);
}

#[tokio::test]
async fn one_reqwest_client_sends_each_request_the_token_of_its_grant() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start().await;
    let client = common::reqwest_client(&three_grants(&tokens, &api));

    for (n, (url, params, expected)) in plan(&api).into_iter().enumerate() {
        let mut request = client.get(&url);
        if let Some(params) = params {
            request = request.with_extension(params);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(response.text().await.unwrap(), expected, "request {n}");
    }
    check_grants_asked(&tokens);
}

/// The API rejects a user's exchanged token (`401`): that token alone is dropped, and reqwest's
/// request is sent again with a new exchange of the same subject token. The layer's own token
/// is untouched.
#[tokio::test]
async fn a_401_to_an_exchanged_token_drops_only_that_token_and_the_request_gets_a_new_one() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer te.alice-2").await;
    let layer = three_grants(&tokens, &api);
    let client = common::reqwest_client(&layer);
    let send = |params: Option<TokenParams>| {
        let mut request = client.get(&api.url);
        if let Some(params) = params {
            request = request.with_extension(params);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    assert_eq!(send(None).await, (200, "Bearer cc-1".to_owned()));
    assert_eq!(send(Some(on_behalf_of("alice"))).await, (200, "Bearer te.alice-3".to_owned()));
    assert_eq!(send(None).await, (200, "Bearer cc-1".to_owned()));

    let seen: Vec<_> = api.seen().into_iter().map(Option::unwrap).collect();
    assert_eq!(seen, ["Bearer cc-1", "Bearer te.alice-2", "Bearer te.alice-3", "Bearer cc-1"]);
    let received = tokens.received();
    let subjects: Vec<_> = received.iter().map(|r| r.param("subject_token")).collect();
    assert_eq!(subjects, [None, Some("alice"), Some("alice")]);
    assert_eq!(layer.stats().invalidations, 0, "the layer's own token was not dropped");
    assert_eq!(layer.stats_for(&on_behalf_of("alice")).unwrap().invalidations, 1);
}

/// Many requests at once on behalf of the same user, while the exchange is in flight: one
/// token request.
#[tokio::test]
async fn concurrent_requests_with_equal_grants_share_one_token_request() {
    let tokens = grant_naming_token_server().await;
    let api = ApiServer::start().await;
    let service = api_client(&three_grants(&tokens, &api));
    tokens.hold();

    let requests: Vec<_> = (0..16)
        .map(|_| {
            let (service, request) =
                (service.clone(), request_with(&api.url, on_behalf_of("carol")));
            tokio::spawn(async move { get_with(&service, request).await.unwrap() })
        })
        .collect();
    tokens.wait_for_count(1).await;
    tokens.release();
    for request in requests {
        assert_eq!(request.await.unwrap(), (200, "Bearer te.carol-1".to_owned()));
    }
    assert_eq!(tokens.count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Expiry hints

/// An hour's token with `refresh_in` of half an hour (Microsoft Entra's): refreshed at half
/// an hour, not at 55 minutes (`refresh_ahead` 5 minutes).
#[tokio::test(start_paused = true)]
async fn refresh_in_moves_the_background_refresh_to_its_time() {
    let tokens = TokenServer::start_with(with_refresh_in).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);

    assert_eq!(get(&service, &api.url).await.unwrap().1, "Bearer token-1");
    advance(Duration::from_secs(1799)).await;
    assert_eq!(get(&service, &api.url).await.unwrap().1, "Bearer token-1");
    assert_eq!(tokens.count(), 1, "fresh until refresh_in");
    advance(Duration::from_secs(2)).await;
    assert_eq!(get(&service, &api.url).await.unwrap().1, "Bearer token-1", "stale, still served");
    tokens.wait_for_count(2).await;
    assert_eq!(layer.stats().stale_serves, 1);
}

/// Microsoft Entra's answer: an hour's token, to refresh at half an hour.
fn with_refresh_in(n: usize) -> Reply {
    let body = format!(
        r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":3600,"refresh_in":1800}}"#
    );
    Reply::json(200, body)
}

/// Replicas sharing a store: the one that took its token from the store honours the
/// server's `refresh_in` as the one that fetched it does. Past it, it takes the token the
/// other replica fetched then, rather than keep the old one until its own refresh point.
#[tokio::test(start_paused = true)]
async fn a_replica_that_took_its_token_from_the_store_refreshes_at_refresh_in_too() {
    let tokens = TokenServer::start_with(with_refresh_in).await;
    let store = MemoryStore::default();
    let replica =
        || ClientCredentialsLayer::new(tokens.config().store(store.clone()).build().unwrap());
    let (fetcher, reader) = (replica(), replica());
    assert_eq!(fetcher.token().await.unwrap().secret(), "token-1");
    assert_eq!(reader.token().await.unwrap().secret(), "token-1");
    assert_eq!(tokens.count(), 1, "the reader took the fetcher's token");

    advance(Duration::from_secs(1801)).await;
    assert_eq!(fetcher.token().await.unwrap().secret(), "token-1", "stale, still served");
    until_fetched(&fetcher, 2).await;
    assert_eq!(reader.token().await.unwrap().secret(), "token-1", "stale, still served");
    until_fetched(&reader, 2).await;

    assert_eq!(reader.token().await.unwrap().secret(), "token-2");
    assert_eq!(tokens.count(), 2, "the reader took the fetcher's new token from the store");
}

/// A `refresh_in` later than our own refresh point (78–80 s of a 100 s token) is no reason
/// to wait longer.
#[tokio::test(start_paused = true)]
async fn a_refresh_in_later_than_the_refresh_point_does_not_delay_it() {
    let tokens = TokenServer::start_with(|n| {
        let body = format!(
            r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":100,"refresh_in":95}}"#
        );
        Reply::json(200, body)
    })
    .await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.windowed_config().build().unwrap());
    let service = api_client(&layer);

    assert_eq!(get(&service, &api.url).await.unwrap().1, "Bearer token-1");
    advance(Duration::from_secs(77)).await;
    get(&service, &api.url).await.unwrap();
    assert_eq!(tokens.count(), 1);
    advance(Duration::from_secs(4)).await;
    get(&service, &api.url).await.unwrap();
    tokens.wait_for_count(2).await;
    assert_eq!(tokens.count(), 2, "refreshed at 81 s, before refresh_in (95 s)");
}

/// A JWT access token without `expires_in` lives until its `exp` (2 minutes here), not the
/// default lifetime (an hour here): it is refreshed before its `exp`, and never sent after.
#[tokio::test(start_paused = true)]
async fn a_jwt_access_token_without_expires_in_is_refreshed_before_its_exp() {
    let tokens = TokenServer::start_with(|n| {
        let token = jwt(&format!("token-{n}"), unix_now() + 120);
        Reply::json(200, format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#))
    })
    .await;
    let api = ApiServer::start().await;
    let config = tokens.config().default_lifetime(Duration::from_secs(3600)).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    get(&service, &api.url).await.unwrap();
    let lifetime = layer.token().await.unwrap().lifetime();
    assert!(
        lifetime <= Duration::from_secs(120) && lifetime > Duration::from_secs(110),
        "{lifetime:?}"
    );
    // `refresh_ahead` is capped at half the lifetime: fresh for 54–60 s.
    advance(Duration::from_secs(53)).await;
    get(&service, &api.url).await.unwrap();
    assert_eq!(tokens.count(), 1);
    advance(Duration::from_secs(8)).await;
    get(&service, &api.url).await.unwrap();
    until_fetched(&layer, 2).await;
    assert_eq!(tokens.count(), 2);
    let subjects: Vec<_> = api
        .seen()
        .iter()
        .map(|auth| {
            claims_of(auth.as_deref().unwrap().strip_prefix("Bearer ").unwrap())["sub"].clone()
        })
        .collect();
    assert_eq!(subjects, ["token-1", "token-1", "token-1"]);
    assert_eq!(get(&service, &api.url).await.unwrap().0, 200);
    let last = api.seen().pop().flatten().unwrap();
    assert_eq!(claims_of(last.strip_prefix("Bearer ").unwrap())["sub"], "token-2");
}

// ---------------------------------------------------------------------------------------------
// Answers that issue something else

/// A token exchange answered with `N_A` though no other type was asked for, without its
/// `issued_token_type`, or with another type than the one requested: none of those tokens
/// reaches the API, and the caller gets the error naming the field, through both front ends.
#[tokio::test]
async fn exchange_answers_that_are_not_the_access_token_asked_for_never_reach_the_api() {
    let api = ApiServer::start().await;
    let access = TokenExchange::ACCESS_TOKEN;
    let cases = [
        (
            format!(r#"{{"access_token":"t","token_type":"N_A","issued_token_type":"{access}"}}"#),
            None,
            (TokenErrorKind::UnsupportedTokenType, "token_type"),
        ),
        (
            format!(r#"{{"access_token":"t","token_type":"N_A","issued_token_type":"{access}"}}"#),
            Some(access),
            (TokenErrorKind::UnsupportedTokenType, "token_type"),
        ),
        (
            r#"{"access_token":"t","token_type":"Bearer"}"#.to_owned(),
            None,
            (TokenErrorKind::IssuedTokenType, "issued_token_type"),
        ),
        (
            format!(
                r#"{{"access_token":"t","token_type":"N_A","issued_token_type":"{}"}}"#,
                TokenExchange::REFRESH_TOKEN
            ),
            Some(TokenExchange::ID_TOKEN),
            (TokenErrorKind::IssuedTokenType, "issued_token_type"),
        ),
    ];
    for (body, requested, (kind, field)) in cases {
        let answer = body.clone();
        let tokens = TokenServer::start_with(move |_| Reply::json(200, answer.clone())).await;
        let mut exchange = TokenExchange::subject_token("user-token", "jwt");
        if let Some(requested) = requested {
            exchange = exchange.requested_token_type(requested);
        }
        let config = tokens.config().grant(exchange).build().unwrap();
        let layer = ClientCredentialsLayer::new(config);

        let error = get(&api_client(&layer), &api.url).await.unwrap_err();
        let error = token_error(&error);
        assert_eq!((error.kind(), error.field()), (kind, Some(field)), "{body}: {error}");
        assert_eq!(error.class(), ErrorClass::Rejected);
        let error = common::reqwest_client(&layer).get(&api.url).send().await.unwrap_err();
        let error = TokenError::find(&error).expect("a token error");
        assert_eq!((error.kind(), error.field()), (kind, Some(field)), "{body}");
        assert_eq!(tokens.count(), 1, "{body}: backing off after the rejection");
    }
    assert_eq!(api.seen(), []);
}

/// `N_A` for the ID token asked for: accepted, and sent as a bearer token.
#[tokio::test]
async fn an_id_token_issued_as_n_a_when_one_was_requested_is_sent_as_a_bearer_token() {
    // `n_a` too: RFC 6749 §5.1 makes `token_type` case-insensitive.
    for n_a in ["N_A", "n_a"] {
        let tokens = TokenServer::start_with(move |_| {
            let body = format!(
                r#"{{"access_token":"id-token-1","token_type":"{n_a}","issued_token_type":"{}",
                    "expires_in":3600}}"#,
                TokenExchange::ID_TOKEN
            );
            Reply::json(200, body)
        })
        .await;
        let api = ApiServer::start().await;
        let exchange = TokenExchange::subject_token("user-token", "jwt")
            .requested_token_type(TokenExchange::ID_TOKEN);
        let layer = ClientCredentialsLayer::new(tokens.config().grant(exchange).build().unwrap());

        assert_eq!(
            get(&api_client(&layer), &api.url).await.unwrap(),
            (200, "Bearer id-token-1".to_owned()),
            "{n_a}"
        );
        let response = common::reqwest_client(&layer).get(&api.url).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "Bearer id-token-1");
        let requested = tokens.received()[0].param("requested_token_type").map(str::to_owned);
        assert_eq!(requested.as_deref(), Some(TokenExchange::ID_TOKEN));
        assert_eq!(tokens.count(), 1);
    }
}
