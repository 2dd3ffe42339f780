//! Error types: [`ConfigError`] from [`ConfigBuilder::build`](crate::ConfigBuilder::build), and
//! [`TokenError`] when no token could be had.
//!
//! [`TokenError`] is `Clone` (it is an `Arc` inside) because one failed token request answers
//! every caller that was waiting for it: each gets the same error, not a vaguer copy. The layer's
//! service returns it boxed, as [`BoxError`](tower::BoxError), so callers downcast to inspect it:
//!
//! ```
//! # use tower_client_credentials::{BoxError, TokenError};
//! fn is_bad_credentials(error: &BoxError) -> bool {
//!     error
//!         .downcast_ref::<TokenError>()
//!         .is_some_and(|e| e.oauth_error() == Some("invalid_client"))
//! }
//! ```
//!
//! Nothing here ever holds the client secret or a token. Text that came from the network
//! (`error_description`, a body excerpt) is truncated and stripped of control characters first.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// A setting given to [`ConfigBuilder`](crate::ConfigBuilder) is unusable.
///
/// [`field`](Self::field) names the setting; the `Display` text says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }

    /// The name of the offending setting, e.g. `"token_url"` or `"scope"`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it, e.g. `"must not be empty"`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl Error for ConfigError {}

/// Whether retrying the token request could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The endpoint could not be reached or was temporarily unable to answer (connection
    /// failure, timeout, 5xx, 429). Retried after a short backoff.
    Transient,
    /// The endpoint answered, and the answer says this request will not work as configured:
    /// an RFC 6749 §5.2 error such as `invalid_client`, another 4xx, or a success response
    /// that is not a usable token. Retried after a longer backoff.
    Rejected,
}

/// What went wrong with a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// No connection could be made to the token endpoint.
    Connect,
    /// The connection failed after it was made, e.g. closed in the middle of the body.
    Transport,
    /// No complete response within the configured `request_timeout`.
    Timeout,
    /// The endpoint answered with an error: a non-success status, or a success status whose
    /// body carries an RFC 6749 `error`. See [`TokenError::status`] and
    /// [`TokenError::oauth_error`].
    ErrorResponse,
    /// A success status whose body is not a JSON object.
    MalformedResponse,
    /// The response body is larger than the 1 MiB cap; it was not read past the cap.
    BodyTooLarge,
    /// The response has no `access_token`, or it is empty.
    MissingAccessToken,
    /// The `access_token` cannot be sent in a header (control characters, spaces, non-ASCII),
    /// or is longer than 8 KiB, which most servers refuse in a header.
    InvalidAccessToken,
    /// The `token_type` is not a bearer type.
    UnsupportedTokenType,
    /// The `expires_in` is not a positive number of seconds.
    InvalidExpiresIn,
    /// The token requests this caller started or joined all ended without an answer: their
    /// runtime was shutting down. Only seen while a runtime shuts down; the next caller on a
    /// live runtime starts a new request.
    Stopped,
    /// A token request panicked (in a token store of yours, for instance). Retried after the transient backoff, like any failure.
    Panicked,
    /// A token is needed but there is no Tokio runtime to request it on: the token request
    /// runs in a task on the caller's runtime. Call from within a Tokio runtime.
    NoRuntime,
    /// The token was no longer usable when its answer arrived: the token endpoint took longer
    /// to answer than the token's lifetime (less `expiry_margin`), or handed out a token at the
    /// end of its life (`expires_in` under a second, as servers that hand back their current
    /// token until it expires do). Retried after the transient backoff.
    ExpiredOnArrival,
    /// The client assertion (`private_key_jwt`, `client_secret_jwt`) could not be signed; no
    /// request was sent.
    ClientAssertion,
    /// The client's credential could not be had from its source (a
    /// [`client_assertion_file`](crate::ConfigBuilder::client_assertion_file) that is missing
    /// or expired, a `CredentialSource` of yours that failed); no request was sent. Its
    /// [`source`](std::error::Error::source) says why: a `CredentialError` for a file.
    /// Transient: the platform may be replacing the file.
    Credential,
    /// A DPoP proof could not be made (feature `dpop`): the request's URI has no scheme and
    /// authority to bind it to, or signing failed. No request was sent.
    #[cfg(feature = "dpop")]
    DpopProof,
    /// A token the grant presents (token exchange's subject or actor token, the JWT bearer
    /// grant's assertion) could not be had: its file is missing or empty, its source failed,
    /// or it is a JWT whose `exp` has passed. No request was sent. [`TokenError::field`] names
    /// the setting (`subject_token`, `actor_token`, `assertion`); the
    /// [`source`](std::error::Error::source) is a `CredentialError` for a file. Transient: the
    /// platform may be replacing the file.
    GrantToken,
    /// A token exchange answer whose `issued_token_type` is missing, or is not the
    /// `requested_token_type`: the server did not issue what was asked for.
    /// [`TokenError::field`] is `issued_token_type`.
    IssuedTokenType,
    /// The request's [`TokenParams`](crate::TokenParams) could not go into a token request (a
    /// scope with a quote, a reserved parameter name); the request was not sent. Its
    /// [`source`](std::error::Error::source) is the `ConfigError` naming the parameter.
    TokenParams,
}

