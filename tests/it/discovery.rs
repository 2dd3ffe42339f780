//! Discovery (RFC 8414, OpenID Connect Discovery) against metadata documents served on
//! loopback: which path is read, which documents are refused, and which client authentication
//! method a configuration ends up with.

use crate::common;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use common::{TokenServer, CLIENT_ID, CLIENT_SECRET};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, Config, DiscoveryErrorKind, ServerMetadata,
};

/// Serves the documents `documents(issuer)` gives, each at its path, on 127.0.0.1; every other
/// path is a 404. The issuer is `http://127.0.0.1:<port><issuer_path>`.
async fn serve_metadata(
    issuer_path: &str,
    documents: impl FnOnce(&str) -> Vec<(&'static str, Value)>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}{issuer_path}", listener.local_addr().unwrap());
    let mut router = Router::new();
    for (path, document) in documents(&issuer) {
        router = router.route(path, get(move || async move { Json(document) }));
    }
    let router = router.fallback(|| async { StatusCode::NOT_FOUND });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    issuer
}

fn document(issuer: &str, token_endpoint: &str) -> Value {
    json!({"issuer": issuer, "token_endpoint": token_endpoint})
}

async fn discover(issuer: &str) -> ServerMetadata {
    Config::discover(issuer).await.unwrap()
}

/// A new P-256 signing key.
#[cfg(feature = "jwt")]
fn es256_key() -> tower_client_credentials::ClientKey {
    use tower_client_credentials::{ClientKey, SigningAlgorithm};

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    ClientKey::from_pem(key.serialize_pem(), SigningAlgorithm::Es256).unwrap()
}

#[tokio::test]
async fn the_rfc_8414_document_is_read_before_the_openid_configuration() {
    let issuer = serve_metadata("", |issuer| {
        vec![
            (
                "/.well-known/oauth-authorization-server",
                document(issuer, "https://a.example/oauth"),
            ),
            ("/.well-known/openid-configuration", document(issuer, "https://a.example/oidc")),
        ]
    })
    .await;

    let metadata = discover(&issuer).await;

    assert_eq!(metadata.issuer(), issuer);
    assert_eq!(metadata.token_endpoint(), "https://a.example/oauth");
}

#[tokio::test]
async fn an_issuer_with_a_path_is_found_at_either_well_known_path() {
    // RFC 8414 inserts the well-known segment before the issuer's path...
    let issuer = serve_metadata("/tenants/acme", |issuer| {
        let document = document(issuer, "https://a.example/oauth");
        vec![("/.well-known/oauth-authorization-server/tenants/acme", document)]
    })
    .await;
    assert_eq!(discover(&issuer).await.token_endpoint(), "https://a.example/oauth");

    // ...OpenID Connect appends it (Keycloak realms, Okta authorization servers).
    let issuer = serve_metadata("/realms/acme", |issuer| {
        let document = document(issuer, "https://a.example/oidc");
        vec![("/realms/acme/.well-known/openid-configuration", document)]
    })
    .await;
    let metadata = discover(&issuer).await;
    assert_eq!(metadata.token_endpoint(), "https://a.example/oidc");
    assert_eq!(metadata.token_endpoint_auth_methods_supported(), ["client_secret_basic"]);
}

#[tokio::test]
async fn a_document_naming_another_issuer_is_refused() {
    let issuer = serve_metadata("", |_| {
        let document = document("https://attacker.example", "https://attacker.example/token");
        vec![("/.well-known/openid-configuration", document)]
    })
    .await;

    let error = Config::discover(&issuer).await.unwrap_err();

    assert_eq!(error.kind(), DiscoveryErrorKind::IssuerMismatch);
    let message = error.to_string();
    assert!(message.contains("https://attacker.example"), "{message}");
    assert!(message.contains(&format!("not {issuer}")), "{message}");
}

#[tokio::test]
async fn a_document_without_a_token_endpoint_is_refused() {
    let issuer = serve_metadata("", |issuer| {
        vec![("/.well-known/oauth-authorization-server", json!({"issuer": issuer}))]
    })
    .await;

    let error = Config::discover(&issuer).await.unwrap_err();

    assert_eq!(error.kind(), DiscoveryErrorKind::MissingTokenEndpoint);
    assert!(error.to_string().contains("has no `token_endpoint`"), "{error}");
}

#[tokio::test]
async fn no_document_at_either_path_names_both() {
    let issuer = serve_metadata("/realms/acme", |_| Vec::new()).await;

    let error = Config::discover(&issuer).await.unwrap_err();

    assert_eq!(error.kind(), DiscoveryErrorKind::NotFound);
    let message = error.to_string();
    assert!(message.contains("/.well-known/oauth-authorization-server/realms/acme (HTTP 404"));
    assert!(message.contains("/realms/acme/.well-known/openid-configuration (HTTP 404"));
}

#[tokio::test]
async fn an_issuer_that_refuses_connections_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let error = Config::discover(&issuer).await.unwrap_err();

    assert_eq!(error.kind(), DiscoveryErrorKind::Unreachable);
    assert!(error.to_string().contains(&issuer), "{error}");
}

