//! A token endpoint that is down, or answers 503, through reqwest-middleware: the caller gets
//! the `TokenError` inside `Error::Middleware`, nothing reaches the API, and the backoff (or the
//! endpoint's `Retry-After`) keeps the token endpoint from being asked again meanwhile.

use crate::common;

use common::{reqwest_client, ApiServer, Reply, TokenServer};
use tokio::net::TcpListener;
use tower_client_credentials::{ClientCredentialsLayer, TokenError, TokenErrorKind, TokenParams};

fn token_error(error: &reqwest_middleware::Error) -> &TokenError {
    match error {
        reqwest_middleware::Error::Middleware(error) => {
            error.downcast_ref::<TokenError>().expect("a TokenError")
        }
        reqwest_middleware::Error::Reqwest(error) => panic!("not a token error: {error:?}"),
    }
}

/// A token endpoint that is down (nothing listens): the error is the TokenError inside
/// `Error::Middleware`, of kind `Connect`, nothing reaches the API, and while backing off
/// the next request fails at once without another connection attempt.
#[tokio::test]
async fn a_token_endpoint_that_is_down_fails_with_a_token_error_and_sends_nothing() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let api = ApiServer::start().await;
    let config = tower_client_credentials::Config::builder(
        format!("http://{closed}/token"),
        common::CLIENT_ID,
        common::CLIENT_SECRET,
    )
    .build()
    .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let client = reqwest_client(&layer);

    let error = client.get(&api.url).send().await.unwrap_err();
    assert_eq!(token_error(&error).kind(), TokenErrorKind::Connect);
    assert!(token_error(&error).is_transient());
    let error = client
        .get(&api.url)
        .with_extension(TokenParams::new().audience("orders"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(token_error(&error).kind(), TokenErrorKind::Connect);
    let again = client.post(&api.url).body("x").send().await.unwrap_err();
    assert_eq!(token_error(&again).kind(), TokenErrorKind::Connect);
    assert!(api.seen().is_empty(), "the API got nothing");
    assert_eq!(layer.stats().token_request_failures, 1, "backing off: one attempt");

    // A token endpoint that answers 503: the same, with its status, and one request.
    let tokens = TokenServer::start_with(|_| {
        let mut reply = Reply::json(503, r#"{"error":"temporarily_unavailable"}"#);
        reply.headers.push(("retry-after", "120".into()));
        reply
    })
    .await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(&layer);
    for _ in 0..5 {
        let error = client.get(&api.url).send().await.unwrap_err();
        assert_eq!(token_error(&error).kind(), TokenErrorKind::ErrorResponse);
        assert_eq!(token_error(&error).status().map(|s| s.as_u16()), Some(503));
    }
    assert_eq!(tokens.count(), 1, "Retry-After honoured: no second token request");
    assert!(api.seen().is_empty());
}