/// A token could not be obtained from the token endpoint.
///
/// Carries the [kind](Self::kind) of failure, its [class](Self::class), the HTTP
/// [status](Self::status) when the endpoint answered, and the RFC 6749 §5.2 fields of an error
/// response. Cloning is cheap.
#[derive(Clone)]
pub struct TokenError {
    inner: Arc<Inner>,
}

struct Inner {
    kind: TokenErrorKind,
    status: Option<StatusCode>,
    oauth: Option<OAuthError>,
    /// Context for `Display`: the URL that could not be reached, or an excerpt of a bad body.
    detail: Option<String>,
    retry_after: Option<Duration>,
    source: Option<Box<dyn Error + Send + Sync>>,
    /// Which token endpoint and client: what someone on call needs first.
    at: Option<At>,
    /// The setting or response field the error is about, for kinds that name one.
    field: Option<&'static str>,
}

/// The token endpoint (its URL without query) and the client id an error is about.
struct At {
    token_url: String,
    client_id: String,
}

/// The RFC 6749 §5.2 fields of an error response, already sanitized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) error: String,
    pub(crate) description: Option<String>,
    pub(crate) uri: Option<String>,
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind) -> Self {
        Self::build(kind, |_| {})
    }

    fn build(kind: TokenErrorKind, fill: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            kind,
            status: None,
            oauth: None,
            detail: None,
            retry_after: None,
            source: None,
            at: None,
            field: None,
        };
        fill(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    pub(crate) fn with_detail(kind: TokenErrorKind, detail: impl Into<String>) -> Self {
        Self::build(kind, |inner| inner.detail = Some(detail.into()))
    }

    pub(crate) fn network(
        kind: TokenErrorKind,
        url: &str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self::build(kind, |inner| {
            inner.detail = Some(url.to_owned());
            inner.source = Some(source.into());
        })
    }

    /// The credential source failed with `source`.
    pub(crate) fn credential(source: tower::BoxError) -> Self {
        Self::build(TokenErrorKind::Credential, |inner| inner.source = Some(source))
    }

    /// Names the token endpoint at `token_url` (its query left out) and the client, unless
    /// the error names them already (it is then shared with other callers, and whole).
    pub(crate) fn at(mut self, token_url: &url::Url, client_id: &str) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner).filter(|inner| inner.at.is_none()) {
            let token_url = token_url[..url::Position::AfterPath].to_owned();
            inner.at = Some(At { token_url, client_id: client_id.to_owned() });
        }
        self
    }

    /// An error about the setting or response field `field`.
    pub(crate) fn about(
        kind: TokenErrorKind,
        field: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::build(kind, |inner| {
            inner.field = Some(field);
            inner.detail = Some(detail.into());
        })
    }

    /// The token the grant presents as `setting` could not be had, because of `source`.
    pub(crate) fn grant_token(setting: &'static str, source: tower::BoxError) -> Self {
        Self::build(TokenErrorKind::GrantToken, |inner| {
            inner.field = Some(setting);
            inner.source = Some(source);
        })
    }

    pub(crate) fn token_params(error: ConfigError) -> Self {
        Self::build(TokenErrorKind::TokenParams, |inner| inner.source = Some(Box::new(error)))
    }

    /// Whether the endpoint refused the client itself (`invalid_client`,
    /// `unauthorized_client`): what a rotated credential can fix.
    pub(crate) fn rejects_the_client(&self) -> bool {
        matches!(self.oauth_error(), Some("invalid_client" | "unauthorized_client"))
    }

    /// Whether the endpoint may have refused what the grant presented: what a rotated subject
    /// token or assertion can fix. RFC 7521 §4.1.1 answers a bad assertion `invalid_grant`;
    /// RFC 8693 §2.2.2 a bad subject or actor token `invalid_request`.
    pub(crate) fn rejects_the_grant(&self) -> bool {
        matches!(self.oauth_error(), Some("invalid_grant" | "invalid_request"))
    }

    /// An error answer from the endpoint. `excerpt` is used when the body has no OAuth fields.
    pub(crate) fn response(
        status: StatusCode,
        oauth: Option<OAuthError>,
        excerpt: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self::build(TokenErrorKind::ErrorResponse, |inner| {
            inner.status = Some(status);
            inner.oauth = oauth;
            inner.detail = excerpt;
            inner.retry_after = retry_after;
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> TokenErrorKind {
        self.inner.kind
    }

    /// Whether a later attempt could succeed without a configuration change.
    pub fn class(&self) -> ErrorClass {
        use TokenErrorKind::*;
        match self.inner.kind {
            Connect | Transport | Timeout | Stopped | Panicked | ExpiredOnArrival | Credential
            | GrantToken => ErrorClass::Transient,
            ErrorResponse => match self.inner.status {
                Some(s) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    ErrorClass::Transient
                }
                _ => ErrorClass::Rejected,
            },
            MalformedResponse | BodyTooLarge | MissingAccessToken | InvalidAccessToken
            | UnsupportedTokenType | InvalidExpiresIn | IssuedTokenType => ErrorClass::Rejected,
            // A key that cannot sign will not sign on the next try either.
            ClientAssertion => ErrorClass::Rejected,
            #[cfg(feature = "dpop")]
            DpopProof => ErrorClass::Rejected,
            // Calling again from the same place will not bring a runtime, nor other parameters.
            NoRuntime | TokenParams => ErrorClass::Rejected,
        }
    }

    /// `true` for [`ErrorClass::Transient`].
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The HTTP status of the token endpoint's answer, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The RFC 6749 §5.2 `error` code, e.g. `invalid_client` (Apigee's `ErrorCode` too).
    pub fn oauth_error(&self) -> Option<&str> {
        self.inner.oauth.as_ref().map(|o| o.error.as_str())
    }

    /// The token endpoint the request went to, without its query; `None` for an error made
    /// before any (bad `TokenParams`).
    pub fn token_url(&self) -> Option<&str> {
        self.inner.at.as_ref().map(|at| at.token_url.as_str())
    }

    /// The client id of the token request; `None` as for [`token_url`](Self::token_url).
    pub fn client_id(&self) -> Option<&str> {
        self.inner.at.as_ref().map(|at| at.client_id.as_str())
    }

    /// The `error_description`, whole (up to 1,024 characters: Microsoft Entra's Trace ID,
    /// Correlation ID and Timestamp included) and stripped of control characters. `Display`
    /// shows its first 200.
    pub fn error_description(&self) -> Option<&str> {
        self.inner.oauth.as_ref()?.description.as_deref()
    }

    /// The `error_uri`, truncated and stripped of control characters.
    pub fn error_uri(&self) -> Option<&str> {
        self.inner.oauth.as_ref()?.uri.as_deref()
    }

    /// The setting or response field the error is about: `subject_token`, `actor_token` or
    /// `assertion` for [`GrantToken`](TokenErrorKind::GrantToken), `issued_token_type` for
    /// [`IssuedTokenType`](TokenErrorKind::IssuedTokenType), `token_type` for
    /// [`UnsupportedTokenType`](TokenErrorKind::UnsupportedTokenType); `None` for the others.
    ///
    /// ```
    /// # fn report(error: &tower_client_credentials::TokenError) {
    /// if let Some(field) = error.field() {
    ///     eprintln!("check `{field}`: {error}");
    /// }
    /// # }
    /// ```
    pub fn field(&self) -> Option<&'static str> {
        self.inner.field
    }

    /// How long the endpoint asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TokenErrorKind::*;
        let inner = &*self.inner;
        let detail = inner.detail.as_deref().unwrap_or("");
        match inner.kind {
            Connect => write!(f, "could not connect to the token endpoint {detail}")?,
            Transport => write!(f, "connection to the token endpoint {detail} failed")?,
            Timeout => f.write_str("token endpoint did not answer within the request timeout")?,
            ErrorResponse => match &inner.oauth {
                Some(oauth) => {
                    write!(
                        f,
                        "token endpoint rejected {}: {}",
                        subject(&oauth.error),
                        oauth.error
                    )?;
                    // Whole in `error_description()`; a line of a log is enough here.
                    if let Some(description) = &oauth.description {
                        write!(f, " ({})", sanitize(description, DISPLAYED_DESCRIPTION_CHARS))?;
                    }
                }
                None => {
                    let status = inner.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    write!(f, "token endpoint answered HTTP {status}")?;
                    if !detail.is_empty() {
                        write!(f, ": {detail}")?;
                    }
                }
            },
            MalformedResponse => write!(f, "token response is not a JSON object: {detail}")?,
            BodyTooLarge => f.write_str("token response body is larger than 1 MiB")?,
            MissingAccessToken => f.write_str("token response has no access_token")?,
            InvalidAccessToken => f.write_str(
                "token response access_token is not usable in a header \
                 (it must be printable ASCII without spaces, at most 8 KiB)",
            )?,
            UnsupportedTokenType => {
                write!(f, "token response has unsupported token_type {detail}")?
            }
            InvalidExpiresIn => write!(f, "token response has invalid expires_in {detail}")?,
            Stopped => {
                f.write_str("token request stopped without an answer: its runtime shut down")?
            }
            Panicked => f.write_str("token request panicked")?,
            NoRuntime => {
                f.write_str("no Tokio runtime: a token request must be made from within one")?
            }
            ExpiredOnArrival => f.write_str(
                "token was no longer usable when its answer arrived (the token endpoint was \
                 slower than the token's lifetime, or handed out a token about to expire)",
            )?,
            ClientAssertion => write!(f, "could not sign the client assertion: {detail}")?,
            // The source names the file as well as the cause: shown whole, not only its root.
            Credential => {
                f.write_str("could not get the client credential")?;
                if let Some(source) = &inner.source {
                    write!(f, ": {source}")?;
                }
                return self.fmt_at(f);
            }
            GrantToken => {
                let setting = inner.field.unwrap_or("grant token");
                write!(f, "could not get the `{setting}` to present")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                if let Some(source) = &inner.source {
                    write!(f, ": {source}")?;
                }
                return self.fmt_at(f);
            }
            IssuedTokenType => write!(f, "token response has {detail}")?,
            #[cfg(feature = "dpop")]
            DpopProof => write!(f, "could not make the DPoP proof: {detail}")?,
            TokenParams => f.write_str("the request's token parameters cannot be sent")?,
        }
        // The root cause (e.g. "Connection refused") is what an operator needs; the wrapping
        // errors in between only repeat the URL.
        if let Some(root) = self.source().map(root_cause) {
            write!(f, ": {root}")?;
        }
        self.fmt_at(f)
    }
}

