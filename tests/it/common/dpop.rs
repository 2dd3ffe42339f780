//! DPoP servers on loopback, written from RFC 9449 and independent of the crate's code: a token
//! endpoint that checks each proof (§4.3), asks for a nonce (§8), binds its tokens to the
//! proof's key and records each form (a token exchange is answered with its
//! `issued_token_type`, RFC 8693 §2.2.1), and a resource server that checks each proof as §4.3 and §7.1 say (signature
//! by the `jwk` of its header, `typ`, `htm`, `htu`, an `iat` window, a `jti` never seen, `ath`
//! against the token, the token's `cnf.jkt` against the proof's key) and demands a nonce of its
//! own (§9) before it serves anything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::{any, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::serve;

/// How far a proof's `iat` may be from the server's clock.
pub const IAT_WINDOW_SECS: u64 = 60;

/// What a server found wrong with a request, or that it was served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Served,
    Refused(&'static str),
}

/// One token request, as the token endpoint saw it.
#[derive(Clone, Debug)]
pub struct TokenCall {
    pub status: u16,
    /// The proof's claims, if it verified.
    pub claims: Option<Value>,
    /// The form it carried.
    pub form: Vec<(String, String)>,
}

impl TokenCall {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    token_calls: Mutex<Vec<TokenCall>>,
    /// The nonce the token endpoint accepts now.
    as_nonce: Mutex<String>,
    /// Whether each success gives the next nonce (`DPoP-Nonce` on the 200).
    rotate_as_nonce: Mutex<bool>,
    /// The `token_type` it answers with.
    token_type: Mutex<String>,
    /// Each token issued, and the thumbprint of the key it is bound to (`cnf.jkt`).
    bound: Mutex<HashMap<String, String>>,
    as_jtis: Mutex<HashSet<String>>,
    rs_jtis: Mutex<HashSet<String>>,
    api_outcomes: Mutex<Vec<Outcome>>,
    /// The headers of each API request.
    api_headers: Mutex<Vec<HeaderMap>>,
}

/// A token endpoint and a resource server, on two loopback ports.
pub struct DpopServers {
    pub token_url: String,
    pub api_url: String,
    api_origin: String,
    shared: Arc<Shared>,
}

/// The resource server's nonce.
pub const RS_NONCE: &str = "rs-nonce.1";

impl DpopServers {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        *shared.as_nonce.lock().unwrap() = "as-nonce-1".into();
        *shared.token_type.lock().unwrap() = "DPoP".into();
        let token = Router::new().route("/token", post(token)).with_state(shared.clone());
        let token_addr = serve(token).await;
        let api = Router::new().fallback(any(api)).with_state(shared.clone());
        let api_addr = serve(api).await;
        Self {
            token_url: format!("http://{token_addr}/token"),
            api_url: format!("http://{api_addr}/things"),
            api_origin: format!("http://{api_addr}"),
            shared,
        }
    }

    pub fn config(&self) -> tower_client_credentials::ConfigBuilder {
        tower_client_credentials::Config::builder(
            &self.token_url,
            super::CLIENT_ID,
            super::CLIENT_SECRET,
        )
    }

    /// A URL of the resource server with this path.
    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.api_origin)
    }

    pub fn answer_with_token_type(&self, token_type: &str) {
        *self.shared.token_type.lock().unwrap() = token_type.into();
    }

    pub fn rotate_token_endpoint_nonce(&self) {
        *self.shared.rotate_as_nonce.lock().unwrap() = true;
    }

    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.shared.token_calls.lock().unwrap().clone()
    }

    pub fn api_outcomes(&self) -> Vec<Outcome> {
        self.shared.api_outcomes.lock().unwrap().clone()
    }

    pub fn api_headers(&self) -> Vec<HeaderMap> {
        self.shared.api_headers.lock().unwrap().clone()
    }

    /// The thumbprint of the key `token` is bound to.
    pub fn jkt_of(&self, token: &str) -> Option<String> {
        self.shared.bound.lock().unwrap().get(token).cloned()
    }
}

