//! The token lifecycle on paused time (DESIGN.md §1): fresh tokens are reused, a stale token
//! keeps serving while exactly one background refresh runs, and past `usable_until` requests
//! wait for the new token.
//!
//! Tokens here live 100 s, with `refresh_ahead` 20 s and `expiry_margin` 10 s: fresh until
//! 78–80 s (jitter), usable until 90 s.

use crate::common;

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

/// When each token was issued (token `n` at index `n - 1`), and the last `expires_in` sent.
#[derive(Clone, Default)]
struct Issued(std::sync::Arc<std::sync::Mutex<(Vec<tokio::time::Instant>, u64)>>);
/// How long the tokens of [`same_token_until`] live.
const LIFETIME: Duration = Duration::from_secs(600);

/// A token server that hands back the token it issued last until `renew_within` of its
/// expiry, each time with the `expires_in` left (rounded down): the GCP metadata server
/// (renews about 4 minutes before expiry), WSO2 (renews once the token has expired).
fn same_token_until(renew_within: Duration, issued: Issued) -> impl Fn(usize) -> Reply {
    move |_| {
        let now = tokio::time::Instant::now();
        let (issued, last_expires_in) = &mut *issued.0.lock().unwrap();
        if issued.last().is_none_or(|at| now + renew_within >= *at + LIFETIME) {
            issued.push(now);
        }
        *last_expires_in = (*issued.last().unwrap() + LIFETIME - now).as_secs();
        let (n, expires_in) = (issued.len(), *last_expires_in);
        Reply::json(200, format!(r#"{{"access_token":"token-{n}","expires_in":{expires_in}}}"#))
    }
}

/// Token requests in each of three token lifetimes, with four requests a second and the
/// default `refresh_ahead` (5 min) and `expiry_margin` (30 s). Every request must succeed,
/// with a token the server still holds valid.
async fn requests_per_lifetime(renew_within: Duration) -> Vec<usize> {
    let issued = Issued::default();
    let tokens = TokenServer::start_with(same_token_until(renew_within, issued.clone())).await;
    let api = ApiServer::start_rejecting({
        let issued = issued.clone();
        move |auth| {
            let n: usize = auth.trim_start_matches("Bearer token-").parse().unwrap();
            tokio::time::Instant::now() >= issued.0.lock().unwrap().0[n - 1] + LIFETIME
        }
    })
    .await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);
    let mut per_lifetime = Vec::new();
    for _ in 0..3 {
        let before = tokens.count();
        for _ in 0..LIFETIME.as_secs() * 4 {
            let (status, _) = get(&service, &api.url).await.unwrap();
            assert_eq!(status, 200, "every token sent was still valid");
            advance(Duration::from_millis(250)).await;
        }
        per_lifetime.push(tokens.count() - before);
    }
    // The lifecycle is the latest answer's: as long as the server's last `expires_in` said.
    let last_expires_in = issued.0.lock().unwrap().1;
    assert_eq!(layer.token().await.unwrap().lifetime(), Duration::from_secs(last_expires_in));
    per_lifetime
}

#[tokio::test(start_paused = true)]
async fn a_server_that_renews_four_minutes_before_expiry_costs_three_requests_per_lifetime() {
    // Refresh at 300 s left gets the same token; at 150 s left, a new one.
    let counts = requests_per_lifetime(Duration::from_secs(240)).await;
    assert_eq!(counts, [3, 3, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_renews_only_after_expiry_costs_at_most_thirteen_requests_per_lifetime() {
    // Each answer with the same token at least halves the time to the next refresh
    // (`refresh_ahead` is capped at half the lifetime): from 300 s left, down to the last
    // second, and one more request once the token has expired. A bound, never a loop.
    let counts = requests_per_lifetime(Duration::ZERO).await;
    assert!(counts.iter().all(|&n| (2..=13).contains(&n)), "{counts:?}");
}
