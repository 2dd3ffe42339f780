//! The token request (RFC 6749 §4.4.2, and for other grants RFC 8693 §2.1 and RFC 7523 §2.1):
//! one form `POST` to the token endpoint.
//!
//! What never changes between requests (grant type, scopes, audience, resources, parameters)
//! is encoded once, when the layer is built. The client's credential and the tokens the grant
//! presents are added per request: a secret or a subject token may come from a source that
//! rotates it, and each assertion is new (signed with a new `jti` and `iat`, retries
//! included, or read anew from its source).
//!
//! When the endpoint refuses the client or the grant's token and its source has something new
//! (rotated since it was read), the request is sent again at once with it: once, so that a
//! credential that is simply wrong still backs off. The endpoint also
//! remembers which credential it last saw rejected ([`CredentialVersion`]), so that the cache
//! can ask again as soon as that credential changes rather than wait out the backoff.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

#[cfg(feature = "jwt")]
mod assertion;
pub(crate) mod discovery;
#[cfg(feature = "dpop")]
pub(crate) mod dpop;
mod grant;
pub(crate) mod response;

#[cfg(feature = "jwt")]
use assertion::AssertionSigner;
use grant::{GrantRequest, GrantTokens};
use response::{Expected, TokenResponse};

use crate::config::{AuthMethod, Endpoint, Requested};
use crate::credential::CredentialSource;
use crate::credential::{CredentialFiles, Seen};
use crate::error::{ConfigError, TokenError, TokenErrorKind};

/// The most of a response body that is read.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest `Retry-After` honoured; a longer one is taken to be this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Which credential a token request sent: the version of its source (see
/// [`CredentialSource::version`]) and of the key and certificate files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CredentialVersion {
    source: Option<u64>,
    files: Option<Seen>,
    /// The tokens the grant presents, if it reads them for each request.
    grant: Option<u64>,
}

/// A token endpoint and what to send it.
pub(crate) struct TokenEndpoint {
    /// Replaced when the client certificate file changes.
    client: Mutex<reqwest::Client>,
    url: Url,
    /// The form body without the client's credential.
    form: String,
    client_id: String,
    method: AuthMethod,
    client_assertion_type: String,
    form_encode_basic_credentials: bool,
    /// The client secret given to the builder (empty if there is none).
    secret: SecretString,
    /// Where the method's credential comes from when it rotates: the client secret, or the
    /// client assertion.
    source: Option<Arc<dyn CredentialSource>>,
    /// Signs a client assertion for each request, with the JWT methods and a key or secret.
    #[cfg(feature = "jwt")]
    signer: Mutex<Option<AssertionSigner>>,
    /// The tokens the grant presents (token exchange, JWT bearer).
    grant: GrantRequest,
    /// Why this client cannot ask for this grant at all (a grant from `TokenParams`): every
    /// request fails with it, and nothing is sent.
    unsendable: Option<ConfigError>,
    /// Signs the JWT bearer grant's assertion for each request, with the client key.
    #[cfg(feature = "jwt")]
    grant_signer: Mutex<Option<AssertionSigner>>,
    /// What the answer must be.
    expected: Expected,
    /// The key and certificate files to read again when they change (shared with the other
    /// endpoints of the configuration), and which versions of them this one uses.
    files: Option<(Arc<CredentialFiles>, Mutex<Seen>)>,
    /// The credential the endpoint rejected last, until one is accepted.
    rejected: Mutex<Option<CredentialVersion>>,
    /// A DPoP proof for each request, and the endpoint's nonce.
    #[cfg(feature = "dpop")]
    dpop: Option<dpop::TokenProofs>,
    timeout: Duration,
}

