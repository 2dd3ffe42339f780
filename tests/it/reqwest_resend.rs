//! The reqwest middleware resends a request after a 401 without reading the 401's body, which
//! may never end; a request whose body streams cannot be resent, and its 401 comes back
//! readable.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::any;
use axum::Router;
use common::{reqwest_client, serve_on, Reply, TokenServer};
use hyper::body::Bytes;
use tower_client_credentials::{ClientCredentialsLayer, TokenParams};

/// An API whose 401 body streams and never ends. The middleware must not read it before
/// resending: the resend, with the new token, is served.
#[tokio::test]
async fn a_401_with_an_endless_streaming_body_is_resent_without_reading_it() {
    type Seen = Arc<Mutex<Vec<String>>>;
    async fn api(State(seen): State<Seen>, headers: HeaderMap) -> Response<Body> {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        seen.lock().unwrap().push(auth.clone());
        if auth == "Bearer token-1" || auth.contains("always") {
            let first = futures_util::stream::iter([Ok::<_, std::io::Error>("denied, ")]);
            let endless = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .body(Body::from_stream(endless))
                .unwrap();
        }
        Response::new(Body::from(auth))
    }
    let tokens = TokenServer::start().await;
    let seen = Seen::default();
    let addr =
        serve_on("127.0.0.1:0", Router::new().fallback(any(api)).with_state(seen.clone())).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = reqwest_client(&layer);

    let url = format!("http://{addr}/things");
    let bounded = Duration::from_secs(30);
    let response = tokio::time::timeout(bounded, client.post(&url).body("again").send())
        .await
        .expect("the endless 401 body was waited for")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Bearer token-2");
    assert_eq!(*seen.lock().unwrap(), ["Bearer token-1", "Bearer token-2"]);
    assert_eq!(tokens.count(), 2);

    // A streaming request body cannot be resent: the endless 401 comes back, readable.
    // Tokens for the audience `always` are always rejected, with the same endless body.
    tokens.respond_with(|n| {
        let body =
            format!(r#"{{"access_token":"always-{n}","token_type":"Bearer","expires_in":3600}}"#);
        Reply::json(200, body)
    });
    let before = seen.lock().unwrap().len();
    let frame = hyper::body::Frame::data(Bytes::from_static(b"x"));
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(frame)]);
    let stream = reqwest::Body::wrap(http_body_util::StreamBody::new(chunks));
    let always = TokenParams::new().audience("always");
    let mut response = tokio::time::timeout(
        bounded,
        client.post(&url).body(stream).with_extension(always.clone()).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 401);
    let first = tokio::time::timeout(bounded, response.chunk()).await.unwrap().unwrap();
    assert_eq!(first.as_deref(), Some(&b"denied, "[..]));
    drop(response);
    assert_eq!(seen.lock().unwrap().len(), before + 1, "a stream is not resent");
    assert_eq!(layer.stats_for(&always).unwrap().invalidations, 1);
}
