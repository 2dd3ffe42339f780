//! DPoP proofs (RFC 9449 §4): a `dpop+jwt` signed with the client's [`DpopKey`], for one HTTP
//! request, and what the token request does with them (§5, §8).
//!
//! A proof's header is `{"typ":"dpop+jwt","alg":..,"jwk":<the public key>}`, the same for every
//! proof of a key, so it is encoded once. Its claims are `jti` (128 random bits), `htm` (the
//! method), `htu` (the URI without query and fragment), `iat` (now, in seconds), and `ath`
//! (base64url SHA-256 of the access token) and `nonce` when there are. Each proof is new:
//! retries and resends included, no `jti` is ever sent twice.
//!
//! The token endpoint may answer `use_dpop_nonce` with a `DPoP-Nonce` header (§8): the request
//! is sent once more, with that nonce, within the same `request_timeout`; and the latest nonce
//! it gave, on any answer, goes into the next token request's proof.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use url::Url;

use crate::config::dpop::Dpop;
use crate::credential::DpopKey;
use crate::error::{TokenError, TokenErrorKind};

/// The request header that carries a proof.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The response header that carries a server's nonce.
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");
/// The longest nonce kept; a longer one is ignored.
const MAX_NONCE_BYTES: usize = 1024;

/// Makes the proofs of one key.
pub(crate) struct Prover {
    key: DpopKey,
    /// The encoded JOSE header, then `.`: every proof starts with it.
    header: String,
}

/// What one proof says about its request.
pub(crate) struct Claims<'a> {
    /// The request's method (`htm`).
    pub(crate) method: &'a str,
    /// The request's URI (`htu`), without query and fragment.
    pub(crate) uri: Target<'a>,
    /// base64url(SHA-256(access token)) (`ath`), on requests that carry one.
    pub(crate) ath: Option<&'a str>,
    /// The server's nonce (`nonce`), if it gave one.
    pub(crate) nonce: Option<&'a str>,
}

