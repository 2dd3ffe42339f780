//! Reading the token endpoint's answer: lenient where real servers differ, strict where a
//! mistake would be unsafe.
//!
//! Lenient: `expires_in` as a number or a numeric string (Apigee Edge, Azure AD v1); a
//! `token_type` of `bearer` in any case, Apigee's `BearerToken`, or none at all; unknown fields;
//! any content type, if the body is JSON. Strict: the token must be printable ASCII without
//! spaces (it goes into a header, and a newline there would be header injection); an `error`
//! in a 200 answer is a failure; `expires_in` must be a positive number.

use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Grant, LIFETIME_CEILING};
use crate::credential::jwt_expiry;
use crate::error::{sanitize, OAuthError, TokenError, TokenErrorKind};

/// How much text from the network an error may quote.
const EXCERPT_CHARS: usize = 200;
/// The most of an `error_description` kept (at most 4 KiB): whole for every server we know.
const DESCRIPTION_CHARS: usize = 1024;

/// The longest token accepted: most servers refuse a header line longer than 8 KiB (nginx and
/// Apache by default), so a longer token would fail at every API.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A usable token response, validated.
#[derive(Debug)]
pub(crate) struct TokenResponse {
    /// `Bearer <token>` (or `DPoP <token>`, for a DPoP-bound token), marked sensitive.
    pub(crate) header: HeaderValue,
    pub(crate) token_type: String,
    /// `expires_in`, or when there is none, how long a JWT access token has until its `exp`.
    pub(crate) expires_in: Option<Duration>,
    /// Microsoft Entra's `refresh_in`: refresh no later than this.
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) scope: Option<String>,
}

/// The fields we read, from either a success or an error body. Each is a raw JSON value so
/// that one of an unexpected type is reported as that field's problem, not as unparseable JSON.
#[derive(Deserialize, Default)]
struct Fields {
    access_token: Option<Value>,
    token_type: Option<Value>,
    expires_in: Option<Value>,
    scope: Option<Value>,
    refresh_in: Option<Value>,
    issued_token_type: Option<Value>,
    error: Option<Value>,
    error_description: Option<Value>,
    error_uri: Option<Value>,
    /// Apigee Edge's name for `error`.
    #[serde(rename = "ErrorCode")]
    apigee_error_code: Option<Value>,
    /// Apigee Edge's name for `error_description`.
    #[serde(rename = "Error")]
    apigee_error: Option<Value>,
}

/// Interprets a complete answer to a client-credentials request without a DPoP proof.
#[cfg(test)]
pub(crate) fn parse(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
    parse_expecting(status, retry_after, body, &Expected::default())
}

/// What a token response must be, from what its request asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Expected {
    accepted: Accepted,
    /// Token exchange: the `issued_token_type` asked for (`None`: any), and whether a
    /// `token_type` of `N_A` (not an access token) is acceptable.
    exchange: Option<(Option<String>, bool)>,
}

impl Expected {
    /// The answer to a request for `grant`, with a DPoP proof if `dpop` (`Some(allow_bearer)`).
    pub(crate) fn new(grant: &Grant, #[cfg(feature = "dpop")] dpop: Option<bool>) -> Self {
        #[cfg(feature = "dpop")]
        let accepted =
            dpop.map_or(Accepted::Bearer, |allow_bearer| Accepted::Dpop { allow_bearer });
        #[cfg(not(feature = "dpop"))]
        let accepted = Accepted::Bearer;
        let exchange = match grant {
            Grant::TokenExchange(exchange) => Some((
                exchange.requested_token_type.clone(),
                exchange.accepts_other_than_access_tokens(),
            )),
            _ => None,
        };
        Self { accepted, exchange }
    }
}

/// The token types a request may be answered with.
#[derive(Clone, Copy, Debug, Default)]
enum Accepted {
    #[default]
    Bearer,
    #[cfg(feature = "dpop")]
    Dpop { allow_bearer: bool },
}

