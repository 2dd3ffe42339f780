//! Each way a token endpoint can fail gives its own typed error; none panics (DESIGN.md §3, §4).

use crate::common;

use common::{api_client, get, ApiServer, Reply, TokenServer};
use tower_client_credentials::{ClientCredentialsLayer, ErrorClass, TokenError, TokenErrorKind};

async fn error_for(reply: Reply) -> TokenError {
    let tokens = TokenServer::start_with(move |_| reply.clone()).await;
    ClientCredentialsLayer::new(tokens.config().build().unwrap()).token().await.unwrap_err()
}

#[tokio::test]
async fn an_oauth_error_response_carries_status_and_rfc_6749_fields() {
    let error = error_for(Reply::json(
        401,
        r#"{"error":"invalid_client","error_description":"client authentication failed","error_uri":"https://auth.example.com/e"}"#,
    ))
    .await;
    assert_eq!(error.kind(), TokenErrorKind::ErrorResponse);
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert_eq!(error.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert_eq!(error.error_description(), Some("client authentication failed"));
    assert_eq!(error.error_uri(), Some("https://auth.example.com/e"));
    assert_eq!(
        error.to_string(),
        "token endpoint rejected the client: invalid_client (client authentication failed)"
    );
}

#[tokio::test]
async fn each_unusable_answer_has_its_own_kind() {
    use TokenErrorKind::*;
    let cases = [
        (Reply::json(200, "<html>Login</html>"), MalformedResponse),
        (Reply::json(200, r#"{"token_type":"Bearer"}"#), MissingAccessToken),
        (Reply::json(200, r#"{"access_token":"a\r\nX-Injected: 1"}"#), InvalidAccessToken),
        (Reply::json(200, r#"{"access_token":"t","token_type":"MAC"}"#), UnsupportedTokenType),
        (Reply::json(200, r#"{"access_token":"t","expires_in":"abc"}"#), InvalidExpiresIn),
        (Reply::json(200, r#"{"error":"invalid_scope"}"#), ErrorResponse),
        (Reply::json(503, "down for maintenance"), ErrorResponse),
        (Reply::json(200, "x".repeat(2 * 1024 * 1024)), BodyTooLarge),
    ];
    for (reply, kind) in cases {
        let body = reply.body.chars().take(40).collect::<String>();
        let error = error_for(reply).await;
        assert_eq!(error.kind(), kind, "{body}: {error}");
    }
}

#[tokio::test]
async fn the_service_error_downcasts_to_the_token_error() {
    let tokens =
        TokenServer::start_with(|_| Reply::json(400, r#"{"error":"invalid_scope"}"#)).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let error = get(&api_client(&layer), &api.url).await.unwrap_err();
    let error = error.downcast_ref::<TokenError>().expect("a TokenError");
    assert_eq!(error.oauth_error(), Some("invalid_scope"));
    assert!(api.seen().is_empty(), "no request reaches the API without a token");
}

#[tokio::test]
async fn after_a_failure_requests_get_the_same_error_without_a_new_token_request() {
    let tokens =
        TokenServer::start_with(|_| Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    for _ in 0..20 {
        let error = layer.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
    }
    assert_eq!(tokens.count(), 1, "the failure is cached while backing off");
}