#[tokio::test]
async fn discovery_picks_a_listed_method_the_credentials_fit() {
    let tokens = TokenServer::start().await;
    let token_url = tokens.url.clone();
    let issuer = serve_metadata("", move |issuer| {
        let mut document = document(issuer, &token_url);
        document["token_endpoint_auth_methods_supported"] =
            json!(["private_key_jwt", "client_secret_post"]);
        vec![("/.well-known/openid-configuration", document)]
    })
    .await;
    let metadata = discover(&issuer).await;

    // A secret: of the two, only client_secret_post fits.
    let config = metadata.builder(CLIENT_ID, CLIENT_SECRET).build().unwrap();
    assert_eq!(config.auth_method(), AuthMethod::ClientSecretPost);
    assert_eq!(config.token_url().as_str(), tokens.url);
    ClientCredentialsLayer::new(config).warm_up().await.unwrap();
    assert_eq!(tokens.received()[0].param("client_secret"), Some(CLIENT_SECRET));

    // A choice of the user's is kept.
    let chosen =
        metadata.builder(CLIENT_ID, CLIENT_SECRET).auth_method(AuthMethod::ClientSecretBasic);
    assert_eq!(chosen.build().unwrap().auth_method(), AuthMethod::ClientSecretBasic);

    // No credential that fits: the error says what the server accepts.
    let error = metadata.builder_without_secret(CLIENT_ID).build().unwrap_err();
    assert_eq!(error.field(), "auth_method");
    assert!(error.to_string().contains("private_key_jwt, client_secret_post"), "{error}");
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn discovery_prefers_a_key_to_a_secret_when_the_server_takes_both() {
    let issuer = serve_metadata("", |issuer| {
        let mut document = document(issuer, "https://idp.example/token");
        document["token_endpoint_auth_methods_supported"] =
            json!(["client_secret_basic", "private_key_jwt"]);
        vec![("/.well-known/oauth-authorization-server", document)]
    })
    .await;
    let key = es256_key();

    let config = discover(&issuer).await.builder(CLIENT_ID, CLIENT_SECRET).client_key(key).build();

    assert_eq!(config.unwrap().auth_method(), AuthMethod::PrivateKeyJwt);
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_key_whose_algorithm_the_server_does_not_accept_is_refused_when_the_config_is_built() {
    let accepting = |algorithms: Value| {
        serve_metadata("", move |issuer| {
            let mut document = document(issuer, "https://idp.example/token");
            document["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
            document["token_endpoint_auth_signing_alg_values_supported"] = algorithms;
            vec![("/.well-known/oauth-authorization-server", document)]
        })
    };
    let key = es256_key();

    let rsa_only = discover(&accepting(json!(["RS256", "PS256"])).await).await;
    let error = rsa_only.builder_without_secret(CLIENT_ID).client_key(key.clone()).build();
    let error = error.unwrap_err();
    assert_eq!(error.field(), "client_key");
    assert!(
        error.to_string().contains("ES256, and the server accepts only RS256, PS256"),
        "{error}"
    );

    let with_es256 = discover(&accepting(json!(["RS256", "ES256"])).await).await;
    let config = with_es256.builder_without_secret(CLIENT_ID).client_key(key).build().unwrap();
    assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);
}
