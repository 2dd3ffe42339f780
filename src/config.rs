//! What to ask the authorization server for, how to authenticate, and when to refresh.
//!
//! Every default lives in this file, next to the setter that overrides it.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

use crate::error::ConfigError;
use crate::origin::Origin;

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

/// How the client authenticates to the token endpoint (RFC 6749 §2.3).
///
/// Never guessed: servers differ, and a wrong guess costs a rejected request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic authentication with the client id and secret (`client_secret_basic`), the
    /// method every server must support. The default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    ClientSecretPost,
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
            #[cfg(feature = "store")]
            store: None,
            #[cfg(feature = "store")]
            store_encryption_key: None,
            allow_plain_http: false,
        }
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
    /// `resource`) are refused by [`build`](Self::build): use their own setters.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// How to authenticate the client. Default: [`AuthMethod::ClientSecretBasic`].
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = method;
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
    /// one must be positive; an allowed origin that is not a bare `http(s)` origin.
    pub fn build(self) -> Result<Config, ConfigError> {
        let token_url = check_token_url(&self.token_url, self.allow_plain_http)?;
        check_client_id(&self.client_id, self.auth_method, self.form_encode_basic_credentials)?;
        if secrecy::ExposeSecret::expose_secret(&self.client_secret).is_empty() {
            return Err(ConfigError::new("client_secret", "must not be empty"));
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
            Some(client) => client,
            None => default_http_client()?,
        };
        Ok(Config {
            token_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: self.scopes,
            audience: self.audience,
            resources: self.resources,
            params: self.params,
            auth_method: self.auth_method,
            form_encode_basic_credentials: self.form_encode_basic_credentials,
            refresh_ahead: self.refresh_ahead,
            expiry_margin: self.expiry_margin,
            default_lifetime: self.default_lifetime,
            max_lifetime: self.max_lifetime,
            request_timeout: self.request_timeout,
            invalidation_interval: self.invalidation_interval,
            allowed_origins,
            http_client,
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

fn is_loopback(url: &Url) -> bool {
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

const RESERVED_PARAMS: [&str; 6] =
    ["grant_type", "client_id", "client_secret", "scope", "audience", "resource"];

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

fn default_http_client() -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ConfigError::new("http_client", format!("could not build the default client ({e})"))
        })
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
