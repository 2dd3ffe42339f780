//! DPoP on API requests (RFC 9449 §7): with a DPoP-bound token, each request carries
//! `Authorization: DPoP <token>` and a new proof of its own, in a `DPoP` header, for its
//! method and URI, with the token's hash (`ath`, hashed once per token) and the resource
//! server's nonce, if it gave one. [`Authorizer`](super::authorizer) decides which requests
//! get one.
//!
//! A resource server may ask for a nonce (§9): a `401` with `WWW-Authenticate: DPoP
//! error="use_dpop_nonce"` and a `DPoP-Nonce` header. The nonce is kept for the request's
//! origin (at most [`MAX_ORIGINS`] of them, the least recently given forgotten first), and the
//! response is marked so that [`RetryUnauthorized`](crate::RetryUnauthorized) resends the
//! request once, with a proof that carries it. That `401` says nothing against the token,
//! which stays. A `DPoP-Nonce` on any other response replaces the origin's nonce too.
//!
//! Signing is the cost of DPoP, and it is paid per request; the rest (claims, encoding, the
//! header) is small beside it (BENCHMARKS.md §7). Without DPoP configured, none of this runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use crate::cache::Entry;
use crate::config::origin::Origin;
use crate::config::Config;
use crate::error::TokenError;
use crate::middleware::NonceDemand;
use crate::request::dpop::{self as proof, Claims, Prover, Target};
use crate::request::response;

/// The most origins whose nonces are kept.
pub(crate) const MAX_ORIGINS: usize = 32;

/// Proofs for the API requests of one layer, and the nonces resource servers gave it.
pub(crate) struct ApiProofs {
    prover: Prover,
    /// The latest nonce of each origin, the most recently given first.
    nonces: Mutex<VecDeque<(Origin, Arc<str>)>>,
}

/// What the response to a request with a proof needs: where the request went.
pub(crate) struct Proved {
    proofs: Arc<ApiProofs>,
    uri: Uri,
}

impl ApiProofs {
    pub(crate) fn new(config: &Config) -> Option<Arc<Self>> {
        let dpop = config.endpoint.dpop.as_ref()?;
        Some(Arc::new(Self { prover: Prover::new(&dpop.key), nonces: Mutex::default() }))
    }

    /// The proof for a request of `method` to `uri` that carries `entry`, with what its
    /// response needs; `None` for a bearer token (downgraded with `dpop_allow_bearer`).
    pub(crate) fn proof_for(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        entry: &Entry,
    ) -> Result<Option<(HeaderValue, Box<Proved>)>, TokenError> {
        if !response::is_dpop(entry.token.header_value()) {
            return Ok(None);
        }
        let nonce = self.nonce(uri);
        let claims = Claims {
            method: method.as_str(),
            uri: Target::Request(uri),
            ath: Some(entry.ath()),
            nonce: nonce.as_deref(),
        };
        let proof = self.prover.proof(&claims, SystemTime::now())?;
        Ok(Some((proof, Box::new(Proved { proofs: Arc::clone(self), uri: uri.clone() }))))
    }

    /// The nonce of `uri`'s origin, if its server gave one. The lock is not held while
    /// signing.
    fn nonce(&self, uri: &Uri) -> Option<Arc<str>> {
        let nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.iter().find(|(origin, _)| origin.matches(uri)).map(|(_, nonce)| Arc::clone(nonce))
    }

    fn keep_nonce(&self, origin: Origin, nonce: &str) {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let kept = nonces.iter().position(|(kept, _)| *kept == origin);
        let nonce = match kept.and_then(|at| nonces.remove(at)) {
            Some((_, kept)) if *kept == *nonce => kept, // given again: no new copy
            _ => nonce.into(),
        };
        nonces.push_front((origin, nonce));
        nonces.truncate(MAX_ORIGINS);
    }

    #[cfg(test)]
    fn nonces(&self) -> Vec<(Origin, String)> {
        let nonces = self.nonces.lock().unwrap();
        nonces.iter().map(|(origin, nonce)| (origin.clone(), nonce.to_string())).collect()
    }
}

