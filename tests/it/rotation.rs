//! Credentials that rotate (DESIGN.md §4): client assertions and secrets read anew from files
//! that the platform replaces, against loopback servers that check them as real ones do.

use crate::common;
use common::Folder;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{api_client, get, ApiServer, Received, Reply, TokenServer, CLIENT_ID};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tokio::time::{advance, Instant};
use tower_client_credentials::credential::{CredentialError, CredentialErrorKind};
use tower_client_credentials::{
    ClientCredentialsLayer, Config, ConfigBuilder, ErrorClass, TokenError, TokenErrorKind,
};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Who signs the workload's tokens, and for whom, as Entra sees a federated credential.
const ISSUER: &str = "https://oidc.cluster.example";
const SUBJECT: &str = "system:serviceaccount:orders:api";
const AUDIENCE: &str = "api://AzureADTokenExchange";

/// How the platform replaces the file.
#[derive(Clone, Copy, Debug)]
enum Replace {
    /// Write a new file beside it, then rename it over the old one.
    Rename,
    /// Kubernetes' projected volumes: `token` is a symlink to `..data/token`, and `..data` a
    /// symlink to a timestamped folder; a new folder is made and `..data` swapped to it.
    DataSymlink,
}

impl Replace {
    /// Puts `content` at `dir/token` the platform's way; returns that path.
    fn write(self, dir: &Path, content: &str, version: u32) -> PathBuf {
        let token = dir.join("token");
        match self {
            Replace::Rename => {
                std::fs::write(dir.join("token.new"), content).unwrap();
                std::fs::rename(dir.join("token.new"), &token).unwrap();
            }
            Replace::DataSymlink => {
                let folder = format!("..2026_12_01_{version:04}");
                std::fs::create_dir(dir.join(&folder)).unwrap();
                std::fs::write(dir.join(&folder).join("token"), content).unwrap();
                let _ = std::fs::remove_file(dir.join("..data_tmp"));
                std::os::unix::fs::symlink(&folder, dir.join("..data_tmp")).unwrap();
                std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
                if version > 1 {
                    let old = format!("..2026_12_01_{:04}", version - 1);
                    std::fs::remove_dir_all(dir.join(old)).unwrap();
                } else {
                    std::os::unix::fs::symlink("..data/token", &token).unwrap();
                }
            }
        }
        token
    }
}

/// The UNIX time on the test's clock: paused Tokio time, started at the real time.
struct Clock {
    start: Instant,
    unix: Duration,
}

impl Clock {
    fn new() -> Self {
        Self { start: Instant::now(), unix: SystemTime::now().duration_since(UNIX_EPOCH).unwrap() }
    }

    fn now(&self) -> u64 {
        (self.unix + self.start.elapsed()).as_secs()
    }
}

/// What the federated token server saw and demands.
#[derive(Default)]
struct Federation {
    /// The `jti` of the assertion in the file now.
    current: Option<String>,
    seen: Vec<String>,
    refused: usize,
}

/// A token endpoint that accepts a client assertion as Entra does for a federated credential:
/// signed by the key it trusts, from `ISSUER` about `SUBJECT` for `AUDIENCE`, not expired,
/// each `jti` once. Tokens live 3 s.
async fn federated_token_server(
    trusted: DecodingKey,
    clock: Arc<Clock>,
    federation: Arc<Mutex<Federation>>,
) -> TokenServer {
    TokenServer::start_judging(move |n, received: &Received| {
        let mut federation = federation.lock().unwrap();
        match check_assertion(received, &trusted, clock.now(), &federation.seen) {
            Ok(jti) => {
                assert_eq!(Some(&jti), federation.current.as_ref(), "the assertion of this moment");
                federation.seen.push(jti);
                Reply::token(n, 3)
            }
            Err(why) => {
                federation.refused += 1;
                Reply::json(
                    401,
                    format!(r#"{{"error":"invalid_client","error_description":"{why}"}}"#),
                )
            }
        }
    })
    .await
}

fn check_assertion(
    received: &Received,
    trusted: &DecodingKey,
    now: u64,
    seen: &[String],
) -> Result<String, String> {
    if received.param("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err("not a jwt-bearer assertion".into());
    }
    if received.param("client_id") != Some(CLIENT_ID) {
        return Err("wrong client_id".into());
    }
    let jwt = received.param("client_assertion").ok_or("no assertion")?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.sub = Some(SUBJECT.into());
    validation.validate_exp = false; // on the test's clock, below
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, trusted, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if claims["exp"].as_u64().ok_or("no exp")? <= now {
        return Err("AADSTS700024: client assertion is not within its valid time range".into());
    }
    let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
    if seen.contains(&jti) {
        return Err("the jti was used before".into());
    }
    Ok(jti)
}

/// Signs the workload's service-account token, valid for 5 s from `now`.
fn assertion(signing: &EncodingKey, now: u64, jti: &str) -> String {
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE, "jti": jti, "iat": now, "exp": now + 5,
    });
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, signing).unwrap()
}

