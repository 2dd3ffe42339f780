//! The API answers 401 to our token (DESIGN.md §3): exactly that token is dropped, at most once
//! per `invalidation_interval`, and `RetryUnauthorized` resends the request with the new one.

use crate::common;

use std::time::Duration;

use common::{api_client, get, ApiServer, TokenServer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tower::retry::RetryLayer;
use tower::{Layer, ServiceExt};
use tower_client_credentials::{ClientCredentialsLayer, RetryUnauthorized};

#[tokio::test]
async fn a_rejected_token_is_invalidated_once_and_replaced_once() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);

    assert_eq!(get(&service, &api.url).await.unwrap().0, 401);
    assert_eq!(layer.stats().invalidations, 1);
    for _ in 0..5 {
        assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-2".into()));
    }
    assert_eq!(tokens.count(), 2);
    assert_eq!(layer.stats().invalidations, 1);
}

#[tokio::test(start_paused = true)]
async fn an_api_that_rejects_every_token_gets_at_most_one_per_invalidation_interval() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|_| true).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = api_client(&layer);

    // 30 s of requests, ten a second, every one rejected.
    for _ in 0..300 {
        assert_eq!(get(&service, &api.url).await.unwrap().0, 401);
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    // The first token, then one per 5 s interval: invalidations at 0, 5, 10, 15, 20 and 25 s.
    assert_eq!(layer.stats().invalidations, 6);
    assert_eq!(tokens.count(), 7);
}

#[tokio::test]
async fn retry_unauthorized_resends_once_with_the_new_token() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = RetryLayer::new(RetryUnauthorized::new()).layer(api_client(&layer));

    let request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "Bearer token-2");
    assert_eq!(api.seen(), [Some("Bearer token-1".into()), Some("Bearer token-2".into())]);
    assert_eq!(tokens.count(), 2);
}

#[tokio::test]
async fn retry_unauthorized_gives_up_after_one_retry() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|_| true).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let service = RetryLayer::new(RetryUnauthorized::new()).layer(api_client(&layer));

    let request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    assert_eq!(service.clone().oneshot(request).await.unwrap().status(), 401);
    assert_eq!(api.seen().len(), 2, "the request and one retry");
    assert_eq!(tokens.count(), 2);

    // Within the interval the second 401 did not invalidate, so there is nothing to retry with.
    let request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    assert_eq!(service.clone().oneshot(request).await.unwrap().status(), 401);
    assert_eq!(api.seen().len(), 3);
    assert_eq!(tokens.count(), 2);
}

#[tokio::test]
async fn a_401_to_a_request_that_carried_its_own_credentials_invalidates_nothing() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|_| true).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    layer.warm_up().await.unwrap();
    let request = http::Request::get(&api.url)
        .header("authorization", "Bearer someone-elses")
        .body(Empty::new())
        .unwrap();
    assert_eq!(common::get_with(&api_client(&layer), request).await.unwrap().0, 401);
    assert_eq!(layer.stats().invalidations, 0);
}

#[tokio::test]
async fn the_allow_list_keeps_the_token_to_listed_origins() {
    let tokens = TokenServer::start().await;
    let listed = ApiServer::start().await;
    let elsewhere = ApiServer::start().await;
    let origin = listed.url.trim_end_matches("/things").to_owned();
    let config = tokens.config().allowed_origin(origin).build().unwrap();
    let service = api_client(&ClientCredentialsLayer::new(config));

    assert_eq!(get(&service, &listed.url).await.unwrap(), (200, "Bearer token-1".into()));
    assert_eq!(get(&service, &elsewhere.url).await.unwrap().0, 401);
    assert_eq!(elsewhere.seen(), [None], "no token left for an unlisted origin");
    assert_eq!(tokens.count(), 1);
}
