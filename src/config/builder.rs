//! [`ConfigBuilder`]: the setters, each writing what it is given into the builder's
//! [`Settings`] (or, for what cannot be text, a field of its own). `build.rs` checks it all.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::Discovered;
use super::{AuthMethod, Grant, Settings, TokenParams};
#[cfg(feature = "jwt")]
use crate::credential::ClientKey;
#[cfg(feature = "dpop")]
use crate::credential::DpopKey;
use crate::credential::{ClientCertificate, CredentialSource};

/// Builds a [`Config`](crate::Config); start with [`Config::builder`](crate::Config::builder) (or [`Settings::into_builder`]).
///
/// Setters record what they are given, in the builder's [`Settings`] for every setting that
/// can be written as text (its table says how each is written in a file and the environment);
/// [`build`](Self::build) checks everything at once and names the first unusable setting.
#[must_use = "a builder does nothing until `build()` is called"]
pub struct ConfigBuilder {
    /// Every setting that can be written as text: the setters write into it.
    pub(super) settings: Settings,
    /// The settings that cannot: objects, or what discovery found.
    pub(super) http_client: Option<reqwest::Client>,
    pub(super) client_certificate: Option<ClientCertificate>,
    pub(super) tls_root_certificates: Vec<Vec<u8>>,
    pub(super) discovered: Option<Discovered>,
    #[cfg(feature = "jwt")]
    pub(super) client_key: Option<ClientKey>,
    #[cfg(feature = "store")]
    pub(super) store: Option<std::sync::Arc<dyn crate::store::TokenStore>>,
    pub(super) client_secret_source: Option<Arc<dyn CredentialSource>>,
    pub(super) client_assertion_source: Option<Arc<dyn CredentialSource>>,
    #[cfg(feature = "dpop")]
    pub(super) dpop_key: Option<DpopKey>,
    /// Prefixes and their parameters, checked by `build`.
    pub(super) routes: Vec<(String, TokenParams)>,
    pub(super) grant: Option<Grant>,
}

impl ConfigBuilder {
    /// How tokens are obtained: client credentials (the default), [token
    /// exchange](crate::TokenExchange) or the [JWT bearer grant](crate::JwtBearer). The scopes,
    /// audience, resources and parameters go into its requests as they do for client
    /// credentials. The client authenticates as configured, or not at all when it has no
    /// credential ([`AuthMethod::None`]), which servers allow for these grants. In a file or
    /// the environment: `grant` and the files of its tokens (see [`Settings`]). Default:
    /// [`Grant::ClientCredentials`].
    ///
    /// ```
    /// use tower_client_credentials::{AuthMethod, Config, TokenExchange};
    ///
    /// let config = Config::builder_without_secret("https://sts.example.com/v1/token", "")
    ///     .grant(TokenExchange::subject_token_file("/var/run/secrets/tokens/sts", "jwt"))
    ///     .build()?;
    /// assert_eq!(config.auth_method(), AuthMethod::None);
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn grant(mut self, grant: impl Into<Grant>) -> Self {
        self.grant = Some(grant.into());
        self
    }

