//! Finding the token endpoint from the issuer: Authorization Server Metadata (RFC 8414), or
//! OpenID Connect Discovery 1.0 where a server has only that.
//!
//! [`Config::discover`] reads the issuer's metadata document, checks that it is the issuer's
//! (its `issuer` is the one asked for: RFC 8414 §3.3, against mix-up attacks), and returns
//! the [`ServerMetadata`], whose [`builder`](ServerMetadata::builder) starts a configuration
//! for its token endpoint. The document is read once: a server that moves its token endpoint
//! is followed by discovering again, when the service restarts.

use std::error::Error;
use std::fmt;

use http::header::ACCEPT;
use http::StatusCode;
use secrecy::SecretString;
use serde_json::{Map, Value};
use url::Url;

use crate::config::{Config, ConfigBuilder, Discovered, DEFAULT_REQUEST_TIMEOUT};
use crate::credential::default_http_client;
use crate::error::sanitize;

/// RFC 8414 §3: inserted between the host and the issuer's path.
const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0 §4: appended to the issuer.
const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// The most of a metadata document that is read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How much of a value from the network an error may quote.
const QUOTE_CHARS: usize = 100;

/// What an authorization server says about itself in its metadata, as far as getting a token
/// goes: from [`Config::discover`].
///
/// Start a configuration with [`builder`](Self::builder) (with a client secret) or
/// [`builder_without_secret`](Self::builder_without_secret) (with a
/// [`ClientKey`](crate::ClientKey) or [`ClientCertificate`](crate::ClientCertificate)). Unless
/// [`auth_method`](ConfigBuilder::auth_method) is set, [`build`](ConfigBuilder::build) then
/// picks, of the methods the server lists, the first the credentials fit, in this order:
/// `private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth`,
/// `client_secret_basic`, `client_secret_post`, `client_secret_jwt`. With mutual TLS (a TLS
/// method, or a client certificate), the server's mTLS alias of the token endpoint is used if
/// it has one (RFC 8705 §5).
#[derive(Debug, Clone)]
pub struct ServerMetadata {
    issuer: String,
    token_endpoint: String,
    mtls_token_endpoint: Option<String>,
    auth_methods: Vec<String>,
    signing_algorithms: Option<Vec<String>>,
}

impl Config {
    /// Reads the metadata of the authorization server `issuer` (an `https` URL such as
    /// `https://idp.example.com/realms/acme`), with an HTTP client like the one
    /// [`Config`] uses by default: `/.well-known/oauth-authorization-server` (RFC 8414) first,
    /// then `/.well-known/openid-configuration` (OpenID Connect).
    ///
    /// Each document request has the default request timeout (10 s). To read it through your
    /// own client (a proxy, a private CA), use [`ServerMetadata::discover`].
    ///
    /// ```no_run
    /// use tower_client_credentials::{ClientCredentialsLayer, Config};
    ///
    /// # async fn run() -> Result<(), tower_client_credentials::BoxError> {
    /// let metadata = Config::discover("https://idp.example.com/realms/acme").await?;
    /// let config = metadata
    ///     .builder("my-client", "s3cret") // the token endpoint, and the server's methods
    ///     .scope("orders:read")
    ///     .build()?; // picks a method the server lists that the credentials fit
    /// let layer = ClientCredentialsLayer::new(config);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`DiscoveryError`] when the issuer is not an `https` URL (loopback aside), neither
    /// document can be read, or the document found is not the issuer's or has no
    /// `token_endpoint`. Its [`kind`](DiscoveryError::kind) says which.
    pub async fn discover(issuer: impl AsRef<str>) -> Result<ServerMetadata, DiscoveryError> {
        let client = default_http_client(None, &[]).map_err(|e| {
            DiscoveryError::new(DiscoveryErrorKind::Unreachable, e.to_string(), None)
        })?;
        ServerMetadata::discover(issuer, &client).await
    }
}