impl TokenError {
    /// ` (token endpoint <url>, client <id>)`, when the error names them; a network error's
    /// message names the URL already.
    fn fmt_at(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let url_named = matches!(inner.kind, TokenErrorKind::Connect | TokenErrorKind::Transport)
            && inner.detail.is_some();
        match &inner.at {
            Some(at) if url_named => write!(f, " (client {})", at.client_id),
            Some(at) => write!(f, " (token endpoint {}, client {})", at.token_url, at.client_id),
            None => Ok(()),
        }
    }
}

/// How much of an `error_description` the message shows; the error keeps it all.
const DISPLAYED_DESCRIPTION_CHARS: usize = 200;

/// What an RFC 6749 §5.2 error code says was rejected, for the error message.
fn subject(code: &str) -> &'static str {
    match code {
        "invalid_client" | "unauthorized_client" => "the client",
        "invalid_scope" => "the scope",
        "invalid_grant" | "unsupported_grant_type" => "the grant",
        _ => "the request",
    }
}

fn root_cause<'a>(mut error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    while let Some(source) = error.source() {
        error = source;
    }
    error
}

impl fmt::Debug for TokenError {
    /// The message and the error's kind and class, so that `?` out of `main` says what
    /// happened; `{:#?}` shows every field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        if !f.alternate() {
            return write!(f, "{self} [{:?}, {:?}]", inner.kind, self.class());
        }
        f.debug_struct("TokenError")
            .field("kind", &inner.kind)
            .field("class", &self.class())
            .field("status", &inner.status)
            .field("oauth", &inner.oauth)
            .field("detail", &inner.detail)
            .field("retry_after", &inner.retry_after)
            .field("token_url", &self.token_url())
            .field("client_id", &self.client_id())
            .field("source", &inner.source)
            .finish()
    }
}

