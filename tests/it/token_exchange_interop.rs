//! Token exchange (RFC 8693) against a server written by others: node-oidc-provider, with the
//! grant registered through its extension API by `tests/interop/token_exchange_server.mjs`.
//!
//! The provider authenticates the client (client_secret_basic, or private_key_jwt against the
//! public key it was given) and the script checks every parameter of RFC 8693 §2.1: the
//! subject and actor tokens are JWTs it verifies with the public key of the test's token
//! issuer, their types must fit them, an actor token needs its type, and the audiences,
//! resources, scopes and requested type must be ones it knows. It issues JWTs, so a test reads
//! in the token it got what the server made of the request (`sub`, `act`, `aud`, `client_id`).
//!
//! Needs Node.js and npm, like `interop`: the first test to start runs `npm ci` in
//! `tests/interop` when needed (`tests/it/setup.rs`).

use crate::common::interop_server::{jwt_claims, p256_public_jwk, InteropServer};
use crate::common::{api_client, get, jump, rotate, ApiServer, Folder};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, ClientKey, Config, ConfigBuilder, ErrorClass,
    SigningAlgorithm, TokenErrorKind, TokenExchange,
};

const SECRET: &str = "exchange-s3cret";
/// A client using client_secret_basic.
const BASIC_CLIENT: &str = "exchange-basic";
/// A client using private_key_jwt, with the public half of [`ExchangeServer::client_key`].
const KEY_JWT_CLIENT: &str = "exchange-key-jwt";
/// Who issues the subject and actor tokens the server takes.
const SUBJECT_ISSUER: &str = "https://sts.test";
/// An audience the server knows, and one whose tokens it issues as `jwt` whatever is asked.
const ORDERS: &str = "orders";
const LEGACY: &str = "legacy";
const ORDERS_RESOURCE: &str = "https://orders.test/";
/// How long the server's tokens last.
const LIFETIME: Duration = Duration::from_secs(300);

/// `tests/interop/token_exchange_server.mjs`, running.
struct ExchangeServer {
    server: InteropServer,
    token_url: String,
    /// The P-256 key (PKCS #8 PEM) whose public key the server holds for [`KEY_JWT_CLIENT`].
    client_key: String,
    /// Signs subject and actor tokens the server trusts.
    issuer_key: EncodingKey,
}

impl ExchangeServer {
    fn start() -> Self {
        let client_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (client_jwk, subject_jwk) =
            (p256_public_jwk(&client_key), p256_public_jwk(&issuer_key));
        let env = [
            ("INTEROP_CLIENT_SECRET", SECRET),
            ("INTEROP_CLIENT_JWK", &client_jwk),
            ("INTEROP_SUBJECT_JWK", &subject_jwk),
        ];
        let server = InteropServer::node("token_exchange_server.mjs", &env);
        Self {
            token_url: server.token_url(),
            server,
            client_key: client_key.serialize_pem(),
            issuer_key: EncodingKey::from_ec_pem(issuer_key.serialize_pem().as_bytes()).unwrap(),
        }
    }

    /// A token of the trusted issuer for `sub`, valid for `lifetime` seconds from now (in the
    /// past if negative), its header typed `typ` (`JWT`, or `at+jwt` for an access token).
    fn token(&self, sub: &str, typ: &str, lifetime: i64) -> String {
        signed(&self.issuer_key, sub, typ, lifetime)
    }

    /// A config for [`BASIC_CLIENT`] exchanging as `exchange` says.
    fn basic(&self, exchange: TokenExchange) -> ConfigBuilder {
        Config::builder(&self.token_url, BASIC_CLIENT, SECRET).grant(exchange)
    }
}

/// A JWT of [`SUBJECT_ISSUER`] signed (ES256) with `key`.
fn signed(key: &EncodingKey, sub: &str, typ: &str, lifetime: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({
        "iss": SUBJECT_ISSUER, "sub": sub, "aud": "sts-clients",
        "iat": now, "exp": now + lifetime,
    });
    let header = Header { typ: Some(typ.to_owned()), ..Header::new(Algorithm::ES256) };
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// A key whose tokens the server does not trust.
fn untrusted_key() -> EncodingKey {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap()
}

#[tokio::test]
async fn an_exchanged_token_issued_by_node_oidc_provider_reaches_the_api() {
    let server = ExchangeServer::start();
    let subject = server.token("alice", "JWT", 60);
    let exchange = TokenExchange::subject_token(subject, TokenExchange::JWT)
        .requested_token_type(TokenExchange::ACCESS_TOKEN);
    let config = server
        .basic(exchange)
        .audience(ORDERS)
        .resource(ORDERS_RESOURCE)
        .scope("api:read")
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::ClientSecretBasic);
    let layer = ClientCredentialsLayer::new(config);
    let api = ApiServer::start().await;

    let (status, body) = get(&api_client(&layer), &api.url).await.unwrap();

    assert_eq!(status, 200, "{body}");
    let token = layer.token().await.unwrap();
    assert_eq!(body, format!("Bearer {}", token.secret()), "the exchanged token, as issued");
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scope(), Some("api:read"));
    assert_eq!(token.lifetime(), LIFETIME);
    // What the server made of the request: the verified subject, the authenticated client,
    // the requested audience and resource, and the scope.
    let claims = jwt_claims(token.secret());
    assert_eq!(claims["iss"], server.server.issuer.as_str(), "{claims}");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["client_id"], BASIC_CLIENT, "{claims}");
    assert_eq!(claims["aud"], serde_json::json!([ORDERS, ORDERS_RESOURCE]), "{claims}");
    assert_eq!(claims["scope"], "api:read", "{claims}");
    assert!(claims.get("act").is_none(), "{claims}");
    assert_eq!(server.server.token_answers(1), [200]);
}

