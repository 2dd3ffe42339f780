//! reqwest with the layer's token, through reqwest-middleware: one token for a reqwest client and
//! a hyper client, a `401` that replaces the token and resends the request, and a streaming body
//! that cannot be resent.
//!
//! ```text
//! cargo run --example reqwest_middleware --features reqwest-middleware
//! ```
//!
//! It runs offline: on loopback it starts a token endpoint that issues `token-1`, `token-2`, ...
//! and an API that accepts the tokens issued and not revoked, and can revoke one (as a server
//! does when a token leaks, or its signing key rotates).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::ClientBuilder;
use tower::{Layer, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config};

/// What the servers share: the tokens issued, those revoked, the `Authorization` the API saw.
#[derive(Clone, Default)]
struct Server(Arc<Mutex<Tokens>>);

#[derive(Default)]
struct Tokens {
    issued: usize,
    revoked: HashSet<String>,
    seen: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = Server::default();
    let token_url = serve(Router::new().route("/token", post(issue_token)), &server).await;
    let api = serve(Router::new().fallback(any(protected)), &server).await;
    let api = format!("{api}/orders");

    let config = Config::builder(format!("{token_url}/token"), "orders-service", "s3cret")
        .scope("orders:read")
        // At most one token is dropped per interval (default 5 s): an API that rejects every
        // token then costs one token request per interval. One second, to keep this short.
        .invalidation_interval(Duration::from_secs(1))
        .build()?;
    let layer = ClientCredentialsLayer::new(config);
    let reqwest =
        ClientBuilder::new(reqwest::Client::new()).with(layer.reqwest_middleware()).build();
    let hyper = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    println!("1. a reqwest client and a hyper client, one layer:");
    let status = reqwest.get(&api).send().await?.status();
    println!("   reqwest GET  -> {status}");
    let response = hyper.oneshot(http::Request::get(&api).body(Empty::new())?).await?;
    println!("   hyper   GET  -> {}", response.status());
    println!("   token requests: {} (one token for both)", layer.stats().tokens_fetched);

    println!("2. the server revokes token-1; a POST with a body that can be sent again:");
    server.revoke("token-1");
    let status = reqwest.post(&api).body(r#"{"item":"book"}"#).send().await?.status();
    println!("   reqwest POST -> {status}, after the API saw {}", server.seen_since(3));
    println!("   (the 401 dropped token-1; the request went again with token-2)");

    tokio::time::sleep(Duration::from_secs(1)).await; // the invalidation interval
    println!("3. a second later the server revokes token-2; a POST with a streaming body:");
    server.revoke("token-2");
    let status = reqwest.post(&api).body(streaming_body()).send().await?.status();
    println!("   reqwest POST -> {status}: a stream cannot be sent twice, so the 401 comes back");
    let status = reqwest.post(&api).body(streaming_body()).send().await?.status();
    println!("   the next one -> {status}, with {}", server.seen_since(5));

    let stats = layer.stats();
    println!(
        "token requests {}, invalidations after a 401 {}, requests that waited {}",
        stats.tokens_fetched, stats.invalidations, stats.requests_waited
    );
    Ok(())
}

/// A body of chunks that reqwest cannot clone.
fn streaming_body() -> reqwest::Body {
    let chunks = ["{\"item\":", "\"pen\"}"].map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
    reqwest::Body::wrap(StreamBody::new(futures_util::stream::iter(chunks)))
}

impl Server {
    fn revoke(&self, token: &str) {
        self.0.lock().unwrap().revoked.insert(token.to_owned());
    }

    /// The tokens the API saw from the `n`th request (from 1) on.
    fn seen_since(&self, n: usize) -> String {
        self.0.lock().unwrap().seen[n - 1..].join(" then ")
    }
}

async fn issue_token(State(server): State<Server>) -> Json<serde_json::Value> {
    let mut tokens = server.0.lock().unwrap();
    tokens.issued += 1;
    let token = format!("token-{}", tokens.issued);
    Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))
}

async fn protected(
    State(server): State<Server>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> StatusCode {
    let _ = body.collect().await; // read what was sent, streamed or not
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    let mut tokens = server.0.lock().unwrap();
    tokens.seen.push(token.unwrap_or("no token").to_owned());
    let valid = token.is_some_and(|t| {
        let n = t.strip_prefix("token-").and_then(|n| n.parse::<usize>().ok());
        n.is_some_and(|n| n <= tokens.issued) && !tokens.revoked.contains(t)
    });
    if valid {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn serve(router: Router<Server>, server: &Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = router.with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}