impl Error for TokenError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl TokenError {
    /// The `TokenError` somewhere in `error`'s chain, if there is one: the layer's
    /// [`BoxError`](tower::BoxError), a `tonic::Status` a gRPC client made of it, or (feature
    /// `reqwest-middleware`) a `reqwest_middleware::Error`, whose `source()` does not lead to
    /// it.
    ///
    /// ```
    /// use tower_client_credentials::{BoxError, TokenError};
    ///
    /// fn on_call(error: &BoxError) -> String {
    ///     match TokenError::find(error.as_ref()) {
    ///         Some(token) => format!("no token: {token} ({:?})", token.class()),
    ///         None => format!("the API call failed: {error}"),
    ///     }
    /// }
    /// ```
    pub fn find<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a TokenError> {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(found) = error.downcast_ref::<TokenError>() {
                return Some(found);
            }
            #[cfg(feature = "reqwest-middleware")]
            if let Some(reqwest_middleware::Error::Middleware(inner)) = error.downcast_ref() {
                return inner.chain().find_map(|cause| cause.downcast_ref::<TokenError>());
            }
            next = error.source();
        }
        None
    }
}

/// For a gRPC client: `Unauthenticated` when the client was rejected (asking again will not
/// help until its credentials change), `Unavailable` when the failure may pass (a retry
/// policy retries it). The status keeps the error as its source.
#[cfg(feature = "tonic")]
impl From<TokenError> for tonic::Status {
    fn from(error: TokenError) -> Self {
        let code = match error.class() {
            ErrorClass::Rejected => tonic::Code::Unauthenticated,
            ErrorClass::Transient => tonic::Code::Unavailable,
        };
        let mut status = tonic::Status::new(code, error.to_string());
        status.set_source(Arc::new(error));
        status
    }
}

