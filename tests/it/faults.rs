//! The fault matrix of DESIGN.md §3: for each way the token endpoint misbehaves, the error class
//! returned, the number of token requests made, and whether a still-valid token kept serving.
//!
//! Where a test moves the clock, tokens live 100 s with `refresh_ahead` 20 s and
//! `expiry_margin` 10 s: fresh until 78–80 s, usable until 90 s.

use crate::common;

use std::time::Duration;

use common::{api_client, get, raw_token_server, ApiServer, Reply, TokenServer};
use tokio::net::TcpListener;
use tokio::time::{advance, Instant};
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, Config, ErrorClass, TokenError, TokenErrorKind,
};

fn layer_for(tokens: &TokenServer) -> ClientCredentialsLayer {
    let config = tokens.windowed_config().build().unwrap();
    ClientCredentialsLayer::new(config)
}

async fn one_error(reply: Reply) -> (TokenError, usize) {
    let tokens = TokenServer::start_with(move |_| reply.clone()).await;
    let error = layer_for(&tokens).token().await.unwrap_err();
    (error, tokens.count())
}

/// Yields until the background refresh has failed `n` times in all.
async fn until_failures(layer: &ClientCredentialsLayer, n: u64) {
    for _ in 0..10_000 {
        if layer.stats().token_request_failures >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{n} failures never happened");
}

async fn server_error_keeps_the_valid_token_serving(status: u16) {
    let tokens = TokenServer::start_with(move |n| match n {
        1 => Reply::token(1, 100),
        _ => Reply::json(status, "upstream unavailable"),
    })
    .await;
    let api = ApiServer::start().await;
    let layer = layer_for(&tokens);
    let service = api_client(&layer);
    let auth = || async { get(&service, &api.url).await.map(|(_, auth)| auth) };

    assert_eq!(auth().await.unwrap(), "Bearer token-1");
    advance(Duration::from_secs(81)).await;
    // Stale: the token serves while the background refresh fails.
    assert_eq!(auth().await.unwrap(), "Bearer token-1");
    until_failures(&layer, 1).await;
    for _ in 0..10 {
        assert_eq!(auth().await.unwrap(), "Bearer token-1");
    }
    assert_eq!(tokens.count(), 2, "backing off: no token request per stale request");

    // After the first step (at most 1 s), the next stale request tries again.
    advance(Duration::from_secs(1)).await;
    assert_eq!(auth().await.unwrap(), "Bearer token-1");
    until_failures(&layer, 2).await;
    assert_eq!(tokens.count(), 3);

    // Past usable_until the token is gone; the request fails with the transient error.
    advance(Duration::from_secs(9)).await;
    let error = auth().await.unwrap_err();
    let error = error.downcast_ref::<TokenError>().unwrap();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
    assert_eq!(tokens.count(), 4);
    // ... and the next one at once, from the negative cache.
    assert!(auth().await.is_err());
    assert_eq!(tokens.count(), 4);
    assert_eq!(api.seen().len(), 13, "only requests with a token reached the API");
}

#[tokio::test(start_paused = true)]
async fn status_500_is_transient_and_a_valid_token_keeps_serving() {
    server_error_keeps_the_valid_token_serving(500).await;
}

#[tokio::test(start_paused = true)]
async fn status_503_is_transient_and_a_valid_token_keeps_serving() {
    server_error_keeps_the_valid_token_serving(503).await;
}

#[tokio::test(start_paused = true)]
async fn status_429_with_retry_after_7_means_no_token_request_for_7_seconds() {
    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply { headers: vec![("retry-after", "7".into())], ..Reply::json(429, "slow down") },
        n => Reply::token(n, 100),
    })
    .await;
    let layer = layer_for(&tokens);
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));

    advance(Duration::from_millis(6_999)).await;
    assert_eq!(layer.token().await.unwrap_err().status(), error.status());
    assert_eq!(tokens.count(), 1);
    advance(Duration::from_millis(1)).await;
    assert_eq!(layer.token().await.unwrap().secret(), "token-2");
    assert_eq!(tokens.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hung_endpoint_releases_every_waiter_at_request_timeout() {
    let tokens = TokenServer::start().await;
    tokens.hold();
    let config = tokens.config().request_timeout(Duration::from_secs(3)).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let started = Instant::now();
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let layer = layer.clone();
            tokio::spawn(async move { (layer.token().await.unwrap_err(), started.elapsed()) })
        })
        .collect();
    for waiter in waiters {
        let (error, waited) = waiter.await.unwrap();
        assert_eq!(error.kind(), TokenErrorKind::Timeout);
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(waited, Duration::from_secs(3));
    }
    assert_eq!(tokens.count(), 1);
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_transient() {
    let url = raw_token_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"expires_in\":",
    )
    .await;
    let layer = ClientCredentialsLayer::new(Config::builder(&url, "id", "secret").build().unwrap());
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Transport, "{error}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(error.to_string().contains(&url), "{error}");
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    drop(listener);
    let layer = ClientCredentialsLayer::new(Config::builder(&url, "id", "secret").build().unwrap());
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Connect);
    assert_eq!(error.class(), ErrorClass::Transient);
    let message = error.to_string();
    assert!(message.starts_with(&format!("could not connect to the token endpoint {url}: ")));
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn unparseable_answers_are_rejected_with_a_short_clean_excerpt() {
    let html = format!("<html><body><h1>Sign in</h1>\n{}</body></html>", "<p>x</p>".repeat(500));
    let cases = [
        (Reply::json(200, r#"{"expires_in": 3600,"#), r#"{"expires_in": 3600,"#.to_owned()),
        (Reply::json(200, html), "<html><body><h1>Sign in</h1> <p>x</p>".to_owned()),
        (
            Reply {
                headers: vec![("content-type", "text/plain".into())],
                ..Reply::json(200, "OK")
            },
            "OK".to_owned(),
        ),
    ];
    for (reply, excerpt) in cases {
        let (error, count) = one_error(reply).await;
        assert_eq!(error.kind(), TokenErrorKind::MalformedResponse);
        assert_eq!(error.class(), ErrorClass::Rejected);
        let message = error.to_string();
        assert!(message.contains(&excerpt), "{message}");
        // The excerpt is cut at 200 characters; the rest names the endpoint and the client.
        assert!(message.chars().count() < 400, "{message}");
        assert_eq!(count, 1);
    }
}

#[tokio::test]
async fn a_2_mib_body_is_not_read_past_the_cap() {
    let big = "x".repeat(2 * 1024 * 1024);
    for chunked in [false, true] {
        let (error, _) = one_error(Reply { chunked, ..Reply::json(200, big.clone()) }).await;
        assert_eq!(error.kind(), TokenErrorKind::BodyTooLarge, "chunked: {chunked}");
        assert_eq!(error.class(), ErrorClass::Rejected);
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_error_body_keeps_its_status_and_retry_after() {
    let big = "x".repeat(2 * 1024 * 1024);
    for chunked in [false, true] {
        for status in [503, 429] {
            let reply = Reply {
                chunked,
                headers: vec![("retry-after", "7".into())],
                ..Reply::json(status, big.clone())
            };
            let tokens = TokenServer::start_with(move |_| reply.clone()).await;
            let layer = layer_for(&tokens);
            let error = layer.token().await.unwrap_err();
            let case = format!("status {status}, chunked: {chunked}");
            assert_eq!(error.kind(), TokenErrorKind::ErrorResponse, "{case}");
            assert_eq!(error.status().map(|s| s.as_u16()), Some(status), "{case}");
            assert_eq!(error.class(), ErrorClass::Transient, "{case}");
            assert_eq!(error.retry_after(), Some(Duration::from_secs(7)), "{case}");
            // The body is cut at 200 characters; the rest names the endpoint and the client.
            assert!(error.to_string().chars().count() < 400, "{case}");
            // `Retry-After`, not the rejection backoff, says when to ask again.
            advance(Duration::from_secs(7)).await;
            assert!(layer.token().await.is_err());
            assert_eq!(tokens.count(), 2, "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_that_expires_before_its_answer_arrives_is_not_handed_out() {
    // The endpoint takes 20 s to hand out a 10 s token.
    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply { delay: Duration::from_secs(20), ..Reply::token(1, 10) },
        n => Reply::token(n, 100),
    })
    .await;
    let config = tokens.windowed_config().request_timeout(Duration::from_secs(60)).build();
    let layer = ClientCredentialsLayer::new(config.unwrap());
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let layer = layer.clone();
            tokio::spawn(async move { layer.token().await })
        })
        .collect();
    for waiter in waiters {
        let error = waiter.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::ExpiredOnArrival);
        assert_eq!(error.class(), ErrorClass::Transient);
    }
    assert_eq!(tokens.count(), 1);
    advance(Duration::from_secs(1)).await;
    assert_eq!(layer.token().await.unwrap().secret(), "token-2");
}

#[tokio::test]
async fn a_token_longer_than_8_kib_is_refused() {
    let body = format!(r#"{{"access_token":"{}","expires_in":3600}}"#, "a".repeat(100 * 1024));
    let (error, count) = one_error(Reply::json(200, body)).await;
    assert_eq!(error.kind(), TokenErrorKind::InvalidAccessToken);
    assert_eq!(count, 1);
    let fits = format!(r#"{{"access_token":"{}","expires_in":3600}}"#, "a".repeat(8 * 1024));
    let tokens = TokenServer::start_with(move |_| Reply::json(200, fits.clone())).await;
    assert_eq!(layer_for(&tokens).token().await.unwrap().secret().len(), 8 * 1024);
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let elsewhere = TokenServer::start().await;
    let location = elsewhere.url.clone();
    let tokens = TokenServer::start_with(move |_| Reply {
        headers: vec![("location", location.clone())],
        ..Reply::json(307, "")
    })
    .await;
    let config = tokens.config().auth_method(AuthMethod::ClientSecretPost).build().unwrap();
    let error = ClientCredentialsLayer::new(config).token().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(307));
    assert_eq!(elsewhere.count(), 0, "the form, and the secret in it, went nowhere else");
}

#[tokio::test]
async fn a_200_carrying_an_error_is_rejected() {
    let (error, _) = one_error(Reply::json(200, r#"{"error":"invalid_scope"}"#)).await;
    assert_eq!(error.kind(), TokenErrorKind::ErrorResponse);
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert_eq!(error.oauth_error(), Some("invalid_scope"));
}

#[tokio::test]
async fn odd_expires_in_values_have_a_defined_outcome() {
    for bad in ["-5", r#""abc""#] {
        let body = format!(r#"{{"access_token":"t","expires_in":{bad}}}"#);
        let (error, _) = one_error(Reply::json(200, body)).await;
        assert_eq!(error.kind(), TokenErrorKind::InvalidExpiresIn, "{bad}");
        assert_eq!(error.class(), ErrorClass::Rejected);
    }
    // A token at the end of its life is expired on arrival: asking again soon helps.
    let (error, _) = one_error(Reply::json(200, r#"{"access_token":"t","expires_in":0}"#)).await;
    assert_eq!(error.kind(), TokenErrorKind::ExpiredOnArrival);
    assert_eq!(error.class(), ErrorClass::Transient);
    let tokens = TokenServer::start_with(|n| Reply::token(n, 1_000_000_000_000)).await;
    let token = layer_for(&tokens).token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(365 * 24 * 60 * 60), "capped at a year");
}

#[tokio::test]
async fn an_access_token_with_a_newline_never_becomes_a_header() {
    let tokens = TokenServer::start_with(|_| {
        Reply::json(200, r#"{"access_token":"abc\r\nX-Evil: 1","expires_in":3600}"#)
    })
    .await;
    let api = ApiServer::start().await;
    let error = get(&api_client(&layer_for(&tokens)), &api.url).await.unwrap_err();
    let error = error.downcast_ref::<TokenError>().unwrap();
    assert_eq!(error.kind(), TokenErrorKind::InvalidAccessToken);
    assert!(api.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_client_is_rejected_by_name_with_a_long_backoff() {
    let tokens = TokenServer::start_with(|_| {
        Reply::json(401, r#"{"error":"invalid_client","error_description":"unknown client"}"#)
    })
    .await;
    let layer = layer_for(&tokens);
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert!(error.to_string().contains("invalid_client (unknown client)"), "{error}");

    // A rejection waits at least 2.5 s (half of the 5 s first step), a transient failure 0.5 s.
    advance(Duration::from_millis(2_499)).await;
    assert_eq!(layer.token().await.unwrap_err().oauth_error(), Some("invalid_client"));
    assert_eq!(tokens.count(), 1);
    advance(Duration::from_millis(2_501)).await;
    assert!(layer.token().await.is_err());
    assert_eq!(tokens.count(), 2, "tried again once the step was over");
}
