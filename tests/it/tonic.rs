//! The layer in front of a tonic `Channel`, against a real gRPC server on loopback (the gRPC
//! health service) whose interceptor accepts only bearer tokens that the loopback token
//! endpoint issued.

use crate::common;

use std::collections::HashSet;
use std::error::Error;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::ServiceBuilder;
use tower_client_credentials::{ClientCredentialsLayer, TokenError};

use common::{ApiServer, Reply, TokenServer};

/// The tokens the token endpoint has issued: random, so only a token really fetched passes.
#[derive(Clone, Default)]
struct Issued(Arc<Mutex<HashSet<String>>>);

impl Issued {
    fn contains(&self, token: &str) -> bool {
        self.0.lock().unwrap().contains(token)
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

async fn token_server(issued: &Issued) -> TokenServer {
    let issued = issued.clone();
    TokenServer::start_with(move |n| {
        let token = format!("grpc-{n}-{:016x}", fastrand::u64(..));
        issued.0.lock().unwrap().insert(token.clone());
        Reply::json(
            200,
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
        )
    })
    .await
}

/// A tonic server on 127.0.0.1 with the health service behind an interceptor that checks the
/// bearer token. Returns a channel to it.
async fn grpc_server(issued: &Issued) -> Channel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issued = issued.clone();
    let check_token = move |request: Request<()>| {
        let bearer = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        match bearer.and_then(|v| v.strip_prefix("Bearer ")) {
            Some(token) if issued.contains(token) => Ok(request),
            Some(_) => Err(Status::unauthenticated("unknown token")),
            None => Err(Status::unauthenticated("no bearer token")),
        }
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder()
        .add_service(InterceptedService::new(health, check_token))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

fn overall_health() -> HealthCheckRequest {
    HealthCheckRequest { service: String::new() }
}

#[tokio::test]
async fn a_health_check_through_the_layer_carries_a_token_the_server_accepts() {
    let issued = Issued::default();
    let tokens = token_server(&issued).await;
    let channel = grpc_server(&issued).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let mut health = HealthClient::new(ServiceBuilder::new().layer(layer).service(channel));
    let response = health.check(overall_health()).await.expect("the server accepts the token");

    assert_eq!(response.into_inner().status(), ServingStatus::Serving);
    assert_eq!(tokens.count(), 1);
}

#[tokio::test]
async fn without_the_layer_the_server_answers_unauthenticated() {
    let issued = Issued::default();
    let channel = grpc_server(&issued).await;

    let status = HealthClient::new(channel).check(overall_health()).await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn one_layer_gives_a_channel_and_a_hyper_client_one_token() {
    let issued = Issued::default();
    let tokens = token_server(&issued).await;
    let channel = grpc_server(&issued).await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let mut health = HealthClient::new(ServiceBuilder::new().layer(layer.clone()).service(channel));
    health.check(overall_health()).await.expect("gRPC call");
    let (status, authorization) = common::get(&common::api_client(&layer), &api.url).await.unwrap();

    assert_eq!(tokens.count(), 1, "one cache, one token request");
    let token = issued.all().pop().unwrap();
    assert_eq!((status, authorization), (200, format!("Bearer {token}")));
}

#[tokio::test]
async fn a_token_failure_reaches_the_grpc_caller_with_the_token_error_inside() {
    let issued = Issued::default();
    let tokens =
        TokenServer::start_with(|_| Reply::json(401, r#"{"error":"invalid_client"}"#)).await;
    let channel = grpc_server(&issued).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let mut health = HealthClient::new(ServiceBuilder::new().layer(layer).service(channel));
    let status = health.check(overall_health()).await.unwrap_err();

    // tonic turns a service error it does not know into `Code::Unknown`, keeping it as the
    // status's source.
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let token_error = status.source().and_then(|e| e.downcast_ref::<TokenError>());
    assert_eq!(token_error.and_then(TokenError::oauth_error), Some("invalid_client"));
}
