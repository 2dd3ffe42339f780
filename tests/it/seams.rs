//! Where features meet: several tokens × eviction × backoff, rotation × rejection × eviction,
//! store × eviction × `401`, reqwest's redirects × routes × DPoP, paths that servers resolve
//! differently, a user's code that panics, two layers from one `config.clone()`.
//!
//! Against real loopback servers; the clock is paused wherever no other process is involved.

use crate::common;
use common::named_tokens::{naming_token_server, orders_and_billing};
use common::origin::{found, ok, Origin};
use common::reqwest_client_with_our_redirects;
use common::Folder;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode};
use common::{api_client, get_with, ApiServer, HttpClient, Received, Reply, TokenServer};
use http_body_util::Empty;
use hyper::body::Bytes;
use tokio::time::advance;
use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
use tower_client_credentials::{
    BoxError, ClientCredentials, ClientCredentialsLayer, Config, TokenError, TokenParams,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn unauthorized() -> Response<Body> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header("www-authenticate", r#"Bearer error="invalid_token""#)
        .body(Body::empty())
        .unwrap()
}

/// Sends a GET of `url` through the Tower client; with `audience`, its `TokenParams` ask for it.
async fn send(
    client: &ClientCredentials<HttpClient>,
    url: &str,
    audience: Option<&str>,
) -> Result<(u16, String), BoxError> {
    let mut request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    if let Some(audience) = audience {
        request.extensions_mut().insert(TokenParams::new().audience(audience));
    }
    get_with(client, request).await
}

fn invalid_client() -> Reply {
    Reply::json(401, r#"{"error":"invalid_client","error_description":"bad secret"}"#)
}

// ---------------------------------------------------------------------------------------------
// reqwest's redirects × resends × routes × DPoP

/// A `401` to our token on the last hop the middleware may follow: the token is dropped and
/// the request is worth a resend, but the loop of hops is spent. The caller must get an answer
/// (the `401`, or the resend's), never a panic.
#[tokio::test]
async fn a_401_on_the_tenth_redirect_within_the_origin_is_answered_without_a_panic() {
    let tokens = TokenServer::start().await;
    let a = Origin::start(|path| {
        let n = path.strip_prefix("/hop/").and_then(|n| n.parse::<u32>().ok());
        match n {
            Some(n) if n < 10 => found(&format!("/hop/{}", n + 1)),
            Some(_) => unauthorized(),
            None => ok(),
        }
    })
    .await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client_with_our_redirects(&layer);

    let url = a.url("/hop/0");
    let sent = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    let outcome = sent.await;

    let outcome = outcome.map_err(|join| match join.try_into_panic() {
        Ok(panic) => format!("panicked: {:?}", panic.downcast_ref::<String>()),
        Err(join) => join.to_string(),
    });
    let status = outcome.expect("the middleware answers").expect("a response");
    assert_eq!(status, 401);
    assert_eq!(a.authorization_for("/hop/10")[0].as_deref(), Some("Bearer token-1"));
}

/// A request with its own `TokenParams` for `/orders/old` is redirected by the origin to
/// `/billing/new`, billing's route. `redirect_policy()` promises that each hop takes "the token
/// its path's route takes": the orders token must not reach billing's path.
#[tokio::test]
async fn a_redirect_to_another_routes_path_does_not_carry_the_token_params_of_the_first_hop() {
    let tokens = naming_token_server().await;
    let a = Origin::start(|path| match path {
        "/orders/old" => found("/billing/new"),
        _ => ok(),
    })
    .await;
    let config = orders_and_billing(tokens.config(), &a.url).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let response = reqwest_client_with_our_redirects(&layer)
        .get(a.url("/orders/old"))
        .with_extension(TokenParams::new().audience("orders"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(a.authorization_for("/orders/old")[0].as_deref(), Some("Bearer orders-1"));
    let billing = a.authorization_for("/billing/new")[0].clone().unwrap_or_default();
    assert!(!billing.contains("orders"), "billing's path got the orders token: {billing}");
}

/// A `DPoP-Nonce` on a redirect within the origin is that origin's (RFC 9449 §9): the next
/// hop's proof carries it, and it is made for the next hop's URL.
#[tokio::test]
async fn a_dpop_nonce_given_with_a_redirect_within_the_origin_goes_into_the_next_hops_proof() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use common::dpop::DpopServers;
    use tower_client_credentials::{DpopAlgorithm, DpopKey};

    let servers = DpopServers::start().await;
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = ClientCredentialsLayer::new(servers.config().dpop(key).build().unwrap());
    let a = Origin::start(|path| match path {
        "/old" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/new")
            .header("dpop-nonce", "from-a")
            .body(Body::empty())
            .unwrap(),
        _ => ok(),
    })
    .await;

    let response =
        reqwest_client_with_our_redirects(&layer).get(a.url("/old")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let claims = |headers: &HeaderMap| -> serde_json::Value {
        let proof = headers["dpop"].to_str().unwrap();
        let payload = URL_SAFE_NO_PAD.decode(proof.split('.').nth(1).unwrap()).unwrap();
        serde_json::from_slice(&payload).unwrap()
    };
    let new = claims(&a.requests_for("/new")[0]);
    assert_eq!(new["htu"], a.url("/new"));
    assert_eq!(new["nonce"], "from-a");
}

// ---------------------------------------------------------------------------------------------
// Paths

/// nginx (`merge_slashes on`, its default) resolves `/orders//../billing/pay` to
/// `/billing/pay`; RFC 3986's `remove_dot_segments` to `/orders/billing/pay`. A path that
/// servers resolve differently takes no route (DESIGN.md §11): the orders token must not go
/// where a gateway routes to billing.
#[tokio::test]
async fn an_empty_segment_before_a_dot_dot_takes_no_route_token() {
    let tokens = naming_token_server().await;
    let a = Origin::start(|_| ok()).await;
    let config = orders_and_billing(tokens.config(), &a.url).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    let path = "/orders//../billing/pay";
    let (status, _) = send(&client, &a.url(path), None).await.unwrap();

    assert_eq!(status, 200);
    let auth = a.authorization_for(path)[0].clone().unwrap_or_default();
    assert!(!auth.contains("orders"), "{path} carried the orders token ({auth})");
}

// ---------------------------------------------------------------------------------------------
// Several tokens × eviction × outages

/// The endpoint accepts connections and never answers, and each caller gives up after 1 s
/// (its own bound, shorter than `request_timeout`). Three audiences over a cap of two: each
/// cache is forgotten while its token request is in flight. The endpoint must still learn to
/// back off: no more than one request per audience per `request_timeout` (10 s), 18 in 60 s.
#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_is_not_asked_anew_for_each_impatient_request_as_caches_are_forgotten() {
    let tokens = TokenServer::start().await;
    tokens.hold();
    let api = ApiServer::start().await;
    let config = tokens.config().max_cached_tokens(2).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    let mut gave_up = 0;
    for audience in ["a", "b", "c"].iter().cycle().take(60) {
        let sent = send(&client, &api.url, Some(audience));
        match tokio::time::timeout(Duration::from_secs(1), sent).await {
            Err(_) => gave_up += 1,
            Ok(result) => {
                let error = result.expect_err("no token, no request");
                assert!(error.downcast_ref::<TokenError>().is_some(), "{error}");
                advance(Duration::from_secs(1)).await;
            }
        }
    }

    assert!(
        tokens.count() <= 18,
        "token requests in 60 s: {} ({gave_up} of 60 callers gave up at their bound)",
        tokens.count()
    );
    tokens.release();
}

/// Token parameters taken from request data: 2,000 distinct audiences in a loop while the
/// endpoint answers 503. One token request, and the layer keeps at most `max_cached_tokens`.
#[tokio::test(start_paused = true)]
async fn thousands_of_distinct_token_params_during_an_outage_make_one_token_request_and_stay_bounded(
) {
    let tokens = TokenServer::start_with(|_| Reply::json(503, "down")).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().max_cached_tokens(10).build().unwrap());
    let client = api_client(&layer);

    for n in 0..2000 {
        let error = send(&client, &api.url, Some(&format!("aud-{n}"))).await.unwrap_err();
        let error = error.downcast_ref::<TokenError>().expect("a token error");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "request {n}: {error}");
    }

    assert_eq!(tokens.count(), 1);
    let kept = (0..2000)
        .filter(|n| layer.stats_for(&TokenParams::new().audience(format!("aud-{n}"))).is_some())
        .count();
    assert!(kept <= 10, "caches kept: {kept}");
    assert_eq!(api.seen(), []);
}

// ---------------------------------------------------------------------------------------------
// Rotation × rejection × several tokens × eviction

/// The secret file is wrong; the endpoint rejects a route's token and a request's token
/// (`invalid_client`), and a request's token is forgotten (cap 2, three tokens) while it backs off. The
/// file is then rewritten with the right secret. Both tokens must be asked for at once
/// (DESIGN.md §3, "A rejected credential that changes"): the forgotten one's backoff came
/// back with its new cache, and so must what it was rejected for.
#[tokio::test(start_paused = true)]
async fn a_rejected_secret_rewritten_while_its_token_was_forgotten_is_sent_at_once() {
    let tokens = TokenServer::start_judging(|n, received: &Received| {
        match received.basic.as_ref().map(|(_, secret)| secret.as_str()) {
            Some("right") => Reply::token(n, 3600),
            _ => invalid_client(),
        }
    })
    .await;
    let folder = Folder::new("seams-secret");
    let file = folder.path("secret");
    std::fs::write(&file, "wrong\n").unwrap();
    let config = Config::builder_without_secret(&tokens.url, common::CLIENT_ID)
        .client_secret_file(&file)
        .route("http://routed.example", TokenParams::new().audience("routed"))
        .max_cached_tokens(2)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let (routed, a, b, c) = (
        TokenParams::new().audience("routed"),
        TokenParams::new().audience("a"),
        TokenParams::new().audience("b"),
        TokenParams::new().audience("c"),
    );

    for params in [&routed, &a, &b, &c] {
        let error = layer.token_for(params).await.expect_err("the wrong secret is refused");
        assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    }
    assert_eq!(tokens.count(), 4);
    assert!(layer.stats_for(&a).is_none(), "`a` was forgotten for `c`");

    common::rotate_after(&file, "right\n", Duration::from_secs(1));
    advance(Duration::from_millis(1)).await;

    let routed_token = layer.token_for(&routed).await;
    let a_token = layer.token_for(&a).await;
    let secrets: Vec<_> = tokens.received().into_iter().map(|r| r.basic.unwrap().1).collect();
    assert!(routed_token.is_ok(), "the route's token: {routed_token:?}; secrets sent: {secrets:?}");
    assert!(
        a_token.is_ok(),
        "the forgotten token got its old rejection without asking: {a_token:?}; \
         secrets sent: {secrets:?}"
    );
}

/// With a store, a token the API rejected must never be taken from the store again (DESIGN.md
/// §8), even when its cache was forgotten in between (cap 1, request parameters).
#[tokio::test]
async fn a_token_the_api_rejected_is_not_taken_from_the_store_again_after_its_cache_was_forgotten()
{
    use common::memory_store::MemoryStore;

    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let config =
        tokens.config().store(MemoryStore::default()).max_cached_tokens(1).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    let first = send(&client, &api.url, Some("a")).await.unwrap();
    assert_eq!(first, (401, String::new()), "token-1 is rejected");
    let other = send(&client, &api.url, Some("b")).await.unwrap();
    assert_eq!(other, (200, "Bearer token-2".to_owned()), "`a` is forgotten for `b`");
    let again = send(&client, &api.url, Some("a")).await.unwrap();

    assert_eq!(
        api.seen()[2].as_deref().unwrap_or_default(),
        "Bearer token-3",
        "the third request; answered {again:?}; token requests: {}",
        tokens.count()
    );
}

// ---------------------------------------------------------------------------------------------
// A user's code that panics

/// A credential source whose `version()` panics once asked after a rejection: a user's code,
/// like a `TokenStore`, whose panic the crate turns into an error (DESIGN.md §2) rather than
/// into a panic in the caller's task.
#[derive(Debug, Default)]
struct PanickingVersion {
    panic: Arc<AtomicBool>,
}

impl CredentialSource for PanickingVersion {
    fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
        Box::pin(async { Ok(secrecy::SecretString::from("wrong")) })
    }

    fn version(&self) -> Option<u64> {
        assert!(!self.panic.load(Ordering::SeqCst), "a user's version() panics");
        Some(1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_credential_source_whose_version_panics_fails_the_request_not_the_caller() {
    let tokens = TokenServer::start_with(|_| invalid_client()).await;
    let panic = Arc::new(AtomicBool::new(false));
    let source = PanickingVersion { panic: Arc::clone(&panic) };
    let config = Config::builder_without_secret(&tokens.url, common::CLIENT_ID)
        .client_secret_source(source)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    assert!(layer.token().await.is_err(), "rejected");

    panic.store(true, Ordering::SeqCst);
    let again = layer.clone();
    let outcome = tokio::spawn(async move { again.token().await.map(drop) }).await;

    assert!(outcome.is_ok(), "the caller's task panicked: {outcome:?}");
    assert!(outcome.unwrap().is_err());
}

// ---------------------------------------------------------------------------------------------
// Two layers from one `config.clone()`

/// What a `Config` shares between layers is never a token, a backoff or a flight (DESIGN.md
/// §2): one layer's outage backoff does not hold the other back, and neither takes the other's
/// token.
#[tokio::test(start_paused = true)]
async fn two_layers_from_one_config_clone_share_no_backoff_and_no_token() {
    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply::json(503, "down"),
        n => Reply::token(n, 3600),
    })
    .await;
    let config = tokens.config().build().unwrap();
    let (one, two) =
        (ClientCredentialsLayer::new(config.clone()), ClientCredentialsLayer::new(config));

    assert!(one.token().await.is_err());
    assert_eq!(two.token().await.unwrap().secret(), "token-2", "not held back by `one`");
    assert!(one.token().await.is_err(), "`one` still backs off, and has no token of `two`'s");
    advance(Duration::from_millis(1001)).await;
    assert_eq!(one.token().await.unwrap().secret(), "token-3");
    assert_eq!(tokens.count(), 3);
}

// ---------------------------------------------------------------------------------------------
// A key file that rotates

/// The signing key's file is replaced by one with the same modification time (`cp -p`,
/// `rsync -t`, an archive unpacked, or a rewrite within one tick of a coarse file clock). A
/// `SecretFile` would see it (its version is modification time, size and inode); the key must
/// be seen too, at least by a cache first made after the change.
#[tokio::test(start_paused = true)]
async fn a_key_file_replaced_with_the_same_modification_time_is_read_again() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use tower_client_credentials::SigningAlgorithm;

    let old = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let new = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let trusted = Arc::new(Mutex::new(old.public_key_pem()));
    let judge = Arc::clone(&trusted);
    let tokens = TokenServer::start_judging(move |n, received: &Received| {
        let key = DecodingKey::from_ec_pem(judge.lock().unwrap().as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        validation.validate_exp = false;
        let assertion = received.param("client_assertion").unwrap_or_default();
        match jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation) {
            Ok(_) => Reply::token(n, 3600),
            Err(_) => invalid_client(),
        }
    })
    .await;
    let folder = Folder::new("seams-key");
    let file = folder.path("key.pem");
    // As `rotate_after` writes it, so that only the inode differs.
    std::fs::write(&file, format!("{}\n", old.serialize_pem())).unwrap();
    let config = Config::builder_without_secret(&tokens.url, common::CLIENT_ID)
        .client_key_file(&file, SigningAlgorithm::Es256)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    assert_eq!(layer.token().await.unwrap().secret(), "token-1");

    common::rotate_after(&file, &new.serialize_pem(), Duration::ZERO);
    *trusted.lock().unwrap() = new.public_key_pem();

    let other = layer.token_for(&TokenParams::new().audience("other")).await;
    let asked = tokens.count();
    assert!(other.is_ok(), "a new cache signed with the old key: {other:?} ({asked} requests)");
}