#[tokio::test]
async fn a_rotated_subject_token_file_is_what_the_next_token_request_presents() {
    let server = ExchangeServer::start();
    let folder = Folder::new("exchange-subject");
    let file = folder.path("token");
    rotate(&file, &server.token("alice", "JWT", 3600));
    // The type by its short name, as in a settings file.
    let exchange = TokenExchange::subject_token_file(&file, "jwt");
    let layer = ClientCredentialsLayer::new(server.basic(exchange).build().unwrap());

    let first = layer.token().await.expect("the first exchange");
    assert_eq!(jwt_claims(first.secret())["sub"], "alice");

    // The platform rotates the token; the one the layer holds expires on Tokio's clock (the
    // subject tokens' `exp` is on the system's, untouched).
    rotate(&file, &server.token("bob", "JWT", 3600));
    jump(LIFETIME).await;
    let second = layer.token().await.expect("the second exchange");

    assert_ne!(second.secret(), first.secret());
    assert_eq!(jwt_claims(second.secret())["sub"], "bob", "the file was read again");
    assert_eq!(server.server.token_answers(2), [200, 200]);
}

/// Delegation (RFC 8693 §1.1): the actor token's subject becomes the issued token's `act`;
/// here by a client authenticating with private_key_jwt, presenting a JWT access token as the
/// subject token and the actor token from a file.
#[tokio::test]
async fn an_actor_token_is_verified_and_named_as_the_actor_of_the_issued_token() {
    let server = ExchangeServer::start();
    let folder = Folder::new("exchange-actor");
    let actor_file = folder.path("actor");
    rotate(&actor_file, &server.token("gateway", "JWT", 60));
    let exchange =
        TokenExchange::subject_token(server.token("alice", "at+jwt", 60), "access_token")
            .actor_token_file(&actor_file, TokenExchange::JWT);
    let key = ClientKey::from_pem(&server.client_key, SigningAlgorithm::Es256).unwrap();
    let config = Config::builder_without_secret(&server.token_url, KEY_JWT_CLIENT)
        .grant(exchange)
        .client_key(key)
        .audience(ORDERS)
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);

    let token = ClientCredentialsLayer::new(config).token().await.expect("a delegated token");

    let claims = jwt_claims(token.secret());
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["act"], serde_json::json!({ "sub": "gateway" }), "{claims}");
    assert_eq!(claims["client_id"], KEY_JWT_CLIENT, "{claims}");
    assert_eq!(server.server.token_answers(1), [200]);
}

