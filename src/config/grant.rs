//! The grant a token request uses: client credentials (RFC 6749 §4.4, the default), token
//! exchange (RFC 8693) or the JWT bearer grant (RFC 7523 §2.1), with the tokens each one
//! presents. Values only: `request/grant.rs` reads the tokens and writes the form.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::settings::Settings;
use crate::credential::CredentialSource;
use crate::error::ConfigError;

/// How a token is obtained: the `grant_type` of the token request and what it presents.
///
/// Give it to [`ConfigBuilder::grant`](crate::ConfigBuilder::grant) for the layer's token, or
/// to [`TokenParams::grant`](crate::TokenParams::grant) for the token of some requests.
/// Everything else works the same for every grant: single flight, refresh ahead, backoff, the
/// API's `401`, the store, DPoP and metrics. In a file or the environment: `grant` and the
/// settings of its tokens (see [`Settings`]).
///
/// ```
/// use tower_client_credentials::{Config, TokenExchange};
///
/// // Exchanges the Kubernetes service-account token for an access token of the API.
/// let config = Config::builder_without_secret("https://sts.example.com/token", "orders")
///     .grant(
///         TokenExchange::subject_token_file("/var/run/secrets/tokens/sts", TokenExchange::JWT)
///             .requested_token_type(TokenExchange::ACCESS_TOKEN),
///     )
///     .audience("https://orders.example.com")
///     .build()?;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `client_credentials` (RFC 6749 §4.4): the client's own token. The default.
    #[default]
    ClientCredentials,
    /// Token exchange (RFC 8693): a subject token, and maybe an actor token, for a new token.
    TokenExchange(TokenExchange),
    /// The JWT bearer grant (RFC 7523 §2.1): an assertion for a token.
    JwtBearer(JwtBearer),
}

impl Grant {
    /// The `grant_type` of its token requests.
    ///
    /// ```
    /// # use tower_client_credentials::Grant;
    /// assert_eq!(Grant::ClientCredentials.grant_type(), "client_credentials");
    /// ```
    pub fn grant_type(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::TokenExchange(_) => TokenExchange::GRANT_TYPE,
            Grant::JwtBearer(_) => JwtBearer::GRANT_TYPE,
        }
    }

    /// The short name used in settings: `client_credentials`, `token_exchange`, `jwt_bearer`.
    #[cfg(any(feature = "metrics", feature = "store"))]
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::TokenExchange(_) => "token_exchange",
            Grant::JwtBearer(_) => "jwt_bearer",
        }
    }

    /// Whether it presents a token from a [`CredentialSource`] of yours: known to this process
    /// only, which a store cannot tell from another source (see `cache/shared.rs`).
    #[cfg(feature = "store")]
    pub(crate) fn holds_source(&self) -> bool {
        self.presented().any(|presented| matches!(presented.held, Held::Source(_)))
    }

    /// The tokens its requests present: the subject and actor tokens, or the assertion (none
    /// when this crate signs it).
    pub(crate) fn presented(&self) -> impl Iterator<Item = &Presented> {
        let presented = match self {
            Grant::ClientCredentials => [None, None],
            Grant::TokenExchange(exchange) => [Some(&exchange.subject), exchange.actor.as_ref()],
            Grant::JwtBearer(bearer) => [bearer.assertion.as_ref(), None],
        };
        presented.into_iter().flatten()
    }
}

impl Grant {
    /// Why `endpoint`'s client cannot ask for this grant, if it cannot: client credentials
    /// authenticate the client, which `none` does not, and `JwtBearer::signed()` needs the
    /// client key to sign with. `build` checks the layer's grant and its routes' with it; a
    /// request's `TokenParams` meets the client only at its first token request.
    pub(crate) fn unusable_by(&self, endpoint: &super::Endpoint) -> Option<ConfigError> {
        match self {
            Grant::ClientCredentials if endpoint.auth_method == super::AuthMethod::None => {
                Some(ConfigError::new(
                    "grant",
                    "client credentials authenticate the client, and this client has no \
                     credential (`auth_method` none)",
                ))
            }
            #[cfg(feature = "jwt")]
            Grant::JwtBearer(bearer)
                if bearer.assertion.is_none() && endpoint.assertion.client_key.is_none() =>
            {
                Some(ConfigError::new(
                    "grant",
                    "`JwtBearer::signed()` needs a `client_key` to sign its assertions with",
                ))
            }
            // An assertion must say who issued it.
            Grant::JwtBearer(bearer)
                if bearer.assertion.is_none()
                    && bearer.claims.issuer.is_none()
                    && endpoint.client_id.trim().is_empty() =>
            {
                Some(ConfigError::new(
                    "client_id",
                    "is empty, and it is the `iss` of the assertions `JwtBearer::signed()` \
                     makes: give the client id, or the grant's `issuer`",
                ))
            }
            _ => None,
        }
    }
}

