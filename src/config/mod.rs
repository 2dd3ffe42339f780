//! What to ask the authorization server for, how to authenticate, and when to refresh.
//!
//! Every default lives in this file, next to the setter that overrides it. The settings
//! themselves are declared once, in [`Settings`]: the builder writes into it, a file and the
//! environment are read into it, and [`ConfigBuilder::build`] reads it.

use std::env::VarError;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

mod auth_method;
#[cfg(feature = "dpop")]
pub(crate) mod dpop;
pub(crate) mod origin;
mod params;
mod settings;

pub use auth_method::AuthMethod;
pub use params::TokenParams;
pub(crate) use params::{resolved_path, Route};
pub use settings::Settings;

#[cfg(feature = "jwt")]
use crate::credential::ClientKey;
#[cfg(feature = "dpop")]
use crate::credential::DpopKey;
use crate::credential::{
    check_own_client, default_http_client, AssertionFile, ClientCertificate, CredentialFiles,
    CredentialSource, SecretFile,
};
use crate::error::ConfigError;
use auth_method::Credentials;
use origin::Origin;

/// What discovery found out about the server, for [`ConfigBuilder::build`] to choose by.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// `token_endpoint_auth_methods_supported`.
    pub(crate) auth_methods: Vec<String>,
    /// `mtls_endpoint_aliases.token_endpoint`.
    pub(crate) mtls_token_endpoint: Option<String>,
    /// `token_endpoint_auth_signing_alg_values_supported`, if the server lists them.
    #[cfg(feature = "jwt")]
    pub(crate) signing_algorithms: Option<Vec<String>>,
}

/// No lifetime is taken to be longer than this, whatever the server says: far enough to mean
/// "long-lived", near enough that instant arithmetic cannot overflow.
pub(crate) const LIFETIME_CEILING: Duration = Duration::from_secs(365 * 24 * 60 * 60);

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
/// How many tokens a layer keeps at most by default, beside its own: see
/// [`ConfigBuilder::max_cached_tokens`].
pub const DEFAULT_MAX_CACHED_TOKENS: usize = 100;
/// How long a client assertion (`private_key_jwt`, `client_secret_jwt`) is valid: it is used
/// at once, so a leaked one soon expires.
#[cfg(feature = "jwt")]
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

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
    /// What the token request asks for.
    pub(crate) requested: Requested,
    /// Where it goes, and how the client authenticates.
    pub(crate) endpoint: Endpoint,
    /// How long a token is used, and when it is refreshed.
    pub(crate) lifetimes: Lifetimes,
    /// Which requests get a token, and which one.
    pub(crate) selection: Selection,
    /// How often the API's `401`s drop a token; how many tokens are kept.
    pub(crate) limits: Limits,
    /// Tokens shared with other replicas (feature `store`).
    #[cfg(feature = "store")]
    pub(crate) shared: Shared,
    /// The `token` label of the metrics (feature `metrics`); `None` to derive it.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_label: Option<String>,
}

/// What a token request asks for: the settings `scope`, `audience`, `resource` and `param`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requested {
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
}

/// The token endpoint, how the client authenticates to it, and how requests to it are sent.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    /// Empty when the client has none.
    pub(crate) client_secret: SecretString,
    pub(crate) auth_method: AuthMethod,
    pub(crate) form_encode_basic_credentials: bool,
    /// Where the client secret comes from when it rotates; read per token request instead of
    /// `client_secret`.
    pub(crate) client_secret_source: Option<Arc<dyn CredentialSource>>,
    /// Where client assertions come from when this crate does not sign them.
    pub(crate) client_assertion_source: Option<Arc<dyn CredentialSource>>,
    /// How this crate signs client assertions (feature `jwt`).
    #[cfg(feature = "jwt")]
    pub(crate) assertion: Assertion,
    /// The key and certificate files to read again when they change.
    pub(crate) credential_files: Option<Arc<CredentialFiles>>,
    pub(crate) http_client: reqwest::Client,
    pub(crate) request_timeout: Duration,
    /// DPoP (feature `dpop`): proofs on token and API requests.
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<dpop::Dpop>,
}

/// How client assertions are signed (feature `jwt`).
#[cfg(feature = "jwt")]
#[derive(Clone, Debug)]
pub(crate) struct Assertion {
    pub(crate) client_key: Option<ClientKey>,
    /// `None` for the token URL.
    pub(crate) audience: Option<String>,
    pub(crate) lifetime: Duration,
}

/// A token's lifecycle (DESIGN.md §1): the settings `refresh_ahead`, `expiry_margin`,
/// `default_lifetime` and `max_lifetime` (or `token_lifetime`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetimes {
    pub(crate) refresh_ahead: Duration,
    pub(crate) expiry_margin: Duration,
    pub(crate) default_lifetime: Duration,
    pub(crate) max_lifetime: Option<Duration>,
}

/// Which requests get a token (the allow-list; empty for all), and which token (routes, the
/// most specific first).
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub(crate) allowed_origins: Vec<Origin>,
    pub(crate) routes: Arc<[Route]>,
}

/// The bounds of a layer's work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) invalidation_interval: Duration,
    pub(crate) max_cached_tokens: usize,
}

/// The store that replicas share tokens through, if any, and the key that seals them
/// (feature `store`).
#[cfg(feature = "store")]
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Option<Arc<dyn crate::store::TokenStore>>,
    /// `None` to derive it from the client secret.
    pub(crate) encryption_key: Option<secrecy::SecretSlice<u8>>,
}

impl Config {
    /// Starts a configuration for the token endpoint at `token_url`, with the client's
    /// credentials. Every other setting has a default; see the setters of [`ConfigBuilder`].
    pub fn builder(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ConfigBuilder {
        Settings::new(token_url.into(), client_id.into(), client_secret.into()).into_builder()
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
        &self.endpoint.token_url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.endpoint.client_id
    }

    /// The requested scopes, in the order given.
    pub fn scopes(&self) -> &[String] {
        &self.requested.scopes
    }

    /// The client authentication method.
    pub fn auth_method(&self) -> AuthMethod {
        self.endpoint.auth_method
    }

    /// Reads the configuration from environment variables: every setting of the
    /// [`Settings`] table is `{prefix}_` and its name in capitals (`ORDERS_TOKEN_URL`,
    /// `ORDERS_CLIENT_ID`, `ORDERS_REFRESH_AHEAD`, ...), its value written as in a file:
    /// durations like `30s`, `5m` or `1h 30m`, or seconds; lists separated by spaces
    /// (`ORDERS_SCOPE="orders:read orders:write"`); `ORDERS_PARAM` form-encoded
    /// (`tenant=acme&prompt=none`); keys and certificates as file paths.
    ///
    /// `{prefix}_TOKEN_URL` and `{prefix}_CLIENT_ID` are required, and
    /// `{prefix}_CLIENT_SECRET` unless a certificate or key file is given. A variable that is
    /// set but empty counts as unset. With an empty `prefix` the names are bare (`TOKEN_URL`,
    /// ...); a trailing `_` is not doubled. Moving a .NET service across: `TokenEndPoint`,
    /// `ClientId`, `ClientSecret`, `Scope` and `TokenTime` are `TOKEN_URL`, `CLIENT_ID`,
    /// `CLIENT_SECRET`, `SCOPE` and `TOKEN_LIFETIME`.
    ///
    /// ```
    /// use tower_client_credentials::Config;
    ///
    /// # std::env::set_var("ORDERS_TOKEN_URL", "https://auth.example.com/oauth/token");
    /// # std::env::set_var("ORDERS_CLIENT_ID", "orders-service");
    /// # std::env::set_var("ORDERS_CLIENT_SECRET", "s3cret");
    /// // ORDERS_TOKEN_URL, ORDERS_CLIENT_ID, ORDERS_CLIENT_SECRET, ORDERS_SCOPE, ...
    /// let config = Config::from_env("ORDERS")?;
    /// # assert_eq!(config.client_id(), "orders-service");
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose [`field`](ConfigError::field) is the setting and whose message
    /// names the variable: a required variable that is missing or empty, a variable that is
    /// not UTF-8, a value that does not parse, or any error of [`ConfigBuilder::build`].
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        from_variables(prefix, |name| std::env::var(name))
    }

