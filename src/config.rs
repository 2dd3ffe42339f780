//! What to ask the authorization server for, how to authenticate, and when to refresh.
//!
//! Every default lives in this file, next to the setter that overrides it.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

use crate::client_auth::{self, Credentials};
use crate::discovery::Discovered;
use crate::error::ConfigError;
use crate::origin::Origin;
use crate::tls::{self, ClientCertificate};

/// Refresh this long before expiry (capped at half the token's lifetime).
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Stop using a token this long before expiry (capped at a quarter of its lifetime).
pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The lifetime assumed when the token response has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long one token request may take, connection and body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one token is invalidated for a `401` from the API in this long.
pub const DEFAULT_INVALIDATION_INTERVAL: Duration = Duration::from_secs(5);
/// How long a client assertion (`private_key_jwt`, `client_secret_jwt`) is valid: it is used
/// at once, so a leaked one soon expires.
#[cfg(feature = "jwt")]
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// How the client authenticates to the token endpoint (RFC 6749 §2.3).
///
/// Never guessed: servers differ, and a wrong guess costs a rejected request. Without
/// [`ConfigBuilder::auth_method`], the method is the one the credentials imply, or after
/// [discovery](crate::ServerMetadata) the first the server lists that they fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic authentication with the client id and secret (`client_secret_basic`), the
    /// method every server must support. The default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    ClientSecretPost,
    /// A JWT signed with the client secret (HMAC SHA-256) in the form body
    /// (`client_secret_jwt`, OpenID Connect Core §9): the secret itself never travels.
    /// Feature `jwt`.
    #[cfg(feature = "jwt")]
    ClientSecretJwt,
    /// A JWT signed with the client's private key, a [`ClientKey`](crate::ClientKey), in the
    /// form body (`private_key_jwt`, RFC 7523 §2.2, OpenID Connect Core §9): the server holds
    /// only the public key. Feature `jwt`.
    #[cfg(feature = "jwt")]
    PrivateKeyJwt,
    /// Mutual TLS with a certificate from a certificate authority the server trusts, bound to
    /// the client by its subject (`tls_client_auth`, RFC 8705 §2.1). The form carries
    /// `client_id` and no secret. Needs a [`ClientCertificate`].
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered with the server
    /// (`self_signed_tls_client_auth`, RFC 8705 §2.2). Sent as [`AuthMethod::TlsClientAuth`].
    SelfSignedTlsClientAuth,
}

/// The settings of a [`ClientCredentialsLayer`](crate::ClientCredentialsLayer): built by
/// [`Config::builder`], validated by [`ConfigBuilder::build`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_client_credentials::{AuthMethod, Config};
///
/// let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
///     .scope("read write")
///     .audience("https://api.example.com")
///     .auth_method(AuthMethod::ClientSecretPost)
///     .refresh_ahead(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(config.scopes(), ["read", "write"]);
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) form_encode_basic_credentials: bool,
    pub(crate) refresh_ahead: Duration,
    pub(crate) expiry_margin: Duration,
    pub(crate) default_lifetime: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) request_timeout: Duration,
    pub(crate) invalidation_interval: Duration,
    pub(crate) allowed_origins: Vec<Origin>,
    pub(crate) http_client: reqwest::Client,
    #[cfg(feature = "jwt")]
    pub(crate) client_key: Option<crate::ClientKey>,
    #[cfg(feature = "jwt")]
    pub(crate) assertion_audience: Option<String>,
    #[cfg(feature = "jwt")]
    pub(crate) assertion_lifetime: Duration,
    #[cfg(feature = "store")]
    pub(crate) store: Option<std::sync::Arc<dyn crate::store::TokenStore>>,
    #[cfg(feature = "store")]
    pub(crate) store_encryption_key: Option<secrecy::SecretSlice<u8>>,
}