impl ServerMetadata {
    /// Reads the metadata of `issuer` through `client`, as [`Config::discover`] does with a
    /// default client. Give the same client to
    /// [`http_client`](ConfigBuilder::http_client). Build it with
    /// `redirect(reqwest::redirect::Policy::none())`: metadata that is elsewhere is not the
    /// issuer's.
    ///
    /// # Errors
    ///
    /// As [`Config::discover`].
    pub async fn discover(
        issuer: impl AsRef<str>,
        client: &reqwest::Client,
    ) -> Result<Self, DiscoveryError> {
        let issuer = issuer.as_ref();
        let issuer_url = check_issuer(issuer)?;
        let mut misses = Vec::new();
        for url in well_known_urls(&issuer_url) {
            match fetch(client, &url).await? {
                Fetched::Document(body) => return Self::from_document(issuer, &url, &body),
                Fetched::Missing(status) => misses.push(format!("{url} (HTTP {status})")),
            }
        }
        Err(DiscoveryError::new(
            DiscoveryErrorKind::NotFound,
            format!("no metadata for issuer {issuer} at {}", misses.join(" nor at ")),
            None,
        ))
    }

    /// Checks and reads a metadata document that was found at `url`.
    fn from_document(issuer: &str, url: &Url, body: &[u8]) -> Result<Self, DiscoveryError> {
        let invalid = |what: &str| {
            DiscoveryError::new(
                DiscoveryErrorKind::InvalidMetadata,
                format!("metadata at {url} {what}"),
                None,
            )
        };
        let document: Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| invalid("is not a JSON object"))?;
        let named = match document.get("issuer") {
            Some(Value::String(named)) => named,
            _ => return Err(invalid("has no `issuer`")),
        };
        // RFC 8414 §3.3 asks for the identical string; a trailing `/` is forgiven, since
        // users and servers differ on it (Auth0 names its issuers with one).
        if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(DiscoveryError::new(
                DiscoveryErrorKind::IssuerMismatch,
                format!(
                    "metadata at {url} is for issuer {}, not {issuer}; it must not be used \
                     (RFC 8414 §3.3)",
                    sanitize(named, QUOTE_CHARS)
                ),
                None,
            ));
        }
        let token_endpoint = match document.get("token_endpoint") {
            Some(Value::String(endpoint)) if !endpoint.is_empty() => endpoint.clone(),
            None | Some(Value::Null) => {
                return Err(DiscoveryError::new(
                    DiscoveryErrorKind::MissingTokenEndpoint,
                    format!("metadata at {url} has no `token_endpoint`"),
                    None,
                ))
            }
            Some(_) => return Err(invalid("has a `token_endpoint` that is not a URL")),
        };
        let strings = |member: &str| match document.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .map(Some)
                .ok_or_else(|| invalid(&format!("lists `{member}` that are not strings"))),
            Some(_) => Err(invalid(&format!("has `{member}` that is not a list"))),
        };
        // RFC 8414 §2 and OpenID Connect Discovery §3: absent means Basic only.
        let auth_methods = strings("token_endpoint_auth_methods_supported")?
            .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]);
        let signing_algorithms = strings("token_endpoint_auth_signing_alg_values_supported")?;
        let mtls_token_endpoint = match document.get("mtls_endpoint_aliases") {
            None | Some(Value::Null) => None,
            Some(Value::Object(aliases)) => match aliases.get("token_endpoint") {
                None | Some(Value::Null) => None,
                Some(Value::String(alias)) => Some(alias.clone()),
                Some(_) => {
                    return Err(invalid("has an mTLS `token_endpoint` alias that is not a URL"))
                }
            },
            Some(_) => return Err(invalid("has `mtls_endpoint_aliases` that is not an object")),
        };
        Ok(Self {
            issuer: named.clone(),
            token_endpoint,
            mtls_token_endpoint,
            auth_methods,
            signing_algorithms,
        })
    }

    /// The issuer, as the metadata names it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint (`token_endpoint`).
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The token endpoint for mutual TLS (`mtls_endpoint_aliases.token_endpoint`, RFC 8705
    /// §5), if the server has one apart.
    pub fn mtls_token_endpoint(&self) -> Option<&str> {
        self.mtls_token_endpoint.as_deref()
    }

    /// The client authentication methods the server accepts
    /// (`token_endpoint_auth_methods_supported`; `client_secret_basic` alone when the metadata
    /// does not say). Compare with [`AuthMethod::as_str`](crate::AuthMethod::as_str).
    pub fn token_endpoint_auth_methods_supported(&self) -> &[String] {
        &self.auth_methods
    }

    /// The algorithms the server accepts for client assertions (`private_key_jwt`,
    /// `client_secret_jwt`), if it says (`token_endpoint_auth_signing_alg_values_supported`).
    /// A configuration whose assertions it would refuse does not build.
    pub fn token_endpoint_auth_signing_alg_values_supported(&self) -> Option<&[String]> {
        self.signing_algorithms.as_deref()
    }

    /// Starts a configuration for this server's token endpoint with a client secret, as
    /// [`Config::builder`] does.
    pub fn builder(
        &self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ConfigBuilder {
        Config::builder(&self.token_endpoint, client_id, client_secret)
            .discovered(self.discovered())
    }

    /// Starts a configuration for this server's token endpoint without a client secret, as
    /// [`Config::builder_without_secret`] does: give a
    /// [`client_key`](ConfigBuilder::client_key) or a
    /// [`client_certificate`](ConfigBuilder::client_certificate).
    pub fn builder_without_secret(&self, client_id: impl Into<String>) -> ConfigBuilder {
        Config::builder_without_secret(&self.token_endpoint, client_id)
            .discovered(self.discovered())
    }

    fn discovered(&self) -> Discovered {
        Discovered {
            issuer: self.issuer.clone(),
            auth_methods: self.auth_methods.clone(),
            mtls_token_endpoint: self.mtls_token_endpoint.clone(),
            #[cfg(feature = "jwt")]
            signing_algorithms: self.signing_algorithms.clone(),
        }
    }
}

/// RFC 8414 §2: an `https` URL without query or fragment (plain `http` on loopback, for tests
/// and local servers).
fn check_issuer(issuer: &str) -> Result<Url, DiscoveryError> {
    let invalid = |reason: String| {
        DiscoveryError::new(
            DiscoveryErrorKind::InvalidIssuer,
            format!("issuer {} {reason}", sanitize(issuer, QUOTE_CHARS)),
            None,
        )
    };
    let url = Url::parse(issuer).map_err(|e| invalid(format!("is not an absolute URL ({e})")))?;
    let secure =
        url.scheme() == "https" || (url.scheme() == "http" && crate::config::is_loopback(&url));
    if !secure {
        return Err(invalid("must be an https URL (RFC 8414 §2)".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment (RFC 8414 §2)".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain user info".to_owned()));
    }
    Ok(url)
}

/// Where the metadata may be: RFC 8414's path first, then OpenID Connect's.
fn well_known_urls(issuer: &Url) -> [Url; 2] {
    let path = issuer.path().trim_end_matches('/');
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("{OAUTH_WELL_KNOWN}{path}"));
    let mut openid = issuer.clone();
    openid.set_path(&format!("{path}{OPENID_WELL_KNOWN}"));
    [oauth, openid]
}