/// The platform rewrites the assertion every 2 s with one valid for 5 s; the client sends a
/// request every 100 ms for 14 s, through tokens of 3 s. The server takes each `jti` once, so
/// token requests must be further apart than the rotations: `refresh_ahead` 0.5 s and
/// `expiry_margin` 0.25 s refresh each token at 2.45–2.5 s, while it is still usable.
///
/// Read once, the file would give the first assertion to every token request: the second
/// token request (at about 2.5 s) would be refused for its replayed `jti`, every later one
/// too (and from 5 s for its expiry), and every API request after the first token stopped
/// being usable (2.75 s) would fail: 112 of 140.
async fn the_assertion_of_the_moment_is_sent_as_the_platform_rotates_it(replace: Replace) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let trusted = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
    let clock = Arc::new(Clock::new());
    let federation = Arc::new(Mutex::new(Federation::default()));
    let tokens = federated_token_server(trusted, clock.clone(), federation.clone()).await;
    let api = ApiServer::start().await;
    let folder = Folder::new(&format!("federation-{replace:?}"));

    let rotate = |version: u32| {
        let jti = format!("assertion-{version}");
        federation.lock().unwrap().current = Some(jti.clone());
        replace.write(&folder.0, &assertion(&signing, clock.now(), &jti), version)
    };
    let file = rotate(1);
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_assertion_file(&file)
        .refresh_ahead(Duration::from_millis(500))
        .expiry_margin(Duration::from_millis(250))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);

    let mut version = 1;
    for step in 1..=140 {
        let (status, _) = get(&service, &api.url).await.unwrap();
        assert_eq!(status, 200, "request {step}");
        advance(Duration::from_millis(100)).await;
        if step % 20 == 0 {
            version += 1;
            rotate(version);
        }
    }
    let federation = federation.lock().unwrap();
    assert_eq!(federation.refused, 0);
    assert!(federation.seen.len() >= 5, "at least four token lifetimes: {:?}", federation.seen);
    assert_eq!(tokens.count(), federation.seen.len());
}

#[tokio::test(start_paused = true)]
async fn a_rotated_assertion_file_replaced_by_rename_is_read_for_each_token_request() {
    the_assertion_of_the_moment_is_sent_as_the_platform_rotates_it(Replace::Rename).await;
}

#[tokio::test(start_paused = true)]
async fn a_rotated_assertion_file_behind_a_data_symlink_swap_is_read_for_each_token_request() {
    the_assertion_of_the_moment_is_sent_as_the_platform_rotates_it(Replace::DataSymlink).await;
}