fn oauth_error(status: StatusCode, error: &str, nonce: Option<&str>) -> Response<Body> {
    let mut response =
        Response::builder().status(status).header("content-type", "application/json");
    if let Some(nonce) = nonce {
        response = response.header("dpop-nonce", nonce);
    }
    response.body(Body::from(json!({ "error": error }).to_string())).unwrap()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    let url = format!("http://{}/token", headers["host"].to_str().unwrap());
    let checked = one_proof(&headers).and_then(|proof| verify(proof, "POST", &url));
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let exchange = form.iter().any(|(n, v)| n == "grant_type" && v.ends_with(":token-exchange"));
    let record = |status: u16, claims: Option<Value>| {
        let form = form.clone();
        shared.token_calls.lock().unwrap().push(TokenCall { status, claims, form });
    };
    let (claims, jkt) = match checked {
        Ok(checked) => checked,
        Err(_) => {
            record(400, None);
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", None);
        }
    };
    if claims.get("ath").is_some() || !shared.as_jtis.lock().unwrap().insert(jti(&claims)) {
        record(400, Some(claims));
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", None);
    }
    let nonce = shared.as_nonce.lock().unwrap().clone();
    if claims["nonce"].as_str() != Some(&nonce) {
        record(400, Some(claims));
        return oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", Some(&nonce));
    }
    let mut bound = shared.bound.lock().unwrap();
    let token = format!("dpop-token-{}", bound.len() + 1);
    bound.insert(token.clone(), jkt);
    drop(bound);
    record(200, Some(claims));
    let token_type = shared.token_type.lock().unwrap().clone();
    let mut response = Response::builder().header("content-type", "application/json");
    if *shared.rotate_as_nonce.lock().unwrap() {
        let mut current = shared.as_nonce.lock().unwrap();
        *current = format!("{current}+");
        response = response.header("dpop-nonce", current.as_str());
    }
    let mut body = json!({ "access_token": token, "token_type": token_type, "expires_in": 3600 });
    // RFC 8693 §2.2.1: a token exchange answer says what it issued.
    if exchange {
        body["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token".into();
    }
    response.body(Body::from(body.to_string())).unwrap()
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    shared.api_headers.lock().unwrap().push(headers.clone());
    let outcome = check_api_request(&shared, &method, &uri, &headers);
    shared.api_outcomes.lock().unwrap().push(outcome.clone());
    let refuse = |error: &str, nonce: bool| {
        let mut response = Response::builder().status(StatusCode::UNAUTHORIZED).header(
            "www-authenticate",
            format!(r#"DPoP algs="ES256 EdDSA RS256 PS256", error="{error}""#),
        );
        if nonce {
            response = response.header("dpop-nonce", RS_NONCE);
        }
        response.body(Body::empty()).unwrap()
    };
    match outcome {
        Outcome::Served => Response::new(Body::from("served")),
        Outcome::Refused("nonce") => refuse("use_dpop_nonce", true),
        Outcome::Refused(_) => refuse("invalid_token", false),
    }
}

fn check_api_request(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) -> Outcome {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("DPoP "))
    else {
        return Outcome::Refused("not a DPoP token");
    };
    let url = format!("http://{}{}", headers["host"].to_str().unwrap(), uri.path());
    let (claims, jkt) =
        match one_proof(headers).and_then(|proof| verify(proof, method.as_str(), &url)) {
            Ok(checked) => checked,
            Err(reason) => return Outcome::Refused(reason),
        };
    if claims["ath"].as_str() != Some(&ath(token)) {
        return Outcome::Refused("ath");
    }
    if shared.bound.lock().unwrap().get(token) != Some(&jkt) {
        return Outcome::Refused("cnf.jkt");
    }
    if !shared.rs_jtis.lock().unwrap().insert(jti(&claims)) {
        return Outcome::Refused("jti seen before");
    }
    if claims["nonce"].as_str() != Some(RS_NONCE) {
        return Outcome::Refused("nonce");
    }
    Outcome::Served
}

fn jti(claims: &Value) -> String {
    claims["jti"].as_str().unwrap_or_default().to_owned()
}

/// base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
}

fn one_proof(headers: &HeaderMap) -> Result<&str, &'static str> {
    let mut proofs = headers.get_all("dpop").iter();
    match (proofs.next(), proofs.next()) {
        (Some(proof), None) => proof.to_str().map_err(|_| "proof not text"),
        (None, _) => Err("no proof"),
        (Some(_), Some(_)) => Err("two proofs"),
    }
}

fn decode(part: &str) -> Result<Value, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "not JSON")
}

/// Checks a proof as RFC 9449 §4.3 says; its claims and its key's thumbprint.
pub fn verify(proof: &str, method: &str, url: &str) -> Result<(Value, String), &'static str> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [header, payload, signature] = parts[..] else { return Err("not a JWS") };
    let (jose, claims) = (decode(header)?, decode(payload)?);
    if jose["typ"] != "dpop+jwt" {
        return Err("typ");
    }
    let jwk = jose["jwk"].as_object().ok_or("no jwk")?;
    if jwk.contains_key("d") {
        return Err("a private key in the jwk");
    }
    let member = |name: &str| {
        jwk.get(name).and_then(Value::as_str).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature not base64url")?;
    let message = format!("{header}.{payload}");
    let verified = match (jose["alg"].as_str(), jwk.get("kty").and_then(Value::as_str)) {
        (Some("ES256"), Some("EC")) => {
            let mut point = vec![4];
            point.extend(member("x").ok_or("x")?);
            point.extend(member("y").ok_or("y")?);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message.as_bytes(), &signature)
        }
        (Some("EdDSA"), Some("OKP")) => {
            UnparsedPublicKey::new(&signature::ED25519, member("x").ok_or("x")?)
                .verify(message.as_bytes(), &signature)
        }
        (Some(alg @ ("RS256" | "PS256")), Some("RSA")) => {
            let key =
                RsaPublicKeyComponents { n: member("n").ok_or("n")?, e: member("e").ok_or("e")? };
            let params = if alg == "RS256" {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            key.verify(params, message.as_bytes(), &signature)
        }
        _ => return Err("alg"),
    };
    verified.map_err(|_| "signature")?;
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err("no jti");
    }
    if claims["htm"] != method {
        return Err("htm");
    }
    if claims["htu"] != url {
        return Err("htu");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    if iat.abs_diff(now) > IAT_WINDOW_SECS {
        return Err("iat");
    }
    Ok((claims, thumbprint(&jose["jwk"])))
}

/// RFC 7638: base64url(SHA-256) of the required members, in order, without whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        _ => &["crv", "kty", "x"],
    };
    let members: Vec<String> =
        required.iter().map(|name| format!("{:?}:{}", name, jwk[*name])).collect();
    let canonical = format!("{{{}}}", members.join(","));
    URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()))
}

/// A proof of the test's own, with a key of its own: ES256, for `method` and `url`, bound to
/// `token`, with `nonce`.
pub fn foreign_proof(method: &str, url: &str, token: &str, nonce: &str) -> String {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = key.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    });
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "jti": format!("foreign-{now}-{}", fastrand::u64(..)), "htm": method, "htu": url,
        "iat": now, "ath": ath(token), "nonce": nonce,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}