impl TokenEndpoint {
    /// The endpoint of `endpoint`, asking for what `requested` says.
    pub(crate) fn new(endpoint: &Endpoint, requested: &Requested) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        grant::append_fixed(requested, &mut form);
        #[cfg(feature = "jwt")]
        let grant_signer = AssertionSigner::for_grant(endpoint, requested);
        #[cfg(feature = "jwt")]
        let scopes_in_assertion = grant_signer.as_ref().is_some_and(AssertionSigner::has_scope);
        #[cfg(not(feature = "jwt"))]
        let scopes_in_assertion = false;
        if !requested.scopes.is_empty() && !scopes_in_assertion {
            form.append_pair("scope", &requested.scopes.join(" "));
        }
        if let Some(audience) = &requested.audience {
            form.append_pair("audience", audience);
        }
        for resource in &requested.resources {
            form.append_pair("resource", resource);
        }
        for (name, value) in &requested.params {
            form.append_pair(name, value);
        }
        let source = match endpoint.auth_method {
            AuthMethod::PrivateKeyJwt => endpoint.client_assertion_source.clone(),
            method if method.is_mutual_tls() => None,
            _ => endpoint.client_secret_source.clone(),
        };
        let url = &endpoint.token_url;
        Self {
            client: Mutex::new(endpoint.http_client.clone()),
            url: url.clone(),
            form: form.finish(),
            client_id: endpoint.client_id.clone(),
            method: endpoint.auth_method,
            client_assertion_type: endpoint.client_assertion_type.clone(),
            form_encode_basic_credentials: endpoint.form_encode_basic_credentials,
            secret: endpoint.client_secret.clone(),
            source,
            #[cfg(feature = "jwt")]
            signer: Mutex::new(AssertionSigner::new(endpoint)),
            grant: GrantRequest::new(&requested.grant),
            unsendable: requested.grant.unusable_by(endpoint),
            #[cfg(feature = "jwt")]
            grant_signer: Mutex::new(grant_signer),
            expected: Expected::new(
                &requested.grant,
                #[cfg(feature = "dpop")]
                endpoint.dpop.as_ref().map(|dpop| dpop.allow_bearer),
            ),
            files: endpoint.credential_files.clone().map(|files| (files, Mutex::default())),
            rejected: Mutex::new(None),
            #[cfg(feature = "dpop")]
            dpop: endpoint.dpop.as_ref().map(|dpop| dpop::TokenProofs::new(dpop, url)),
            timeout: endpoint.request_timeout,
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a token request and reads its answer, all within the request timeout: once, or
    /// twice when the endpoint refused the client or the grant's token and it has rotated
    /// since.
    pub(crate) async fn request(&self) -> Result<TokenResponse, TokenError> {
        if let Some(error) = &self.unsendable {
            return Err(TokenError::token_params(error.clone()));
        }
        // One deadline for the whole request and for reading the grant's tokens, which then
        // fail first, and as theirs.
        let Some(deadline) = tokio::time::Instant::now().checked_add(self.timeout) else {
            return self.request_with_rotation(None).await;
        };
        tokio::time::timeout_at(deadline, self.request_with_rotation(Some(deadline)))
            .await
            .unwrap_or_else(|_| Err(TokenError::new(TokenErrorKind::Timeout)))
    }

    async fn request_with_rotation(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<TokenResponse, TokenError> {
        self.reload_changed_files();
        // Taken before the credentials are read: a change after it is a change.
        let mut version = self.credential_version();
        let credential = self.rotating_credential(false).await?;
        let tokens = self.grant.tokens(false, deadline).await?;
        let mut result = self.exchange(credential.as_ref(), &tokens).await;
        let refused = |result: &Result<_, TokenError>| {
            result.as_ref().is_err_and(|e| e.rejects_the_client() || e.rejects_the_grant())
        };
        if refused(&result) && (credential.is_some() || self.grant.presents()) {
            version = self.credential_version();
            let fresh = match &credential {
                Some(_) => self.rotating_credential(true).await?,
                None => None,
            };
            let fresh_tokens = self.grant.tokens(true, deadline).await?;
            let changed =
                |a: &SecretString, b: &SecretString| a.expose_secret() != b.expose_secret();
            let credential_changed =
                fresh.as_ref().zip(credential.as_ref()).is_some_and(|(a, b)| changed(a, b));
            let tokens_changed =
                fresh_tokens.iter().zip(&tokens).any(|((_, a), (_, b))| changed(a, b));
            if credential_changed || tokens_changed {
                tracing::info!(
                    "the token endpoint refused a credential that has changed since; asking again"
                );
                result = self.exchange(fresh.as_ref().or(credential.as_ref()), &fresh_tokens).await;
            }
        }
        let mut last_rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(_) => *last_rejected = None,
            Err(_) if refused(&result) => *last_rejected = Some(version),
            Err(_) => {}
        }
        drop(last_rejected);
        result
    }

    /// Which credential the client would send now: the source's version, and the key and
    /// certificate files'.
    fn credential_version(&self) -> CredentialVersion {
        // A source's panic means it cannot tell; it must not reach the caller asking.
        let source = self.source.as_ref().and_then(|source| {
            std::panic::catch_unwind(AssertUnwindSafe(|| source.version())).unwrap_or(None)
        });
        CredentialVersion {
            source,
            files: self.files.as_ref().map(|(files, _)| files.look()),
            grant: self.grant.presents().then(|| self.grant.version()).flatten(),
        }
    }

    /// Whether the client's credential changed since the endpoint last rejected it: worth
    /// asking again at once. A source that cannot tell its version never counts as changed.
    pub(crate) fn credential_changed(&self) -> bool {
        let rejected = self.rejected_credential();
        rejected.is_some_and(|rejected| rejected != self.credential_version())
    }

    /// The credential the endpoint rejected last, until one is accepted: a cache made again
    /// for the same token takes it up ([`remember_rejected`](Self::remember_rejected)).
    pub(crate) fn rejected_credential(&self) -> Option<CredentialVersion> {
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn remember_rejected(&self, credential: Option<CredentialVersion>) {
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) = credential;
    }

    /// Takes the new client certificate or key, if their files changed.
    fn reload_changed_files(&self) {
        let Some((files, seen)) = &self.files else { return };
        let reloaded = files.reload(&mut seen.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(client) = reloaded.http_client {
            *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
        }
        #[cfg(feature = "jwt")]
        if let Some(key) = reloaded.client_key {
            for signer in [&self.signer, &self.grant_signer] {
                let mut signer = signer.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(signer) = signer.as_mut() {
                    signer.use_key(&key);
                }
            }
        }
    }

    /// The credential from the method's source, if it has one; `fresh` right after a
    /// rejection.
    async fn rotating_credential(&self, fresh: bool) -> Result<Option<SecretString>, TokenError> {
        let Some(source) = &self.source else { return Ok(None) };
        source.credential(fresh).await.map(Some).map_err(TokenError::credential)
    }

    /// One request, with `rotating` (the credential from the source) or else the fixed one.
    /// With DPoP, a server that answers `use_dpop_nonce` with a new nonce gets it once more,
    /// with that nonce.
    async fn exchange(
        &self,
        rotating: Option<&SecretString>,
        tokens: &GrantTokens,
    ) -> Result<TokenResponse, TokenError> {
        let answer = self.send(rotating, tokens).await;
        #[cfg(feature = "dpop")]
        if self.dpop.as_ref().is_some_and(|dpop| dpop.wants_resend(&answer)) {
            return self.send(rotating, tokens).await;
        }
        answer
    }

    async fn send(
        &self,
        rotating: Option<&SecretString>,
        tokens: &GrantTokens,
    ) -> Result<TokenResponse, TokenError> {
        let request = self.prepare(rotating, tokens)?;
        #[cfg(feature = "dpop")]
        let request = match &self.dpop {
            Some(dpop) => request.header(dpop::DPOP, dpop.proof()?),
            None => request,
        };
        let mut response = request.send().await.map_err(|e| self.network_error(e))?;
        let status = response.status();
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            dpop.observe(response.headers());
        }
        let retry_after = retry_after(response.headers(), SystemTime::now());
        // An error answer is classified by its status, whatever its size: read what fits of
        // its body. Only a success body must be whole.
        let whole = status.is_success();
        if whole && response.content_length().is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(TokenError::new(TokenErrorKind::BodyTooLarge));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.network_error(e))? {
            let room = MAX_BODY_BYTES - body.len();
            if chunk.len() > room {
                if whole {
                    return Err(TokenError::new(TokenErrorKind::BodyTooLarge));
                }
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        response::parse_expecting(status, retry_after, &body, &self.expected)
    }

    /// The request, with the client's credential in its header or its form.
    fn prepare(
        &self,
        rotating: Option<&SecretString>,
        tokens: &GrantTokens,
    ) -> Result<reqwest::RequestBuilder, TokenError> {
        let secret = rotating.unwrap_or(&self.secret);
        let mut form = form_urlencoded::Serializer::for_suffix(self.form.clone(), 0);
        for (name, token) in tokens {
            form.append_pair(name, token.expose_secret());
        }
        #[cfg(feature = "jwt")]
        if let Some(signer) = &*self.grant_signer.lock().unwrap_or_else(PoisonError::into_inner) {
            form.append_pair("assertion", signer.sign(SystemTime::now(), None)?.expose_secret());
        }
        let client = self.client.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut request = client
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match self.method {
            AuthMethod::ClientSecretBasic => {
                let encode = self.form_encode_basic_credentials;
                let basic = basic_credentials(&self.client_id, secret, encode);
                request = request.header(AUTHORIZATION, basic);
            }
            AuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            // RFC 7521 §4.2 makes `client_id` optional next to an assertion, and some servers
            // (Microsoft Entra ID) require it.
            #[cfg(feature = "jwt")]
            AuthMethod::ClientSecretJwt => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", &self.client_assertion_type);
                let assertion = self.sign(Some(secret))?;
                form.append_pair("client_assertion", assertion.expose_secret());
            }
            AuthMethod::PrivateKeyJwt => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", &self.client_assertion_type);
                let assertion = match rotating {
                    Some(assertion) => assertion.clone(),
                    None => self.sign(None)?,
                };
                form.append_pair("client_assertion", assertion.expose_secret());
            }
            // RFC 8705 §2: the TLS handshake authenticates; the body names the client.
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                form.append_pair("client_id", &self.client_id);
            }
            // RFC 6749 §2.3: a client that does not authenticate may still say who it is.
            AuthMethod::None if !self.client_id.is_empty() => {
                form.append_pair("client_id", &self.client_id);
            }
            AuthMethod::None => {}
        }
        Ok(request.body(form.finish()))
    }

    /// A new client assertion, signed with the client key, or with `secret` for
    /// `client_secret_jwt`.
    fn sign(&self, secret: Option<&SecretString>) -> Result<SecretString, TokenError> {
        #[cfg(feature = "jwt")]
        if let Some(signer) = &*self.signer.lock().unwrap_or_else(PoisonError::into_inner) {
            return signer.sign(SystemTime::now(), secret);
        }
        let _ = secret;
        // `build` refuses `private_key_jwt` with neither a key nor a source of assertions.
        Err(TokenError::with_detail(TokenErrorKind::ClientAssertion, "no key to sign with"))
    }

    fn network_error(&self, error: reqwest::Error) -> TokenError {
        let kind = if error.is_connect() {
            TokenErrorKind::Connect
        } else if error.is_timeout() {
            TokenErrorKind::Timeout
        } else {
            TokenErrorKind::Transport
        };
        // Our message names the URL; reqwest's own would repeat it.
        TokenError::network(kind, self.url.as_str(), error.without_url())
    }
}

