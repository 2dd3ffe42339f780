//! reqwest through reqwest-middleware (feature `reqwest-middleware`), against a token endpoint
//! and an API on loopback: the layer's token, one cache with the Tower service, a `401` that
//! drops exactly the token sent and a resend with the new one, the caller's own
//! `Authorization`, the allow-list, and a streaming body that cannot be resent.

use crate::common;

use common::{api_client, get, ApiServer, Reply, TokenServer};
use hyper::body::{Bytes, Frame};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tower_client_credentials::{
    ClientCredentialsLayer, ClientCredentialsMiddleware, TokenError, TokenErrorKind,
};

fn reqwest_client(middleware: ClientCredentialsMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(middleware).build()
}

/// Sends a GET; returns the status and the body (the API echoes the `Authorization` it got).
async fn send(request: reqwest_middleware::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A body the client can send only once: reqwest's `try_clone` gives `None` for it.
fn streaming_body() -> reqwest::Body {
    let chunks = vec![Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"{\"n\":1}")))];
    reqwest::Body::wrap(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)))
}

#[tokio::test]
async fn the_reqwest_client_and_a_tower_service_share_one_token() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());
    let service = api_client(&layer);

    assert_eq!(send(client.get(&api.url)).await, (200, "Bearer token-1".into()));
    assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-1".into()));
    assert_eq!(send(client.post(&api.url).body("x")).await, (200, "Bearer token-1".into()));
    assert_eq!(tokens.count(), 1, "one token request for both clients");
    assert_eq!(layer.stats().tokens_fetched, 1);
    assert_eq!(layer.stats().requests_waited, 1, "only the first request waited");
}

#[tokio::test]
async fn a_401_drops_the_token_sent_and_the_request_is_resent_once_with_the_new_one() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    let response = send(client.post(&api.url).body("a body that can be sent again")).await;
    assert_eq!(response, (200, "Bearer token-2".into()));
    assert_eq!(api.seen(), [Some("Bearer token-1".into()), Some("Bearer token-2".into())]);
    assert_eq!(tokens.count(), 2);
    assert_eq!(layer.stats().invalidations, 1);

    // The Tower service of the same layer has the new token too.
    assert_eq!(get(&api_client(&layer), &api.url).await.unwrap(), (200, "Bearer token-2".into()));
    assert_eq!(tokens.count(), 2);
}

#[tokio::test]
async fn a_streaming_body_is_not_resent_but_the_next_request_gets_the_new_token() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    let (status, _) = send(client.post(&api.url).body(streaming_body())).await;
    assert_eq!(status, 401, "the 401 goes back to the caller");
    assert_eq!(api.seen(), [Some("Bearer token-1".into())], "sent once");
    assert_eq!(layer.stats().invalidations, 1, "the token it carried is dropped all the same");
    assert_eq!(tokens.count(), 1, "no token request until one is needed");

    let response = send(client.post(&api.url).body(streaming_body())).await;
    assert_eq!(response, (200, "Bearer token-2".into()));
    assert_eq!(tokens.count(), 2);
}

#[tokio::test]
async fn a_request_is_resent_at_most_once() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|_| true).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    assert_eq!(send(client.get(&api.url)).await.0, 401);
    assert_eq!(api.seen(), [Some("Bearer token-1".into()), Some("Bearer token-2".into())]);
    assert_eq!(tokens.count(), 2);
    // The resend's 401 came within `invalidation_interval`: token-2 stays.
    assert_eq!(layer.stats().invalidations, 1);

    assert_eq!(send(client.get(&api.url)).await.0, 401);
    assert_eq!(api.seen().len(), 3, "token-2 was not replaced, so nothing to resend with");
    assert_eq!(tokens.count(), 2);
}

#[tokio::test]
async fn a_request_with_its_own_authorization_is_sent_as_it_is() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|_| true).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    assert_eq!(send(client.get(&api.url).bearer_auth("mine")).await.0, 401);
    assert_eq!(api.seen(), [Some("Bearer mine".into())], "sent once, with the caller's header");
    assert_eq!(tokens.count(), 0, "no token needed");
    assert_eq!(layer.stats().invalidations, 0);
}