enum Fetched {
    Document(Vec<u8>),
    /// Not there: any status other than a success.
    Missing(StatusCode),
}

async fn fetch(client: &reqwest::Client, url: &Url) -> Result<Fetched, DiscoveryError> {
    let unreachable = |reason: String, source: Option<reqwest::Error>| {
        DiscoveryError::new(
            DiscoveryErrorKind::Unreachable,
            format!("could not read {url}: {reason}"),
            source.map(|e| Box::new(e.without_url()) as BoxedError),
        )
    };
    let read = async {
        let mut response = client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(root_cause(&e), Some(e)))?;
        if !response.status().is_success() {
            return Ok(Fetched::Missing(response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| unreachable(root_cause(&e), Some(e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(unreachable("the document is larger than 1 MiB".to_owned(), None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Document(body))
    };
    tokio::time::timeout(DEFAULT_REQUEST_TIMEOUT, read).await.unwrap_or_else(|_| {
        Err(unreachable(
            format!("no answer within {}", humantime::format_duration(DEFAULT_REQUEST_TIMEOUT)),
            None,
        ))
    })
}

fn root_cause(error: &(dyn Error + 'static)) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

type BoxedError = Box<dyn Error + Send + Sync>;

/// What went wrong in [discovery](Config::discover).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscoveryErrorKind {
    /// The issuer is not an `https` URL without query or fragment (RFC 8414 §2).
    InvalidIssuer,
    /// A metadata document could not be read: no connection, no answer in time, a broken
    /// or oversized body. Worth retrying later.
    Unreachable,
    /// Neither well-known path answered with a document.
    NotFound,
    /// The document is not a JSON object, or a field we read has the wrong type.
    InvalidMetadata,
    /// The document names another issuer: it is not this issuer's, and is not used.
    IssuerMismatch,
    /// The document has no `token_endpoint`.
    MissingTokenEndpoint,
}

/// [Discovery](Config::discover) failed: its [kind](Self::kind), and in `Display` the
/// document's URL and what was wrong with it.
///
/// A separate type from [`ConfigError`](crate::ConfigError) because it comes from the network
/// (an [`Unreachable`](DiscoveryErrorKind::Unreachable) server may answer later), and from
/// [`TokenError`](crate::TokenError) because no token was asked for.
#[derive(Debug)]
pub struct DiscoveryError {
    kind: DiscoveryErrorKind,
    message: String,
    source: Option<BoxedError>,
}

impl DiscoveryError {
    pub(crate) fn new(
        kind: DiscoveryErrorKind,
        message: String,
        source: Option<BoxedError>,
    ) -> Self {
        Self { kind, message, source }
    }

    /// What went wrong.
    pub fn kind(&self) -> DiscoveryErrorKind {
        self.kind
    }
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery failed: {}", self.message)
    }
}

impl Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(document: &str) -> Result<ServerMetadata, DiscoveryError> {
        let url = Url::parse("https://idp.example/.well-known/openid-configuration").unwrap();
        ServerMetadata::from_document("https://idp.example", &url, document.as_bytes())
    }

    #[test]
    fn well_known_paths_follow_rfc_8414_then_openid_connect() {
        let urls = |issuer: &str| well_known_urls(&Url::parse(issuer).unwrap()).map(String::from);
        assert_eq!(
            urls("https://idp.example/realms/acme"),
            [
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme",
                "https://idp.example/realms/acme/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://idp.example/"),
            [
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn issuers_must_be_https_without_query_or_fragment() {
        for bad in
            ["http://idp.example", "https://idp.example/?tenant=a", "https://idp.example/#a", "idp"]
        {
            let error = check_issuer(bad).unwrap_err();
            assert_eq!(error.kind(), DiscoveryErrorKind::InvalidIssuer, "{bad}");
        }
        check_issuer("http://127.0.0.1:8080/realms/acme").unwrap();
    }

    #[test]
    fn absent_auth_methods_mean_client_secret_basic() {
        let found = metadata(
            r#"{"issuer":"https://idp.example/","token_endpoint":"https://idp.example/t"}"#,
        );
        let found = found.unwrap();
        assert_eq!(found.token_endpoint_auth_methods_supported(), ["client_secret_basic"]);
        assert_eq!(found.mtls_token_endpoint(), None);
        assert_eq!(found.token_endpoint_auth_signing_alg_values_supported(), None);
    }

    #[test]
    fn listed_signing_algorithms_are_read() {
        let found = metadata(
            r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t",
                "token_endpoint_auth_signing_alg_values_supported":["RS256","ES256"]}"#,
        );
        let found = found.unwrap();
        let algorithms = found.token_endpoint_auth_signing_alg_values_supported();
        assert_eq!(algorithms, Some(["RS256".to_owned(), "ES256".to_owned()].as_slice()));
    }

    #[test]
    fn fields_of_the_wrong_type_are_invalid_metadata() {
        for document in [
            "[]",
            r#"{"token_endpoint":"https://idp.example/t"}"#,
            r#"{"issuer":"https://idp.example","token_endpoint":7}"#,
            r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t","token_endpoint_auth_methods_supported":"private_key_jwt"}"#,
            r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t","mtls_endpoint_aliases":{"token_endpoint":1}}"#,
            r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t","token_endpoint_auth_signing_alg_values_supported":"RS256"}"#,
            r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t","token_endpoint_auth_signing_alg_values_supported":[256]}"#,
        ] {
            let error = metadata(document).unwrap_err();
            assert_eq!(error.kind(), DiscoveryErrorKind::InvalidMetadata, "{document}: {error}");
        }
    }

    #[test]
    fn an_issuer_mismatch_is_quoted_without_control_characters() {
        let error =
            metadata(r#"{"issuer":"https://evil.example\n","token_endpoint":"https://e/t"}"#)
                .unwrap_err();
        assert_eq!(error.kind(), DiscoveryErrorKind::IssuerMismatch);
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}
