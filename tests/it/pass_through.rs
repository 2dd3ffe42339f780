//! Requests that go without a token are visible: the allow-list's pass-throughs are counted
//! in `Stats` (and the metrics), and `warm_up` is no caller that waited.

use crate::common;

use common::{api_client, get, get_with, ApiServer, TokenServer};
use tower::ServiceExt;
use tower_client_credentials::ClientCredentialsLayer;

#[tokio::test]
async fn requests_the_allow_list_sends_without_a_token_are_counted() {
    let tokens = TokenServer::start().await;
    let allowed = ApiServer::start().await;
    let other = ApiServer::start().await;
    let origin = allowed.url.trim_end_matches('/').rsplit_once('/').map_or("", |(o, _)| o);
    let config = tokens.config().allowed_origin(origin).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    assert_eq!(get(&service, &allowed.url).await.unwrap().1, "Bearer token-1");
    assert_eq!(get(&service, &other.url).await.unwrap().1, "", "another origin: no token");
    // A relative URI has no origin to be on the list; the client cannot send it, but the
    // layer decides before the client sees it.
    let relative = http::Request::get("/things").body(Default::default()).unwrap();
    assert!(service.clone().oneshot(relative).await.is_err());
    // The caller's own `Authorization` is meant to go as it is: not counted.
    let own = http::Request::get(&other.url).header("authorization", "Basic eA==");
    get_with(&service, own.body(Default::default()).unwrap()).await.unwrap();

    let stats = layer.stats();
    assert_eq!(stats.requests_passed_through, 2);
    assert_eq!(tokens.count(), 1);
}

#[tokio::test]
async fn warm_up_is_not_a_caller_that_waited() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    layer.warm_up().await.unwrap();
    assert_eq!((layer.stats().requests_waited, layer.stats().tokens_fetched), (0, 1));

    get(&api_client(&layer), &api.url).await.unwrap();
    assert_eq!(layer.stats().requests_waited, 0, "the token was there");
}