#[tokio::test]
async fn only_origins_on_the_allow_list_get_the_token() {
    let tokens = TokenServer::start().await;
    let allowed = ApiServer::start().await;
    let elsewhere = ApiServer::start().await;
    let origin = allowed.url.trim_end_matches("/things").to_owned();
    let config = tokens.config().allowed_origin(origin).build().unwrap();
    let client = reqwest_client(ClientCredentialsMiddleware::new(config));

    assert_eq!(send(client.get(&elsewhere.url)).await.0, 401);
    assert_eq!(elsewhere.seen(), [None]);
    assert_eq!(tokens.count(), 0);
    assert_eq!(send(client.get(&allowed.url)).await, (200, "Bearer token-1".into()));
    assert_eq!(tokens.count(), 1);
}

#[tokio::test]
async fn without_a_token_the_request_fails_with_the_token_error_and_is_not_sent() {
    let tokens = TokenServer::start_with(|_| {
        Reply::json(401, r#"{"error":"invalid_client","error_description":"unknown client"}"#)
    })
    .await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    let error = client.get(&api.url).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = &error else {
        panic!("not a middleware error: {error:?}");
    };
    let token_error = error.downcast_ref::<TokenError>().expect("a TokenError");
    assert_eq!(token_error.kind(), TokenErrorKind::ErrorResponse);
    assert_eq!(token_error.oauth_error(), Some("invalid_client"));
    assert!(api.seen().is_empty(), "the API got nothing");
    assert_eq!(tokens.count(), 1);
}

#[test]
fn debug_shows_no_secret() {
    let config = tower_client_credentials::Config::builder(
        "https://auth.example.com/token",
        "client",
        "hunter2",
    )
    .build()
    .unwrap();
    let debug = format!("{:?}", ClientCredentialsMiddleware::new(config));
    assert!(debug.contains("client") && !debug.contains("hunter2"), "{debug}");
}

/// With DPoP, the reqwest client sends proofs as the Tower service does: a resource server
/// that checks every proof and demands a nonce serves each request, after one nonce round trip
/// per request sent before the nonce was known, and the nonce drops no token.
#[cfg(feature = "dpop")]
#[tokio::test]
async fn with_dpop_each_reqwest_request_carries_a_proof_and_a_nonce_demand_is_answered() {
    use common::dpop::{DpopServers, Outcome};
    use tower_client_credentials::{DpopAlgorithm, DpopKey};

    let servers = DpopServers::start().await;
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = ClientCredentialsLayer::new(servers.config().dpop(key.clone()).build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());

    assert_eq!(send(client.get(&servers.api_url)).await, (200, "served".into()));
    assert_eq!(servers.api_outcomes(), [Outcome::Refused("nonce"), Outcome::Served]);
    // The nonce is kept: the next request is served at once, a POST with a proof of its own.
    assert_eq!(send(client.post(&servers.api_url).body("x")).await, (200, "served".into()));
    assert_eq!(servers.api_outcomes().len(), 3);
    let token = layer.token().await.unwrap();
    assert_eq!(servers.jkt_of(token.secret()).as_deref(), Some(key.thumbprint()));
    for headers in servers.api_headers() {
        assert_eq!(headers["authorization"], format!("DPoP {}", token.secret()).as_str());
    }
    let stats = layer.stats();
    assert_eq!((stats.invalidations, stats.tokens_fetched), (0, 1), "a nonce is no invalidation");

    // A streaming body cannot be resent after a nonce demand: its 401 goes back, and the
    // next request, with the nonce, is served.
    let fresh = ClientCredentialsLayer::new(servers.config().dpop(key).build().unwrap());
    let client = reqwest_client(fresh.reqwest_middleware());
    assert_eq!(send(client.post(&servers.api_url).body(streaming_body())).await.0, 401);
    assert_eq!(send(client.get(&servers.api_url)).await, (200, "served".into()));
    assert_eq!(fresh.stats().invalidations, 0);
}

#[tokio::test]
async fn token_params_given_with_the_request_get_a_token_of_their_own() {
    use tower_client_credentials::TokenParams;

    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(layer.reqwest_middleware());
    let orders = TokenParams::new().audience("orders");

    assert_eq!(send(client.get(&api.url)).await, (200, "Bearer token-1".into()));
    let with_params = || client.get(&api.url).with_extension(orders.clone());
    assert_eq!(send(with_params()).await, (200, "Bearer token-2".into()));
    assert_eq!(send(with_params()).await, (200, "Bearer token-2".into()));
    assert_eq!(send(client.get(&api.url)).await, (200, "Bearer token-1".into()));
    let audiences: Vec<_> =
        tokens.received().iter().map(|r| r.param("audience").map(str::to_owned)).collect();
    assert_eq!(audiences, [None, Some("orders".to_owned())]);
    assert_eq!(layer.stats_for(&orders).unwrap().tokens_fetched, 1);
}