    /// Adds scopes to request: one scope, or several separated by spaces (`"read write"`).
    /// May be called more than once. Default: none (the server's default scope).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.settings.scope.extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// The client secret, for one known only after the builder was started (read from a
    /// vault, say), or to replace the one a file's settings gave. The setting `client_secret`.
    ///
    /// ```
    /// use tower_client_credentials::Config;
    ///
    /// # fn vault() -> String { "s3cret".into() }
    /// let config = Config::builder_without_secret("https://auth.example.com/token", "orders")
    ///     .client_secret(vault())
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.settings.client_secret = secret.into();
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
    /// the token is no longer usable) to `Duration::MAX`. Default: [`DEFAULT_REFRESH_AHEAD`](crate::DEFAULT_REFRESH_AHEAD).
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.settings.refresh_ahead = Some(ahead);
        self
    }

    /// Stop sending a token this long before it expires (clocks and transit take time), capped
    /// at a quarter of its lifetime. Any duration. Default: [`DEFAULT_EXPIRY_MARGIN`](crate::DEFAULT_EXPIRY_MARGIN).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.settings.expiry_margin = Some(margin);
        self
    }

    /// The lifetime assumed when the token response has no `expires_in`. Greater than zero;
    /// above a year counts as a year. Default: [`DEFAULT_LIFETIME`](crate::DEFAULT_LIFETIME).
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
    /// than zero; above a year counts as a year. Default: [`DEFAULT_REQUEST_TIMEOUT`](crate::DEFAULT_REQUEST_TIMEOUT).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = Some(timeout);
        self
    }

    /// When the API answers `401 Unauthorized` to a request that carried our token, that token
    /// is dropped and the next request waits for a new one; but at most once in this interval,
    /// so that an API that rejects every token cannot cause a storm of token requests. At least
    /// one second. Default: [`DEFAULT_INVALIDATION_INTERVAL`](crate::DEFAULT_INVALIDATION_INTERVAL).
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

    /// The audience (`aud`) of the assertions this crate signs: a URL, or `"issuer"` for the
    /// authorization server's [`issuer`](Self::issuer) identifier (known from discovery, or
    /// set), by the rules of draft-ietf-oauth-rfc7523bis, which closes an audience-confusion
    /// attack (CVE-2025-27370, CVE-2025-27371): the issuer is then the sole audience, and
    /// client assertions are typed `client-authentication+jwt` (otherwise `JWT`).
    ///
    /// Default: the token endpoint URL, the one value Microsoft Entra ID and Okta document
    /// (Okta has refused the issuer), and one that Keycloak, Auth0 and node-oidc-provider
    /// accept too; no server metadata says which a server takes, so the choice is yours
    /// (the guide's [authentication chapter](crate::guide::authentication) has the evidence).
    /// Choose `"issuer"` for servers that require it (FAPI 2.0 profiles, Duende's and
    /// Connect2id's strict modes).
    ///
    /// ```
    /// use tower_client_credentials::{AuthMethod, Config};
    ///
    /// let config = Config::builder("https://idp.example.com/oauth2/token", "orders", "s3cret")
    ///     .auth_method(AuthMethod::ClientSecretJwt)
    ///     .issuer("https://idp.example.com")
    ///     .assertion_audience("issuer")
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    #[cfg(feature = "jwt")]
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.assertion_audience = Some(audience.into());
        self
    }

    /// The authorization server's issuer identifier, for an
    /// [`assertion_audience`](Self::assertion_audience) of `"issuer"`. Default: the one
    /// [discovery](crate::ServerMetadata) found, if the configuration came from it.
    ///
    /// ```
    /// # use tower_client_credentials::Config;
    /// let builder = Config::builder("https://idp.example.com/token", "orders", "s3cret")
    ///     .issuer("https://idp.example.com");
    /// ```
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.settings.issuer = Some(issuer.into());
        self
    }

    /// The `client_assertion_type` sent with client assertions: `"jwt-bearer"`
    /// ([`JWT_BEARER_ASSERTION_TYPE`](crate::JWT_BEARER_ASSERTION_TYPE), RFC 7523, which
    /// every server takes), `"jwt-spiffe"`
    /// ([`JWT_SPIFFE_ASSERTION_TYPE`](crate::JWT_SPIFFE_ASSERTION_TYPE), a SPIFFE JWT-SVID
    /// for servers that implement draft-ietf-oauth-spiffe-client-auth, such as Keycloak's
    /// SPIFFE authenticator), or another URN. Default: `jwt-bearer`, which node-oidc-provider
    /// and Keycloak's standard JWT authenticator require.
    ///
    /// ```
    /// # use tower_client_credentials::Config;
    /// let config = Config::builder_without_secret("https://idp.example.com/token", "orders")
    ///     .client_assertion_file("/var/run/secrets/spiffe/jwt-svid")
    ///     .client_assertion_type("jwt-spiffe")
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn client_assertion_type(mut self, assertion_type: impl Into<String>) -> Self {
        self.settings.client_assertion_type = Some(assertion_type.into());
        self
    }

    /// How long a client assertion is valid (`exp` minus `iat`), in whole seconds, at least
    /// one. Default: [`DEFAULT_ASSERTION_LIFETIME`](crate::DEFAULT_ASSERTION_LIFETIME).
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
    /// restart. The content is trimmed. Start with [`Config::builder_without_secret`](crate::Config::builder_without_secret).
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
    /// [`AuthMethod::PrivateKeyJwt`]; start with [`Config::builder_without_secret`](crate::Config::builder_without_secret). See
    /// [`AssertionFile`](crate::credential::AssertionFile) for what is checked before sending. Default: none.
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
    /// makes one token request per refresh. See [`store`](crate::store) for how; a
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
    /// From 1 up. Default: [`DEFAULT_MAX_CACHED_TOKENS`](crate::DEFAULT_MAX_CACHED_TOKENS).
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
    ///
    /// A resource server that demands a nonce (`use_dpop_nonce`, RFC 9449 §9) answers a
    /// caller's first request with a `401` and the nonce. The reqwest middleware resends it by
    /// itself. In a Tower stack, put [`RetryUnauthorized`](crate::RetryUnauthorized) outside
    /// the layer to resend it once with the nonce (tower's feature `retry`:
    /// `tower = { version = "0.5", features = ["retry"] }`); the layer cannot resend on its own,
    /// since it serves any request body and only one that can be cloned can be sent twice.
    ///
    /// ```
    /// use tower::retry::RetryLayer;
    /// use tower::ServiceBuilder;
    /// use tower_client_credentials::{
    ///     ClientCredentialsLayer, Config, DpopAlgorithm, DpopKey, RetryUnauthorized,
    /// };
    ///
    /// let config = Config::builder("https://auth.example.com/token", "id", "secret")
    ///     .dpop(DpopKey::from_pem(std::fs::read("dpop.pem").unwrap_or_default(), DpopAlgorithm::Es256)
    ///         .or_else(|_| DpopKey::generate(DpopAlgorithm::Es256))?)
    ///     .build()?;
    /// let stack = ServiceBuilder::new()
    ///     .layer(RetryLayer::new(RetryUnauthorized::new())) // resends a nonce demand once
    ///     .layer(ClientCredentialsLayer::new(config));
    /// # let _ = stack;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
