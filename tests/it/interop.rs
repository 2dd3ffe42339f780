//! Against an authorization server written by others: node-oidc-provider (npm
//! `oidc-provider`, OpenID Certified), started on loopback by `tests/interop/oidc_server.mjs`.
//!
//! It checks client secrets, and decodes Basic credentials as RFC 6749 §2.3.1 says (form
//! decoding: `+` is a space, `%XX` a byte), so a secret full of characters that need encoding
//! shows that both sides agree on the encoding, for `client_secret_basic` and
//! `client_secret_post` alike. With the `jwt` feature it also verifies our client assertions:
//! `private_key_jwt` (ES256, against the public key it was given, refusing a replayed `jti`)
//! and `client_secret_jwt` (HS256 with the secret). With the `dpop` feature, it binds tokens
//! to our DPoP key (RFC 9449), after asking for a nonce.
//!
//! Needs Node.js and npm: the first test to start runs `npm ci` in `tests/interop` when its
//! `node_modules` is missing or was installed from another `package-lock.json` (`tests/setup`).
//! Without Node.js these tests fail and say so: they never skip silently.

use crate::common::interop_server::{p256_public_jwk, InteropServer};

use std::time::Duration;

use tower_client_credentials::{
    AuthMethod, ClientCredentialsLayer, Config, ConfigBuilder, ErrorClass, TokenErrorKind,
};

/// Every character class that form-encoding changes: `:` (the Basic separator), `/`, `+`
/// (a space once decoded), `%`, `&`, spaces. RFC 6749 Appendix A allows a secret only printable
/// ASCII (`VSCHAR`), and this server holds it to that.
const SECRET: &str = "b4sic:s3cret/with+special%chars & spaces";
const BASIC_CLIENT: &str = "interop client:basic";
const POST_CLIENT: &str = "interop-post";
/// A client using Basic authentication, for the crate with form-encoding turned off.
const RAW_CLIENT: &str = "interop-raw";
/// A client using `client_secret_jwt`.
#[cfg(feature = "jwt")]
const SECRET_JWT_CLIENT: &str = "interop-secret-jwt";
/// A client using `private_key_jwt`, with the public half of [`OidcServer::client_key`].
#[cfg(feature = "jwt")]
const KEY_JWT_CLIENT: &str = "interop-key-jwt";
/// A client whose tokens must be DPoP-bound.
#[cfg(feature = "dpop")]
const DPOP_CLIENT: &str = "interop-dpop";

/// `tests/interop/oidc_server.mjs`, running.
struct OidcServer {
    /// Held: dropping it stops the server.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    server: InteropServer,
    token_url: String,
    /// The P-256 private key (PKCS #8 PEM) whose public key the server holds for
    /// [`KEY_JWT_CLIENT`].
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    client_key: String,
}

impl OidcServer {
    fn start() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let jwk = p256_public_jwk(&key);
        let env = [("INTEROP_CLIENT_SECRET", SECRET), ("INTEROP_CLIENT_JWK", &jwk)];
        let server = InteropServer::node("oidc_server.mjs", &env);
        Self { token_url: server.token_url(), server, client_key: key.serialize_pem() }
    }

    /// What the server's introspection endpoint (RFC 7662) says of `token`, asked as
    /// [`DPOP_CLIENT`].
    #[cfg(feature = "dpop")]
    async fn introspect(&self, token: &str) -> serde_json::Value {
        use base64::Engine;
        let encode = |s: &str| {
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(DPOP_CLIENT),
            encode(SECRET)
        ));
        let body =
            form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish();
        let response = reqwest::Client::new()
            .post(format!("{}/introspection", self.token_url))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    fn config(&self, client_id: &str, secret: &str) -> ConfigBuilder {
        Config::builder(&self.token_url, client_id, secret).scope("api:read")
    }
}

#[tokio::test]
async fn client_secret_basic_form_encodes_an_id_and_secret_the_server_decodes() {
    let server = OidcServer::start();
    let layer = ClientCredentialsLayer::new(server.config(BASIC_CLIENT, SECRET).build().unwrap());

    let token = layer.token().await.expect("oidc-provider accepts the Basic credentials");

    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scope(), Some("api:read"));
    assert_eq!(token.lifetime(), Duration::from_secs(600));
    assert!(!token.secret().is_empty());
}

