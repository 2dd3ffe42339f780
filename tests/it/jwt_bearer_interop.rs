//! The JWT bearer grant (RFC 7523 §2.1) against a server written by others: Authlib's
//! `JWTBearerGrant`, served by `tests/interop/jwt_bearer_server.py`. Authlib finds the client
//! by the assertion's `iss`, verifies the signature with the RSA public key the test gave it,
//! and checks `aud` (the token endpoint), `exp` and `sub` (a user it knows, or the client
//! itself). Its tokens are JWTs naming the subject they were issued for, which the tests read.
//!
//! The same server authenticates a client-credentials client with Authlib's
//! `JWTBearerClientAssertion` (RFC 7523 §2.2), set to take only the issuer as the audience, as
//! draft-ietf-oauth-rfc7523bis has it: the crate's `assertion_audience("issuer")`.
//!
//! Needs Python 3 with pip: the first test to start installs the packages
//! `tests/interop/requirements.txt` pins under the cargo target directory
//! (`tests/it/setup.rs`).

use crate::common::interop_server::{jwt_claims, InteropServer};
use crate::common::{api_client, get, jump, rotate, ApiServer, Folder};
use crate::setup;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, ClientKey, Config, ConfigBuilder, ErrorClass, JwtBearer,
    SigningAlgorithm, TokenErrorKind,
};

/// The client whose assertions the JWT bearer grant takes (`iss`), with the test's RSA key.
const BEARER_CLIENT: &str = "bearer-client";
/// A client-credentials client authenticating with private_key_jwt, the same key.
const ASSERTION_CLIENT: &str = "assertion-client";
/// A user the server knows.
const ALICE: &str = "alice@example.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long the server's tokens last.
const LIFETIME: Duration = Duration::from_secs(600);

/// `tests/interop/jwt_bearer_server.py`, running.
struct BearerServer {
    server: InteropServer,
    token_url: String,
    /// The RSA key (PKCS #8 PEM) whose public key the server holds for both clients.
    key: String,
}

impl BearerServer {
    fn start() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let packages = setup::python_packages();
        let mut python = Command::new("python3");
        // `-s`: no user site-packages; the pinned packages come first on the path.
        python
            .arg("-s")
            .arg(setup::interop_dir().join("jwt_bearer_server.py"))
            .env("PYTHONPATH", packages)
            .env("INTEROP_CLIENT_PUBLIC_PEM", key.public_key_pem());
        let server = InteropServer::start(python, "python3 tests/interop/jwt_bearer_server.py");
        Self { token_url: server.token_url(), server, key: key.serialize_pem() }
    }

    fn client_key(&self) -> ClientKey {
        ClientKey::from_pem(&self.key, SigningAlgorithm::Rs256).unwrap()
    }

    /// A config for [`BEARER_CLIENT`] with the JWT bearer grant `grant`, without client
    /// authentication (Authlib's grant authenticates none: the assertion is the credential).
    fn bearer(&self, grant: JwtBearer) -> ConfigBuilder {
        Config::builder_without_secret(&self.token_url, BEARER_CLIENT).grant(grant)
    }
}

#[tokio::test]
async fn a_signed_assertion_gets_a_token_from_authlib_that_the_api_receives() {
    let server = BearerServer::start();
    let config = server
        .bearer(JwtBearer::signed())
        .client_key(server.client_key())
        .scope("api:read")
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::None);
    let layer = ClientCredentialsLayer::new(config);
    let api = ApiServer::start().await;

    let (status, body) = get(&api_client(&layer), &api.url).await.unwrap();

    assert_eq!(status, 200, "{body}");
    let token = layer.token().await.unwrap();
    assert_eq!(body, format!("Bearer {}", token.secret()));
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scope(), Some("api:read"));
    assert_eq!(token.lifetime(), LIFETIME);
    // No `subject`: the assertion's `sub` is its issuer, the client.
    let claims = jwt_claims(token.secret());
    assert_eq!(claims["sub"], BEARER_CLIENT, "{claims}");
    assert_eq!(claims["client_id"], BEARER_CLIENT, "{claims}");
    assert_eq!(claims["grant_type"], JWT_BEARER, "{claims}");
    assert_eq!(claims["scope"], "api:read", "{claims}");
    assert_eq!(server.server.token_answers(1), [200]);
}

