//! Each way a token endpoint can fail gives its own typed error; none panics (DESIGN.md §3, §4).

use crate::common;

use common::{api_client, get, ApiServer, Reply, TokenServer};
use tower_client_credentials::{ClientCredentialsLayer, ErrorClass, TokenError, TokenErrorKind};

async fn error_for(reply: Reply) -> TokenError {
    error_and_url(reply).await.0
}

/// The error of a token request answered `reply`, and the token URL it went to.
async fn error_and_url(reply: Reply) -> (TokenError, String) {
    let tokens = TokenServer::start_with(move |_| reply.clone()).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    (layer.token().await.unwrap_err(), tokens.url.clone())
}

#[tokio::test]
async fn an_oauth_error_response_carries_status_and_rfc_6749_fields() {
    let (error, url) = error_and_url(Reply::json(
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
        format!(
            "token endpoint rejected the client: invalid_client (client authentication failed) \
             (token endpoint {url}, client {})",
            common::CLIENT_ID
        )
    );
    assert_eq!(
        (error.token_url(), error.client_id()),
        (Some(url.as_str()), Some(common::CLIENT_ID))
    );
}

/// Microsoft Entra's description of a wrong secret, as its support asks for it: every ID and
/// the timestamp survive in `error_description()`, and the message shows its start.
#[tokio::test]
async fn an_error_description_is_kept_whole_for_whoever_is_on_call() {
    let description = "AADSTS7000215: Invalid client secret provided. Ensure the secret being \
        sent in the request is the client secret value, not the client secret ID, for a secret \
        added to app '00000000-0000-0000-0000-000000000001'. Trace ID: \
        0a1b2c3d-4e5f-6789-abcd-ef0123456789 Correlation ID: \
        9f8e7d6c-5b4a-3210-fedc-ba9876543210 Timestamp: 2026-12-03 08:00:00Z";
    let body = serde_json::json!({"error": "invalid_client", "error_description": description});
    let error = error_for(Reply::json(401, body.to_string())).await;

    assert_eq!(error.error_description(), Some(description));
    let message = error.to_string();
    assert!(message.contains("AADSTS7000215") && message.contains('…'), "{message}");
    assert!(!message.contains("Timestamp"), "the message is one readable line: {message}");
}

/// `?` out of `main` prints `Debug`: it says what happened, where, and of which kind.
#[tokio::test]
async fn debug_reads_as_the_message_with_kind_and_class() {
    let (error, url) = error_and_url(Reply::json(503, "down")).await;
    let debug = format!("{error:?}");
    assert!(debug.starts_with("token endpoint answered HTTP 503"), "{debug}");
    assert!(debug.contains(&url) && debug.ends_with("[ErrorResponse, Transient]"), "{debug}");
    assert!(format!("{error:#?}").contains("status: Some("), "{error:#?}");
}

/// A timeout names the endpoint too, with its query left out (it may hold a key).
#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_token_endpoint_without_its_query_and_the_client() {
    let tokens = TokenServer::start().await;
    tokens.hold();
    let client_id = common::CLIENT_ID;
    let layer = ClientCredentialsLayer::new(
        tower_client_credentials::Config::builder(
            format!("{}?code=s3cret", tokens.url),
            client_id,
            "s",
        )
        .build()
        .unwrap(),
    );
    let error = layer.token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Timeout);
    assert_eq!(error.token_url(), Some(tokens.url.as_str()));
    let message = error.to_string();
    assert!(message.contains(&tokens.url) && !message.contains("s3cret"), "{message}");
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
