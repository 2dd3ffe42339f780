//! What the token endpoint receives, and how its answers become tokens (DESIGN.md §4).

use crate::common;

use std::time::Duration;

use common::{Reply, TokenServer, CLIENT_ID};
use tower_client_credentials::{AuthMethod, ClientCredentialsLayer, Config};

/// A secret that breaks naive Basic encoding: `:`, `/`, `+`, `%`, `&`, spaces, non-ASCII.
const SPECIAL_SECRET: &str = "b4sic:s3cret/with+special%chars & spaces é";

#[tokio::test]
async fn client_secret_basic_form_encodes_credentials_as_rfc_6749_says() {
    let tokens = TokenServer::start().await;
    let config = Config::builder(&tokens.url, "my client:1", SPECIAL_SECRET).build().unwrap();
    ClientCredentialsLayer::new(config).warm_up().await.unwrap();

    let received = &tokens.received()[0];
    let (id, secret) = received.basic.clone().expect("Basic credentials");
    assert_eq!(id, "my client:1");
    assert_eq!(secret, SPECIAL_SECRET);
    assert_eq!(received.param("grant_type"), Some("client_credentials"));
    assert_eq!(received.param("client_secret"), None, "the secret goes only in the header");
    assert_eq!(received.param("client_id"), None);
    assert_eq!(received.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(received.headers["accept"], "application/json");
    let agent = received.headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("tower-client-credentials/"), "{agent}");
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let tokens = TokenServer::start().await;
    let config = Config::builder(&tokens.url, CLIENT_ID, SPECIAL_SECRET)
        .auth_method(AuthMethod::ClientSecretPost)
        .build()
        .unwrap();
    ClientCredentialsLayer::new(config).warm_up().await.unwrap();

    let received = &tokens.received()[0];
    assert!(!received.headers.contains_key("authorization"));
    assert_eq!(received.param("client_id"), Some(CLIENT_ID));
    assert_eq!(received.param("client_secret"), Some(SPECIAL_SECRET));
    assert_eq!(received.param("grant_type"), Some("client_credentials"));
}

#[tokio::test]
async fn scope_audience_resources_and_params_arrive_as_configured() {
    let tokens = TokenServer::start().await;
    let config = tokens
        .config()
        .scope("read write")
        .scope("admin")
        .audience("https://api.example.com")
        .resource("https://api.example.com/a")
        .resource("https://api.example.com/b")
        .param("tenant", "acme & co")
        .build()
        .unwrap();
    ClientCredentialsLayer::new(config).warm_up().await.unwrap();

    let received = &tokens.received()[0];
    assert_eq!(received.param("scope"), Some("read write admin"));
    assert_eq!(received.param("audience"), Some("https://api.example.com"));
    assert_eq!(
        received.params("resource"),
        ["https://api.example.com/a", "https://api.example.com/b"]
    );
    assert_eq!(received.param("tenant"), Some("acme & co"));
}

#[tokio::test]
async fn the_apigee_edge_response_works_verbatim() {
    let tokens = TokenServer::start_with(|_| {
        Reply::json(
            200,
            r#"{"issued_at":"1416157639014","application_name":"e49ef95f-6d32-4062-ac9a-3beea62ca922","scope":"",
 "status":"approved","api_product_list":"[Test App product]","expires_in":"3599",
 "developer.email":"testdev@example.com","organization_id":"0","token_type":"BearerToken",
 "client_id":"kWocGgKENrdWRT0jq4l0F0ACnPAQsD3","access_token":"WNSnwquKualbgnGeAK0EXGqzO3A",
 "organization_name":"example","refresh_token_expires_in":"0","refresh_count":"0"}"#,
        )
    })
    .await;
    let api = common::ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let (status, auth) = common::get(&common::api_client(&layer), &api.url).await.unwrap();
    assert_eq!((status, auth.as_str()), (200, "Bearer WNSnwquKualbgnGeAK0EXGqzO3A"));
    let token = layer.token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(3599));
    assert_eq!(token.token_type(), "BearerToken");
    assert_eq!(token.secret(), "WNSnwquKualbgnGeAK0EXGqzO3A");
}

#[tokio::test]
async fn a_missing_expires_in_uses_the_default_lifetime() {
    let tokens = TokenServer::start_with(|_| Reply::json(200, r#"{"access_token":"t"}"#)).await;
    let config = tokens.config().default_lifetime(Duration::from_secs(42)).build().unwrap();
    let token = ClientCredentialsLayer::new(config).token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(42));
}

#[tokio::test]
async fn max_lifetime_caps_what_the_server_grants() {
    let tokens = TokenServer::start().await; // grants an hour
    let config = tokens.config().max_lifetime(Duration::from_secs(60)).build().unwrap();
    let token = ClientCredentialsLayer::new(config).token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(60));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = TokenServer::start().await;
    let location = target.url.clone();
    let tokens = TokenServer::start_with(move |_| Reply {
        headers: vec![("location", location.clone())],
        ..Reply::json(307, "")
    })
    .await;
    let error =
        ClientCredentialsLayer::new(tokens.config().build().unwrap()).token().await.unwrap_err();
    assert_eq!(error.status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
    assert_eq!(target.count(), 0, "the credentials never reached the redirect target");
}
