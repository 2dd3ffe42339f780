//! Load under an outage (DESIGN.md §3): with the token endpoint down and no usable token,
//! 10,000 requests over a minute cause a handful of token requests that follow the backoff
//! schedule, each request fails promptly, and traffic flows again within one backoff step of
//! the endpoint coming back.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{api_client, get, ApiServer, Reply, TokenServer};
use tokio::time::{advance, Instant};
use tower_client_credentials::{ClientCredentialsLayer, ErrorClass, TokenError};

#[tokio::test(start_paused = true)]
async fn ten_thousand_requests_during_an_outage_make_a_handful_of_token_requests() {
    let up = Arc::new(AtomicBool::new(false));
    let tokens = TokenServer::start_with({
        let up = up.clone();
        move |n| match up.load(Ordering::SeqCst) {
            true => Reply::token(n, 3600),
            false => Reply::json(503, "maintenance"),
        }
    })
    .await;
    let api = ApiServer::start().await;
    let request_timeout = Duration::from_secs(10);
    let config = tokens.config().request_timeout(request_timeout).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    // 10,000 requests, one every 6 ms: a minute.
    let mut slowest = Duration::ZERO;
    for _ in 0..10_000 {
        let started = Instant::now();
        let error = get(&service, &api.url).await.unwrap_err();
        slowest = slowest.max(started.elapsed());
        let error = error.downcast_ref::<TokenError>().expect("a token error");
        assert_eq!(error.class(), ErrorClass::Transient);
        advance(Duration::from_millis(6)).await;
    }
    assert!(slowest <= request_timeout, "a request waited {slowest:?}");
    // Backoff steps are 1, 2, 4, 8, 16, 32, 60 s, each waited for between half and all of it:
    // attempts at 0 s and then at 1–2, 3–6, 7–14, 15–30, 31–62 and 63+ s (latest to earliest),
    // so 6 or 7 attempts fit into the minute.
    let attempts = tokens.count();
    assert!((6..=7).contains(&attempts), "{attempts} token requests");
    assert!(api.seen().is_empty());

    // The endpoint comes back: within one step (60 s at most) a request gets a token.
    up.store(true, Ordering::SeqCst);
    let back = Instant::now();
    let mut recovered = None;
    while back.elapsed() <= Duration::from_secs(61) {
        if let Ok((200, auth)) = get(&service, &api.url).await {
            recovered = Some((back.elapsed(), auth));
            break;
        }
        advance(Duration::from_millis(100)).await;
    }
    let (after, auth) = recovered.expect("traffic never resumed");
    assert!(after <= Duration::from_secs(60), "resumed after {after:?}");
    assert_eq!(auth, format!("Bearer token-{}", attempts + 1));
    for _ in 0..10 {
        assert_eq!(get(&service, &api.url).await.unwrap().0, 200);
    }
    assert_eq!(tokens.count(), attempts + 1, "one token request brought it back");
    println!("outage: {attempts} token requests for 10,000 requests; slowest {slowest:?}; recovered after {after:?}");
}