impl From<TokenExchange> for Grant {
    fn from(exchange: TokenExchange) -> Self {
        Grant::TokenExchange(exchange)
    }
}

impl From<JwtBearer> for Grant {
    fn from(bearer: JwtBearer) -> Self {
        Grant::JwtBearer(bearer)
    }
}

/// Where a token the grant presents comes from. Equal when they come from the same place:
/// requests with equal grants share a token.
#[derive(Clone)]
pub(crate) enum Held {
    /// A value given once (a user's token for an on-behalf-of exchange, say).
    Value(SecretString),
    /// A file, read for every token request: the platform rotates it.
    File(PathBuf),
    /// A source of yours, asked for every token request.
    Source(Arc<dyn CredentialSource>),
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Held::Value(a), Held::Value(b)) => a.expose_secret() == b.expose_secret(),
            (Held::File(a), Held::File(b)) => a == b,
            (Held::Source(a), Held::Source(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Held {}

impl Hash for Held {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Held::Value(value) => value.expose_secret().hash(state),
            Held::File(path) => path.hash(state),
            Held::Source(source) => Arc::as_ptr(source).cast::<()>().hash(state),
        }
    }
}

impl fmt::Debug for Held {
    /// Never the value: it is a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::Value(_) => f.write_str("[redacted]"),
            Held::File(path) => write!(f, "file {}", path.display()),
            Held::Source(source) => write!(f, "source {source:?}"),
        }
    }
}

/// A token a grant presents, and its type (token exchange).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Presented {
    /// The setting that gives it, to name in errors: `subject_token`, `actor_token`,
    /// `assertion`.
    pub(crate) setting: &'static str,
    pub(crate) held: Held,
    /// Its `*_token_type` URI; `None` for an assertion.
    pub(crate) token_type: Option<String>,
}

/// Token exchange (RFC 8693): the token request presents a subject token (and maybe an actor
/// token) and gets a new token for the requested `audience`, `resource` and `scope`.
///
/// The subject token comes from a value, a file (read for every token request, so a token
/// the platform rotates is used at once), or a [`CredentialSource`]. A subject token that is a
/// JWT whose `exp` has passed is never sent: the token request fails with kind
/// [`GrantToken`](crate::TokenErrorKind::GrantToken). Token types are URIs; the constants
/// below name the registered ones, and settings take their short names (`jwt`,
/// `access_token`, ...).
///
/// The answer's `issued_token_type` must be the requested type when one is requested, and a
/// `token_type` of `N_A` (not an access token) is accepted only when a type other than an
/// access token is requested: the token goes into `Authorization: Bearer` either way.
///
/// ```
/// use tower_client_credentials::{Config, TokenExchange};
///
/// // On behalf of a user: this request's token is exchanged for one for the orders API.
/// let users_token = "eyJhbGciOi...";
/// let exchange = TokenExchange::subject_token(users_token, TokenExchange::ACCESS_TOKEN)
///     .requested_token_type(TokenExchange::ACCESS_TOKEN);
/// let config = Config::builder("https://idp.example.com/token", "gateway", "s3cret")
///     .grant(exchange)
///     .audience("orders")
///     .build()?;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenExchange {
    pub(crate) subject: Presented,
    pub(crate) actor: Option<Presented>,
    pub(crate) requested_token_type: Option<String>,
}