/// The `Authorization` scheme of a token.
const BEARER: &str = "Bearer";
#[cfg(feature = "dpop")]
const DPOP: &str = "DPoP";
/// RFC 8693 §2.2.1: the issued token is not an access token.
const NOT_AN_ACCESS_TOKEN: &str = "N_A";

/// Interprets a complete answer from the token endpoint.
pub(crate) fn parse_expecting(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    expected: &Expected,
) -> Result<TokenResponse, TokenError> {
    let fields = serde_json::from_slice::<Fields>(body);
    if !status.is_success() {
        let fields = fields.unwrap_or_default();
        let excerpt = oauth_error(&fields).is_none().then(|| excerpt(body));
        return Err(TokenError::response(status, oauth_error(&fields), excerpt, retry_after));
    }
    let fields = fields.map_err(|_| {
        TokenError::with_detail(TokenErrorKind::MalformedResponse, success_excerpt(body))
    })?;
    if let Some(oauth) = oauth_error(&fields) {
        return Err(TokenError::response(status, Some(oauth), None, retry_after));
    }
    let not_an_access_token_ok = match &expected.exchange {
        Some((requested, other_types)) => {
            issued_token_type(&fields.issued_token_type, requested.as_deref())?;
            *other_types
        }
        None => false,
    };
    let (token_type, scheme) =
        token_type(fields.token_type, expected.accepted, not_an_access_token_ok)?;
    let header = authorization(fields.access_token, scheme)?;
    let expires_in = match expires_in(fields.expires_in)? {
        Some(expires_in) => Some(expires_in),
        None => until_exp(token_in(&header), SystemTime::now()),
    };
    Ok(TokenResponse {
        header,
        token_type,
        expires_in,
        refresh_in: refresh_in(fields.refresh_in),
        scope: text(&fields.scope).filter(|s| !s.is_empty()).map(str::to_owned),
    })
}

/// RFC 8693 §2.2.1: a token exchange answer says what it issued, and that is what was asked.
fn issued_token_type(value: &Option<Value>, requested: Option<&str>) -> Result<(), TokenError> {
    let wrong = |detail: String| {
        Err(TokenError::about(TokenErrorKind::IssuedTokenType, "issued_token_type", detail))
    };
    match (text(value), requested) {
        (None, _) => wrong("no issued_token_type, which a token exchange answer must have".into()),
        (Some(issued), Some(requested)) if issued != requested => wrong(format!(
            "issued_token_type {}, not the requested {}",
            quoted(&Value::String(issued.to_owned())),
            quoted(&Value::String(requested.to_owned()))
        )),
        _ => Ok(()),
    }
}

/// How long the JWT `token` has until its `exp` at `now`, read for timing only: the signature
/// is not checked, and the token is not ours to verify. `None` if it is not a JWT with an
/// `exp`; zero if that has passed (the cache then refuses it as expired on arrival).
fn until_exp(token: &str, now: SystemTime) -> Option<Duration> {
    let exp = jwt_expiry(token)?;
    Some(exp.duration_since(now).unwrap_or_default().min(LIFETIME_CEILING))
}

/// `refresh_in` in seconds, as `expires_in` is written; anything unusable is ignored (it is a
/// hint).
fn refresh_in(value: Option<Value>) -> Option<Duration> {
    expires_in(value).ok().flatten().filter(|refresh_in| !refresh_in.is_zero())
}

/// A token kept in a store, checked as strictly as one from the endpoint.
#[cfg(feature = "store")]
pub(crate) fn stored(
    access_token: String,
    token_type: String,
    scope: Option<String>,
    lifetime: Duration,
) -> Result<TokenResponse, TokenError> {
    // It passed `parse` once, so its type says its scheme.
    #[cfg(feature = "dpop")]
    let scheme = if token_type.eq_ignore_ascii_case(DPOP) { DPOP } else { BEARER };
    #[cfg(not(feature = "dpop"))]
    let scheme = BEARER;
    Ok(TokenResponse {
        header: authorization(Some(Value::String(access_token)), scheme)?,
        token_type,
        expires_in: Some(lifetime),
        refresh_in: None,
        scope,
    })
}