#[tokio::test]
async fn client_secret_post_sends_the_same_secret_in_the_form() {
    let server = OidcServer::start();
    let config = server.config(POST_CLIENT, SECRET).auth_method(AuthMethod::ClientSecretPost);
    let layer = ClientCredentialsLayer::new(config.build().unwrap());

    let token = layer.token().await.expect("oidc-provider accepts the form credentials");

    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.lifetime(), Duration::from_secs(600));
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_as_invalid_client() {
    let server = OidcServer::start();
    for (client, method) in
        [(BASIC_CLIENT, AuthMethod::ClientSecretBasic), (POST_CLIENT, AuthMethod::ClientSecretPost)]
    {
        let config = server.config(client, "b4sic:s3cret/with+special%chars &").auth_method(method);
        let layer = ClientCredentialsLayer::new(config.build().unwrap());

        let error = layer.token().await.expect_err("a wrong secret must be refused");

        assert_eq!(error.kind(), TokenErrorKind::ErrorResponse, "{method:?}: {error}");
        assert_eq!(error.oauth_error(), Some("invalid_client"), "{method:?}: {error}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(401), "{method:?}");
        assert_eq!(error.class(), ErrorClass::Rejected);
    }
}

#[tokio::test]
async fn without_form_encoding_a_decoding_server_cannot_read_the_secret() {
    let server = OidcServer::start();
    let config = server.config(RAW_CLIENT, SECRET).form_encode_basic_credentials(false);
    let layer = ClientCredentialsLayer::new(config.build().unwrap());

    let error = layer.token().await.expect_err("`%ch` is not valid form-encoding");

    // Why form-encoding is the default: a server that follows RFC 6749 decodes, and `+`, `%`
    // sent raw mean something else to it.
    assert_eq!(error.oauth_error(), Some("invalid_request"), "{error}");
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn private_key_jwt_signs_a_new_assertion_per_token_request_that_the_server_verifies() {
    use tower_client_credentials::{ClientKey, SigningAlgorithm};

    let server = OidcServer::start();
    let key = ClientKey::from_pem(&server.client_key, SigningAlgorithm::Es256).unwrap();
    let config = Config::builder_without_secret(&server.token_url, KEY_JWT_CLIENT)
        .scope("api:read")
        .client_key(key)
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);

    // Two layers, two token requests: oidc-provider refuses a replayed `jti`, so the second
    // succeeds only with an assertion of its own.
    for attempt in 1..=2 {
        let layer = ClientCredentialsLayer::new(config.clone());
        let token = layer.token().await.unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert_eq!(token.scope(), Some("api:read"));
        assert_eq!(token.lifetime(), Duration::from_secs(600));
    }

    // Another key, the same client: the server cannot verify the signature.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = ClientKey::from_pem(other.serialize_pem(), SigningAlgorithm::Es256);
    let config = Config::builder_without_secret(&server.token_url, KEY_JWT_CLIENT)
        .client_key(other.unwrap())
        .build()
        .unwrap();
    let error = ClientCredentialsLayer::new(config).token().await.expect_err("a foreign key");
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn client_secret_jwt_signs_with_the_secret_the_server_holds() {
    let server = OidcServer::start();
    let config = server.config(SECRET_JWT_CLIENT, SECRET).auth_method(AuthMethod::ClientSecretJwt);
    let layer = ClientCredentialsLayer::new(config.build().unwrap());

    let token = layer.token().await.expect("oidc-provider verifies the HS256 assertion");

    assert_eq!(token.lifetime(), Duration::from_secs(600));
}

/// Workload identity federation against an independent server: the assertion is signed by
/// someone else (here, the test) and written to a file that the crate reads for each token
/// request.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_client_assertion_written_to_a_file_by_someone_else_is_accepted() {
    use crate::common::rotate;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let server = OidcServer::start();
    let signing = EncodingKey::from_ec_pem(server.client_key.as_bytes()).unwrap();
    let dir = std::env::temp_dir().join(format!("tcc-interop-assertion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    let write_assertion = |jti: &str| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let claims = serde_json::json!({
            "iss": KEY_JWT_CLIENT, "sub": KEY_JWT_CLIENT, "aud": server.token_url,
            "jti": jti, "iat": now.as_secs(), "exp": now.as_secs() + 60,
        });
        rotate(
            &file,
            &jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap(),
        );
    };
    let config = Config::builder_without_secret(&server.token_url, KEY_JWT_CLIENT)
        .scope("api:read")
        .client_assertion_file(&file)
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);

    // oidc-provider takes each `jti` once: the second token request succeeds only because the
    // file was rewritten and read again.
    for jti in ["first", "second"] {
        write_assertion(jti);
        let token = ClientCredentialsLayer::new(config.clone()).token().await;
        assert_eq!(token.unwrap_or_else(|e| panic!("{jti}: {e}")).scope(), Some("api:read"));
    }
    let replayed = ClientCredentialsLayer::new(config).token().await.expect_err("a replayed jti");
    assert_eq!(replayed.oauth_error(), Some("invalid_client"), "{replayed}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "dpop")]
#[tokio::test]
async fn dpop_binds_the_token_to_our_key_after_one_nonce_round_trip() {
    use tower_client_credentials::{DpopAlgorithm, DpopKey};

    let server = OidcServer::start();
    // The client takes DPoP-bound tokens only: without a proof it gets none.
    let bearer = ClientCredentialsLayer::new(server.config(DPOP_CLIENT, SECRET).build().unwrap());
    let error = bearer.token().await.expect_err("this client must prove possession");
    assert_eq!(error.oauth_error(), Some("invalid_grant"), "{error}");
    assert_eq!(server.server.token_answers(1), [400]);

    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let config = server.config(DPOP_CLIENT, SECRET).dpop(key.clone()).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let token = layer.token().await.expect("oidc-provider issues a DPoP-bound token");
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(token.header_value(), format!("DPoP {}", token.secret()).as_str());
    assert_eq!(token.lifetime(), Duration::from_secs(600));
    // `use_dpop_nonce` once, then the token.
    assert_eq!(server.server.token_answers(3), [400, 400, 200]);

    let introspection = server.introspect(token.secret()).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["token_type"], "DPoP", "{introspection}");
    assert_eq!(introspection["cnf"]["jkt"], key.thumbprint(), "{introspection}");

    // The next token request carries the nonce kept from the last answer: no round trip.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(600)).await; // the token expired on Tokio's clock
    tokio::time::resume();
    let next = layer.token().await.expect("a second token, with the nonce kept");
    assert_ne!(next.secret(), token.secret());
    assert_eq!(server.server.token_answers(4), [400, 400, 200, 200]);
}