impl Config {
    /// Starts a configuration for the token endpoint at `token_url`, with the client's
    /// credentials. Every other setting has a default; see the setters of [`ConfigBuilder`].
    pub fn builder(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ConfigBuilder {
        ConfigBuilder {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
            audience: None,
            resources: Vec::new(),
            params: Vec::new(),
            auth_method: AuthMethod::default(),
            form_encode_basic_credentials: true,
            refresh_ahead: DEFAULT_REFRESH_AHEAD,
            expiry_margin: DEFAULT_EXPIRY_MARGIN,
            default_lifetime: DEFAULT_LIFETIME,
            max_lifetime: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            invalidation_interval: DEFAULT_INVALIDATION_INTERVAL,
            allowed_origins: Vec::new(),
            http_client: None,
            auth_method_chosen: false,
            client_certificate: None,
            tls_root_certificates: Vec::new(),
            discovered: None,
            #[cfg(feature = "jwt")]
            client_key: None,
            #[cfg(feature = "jwt")]
            assertion_audience: None,
            #[cfg(feature = "jwt")]
            assertion_lifetime: DEFAULT_ASSERTION_LIFETIME,
            #[cfg(feature = "store")]
            store: None,
            #[cfg(feature = "store")]
            store_encryption_key: None,
            allow_plain_http: false,
        }
    }

    /// Starts a configuration for a client that has no secret: give it a
    /// [`client_certificate`](ConfigBuilder::client_certificate) for mutual TLS, or (feature
    /// `jwt`) a `client_key` for `private_key_jwt`. Otherwise as [`Config::builder`].
    pub fn builder_without_secret(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
    ) -> ConfigBuilder {
        Self::builder(token_url, client_id, String::new())
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The requested scopes, in the order given.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The client authentication method.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth_method
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Config");
        debug
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("params", &self.params)
            .field("auth_method", &self.auth_method)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("expiry_margin", &self.expiry_margin)
            .field("default_lifetime", &self.default_lifetime)
            .field("max_lifetime", &self.max_lifetime)
            .field("request_timeout", &self.request_timeout)
            .field("invalidation_interval", &self.invalidation_interval)
            .field("allowed_origins", &self.allowed_origins);
        #[cfg(feature = "store")]
        debug.field("store", &self.store);
        #[cfg(feature = "jwt")]
        debug.field("client_key", &self.client_key);
        debug.finish_non_exhaustive()
    }
}

/// Builds a [`Config`]; start with [`Config::builder`].
///
/// Setters record what they are given; [`build`](Self::build) checks everything at once and
/// names the first unusable setting.
#[must_use = "a builder does nothing until `build()` is called"]
pub struct ConfigBuilder {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    scopes: Vec<String>,
    audience: Option<String>,
    resources: Vec<String>,
    params: Vec<(String, String)>,
    auth_method: AuthMethod,
    form_encode_basic_credentials: bool,
    refresh_ahead: Duration,
    expiry_margin: Duration,
    default_lifetime: Duration,
    max_lifetime: Option<Duration>,
    request_timeout: Duration,
    invalidation_interval: Duration,
    allowed_origins: Vec<String>,
    http_client: Option<reqwest::Client>,
    allow_plain_http: bool,
    /// Whether `auth_method` was called; if not, `build` settles the method.
    auth_method_chosen: bool,
    client_certificate: Option<ClientCertificate>,
    tls_root_certificates: Vec<Vec<u8>>,
    discovered: Option<Discovered>,
    #[cfg(feature = "jwt")]
    client_key: Option<crate::ClientKey>,
    #[cfg(feature = "jwt")]
    assertion_audience: Option<String>,
    #[cfg(feature = "jwt")]
    assertion_lifetime: Duration,
    #[cfg(feature = "store")]
    store: Option<std::sync::Arc<dyn crate::store::TokenStore>>,
    #[cfg(feature = "store")]
    store_encryption_key: Option<secrecy::SecretSlice<u8>>,
}

impl ConfigBuilder {
    /// Adds scopes to request: one scope, or several separated by spaces (`"read write"`).
    /// May be called more than once. Default: none (the server's default scope).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes.extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Sets the `audience` parameter (Auth0, Okta and others name the API with it).
    /// Default: none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Adds a `resource` parameter (RFC 8707), an absolute URI naming the API. Repeatable.
    /// Default: none.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Adds any other form parameter to the token request. Repeatable. The parameters this
    /// crate sets itself (`grant_type`, `client_id`, `client_secret`, `scope`, `audience`,
    /// `resource`, `client_assertion`, `client_assertion_type`) are refused by
    /// [`build`](Self::build): use their own setters.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// How to authenticate the client. Default: the method the credentials imply:
    /// [`AuthMethod::ClientSecretBasic`] with a client secret, `PrivateKeyJwt` with a
    /// `client_key`, [`AuthMethod::TlsClientAuth`] with only a
    /// [`client_certificate`](Self::client_certificate); after discovery, the first the server
    /// lists that the credentials fit (see [`ServerMetadata`](crate::ServerMetadata)).
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = method;
        self.auth_method_chosen = true;
        self
    }