/// Whether a header this module built carries a DPoP-bound token (`DPoP <token>`).
#[cfg(feature = "dpop")]
pub(crate) fn is_dpop(header: &HeaderValue) -> bool {
    header.as_bytes().starts_with(b"DPoP ")
}

/// The token in a `<scheme> <token>` header this module built.
pub(crate) fn token_in(header: &HeaderValue) -> &str {
    // Built from printable ASCII, so `to_str` cannot fail.
    header.to_str().ok().and_then(|h| h.split_once(' ')).map_or("", |(_, token)| token)
}

fn text(value: &Option<Value>) -> Option<&str> {
    value.as_ref()?.as_str()
}

fn oauth_error(fields: &Fields) -> Option<OAuthError> {
    let error = text(&fields.error).or(text(&fields.apigee_error_code))?;
    let description = text(&fields.error_description).or(text(&fields.apigee_error));
    Some(OAuthError {
        error: sanitize(error, EXCERPT_CHARS),
        description: description.map(|d| sanitize(d, DESCRIPTION_CHARS)),
        uri: text(&fields.error_uri).map(|u| sanitize(u, EXCERPT_CHARS)),
    })
}

fn authorization(access_token: Option<Value>, scheme: &str) -> Result<HeaderValue, TokenError> {
    let token = match access_token {
        None | Some(Value::Null) => {
            return Err(TokenError::new(TokenErrorKind::MissingAccessToken))
        }
        Some(Value::String(token)) if token.is_empty() => {
            return Err(TokenError::new(TokenErrorKind::MissingAccessToken))
        }
        Some(Value::String(token)) => token,
        Some(_) => return Err(TokenError::new(TokenErrorKind::InvalidAccessToken)),
    };
    // RFC 6750's b64token is narrower; real servers issue JWTs and opaque strings that fit
    // this. What matters for safety is that nothing can end or split the header.
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::new(TokenErrorKind::InvalidAccessToken));
    }
    let mut header = HeaderValue::try_from(format!("{scheme} {token}"))
        .map_err(|_| TokenError::new(TokenErrorKind::InvalidAccessToken))?;
    header.set_sensitive(true);
    Ok(header)
}

/// The token type as sent (`Bearer` if none), and the scheme to send the token with. With
/// DPoP, RFC 9449 §5: the answer must say `DPoP`; a bearer answer means the server ignored the
/// proof, and the token is not bound to the key.
///
/// A token exchange may issue something other than an access token, `token_type` `N_A`: it is
/// sent as a bearer token when `not_an_access_token_ok` (another type was requested), and
/// refused otherwise.
fn token_type(
    value: Option<Value>,
    accepted: Accepted,
    not_an_access_token_ok: bool,
) -> Result<(String, &'static str), TokenError> {
    let unsupported = |detail: String| {
        Err(TokenError::about(TokenErrorKind::UnsupportedTokenType, "token_type", detail))
    };
    let bearer = match &value {
        None | Some(Value::Null) => Some(BEARER.to_owned()),
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("bearertoken") =>
        {
            Some(t.clone())
        }
        // Token types are case-insensitive (RFC 6749 §5.1), as `bearer` is read.
        Some(Value::String(t)) if t.eq_ignore_ascii_case(NOT_AN_ACCESS_TOKEN) => {
            if !not_an_access_token_ok {
                return unsupported(
                    "\"N_A\": the exchange issued something other than an access token; ask \
                     for another type with `requested_token_type` to accept it"
                        .to_owned(),
                );
            }
            Some(t.clone())
        }
        _ => None,
    };
    match (accepted, bearer) {
        (Accepted::Bearer, Some(t)) => Ok((t, BEARER)),
        #[cfg(feature = "dpop")]
        (Accepted::Dpop { allow_bearer: true }, Some(t)) => Ok((t, BEARER)),
        #[cfg(feature = "dpop")]
        (Accepted::Dpop { allow_bearer: false }, Some(t)) => unsupported(format!(
            "{} to a request with a DPoP proof: the server did not bind the token to the key \
             (`dpop_allow_bearer` accepts it)",
            quoted(&Value::String(t))
        )),
        #[cfg(feature = "dpop")]
        (Accepted::Dpop { .. }, None) => match &value {
            Some(Value::String(t)) if t.eq_ignore_ascii_case(DPOP) => Ok((t.clone(), DPOP)),
            other => unsupported(other.as_ref().map_or_else(String::new, quoted)),
        },
        (Accepted::Bearer, None) => unsupported(value.as_ref().map_or_else(String::new, quoted)),
    }
}

