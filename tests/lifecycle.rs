//! The token lifecycle on paused time (DESIGN.md §1): fresh tokens are reused, a stale token
//! keeps serving while exactly one background refresh runs, and past `usable_until` requests
//! wait for the new token.
//!
//! Tokens here live 100 s, with `refresh_ahead` 20 s and `expiry_margin` 10 s: fresh until
//! 78–80 s (jitter), usable until 90 s.

mod common;

use std::time::Duration;

use common::{api_client, get, ApiServer, HttpClient, Reply, TokenServer};
use tokio::time::advance;
use tower_client_credentials::{ClientCredentials, ClientCredentialsLayer};

struct Setup {
    tokens: TokenServer,
    api: ApiServer,
    layer: ClientCredentialsLayer,
    service: ClientCredentials<HttpClient>,
}

async fn setup() -> Setup {
    let tokens = TokenServer::start_with(|n| Reply::token(n, 100)).await;
    let api = ApiServer::start().await;
    let config = tokens.windowed_config().build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    Setup { tokens, api, layer, service }
}

impl Setup {
    async fn auth(&self) -> String {
        let (status, body) = get(&self.service, &self.api.url).await.unwrap();
        assert_eq!(status, 200);
        body
    }

    /// Lets the spawned token request finish after `release`, without moving the clock.
    async fn until_fetched(&self, n: u64) {
        for _ in 0..10_000 {
            if self.layer.stats().tokens_fetched >= n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("token {n} never arrived");
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_fetches_nothing_and_fresh_tokens_are_reused() {
    let s = setup().await;
    advance(Duration::from_secs(3600)).await;
    assert_eq!(s.tokens.count(), 0, "refresh is lazy");

    for _ in 0..8 {
        assert_eq!(s.auth().await, "Bearer token-1");
        advance(Duration::from_secs(9)).await;
    }
    assert_eq!(s.tokens.count(), 1);
    assert_eq!(s.layer.stats().stale_serves, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stale_token_serves_while_exactly_one_background_refresh_runs() {
    let s = setup().await;
    assert_eq!(s.auth().await, "Bearer token-1");
    advance(Duration::from_secs(81)).await;

    // The token endpoint holds its answer: requests that waited for it could not complete.
    s.tokens.hold();
    for _ in 0..10 {
        assert_eq!(s.auth().await, "Bearer token-1");
    }
    s.tokens.wait_for_count(2).await;
    assert_eq!(s.tokens.count(), 2, "one refresh, not one per stale request");
    assert_eq!(s.layer.stats().stale_serves, 10);
    assert_eq!(s.layer.stats().requests_waited, 1, "only the very first request waited");

    s.tokens.release();
    s.until_fetched(2).await;
    assert_eq!(s.auth().await, "Bearer token-2");
    assert_eq!(s.tokens.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn past_usable_until_requests_wait_for_the_new_token() {
    let s = setup().await;
    assert_eq!(s.auth().await, "Bearer token-1");
    // Nothing asked for the token while it was stale, so nothing refreshed it.
    advance(Duration::from_secs(95)).await;
    assert_eq!(s.tokens.count(), 1);

    s.tokens.hold();
    let request = tokio::spawn({
        let (service, url) = (s.service.clone(), s.api.url.clone());
        async move { get(&service, &url).await.unwrap() }
    });
    s.tokens.wait_for_count(2).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!request.is_finished(), "the request must wait for the new token");
    s.tokens.release();
    assert_eq!(request.await.unwrap(), (200, "Bearer token-2".to_owned()));
    assert_eq!(s.tokens.count(), 2);
    assert_eq!(s.api.seen(), [Some("Bearer token-1".into()), Some("Bearer token-2".into())]);
}

#[tokio::test(start_paused = true)]
async fn refresh_happens_within_the_jitter_window_before_refresh_ahead() {
    let s = setup().await;
    assert_eq!(s.auth().await, "Bearer token-1");
    advance(Duration::from_millis(77_900)).await;
    assert_eq!(s.auth().await, "Bearer token-1");
    assert_eq!(s.tokens.count(), 1, "still fresh before 78 s, whatever the jitter");
    advance(Duration::from_millis(2_200)).await;
    assert_eq!(s.auth().await, "Bearer token-1");
    s.tokens.wait_for_count(2).await;
    assert_eq!(s.layer.stats().stale_serves, 1, "stale from 80 s at the latest");
}