impl TokenExchange {
    /// The `grant_type` of token exchange.
    pub const GRANT_TYPE: &'static str = "urn:ietf:params:oauth:grant-type:token-exchange";
    /// An OAuth access token (RFC 8693 §3).
    pub const ACCESS_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:access_token";
    /// An OAuth refresh token.
    pub const REFRESH_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:id_token";
    /// A JWT (a Kubernetes service-account token, a SPIFFE JWT-SVID, a CI job's OIDC token).
    pub const JWT: &'static str = "urn:ietf:params:oauth:token-type:jwt";
    /// A base64url-encoded SAML 1.1 assertion.
    pub const SAML1: &'static str = "urn:ietf:params:oauth:token-type:saml1";
    /// A base64url-encoded SAML 2.0 assertion.
    pub const SAML2: &'static str = "urn:ietf:params:oauth:token-type:saml2";

    fn presenting(subject: Held, token_type: &str) -> Self {
        Self {
            subject: Presented {
                setting: "subject_token",
                held: subject,
                token_type: Some(token_type_uri(token_type)),
            },
            actor: None,
            requested_token_type: None,
        }
    }

    /// Exchanges `token`, of type `token_type` (a URI, or a short name such as `jwt`).
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// let exchange = TokenExchange::subject_token("eyJhbGciOi...", "access_token");
    /// ```
    pub fn subject_token(token: impl Into<SecretString>, token_type: impl AsRef<str>) -> Self {
        Self::presenting(Held::Value(token.into()), token_type.as_ref())
    }

    /// Exchanges the token in this file (trimmed), read for every token request.
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// let exchange = TokenExchange::subject_token_file("/var/run/secrets/tokens/sts", "jwt");
    /// ```
    pub fn subject_token_file(path: impl Into<PathBuf>, token_type: impl AsRef<str>) -> Self {
        Self::presenting(Held::File(path.into()), token_type.as_ref())
    }

    /// Exchanges the token `source` gives for each token request.
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// # use tower_client_credentials::credential::AssertionFile;
    /// let exchange = TokenExchange::subject_token_source(AssertionFile::new("/run/token"), "jwt");
    /// ```
    pub fn subject_token_source(
        source: impl CredentialSource,
        token_type: impl AsRef<str>,
    ) -> Self {
        Self::presenting(Held::Source(Arc::new(source)), token_type.as_ref())
    }

    fn acting(mut self, actor: Held, token_type: &str) -> Self {
        self.actor = Some(Presented {
            setting: "actor_token",
            held: actor,
            token_type: Some(token_type_uri(token_type)),
        });
        self
    }

    /// Also presents `token` as the actor token (delegation, RFC 8693 §1.1).
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// let exchange = TokenExchange::subject_token("user-token", "access_token")
    ///     .actor_token("service-token", "jwt");
    /// ```
    pub fn actor_token(self, token: impl Into<SecretString>, token_type: impl AsRef<str>) -> Self {
        self.acting(Held::Value(token.into()), token_type.as_ref())
    }

    /// Also presents the token in this file as the actor token, read for every token request.
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// let exchange = TokenExchange::subject_token("user-token", "access_token")
    ///     .actor_token_file("/var/run/secrets/tokens/actor", "jwt");
    /// ```
    pub fn actor_token_file(self, path: impl Into<PathBuf>, token_type: impl AsRef<str>) -> Self {
        self.acting(Held::File(path.into()), token_type.as_ref())
    }

    /// Also presents the token `source` gives as the actor token.
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// # use tower_client_credentials::credential::AssertionFile;
    /// let exchange = TokenExchange::subject_token("user-token", "access_token")
    ///     .actor_token_source(AssertionFile::new("/run/actor"), "jwt");
    /// ```
    pub fn actor_token_source(
        self,
        source: impl CredentialSource,
        token_type: impl AsRef<str>,
    ) -> Self {
        self.acting(Held::Source(Arc::new(source)), token_type.as_ref())
    }

    /// The type of token to issue (`requested_token_type`): a URI, or a short name. Default:
    /// none, the server's choice (usually an access token).
    ///
    /// ```
    /// # use tower_client_credentials::TokenExchange;
    /// let exchange = TokenExchange::subject_token("user-token", "access_token")
    ///     .requested_token_type(TokenExchange::ID_TOKEN);
    /// ```
    pub fn requested_token_type(mut self, token_type: impl AsRef<str>) -> Self {
        self.requested_token_type = Some(token_type_uri(token_type.as_ref()));
        self
    }

