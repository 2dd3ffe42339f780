//! Secrets stay secret (DESIGN.md §5): a whole flow, failures and a 401 included, logged at
//! TRACE level, and every error's `Display` and `Debug`: the client secret and the tokens
//! appear nowhere.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::{api_client, get, ApiServer, Reply, TokenServer, CLIENT_ID, CLIENT_SECRET};
use tokio::time::advance;
use tower_client_credentials::ClientCredentialsLayer;
use tracing_subscriber::fmt::MakeWriter;

const TOKEN_ONE: &str = "leak-test-token-one";
const TOKEN_TWO: &str = "leak-test-token-two";

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged at TRACE on this thread, while the guard lives. The tests run on one
/// thread (current-thread runtime), so a thread default sees it all.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary may have met our callsites first, with no subscriber: their
    // cached "never" would hide the events from this one.
    tracing::callsite::rebuild_interest_cache();
    (logs, guard)
}

impl MakeWriter<'_> for Captured {
    type Writer = Captured;

    fn make_writer(&self) -> Captured {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn neither_the_secret_nor_a_token_reaches_logs_or_errors() {
    let (logs, _guard) = capture_logs();

    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply::json(200, format!(r#"{{"access_token":"{TOKEN_ONE}","expires_in":100}}"#)),
        2 => Reply::json(503, "maintenance"),
        3 => Reply::json(401, r#"{"error":"invalid_client","error_description":"no such client"}"#),
        _ => Reply::json(200, format!(r#"{{"access_token":"{TOKEN_TWO}","expires_in":100}}"#)),
    })
    .await;
    let api = ApiServer::start_rejecting(|auth| auth.contains(TOKEN_TWO)).await;
    let config = tokens.windowed_config().build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    let mut errors: Vec<tower_client_credentials::BoxError> = Vec::new();

    assert_eq!(get(&service, &api.url).await.unwrap().0, 200); // token one
    advance(Duration::from_secs(81)).await;
    assert_eq!(get(&service, &api.url).await.unwrap().0, 200); // stale; the refresh gets a 503
    tokens.wait_for_count(2).await;
    while layer.stats().token_request_failures < 1 {
        tokio::task::yield_now().await;
    }
    advance(Duration::from_secs(10)).await;
    errors.push(get(&service, &api.url).await.unwrap_err()); // invalid_client
    assert!(errors[0].to_string().contains("invalid_client"), "{}", errors[0]);
    advance(Duration::from_secs(10)).await;
    assert_eq!(get(&service, &api.url).await.unwrap().0, 401); // token two, rejected by the API
    assert_eq!(layer.stats().invalidations, 1);
    assert_eq!(layer.token().await.unwrap().secret(), TOKEN_TWO); // fetched again

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token request failed"), "nothing captured:\n{logs}");
    assert!(logs.contains("API rejected the token"), "{logs}");

    let mut texts = vec![logs, format!("{layer:?}"), format!("{:?}", layer.stats())];
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    for text in &texts {
        for secret in [CLIENT_SECRET, TOKEN_ONE, TOKEN_TWO, basic.as_str()] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
}

/// The DPoP key and the proofs (RFC 9449) appear nowhere either: a flow with both nonce round
/// trips and a refused downgrade, logged at TRACE, and the `Debug` of everything holding them.
#[cfg(feature = "dpop")]
#[tokio::test]
async fn neither_the_dpop_key_nor_a_proof_reaches_logs_or_errors() {
    use common::dpop::DpopServers;
    use tower::retry::RetryLayer;
    use tower::{Layer, ServiceExt};
    use tower_client_credentials::{Config, DpopAlgorithm, DpopKey, RetryUnauthorized};

    let (logs, _guard) = capture_logs();

    let servers = DpopServers::start().await;
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    let key = DpopKey::from_pem(&pem, DpopAlgorithm::Es256).unwrap();
    let builder = servers.config().dpop(key.clone());
    let builder_debug = format!("{builder:?}");
    let config = builder.build().unwrap();
    let layer = ClientCredentialsLayer::new(config.clone());
    let service = RetryLayer::new(RetryUnauthorized::new()).layer(api_client(&layer));
    let request = http::Request::get(&servers.api_url).body(Default::default()).unwrap();
    assert_eq!(service.clone().oneshot(request).await.unwrap().status(), 200);

    servers.answer_with_token_type("Bearer");
    let downgraded =
        ClientCredentialsLayer::new(servers.config().dpop(key.clone()).build().unwrap());
    let error = downgraded.token().await.unwrap_err();
    let relative = http::Request::get("/relative").body(Default::default()).unwrap();
    let proof_error = service.clone().oneshot(relative).await.unwrap_err();

    let proofs: Vec<String> = servers
        .api_headers()
        .iter()
        .map(|headers| headers["dpop"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(proofs.len(), 2, "the nonce demand and the resend");
    let token = layer.token().await.unwrap();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token request failed"), "nothing captured:\n{logs}");
    let texts = [
        logs,
        builder_debug,
        format!("{config:?}"),
        format!("{key:?}"),
        format!("{layer:?}"),
        format!("{service:?}"),
        format!("{token:?}"),
        format!("{:?}", Config::builder("https://a.example/t", "c", "s").dpop(key.clone())),
        error.to_string(),
        format!("{error:?}"),
        proof_error.to_string(),
        format!("{proof_error:?}"),
    ];
    let key_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for text in &texts {
        for line in &key_lines {
            assert!(!text.contains(line), "the key leaked into:\n{text}");
        }
        for proof in &proofs {
            // Any of its three parts: the header holds only the public key, but the claims and
            // the signature make the proof.
            for part in proof.split('.').skip(1) {
                assert!(!text.contains(part), "a proof leaked into:\n{text}");
            }
        }
        assert!(!text.contains(token.secret()), "the token leaked into:\n{text}");
    }
}
