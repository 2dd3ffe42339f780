//! Secrets stay secret, and the caller's own credentials win (DESIGN.md §5).

use crate::common;

use common::{api_client, get_with, ApiServer, Reply, TokenServer, CLIENT_SECRET};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::header::AUTHORIZATION;
use http::HeaderValue;
use http_body_util::Empty;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_client_credentials::{ClientCredentialsLayer, Config};

const TOKEN: &str = "super-secret-token-value";

#[tokio::test]
async fn debug_output_never_contains_the_secret_or_the_token() {
    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply::json(200, format!(r#"{{"access_token":"{TOKEN}","expires_in":1}}"#)),
        _ => Reply::json(
            401,
            format!(r#"{{"error":"invalid_client","error_description":"{CLIENT_SECRET}?"}}"#),
        ),
    })
    .await;
    let builder = tokens.config().scope("read");
    let builder_debug = format!("{builder:?}");
    let config = builder.build().unwrap();
    let layer = ClientCredentialsLayer::new(config.clone());
    let service = api_client(&layer);
    let token = layer.token().await.unwrap();
    assert_eq!(token.secret(), TOKEN);
    assert!(token.header_value().is_sensitive());

    let debug = [
        builder_debug,
        format!("{config:?}"),
        format!("{layer:?}"),
        format!("{service:?}"),
        format!("{token:?}"),
        format!("{:?}", token.header_value()),
        format!("{:?}", layer.stats()),
    ];
    for text in &debug {
        assert!(!text.contains(CLIENT_SECRET), "secret in {text}");
        assert!(!text.contains(TOKEN), "token in {text}");
    }
}

#[tokio::test]
async fn errors_never_contain_the_secret() {
    let tokens =
        TokenServer::start_with(|_| Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let error = layer.token().await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
}

#[tokio::test]
async fn a_request_with_its_own_authorization_is_left_alone() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let request = http::Request::get(&api.url)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Empty::new())
        .unwrap();
    let (status, auth) = get_with(&api_client(&layer), request).await.unwrap();
    assert_eq!((status, auth.as_str()), (200, "Basic dXNlcjpwYXNz"));
    assert_eq!(tokens.count(), 0, "no token was needed");
}

#[tokio::test]
async fn with_a_fresh_token_a_request_keeps_every_authorization_value_it_brought() {
    let tokens = TokenServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    layer.warm_up().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let mut service = layer.layer(service_fn(move |request: http::Request<()>| {
        let values = request.headers().get_all(AUTHORIZATION).iter();
        let values = values.map(|value| value.to_str().unwrap().to_owned()).collect::<Vec<_>>();
        recorded.lock().unwrap().push(values);
        async { Ok::<_, Infallible>(http::Response::new(())) }
    }));
    let brought = [vec![], vec!["Basic a"], vec!["Basic a", "Basic b"], vec![]];
    for values in &brought {
        let mut request = http::Request::new(());
        for value in values {
            request.headers_mut().append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        service.ready().await.unwrap().call(request).await.unwrap();
    }
    let ours = "Bearer token-1".to_owned();
    let expected = [
        vec![ours.clone()],
        vec!["Basic a".into()],
        vec!["Basic a".into(), "Basic b".into()],
        vec![ours],
    ];
    assert_eq!(*seen.lock().unwrap(), expected);
    assert_eq!(tokens.count(), 1);
}

#[test]
fn plain_http_to_a_remote_token_url_is_a_config_error() {
    let error =
        Config::builder("http://auth.example.com/token", "id", "secret").build().unwrap_err();
    assert_eq!(error.field(), "token_url");
    Config::builder("http://auth.example.com/token", "id", "secret")
        .danger_allow_plain_http()
        .build()
        .unwrap();
}
