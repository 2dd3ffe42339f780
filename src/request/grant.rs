//! The grant's part of a token request: its fixed form parameters, the tokens it presents
//! (read for each request, like a rotating client credential), and what its answer must be.
//!
//! A presented token that is a JWT whose `exp` has passed is never sent: the request fails
//! with [`GrantToken`](TokenErrorKind::GrantToken), naming the setting, before anything goes
//! out. A JWT's `exp` is read without checking its signature (the server checks that).

use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::config::{Grant, Held, Presented, Requested};
use crate::credential::{jwt_expiry, read_token_file};
use crate::error::{TokenError, TokenErrorKind};

/// The tokens a grant presents, by form parameter name.
pub(crate) type GrantTokens = Vec<(&'static str, SecretString)>;

/// The grant of one token endpoint.
pub(crate) struct GrantRequest {
    presented: Vec<Presented>,
}

impl GrantRequest {
    pub(crate) fn new(grant: &Grant) -> Self {
        Self { presented: grant.presented().cloned().collect() }
    }

    /// Whether the grant presents tokens read for each request.
    pub(crate) fn presents(&self) -> bool {
        !self.presented.is_empty()
    }

    /// The tokens to present now, read by `deadline` (the token request's); `fresh` right
    /// after the endpoint refused them.
    ///
    /// A source that hangs or panics fails as `GrantToken`, not as the token request's
    /// `Timeout` or `Panicked`: the endpoint was not asked, and must not be held back for
    /// other tokens (one user's session store, say, is not the token endpoint).
    pub(crate) async fn tokens(
        &self,
        fresh: bool,
        deadline: Option<Instant>,
    ) -> Result<GrantTokens, TokenError> {
        let mut tokens = Vec::with_capacity(self.presented.len());
        for presented in &self.presented {
            let read = AssertUnwindSafe(read(presented, fresh)).catch_unwind();
            let read = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, read).await.ok(),
                None => Some(read.await),
            };
            let setting = presented.setting;
            let failed = |why| TokenError::about(TokenErrorKind::GrantToken, setting, why);
            let token = match read {
                Some(Ok(token)) => token?,
                Some(Err(_)) => return Err(failed("its source panicked")),
                None => return Err(failed("its source did not answer within request_timeout")),
            };
            tokens.push((setting, token));
        }
        Ok(tokens)
    }

    /// Which tokens the sources hold now (see `CredentialSource::version`), combined; `None`
    /// if one cannot tell.
    pub(crate) fn version(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        for presented in &self.presented {
            let version = match &presented.held {
                Held::Value(_) => Some(0),
                Held::File(path) => crate::credential::file_version(path).or(Some(0)),
                // A source's panic means it cannot tell, as for the client's credential.
                Held::Source(source) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.version()))
                        .unwrap_or(None)
                }
            };
            version?.hash(&mut hasher);
        }
        Some(hasher.finish())
    }
}

/// The grant's fixed form parameters: its `grant_type` and the token types.
pub(crate) fn append_fixed(requested: &Requested, form: &mut form_urlencoded::Serializer<String>) {
    let grant = &requested.grant;
    form.append_pair("grant_type", grant.grant_type());
    for presented in grant.presented() {
        if let Some(token_type) = &presented.token_type {
            form.append_pair(&format!("{}_type", presented.setting), token_type);
        }
    }
    if let Grant::TokenExchange(exchange) = grant {
        if let Some(requested_type) = &exchange.requested_token_type {
            form.append_pair("requested_token_type", requested_type);
        }
    }
}

/// The token of `presented`, checked: not empty, and not an expired JWT.
async fn read(presented: &Presented, fresh: bool) -> Result<SecretString, TokenError> {
    let setting = presented.setting;
    let token = match &presented.held {
        Held::Value(value) => value.clone(),
        Held::File(path) => {
            read_token_file(path).map_err(|e| TokenError::grant_token(setting, e.into()))?
        }
        Held::Source(source) => {
            // Asked inside this future, so that a source that panics when called is caught
            // with one that panics when polled.
            let credential = async { source.credential(fresh).await };
            credential.await.map_err(|e| TokenError::grant_token(setting, e))?
        }
    };
    let text = token.expose_secret();
    if text.trim().is_empty() {
        return Err(TokenError::about(TokenErrorKind::GrantToken, setting, "it is empty"));
    }
    if let Some(exp) = jwt_expiry(text).filter(|exp| *exp <= SystemTime::now()) {
        let at = httpdate::fmt_http_date(exp);
        return Err(TokenError::about(
            TokenErrorKind::GrantToken,
            setting,
            format!("it is a JWT that expired at {at}"),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::config::TokenExchange;

    fn jwt(exp: u64) -> String {
        let encode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part);
        format!("{}.{}.sig", encode(r#"{"alg":"none"}"#), encode(&format!(r#"{{"exp":{exp}}}"#)))
    }

    #[tokio::test]
    async fn an_expired_subject_token_is_refused_naming_the_setting() {
        let grant = Grant::from(TokenExchange::subject_token(jwt(1_000), "jwt"));
        let error = GrantRequest::new(&grant).tokens(false, None).await.unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::GrantToken);
        assert_eq!(error.field(), Some("subject_token"));
        assert!(error.to_string().contains("expired at"), "{error}");
        assert!(!error.to_string().contains(&jwt(1_000)), "{error}");
    }

    #[tokio::test]
    async fn a_missing_actor_token_file_is_refused_naming_the_setting() {
        let exchange = TokenExchange::subject_token("opaque-user-token", "access_token")
            .actor_token_file("/nonexistent/actor", "jwt");
        let error = GrantRequest::new(&exchange.into()).tokens(false, None).await.unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::GrantToken);
        assert_eq!(error.field(), Some("actor_token"));
        assert!(error.is_transient());
    }

    #[test]
    fn the_fixed_form_names_the_grant_and_every_token_type() {
        let exchange = TokenExchange::subject_token("s", "jwt")
            .actor_token("a", "access_token")
            .requested_token_type("id_token");
        let requested = Requested { grant: exchange.into(), ..Requested::default() };
        let mut form = form_urlencoded::Serializer::new(String::new());
        append_fixed(&requested, &mut form);
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(form.finish().as_bytes()).into_owned().collect();
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(
            pairs,
            [
                pair("grant_type", TokenExchange::GRANT_TYPE),
                pair("subject_token_type", TokenExchange::JWT),
                pair("actor_token_type", TokenExchange::ACCESS_TOKEN),
                pair("requested_token_type", TokenExchange::ID_TOKEN),
            ]
        );
    }
}