/// `expires_in` in seconds: a JSON number or a numeric string; absent or `null` means "not
/// said". Negative and non-numeric values are errors; huge values are capped at
/// [`LIFETIME_CEILING`]. Zero is a token at the end of its life, as a server that hands back
/// its current token until it expires answers in the last second: the cache refuses it as
/// expired on arrival, with the transient backoff, so that the renewal a moment later is not
/// held up by the rejection backoff.
fn expires_in(value: Option<Value>) -> Result<Option<Duration>, TokenError> {
    let seconds = match &value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Some(Duration::from_secs_f64(s.min(LIFETIME_CEILING.as_secs_f64()))))
        }
        _ => Err(TokenError::with_detail(
            TokenErrorKind::InvalidExpiresIn,
            value.as_ref().map_or_else(String::new, quoted),
        )),
    }
}

fn quoted(value: &Value) -> String {
    sanitize(&value.to_string(), 40)
}

/// [`excerpt`], unless the body may hold a token in some other format than JSON (a form-encoded
/// answer, say): that must not reach an error or a log.
fn success_excerpt(body: &[u8]) -> String {
    let lowercase = String::from_utf8_lossy(body).to_ascii_lowercase();
    if lowercase.contains("access_token") {
        "(body withheld: it may contain a token)".to_owned()
    } else {
        excerpt(body)
    }
}

