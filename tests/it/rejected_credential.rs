//! A rejected client tries again as soon as its credential changes (DESIGN.md §3 "Backoff",
//! §4 "Credentials that rotate").
//!
//! A rejection (`invalid_client`) puts the cache into the rejection backoff (5 s, doubling),
//! because asking again with the same credential will not change the answer. A credential that
//! changed is another question: when the assertion file, the secret file or the key file has
//! changed since the rejected request, the next caller that needs a token asks at once; while
//! the current token still serves, a refresh rejected for an assertion the server had already
//! seen is retried as soon as the file changes. When nothing changed, the backoff holds.
//!
//! Time is paused for the loopback tests; the interop test at the end, against
//! node-oidc-provider, runs on real time because the provider checks `exp` on its own clock.

use crate::common;
use common::interop_server::{p256_public_jwk, InteropServer};
use common::{rotate, Folder};

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{api_client, get, ApiServer, Received, Reply, TokenServer, CLIENT_ID};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tokio::time::{advance, Instant};
use tower_client_credentials::{ClientCredentialsLayer, Config, SigningAlgorithm};

/// The shortest wait after a first rejection: half of the 5 s step (DESIGN.md §3).
const SHORTEST_REJECTION_WAIT: Duration = Duration::from_millis(2500);

/// A client assertion as a platform writes it: a JWT (the crate reads its `exp`, and this one
/// has none; the test servers know it by its content). `name` makes each one distinct, and of
/// a length of its own.
fn assertion(name: &str) -> String {
    let encode = |part: serde_json::Value| {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part.to_string())
    };
    let header = encode(serde_json::json!({ "alg": "ES256", "typ": "JWT" }));
    let claims = encode(serde_json::json!({ "iss": CLIENT_ID, "sub": CLIENT_ID, "jti": name }));
    format!("{header}.{claims}.signature-{name}")
}

fn invalid_client() -> Reply {
    Reply::json(
        401,
        r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
    )
}

/// The name of the assertion each token request carried, in order.
fn assertions_sent(tokens: &TokenServer) -> Vec<String> {
    let name = |r: &Received| {
        let assertion = r.param("client_assertion").unwrap_or("<none>");
        assertion.rsplit_once(".signature-").map_or(assertion, |(_, name)| name).to_owned()
    };
    tokens.received().iter().map(name).collect()
}

/// Lets the runtime run (paused time moves 1 ms a round) until `done`, for at most 200 ms:
/// far inside the shortest rejection wait, so a backoff cannot end meanwhile.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(done(), "{what}: not within 200 ms");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_assertion_is_retried_as_soon_as_the_file_changes() {
    let (x, y) = ("assertion-X", "assertion-Y-rotated");
    let refused = assertion(x);
    let tokens = TokenServer::start_judging(move |n, received: &Received| {
        match received.param("client_assertion") {
            Some(assertion) if assertion == refused => invalid_client(),
            _ => Reply::token(n, 3600),
        }
    })
    .await;
    let folder = Folder::new("assertion");
    let file = folder.path("token");
    std::fs::write(&file, assertion(x)).unwrap();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_assertion_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let error = layer.token().await.expect_err("X is refused");
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    assert_eq!(assertions_sent(&tokens), [x]);

    common::rotate(&file, &assertion(y));
    advance(Duration::from_millis(1)).await;
    let token = layer.token().await.unwrap_or_else(|error| {
        panic!(
            "1 ms after the assertion file changed, the caller got the old rejection without \
             asking again ({error}); token requests: {:?}",
            assertions_sent(&tokens)
        )
    });
    assert_eq!(token.secret(), "token-2");
    assert_eq!(assertions_sent(&tokens), [x, y], "the new assertion, at once");
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_rejected_credential_still_backs_off() {
    let tokens = TokenServer::start_with(|_| invalid_client()).await;
    let folder = Folder::new("unchanged");
    let file = folder.path("token");
    std::fs::write(&file, assertion("assertion-X")).unwrap();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_assertion_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    // 100 calls over 2.4 s: inside the first rejection wait, whatever its jitter draws
    // (2.5–5 s).
    let started = Instant::now();
    for call in 0..100 {
        let error = layer.token().await.expect_err("X is refused");
        assert_eq!(error.oauth_error(), Some("invalid_client"), "call {call}: {error}");
        advance(Duration::from_millis(24)).await;
    }
    assert!(started.elapsed() < SHORTEST_REJECTION_WAIT);
    assert_eq!(tokens.count(), 1, "the same assertion is not sent again within the backoff");
    assert_eq!(layer.stats().token_request_failures, 1);
}