/// `Basic base64(id:secret)`, with id and secret form-encoded first unless configured not to
/// be (RFC 6749 §2.3.1; a server that decodes sees the original bytes).
///
/// A space is encoded as `%20` rather than form-encoding's `+`: a form decoder reads both as a
/// space, but many servers decode these credentials with a plain percent-decoder (authlib's
/// `unquote`, for one), which would read `+` as itself.
fn basic_credentials(client_id: &str, secret: &SecretString, form_encode: bool) -> HeaderValue {
    let encode = |s: &str| {
        if form_encode {
            // `byte_serialize` writes a `+` itself as `%2B`: every `+` left is a space.
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
        } else {
            s.to_owned()
        }
    };
    let credentials =
        SecretString::from(format!("{}:{}", encode(client_id), encode(secret.expose_secret())));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.expose_secret());
    let mut header = HeaderValue::try_from(format!("Basic {encoded}"))
        .expect("base64 output is always a valid header value");
    header.set_sensitive(true);
    header
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at an hour.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default(),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        let in_a_minute = httpdate::fmt_http_date(now + Duration::from_secs(60));
        assert_eq!(retry_after(&headers(&in_a_minute), now), Some(Duration::from_secs(60)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(retry_after(&headers(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("999999"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let config =
            Config::builder("https://a.example/t", "my client", "p@ss:w/rd+ é").build().unwrap();
        let header = basic_credentials(
            &config.endpoint.client_id,
            &config.endpoint.client_secret,
            config.endpoint.form_encode_basic_credentials,
        );
        assert!(header.is_sensitive());
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my%20client:p%40ss%3Aw%2Frd%2B%20%C3%A9");
    }

    #[test]
    fn raw_basic_credentials_are_left_as_they_are() {
        let config = Config::builder("https://a.example/t", "client", "p@ss:w/rd")
            .form_encode_basic_credentials(false)
            .build()
            .unwrap();
        let header = basic_credentials(
            &config.endpoint.client_id,
            &config.endpoint.client_secret,
            config.endpoint.form_encode_basic_credentials,
        );
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(decoded, b"client:p@ss:w/rd");
    }
}
