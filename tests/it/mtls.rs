//! Mutual TLS client authentication (RFC 8705 §2) against a rustls token endpoint on loopback
//! that requires a client certificate: a test CA, made at run time with rcgen, issues the
//! server's certificate and the client's.

use crate::common;
use common::mtls::{Issued, MtlsServer, TestCa};
use common::{Folder, Reply};

use axum::routing::get;
use axum::{Json, Router};
use rcgen::ExtendedKeyUsagePurpose;
use tokio::net::TcpListener;
use tower_client_credentials::{AuthMethod, ClientCredentialsLayer, Config, TokenErrorKind};

const CLIENT_ID: &str = "mtls-client";

fn mtls_token(_: usize, _: &[(String, String)]) -> Reply {
    Reply::json(200, r#"{"access_token":"mtls-token","token_type":"Bearer"}"#)
}

async fn start(ca: &TestCa, registered: &Issued) -> MtlsServer {
    MtlsServer::start(ca, registered, CLIENT_ID, mtls_token).await
}

#[tokio::test]
async fn with_its_certificate_the_client_gets_a_token_without_a_secret() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = start(&ca, &client).await;
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate(client.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);

    let token = ClientCredentialsLayer::new(config).token().await.unwrap();

    assert_eq!(token.secret(), "mtls-token");
    let request = &server.requests()[0];
    assert_eq!(request.peer_certificate.as_deref(), Some(client.certificate.as_ref()));
    let names: Vec<&str> = request.form.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["grant_type", "client_id"], "client_id in the body and no secret");
}

#[tokio::test]
async fn without_a_certificate_the_handshake_fails_with_a_clear_error() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = start(&ca, &client).await;
    let config = Config::builder(&server.url, CLIENT_ID, "a-secret")
        .auth_method(AuthMethod::ClientSecretPost)
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.unwrap_err();

    assert!(matches!(error.kind(), TokenErrorKind::Connect | TokenErrorKind::Transport), "{error}");
    let message = error.to_string();
    assert!(message.contains(&server.url), "{message}");
    assert!(message.contains("CertificateRequired"), "{message}");
    assert!(server.requests().is_empty());
    let failures = server.handshake_failures();
    assert!(failures[0].contains("peer sent no certificates"), "{failures:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let registered = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = start(&ca, &registered).await;
    let stranger =
        TestCa::new("another CA", CLIENT_ID).issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate(stranger.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.unwrap_err();

    assert!(error.to_string().contains("UnknownCA"), "{error}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn discovery_sends_a_client_with_a_certificate_to_the_mtls_alias() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = start(&ca, &client).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/no-certificates-here"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "tls_client_auth"],
        "mtls_endpoint_aliases": {"token_endpoint": server.url},
    });
    let router = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(move || async move { Json(document) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let metadata = Config::discover(&issuer).await.unwrap();
    let config = metadata
        .builder_without_secret(CLIENT_ID)
        .client_certificate(client.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    assert_eq!(config.token_url().as_str(), server.url);
    assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);
    let token = ClientCredentialsLayer::new(config).token().await.unwrap();
    assert_eq!(token.secret(), "mtls-token");
}

/// cert-manager renews the client certificate in place: the next token request presents the
/// new one, over a new connection, without a restart.
#[tokio::test]
async fn a_client_certificate_renewed_in_its_files_is_presented_at_the_next_token_request() {
    let ca = TestCa::new("test CA", CLIENT_ID);
    let first = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = start(&ca, &first).await;
    let folder = Folder::new("mtls-renewal");
    let (chain, key) = (folder.path("tls.crt"), folder.path("tls.key"));
    let write = |issued: &Issued| {
        common::rotate(&chain, &issued.certificate_pem);
        common::rotate(&key, &issued.key_pem());
    };
    write(&first);
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate_files(&chain, &key)
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    layer.token().await.unwrap();

    let renewed = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    write(&renewed);
    server.register(&renewed);
    // Past the token's default lifetime, then real time again: the connection needs it.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(300)).await;
    tokio::time::resume();
    layer.token().await.expect("the renewed certificate");

    let presented = server.presented();
    assert_eq!(presented, [Some(first.certificate.to_vec()), Some(renewed.certificate.to_vec())]);
}
