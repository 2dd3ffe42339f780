//! The token request (RFC 6749 §4.4.2): one form `POST` to the token endpoint.
//!
//! Everything that does not change between requests (the form body, the Basic credentials) is
//! encoded once, when the layer is built. With `private_key_jwt` and `client_secret_jwt` the
//! client assertion is the exception: each request signs a new one (a new `jti` and `iat`,
//! retries included) and appends it to the encoded form.

use std::time::{Duration, SystemTime};

use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

#[cfg(feature = "jwt")]
#[cfg(feature = "jwt")]
mod assertion;
#[cfg(feature = "dpop")]
pub(crate) mod dpop;
pub(crate) mod response;

#[cfg(feature = "jwt")]
use assertion::AssertionSigner;
use response::TokenResponse;

use crate::config::{AuthMethod, Config};
use crate::error::{TokenError, TokenErrorKind};

/// The most of a response body that is read.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest `Retry-After` honoured; a longer one is taken to be this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// A token endpoint and what to send it.
pub(crate) struct TokenEndpoint {
    client: reqwest::Client,
    url: Url,
    /// The form body (without the client assertion); it holds the secret with
    /// `client_secret_post`.
    form: SecretString,
    /// `Basic <credentials>` with `client_secret_basic`, marked sensitive.
    authorization: Option<HeaderValue>,
    /// Signs a client assertion for each request, with the JWT methods.
    #[cfg(feature = "jwt")]
    assertion: Option<AssertionSigner>,
    /// A DPoP proof for each request, and the endpoint's nonce.
    #[cfg(feature = "dpop")]
    dpop: Option<dpop::TokenProofs>,
    timeout: Duration,
}

impl TokenEndpoint {
    pub(crate) fn new(config: &Config) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !config.scopes.is_empty() {
            form.append_pair("scope", &config.scopes.join(" "));
        }
        if let Some(audience) = &config.audience {
            form.append_pair("audience", audience);
        }
        for resource in &config.resources {
            form.append_pair("resource", resource);
        }
        for (name, value) in &config.params {
            form.append_pair(name, value);
        }
        let authorization = match config.auth_method {
            AuthMethod::ClientSecretBasic => Some(basic_credentials(config)),
            AuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &config.client_id);
                form.append_pair("client_secret", config.client_secret.expose_secret());
                None
            }
            // RFC 7521 §4.2 makes `client_id` optional next to an assertion, and some servers
            // (Microsoft Entra ID) require it. The assertion itself is added per request.
            #[cfg(feature = "jwt")]
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => {
                form.append_pair("client_id", &config.client_id);
                form.append_pair("client_assertion_type", assertion::ASSERTION_TYPE);
                None
            }
            // RFC 8705 §2: the TLS handshake authenticates; the body names the client.
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                form.append_pair("client_id", &config.client_id);
                None
            }
        };
        Self {
            client: config.http_client.clone(),
            url: config.token_url.clone(),
            form: form.finish().into(),
            authorization,
            #[cfg(feature = "jwt")]
            assertion: AssertionSigner::new(config),
            #[cfg(feature = "dpop")]
            dpop: config.dpop.as_ref().map(|d| dpop::TokenProofs::new(d, &config.token_url)),
            timeout: config.request_timeout,
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one token request and reads its answer, all within the request timeout. With
    /// DPoP, a server that answers `use_dpop_nonce` with a new nonce gets the request once
    /// more, with it, within the same timeout.
    pub(crate) async fn request(&self) -> Result<TokenResponse, TokenError> {
        let exchange = async {
            let answer = self.exchange().await;
            #[cfg(feature = "dpop")]
            if self.dpop.as_ref().is_some_and(|dpop| dpop.wants_resend(&answer)) {
                return self.exchange().await;
            }
            answer
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(TokenError::new(TokenErrorKind::Timeout)))
    }

    async fn exchange(&self) -> Result<TokenResponse, TokenError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.body()?);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            request = request.header(dpop::DPOP, dpop.proof()?);
        }
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
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            return response::parse_dpop(status, retry_after, &body, dpop.allow_bearer);
        }
        response::parse(status, retry_after, &body)
    }

    /// The form body of one request: the encoded form, and a new client assertion if the
    /// method uses one.
    fn body(&self) -> Result<String, TokenError> {
        let form = self.form.expose_secret();
        #[cfg(feature = "jwt")]
        if let Some(signer) = &self.assertion {
            let assertion = signer.sign(SystemTime::now())?;
            let mut form = form_urlencoded::Serializer::for_suffix(form.to_owned(), 0);
            form.append_pair("client_assertion", assertion.expose_secret());
            return Ok(form.finish());
        }
        Ok(form.to_owned())
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
fn basic_credentials(config: &Config) -> HeaderValue {
    let encode = |s: &str| {
        if config.form_encode_basic_credentials {
            // `byte_serialize` writes a `+` itself as `%2B`: every `+` left is a space.
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
        } else {
            s.to_owned()
        }
    };
    let credentials = SecretString::from(format!(
        "{}:{}",
        encode(&config.client_id),
        encode(config.client_secret.expose_secret())
    ));
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
        let header = basic_credentials(&config);
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
        let header = basic_credentials(&config);
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(decoded, b"client:p@ss:w/rd");
    }
}