    /// Whether the token asked for may be something other than an access token (and so be
    /// answered with `token_type` `N_A`).
    pub(crate) fn accepts_other_than_access_tokens(&self) -> bool {
        self.requested_token_type.as_deref().is_some_and(|t| t != Self::ACCESS_TOKEN)
    }
}

/// The JWT bearer grant (RFC 7523 §2.1): the token request presents a JWT, the `assertion`,
/// and gets a token for it.
///
/// The assertion comes from a value, a file (read for every token request), a
/// [`CredentialSource`] (Microsoft Entra's on-behalf-of flow presents the user's token), or
/// (feature `jwt`) is signed by this crate with the client's key for each token request
/// ([`signed`](Self::signed): Google service accounts, Salesforce). An assertion whose `exp`
/// has passed is never sent.
///
/// ```
/// use tower_client_credentials::{Config, JwtBearer};
///
/// let config = Config::builder("https://idp.example.com/token", "orders", "s3cret")
///     .grant(JwtBearer::assertion_file("/var/run/secrets/tokens/orders"))
///     .build()?;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JwtBearer {
    /// `None`: signed by this crate.
    pub(crate) assertion: Option<Presented>,
    /// The claims this crate signs.
    pub(crate) claims: SignedClaims,
}

/// The claims of an assertion this crate signs that are not the client assertion's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct SignedClaims {
    /// `None` for the client id.
    pub(crate) issuer: Option<String>,
    /// `None` for the issuer.
    pub(crate) subject: Option<String>,
    /// Whether the scopes go into the assertion (`scope` claim) instead of the form.
    pub(crate) scope_claim: bool,
}

impl JwtBearer {
    /// The `grant_type` of the JWT bearer grant.
    pub const GRANT_TYPE: &'static str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    fn presenting(assertion: Held) -> Self {
        let assertion = Presented { setting: "assertion", held: assertion, token_type: None };
        Self { assertion: Some(assertion), claims: SignedClaims::default() }
    }

    /// Presents `assertion`.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// let grant = JwtBearer::assertion("eyJhbGciOi...");
    /// ```
    pub fn assertion(assertion: impl Into<SecretString>) -> Self {
        Self::presenting(Held::Value(assertion.into()))
    }

    /// Presents the JWT in this file (trimmed), read for every token request.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// let grant = JwtBearer::assertion_file("/var/run/secrets/tokens/orders");
    /// ```
    pub fn assertion_file(path: impl Into<PathBuf>) -> Self {
        Self::presenting(Held::File(path.into()))
    }

    /// Presents the JWT `source` gives for each token request.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// # use tower_client_credentials::credential::AssertionFile;
    /// let grant = JwtBearer::assertion_source(AssertionFile::new("/run/assertion"));
    /// ```
    pub fn assertion_source(source: impl CredentialSource) -> Self {
        Self::presenting(Held::Source(Arc::new(source)))
    }

    /// Presents an assertion this crate signs for each token request with the client's key
    /// ([`client_key`](crate::ConfigBuilder::client_key) or `client_key_file`, whose
    /// rotation it follows): `iss` the client id (or [`issuer`](Self::issuer)), `sub` the
    /// issuer (or [`subject`](Self::subject)), `aud` as for client assertions
    /// ([`assertion_audience`](crate::ConfigBuilder::assertion_audience)), a new `jti`, and
    /// `exp` after [`assertion_lifetime`](crate::ConfigBuilder::assertion_lifetime). Feature
    /// `jwt`.
    ///
    /// ```
    /// use tower_client_credentials::{ClientKey, Config, JwtBearer, SigningAlgorithm};
    ///
    /// # let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap().serialize_pem();
    /// let key = ClientKey::from_pem(pem, SigningAlgorithm::Rs256)?;
    /// let config = Config::builder_without_secret("https://login.example.com/token", "3MVG9...")
    ///     .grant(JwtBearer::signed().subject("integration@example.com"))
    ///     .client_key(key)
    ///     .assertion_audience("https://login.example.com")
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    #[cfg(feature = "jwt")]
    pub fn signed() -> Self {
        Self { assertion: None, claims: SignedClaims::default() }
    }

    /// The `iss` of the assertions this crate signs. Default: the client id.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// let grant = JwtBearer::signed().issuer("orders@project.iam.gserviceaccount.com");
    /// ```
    #[cfg(feature = "jwt")]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.claims.issuer = Some(issuer.into());
        self
    }

    /// The `sub` of the assertions this crate signs: the user the token is for (Salesforce's
    /// username, Google's domain-wide delegation). Default: the issuer.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// let grant = JwtBearer::signed().subject("integration@example.com");
    /// ```
    #[cfg(feature = "jwt")]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.claims.subject = Some(subject.into());
        self
    }

    /// Puts the requested scopes into the assertions this crate signs, as a `scope` claim,
    /// instead of into the form: Google's service-account flow reads them there.
    ///
    /// ```
    /// # use tower_client_credentials::JwtBearer;
    /// let grant = JwtBearer::signed().scope_claim();
    /// ```
    #[cfg(feature = "jwt")]
    pub fn scope_claim(mut self) -> Self {
        self.claims.scope_claim = true;
        self
    }
}