    /// Starts a configuration for Microsoft Entra workload identity (AKS, or any platform that
    /// sets the same variables): the client id from `AZURE_CLIENT_ID`, the token endpoint of
    /// tenant `AZURE_TENANT_ID` at `AZURE_AUTHORITY_HOST` (default
    /// `https://login.microsoftonline.com/`), and the federated token in
    /// `AZURE_FEDERATED_TOKEN_FILE` as the client assertion, read for every token request
    /// (the kubelet rotates it). Add the scope: `https://<resource>/.default`.
    ///
    /// ```no_run
    /// use tower_client_credentials::{ClientCredentialsLayer, Config};
    ///
    /// let config = Config::azure_workload_identity()?
    ///     .scope("https://graph.microsoft.com/.default")
    ///     .build()?;
    /// let layer = ClientCredentialsLayer::new(config);
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose field is the variable that is missing, empty or not UTF-8.
    pub fn azure_workload_identity() -> Result<ConfigBuilder, ConfigError> {
        azure_workload_identity(|name| std::env::var(name))
    }
}

/// [`Config::from_env`] with the variables looked up by `lookup`, so tests need not touch the
/// process environment.
fn from_variables(
    prefix: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<Config, ConfigError> {
    let settings = Settings::from_variables(prefix, lookup)?;
    settings.into_config().map_err(|error| settings::naming_the_variable(prefix, error))
}

impl TryFrom<Settings> for Config {
    type Error = ConfigError;

    /// The same as [`Settings::into_config`].
    fn try_from(settings: Settings) -> Result<Self, Self::Error> {
        settings.into_config()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (endpoint, requested) = (&self.endpoint, &self.requested);
        let mut debug = f.debug_struct("Config");
        debug
            .field("token_url", &endpoint.token_url.as_str())
            .field("client_id", &endpoint.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &requested.scopes)
            .field("audience", &requested.audience)
            .field("resources", &requested.resources)
            // Values of extra parameters may be credentials: their names only.
            .field("params", &requested.params.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("auth_method", &endpoint.auth_method)
            .field("request_timeout", &endpoint.request_timeout)
            .field("lifetimes", &self.lifetimes)
            .field("limits", &self.limits)
            .field("allowed_origins", &self.selection.allowed_origins);
        #[cfg(feature = "store")]
        debug.field("store", &self.shared.store);
        #[cfg(feature = "jwt")]
        debug.field("client_key", &endpoint.assertion.client_key);
        #[cfg(feature = "dpop")]
        debug.field("dpop", &endpoint.dpop);
        debug.finish_non_exhaustive()
    }
}

/// Builds a [`Config`]; start with [`Config::builder`] (or [`Settings::into_builder`]).
///
/// Setters record what they are given, in the builder's [`Settings`] for every setting that
/// can be written as text (its table says how each is written in a file and the environment);
/// [`build`](Self::build) checks everything at once and names the first unusable setting.
#[must_use = "a builder does nothing until `build()` is called"]
pub struct ConfigBuilder {
    /// Every setting that can be written as text: the setters write into it.
    settings: Settings,
    /// The settings that cannot: objects, or what discovery found.
    http_client: Option<reqwest::Client>,
    client_certificate: Option<ClientCertificate>,
    tls_root_certificates: Vec<Vec<u8>>,
    discovered: Option<Discovered>,
    #[cfg(feature = "jwt")]
    client_key: Option<ClientKey>,
    #[cfg(feature = "store")]
    store: Option<std::sync::Arc<dyn crate::store::TokenStore>>,
    client_secret_source: Option<Arc<dyn CredentialSource>>,
    client_assertion_source: Option<Arc<dyn CredentialSource>>,
    #[cfg(feature = "dpop")]
    dpop_key: Option<DpopKey>,
    /// Prefixes and their parameters, checked by `build`.
    routes: Vec<(String, TokenParams)>,
}

impl ConfigBuilder {
    /// Adds scopes to request: one scope, or several separated by spaces (`"read write"`).
    /// May be called more than once. Default: none (the server's default scope).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.settings.scope.extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Sets the `audience` parameter (Auth0, Okta and others name the API with it).
    /// Default: none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audience = Some(audience.into());
        self
    }

    /// Adds a `resource` parameter (RFC 8707), an absolute URI naming the API. Repeatable.
    /// Default: none.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.settings.resource.push(resource.into());
        self
    }

    /// Adds any other form parameter to the token request. Repeatable. The parameters this
    /// crate sets itself (`grant_type`, `client_id`, `client_secret`, `scope`, `audience`,
    /// `resource`, `client_assertion`, `client_assertion_type`) are refused by
    /// [`build`](Self::build): use their own setters.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.param.push((name.into(), value.into()));
        self
    }

    /// How to authenticate the client. Default: the method the credentials imply:
    /// [`AuthMethod::ClientSecretBasic`] with a client secret, `PrivateKeyJwt` with a
    /// `client_key`, [`AuthMethod::TlsClientAuth`] with only a
    /// [`client_certificate`](Self::client_certificate); after discovery, the first the server
    /// lists that the credentials fit (see [`ServerMetadata`](crate::ServerMetadata)).
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.settings.auth_method = Some(method);
        self
    }

    /// With [`AuthMethod::ClientSecretBasic`], whether the client id and secret are
    /// form-encoded before base64, as RFC 6749 §2.3.1 requires. Default: `true`.
    ///
    /// Turn it off only for a server that does not decode them; secrets of letters and
    /// digits are the same either way. With it off, the client id may not contain `:`.
    pub fn form_encode_basic_credentials(mut self, encode: bool) -> Self {
        self.settings.form_encode_basic_credentials = Some(encode);
        self
    }

    /// Start refreshing in the background this long before the token expires, capped at half
    /// its lifetime and jittered by up to a tenth more. Any duration, zero (refresh only once
    /// the token is no longer usable) to `Duration::MAX`. Default: 5 minutes.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.settings.refresh_ahead = Some(ahead);
        self
    }

    /// Stop sending a token this long before it expires (clocks and transit take time), capped
    /// at a quarter of its lifetime. Any duration. Default: 30 seconds.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.settings.expiry_margin = Some(margin);
        self
    }

    /// The lifetime assumed when the token response has no `expires_in`. Greater than zero;
    /// above a year counts as a year. Default: 5 minutes.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.default_lifetime = Some(lifetime);
        self
    }

    /// Caps every token's lifetime, whatever `expires_in` says: a fixed token time. Greater than
    /// zero. Default: no cap of yours (lifetimes above a year are treated as a year).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.max_lifetime = Some(lifetime);
        self
    }

    /// A fixed token time: sets both [`default_lifetime`](Self::default_lifetime) and
    /// [`max_lifetime`](Self::max_lifetime), as the .NET `TokenTime` setting does. Give either
    /// it or them. Default: none.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.token_lifetime = Some(lifetime);
        self
    }

    /// How long one token request may take, from connecting to the end of the body. Callers
    /// waiting for a token never wait longer (with a store, `2 × request_timeout + 2.5 s`). Greater
    /// than zero; above a year counts as a year. Default: 10 seconds.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = Some(timeout);
        self
    }

    /// When the API answers `401 Unauthorized` to a request that carried our token, that token
    /// is dropped and the next request waits for a new one; but at most once in this interval,
    /// so that an API that rejects every token cannot cause a storm of token requests. At least
    /// one second. Default: 5 seconds.
    pub fn invalidation_interval(mut self, interval: Duration) -> Self {
        self.settings.invalidation_interval = Some(interval);
        self
    }

    /// Attaches the token only to requests for this origin (`https://api.example.com`, a
    /// scheme, host and optional port). Repeatable. Requests elsewhere, and requests whose URI
    /// has no scheme and authority, pass through without it. Default: no list, every request
    /// gets the token.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.settings.allowed_origin.push(origin.into());
        self
    }

    /// Sends token requests through this client (for proxies, custom roots or mTLS). Default:
    /// a client of this crate's own that follows no redirects.
    ///
    /// Build yours with `redirect(reqwest::redirect::Policy::none())`: a token endpoint that
    /// redirects is misconfigured, and a redirect must not carry the credentials elsewhere.
    /// Not a setting of files or the environment: give it to the builder of
    /// [`Settings::into_builder`].
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The private key that signs client assertions for [`AuthMethod::PrivateKeyJwt`], the
    /// method it implies when no secret is given. Default: none. In a file or the
    /// environment: `client_key_file`, `client_key_algorithm` and `client_key_id`; a key
    /// given here replaces those.
    #[cfg(feature = "jwt")]
    pub fn client_key(mut self, key: ClientKey) -> Self {
        self.client_key = Some(key);
        self
    }

    /// Signs client assertions with the private key in this PEM file (as
    /// [`ClientKey::from_pem`](ClientKey::from_pem) reads it), read at `build()` and
    /// again before a token request whenever the file has changed: a rotated key is used
    /// without a restart. The settings `client_key_file` and `client_key_algorithm`.
    /// Default: none.
    #[cfg(feature = "jwt")]
    pub fn client_key_file(
        mut self,
        path: impl Into<PathBuf>,
        algorithm: crate::credential::SigningAlgorithm,
    ) -> Self {
        self.settings.client_key_file = Some(path.into());
        self.settings.client_key_algorithm = Some(algorithm);
        self
    }

    /// The audience (`aud`) of client assertions. Default: the token endpoint URL, as Okta,
    /// Keycloak and Microsoft Entra ID expect; a server that wants its issuer instead gets
    /// [`ServerMetadata::issuer`](crate::ServerMetadata::issuer).
    #[cfg(feature = "jwt")]
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.assertion_audience = Some(audience.into());
        self
    }

    /// How long a client assertion is valid (`exp` minus `iat`), in whole seconds, at least
    /// one. Default: 60 seconds ([`DEFAULT_ASSERTION_LIFETIME`]).
    #[cfg(feature = "jwt")]
    pub fn assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.assertion_lifetime = Some(lifetime);
        self
    }

    /// Presents this TLS client certificate to the token endpoint (mutual TLS, RFC 8705). With
    /// no secret or key, it implies [`AuthMethod::TlsClientAuth`]; next to one, the secret or
    /// key authenticates and the server can bind tokens to the certificate (RFC 8705 §3). After
    /// discovery, requests go to the server's mTLS alias of the token endpoint, if it has one.
    /// Default: none.
    ///
    /// It goes into the client this crate builds; with [`http_client`](Self::http_client),
    /// give it to that client instead (`build` refuses both). In a file or the environment:
    /// `client_certificate_file` and `client_certificate_key_file`; a certificate given here
    /// replaces those.
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.client_certificate = Some(certificate);
        self
    }

    /// Presents the TLS client certificate in these PEM files (the chain, and its private key),
    /// read at `build()` and again before a token request whenever either file has changed:
    /// a certificate that cert-manager renews in place is used without a restart (the crate's
    /// HTTP client is built again). With an [`http_client`](Self::http_client) of yours, which
    /// holds its certificate itself, build a new client and layer when yours is renewed. The
    /// settings `client_certificate_file` and `client_certificate_key_file`. Default: none.
    pub fn client_certificate_files(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.settings.client_certificate_file = Some(chain.into());
        self.settings.client_certificate_key_file = Some(key.into());
        self
    }

    /// Reads the client secret from this file (a Kubernetes secret mounted as a volume): at
    /// `build()`, which fails if it cannot, again at least once a minute, and at once when the
    /// token endpoint rejects the client, so that a rotated secret is picked up without a
    /// restart. The content is trimmed. Start with [`Config::builder_without_secret`].
    /// Default: none.
    ///
    /// With a [store](crate::store), give a
    /// [`store_encryption_key`](Self::store_encryption_key) too: replicas on the old and the
    /// new secret must share tokens.
    ///
    /// ```no_run
    /// use tower_client_credentials::Config;
    ///
    /// let config = Config::builder_without_secret("https://idp.example.com/token", "orders")
    ///     .client_secret_file("/var/run/secrets/orders/client-secret")
    ///     .build()?; // reads the file now
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn client_secret_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.client_secret_file = Some(path.into());
        self
    }

    /// Gets the client secret from `source` for each token request: a Vault agent, a sidecar.
    /// See [`CredentialSource`]. Not a setting of files or the environment. Default: none.
    pub fn client_secret_source(mut self, source: impl CredentialSource) -> Self {
        self.client_secret_source = Some(Arc::new(source));
        self
    }

    /// Sends the content of this file (trimmed) as the client assertion
    /// (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`), read
    /// again for every token request: workload identity federation, where the platform writes
    /// a short-lived token to a file and rotates it (Microsoft Entra's
    /// `AZURE_FEDERATED_TOKEN_FILE`, a SPIFFE JWT-SVID). Implies
    /// [`AuthMethod::PrivateKeyJwt`]; start with [`Config::builder_without_secret`]. See
    /// [`AssertionFile`] for what is checked before sending. Default: none.
    ///
    /// ```
    /// use tower_client_credentials::{AuthMethod, Config};
    ///
    /// let config = Config::builder_without_secret("https://idp.example.com/token", "orders")
    ///     .client_assertion_file("/var/run/secrets/tokens/orders")
    ///     .build()?; // the file is read at each token request, not now
    /// assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn client_assertion_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.client_assertion_file = Some(path.into());
        self
    }

    /// Gets the client assertion from `source` for each token request (GitHub Actions' OIDC
    /// token, say), as [`client_assertion_file`](Self::client_assertion_file) does from a
    /// file. See [`CredentialSource`]. Not a setting of files or the environment. Default:
    /// none.
    pub fn client_assertion_source(mut self, source: impl CredentialSource) -> Self {
        self.client_assertion_source = Some(Arc::new(source));
        self
    }

    /// Also trusts this certificate authority (PEM, one certificate or several) for the token
    /// endpoint, beside the system's roots: for a server whose certificate comes from a
    /// private CA. Repeatable. Default: the system's roots only.
    ///
    /// Like [`client_certificate`](Self::client_certificate), not with
    /// [`http_client`](Self::http_client). In a file or the environment:
    /// `tls_root_certificate_file`, which adds to the ones given here.
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
    /// makes one token request per token lifetime. See [`store`](crate::store) for how; a
    /// caller then waits at most `2 × request_timeout + 2.5 s` for a token. Default: none; each layer keeps its token in memory only. Not a setting of files or
    /// the environment: give it to the builder of [`Settings::into_builder`].
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
    /// client secret. In a file or the environment, the 32 bytes are written in base64.
    #[cfg(feature = "store")]
    pub fn store_encryption_key(mut self, key: [u8; 32]) -> Self {
        self.settings.store_encryption_key = Some(key.to_vec().into());
        self
    }

    /// Requests for `prefix` get a token of their own, made with `params` instead of the
    /// layer's own scopes, audience, resources or extra parameters (those `params` sets).
    /// `prefix` is an origin (`https://graph.microsoft.com`) or an origin and a path
    /// (`https://api.example.com/orders`, which takes `/orders/7` but not `/orders-archive`);
    /// of two that match, the longer path wins. A [`TokenParams`] in a request's extensions
    /// wins over every route. May be called more than once. Default: none, one token for
    /// every request. Not a setting of files or the environment (a table of its own): give it
    /// to the builder of [`Settings::into_builder`]. A prefix that is not an origin (or
    /// holds a user name), one outside a non-empty [`allowed_origin`](Self::allowed_origin)
    /// list, or parameters that could not be sent, are a `build()` error naming `route`.
    ///
    /// ```
    /// use tower_client_credentials::{Config, TokenParams};
    ///
    /// let config = Config::builder("https://login.microsoftonline.com/t/oauth2/v2.0/token", "id", "s3cret")
    ///     .scope("https://graph.microsoft.com/.default")
    ///     .route("https://orders.example.com", TokenParams::new().scope("api://orders/.default"))
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn route(mut self, prefix: impl Into<String>, params: TokenParams) -> Self {
        self.routes.push((prefix.into(), params));
        self
    }

    /// The most tokens the layer keeps for [`TokenParams`] in requests' extensions: past it,
    /// the least recently used ones that no request is using are forgotten (and fetched again
    /// when next needed), so parameters taken from request data cannot grow memory without
    /// bound. A token that requests are using is kept until they are done. The layer's own
    /// token and its [routes](Self::route)' are kept for the layer's life and do not count.
    /// From 1 up; default [`DEFAULT_MAX_CACHED_TOKENS`] (100).
    ///
    /// ```
    /// # use tower_client_credentials::Config;
    /// let config = Config::builder("https://auth.example.com/oauth/token", "gateway", "s3cret")
    ///     .max_cached_tokens(20)
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn max_cached_tokens(mut self, max: usize) -> Self {
        self.settings.max_cached_tokens = Some(max);
        self
    }

    /// The value of the `token` label on this layer's metrics (feature `metrics`): a short name
    /// for what the token is for, such as `orders-read`. Default: the scopes separated by
    /// spaces, else the audience, else the resources, else `default`; never a `param`, whose
    /// values may be credentials. Must not be empty.
    ///
    /// ```
    /// # use tower_client_credentials::Config;
    /// let config = Config::builder("https://auth.example.com/oauth/token", "orders", "s3cret")
    ///     .scope("orders:read orders:write")
    ///     .metrics_label("orders-rw") // rather than `token="orders:read orders:write"`
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.settings.metrics_label = Some(label.into());
        self
    }

    /// Binds tokens to this key with DPoP (RFC 9449): each token request and each API request
    /// carries a proof signed with it (a `DPoP` header), the token is sent as
    /// `Authorization: DPoP <token>`, and a stolen token is useless without the key. The
    /// server must answer with `token_type` `DPoP`; see
    /// [`dpop_allow_bearer`](Self::dpop_allow_bearer). Default: none, bearer tokens. In a file
    /// or the environment: `dpop_key_file` and `dpop_key_algorithm`, or `dpop_key_algorithm`
    /// alone for a key generated by `build` ([`DpopKey::generate`]); a key given here replaces
    /// those. Feature `dpop`.
    ///
    /// With a [`store`](Self::store), give every replica the same key: `build` refuses a
    /// generated one, since other replicas could not use a token bound to it.
    #[cfg(feature = "dpop")]
    pub fn dpop(mut self, key: DpopKey) -> Self {
        self.dpop_key = Some(key);
        self
    }

    /// With DPoP, accepts a `Bearer` token from a server that ignored the proof (it does not
    /// support DPoP), and sends it as a bearer token, without proofs. Default: such an answer
    /// is an `UnsupportedTokenType` error, since the token is then not bound to the key.
    /// Feature `dpop`.
    #[cfg(feature = "dpop")]
    pub fn dpop_allow_bearer(mut self) -> Self {
        self.settings.dpop_allow_bearer = true;
        self
    }

    /// Allows an `http://` token URL on a host that is not loopback.
    ///
    /// The client secret and the token then cross the network in clear text, readable by
    /// anyone on the path. Only for a network you trust entirely, such as a test cluster.
    pub fn danger_allow_plain_http(mut self) -> Self {
        self.settings.danger_allow_plain_http = true;
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
    /// `store` without `store_encryption_key` for a client without a secret. From
    /// [`Settings`]: a key or certificate file that cannot be read or holds no key or
    /// certificate, half of a certificate's pair of files, and `token_lifetime` given with
    /// `default_lifetime` or `max_lifetime`. With DPoP (feature `dpop`): a `dpop_key_file`
    /// that holds no key of `dpop_key_algorithm`, `dpop_allow_bearer` without DPoP, and a
    /// generated key with a `store` (naming `dpop` and `store`).
    pub fn build(self) -> Result<Config, ConfigError> {
        let Self {
            settings,
            http_client,
            client_certificate,
            mut tls_root_certificates,
            discovered,
            #[cfg(feature = "jwt")]
            client_key,
            #[cfg(feature = "store")]
            store,
            client_secret_source,
            client_assertion_source,
            #[cfg(feature = "dpop")]
            dpop_key,
            routes,
        } = self;
        let client_secret_source = secret_source(client_secret_source, &settings)?;
        let client_assertion_source =
            match (client_assertion_source, &settings.client_assertion_file) {
                (Some(_), Some(_)) => return Err(twice("client_assertion_file")),
                (Some(source), None) => Some(source),
                (None, Some(path)) => Some(Arc::new(AssertionFile::new(path)) as Arc<_>),
                (None, None) => None,
            };
        // Keys and certificates named by file are read now, and again when they change; one
        // given as an object wins.
        let certificate_from_files = client_certificate.is_none() && http_client.is_none();
        #[cfg(feature = "jwt")]
        let key_from_file = client_key.is_none();
        let client_certificate = match client_certificate {
            Some(certificate) => Some(certificate),
            None => settings.read_client_certificate()?,
        };
        tls_root_certificates.extend(settings.read_tls_root_certificate()?);
        #[cfg(feature = "jwt")]
        let client_key = match client_key {
            Some(key) => Some(key),
            None => settings.read_client_key()?,
        };
        let (default_lifetime, max_lifetime) = match settings.token_lifetime {
            Some(_) if settings.default_lifetime.is_some() || settings.max_lifetime.is_some() => {
                return Err(ConfigError::new(
                    "token_lifetime",
                    "sets both `default_lifetime` and `max_lifetime`; give either it or them",
                ))
            }
            Some(lifetime) => (lifetime, Some(lifetime)),
            None => (settings.default_lifetime.unwrap_or(DEFAULT_LIFETIME), settings.max_lifetime),
        };
        let allow_plain_http = settings.danger_allow_plain_http;
        let form_encode_basic_credentials = settings.form_encode_basic_credentials.unwrap_or(true);
        let request_timeout = settings.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let invalidation_interval =
            settings.invalidation_interval.unwrap_or(DEFAULT_INVALIDATION_INTERVAL);
        #[cfg(feature = "jwt")]
        let assertion_lifetime = settings.assertion_lifetime.unwrap_or(DEFAULT_ASSERTION_LIFETIME);

        let mut token_url = check_token_url(&settings.token_url, allow_plain_http)?;
        #[cfg(feature = "jwt")]
        let has_key = client_key.is_some();
        #[cfg(not(feature = "jwt"))]
        let has_key = false;
        if has_key && client_assertion_source.is_some() {
            return Err(ConfigError::new(
                "client_assertion_file",
                "comes with a `client_key`: give the key that signs assertions, or the \
                 assertions, not both",
            ));
        }
        let fixed_secret =
            !secrecy::ExposeSecret::expose_secret(&settings.client_secret).is_empty();
        let credentials = Credentials {
            secret: fixed_secret || client_secret_source.is_some(),
            assertion: has_key || client_assertion_source.is_some(),
            certificate: client_certificate.is_some(),
            own_http_client: http_client.is_some(),
        };
        let auth_method = auth_method::choose(
            settings.auth_method,
            discovered.as_ref().map(|d| d.auth_methods.as_slice()),
            credentials,
        )?;
        #[cfg(feature = "jwt")]
        if let Some(accepted) = discovered.as_ref().and_then(|d| d.signing_algorithms.as_deref()) {
            let key_algorithm = client_key.as_ref().map(|key| key.algorithm().as_str());
            auth_method::check_signing_algorithm(auth_method, key_algorithm, accepted)?;
        }
        let mtls_alias = discovered.as_ref().and_then(|d| d.mtls_token_endpoint.as_deref());
        if let Some(alias) = mtls_alias {
            if auth_method.is_mutual_tls() || credentials.certificate {
                token_url = check_token_url(alias, allow_plain_http)?;
            }
        }
        check_client_id(&settings.client_id, auth_method, form_encode_basic_credentials)?;
        #[cfg(feature = "jwt")]
        {
            if assertion_lifetime < Duration::from_secs(1) {
                return Err(ConfigError::new("assertion_lifetime", "must be at least one second"));
            }
            if settings.assertion_audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return Err(ConfigError::new("assertion_audience", "must not be empty"));
            }
        }
        #[cfg(feature = "store")]
        if store.is_some() && settings.store_encryption_key.is_none() {
            // Replicas must agree on the store's key; a secret that rotates, or none, gives
            // them nothing stable to derive it from.
            let why = if client_secret_source.is_some() {
                Some(
                    "the client secret rotates, and replicas on the old and the new one must \
                      share tokens",
                )
            } else if !fixed_secret {
                Some("there is no client secret to derive the store's key from")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ConfigError::new(
                    "store_encryption_key",
                    format!("is required to use a store with `{auth_method}`: {why}"),
                ));
            }
        }
        #[cfg(feature = "metrics")]
        if settings.metrics_label.as_deref().is_some_and(|label| label.trim().is_empty()) {
            return Err(ConfigError::new("metrics_label", "must not be empty"));
        }
        for scope in &settings.scope {
            check_scope(scope)?;
        }
        if settings.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("audience", "must not be empty"));
        }
        for resource in &settings.resource {
            check_resource(resource)?;
        }
        for (name, _) in &settings.param {
            check_param_name(name)?;
        }
        check_positive("request_timeout", Some(request_timeout))?;
        check_positive("token_lifetime", settings.token_lifetime)?;
        check_positive("default_lifetime", Some(default_lifetime))?;
        check_positive("max_lifetime", max_lifetime)?;
        if invalidation_interval < MIN_INVALIDATION_INTERVAL {
            return Err(ConfigError::new(
                "invalidation_interval",
                "must be at least one second: an API that rejects every token would otherwise \
                 drive a token request per rejection",
            ));
        }
        let allowed_origins: Vec<Origin> =
            settings.allowed_origin.iter().map(|o| Origin::parse(o)).collect::<Result<_, _>>()?;
        let mut routes = routes
            .into_iter()
            .map(|(prefix, params)| Route::new(&prefix, params))
            .collect::<Result<Vec<_>, _>>()?;
        // A route for an origin that never gets a token would never be taken.
        if !allowed_origins.is_empty()
            && routes.iter().any(|r| !allowed_origins.contains(r.origin()))
        {
            return Err(ConfigError::new(
                "route",
                "is for an origin that `allowed_origin` does not list: it would never get a token",
            ));
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.path_len()));
        let max_cached_tokens = settings.max_cached_tokens.unwrap_or(DEFAULT_MAX_CACHED_TOKENS);
        if max_cached_tokens == 0 {
            return Err(ConfigError::new("max_cached_tokens", "must be at least 1"));
        }
        let credential_files = CredentialFiles::new(
            settings.certificate_files().filter(|_| certificate_from_files),
            &tls_root_certificates,
            #[cfg(feature = "jwt")]
            settings.key_file().filter(|_| key_from_file),
        )
        .map(Arc::new);
        #[cfg(feature = "dpop")]
        let dpop = {
            #[cfg(feature = "store")]
            let shared = store.is_some();
            #[cfg(not(feature = "store"))]
            let shared = false;
            dpop::settle(dpop_key, &settings, shared)?
        };
        let http_client = match http_client {
            Some(client) => {
                check_own_client(client_certificate.as_ref(), &tls_root_certificates)?;
                client
            }
            None => default_http_client(client_certificate.as_ref(), &tls_root_certificates)?,
        };
        let requested = Requested {
            scopes: settings.scope,
            audience: settings.audience,
            resources: settings.resource,
            params: settings.param,
        };
        Ok(Config {
            requested,
            endpoint: Endpoint {
                token_url,
                client_id: settings.client_id,
                client_secret: settings.client_secret,
                auth_method,
                form_encode_basic_credentials,
                client_secret_source,
                client_assertion_source,
                #[cfg(feature = "jwt")]
                assertion: Assertion {
                    client_key,
                    audience: settings.assertion_audience,
                    lifetime: assertion_lifetime,
                },
                credential_files,
                http_client,
                request_timeout,
                #[cfg(feature = "dpop")]
                dpop,
            },
            lifetimes: Lifetimes {
                refresh_ahead: settings.refresh_ahead.unwrap_or(DEFAULT_REFRESH_AHEAD),
                expiry_margin: settings.expiry_margin.unwrap_or(DEFAULT_EXPIRY_MARGIN),
                default_lifetime,
                max_lifetime,
            },
            selection: Selection { allowed_origins, routes: routes.into() },
            limits: Limits { invalidation_interval, max_cached_tokens },
            #[cfg(feature = "store")]
            shared: Shared { store, encryption_key: settings.store_encryption_key },
            #[cfg(feature = "metrics")]
            metrics_label: settings.metrics_label,
        })
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("token_url", &self.settings.token_url)
            .field("client_id", &self.settings.client_id)
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
pub(super) fn check_scope(scope: &str) -> Result<(), ConfigError> {
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
pub(super) fn check_resource(resource: &str) -> Result<(), ConfigError> {
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

pub(super) fn check_param_name(name: &str) -> Result<(), ConfigError> {
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

/// [`Config::azure_workload_identity`] with the variables looked up by `lookup`.
fn azure_workload_identity(
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<ConfigBuilder, ConfigError> {
    let variable = |name: &'static str| match lookup(name) {
        Ok(value) if !value.trim().is_empty() => Ok(Some(value.trim().to_owned())),
        Ok(_) | Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(ConfigError::new(name, "is not UTF-8")),
    };
    let required = |name: &'static str| {
        variable(name)?.ok_or_else(|| {
            ConfigError::new(name, "is not set: Microsoft Entra workload identity needs it")
        })
    };
    let client_id = required("AZURE_CLIENT_ID")?;
    let tenant = required("AZURE_TENANT_ID")?;
    let token_file = required("AZURE_FEDERATED_TOKEN_FILE")?;
    let authority = variable("AZURE_AUTHORITY_HOST")?
        .unwrap_or_else(|| "https://login.microsoftonline.com/".to_owned());
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
    Ok(Config::builder_without_secret(token_url, client_id).client_assertion_file(token_file))
}

/// The client secret's source, if it rotates: one of the user's, or `client_secret_file`, which
/// is read now so that a missing file fails here.
fn secret_source(
    given: Option<Arc<dyn CredentialSource>>,
    settings: &Settings,
) -> Result<Option<Arc<dyn CredentialSource>>, ConfigError> {
    let source = match (given, &settings.client_secret_file) {
        (Some(_), Some(_)) => return Err(twice("client_secret_file")),
        (Some(source), None) => source,
        (None, Some(path)) => {
            let file = SecretFile::new(path);
            file.read().map_err(|e| ConfigError::new("client_secret_file", e.to_string()))?;
            Arc::new(file)
        }
        (None, None) => return Ok(None),
    };
    if !secrecy::ExposeSecret::expose_secret(&settings.client_secret).is_empty() {
        return Err(ConfigError::new(
            "client_secret_file",
            "comes with a client secret: start with `Config::builder_without_secret`",
        ));
    }
    Ok(Some(source))
}

fn twice(field: &'static str) -> ConfigError {
    ConfigError::new(field, "is given both as a file and as a source; give one")
}

/// The floor of `invalidation_interval`.
const MIN_INVALIDATION_INTERVAL: Duration = Duration::from_secs(1);

fn check_positive(field: &'static str, value: Option<Duration>) -> Result<(), ConfigError> {
    match value {
        Some(Duration::ZERO) => Err(ConfigError::new(field, "must be greater than zero")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use secrecy::ExposeSecret;

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
        assert_eq!(field_of(builder(url).token_lifetime(zero).build()), "token_lifetime");
        let interval = builder(url).invalidation_interval(zero).build();
        assert_eq!(field_of(interval), "invalidation_interval");
        let interval = builder(url).invalidation_interval(Duration::from_millis(999)).build();
        assert_eq!(field_of(interval), "invalidation_interval");
        builder(url).invalidation_interval(Duration::from_secs(1)).build().unwrap();
        builder(url).invalidation_interval(Duration::MAX).build().unwrap();
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
        let key = ClientKey::from_pem(&pem, crate::credential::SigningAlgorithm::Es256).unwrap();
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

        // A secret that rotates gives the replicas nothing stable either.
        let files = TempFiles::new("store-rotating-secret");
        let secret = files.write("secret", "s3cret");
        let rotating = || {
            Config::builder_without_secret("https://a.example/t", "client")
                .client_secret_file(&secret)
                .store(NoStore)
        };
        assert_eq!(field_of(rotating().build()), "store_encryption_key");
        rotating().store_encryption_key([7; 32]).build().unwrap();
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

    // Settings from a file (JSON here; any serde format) and from the environment.

    const MINUTE: Duration = Duration::from_secs(60);

    use super::settings::tests::{settings, with_required};

    fn from_map(prefix: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_variables(prefix, |name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("ORDERS_TOKEN_URL", "https://auth.example.com/token"),
        ("ORDERS_CLIENT_ID", "orders-service"),
        ("ORDERS_CLIENT_SECRET", "hunter2-secret"),
    ];

    /// A file in a directory of this test's own, removed with it.
    struct TempFiles(std::path::PathBuf);

    impl TempFiles {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tcc-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path.display().to_string()
        }
    }

    impl Drop for TempFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A self-signed client certificate and its key, as PEM files.
    fn certificate_files(files: &TempFiles) -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
        let chain = certified.cert.pem();
        let key = certified.signing_key.serialize_pem();
        (files.write("client.crt", &chain), files.write("client.key", &key))
    }

    /// A setting, its value as text, other settings it needs, and what it shows in the
    /// `Config` built (or in the error).
    type Case = (&'static str, String, Vec<(&'static str, String)>, Check);
    type Check = fn(Result<&Config, &ConfigError>) -> bool;

    /// Each setting of [`Settings`], written as text in a file and in the environment, reaches
    /// the `Config`. The cases must be the fields of `Settings`: a setting added without a case
    /// here fails this test.
    #[test]
    fn azure_workload_identity_reads_the_variables_aks_sets() {
        let variables = |unset: &str| {
            let unset = unset.to_owned();
            move |name: &str| match name {
                _ if name == unset => Err(VarError::NotPresent),
                "AZURE_CLIENT_ID" => Ok("1b2c".to_owned()),
                "AZURE_TENANT_ID" => Ok("contoso".to_owned()),
                "AZURE_FEDERATED_TOKEN_FILE" => Ok("/var/run/secrets/azure/token".to_owned()),
                _ => Err(VarError::NotPresent),
            }
        };
        let config = azure_workload_identity(variables("")).unwrap().scope("api://x/.default");
        let config = config.build().unwrap();
        assert_eq!(
            config.endpoint.token_url.as_str(),
            "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
        );
        assert_eq!(config.endpoint.client_id, "1b2c");
        assert_eq!(config.endpoint.auth_method, AuthMethod::PrivateKeyJwt);
        assert!(config.endpoint.client_assertion_source.is_some());
        for missing in ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"] {
            let error = azure_workload_identity(variables(missing)).unwrap_err();
            assert_eq!(error.field(), missing);
        }
        let sovereign = |name: &str| match name {
            "AZURE_AUTHORITY_HOST" => Ok("https://login.microsoftonline.us".to_owned()),
            name => variables("")(name),
        };
        let config = azure_workload_identity(sovereign).unwrap().build().unwrap();
        assert!(config
            .endpoint
            .token_url
            .as_str()
            .starts_with("https://login.microsoftonline.us/contoso/"));
    }

    #[test]
    fn every_setting_is_read_from_a_file_and_from_the_environment() {
        let files = TempFiles::new("every-setting");
        let (chain, key) = certificate_files(&files);
        let not_a_root = files.write("root.pem", "not a certificate");
        #[cfg(feature = "jwt")]
        let signing_key = {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            files.write("signing.key", &key.serialize_pem())
        };
        #[cfg(feature = "dpop")]
        let dpop_key = {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            files.write("dpop.key", &key.serialize_pem())
        };
        let no_secret = || ("client_secret", String::new());
        let text = |text: &str| text.to_owned();
        let secret_file = files.write("client-secret", "file-secret\n");
        let assertion_file = files.write("assertion.jwt", "a.b.c");

        let cases: Vec<Case> = vec![
            ("token_url", text("https://other.example/t"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.token_url.as_str() == "https://other.example/t")
            }),
            ("client_id", text("orders"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.client_id == "orders")
            }),
            ("client_secret", text("other-secret"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.client_secret.expose_secret() == "other-secret")
            }),
            ("client_secret_file", secret_file, vec![no_secret()], |c| {
                let secret = |c: &Config| {
                    let source = c.endpoint.client_secret_source.as_ref()?;
                    let secret = source.credential(false).now_or_never()?.ok()?;
                    Some(secret.expose_secret().to_owned())
                };
                c.is_ok_and(|c| secret(c).as_deref() == Some("file-secret"))
            }),
            ("client_assertion_file", assertion_file, vec![no_secret()], |c| {
                c.is_ok_and(|c| {
                    c.endpoint.auth_method == AuthMethod::PrivateKeyJwt
                        && c.endpoint.client_assertion_source.is_some()
                })
            }),
            ("scope", text("read write"), vec![], |c| {
                c.is_ok_and(|c| c.requested.scopes == ["read", "write"])
            }),
            ("audience", text("https://api.example"), vec![], |c| {
                c.is_ok_and(|c| c.requested.audience.as_deref() == Some("https://api.example"))
            }),
            ("resource", text("https://a.example https://b.example"), vec![], |c| {
                c.is_ok_and(|c| c.requested.resources == ["https://a.example", "https://b.example"])
            }),
            ("param", text("tenant=acme&prompt=none"), vec![], |c| {
                c.is_ok_and(|c| {
                    c.requested.params
                        == [("tenant".into(), "acme".into()), ("prompt".into(), "none".into())]
                })
            }),
            ("auth_method", text("post"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.auth_method == AuthMethod::ClientSecretPost)
            }),
            ("form_encode_basic_credentials", text("false"), vec![], |c| {
                c.is_ok_and(|c| !c.endpoint.form_encode_basic_credentials)
            }),
            ("refresh_ahead", text("2m"), vec![], |c| {
                c.is_ok_and(|c| c.lifetimes.refresh_ahead == 2 * MINUTE)
            }),
            ("expiry_margin", text("10s"), vec![], |c| {
                c.is_ok_and(|c| c.lifetimes.expiry_margin == Duration::from_secs(10))
            }),
            ("default_lifetime", text("15m"), vec![], |c| {
                c.is_ok_and(|c| c.lifetimes.default_lifetime == 15 * MINUTE)
            }),
            ("max_lifetime", text("1h"), vec![], |c| {
                c.is_ok_and(|c| c.lifetimes.max_lifetime == Some(60 * MINUTE))
            }),
            ("token_lifetime", text("20m"), vec![], |c| {
                c.is_ok_and(|c| {
                    c.lifetimes.default_lifetime == 20 * MINUTE
                        && c.lifetimes.max_lifetime == Some(20 * MINUTE)
                })
            }),
            ("request_timeout", text("7"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.request_timeout == Duration::from_secs(7))
            }),
            ("max_cached_tokens", text("7"), vec![], |c| {
                c.is_ok_and(|c| c.limits.max_cached_tokens == 7)
            }),
            ("invalidation_interval", text("1s"), vec![], |c| {
                c.is_ok_and(|c| c.limits.invalidation_interval == Duration::from_secs(1))
            }),
            ("allowed_origin", text("https://a.example https://b.example:8443"), vec![], |c| {
                c.is_ok_and(|c| c.selection.allowed_origins.len() == 2)
            }),
            (
                "danger_allow_plain_http",
                text("true"),
                vec![("token_url", text("http://auth.example.com/token"))],
                |c| c.is_ok_and(|c| c.endpoint.token_url.scheme() == "http"),
            ),
            (
                "client_certificate_file",
                chain.clone(),
                vec![no_secret(), ("client_certificate_key_file", key.clone())],
                |c| c.is_ok_and(|c| c.endpoint.auth_method == AuthMethod::TlsClientAuth),
            ),
            (
                "client_certificate_key_file",
                key.clone(),
                vec![no_secret(), ("client_certificate_file", chain.clone())],
                |c| c.is_ok_and(|c| c.endpoint.auth_method == AuthMethod::TlsClientAuth),
            ),
            // The roots leave no trace in a `Config` but their client: a file that holds no
            // certificate shows that it was read.
            ("tls_root_certificate_file", not_a_root, vec![], |c| {
                c.is_err_and(|e| e.field() == "tls_root_certificate")
            }),
            #[cfg(feature = "jwt")]
            (
                "client_key_file",
                signing_key.clone(),
                vec![no_secret(), ("client_key_algorithm", text("ES256"))],
                |c| c.is_ok_and(|c| c.endpoint.auth_method == AuthMethod::PrivateKeyJwt),
            ),
            #[cfg(feature = "jwt")]
            (
                "client_key_algorithm",
                text("es256"),
                vec![no_secret(), ("client_key_file", signing_key.clone())],
                |c| {
                    let algorithm = |c: &Config| {
                        c.endpoint.assertion.client_key.as_ref().map(|k| k.algorithm())
                    };
                    c.is_ok_and(|c| {
                        algorithm(c) == Some(crate::credential::SigningAlgorithm::Es256)
                    })
                },
            ),
            #[cfg(feature = "jwt")]
            (
                "client_key_id",
                text("k1"),
                vec![
                    no_secret(),
                    ("client_key_file", signing_key.clone()),
                    ("client_key_algorithm", text("ES256")),
                ],
                |c| {
                    c.is_ok_and(|c| {
                        c.endpoint.assertion.client_key.as_ref().and_then(|k| k.key_id())
                            == Some("k1")
                    })
                },
            ),
            #[cfg(feature = "jwt")]
            ("assertion_audience", text("https://issuer.example"), vec![], |c| {
                c.is_ok_and(|c| {
                    c.endpoint.assertion.audience.as_deref() == Some("https://issuer.example")
                })
            }),
            #[cfg(feature = "jwt")]
            ("assertion_lifetime", text("90s"), vec![], |c| {
                c.is_ok_and(|c| c.endpoint.assertion.lifetime == Duration::from_secs(90))
            }),
            #[cfg(feature = "store")]
            (
                "store_encryption_key",
                text("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
                vec![],
                |c| {
                    let key = |c: &Config| {
                        c.shared.encryption_key.as_ref().map(|k| k.expose_secret().to_vec())
                    };
                    c.is_ok_and(|c| key(c) == Some(vec![7; 32]))
                },
            ),
            #[cfg(feature = "metrics")]
            ("metrics_label", text("orders-read"), vec![], |c| {
                c.is_ok_and(|c| c.metrics_label.as_deref() == Some("orders-read"))
            }),
            #[cfg(feature = "dpop")]
            ("dpop_key_file", dpop_key.clone(), vec![], |c| {
                let key = |c: &Config| c.endpoint.dpop.as_ref().map(|d| d.key.clone());
                c.is_ok_and(|c| {
                    key(c).is_some_and(|k| {
                        k.algorithm() == crate::credential::DpopAlgorithm::Es256
                            && !k.is_generated()
                    })
                })
            }),
            #[cfg(feature = "dpop")]
            ("dpop_key_algorithm", text("eddsa"), vec![], |c| {
                let key = |c: &Config| c.endpoint.dpop.as_ref().map(|d| d.key.clone());
                c.is_ok_and(|c| {
                    key(c).is_some_and(|k| {
                        k.algorithm() == crate::credential::DpopAlgorithm::EdDsa && k.is_generated()
                    })
                })
            }),
            #[cfg(feature = "dpop")]
            ("dpop_allow_bearer", text("true"), vec![("dpop_key_algorithm", text("ES256"))], |c| {
                c.is_ok_and(|c| c.endpoint.dpop.as_ref().is_some_and(|d| d.allow_bearer))
            }),
        ];

        let mut covered: Vec<&str> = cases.iter().map(|case| case.0).collect();
        let mut declared = settings::fields().to_vec();
        covered.sort_unstable();
        declared.sort_unstable();
        assert_eq!(covered, declared, "one case per field of `Settings`");

        for (field, value, needs, check) in cases {
            let mut given = std::collections::BTreeMap::from([
                ("token_url", text("https://auth.example.com/token")),
                ("client_id", text("client")),
                ("client_secret", text("hunter2-secret")),
            ]);
            given.extend(needs);
            given.insert(field, value);

            let file = serde_json::to_string(&given).unwrap();
            let from_file =
                settings(&file).map_err(|e| panic!("{field}: {e}")).unwrap().into_config();
            assert!(check(from_file.as_ref()), "{field} from a file: {from_file:?}");

            let vars: Vec<(String, &str)> = given
                .iter()
                .map(|(field, value)| (settings::variable("ORDERS", field), value.as_str()))
                .collect();
            let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            let from_env = from_map("ORDERS", &vars);
            assert!(check(from_env.as_ref()), "{field} from the environment: {from_env:?}");
        }
    }

    #[test]
    fn every_setting_of_a_file_section_reaches_the_config() {
        let json = with_required(
            r#", "scope": ["read", "write admin"], "audience": "https://api.example.com",
                "resource": ["https://api.example.com"], "param": {"tenant": "acme"},
                "auth_method": "post", "form_encode_basic_credentials": false,
                "refresh_ahead": "2m", "expiry_margin": "10s", "default_lifetime": "15m",
                "max_lifetime": "1h", "request_timeout": 7, "invalidation_interval": "1s",
                "allowed_origin": "https://api.example.com""#,
        );
        let config = settings(&json).unwrap().into_config().unwrap();
        assert_eq!(config.scopes(), ["read", "write", "admin"]);
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretPost);
        assert_eq!(config.requested.audience.as_deref(), Some("https://api.example.com"));
        assert_eq!(config.requested.resources, ["https://api.example.com"]);
        assert_eq!(config.requested.params, [("tenant".to_owned(), "acme".to_owned())]);
        assert!(!config.endpoint.form_encode_basic_credentials);
        assert_eq!(config.lifetimes.refresh_ahead, 2 * MINUTE);
        assert_eq!(config.lifetimes.expiry_margin, Duration::from_secs(10));
        assert_eq!(config.lifetimes.default_lifetime, 15 * MINUTE);
        assert_eq!(config.lifetimes.max_lifetime, Some(60 * MINUTE));
        assert_eq!(config.endpoint.request_timeout, Duration::from_secs(7));
        assert_eq!(config.limits.invalidation_interval, Duration::from_secs(1));
        assert_eq!(config.selection.allowed_origins.len(), 1);
        assert_eq!(config.endpoint.client_secret.expose_secret(), "hunter2-secret");
    }

    #[test]
    fn left_out_settings_keep_the_builder_defaults() {
        let config = settings(&with_required("")).unwrap().into_config().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretBasic);
        assert_eq!(config.lifetimes.refresh_ahead, crate::config::DEFAULT_REFRESH_AHEAD);
        assert_eq!(config.endpoint.request_timeout, crate::config::DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.lifetimes.max_lifetime, None);
    }

    #[test]
    fn token_lifetime_sets_the_default_and_the_cap_and_excludes_them() {
        let config =
            settings(&with_required(r#", "token_lifetime": "1h""#)).unwrap().into_config().unwrap();
        assert_eq!(config.lifetimes.default_lifetime, 60 * MINUTE);
        assert_eq!(config.lifetimes.max_lifetime, Some(60 * MINUTE));

        let both = with_required(r#", "token_lifetime": "1h", "max_lifetime": "2h""#);
        let error = settings(&both).unwrap().into_config().unwrap_err();
        assert_eq!(error.field(), "token_lifetime");

        let fixed = builder("https://a.example/t").token_lifetime(MINUTE).build().unwrap();
        assert_eq!(
            (fixed.lifetimes.default_lifetime, fixed.lifetimes.max_lifetime),
            (MINUTE, Some(MINUTE))
        );
        let both = builder("https://a.example/t").token_lifetime(MINUTE).default_lifetime(MINUTE);
        assert_eq!(field_of(both.build()), "token_lifetime");
    }

    #[test]
    fn builder_errors_name_the_setting() {
        let json = r#"{"token_url": "http://auth.example.com/t", "client_id": "c",
                       "client_secret": "s"}"#;
        let error = Config::try_from(settings(json).unwrap()).unwrap_err();
        assert_eq!(error.field(), "token_url");
    }

    #[test]
    fn every_variable_reaches_the_config() {
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("ORDERS_SCOPE", "orders:read orders:write"),
            ("ORDERS_AUDIENCE", "https://orders.example.com"),
            ("ORDERS_AUTH_METHOD", "client_secret_post"),
            ("ORDERS_TOKEN_LIFETIME", "3600"),
            ("ORDERS_REFRESH_AHEAD", "2m"),
            ("ORDERS_REQUEST_TIMEOUT", "5s"),
        ]);
        let config = from_map("ORDERS", &vars).unwrap();
        assert_eq!(config.token_url().as_str(), "https://auth.example.com/token");
        assert_eq!(config.client_id(), "orders-service");
        assert_eq!(config.endpoint.client_secret.expose_secret(), "hunter2-secret");
        assert_eq!(config.scopes(), ["orders:read", "orders:write"]);
        assert_eq!(config.requested.audience.as_deref(), Some("https://orders.example.com"));
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretPost);
        assert_eq!(config.lifetimes.default_lifetime, 60 * MINUTE);
        assert_eq!(config.lifetimes.max_lifetime, Some(60 * MINUTE));
        assert_eq!(config.lifetimes.refresh_ahead, 2 * MINUTE);
        assert_eq!(config.endpoint.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let error = from_map("ORDERS", &REQUIRED[..1]).unwrap_err();
        assert_eq!(error.field(), "client_id");
        assert_eq!(
            error.to_string(),
            "invalid `client_id`: ORDERS_CLIENT_ID is not set (or empty)"
        );
        let error = from_map("ORDERS", &REQUIRED[..2]).unwrap_err();
        assert_eq!(error.field(), "client_secret");
        assert!(
            error
                .to_string()
                .starts_with("invalid `client_secret`: ORDERS_CLIENT_SECRET must not be empty"),
            "{error}"
        );
    }

    #[test]
    fn a_certificate_and_key_from_files_make_a_mutual_tls_client_without_a_secret() {
        let files = TempFiles::new("mtls-settings");
        let (chain, key) = certificate_files(&files);
        let json = format!(
            r#"{{"token_url": "https://auth.example.com/token", "client_id": "client",
                "client_certificate_file": {chain:?}, "client_certificate_key_file": {key:?}}}"#
        );
        let config = settings(&json).unwrap().into_config().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);

        let vars = [
            ("ORDERS_TOKEN_URL", "https://auth.example.com/token"),
            ("ORDERS_CLIENT_ID", "orders-service"),
            ("ORDERS_CLIENT_CERTIFICATE_FILE", chain.as_str()),
            ("ORDERS_CLIENT_CERTIFICATE_KEY_FILE", key.as_str()),
            ("ORDERS_AUTH_METHOD", "self_signed_tls_client_auth"),
        ];
        let config = from_map("ORDERS", &vars).unwrap();
        assert_eq!(config.auth_method(), AuthMethod::SelfSignedTlsClientAuth);
    }

    #[test]
    fn a_half_given_certificate_or_an_unreadable_file_is_named() {
        let files = TempFiles::new("mtls-errors");
        let (chain, key) = certificate_files(&files);
        let base = r#""token_url": "https://auth.example.com/token", "client_id": "client""#;
        let error_of = |extra: String| {
            settings(&format!("{{{base}, {extra}}}")).unwrap().into_config().unwrap_err()
        };
        let error = error_of(format!(r#""client_certificate_file": {chain:?}"#));
        assert_eq!(error.field(), "client_certificate_key_file");
        let error = error_of(format!(r#""client_certificate_key_file": {key:?}"#));
        assert_eq!(error.field(), "client_certificate_file");
        let missing = files.0.join("nowhere.crt").display().to_string();
        let error = error_of(format!(
            r#""client_certificate_file": {missing:?}, "client_certificate_key_file": {key:?}"#
        ));
        assert_eq!(error.field(), "client_certificate_file");
        assert!(
            error.reason().contains("nowhere.crt") && error.reason().contains("cannot be read")
        );
        let error = error_of(format!(
            r#""client_certificate_file": {key:?}, "client_certificate_key_file": {key:?}"#
        ));
        assert_eq!(error.field(), "client_certificate_file");
        assert!(error.reason().contains("no PEM `CERTIFICATE`"), "{error}");
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn a_signing_key_from_a_file_makes_a_private_key_jwt_client() {
        let files = TempFiles::new("jwt-settings");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = files.write("signing.key", &key.serialize_pem());
        let base = r#""token_url": "https://auth.example.com/token", "client_id": "client""#;
        let json = format!(
            r#"{{{base}, "client_key_file": {key:?}, "client_key_algorithm": "ES256",
                "client_key_id": "k1"}}"#
        );
        let config = settings(&json).unwrap().into_config().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::PrivateKeyJwt);
        assert_eq!(
            config.endpoint.assertion.client_key.as_ref().and_then(|k| k.key_id()),
            Some("k1")
        );

        // An EC key read as the default RS256.
        let json = format!(r#"{{{base}, "client_key_file": {key:?}}}"#);
        let error = settings(&json).unwrap().into_config().unwrap_err();
        assert_eq!(error.field(), "client_key_file");
        let json = format!(r#"{{{base}, "client_key_id": "k1"}}"#);
        let error = settings(&json).unwrap().into_config().unwrap_err();
        assert_eq!(error.field(), "client_key_file");

        let vars = [
            ("TOKEN_URL", "https://auth.example.com/token"),
            ("CLIENT_ID", "orders-service"),
            ("CLIENT_KEY_FILE", key.as_str()),
            ("CLIENT_KEY_ALGORITHM", "es256"),
        ];
        assert_eq!(from_map("", &vars).unwrap().auth_method(), AuthMethod::PrivateKeyJwt);
        let vars = [vars[0], vars[1], vars[2], ("CLIENT_KEY_ALGORITHM", "HS256")];
        let error = from_map("", &vars).unwrap_err();
        assert_eq!(error.field(), "client_key_algorithm");
        assert!(error.to_string().contains("CLIENT_KEY_ALGORITHM is `HS256`, not"), "{error}");
    }

    #[test]
    fn a_bad_variable_is_named_without_echoing_secrets() {
        let bad = |name: &'static str, value: &'static str| {
            let mut vars = REQUIRED.to_vec();
            vars.retain(|(n, _)| *n != name);
            vars.push((name, value));
            // A good setting read after the bad one: the error still names the bad one.
            vars.push(("ORDERS_ALLOWED_ORIGIN", "https://api.example.com"));
            from_map("ORDERS", &vars).unwrap_err()
        };
        let error = bad("ORDERS_REQUEST_TIMEOUT", "soon");
        assert_eq!(error.field(), "request_timeout");
        assert!(error.to_string().contains("ORDERS_REQUEST_TIMEOUT is not a duration"), "{error}");

        let error = bad("ORDERS_AUTH_METHOD", "mtls");
        assert!(error.to_string().contains("ORDERS_AUTH_METHOD is `mtls`, not"), "{error}");

        let error = bad("ORDERS_TOKEN_URL", "http://auth.example.com/token");
        assert_eq!(error.field(), "token_url");
        assert!(error.to_string().starts_with("invalid `token_url`: ORDERS_TOKEN_URL plain http"));

        let error = bad("ORDERS_TOKEN_LIFETIME", "0s");
        assert!(error.to_string().contains("ORDERS_TOKEN_LIFETIME must be greater"), "{error}");

        let error = bad("ORDERS_TOKEN_URL", "https://user:hunter2@auth.example.com/token");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        #[cfg(feature = "store")]
        {
            let error = bad("ORDERS_STORE_ENCRYPTION_KEY", "hunter2");
            let text = error.to_string();
            assert!(
                text.contains("ORDERS_STORE_ENCRYPTION_KEY is not 32 bytes in base64"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn empty_optional_variables_count_as_unset() {
        let mut vars = REQUIRED.to_vec();
        vars.push(("ORDERS_SCOPE", ""));
        vars.push(("ORDERS_REQUEST_TIMEOUT", " "));
        let config = from_map("ORDERS", &vars).unwrap();
        assert!(config.scopes().is_empty());
        assert_eq!(config.endpoint.request_timeout, crate::config::DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn an_empty_prefix_reads_bare_names_and_a_trailing_underscore_is_not_doubled() {
        let bare: Vec<_> = REQUIRED.iter().map(|(n, v)| (&n["ORDERS_".len()..], *v)).collect();
        assert!(from_map("", &bare).is_ok());
        assert!(from_map("ORDERS_", &REQUIRED).is_ok());
    }
}
