//! A `TokenError` is found wherever a client wraps it (`TokenError::find`), and becomes the
//! gRPC status a tonic caller expects (feature `tonic`).

use crate::common;

use common::{api_client, get, ApiServer, Reply, TokenServer};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, TokenError};

/// A layer whose token endpoint answers `reply`, and the error a Tower client gets.
async fn tower_error(reply: Reply) -> (ClientCredentialsLayer, BoxError) {
    let tokens = TokenServer::start_with(move |_| reply.clone()).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let error = get(&api_client(&layer), &api.url).await.unwrap_err();
    (layer, error)
}

#[tokio::test]
async fn a_token_error_is_found_in_the_tower_services_error() {
    let (_, error) = tower_error(Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let found = TokenError::find(error.as_ref()).expect("the token error");
    assert_eq!(found.oauth_error(), Some("invalid_client"));
    let unrelated: BoxError = "the API is down".into();
    assert!(TokenError::find(unrelated.as_ref()).is_none());
}

#[cfg(feature = "reqwest-middleware")]
#[tokio::test]
async fn a_token_error_is_found_in_a_reqwest_middleware_error() {
    let (layer, _) = tower_error(Reply::json(503, "down")).await;
    let api = ApiServer::start().await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(layer.reqwest_middleware())
        .build();
    let error = client.get(&api.url).send().await.unwrap_err();
    let found = TokenError::find(&error).expect("the token error");
    assert_eq!(found.class(), tower_client_credentials::ErrorClass::Transient);
}

#[cfg(feature = "tonic")]
#[tokio::test]
async fn a_tonic_caller_gets_unauthenticated_or_unavailable() {
    let (_, rejected) = tower_error(Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let (_, transient) = tower_error(Reply::json(503, "down")).await;
    for (error, code) in
        [(rejected, tonic::Code::Unauthenticated), (transient, tonic::Code::Unavailable)]
    {
        // What a tonic client makes of the layer's error: `Unknown`, with it as the source.
        let status = tonic::Status::from_error(error);
        let found = TokenError::find(&status).expect("the token error in the status");
        let status = tonic::Status::from(found.clone());
        assert_eq!(status.code(), code);
        assert!(status.message().contains("token endpoint"), "{}", status.message());
    }
}
