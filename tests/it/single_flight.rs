//! One token request, however many callers need a token at once (DESIGN.md §2).

use crate::common;

use std::time::Duration;

use common::{api_client, get, ApiServer, TokenServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tower_client_credentials::ClientCredentialsLayer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_requests_make_one_token_request() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);

    // Hold the token answer until every request is waiting for it, so all 1,000 overlap.
    tokens.hold();
    let requests: Vec<_> = (0..1000)
        .map(|_| {
            let (service, url) = (service.clone(), api.url.clone());
            tokio::spawn(async move { get(&service, &url).await.unwrap() })
        })
        .collect();
    tokens.wait_for_count(1).await;
    for _ in 0..10_000 {
        if layer.stats().requests_waited == 1000 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(layer.stats().requests_waited, 1000);
    tokens.release();

    for request in requests {
        assert_eq!(request.await.unwrap(), (200, "Bearer token-1".to_owned()));
    }
    assert_eq!(tokens.count(), 1);
    let seen = api.seen();
    assert_eq!(seen.len(), 1000);
    assert!(seen.iter().all(|auth| auth.as_deref() == Some("Bearer token-1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_does_not_cancel_the_token_request_for_the_others() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);

    tokens.hold();
    let (first_service, url) = (service.clone(), api.url.clone());
    let first = tokio::spawn(async move { get(&first_service, &url).await });
    tokens.wait_for_count(1).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    let others: Vec<_> = (0..2)
        .map(|_| {
            let (service, url) = (service.clone(), api.url.clone());
            tokio::spawn(async move { get(&service, &url).await.unwrap() })
        })
        .collect();
    tokens.release();
    for other in others {
        assert_eq!(other.await.unwrap(), (200, "Bearer token-1".to_owned()));
    }
    assert_eq!(tokens.count(), 1, "the started request was reused, not repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_gets_the_same_error() {
    let tokens = TokenServer::start_with(|_| {
        common::Reply::json(401, r#"{"error":"invalid_client","error_description":"bad secret"}"#)
    })
    .await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    tokens.hold();
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            let layer = layer.clone();
            tokio::spawn(async move { layer.token().await })
        })
        .collect();
    tokens.wait_for_count(1).await;
    tokens.release();
    for waiter in waiters {
        let error = waiter.await.unwrap().unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
        assert_eq!(error.error_description(), Some("bad secret"));
    }
    assert_eq!(tokens.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_layer_clone_cancels_the_token_request_in_flight() {
    // A token endpoint that accepts and reads the request but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let config = tower_client_credentials::Config::builder(url, "id", "secret")
        .request_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let waiter = tokio::spawn({
        let layer = layer.clone();
        async move { layer.token().await }
    });
    let (mut connection, _) = listener.accept().await.unwrap();
    let mut buffer = [0; 4096];
    assert!(connection.read(&mut buffer).await.unwrap() > 0, "the token request arrived");

    waiter.abort();
    let _ = waiter.await;
    drop(layer);

    // With nobody left to want the token, the request is abandoned: the connection closes.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if connection.read(&mut buffer).await.unwrap_or(0) == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the token request kept running after the layer was dropped");
}