/// Replaces control and bidirectional-override characters with spaces, collapses runs of
/// whitespace, and truncates to `max_chars`, so that text from the network cannot forge log
/// lines or hide what it says.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let is_unsafe = |c: char| {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    let cleaned = text.chars().map(|c| if is_unsafe(c) { ' ' } else { c }).collect::<String>();
    let mut words = cleaned.split_whitespace();
    let mut out = String::new();
    let mut count = 0;
    for (i, word) in words.by_ref().enumerate() {
        let separator = usize::from(i > 0);
        let len = word.chars().count();
        if count + separator + len > max_chars {
            if i > 0 {
                out.push(' ');
                count += 1;
            }
            out.extend(word.chars().take(max_chars.saturating_sub(count)));
            out.push('…');
            return out;
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        count += separator + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_names_the_client_and_the_description() {
        let oauth = OAuthError {
            error: "invalid_client".into(),
            description: Some("client authentication failed".into()),
            uri: None,
        };
        let error = TokenError::response(StatusCode::UNAUTHORIZED, Some(oauth), None, None);
        assert_eq!(
            error.to_string(),
            "token endpoint rejected the client: invalid_client (client authentication failed)"
        );
        assert_eq!(error.class(), ErrorClass::Rejected);
    }

    #[test]
    fn server_errors_and_rate_limits_are_transient() {
        for status in [500, 503, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            let error = TokenError::response(status, None, None, None);
            assert_eq!(error.class(), ErrorClass::Transient, "{status}");
        }
        let error = TokenError::response(StatusCode::BAD_REQUEST, None, None, None);
        assert_eq!(error.class(), ErrorClass::Rejected);
    }
}