/// The URI of a token type given by its URI or by the short name of a registered one (`jwt`,
/// `access_token`, `id_token`, `refresh_token`, `saml1`, `saml2`).
pub(crate) fn token_type_uri(token_type: &str) -> String {
    let token_type = token_type.trim();
    if token_type.contains(':') {
        token_type.to_owned()
    } else {
        format!("urn:ietf:params:oauth:token-type:{token_type}")
    }
}

/// The grant from the builder's `grant` or the settings (`grant` and the files of its
/// tokens), checked: a setting for another grant than the one chosen names itself.
pub(crate) fn settle(grant: Option<Grant>, settings: &Settings) -> Result<Grant, ConfigError> {
    let text = from_settings(settings)?;
    match (grant, text) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "grant",
            "is given twice: as a `Grant` to the builder, and in the settings",
        )),
        (Some(grant), None) | (None, Some(grant)) => check(grant),
        (None, None) => Ok(Grant::ClientCredentials),
    }
}

/// The grant the text settings describe, if `grant` is one of them.
fn from_settings(settings: &Settings) -> Result<Option<Grant>, ConfigError> {
    let exchange_only = [
        ("subject_token_file", settings.subject_token_file.is_some()),
        ("subject_token_type", settings.subject_token_type.is_some()),
        ("actor_token_file", settings.actor_token_file.is_some()),
        ("actor_token_type", settings.actor_token_type.is_some()),
        ("requested_token_type", settings.requested_token_type.is_some()),
    ];
    #[cfg(feature = "jwt")]
    let subject = settings.assertion_subject.as_ref();
    #[cfg(not(feature = "jwt"))]
    let subject: Option<&String> = None;
    let bearer_only = [
        ("assertion_file", settings.assertion_file.is_some()),
        ("assertion_subject", subject.is_some()),
    ];
    let chosen = settings.grant.as_deref().map(str::trim);
    let misplaced = |settings: &[(&'static str, bool)], grant: &str| match settings
        .iter()
        .find(|(_, given)| *given)
    {
        Some((name, _)) => Err(ConfigError::new(name, format!("needs `grant = \"{grant}\"`"))),
        None => Ok(()),
    };
    let grant = match chosen {
        None | Some("client_credentials") => {
            misplaced(&exchange_only, "token_exchange")?;
            misplaced(&bearer_only, "jwt_bearer")?;
            return Ok(chosen.map(|_| Grant::ClientCredentials));
        }
        Some("token_exchange" | TokenExchange::GRANT_TYPE) => {
            misplaced(&bearer_only, "jwt_bearer")?;
            let Some(file) = &settings.subject_token_file else {
                return Err(ConfigError::new(
                    "subject_token_file",
                    "is required with `grant = \"token_exchange\"`",
                ));
            };
            let subject_type = settings.subject_token_type.as_deref().ok_or_else(|| {
                ConfigError::new("subject_token_type", "is required with a `subject_token_file`")
            })?;
            let mut exchange = TokenExchange::subject_token_file(file, subject_type);
            match (&settings.actor_token_file, &settings.actor_token_type) {
                (Some(file), Some(actor_type)) => {
                    exchange = exchange.actor_token_file(file, actor_type);
                }
                (None, None) => {}
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "actor_token_type",
                        "is required with an `actor_token_file`",
                    ))
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "actor_token_file",
                        "is required with an `actor_token_type`",
                    ))
                }
            }
            if let Some(requested) = &settings.requested_token_type {
                exchange = exchange.requested_token_type(requested);
            }
            Grant::TokenExchange(exchange)
        }
        Some("jwt_bearer" | JwtBearer::GRANT_TYPE) => {
            misplaced(&exchange_only, "token_exchange")?;
            match (&settings.assertion_file, subject) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        "assertion_subject",
                        "is a claim this crate signs; an `assertion_file` is signed elsewhere",
                    ))
                }
                (Some(file), None) => Grant::JwtBearer(JwtBearer::assertion_file(file)),
                #[cfg(feature = "jwt")]
                (None, subject) => {
                    let mut signed = JwtBearer::signed();
                    signed.claims.subject = subject.cloned();
                    Grant::JwtBearer(signed)
                }
                #[cfg(not(feature = "jwt"))]
                (None, _) => {
                    return Err(ConfigError::new(
                        "assertion_file",
                        "is required with `grant = \"jwt_bearer\"` (or, with feature `jwt`, \
                         a `client_key_file` to sign assertions with)",
                    ))
                }
            }
        }
        Some(other) => {
            return Err(ConfigError::new(
                "grant",
                format!(
                    "`{other}` is not a grant: use `client_credentials`, `token_exchange` or \
                     `jwt_bearer`"
                ),
            ))
        }
    };
    Ok(Some(grant))
}