/// Tokens live 60 s: the refresh window is half of that (the default `refresh_ahead` is capped
/// at half the lifetime), so each token goes stale at 27–30 s and stays usable until 45 s. The
/// server refuses an assertion it has seen before, as Okta and Keycloak refuse a `jti`.
#[tokio::test(start_paused = true)]
async fn a_refresh_rejected_for_a_reused_assertion_waits_for_the_next_one_while_the_token_serves() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let tokens = TokenServer::start_judging(move |n, received: &Received| {
        let assertion = received.param("client_assertion").unwrap_or_default().to_owned();
        let mut seen = seen.lock().unwrap();
        if seen.contains(&assertion) {
            return invalid_client();
        }
        seen.push(assertion);
        Reply::token(n, 60)
    })
    .await;
    let api = ApiServer::start().await;
    let (a, b) = ("assertion-A", "assertion-B-rotated");
    let folder = Folder::new("refresh");
    let file = folder.path("token");
    std::fs::write(&file, assertion(a)).unwrap();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_assertion_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    let mut statuses = Vec::new();

    statuses.push(get(&service, &api.url).await.unwrap());
    advance(Duration::from_secs(31)).await; // stale: the request starts a refresh, with A again
    statuses.push(get(&service, &api.url).await.unwrap());
    eventually("the refresh with A is refused", || layer.stats().token_request_failures == 1).await;
    let rejected_at = Instant::now();
    assert_eq!(assertions_sent(&tokens), [a, a]);

    // The file has not changed: the backoff holds, and the current token serves.
    for _ in 0..10 {
        advance(Duration::from_millis(100)).await;
        statuses.push(get(&service, &api.url).await.unwrap());
    }
    assert_eq!(tokens.count(), 2, "no refresh with the same assertion");

    common::rotate(&file, &assertion(b));
    advance(Duration::from_millis(1)).await;
    statuses.push(get(&service, &api.url).await.unwrap());
    eventually("a token request with the rotated assertion", || tokens.count() == 3).await;
    assert!(rejected_at.elapsed() < SHORTEST_REJECTION_WAIT, "the rejection wait is not over");
    assert_eq!(assertions_sent(&tokens), [a, a, b]);
    eventually("the new token is cached", || layer.stats().tokens_fetched == 2).await;
    statuses.push(get(&service, &api.url).await.unwrap());

    let last = statuses.pop().unwrap();
    assert_eq!(last, (200, "Bearer token-3".to_owned()), "the new token is sent");
    for (i, (status, body)) in statuses.iter().enumerate() {
        assert_eq!((*status, body.as_str()), (200, "Bearer token-1"), "request {i}");
    }
}

/// The same for a client secret in a file: rejected, rewritten, and sent at once.
#[tokio::test(start_paused = true)]
async fn a_rejected_secret_is_retried_as_soon_as_its_file_changes() {
    let tokens = TokenServer::start_judging(|n, received: &Received| {
        match received.basic.as_ref().map(|(_, secret)| secret.as_str()) {
            Some("the-right-secret") => Reply::token(n, 3600),
            _ => invalid_client(),
        }
    })
    .await;
    let folder = Folder::new("secret");
    let file = folder.path("secret");
    std::fs::write(&file, "wrong\n").unwrap();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_secret_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let error = layer.token().await.expect_err("the wrong secret is refused");
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    assert_eq!(tokens.count(), 1);

    common::rotate(&file, "the-right-secret\n");
    advance(Duration::from_millis(1)).await;
    let token = layer.token().await.unwrap_or_else(|error| {
        panic!(
            "1 ms after the secret file changed, the caller got the old rejection without \
             asking again ({error}); token requests: {}",
            tokens.count()
        )
    });
    let secrets: Vec<_> = tokens.received().into_iter().map(|r| r.basic.unwrap().1).collect();
    assert_eq!(secrets, ["wrong", "the-right-secret"], "the new secret, at once");
    assert_eq!(token.secret(), "token-2");
}

/// The same for the key that signs our own assertions (`client_key_file`): the server trusts
/// only the new key; the file is replaced with it after a rejection.
#[tokio::test(start_paused = true)]
async fn a_rejected_signing_key_is_retried_as_soon_as_its_file_changes() {
    let old = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let new = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let trusted = DecodingKey::from_ec_pem(new.public_key_pem().as_bytes()).unwrap();
    let tokens = TokenServer::start_judging(move |n, received: &Received| {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        let assertion = received.param("client_assertion").unwrap_or_default();
        match jsonwebtoken::decode::<serde_json::Value>(assertion, &trusted, &validation) {
            Ok(_) => Reply::token(n, 3600),
            Err(_) => invalid_client(),
        }
    })
    .await;
    let folder = Folder::new("key");
    let file = folder.path("key.pem");
    std::fs::write(&file, old.serialize_pem()).unwrap();
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key_file(&file, SigningAlgorithm::Es256)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let error = layer.token().await.expect_err("the old key is not trusted");
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    assert_eq!(tokens.count(), 1);

    common::rotate(&file, &new.serialize_pem());
    advance(Duration::from_millis(1)).await;
    let token = layer.token().await.unwrap_or_else(|error| {
        panic!(
            "1 ms after the key file changed, the caller got the old rejection without asking \
             again ({error}); token requests: {}",
            tokens.count()
        )
    });
    assert_eq!(token.secret(), "token-2");
}