/// A token server that takes the secrets in `accepted` (by Basic authentication).
async fn secret_server(accepted: Arc<Mutex<Vec<&'static str>>>) -> TokenServer {
    TokenServer::start_judging(move |n, received: &Received| {
        let secret = received.basic.as_ref().map(|(_, secret)| secret.as_str());
        if secret.is_some_and(|s| accepted.lock().unwrap().contains(&s)) {
            Reply::token(n, 50)
        } else {
            Reply::json(401, r#"{"error":"invalid_client"}"#)
        }
    })
    .await
}

fn secrets_sent(tokens: &TokenServer) -> Vec<String> {
    tokens.received().iter().map(|r| r.basic.clone().unwrap().1).collect()
}

/// The server takes secret A, then only B; the mounted secret switches from A to B. Tokens
/// live 50 s: stale from 28–30 s, usable until 40 s.
#[tokio::test(start_paused = true)]
async fn a_rotated_secret_file_is_sent_at_the_next_token_request_and_no_request_fails() {
    let accepted = Arc::new(Mutex::new(vec!["secret-A"]));
    let tokens = secret_server(accepted.clone()).await;
    let api = ApiServer::start().await;
    let folder = Folder::new("secret-rotation");
    let file = Replace::Rename.write(&folder.0, "secret-A\n", 1);
    let config = windowed(Config::builder_without_secret(&tokens.url, CLIENT_ID))
        .client_secret_file(&file)
        .build()
        .unwrap();
    assert!(!format!("{config:?}").contains("secret-A"), "{config:?}");
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    assert_eq!(get(&service, &api.url).await.unwrap().1, "Bearer token-1");

    *accepted.lock().unwrap() = vec!["secret-B"];
    Replace::Rename.write(&folder.0, "secret-B\n", 2);
    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        let (status, _) = get(&service, &api.url).await.unwrap();
        assert_eq!(status, 200);
    }
    // The refresh at 30 s saw that the file had changed since it was read, read it again and
    // sent B: no rejected request, although the secret was read less than a minute before.
    let sent = secrets_sent(&tokens);
    assert_eq!(sent[0], "secret-A");
    assert!(sent.len() >= 2 && sent[1..].iter().all(|secret| secret == "secret-B"), "{sent:?}");
    assert_eq!(layer.stats().token_request_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_secret_file_is_read_again_after_a_minute_without_being_rejected() {
    let accepted = Arc::new(Mutex::new(vec!["secret-A", "secret-B"]));
    let tokens = secret_server(accepted).await;
    let folder = Folder::new("secret-minute");
    let file = Replace::Rename.write(&folder.0, "secret-A", 1);
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_secret_file(&file)
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    layer.token().await.unwrap();
    Replace::Rename.write(&folder.0, "secret-B", 2);
    advance(Duration::from_secs(61)).await; // past the 50 s token, and a minute since the read
    layer.token().await.unwrap();
    assert_eq!(secrets_sent(&tokens), ["secret-A", "secret-B"]);
}

#[tokio::test]
async fn a_wrong_secret_that_does_not_change_still_backs_off() {
    let tokens = secret_server(Arc::new(Mutex::new(vec!["right"]))).await;
    let folder = Folder::new("secret-wrong");
    let file = Replace::Rename.write(&folder.0, "wrong", 1);
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID).client_secret_file(&file);
    let layer = ClientCredentialsLayer::new(config.build().unwrap());
    for _ in 0..5 {
        let error = layer.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
    }
    assert_eq!(tokens.count(), 1, "the same secret is not sent again at once");
}

fn windowed(builder: ConfigBuilder) -> ConfigBuilder {
    builder.refresh_ahead(Duration::from_secs(20)).expiry_margin(Duration::from_secs(10))
}

fn credential_error(error: &TokenError) -> &CredentialError {
    assert_eq!(error.kind(), TokenErrorKind::Credential, "{error}");
    assert_eq!(error.class(), ErrorClass::Transient);
    std::error::Error::source(error).unwrap().downcast_ref::<CredentialError>().unwrap()
}

#[tokio::test]
async fn an_unusable_assertion_file_is_a_typed_error_naming_the_path_and_sends_nothing() {
    let tokens = TokenServer::start().await;
    let folder = Folder::new("unusable-assertion");
    let expired = {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let an_hour_ago = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 3600;
        assertion(&signing, an_hour_ago, "old")
    };
    std::fs::write(folder.path("empty"), " \n").unwrap();
    std::fs::write(folder.path("expired"), &expired).unwrap();
    std::fs::write(folder.path("garbage"), "not a jwt").unwrap();
    std::fs::create_dir(folder.path("directory")).unwrap();
    std::fs::write(folder.path("huge"), "x".repeat(10 * 1024 * 1024)).unwrap();
    // A pipe nobody writes to: reading it would block forever.
    let fifo = std::process::Command::new("mkfifo").arg(folder.path("fifo")).status().unwrap();
    assert!(fifo.success());
    let cases = [
        ("missing", CredentialErrorKind::Unreadable),
        ("empty", CredentialErrorKind::Empty),
        ("expired", CredentialErrorKind::Expired),
        ("garbage", CredentialErrorKind::NotAJwt),
        ("directory", CredentialErrorKind::Unreadable),
        ("huge", CredentialErrorKind::TooLarge),
        ("fifo", CredentialErrorKind::Unreadable),
    ];
    for (name, kind) in cases {
        let path = folder.path(name);
        let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
            .client_assertion_file(&path)
            .build()
            .unwrap();
        let layer = ClientCredentialsLayer::new(config);
        for _ in 0..3 {
            let error = layer.token().await.unwrap_err();
            let credential = credential_error(&error);
            assert_eq!(credential.kind(), kind, "{name}");
            assert_eq!(credential.path(), path, "{name}");
            assert!(error.to_string().contains(&*path.to_string_lossy()), "{error}");
            assert!(!error.to_string().contains(&expired), "{error}");
        }
        if kind == CredentialErrorKind::Expired {
            let at = credential_error(&layer.token().await.unwrap_err()).expired_at().unwrap();
            assert!(at < SystemTime::now());
        }
        assert_eq!(layer.stats().token_request_failures, 1, "{name}: backing off, not retrying");
    }
    assert_eq!(tokens.count(), 0, "nothing was sent");
}

#[test]
fn a_missing_or_empty_secret_file_fails_the_build_naming_it() {
    let folder = Folder::new("unusable-secret");
    std::fs::write(folder.path("empty"), "\n").unwrap();
    for name in ["missing", "empty"] {
        let path = folder.path(name);
        let build = Config::builder_without_secret("https://idp.example/token", CLIENT_ID)
            .client_secret_file(&path)
            .build();
        let error = build.unwrap_err();
        assert_eq!(error.field(), "client_secret_file");
        assert!(error.reason().contains(&*path.to_string_lossy()), "{error}");
    }
}