impl Proved {
    /// Keeps the nonce a response gives, if any, and says whether it is a `401` that asks for
    /// one (`WWW-Authenticate: DPoP error="use_dpop_nonce"`): worth a resend with the same
    /// token when the nonce can be used (not too long, a nonce's characters), and in either
    /// case no rejection of the token.
    pub(crate) fn nonce_demand(self, status: StatusCode, headers: &HeaderMap) -> NonceDemand {
        let nonce = proof::nonce(headers);
        if let (Some(nonce), Some(origin)) = (nonce, Origin::of(&self.uri)) {
            self.proofs.keep_nonce(origin, nonce);
        }
        match (status == StatusCode::UNAUTHORIZED && asks_for_nonce(headers), nonce) {
            (false, _) => NonceDemand::None,
            (true, Some(_)) => NonceDemand::Resend,
            (true, None) => NonceDemand::Unusable,
        }
    }
}

/// Whether a `WWW-Authenticate` challenge of scheme `DPoP` has `error="use_dpop_nonce"`.
fn asks_for_nonce(headers: &HeaderMap) -> bool {
    let challenges = headers.get_all(WWW_AUTHENTICATE).into_iter();
    challenges.filter_map(|value| value.to_str().ok()).any(|value| {
        let mut in_dpop = false;
        for item in outside_quotes(value) {
            let item = item.trim();
            // A challenge starts with its scheme, a word before any `=`.
            let param = match item.split_once(char::is_whitespace) {
                Some((word, rest)) if !word.contains('=') => {
                    in_dpop = word.eq_ignore_ascii_case("dpop");
                    rest
                }
                None if !item.contains('=') => {
                    in_dpop = item.eq_ignore_ascii_case("dpop");
                    continue;
                }
                _ => item,
            };
            let Some((name, value)) = param.split_once('=') else { continue };
            if in_dpop
                && name.trim().eq_ignore_ascii_case("error")
                && value.trim().trim_matches('"') == "use_dpop_nonce"
            {
                return true;
            }
        }
        false
    })
}

/// `text` split at the commas that are not inside a quoted string.
fn outside_quotes(text: &str) -> impl Iterator<Item = &str> {
    let (mut quoted, mut escaped) = (false, false);
    text.split(move |c| {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return true,
            _ => {}
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(challenges: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for challenge in challenges {
            headers.append(WWW_AUTHENTICATE, HeaderValue::from_str(challenge).unwrap());
        }
        headers
    }

    #[test]
    fn a_dpop_challenge_with_use_dpop_nonce_asks_for_a_nonce() {
        for yes in [
            &[
                r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
            ][..],
            &[r#"dpop error=use_dpop_nonce"#],
            &[r#"Bearer realm="api", DPoP algs="ES256 PS256", error="use_dpop_nonce""#],
            &[r#"Bearer error="invalid_token""#, r#"DPoP error="use_dpop_nonce""#],
        ] {
            assert!(asks_for_nonce(&headers(yes)), "{yes:?}");
        }
        for no in [
            &[r#"Bearer error="use_dpop_nonce""#][..],
            &[r#"DPoP error="invalid_token""#],
            &[r#"DPoP error_description="say error=\"use_dpop_nonce\", please""#],
            &[r#"DPoP realm="a,b", error="invalid_dpop_proof""#],
            &[],
        ] {
            assert!(!asks_for_nonce(&headers(no)), "{no:?}");
        }
    }

    #[test]
    fn nonces_are_kept_per_origin_and_bounded() {
        let key =
            crate::credential::DpopKey::generate(crate::credential::DpopAlgorithm::Es256).unwrap();
        let proofs = ApiProofs { prover: Prover::new(&key), nonces: Mutex::default() };
        let origin = |n: usize| Origin::of(&format!("https://api-{n}.example").parse().unwrap());
        proofs.keep_nonce(origin(0).unwrap(), "a");
        proofs.keep_nonce(origin(0).unwrap(), "b");
        assert_eq!(
            proofs.nonce(&"https://API-0.example:443/x".parse().unwrap()).as_deref(),
            Some("b")
        );
        assert_eq!(proofs.nonce(&"http://api-0.example/x".parse().unwrap()), None);
        for n in 1..=MAX_ORIGINS {
            proofs.keep_nonce(origin(n).unwrap(), "c");
        }
        let kept = proofs.nonces();
        assert_eq!(kept.len(), MAX_ORIGINS);
        assert_eq!(kept[0].0, origin(MAX_ORIGINS).unwrap(), "the latest first");
        assert!(!kept.iter().any(|(o, _)| *o == origin(0).unwrap()), "the oldest forgotten");
    }
}
