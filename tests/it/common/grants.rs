//! What the grant tests share: unsigned JWTs (the crate reads a presented token's and an
//! access token's `exp` without checking any signature), token exchange answers, and a token
//! endpoint that names each token for the grant it came from.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tower_client_credentials::{JwtBearer, TokenExchange};

use super::{Reply, TokenServer};

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An unsigned JWT with these claims (JSON object text).
pub fn jwt_with(claims: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"JWT"}"#);
    format!("{header}.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(claims))
}

/// An unsigned JWT about `sub` that expires at `exp` (UNIX seconds).
pub fn jwt(sub: &str, exp: u64) -> String {
    jwt_with(&format!(r#"{{"sub":"{sub}","exp":{exp}}}"#))
}

fn part(jwt: &str, index: usize) -> serde_json::Value {
    let part = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(index).unwrap()).unwrap();
    serde_json::from_slice(&part).unwrap()
}

/// The header of a JWT.
pub fn header_of(jwt: &str) -> serde_json::Value {
    part(jwt, 0)
}

/// The claims of a JWT, unverified.
pub fn claims_of(jwt: &str) -> serde_json::Value {
    part(jwt, 1)
}

/// A token exchange answer: `token`, an access token, for `expires_in` seconds.
pub fn exchanged(token: &str, expires_in: u64) -> Reply {
    Reply::json(
        200,
        format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in},
                "issued_token_type":"{}"}}"#,
            TokenExchange::ACCESS_TOKEN
        ),
    )
}

/// A bearer token `token` for an hour.
pub fn named(token: &str) -> Reply {
    Reply::json(
        200,
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
    )
}

/// A token endpoint that answers every grant, naming each token for the grant it came from:
/// `cc-<n>`, `te.<subject token>-<n>` (an access token, with its `issued_token_type`),
/// `jb-<n>`. Tokens live an hour.
pub async fn grant_naming_token_server() -> TokenServer {
    TokenServer::start_judging(|n, received| match received.param("grant_type") {
        Some(TokenExchange::GRANT_TYPE) => {
            let subject = received.param("subject_token").unwrap_or("none");
            exchanged(&format!("te.{subject}-{n}"), 3600)
        }
        Some(JwtBearer::GRANT_TYPE) => named(&format!("jb-{n}")),
        _ => named(&format!("cc-{n}")),
    })
    .await
}