#[tokio::test]
async fn the_subject_claim_names_the_user_the_token_is_for() {
    let server = BearerServer::start();
    let config = |subject: &str| {
        let grant = JwtBearer::signed().subject(subject);
        server.bearer(grant).client_key(server.client_key()).build().unwrap()
    };

    let token = ClientCredentialsLayer::new(config(ALICE)).token().await.expect("a known user");
    assert_eq!(jwt_claims(token.secret())["sub"], ALICE);

    // Authlib looks the subject up: one it does not know is refused.
    let error = ClientCredentialsLayer::new(config("mallory@example.com")).token().await;
    let error = error.expect_err("an unknown user");
    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert!(error.to_string().contains("sub"), "{error}");
    assert_eq!(server.server.token_answers(2), [200, 400]);
}

/// An assertion made elsewhere (here by the test, with the client's key) and put in a file,
/// read for each token request.
#[tokio::test]
async fn an_assertion_from_a_file_is_presented_and_read_again_for_the_next_token() {
    let server = BearerServer::start();
    let signing = EncodingKey::from_rsa_pem(server.key.as_bytes()).unwrap();
    let assertion = |sub: &str| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({
            "iss": BEARER_CLIENT, "sub": sub, "aud": server.token_url,
            "iat": now, "exp": now + 300, "jti": format!("{sub}-{now}"),
        });
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap()
    };
    let folder = Folder::new("jwt-bearer-assertion");
    let file = folder.path("assertion");
    rotate(&file, &assertion(ALICE));
    let config = server.bearer(JwtBearer::assertion_file(&file)).build().unwrap();
    assert_eq!(config.auth_method(), AuthMethod::None);
    let layer = ClientCredentialsLayer::new(config);

    let first = layer.token().await.expect("Authlib verifies the file's assertion");
    assert_eq!(jwt_claims(first.secret())["sub"], ALICE);

    rotate(&file, &assertion(BEARER_CLIENT));
    jump(LIFETIME).await; // the token expires on Tokio's clock
    let second = layer.token().await.expect("the rewritten assertion");
    assert_eq!(jwt_claims(second.secret())["sub"], BEARER_CLIENT, "the file was read again");
    assert_eq!(server.server.token_answers(2), [200, 200]);
}

#[tokio::test]
async fn an_assertion_signed_with_another_key_is_refused_as_invalid_grant() {
    let server = BearerServer::start();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let other = ClientKey::from_pem(other.serialize_pem(), SigningAlgorithm::Rs256).unwrap();
    let config = server.bearer(JwtBearer::signed()).client_key(other).build().unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.expect_err("a foreign key");

    assert_eq!(error.kind(), TokenErrorKind::ErrorResponse, "{error}");
    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(error.class(), ErrorClass::Rejected);
    // Authlib gives no description for a bad signature.
    assert_eq!(server.server.wait_for_lines("refused", 1), ["invalid_grant"]);
}

/// Authlib checks `aud` against the audiences it is set to: the token endpoint, the crate's
/// default. Another audience is refused.
#[tokio::test]
async fn an_assertion_for_another_audience_is_refused_as_invalid_grant() {
    let server = BearerServer::start();
    let config = server
        .bearer(JwtBearer::signed())
        .client_key(server.client_key())
        .assertion_audience("https://elsewhere.test/token")
        .build()
        .unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.expect_err("not its audience");

    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert!(error.to_string().contains("aud"), "{error}");
}

/// draft-ietf-oauth-rfc7523bis: a client assertion whose sole audience is the issuer, typed
/// `client-authentication+jwt`. Authlib takes the audiences it is given (here the issuer
/// alone) and does not look at `typ`; the server prints the `typ` it received.
#[tokio::test]
async fn a_client_assertion_for_the_issuer_is_taken_where_the_issuer_is_the_audience() {
    let server = BearerServer::start();
    let config = |for_issuer: bool| {
        let mut builder = Config::builder_without_secret(&server.token_url, ASSERTION_CLIENT)
            .client_key(server.client_key())
            .scope("api:read");
        if for_issuer {
            builder = builder.issuer(&server.server.issuer).assertion_audience("issuer");
        }
        builder.build().unwrap()
    };
    assert_eq!(config(true).auth_method(), AuthMethod::PrivateKeyJwt);

    let token = ClientCredentialsLayer::new(config(true)).token().await;

    let token = token.expect("Authlib takes an assertion for the issuer");
    assert_eq!(jwt_claims(token.secret())["client_id"], ASSERTION_CLIENT);
    assert_eq!(token.scope(), Some("api:read"));
    // The default audience, the token endpoint, is not one this server takes.
    let error = ClientCredentialsLayer::new(config(false)).token().await.expect_err("wrong aud");
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert_eq!(
        server.server.wait_for_lines("client_assertion", 2),
        ["typ=client-authentication+jwt", "typ=JWT"]
    );
}