/// The start of a body, as text safe to put in an error or a log.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let start = &body[..body.len().min(EXCERPT_CHARS * 4)];
    let text = sanitize(&String::from_utf8_lossy(start), EXCERPT_CHARS);
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> TokenResponse {
        parse(StatusCode::OK, None, body.as_bytes()).expect("should parse")
    }

    fn kind(status: u16, body: &str) -> TokenErrorKind {
        let status = StatusCode::from_u16(status).unwrap();
        parse(status, None, body.as_bytes()).expect_err("should fail").kind()
    }

    #[test]
    fn apigee_edge_response_is_accepted_verbatim() {
        let body = r#"{"issued_at":"1416157639014","application_name":"e49ef95f-6d32-4062-ac9a-3beea62ca922","scope":"",
 "status":"approved","api_product_list":"[Test App product]","expires_in":"3599",
 "developer.email":"testdev@example.com","organization_id":"0","token_type":"BearerToken",
 "client_id":"kWocGgKENrdWRT0jq4l0F0ACnPAQsD3","access_token":"WNSnwquKualbgnGeAK0EXGqzO3A",
 "organization_name":"example","refresh_token_expires_in":"0","refresh_count":"0"}"#;
        let response = ok(body);
        assert_eq!(response.header, "Bearer WNSnwquKualbgnGeAK0EXGqzO3A");
        assert!(response.header.is_sensitive());
        assert_eq!(response.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(response.token_type, "BearerToken");
        assert_eq!(response.scope, None);
    }

    #[test]
    fn standard_response_with_numbers_and_any_case_bearer() {
        let response = ok(
            r#"{"access_token":"abc.def-ghi","token_type":"bearer","expires_in":3600,"scope":"read"}"#,
        );
        assert_eq!(response.header, "Bearer abc.def-ghi");
        assert_eq!(response.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(response.scope.as_deref(), Some("read"));
        assert_eq!(ok(r#"{"access_token":"t"}"#).token_type, "Bearer");
        assert_eq!(ok(r#"{"access_token":"t","expires_in":null}"#).expires_in, None);
        assert_eq!(
            ok(r#"{"access_token":"t","expires_in":" 60 "}"#).expires_in,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn expires_in_extremes_have_a_defined_outcome() {
        for bad in [r#"-5"#, r#""abc""#, r#""NaN""#, r#"true"#, r#"[]"#, r#""-0.5""#] {
            let body = format!(r#"{{"access_token":"t","expires_in":{bad}}}"#);
            assert_eq!(kind(200, &body), TokenErrorKind::InvalidExpiresIn, "{bad}");
        }
        // At the end of its life: the cache refuses it as expired on arrival.
        assert_eq!(ok(r#"{"access_token":"t","expires_in":0}"#).expires_in, Some(Duration::ZERO));
        let half = ok(r#"{"access_token":"t","expires_in":"0.5"}"#);
        assert_eq!(half.expires_in, Some(Duration::from_millis(500)));
        let huge = ok(r#"{"access_token":"t","expires_in":1000000000000}"#);
        assert_eq!(huge.expires_in, Some(LIFETIME_CEILING));
        let enormous = ok(r#"{"access_token":"t","expires_in":1e300}"#);
        assert_eq!(enormous.expires_in, Some(LIFETIME_CEILING));
    }

    #[test]
    fn each_bad_success_body_has_its_own_kind() {
        assert_eq!(kind(200, "<html>oops</html>"), TokenErrorKind::MalformedResponse);
        assert_eq!(kind(200, "[1,2]"), TokenErrorKind::MalformedResponse);
        assert_eq!(kind(200, "{}"), TokenErrorKind::MissingAccessToken);
        assert_eq!(kind(200, r#"{"access_token":""}"#), TokenErrorKind::MissingAccessToken);
        assert_eq!(kind(200, r#"{"access_token":42}"#), TokenErrorKind::InvalidAccessToken);
        assert_eq!(kind(200, r#"{"access_token":"a\nb"}"#), TokenErrorKind::InvalidAccessToken);
        assert_eq!(kind(200, r#"{"access_token":"a b"}"#), TokenErrorKind::InvalidAccessToken);
        assert_eq!(kind(200, r#"{"access_token":"é"}"#), TokenErrorKind::InvalidAccessToken);
        assert_eq!(
            kind(200, r#"{"access_token":"t","token_type":"mac"}"#),
            TokenErrorKind::UnsupportedTokenType
        );
        assert_eq!(kind(200, r#"{"error":"invalid_scope"}"#), TokenErrorKind::ErrorResponse);
        // Without DPoP configured, a DPoP-bound token could not be used.
        assert_eq!(
            kind(200, r#"{"access_token":"t","token_type":"DPoP"}"#),
            TokenErrorKind::UnsupportedTokenType
        );
    }

    fn exchange(requested: Option<&str>, body: &str) -> Result<TokenResponse, TokenError> {
        let mut exchange = crate::TokenExchange::subject_token("s", "jwt");
        if let Some(requested) = requested {
            exchange = exchange.requested_token_type(requested);
        }
        let expected = Expected::new(
            &exchange.into(),
            #[cfg(feature = "dpop")]
            None,
        );
        parse_expecting(StatusCode::OK, None, body.as_bytes(), &expected)
    }

    #[test]
    fn a_token_exchange_answer_must_issue_the_requested_type() {
        const ACCESS: &str = crate::TokenExchange::ACCESS_TOKEN;
        let issued = |issued: &str, token_type: &str| {
            format!(
                r#"{{"access_token":"t","issued_token_type":"{issued}","token_type":"{token_type}"}}"#
            )
        };
        assert_eq!(exchange(Some(ACCESS), &issued(ACCESS, "Bearer")).unwrap().header, "Bearer t");
        assert_eq!(exchange(None, &issued(ACCESS, "Bearer")).unwrap().header, "Bearer t");
        let error =
            exchange(Some(ACCESS), &issued(crate::TokenExchange::JWT, "Bearer")).unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::IssuedTokenType);
        assert_eq!(error.field(), Some("issued_token_type"));
        assert!(error.to_string().contains("token-type:jwt"), "{error}");
        let missing = exchange(None, r#"{"access_token":"t","token_type":"Bearer"}"#).unwrap_err();
        assert_eq!(missing.kind(), TokenErrorKind::IssuedTokenType);
    }

    #[test]
    fn not_an_access_token_is_refused_unless_another_type_was_requested() {
        const ID: &str = crate::TokenExchange::ID_TOKEN;
        let body =
            format!(r#"{{"access_token":"t","issued_token_type":"{ID}","token_type":"N_A"}}"#);
        let response = exchange(Some(ID), &body).unwrap();
        assert_eq!((response.header.to_str().unwrap(), &*response.token_type), ("Bearer t", "N_A"));
        let error = exchange(None, &body).unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::UnsupportedTokenType);
        assert_eq!(error.field(), Some("token_type"));
        // Client credentials never take one.
        assert_eq!(
            kind(200, r#"{"access_token":"t","token_type":"N_A"}"#),
            TokenErrorKind::UnsupportedTokenType
        );
    }

    fn jwt_access_token(exp: u64) -> String {
        use base64::Engine;
        let encode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part);
        format!("{}.{}.sig", encode(r#"{"alg":"RS256"}"#), encode(&format!(r#"{{"exp":{exp}}}"#)))
    }

    #[test]
    fn without_expires_in_a_jwt_access_token_lives_until_its_exp() {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let body = format!(r#"{{"access_token":"{}"}}"#, jwt_access_token(now + 600));
        let lifetime = ok(&body).expires_in.unwrap();
        assert!(lifetime <= Duration::from_secs(600) && lifetime > Duration::from_secs(590));
        // `expires_in` wins when both are there.
        let body =
            format!(r#"{{"access_token":"{}","expires_in":60}}"#, jwt_access_token(now + 600));
        assert_eq!(ok(&body).expires_in, Some(Duration::from_secs(60)));
        // Already past: at the end of its life, refused by the cache as expired on arrival.
        let body = format!(r#"{{"access_token":"{}"}}"#, jwt_access_token(now - 10));
        assert_eq!(ok(&body).expires_in, Some(Duration::ZERO));
        // Not a JWT: the default lifetime applies.
        assert_eq!(ok(r#"{"access_token":"opaque"}"#).expires_in, None);
    }

    #[test]
    fn refresh_in_is_read_as_a_hint_and_ignored_when_unusable() {
        let hint = |value: &str| {
            ok(&format!(r#"{{"access_token":"t","expires_in":3600,"refresh_in":{value}}}"#))
                .refresh_in
        };
        assert_eq!(hint("1800"), Some(Duration::from_secs(1800)));
        assert_eq!(hint(r#""1800""#), Some(Duration::from_secs(1800)));
        for unusable in ["0", "-1", r#""soon""#, "null", "[]"] {
            assert_eq!(hint(unusable), None, "{unusable}");
        }
    }

    #[cfg(feature = "dpop")]
    #[test]
    fn with_dpop_a_dpop_token_is_sent_as_dpop_and_a_bearer_one_only_if_allowed() {
        let dpop = |body: &str, allow_bearer| {
            let expected = Expected::new(&Grant::ClientCredentials, Some(allow_bearer));
            parse_expecting(StatusCode::OK, None, body.as_bytes(), &expected)
        };
        let bound = dpop(r#"{"access_token":"t","token_type":"DPoP"}"#, false).unwrap();
        assert_eq!(bound.header, "DPoP t");
        assert!(bound.header.is_sensitive() && is_dpop(&bound.header));
        assert_eq!(bound.token_type, "DPoP");
        assert_eq!(
            dpop(r#"{"access_token":"t","token_type":"dpop"}"#, false).unwrap().header,
            "DPoP t"
        );
        for body in [r#"{"access_token":"t","token_type":"Bearer"}"#, r#"{"access_token":"t"}"#] {
            let error = dpop(body, false).unwrap_err();
            assert_eq!(error.kind(), TokenErrorKind::UnsupportedTokenType);
            assert!(error.to_string().contains("dpop_allow_bearer"), "{error}");
            let downgraded = dpop(body, true).unwrap();
            assert_eq!(downgraded.header, "Bearer t");
            assert!(!is_dpop(&downgraded.header));
        }
        let error = dpop(r#"{"access_token":"t","token_type":"mac"}"#, true).unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::UnsupportedTokenType);
        #[cfg(feature = "store")]
        {
            let stored = stored("t".into(), "DPoP".into(), None, Duration::from_secs(60)).unwrap();
            assert_eq!(stored.header, "DPoP t");
        }
    }

    #[test]
    fn a_success_body_that_may_hold_a_token_is_not_quoted() {
        let body = b"access_token=s3cr3t-token&token_type=bearer&expires_in=3600";
        let error = parse(StatusCode::OK, None, body).unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::MalformedResponse);
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
    }

    #[test]
    fn error_bodies_give_the_rfc_6749_fields() {
        let body = r#"{"error":"invalid_client","error_description":"bad\r\nsecret","error_uri":"https://x.example/e"}"#;
        let error = parse(StatusCode::UNAUTHORIZED, None, body.as_bytes()).unwrap_err();
        assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(error.oauth_error(), Some("invalid_client"));
        assert_eq!(error.error_description(), Some("bad secret"));
        assert_eq!(error.error_uri(), Some("https://x.example/e"));
    }

    #[test]
    fn apigee_error_bodies_are_understood() {
        let body = r#"{"ErrorCode":"invalid_client","Error":"ClientId is Invalid"}"#;
        let error = parse(StatusCode::UNAUTHORIZED, None, body.as_bytes()).unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
        assert_eq!(error.error_description(), Some("ClientId is Invalid"));
    }

    #[test]
    fn non_json_error_bodies_are_quoted_short_and_clean() {
        let page =
            format!("<html>\n<title>Bad Gateway</title>\u{1b}[31m{}</html>", "x".repeat(5000));
        let error = parse(StatusCode::BAD_GATEWAY, None, page.as_bytes()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "token endpoint answered HTTP 502 Bad Gateway: <html> <title>Bad Gateway</title>"
            ),
            "{text}"
        );
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.chars().count() < 300, "{text}");
    }

    #[test]
    fn sanitize_truncates_on_characters_not_bytes() {
        assert_eq!(sanitize("ééééé", 3), "ééé…");
        assert_eq!(sanitize("a\u{202E}b\tc", 10), "a b c");
        assert_eq!(sanitize("", 3), "");
    }

    mod properties {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        /// JSON values whose object keys are often the ones the parser reads.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                ),
                any::<String>().prop_map(Value::from),
                "[0-9. -]{0,12}".prop_map(Value::from),
            ];
            let key = prop_oneof![
                Just("access_token".to_owned()),
                Just("expires_in".to_owned()),
                Just("token_type".to_owned()),
                Just("scope".to_owned()),
                Just("error".to_owned()),
                Just("error_description".to_owned()),
                Just("ErrorCode".to_owned()),
                Just("Error".to_owned()),
                any::<String>(),
            ];
            leaf.prop_recursive(3, 64, 8, move |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..6).prop_map(Value::Array),
                    btree_map(key.clone(), inner, 0..8)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(status in 100u16..600, body in vec(any::<u8>(), 0..512)) {
                let status = StatusCode::from_u16(status).unwrap();
                if let Err(error) = parse(status, None, &body) {
                    let text = error.to_string();
                    prop_assert!(!text.chars().any(char::is_control));
                }
            }

            #[test]
            fn arbitrary_json_never_panics(status in 100u16..600, value in json()) {
                let status = StatusCode::from_u16(status).unwrap();
                let body = serde_json::to_vec(&value).unwrap();
                match parse(status, None, &body) {
                    Ok(response) => {
                        prop_assert!(status.is_success());
                        prop_assert!(response.header.to_str().is_ok());
                    }
                    Err(error) => prop_assert!(!error.to_string().chars().any(char::is_control)),
                }
            }

            #[test]
            fn sanitize_output_is_bounded_and_clean(text in any::<String>(), max in 0usize..50) {
                let clean = sanitize(&text, max);
                prop_assert!(clean.chars().count() <= max + 2);
                prop_assert!(!clean.chars().any(char::is_control));
            }
        }
    }
}
