//! A tonic gRPC client that sends a client credentials bearer token with every call, sharing
//! its token with a hyper client.
//!
//! ```text
//! cargo run --example tonic_channel
//! ```
//!
//! It starts three servers on loopback: a token endpoint, a gRPC server (the standard
//! `grpc.health.v1` service, behind an interceptor that accepts only tokens that endpoint
//! issued) and a plain HTTP API. It calls the gRPC server without the layer (refused with
//! `Unauthenticated`) and with it, then the HTTP API through hyper-util's client with a clone of
//! the same layer: clones share one cache, so both clients make one token request between them.
//!
//! The pattern, for any generated client:
//!
//! ```text
//! let channel = Channel::from_static("https://orders.example.com").connect().await?;
//! let layer = ClientCredentialsLayer::new(config);
//! let mut orders = OrdersClient::new(ServiceBuilder::new().layer(layer.clone()).service(channel));
//! ```
//!
//! - A `Channel` is cheap to clone (clones share the connection), as the layer needs.
//! - When no token can be had, tonic turns the layer's error into a `Status` with
//!   `Code::Unknown` whose `source()` is the [`TokenError`]: downcast it, as below.
//! - Generated clients made with `new` send requests with a path only; the channel adds the
//!   origin later. With [`allowed_origin`](tower_client_credentials::ConfigBuilder::allowed_origin)
//!   set, make the client with `with_origin(service, origin)` so the layer can see where each
//!   request goes (a request without an origin gets no token).

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{ServiceBuilder, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config, TokenError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let issued = Issued::default();
    let token_url = token_endpoint(&issued).await?;
    let channel = grpc_server(&issued).await?;
    let api_url = http_api(&issued).await?;
    println!("token endpoint {token_url}\nprotected HTTP API {api_url}");

    let config =
        Config::builder(&token_url, "inventory-service", "s3cret").scope("health:read").build()?;
    let layer = ClientCredentialsLayer::new(config);

    // Without the layer: the server's interceptor refuses the call.
    let refused = HealthClient::new(channel.clone()).check(HealthCheckRequest::default()).await;
    match refused {
        Err(status) => {
            println!("\ngRPC without the layer: {:?} ({})", status.code(), status.message())
        }
        Ok(_) => return Err("the gRPC server accepted a call without a token".into()),
    }

    // With it: the same channel, wrapped.
    let mut health =
        HealthClient::new(ServiceBuilder::new().layer(layer.clone()).service(channel.clone()));
    let serving = health.check(HealthCheckRequest::default()).await?.into_inner();
    println!("gRPC with the layer:    {:?}", serving.status());

    // A hyper client wrapped in a clone of the layer reuses the token.
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let api = ServiceBuilder::new().layer(layer.clone()).service(client);
    let response = api.oneshot(http::Request::get(&api_url).body(Empty::new())?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("HTTP with the layer:    {status} {}", String::from_utf8_lossy(&body));
    println!("token requests for both clients: {}", issued.count());

    // When no token can be had, the gRPC caller gets `Code::Unknown` with the `TokenError`
    // inside: here, credentials the token endpoint refuses.
    let config = Config::builder(&token_url, "inventory-service", "wrong").build()?;
    let layer = ClientCredentialsLayer::new(config);
    let mut health = HealthClient::new(ServiceBuilder::new().layer(layer).service(channel));
    let status = health.check(HealthCheckRequest::default()).await.unwrap_err();
    match status.source().and_then(|e| e.downcast_ref::<TokenError>()) {
        Some(error) => {
            println!("\nwith bad credentials: {:?}, token error: {error}", status.code())
        }
        None => println!("\nwith bad credentials: {status}"),
    }
    Ok(())
}

/// The tokens the token endpoint has issued, so the servers can tell a real one.
#[derive(Clone, Default)]
struct Issued(Arc<Mutex<HashSet<String>>>);

impl Issued {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether `Authorization: <value>` carries a token that was issued.
    fn accepts(&self, authorization: Option<&str>) -> bool {
        let token = authorization.and_then(|v| v.strip_prefix("Bearer "));
        token.is_some_and(|t| self.0.lock().unwrap().contains(t))
    }
}

/// A token endpoint for one client, `inventory-service` with secret `s3cret`.
async fn token_endpoint(issued: &Issued) -> Result<String, BoxError> {
    let issued = issued.clone();
    let issue = move |headers: HeaderMap| async move {
        // "inventory-service:s3cret", as client_secret_basic sends it.
        let expected = "Basic aW52ZW50b3J5LXNlcnZpY2U6czNjcmV0";
        if headers.get("authorization").is_none_or(|v| v != expected) {
            let body = serde_json::json!({"error": "invalid_client"});
            return (StatusCode::UNAUTHORIZED, Json(body));
        }
        let token = format!("token-{:016x}", fastrand::u64(..));
        issued.0.lock().unwrap().insert(token.clone());
        let body = serde_json::json!({
            "access_token": token, "token_type": "Bearer", "expires_in": 3600,
        });
        (StatusCode::OK, Json(body))
    };
    let url = serve(Router::new().route("/oauth/token", post(issue))).await?;
    Ok(format!("{url}/oauth/token"))
}

/// The gRPC health service behind an interceptor that checks the bearer token.
async fn grpc_server(issued: &Issued) -> Result<Channel, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let issued = issued.clone();
    let check_token = move |request: Request<()>| {
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if issued.accepts(authorization) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("a valid bearer token is required"))
        }
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder()
        .add_service(InterceptedService::new(health, check_token))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    Ok(Channel::from_shared(url)?.connect().await?)
}

/// An HTTP API that answers only requests with an issued token.
async fn http_api(issued: &Issued) -> Result<String, BoxError> {
    let issued = issued.clone();
    let things = move |headers: HeaderMap| async move {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        if issued.accepts(authorization) {
            (StatusCode::OK, "the things")
        } else {
            (StatusCode::UNAUTHORIZED, "")
        }
    };
    let url = serve(Router::new().route("/things", get(things))).await?;
    Ok(format!("{url}/things"))
}

async fn serve(router: Router) -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}