/// Checks what a grant given in code holds: what a request would send must be sendable.
pub(super) fn check(grant: Grant) -> Result<Grant, ConfigError> {
    match &grant {
        Grant::ClientCredentials => {}
        Grant::TokenExchange(exchange) => {
            if let Some(requested) = &exchange.requested_token_type {
                check_token_type("requested_token_type", requested)?;
            }
        }
        Grant::JwtBearer(bearer) => {
            let claims =
                [("grant", &bearer.claims.issuer), ("assertion_subject", &bearer.claims.subject)];
            for (field, claim) in claims {
                if claim.as_deref().is_some_and(|claim| claim.trim().is_empty()) {
                    return Err(ConfigError::new(
                        field,
                        "a claim of the assertion must not be empty",
                    ));
                }
            }
        }
    }
    for presented in grant.presented() {
        if let Some(token_type) = &presented.token_type {
            let field = if presented.setting == "subject_token" {
                "subject_token_type"
            } else {
                "actor_token_type"
            };
            check_token_type(field, token_type)?;
        }
        if let Held::Value(value) = &presented.held {
            let value = value.expose_secret();
            if value.trim().is_empty() {
                return Err(ConfigError::new(presented.setting, "must not be empty"));
            }
            if value.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    presented.setting,
                    "must not contain control characters",
                ));
            }
        }
    }
    Ok(grant)
}

fn check_token_type(field: &'static str, uri: &str) -> Result<(), ConfigError> {
    if uri.is_empty()
        || uri.ends_with(':')
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::new(
            field,
            "must be a token type URI (`urn:ietf:params:oauth:token-type:jwt`) or a short name \
             (`jwt`, `access_token`, `id_token`)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_token_type_names_are_the_registered_uris() {
        assert_eq!(token_type_uri("jwt"), TokenExchange::JWT);
        assert_eq!(token_type_uri(" access_token "), TokenExchange::ACCESS_TOKEN);
        let aws = "urn:ietf:params:aws:token-type:aws4_request";
        assert_eq!(token_type_uri(aws), aws);
    }

    #[test]
    fn grants_from_the_same_place_are_equal_and_debug_hides_values() {
        let a = TokenExchange::subject_token("user-1", "access_token");
        assert_eq!(a, TokenExchange::subject_token("user-1", TokenExchange::ACCESS_TOKEN));
        assert_ne!(a, TokenExchange::subject_token("user-2", "access_token"));
        assert_ne!(a, TokenExchange::subject_token("user-1", "jwt"));
        assert_eq!(
            TokenExchange::subject_token_file("/run/t", "jwt"),
            TokenExchange::subject_token_file("/run/t", "jwt")
        );
        let debug = format!("{:?}", Grant::from(a.actor_token("actor-secret", "jwt")));
        assert!(!debug.contains("user-1") && !debug.contains("actor-secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