/// The server holds the types to what the tokens are: a JWT that is no JWT access token
/// presented as one is refused, and so is an actor token it cannot verify; both
/// `invalid_request`, as RFC 8693 §2.2.2 says of invalid subject and actor tokens.
#[tokio::test]
async fn subject_and_actor_tokens_the_server_cannot_accept_are_refused_as_invalid_request() {
    let server = ExchangeServer::start();
    let foreign = untrusted_key();
    let mistyped = TokenExchange::subject_token(server.token("alice", "JWT", 60), "access_token");
    let unverifiable = TokenExchange::subject_token(server.token("alice", "JWT", 60), "jwt")
        .actor_token(signed(&foreign, "gateway", "JWT", 60), "jwt");

    for (n, exchange) in [mistyped, unverifiable].into_iter().enumerate() {
        let layer = ClientCredentialsLayer::new(server.basic(exchange).build().unwrap());
        let error = layer.token().await.expect_err("the server must refuse it");
        assert_eq!(error.kind(), TokenErrorKind::ErrorResponse, "{error}");
        assert_eq!(error.oauth_error(), Some("invalid_request"), "{error}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
        assert_eq!(error.class(), ErrorClass::Rejected);
        assert_eq!(server.server.token_answers(n + 1).len(), n + 1);
    }
    // Why the token endpoint refused each: `<error>: <description>`.
    let refusals = server.server.wait_for_lines("refused", 2);
    assert!(refusals[0].contains("subject_token is not a JWT access token"), "{refusals:?}");
    assert!(refusals[1].contains("actor_token is invalid"), "{refusals:?}");
}

/// RFC 8693 §2.2.1: a token that is not an access token comes with `token_type` `N_A`; asked
/// for, it is taken, and sent as a bearer token.
#[tokio::test]
async fn a_requested_id_token_comes_as_n_a_and_is_sent_as_a_bearer_token() {
    let server = ExchangeServer::start();
    let exchange = TokenExchange::subject_token(server.token("alice", "JWT", 60), "jwt")
        .requested_token_type(TokenExchange::ID_TOKEN);
    let layer = ClientCredentialsLayer::new(server.basic(exchange).build().unwrap());
    let api = ApiServer::start().await;

    let (status, body) = get(&api_client(&layer), &api.url).await.unwrap();

    assert_eq!(status, 200, "{body}");
    let token = layer.token().await.unwrap();
    assert_eq!(token.token_type(), "N_A");
    assert_eq!(token.header_value(), format!("Bearer {}", token.secret()).as_str());
    assert_eq!(body, format!("Bearer {}", token.secret()));
    assert_eq!(token.lifetime(), LIFETIME);
    let claims = jwt_claims(token.secret());
    assert_eq!((&claims["sub"], &claims["aud"]), (&"alice".into(), &BASIC_CLIENT.into()));
    assert_eq!(server.server.token_answers(1), [200]);
}

/// The server issues `legacy` tokens as `jwt`, whatever was requested: asked for an access
/// token, the client refuses what it did not ask for; asking for no type, it takes it.
#[tokio::test]
async fn an_access_token_asked_for_and_another_type_issued_is_refused() {
    let server = ExchangeServer::start();
    let exchange = |requested: Option<&str>| {
        let exchange = TokenExchange::subject_token(server.token("alice", "JWT", 60), "jwt");
        match requested {
            Some(requested) => exchange.requested_token_type(requested),
            None => exchange,
        }
    };
    let strict = server.basic(exchange(Some("access_token"))).audience(LEGACY).build().unwrap();

    let error = ClientCredentialsLayer::new(strict).token().await.expect_err("not what was asked");

    assert_eq!(error.kind(), TokenErrorKind::IssuedTokenType, "{error}");
    assert_eq!(error.field(), Some("issued_token_type"));
    assert_eq!(error.class(), ErrorClass::Rejected);
    assert!(error.to_string().contains(TokenExchange::JWT), "{error}");
    assert_eq!(
        server.server.token_answers(1),
        [200],
        "the server answered; the client refused the answer"
    );

    let open = server.basic(exchange(None)).audience(LEGACY).build().unwrap();
    let token = ClientCredentialsLayer::new(open).token().await.expect("no type was asked for");
    assert_eq!(token.token_type(), "Bearer");
}

#[tokio::test]
async fn an_expired_subject_jwt_is_never_sent() {
    let server = ExchangeServer::start();
    let expired = TokenExchange::subject_token(server.token("alice", "JWT", -60), "jwt");
    let layer = ClientCredentialsLayer::new(server.basic(expired).build().unwrap());

    let error = layer.token().await.expect_err("an expired subject token");

    assert_eq!(error.kind(), TokenErrorKind::GrantToken, "{error}");
    assert_eq!(error.field(), Some("subject_token"));
    assert!(error.to_string().contains("expired"), "{error}");
    // Then a good one through another layer: the server's first answer is to that one.
    let fresh = TokenExchange::subject_token(server.token("alice", "JWT", 60), "jwt");
    let layer = ClientCredentialsLayer::new(server.basic(fresh).build().unwrap());
    layer.token().await.expect("a valid subject token");
    assert_eq!(
        server.server.token_answers(1),
        [200],
        "the expired subject token reached the server"
    );
}

/// A subject token source that has a new token when asked for a fresh one: what a platform
/// that has just rotated the token looks like to the client.
#[derive(Debug)]
struct RotatedSince {
    stale: String,
    fresh: String,
}

impl CredentialSource for RotatedSince {
    fn credential(&self, fresh: bool) -> CredentialFuture<'_> {
        let token = if fresh { &self.fresh } else { &self.stale };
        Box::pin(std::future::ready(Ok(token.clone().into())))
    }
}

/// RFC 8693 §2.2.2 has a server answer an invalid subject or actor token with
/// `invalid_request`, as this one does: the crate takes that, like `invalid_grant`, as a refusal
/// of what the grant presented, and asks its source for a fresh token.
#[tokio::test]
async fn a_subject_token_refused_as_rfc_8693_says_is_asked_for_fresh_and_sent_again() {
    let server = ExchangeServer::start();
    let foreign = untrusted_key();
    // Before the rotation, the platform's token was signed by a key the server no longer
    // trusts.
    let source = RotatedSince {
        stale: signed(&foreign, "alice", "JWT", 60),
        fresh: server.token("alice", "JWT", 60),
    };
    let exchange = TokenExchange::subject_token_source(source, "jwt");
    let layer = ClientCredentialsLayer::new(server.basic(exchange).build().unwrap());

    let token = layer.token().await;

    assert!(token.is_ok(), "refused once, then sent with the fresh token: {:?}", token.err());
    assert_eq!(server.server.token_answers(2), [400, 200]);
}
