//! What to ask the authorization server for, how to authenticate, and when to refresh.
//!
//! Every default lives in this file, next to the setter that overrides it. The settings
//! themselves are declared once, in [`Settings`]: the builder writes into it, a file and the
//! environment are read into it, and [`ConfigBuilder::build`] reads it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

mod auth_method;
mod build;
mod builder;
#[cfg(feature = "dpop")]
pub(crate) mod dpop;
mod env;
mod google;
mod grant;
pub(crate) mod origin;
mod params;
mod settings;
#[cfg(test)]
mod test_support;
mod text;

pub use auth_method::AuthMethod;
pub(crate) use build::{check_param_name, check_resource, check_scope, is_loopback};
pub use builder::ConfigBuilder;
pub use google::{GOOGLE_CLOUD_PLATFORM_SCOPE, GOOGLE_STS_TOKEN_URL};
pub use grant::{Grant, JwtBearer, TokenExchange};
pub(crate) use grant::{Held, Presented};
pub use params::TokenParams;
pub(crate) use params::{resolved_path, Route};
pub use settings::Settings;

#[cfg(feature = "jwt")]
use crate::credential::ClientKey;
use crate::credential::{CredentialFiles, CredentialSource};
use crate::error::ConfigError;
use origin::Origin;

/// What discovery found out about the server, for [`ConfigBuilder::build`] to choose by.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// `issuer`.
    pub(crate) issuer: String,
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
/// The `client_assertion_type` of a JWT (RFC 7523 §2.2), the default of
/// [`ConfigBuilder::client_assertion_type`].
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `client_assertion_type` of a SPIFFE JWT-SVID (draft-ietf-oauth-spiffe-client-auth).
pub const JWT_SPIFFE_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
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

/// What a token request asks for: the settings `grant`, `scope`, `audience`, `resource` and
/// `param`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requested {
    pub(crate) grant: Grant,
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
    /// The `client_assertion_type` sent with a client assertion.
    pub(crate) client_assertion_type: String,
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
    /// Whether client assertions follow draft-ietf-oauth-rfc7523bis: the issuer as their sole
    /// audience, and typed `client-authentication+jwt`.
    pub(crate) rfc7523bis: bool,
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

    /// The grant the layer's own token is requested with.
    ///
    /// ```
    /// use tower_client_credentials::{Config, Grant};
    ///
    /// let config = Config::builder("https://auth.example.com/token", "orders", "s3cret").build()?;
    /// assert_eq!(config.grant(), &Grant::ClientCredentials);
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn grant(&self) -> &Grant {
        &self.requested.grant
    }
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
            .field("grant", &requested.grant)
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