/// The URI a proof is for.
pub(crate) enum Target<'a> {
    /// Already without query and fragment.
    Prepared(&'a str),
    /// A request's URI: scheme, host (lowercase), port unless the default, and path.
    Request(&'a Uri),
}

impl Prover {
    pub(crate) fn new(key: &DpopKey) -> Self {
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{}}}"#,
            key.algorithm().as_str(),
            key.public_jwk()
        );
        Self { key: key.clone(), header: URL_SAFE_NO_PAD.encode(header) + "." }
    }

    /// A new proof for the request `claims` describes, made at `now`, marked sensitive.
    pub(crate) fn proof(
        &self,
        claims: &Claims<'_>,
        now: SystemTime,
    ) -> Result<HeaderValue, TokenError> {
        let failed = |detail: &str| TokenError::with_detail(TokenErrorKind::DpopProof, detail);
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| failed("no randomness for the `jti`"))?;
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());

        let mut payload = String::with_capacity(192);
        payload.push_str(r#"{"jti":""#);
        URL_SAFE_NO_PAD.encode_string(jti, &mut payload);
        payload.push_str(r#"","htm":""#);
        json_escaped(claims.method, &mut payload);
        payload.push_str(r#"","htu":""#);
        match claims.uri {
            Target::Prepared(htu) => json_escaped(htu, &mut payload),
            Target::Request(uri) => write_htu(uri, &mut payload)
                .ok_or_else(|| failed("the request URI has no scheme and host to bind it to"))?,
        }
        payload.push_str(r#"","iat":"#);
        payload.push_str(itoa(iat, &mut [0; 20]));
        if let Some(ath) = claims.ath {
            payload.push_str(r#","ath":""#);
            payload.push_str(ath); // base64url
            payload.push('"');
        }
        if let Some(nonce) = claims.nonce {
            payload.push_str(r#","nonce":""#);
            payload.push_str(nonce); // checked by `nonce`: no quote, no backslash
            payload.push('"');
        }
        payload.push('}');

        let mut jwt = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 400);
        jwt.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(payload, &mut jwt);
        let signing_input = jwt.len();
        jwt.push('.');
        // Sign what is there so far; the signature goes after the dot.
        let (message, _) = jwt.split_at(signing_input);
        let mut signature = String::with_capacity(400);
        self.key
            .sign_into(message.as_bytes(), &mut signature)
            .map_err(|()| failed("signing failed"))?;
        jwt.push_str(&signature);
        let mut value = HeaderValue::try_from(jwt).map_err(|_| failed("not a header value"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// base64url(SHA-256(token)): the `ath` of proofs sent with `token` (RFC 9449 §4.2).
pub(crate) fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
}

/// The `DPoP-Nonce` of `headers`, if it is one (RFC 9449 §8.1: `1*NQCHAR`, which needs no
/// escaping in JSON) and not absurdly long.
pub(crate) fn nonce(headers: &HeaderMap) -> Option<&str> {
    let nonce = headers.get(DPOP_NONCE)?.to_str().ok()?;
    let nqchar = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
    (!nonce.is_empty() && nonce.len() <= MAX_NONCE_BYTES && nonce.bytes().all(nqchar))
        .then_some(nonce)
}

/// Writes `scheme://host[:port]/path` of `uri`, the `htu` of a request (RFC 9449 §4.2: no query,
/// no fragment), normalised as servers compare it (RFC 3986 §6.2.2, §6.2.3): scheme and host in
/// lowercase, a default port left out, an empty path as `/`. Never the user info. `None` for a
/// URI without scheme or host.
fn write_htu(uri: &Uri, out: &mut String) -> Option<()> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?;
    let start = out.len();
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(host);
    out[start..].make_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    if let Some(port) = uri.port_u16().filter(|&port| Some(port) != default_port) {
        out.push(':');
        out.push_str(itoa(port.into(), &mut [0; 20]));
    }
    match uri.path() {
        "" => out.push('/'),
        path => json_escaped(path, out),
    }
    Some(())
}

/// `text` as the inside of a JSON string. Only `"` and `\` can occur: methods and URIs hold no
/// control characters.
fn json_escaped(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `n` in decimal, without allocating.
fn itoa(mut n: u64, buffer: &mut [u8; 20]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).expect("ASCII digits")
}

/// DPoP for the token endpoint: a proof per token request, and the endpoint's latest nonce.
pub(crate) struct TokenProofs {
    prover: Prover,
    /// The token URL without its query.
    htu: String,
    nonce: Mutex<Nonce>,
}

/// The token endpoint's latest nonce.
#[derive(Default)]
struct Nonce {
    value: Option<String>,
    /// It came after the last proof was made: a resend would carry something new.
    unused: bool,
}

impl TokenProofs {
    pub(crate) fn new(dpop: &Dpop, url: &Url) -> Self {
        Self {
            prover: Prover::new(&dpop.key),
            htu: url[..url::Position::AfterPath].to_owned(),
            nonce: Mutex::default(),
        }
    }

    /// The proof of one token request: `POST` to the token URL, with the latest nonce.
    pub(crate) fn proof(&self) -> Result<HeaderValue, TokenError> {
        let mut nonce = self.nonce.lock().unwrap_or_else(|e| e.into_inner());
        nonce.unused = false;
        let claims = Claims {
            method: "POST",
            uri: Target::Prepared(&self.htu),
            ath: None,
            nonce: nonce.value.as_deref(),
        };
        self.prover.proof(&claims, SystemTime::now())
    }

    /// Keeps the nonce of an answer, if it has one.
    pub(crate) fn observe(&self, headers: &HeaderMap) {
        if let Some(given) = nonce(headers) {
            let mut nonce = self.nonce.lock().unwrap_or_else(|e| e.into_inner());
            if nonce.value.as_deref() != Some(given) {
                *nonce = Nonce { value: Some(given.to_owned()), unused: true };
            }
        }
    }

    /// Whether `answer` asks for a nonce that the request did not carry and the server gave
    /// (RFC 9449 §8): then the request is worth sending once more.
    pub(crate) fn wants_resend<T>(&self, answer: &Result<T, TokenError>) -> bool {
        let asked =
            answer.as_ref().err().and_then(TokenError::oauth_error) == Some("use_dpop_nonce");
        asked && self.nonce.lock().unwrap_or_else(|e| e.into_inner()).unused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::DpopAlgorithm;

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn htu(uri: &str) -> String {
        let mut out = String::new();
        write_htu(&uri.parse().unwrap(), &mut out).map(|()| out).unwrap_or_default()
    }

    #[test]
    fn htu_is_scheme_host_port_and_path_without_query_user_info_or_default_port() {
        assert_eq!(htu("HTTPS://API.Example.com:443/a/B?x=1#f"), "https://api.example.com/a/B");
        assert_eq!(htu("http://127.0.0.1:8080/things?q"), "http://127.0.0.1:8080/things");
        assert_eq!(htu("http://user:pw@api.example.com"), "http://api.example.com/");
        assert_eq!(htu("https://[::1]:8443/x"), "https://[::1]:8443/x");
        assert_eq!(htu("/relative"), "");
    }

    #[test]
    fn a_proof_has_the_header_and_claims_of_rfc_9449_and_verifies() {
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        let prover = Prover::new(&key);
        let uri: Uri = "https://api.example.com/a?b".parse().unwrap();
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let claims = Claims {
            method: "GET",
            uri: Target::Request(&uri),
            ath: Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"),
            nonce: Some("n-1"),
        };
        let proof = prover.proof(&claims, now).unwrap();
        assert!(proof.is_sensitive());
        let text = proof.to_str().unwrap();
        let parts: Vec<&str> = text.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(
            header["jwk"],
            serde_json::from_str::<serde_json::Value>(key.public_jwk()).unwrap()
        );
        let payload = decode(parts[1]);
        assert_eq!(payload["htm"], "GET");
        assert_eq!(payload["htu"], "https://api.example.com/a");
        assert_eq!(payload["iat"], 1_700_000_000);
        assert_eq!(payload["ath"], "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
        assert_eq!(payload["nonce"], "n-1");
        assert_eq!(payload["jti"].as_str().unwrap().len(), 22);

        let jwk = &header["jwk"];
        let mut point = vec![4];
        for c in ["x", "y"] {
            point.extend(URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap());
        }
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            point,
        );
        let message = format!("{}.{}", parts[0], parts[1]);
        public.verify(message.as_bytes(), &signature).expect("the signature verifies");

        let again = prover.proof(&claims, now).unwrap();
        assert_ne!(
            decode(again.to_str().unwrap().split('.').nth(1).unwrap())["jti"],
            payload["jti"]
        );
    }

    #[test]
    fn ath_is_base64url_sha_256_of_the_token() {
        // RFC 9449 §7.1's example: the token and its `ath`.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn only_nonces_of_nqchar_are_kept() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(DPOP_NONCE, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert_eq!(nonce(&headers("eyJ7S_zG.eyJH0-Z.HX4w-7v")), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        for bad in ["a\"b", "a\\b", "a b", ""] {
            assert_eq!(nonce(&headers(bad)), None, "{bad}");
        }
        assert_eq!(nonce(&headers(&"n".repeat(MAX_NONCE_BYTES + 1))), None);
        assert_eq!(nonce(&HeaderMap::new()), None);
    }

    #[test]
    fn the_token_endpoint_nonce_is_resent_once_per_new_value() {
        let dpop =
            Dpop { key: DpopKey::generate(DpopAlgorithm::Es256).unwrap(), allow_bearer: false };
        let proofs = TokenProofs::new(&dpop, &Url::parse("https://idp.example/token?x=1").unwrap());
        assert_eq!(proofs.htu, "https://idp.example/token");
        let asked = || -> Result<(), TokenError> {
            let oauth =
                crate::error::OAuthError { error: "use_dpop_nonce".into(), ..Default::default() };
            Err(TokenError::response(http::StatusCode::BAD_REQUEST, Some(oauth), None, None))
        };
        proofs.proof().unwrap();
        assert!(!proofs.wants_resend(&asked()), "no nonce given");
        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE, HeaderValue::from_static("n1"));
        proofs.observe(&headers);
        assert!(proofs.wants_resend(&asked()));
        let payload =
            |proof: HeaderValue| decode(proof.to_str().unwrap().split('.').nth(1).unwrap());
        assert_eq!(payload(proofs.proof().unwrap())["nonce"], "n1");
        assert!(!proofs.wants_resend(&asked()), "the nonce was sent already");
        proofs.observe(&headers);
        assert!(!proofs.wants_resend(&asked()), "the same nonce again is nothing new");
    }
}