    /// With [`AuthMethod::ClientSecretBasic`], whether the client id and secret are
    /// form-encoded before base64, as RFC 6749 §2.3.1 requires. Default: `true`.
    ///
    /// Turn it off only for a server that does not decode them; secrets of letters and
    /// digits are the same either way. With it off, the client id may not contain `:`.
    pub fn form_encode_basic_credentials(mut self, encode: bool) -> Self {
        self.form_encode_basic_credentials = encode;
        self
    }

    /// Start refreshing in the background this long before the token expires, capped at half
    /// its lifetime and jittered by up to a tenth more. Default: 5 minutes.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = ahead;
        self
    }

    /// Stop sending a token this long before it expires (clocks and transit take time), capped
    /// at a quarter of its lifetime. Default: 30 seconds.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// The lifetime assumed when the token response has no `expires_in`. Default: 5 minutes.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Caps every token's lifetime, whatever `expires_in` says: a fixed token time. Default: no
    /// cap of yours (lifetimes above a year are treated as a year).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// How long one token request may take, from connecting to the end of the body. Callers
    /// waiting for a token never wait longer. Default: 10 seconds.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// When the API answers `401 Unauthorized` to a request that carried our token, that token
    /// is dropped and the next request waits for a new one; but at most once in this interval,
    /// so that an API that rejects every token cannot cause a storm of token requests.
    /// Default: 5 seconds.
    pub fn invalidation_interval(mut self, interval: Duration) -> Self {
        self.invalidation_interval = interval;
        self
    }

    /// Attaches the token only to requests for this origin (`https://api.example.com`, a
    /// scheme, host and optional port). Repeatable. Requests elsewhere, and requests whose URI
    /// has no scheme and authority, pass through without it. Default: no list, every request
    /// gets the token.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Sends token requests through this client (for proxies, custom roots or mTLS). Default:
    /// a client of this crate's own that follows no redirects.
    ///
    /// Build yours with `redirect(reqwest::redirect::Policy::none())`: a token endpoint that
    /// redirects is misconfigured, and a redirect must not carry the credentials elsewhere.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The private key that signs client assertions for [`AuthMethod::PrivateKeyJwt`], the
    /// method it implies when no secret is given. Default: none.
    #[cfg(feature = "jwt")]
    pub fn client_key(mut self, key: crate::ClientKey) -> Self {
        self.client_key = Some(key);
        self
    }

    /// The audience (`aud`) of client assertions. Default: the token endpoint URL, as Okta,
    /// Keycloak and Microsoft Entra ID expect; a server that wants its issuer instead gets
    /// [`ServerMetadata::issuer`](crate::ServerMetadata::issuer).
    #[cfg(feature = "jwt")]
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// How long a client assertion is valid (`exp` minus `iat`), in whole seconds, at least
    /// one. Default: 60 seconds ([`DEFAULT_ASSERTION_LIFETIME`]).
    #[cfg(feature = "jwt")]
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion_lifetime = lifetime;
        self
    }

    /// Presents this TLS client certificate to the token endpoint (mutual TLS, RFC 8705). With
    /// no secret or key, it implies [`AuthMethod::TlsClientAuth`]; next to one, the secret or
    /// key authenticates and the server can bind tokens to the certificate (RFC 8705 §3). After
    /// discovery, requests go to the server's mTLS alias of the token endpoint, if it has one.
    /// Default: none.
    ///
    /// It goes into the client this crate builds; with [`http_client`](Self::http_client),
    /// give it to that client instead (`build` refuses both).
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.client_certificate = Some(certificate);
        self
    }

    /// Also trusts this certificate authority (PEM, one certificate or several) for the token
    /// endpoint, beside the system's roots: for a server whose certificate comes from a
    /// private CA. Repeatable. Default: the system's roots only.
    ///
    /// Like [`client_certificate`](Self::client_certificate), not with
    /// [`http_client`](Self::http_client).
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificates.push(pem.into());
        self
    }

    /// What discovery found out about the server.
    pub(crate) fn discovered(mut self, discovered: Discovered) -> Self {
        self.discovered = Some(discovered);
        self
    }

    /// Shares tokens with other replicas through `store` (e.g. [`RedisStore`]), so that a fleet
    /// makes one token request per token lifetime. See [`store`](crate::store) for how.
    /// Default: none; each layer keeps its token in memory only.
    ///
    /// [`RedisStore`]: crate::store::RedisStore
    #[cfg(feature = "store")]
    pub fn store(mut self, store: impl crate::store::TokenStore) -> Self {
        self.store = Some(std::sync::Arc::new(store));
        self
    }

    /// Encrypts tokens in the [store](Self::store) with a key derived from these 32 bytes
    /// rather than from the client secret: for replicas that hold different secrets for one
    /// client, or to rotate the secret without emptying the store. Default: derived from the
    /// client secret.
    #[cfg(feature = "store")]
    pub fn store_encryption_key(mut self, key: [u8; 32]) -> Self {
        self.store_encryption_key = Some(key.to_vec().into());
        self
    }

    /// Allows an `http://` token URL on a host that is not loopback.
    ///
    /// The client secret and the token then cross the network in clear text, readable by
    /// anyone on the path. Only for a network you trust entirely, such as a test cluster.
    pub fn danger_allow_plain_http(mut self) -> Self {
        self.allow_plain_http = true;
        self
    }

    /// Checks every setting and returns the [`Config`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first unusable setting: a token URL that does not parse,
    /// is not `https` (except on loopback, or with
    /// [`danger_allow_plain_http`](Self::danger_allow_plain_http)) or carries user info; an
    /// empty client id or secret; a scope with characters RFC 6749 §3.3 forbids; a resource
    /// that is not an absolute URI; a `param` this crate sets itself; a zero duration where
    /// one must be positive; an allowed origin that is not a bare `http(s)` origin. For the
    /// client's authentication: an [`auth_method`](Self::auth_method) without its credential
    /// (`client_secret`, `client_key` or `client_certificate`), no credential at all, a secret
    /// and a key with no method chosen, no discovered method the credentials fit
    /// (`auth_method`), a certificate or root with an `http_client` of yours, a
    /// `store` without `store_encryption_key` for a client without a secret.
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut token_url = check_token_url(&self.token_url, self.allow_plain_http)?;
        let credentials = Credentials {
            secret: !secrecy::ExposeSecret::expose_secret(&self.client_secret).is_empty(),
            #[cfg(feature = "jwt")]
            key: self.client_key.is_some(),
            #[cfg(not(feature = "jwt"))]
            key: false,
            certificate: self.client_certificate.is_some(),
            own_http_client: self.http_client.is_some(),
        };
        let auth_method = client_auth::choose(
            self.auth_method_chosen.then_some(self.auth_method),
            self.discovered.as_ref().map(|d| d.auth_methods.as_slice()),
            credentials,
        )?;
        #[cfg(feature = "jwt")]
        if let Some(accepted) =
            self.discovered.as_ref().and_then(|d| d.signing_algorithms.as_deref())
        {
            let key_algorithm = self.client_key.as_ref().map(|key| key.algorithm().as_str());
            client_auth::check_signing_algorithm(auth_method, key_algorithm, accepted)?;
        }
        let mtls_alias = self.discovered.as_ref().and_then(|d| d.mtls_token_endpoint.as_deref());
        if let Some(alias) = mtls_alias {
            if auth_method.is_mutual_tls() || credentials.certificate {
                token_url = check_token_url(alias, self.allow_plain_http)?;
            }
        }
        check_client_id(&self.client_id, auth_method, self.form_encode_basic_credentials)?;
        #[cfg(feature = "jwt")]
        {
            if self.assertion_lifetime < Duration::from_secs(1) {
                return Err(ConfigError::new("assertion_lifetime", "must be at least one second"));
            }
            if self.assertion_audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return Err(ConfigError::new("assertion_audience", "must not be empty"));
            }
        }
        #[cfg(feature = "store")]
        if self.store.is_some() && self.store_encryption_key.is_none() && !credentials.secret {
            return Err(ConfigError::new(
                "store_encryption_key",
                format!(
                    "is required to use a store with `{auth_method}`: there is no client \
                     secret to derive the store's key from"
                ),
            ));
        }
        for scope in &self.scopes {
            check_scope(scope)?;
        }
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("audience", "must not be empty"));
        }
        for resource in &self.resources {
            check_resource(resource)?;
        }
        for (name, _) in &self.params {
            check_param_name(name)?;
        }
        check_positive("request_timeout", Some(self.request_timeout))?;
        check_positive("default_lifetime", Some(self.default_lifetime))?;
        check_positive("max_lifetime", self.max_lifetime)?;
        check_positive("invalidation_interval", Some(self.invalidation_interval))?;
        let allowed_origins =
            self.allowed_origins.iter().map(|o| Origin::parse(o)).collect::<Result<_, _>>()?;
        let http_client = match self.http_client {
            Some(client) => {
                tls::check_own_client(
                    self.client_certificate.as_ref(),
                    &self.tls_root_certificates,
                )?;
                client
            }
            None => {
                default_http_client(self.client_certificate.as_ref(), &self.tls_root_certificates)?
            }
        };
        Ok(Config {
            token_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: self.scopes,
            audience: self.audience,
            resources: self.resources,
            params: self.params,
            auth_method,
            form_encode_basic_credentials: self.form_encode_basic_credentials,
            refresh_ahead: self.refresh_ahead,
            expiry_margin: self.expiry_margin,
            default_lifetime: self.default_lifetime,
            max_lifetime: self.max_lifetime,
            request_timeout: self.request_timeout,
            invalidation_interval: self.invalidation_interval,
            allowed_origins,
            http_client,
            #[cfg(feature = "jwt")]
            client_key: self.client_key,
            #[cfg(feature = "jwt")]
            assertion_audience: self.assertion_audience,
            #[cfg(feature = "jwt")]
            assertion_lifetime: self.assertion_lifetime,
            #[cfg(feature = "store")]
            store: self.store,
            #[cfg(feature = "store")]
            store_encryption_key: self.store_encryption_key,
        })
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn check_token_url(raw: &str, allow_plain_http: bool) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::new("token_url", reason);
    let url = Url::parse(raw).map_err(|e| invalid(format!("not an absolute URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL here: its user info may be a password.
        return Err(invalid(
            "must not contain user info; give credentials to `Config::builder`".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not contain a fragment".into()));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http || is_loopback(&url) => {}
        "http" => {
            return Err(invalid(format!(
                "plain http to {} would expose the client secret; use https \
                 (or `danger_allow_plain_http` on a network you trust)",
                url.host_str().unwrap_or_default()
            )))
        }
        other => return Err(invalid(format!("scheme must be https, not {other}"))),
    }
    if url.host().is_none() {
        return Err(invalid("has no host".into()));
    }
    Ok(url)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_client_id(id: &str, method: AuthMethod, form_encode: bool) -> Result<(), ConfigError> {
    if id.is_empty() {
        return Err(ConfigError::new("client_id", "must not be empty"));
    }
    if id.chars().any(char::is_control) {
        return Err(ConfigError::new("client_id", "must not contain control characters"));
    }
    if method == AuthMethod::ClientSecretBasic && !form_encode && id.contains(':') {
        return Err(ConfigError::new(
            "client_id",
            "contains `:`, which Basic authentication cannot carry without form-encoding",
        ));
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn check_scope(scope: &str) -> Result<(), ConfigError> {
    let allowed = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
    if scope.bytes().all(allowed) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "scope",
            "scopes may only hold printable ASCII other than `\"` and `\\`",
        ))
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn check_resource(resource: &str) -> Result<(), ConfigError> {
    match Url::parse(resource) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        Ok(_) => Err(ConfigError::new("resource", "must not contain a fragment")),
        Err(e) => Err(ConfigError::new("resource", format!("not an absolute URI ({e})"))),
    }
}

const RESERVED_PARAMS: [&str; 8] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "audience",
    "resource",
    "client_assertion",
    "client_assertion_type",
];

fn check_param_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new("param", "parameter names must not be empty"));
    }
    if RESERVED_PARAMS.contains(&name) {
        return Err(ConfigError::new(
            "param",
            format!("`{name}` is set by this crate; use its own setter"),
        ));
    }
    Ok(())
}