// The interop measurement: node-oidc-provider, which refuses a client assertion whose `jti` it
// has seen, as Okta and Keycloak do.

/// A client using `private_key_jwt` with the key the server was given (`jwks`).
const INTEROP_CLIENT: &str = "interop-key-jwt";

/// `tests/interop/short_lived_tokens_server.mjs`, its tokens lasting `ttl`; `key` signs the
/// client's assertions.
fn short_lived_tokens_server(key: &rcgen::KeyPair, ttl: Duration) -> InteropServer {
    let (jwk, ttl) = (p256_public_jwk(key), ttl.as_secs().to_string());
    let env = [("INTEROP_CLIENT_JWK", jwk.as_str()), ("INTEROP_TOKEN_TTL", &ttl)];
    InteropServer::node("short_lived_tokens_server.mjs", &env)
}

/// The issue's measurement. A workload-identity assertion file, rewritten every 2 s with a new
/// assertion valid for 5 s (a new `jti` each time); tokens of 3 s, so each goes stale at
/// 1.35–1.5 s and stops being usable at 2.25 s; four callers sending requests through the
/// layer for 12 s. Every other refresh comes before the next rotation and is refused for its
/// replayed `jti`; the file then changes before the token stops being usable (at most 2 s
/// after the assertion the token was fetched with was written), so a client that asks again
/// as soon as it changes never lacks a token.
#[tokio::test]
async fn an_assertion_file_rotated_every_two_seconds_fails_no_request_against_node_oidc_provider() {
    const RUN: Duration = Duration::from_secs(12);
    const CALLERS: usize = 4;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let server = short_lived_tokens_server(&key, Duration::from_secs(3));
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let folder = Folder::new("interop");
    let file = folder.path("token");
    let token_url = server.token_url();
    let write_assertion = move |path: &Path, version: u32| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({
            "iss": INTEROP_CLIENT, "sub": INTEROP_CLIENT, "aud": token_url,
            "jti": format!("rotation-{version}-{}", fastrand::u64(..)),
            "iat": now, "exp": now + 5,
        });
        rotate(
            path,
            &jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap(),
        );
    };
    write_assertion(&file, 1);
    let config = Config::builder_without_secret(server.token_url(), INTEROP_CLIENT)
        .scope("api:read")
        .client_assertion_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let api = ApiServer::start().await;
    let service = api_client(&layer);
    let started = std::time::Instant::now();
    let end = started + RUN;

    let rotations = {
        let file = file.clone();
        tokio::spawn(async move {
            let mut version = 1;
            let mut every = tokio::time::interval(Duration::from_secs(2));
            every.tick().await;
            loop {
                every.tick().await;
                if std::time::Instant::now() >= end {
                    return version;
                }
                version += 1;
                write_assertion(&file, version);
            }
        })
    };
    let (succeeded, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let first_failure = Arc::new(Mutex::new(None::<String>));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (service, url) = (service.clone(), api.url.clone());
            let (succeeded, failed) = (succeeded.clone(), failed.clone());
            let first_failure = first_failure.clone();
            tokio::spawn(async move {
                while std::time::Instant::now() < end {
                    match get(&service, &url).await {
                        Ok((200, _)) => succeeded.fetch_add(1, Ordering::Relaxed),
                        outcome => {
                            let mut first = first_failure.lock().unwrap();
                            first.get_or_insert_with(|| {
                                let at = started.elapsed();
                                format!("at {at:.2?}: {:?}", outcome.map_err(|e| e.to_string()))
                            });
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let rotated = rotations.await.unwrap();

    let (succeeded, failed) = (succeeded.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let answers = server.token_answers(0);
    let issued = answers.iter().filter(|s| **s == 200).count();
    let figures = format!(
        "{failed} of {} requests failed in {:.1?} ({CALLERS} callers); {rotated} assertions \
         written; token endpoint: {} answers, {issued} tokens, refusals {:?}; first failure: {:?}",
        succeeded + failed,
        started.elapsed(),
        answers.len(),
        server.lines("refused"),
        first_failure.lock().unwrap(),
    );
    eprintln!("{figures}");
    assert_eq!(failed, 0, "{figures}");
    assert!(issued >= 5, "a token for (nearly) each rotation: {figures}");
}
