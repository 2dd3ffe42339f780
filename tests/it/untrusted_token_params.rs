//! Token parameters taken from request data (a tenant per user, say), as a careless caller or a
//! hostile client would send them: thousands of distinct sets against a small
//! `max_cached_tokens`, hundreds at once while the token endpoint holds its answers, megabyte
//! values. Each distinct set makes one token request, the cache keeps the cap and not the
//! history, and a huge value is sent whole and its token reused.

use crate::common;

use common::named_tokens::{asked, naming_token_server};
use common::{api_client, get_with, request_with, ApiServer};
use tower_client_credentials::{ClientCredentialsLayer, TokenParams};

/// Token parameters taken from request data (a tenant per user, say): thousands of distinct
/// ones through a layer capped at 4 make one token request each, and once a token is idle and
/// newer ones came, it is gone: memory holds the cap, not the history.
#[tokio::test]
async fn thousands_of_distinct_token_params_keep_at_most_max_cached_tokens() {
    const N: usize = 2000;
    const CAP: usize = 4;
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let config = tokens.config().audience("default").max_cached_tokens(CAP).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let client = api_client(&layer);
    let params = |i: usize| TokenParams::new().audience(format!("user-{i}"));

    // At most CAP at a time, so that the map never needs to hold more than the cap.
    for batch in (0..N).collect::<Vec<_>>().chunks(CAP) {
        let sent: Vec<_> = batch
            .iter()
            .map(|&i| {
                let (client, request) = (client.clone(), request_with(&api.url, params(i)));
                (i, tokio::spawn(async move { get_with(&client, request).await.unwrap() }))
            })
            .collect();
        for (i, answer) in sent {
            let (status, auth) = answer.await.unwrap();
            assert_eq!(status, 200);
            assert!(auth.starts_with(&format!("Bearer user-{i}-")), "{i}: {auth}");
        }
    }
    assert_eq!(tokens.count(), N, "one token request per distinct set");
    let kept: Vec<usize> = (0..N).filter(|&i| layer.stats_for(&params(i)).is_some()).collect();
    assert_eq!(kept, (N - CAP..N).collect::<Vec<_>>(), "only the latest CAP are kept");
    assert_eq!(layer.stats().tokens_fetched, 0, "the layer's own token was never needed");
}

/// Hundreds of distinct sets at once while the token endpoint holds its answers: each set
/// makes exactly one token request however many requests need it (none is forgotten while
/// requests wait for it, the cap notwithstanding), and once they are done the next new set
/// brings the map back under the cap.
#[tokio::test]
async fn concurrent_distinct_params_while_the_token_endpoint_is_held() {
    const N: usize = 300;
    const CAP: usize = 2;
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer =
        ClientCredentialsLayer::new(tokens.config().max_cached_tokens(CAP).build().unwrap());
    let client = api_client(&layer);
    let params = |i: usize| TokenParams::new().audience(format!("tenant-{i}"));

    tokens.hold();
    let sent: Vec<_> = (0..2 * N)
        .map(|k| {
            let i = k % N; // two requests for each set
            let (client, request) = (client.clone(), request_with(&api.url, params(i)));
            (i, tokio::spawn(async move { get_with(&client, request).await.unwrap() }))
        })
        .collect();
    tokens.wait_for_count(N).await;
    tokens.release();
    let mut token_of = vec![None; N];
    for (i, answer) in sent {
        let (status, auth) = answer.await.unwrap();
        assert_eq!(status, 200);
        assert!(auth.starts_with(&format!("Bearer tenant-{i}-")), "{i}: {auth}");
        let first = token_of[i].get_or_insert_with(|| auth.clone());
        assert_eq!(*first, auth, "both requests for set {i} share one token");
    }
    assert_eq!(tokens.count(), N, "{:?}", &asked(&tokens)[..10]);

    // All idle now; one new set makes room for itself.
    let (status, auth) = get_with(&client, request_with(&api.url, params(N))).await.unwrap();
    assert_eq!((status, auth), (200, format!("Bearer tenant-{N}-{}", N + 1)));
    let kept = (0..N).filter(|&i| layer.stats_for(&params(i)).is_some()).count();
    assert!(kept < CAP, "{kept} idle old tokens kept with a cap of {CAP}");
    assert!(layer.stats_for(&params(N)).is_some());
}

/// A megabyte of scope, or of audience, from a careless caller: sent whole, one token request,
/// and the token is reused.
#[tokio::test]
async fn a_megabyte_scope_or_audience_makes_one_token_request_and_is_reused() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().scope("base").build().unwrap());
    let client = api_client(&layer);

    let scope = "s".repeat(1 << 20);
    let audience = "a".repeat(1 << 20);
    let by_scope = TokenParams::new().scope(&scope);
    let by_audience = TokenParams::new().audience(&audience);
    for _ in 0..3 {
        let answer = get_with(&client, request_with(&api.url, by_scope.clone())).await.unwrap();
        assert_eq!(answer, (200, "Bearer big-1".into()));
    }
    for _ in 0..3 {
        let request = request_with(&api.url, by_audience.clone());
        assert_eq!(get_with(&client, request).await.unwrap(), (200, "Bearer big-2".into()));
    }
    // 100,000 scopes, given in reverse order: the same token as in order.
    let many: Vec<String> = (0..100_000).map(|i| format!("scope-{i}")).collect();
    let forward = TokenParams::new().scope(many.join(" "));
    let reversed: Vec<&str> = many.iter().rev().map(String::as_str).collect();
    let reverse = TokenParams::new().scope(reversed.join(" "));
    assert_eq!(get_with(&client, request_with(&api.url, forward)).await.unwrap().0, 200);
    assert_eq!(
        get_with(&client, request_with(&api.url, reverse.clone())).await.unwrap(),
        (200, "Bearer big-3".into())
    );

    assert_eq!(tokens.count(), 3);
    let received = tokens.received();
    assert_eq!(received[0].param("scope"), Some(scope.as_str()));
    assert_eq!(received[1].param("audience"), Some(audience.as_str()));
    assert_eq!(received[1].param("scope"), Some("base"), "the layer's scope stays");
    assert_eq!(received[2].param("scope").unwrap().split(' ').count(), 100_000);
    assert_eq!(layer.stats_for(&by_scope).unwrap().tokens_fetched, 1);
    assert_eq!(layer.stats_for(&reverse).unwrap().tokens_fetched, 1);
}