fn check_positive(field: &'static str, value: Option<Duration>) -> Result<(), ConfigError> {
    match value {
        Some(Duration::ZERO) => Err(ConfigError::new(field, "must be greater than zero")),
        _ => Ok(()),
    }
}

/// This crate's own client: no redirects, a `User-Agent` naming the crate, and the client
/// certificate and extra roots, if any.
pub(crate) fn default_http_client(
    certificate: Option<&ClientCertificate>,
    roots: &[Vec<u8>],
) -> Result<reqwest::Client, ConfigError> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")));
    tls::build_client(builder, certificate, roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(url: &str) -> ConfigBuilder {
        Config::builder(url, "client", "secret")
    }

    fn field_of(result: Result<Config, ConfigError>) -> &'static str {
        result.expect_err("build should fail").field()
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for url in [
            "https://auth.example.com/token",
            "http://localhost:8080/token",
            "http://127.0.0.1:9/token",
            "http://127.8.9.10/token",
            "http://[::1]:9/token",
        ] {
            builder(url).build().unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn plain_http_elsewhere_needs_the_dangerous_opt_in() {
        let error = builder("http://auth.example.com/token").build().unwrap_err();
        assert_eq!(error.field(), "token_url");
        assert!(error.to_string().contains("https"), "{error}");
        builder("http://auth.example.com/token").danger_allow_plain_http().build().unwrap();
    }

    #[test]
    fn bad_token_urls_are_refused_without_echoing_user_info() {
        let error = builder("https://user:hunter2@auth.example.com/token").build().unwrap_err();
        assert_eq!(error.field(), "token_url");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(field_of(builder("not a url").build()), "token_url");
        assert_eq!(field_of(builder("ftp://auth.example.com/").build()), "token_url");
        assert_eq!(field_of(builder("https://auth.example.com/t#frag").build()), "token_url");
    }

    #[test]
    fn each_bad_setting_is_named() {
        let url = "https://auth.example.com/token";
        assert_eq!(field_of(Config::builder(url, "", "s").build()), "client_id");
        assert_eq!(field_of(Config::builder(url, "c", "").build()), "client_secret");
        assert_eq!(field_of(builder(url).scope("a\"b").build()), "scope");
        assert_eq!(field_of(builder(url).audience(" ").build()), "audience");
        assert_eq!(field_of(builder(url).resource("relative/path").build()), "resource");
        assert_eq!(field_of(builder(url).param("grant_type", "x").build()), "param");
        assert_eq!(field_of(builder(url).param("", "x").build()), "param");
        let zero = Duration::ZERO;
        assert_eq!(field_of(builder(url).request_timeout(zero).build()), "request_timeout");
        assert_eq!(field_of(builder(url).default_lifetime(zero).build()), "default_lifetime");
        assert_eq!(field_of(builder(url).max_lifetime(zero).build()), "max_lifetime");
        let interval = builder(url).invalidation_interval(zero).build();
        assert_eq!(field_of(interval), "invalidation_interval");
        let origin = builder(url).allowed_origin("https://a.example/path").build();
        assert_eq!(field_of(origin), "allowed_origin");
        let raw_basic = Config::builder(url, "a:b", "s").form_encode_basic_credentials(false);
        assert_eq!(field_of(raw_basic.build()), "client_id");
    }

    #[test]
    fn scopes_split_on_whitespace_and_accumulate() {
        let config = builder("https://a.example/t").scope("read  write").scope("admin").build();
        assert_eq!(config.unwrap().scopes(), ["read", "write", "admin"]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let builder = Config::builder("https://a.example/t", "client", "hunter2-secret");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let config = builder.build().unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_client_without_a_secret_needs_the_credential_of_its_method() {
        let url = "https://a.example/t";
        let none = Config::builder_without_secret(url, "client");
        assert_eq!(field_of(none.build()), "client_secret");
        let tls =
            Config::builder_without_secret(url, "client").auth_method(AuthMethod::TlsClientAuth);
        assert_eq!(field_of(tls.build()), "client_certificate");
        // A client of the user's may present a certificate this crate cannot see.
        let own = reqwest::Client::new();
        let tls = Config::builder_without_secret(url, "client")
            .auth_method(AuthMethod::SelfSignedTlsClientAuth)
            .http_client(own);
        assert_eq!(tls.build().unwrap().auth_method(), AuthMethod::SelfSignedTlsClientAuth);
        #[cfg(feature = "jwt")]
        {
            let jwt =
                Config::builder_without_secret(url, "c").auth_method(AuthMethod::PrivateKeyJwt);
            assert_eq!(field_of(jwt.build()), "client_key");
            let jwt =
                Config::builder_without_secret(url, "c").auth_method(AuthMethod::ClientSecretJwt);
            assert_eq!(field_of(jwt.build()), "client_secret");
        }
    }

    #[test]
    fn tls_settings_cannot_join_a_client_of_your_own() {
        let certified = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
        let certificate = ClientCertificate::from_pem(
            certified.cert.pem(),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
        let url = "https://a.example/t";
        let with_own = Config::builder_without_secret(url, "client")
            .client_certificate(certificate.clone())
            .http_client(reqwest::Client::new());
        assert_eq!(field_of(with_own.build()), "client_certificate");
        let config = Config::builder_without_secret(url, "client")
            .client_certificate(certificate)
            .tls_root_certificate(certified.cert.pem())
            .build()
            .unwrap();
        assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);
        let roots = builder(url).tls_root_certificate("x").http_client(reqwest::Client::new());
        assert_eq!(field_of(roots.build()), "tls_root_certificate");
    }

    #[test]
    fn the_assertion_parameters_are_reserved() {
        let url = "https://a.example/t";
        assert_eq!(field_of(builder(url).param("client_assertion", "x").build()), "param");
        assert_eq!(field_of(builder(url).param("client_assertion_type", "x").build()), "param");
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn key_settings_are_checked_and_the_key_is_never_shown() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = key.serialize_pem();
        let key = crate::ClientKey::from_pem(&pem, crate::SigningAlgorithm::Es256).unwrap();
        let url = "https://a.example/t";
        let start = || Config::builder_without_secret(url, "client").client_key(key.clone());
        let short = start().assertion_lifetime(Duration::from_millis(500));
        assert_eq!(field_of(short.build()), "assertion_lifetime");
        assert_eq!(field_of(start().assertion_audience(" ").build()), "assertion_audience");
        let both = Config::builder(url, "client", "secret").client_key(key.clone());
        assert_eq!(field_of(both.build()), "auth_method");
        let config = start().build().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);
        let debug = format!("{config:?}");
        assert!(debug.contains("ClientKey"), "{debug}");
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!debug.contains(line), "{debug}");
        }
    }

    #[cfg(feature = "store")]
    #[test]
    fn a_store_without_a_secret_needs_its_own_encryption_key() {
        #[derive(Debug)]
        struct NoStore;
        impl crate::store::TokenStore for NoStore {
            fn get<'a>(&'a self, _: &'a str) -> crate::store::StoreFuture<'a, Option<Vec<u8>>> {
                Box::pin(async { Ok(None) })
            }
            fn set<'a>(
                &'a self,
                _: &'a str,
                _: Vec<u8>,
                _: Duration,
            ) -> crate::store::StoreFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
            fn try_lock<'a>(
                &'a self,
                _: &'a str,
                _: &'a str,
                _: Duration,
            ) -> crate::store::StoreFuture<'a, bool> {
                Box::pin(async { Ok(false) })
            }
            fn remove_if_equal<'a>(
                &'a self,
                _: &'a str,
                _: &'a [u8],
            ) -> crate::store::StoreFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
        }
        let mtls = || {
            Config::builder_without_secret("https://a.example/t", "client")
                .auth_method(AuthMethod::TlsClientAuth)
                .http_client(reqwest::Client::new())
                .store(NoStore)
        };
        assert_eq!(field_of(mtls().build()), "store_encryption_key");
        mtls().store_encryption_key([7; 32]).build().unwrap();
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_strings_give_a_config_or_a_config_error(
            url in proptest::prelude::any::<String>(),
            id in proptest::prelude::any::<String>(),
            secret in proptest::prelude::any::<String>(),
            scope in proptest::prelude::any::<String>(),
            param in proptest::prelude::any::<String>(),
            origin in proptest::prelude::any::<String>(),
        ) {
            let _ = Config::builder(url, id, secret).scope(scope).param(param, "v").build();
            let _ = builder("https://a.example/t").resource(origin.clone()).allowed_origin(origin).build();
        }
    }
}
