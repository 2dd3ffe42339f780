//! The settings, declared once: [`Settings`] is what a configuration file holds, what
//! [`Config::from_env`](crate::Config::from_env) reads from the environment, and what the
//! setters of [`ConfigBuilder`](crate::ConfigBuilder) write into.
//!
//! ```
//! use tower_client_credentials::{Config, Settings};
//!
//! // Any serde format works (TOML, YAML, JSON, ...); durations read like "30s", "5m", "1h 30m".
//! let section = r#"{
//!     "token_url": "https://auth.example.com/oauth/token",
//!     "client_id": "orders-service",
//!     "client_secret": "s3cret",
//!     "scope": "orders:read orders:write",
//!     "auth_method": "client_secret_post",
//!     "refresh_ahead": "2m",
//!     "request_timeout": "5s"
//! }"#;
//! let settings: Settings = serde_json::from_str(section)?;
//! let config: Config = settings.into_config()?;
//! assert_eq!(config.scopes(), ["orders:read", "orders:write"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A file, the environment and code all end in
//! [`ConfigBuilder::build`](crate::ConfigBuilder::build), so they are checked alike, and errors
//! name the setting ([`ConfigError::field`]) with the same names. This module knows the
//! settings as text; `config.rs` turns them into a `Config`.

use std::cell::Cell;
use std::env::VarError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::auth_method::AuthMethod;
#[cfg(feature = "dpop")]
use super::text::dpop_algorithm;
#[cfg(feature = "store")]
use super::text::encryption_key;
#[cfg(feature = "jwt")]
use super::text::signing_algorithm;
use super::text::{
    auth_method, count, duration, flag, no_secret, params, secret, some_flag, words,
};
use super::{Config, ConfigBuilder};
use crate::credential::{read_pem, ClientCertificate};
#[cfg(feature = "jwt")]
use crate::credential::{ClientKey, KeyFile, SigningAlgorithm};
use crate::error::ConfigError;

/// Every setting of a [`ClientCredentialsLayer`](crate::ClientCredentialsLayer) that can be
/// written as text: a configuration-file section read with serde, the environment read by
/// [`Config::from_env`](crate::Config::from_env), and what the [`ConfigBuilder`] setters
/// write. [`into_config`](Self::into_config) checks it.
///
/// Each setting has one name: its builder setter's, which is also its key in a file and, in
/// capitals after a prefix, its environment variable (`refresh_ahead`, `ORDERS_REFRESH_AHEAD`).
/// The ones left out keep the builder's defaults:
///
/// | builder setter | file key | environment | default |
/// |---|---|---|---|
/// | [`Config::builder`]`(token_url, ..)` | `token_url` | `{P}_TOKEN_URL` | required |
/// | [`Config::builder`]`(.., client_id, ..)` | `client_id` | `{P}_CLIENT_ID` | required, except for a client that does not authenticate |
/// | [`Config::builder`]`(.., client_secret)`, [`client_secret`](crate::ConfigBuilder::client_secret) | `client_secret` | `{P}_CLIENT_SECRET` | none: then a certificate or key ([`Config::builder_without_secret`]) |
/// | [`client_secret_file`](crate::ConfigBuilder::client_secret_file) | `client_secret_file` | `{P}_CLIENT_SECRET_FILE` | none |
/// | [`client_assertion_file`](crate::ConfigBuilder::client_assertion_file) | `client_assertion_file` | `{P}_CLIENT_ASSERTION_FILE` | none |
/// | [`scope`](crate::ConfigBuilder::scope) | `scope` | `{P}_SCOPE` | none |
/// | [`audience`](crate::ConfigBuilder::audience) | `audience` | `{P}_AUDIENCE` | none |
/// | [`resource`](crate::ConfigBuilder::resource) | `resource` | `{P}_RESOURCE` | none |
/// | [`param`](crate::ConfigBuilder::param) | `param` | `{P}_PARAM` | none |
/// | [`auth_method`](crate::ConfigBuilder::auth_method) | `auth_method` | `{P}_AUTH_METHOD` | the one the credentials imply |
/// | [`form_encode_basic_credentials`](crate::ConfigBuilder::form_encode_basic_credentials) | `form_encode_basic_credentials` | `{P}_FORM_ENCODE_BASIC_CREDENTIALS` | `true` |
/// | [`refresh_ahead`](crate::ConfigBuilder::refresh_ahead) | `refresh_ahead` | `{P}_REFRESH_AHEAD` | [`DEFAULT_REFRESH_AHEAD`](crate::DEFAULT_REFRESH_AHEAD) |
/// | [`expiry_margin`](crate::ConfigBuilder::expiry_margin) | `expiry_margin` | `{P}_EXPIRY_MARGIN` | [`DEFAULT_EXPIRY_MARGIN`](crate::DEFAULT_EXPIRY_MARGIN) |
/// | [`default_lifetime`](crate::ConfigBuilder::default_lifetime) | `default_lifetime` | `{P}_DEFAULT_LIFETIME` | [`DEFAULT_LIFETIME`](crate::DEFAULT_LIFETIME) |
/// | [`max_lifetime`](crate::ConfigBuilder::max_lifetime) | `max_lifetime` | `{P}_MAX_LIFETIME` | none |
/// | [`token_lifetime`](crate::ConfigBuilder::token_lifetime) | `token_lifetime` | `{P}_TOKEN_LIFETIME` | none: sets the two above |
/// | [`request_timeout`](crate::ConfigBuilder::request_timeout) | `request_timeout` | `{P}_REQUEST_TIMEOUT` | [`DEFAULT_REQUEST_TIMEOUT`](crate::DEFAULT_REQUEST_TIMEOUT) |
/// | [`invalidation_interval`](crate::ConfigBuilder::invalidation_interval) | `invalidation_interval` | `{P}_INVALIDATION_INTERVAL` | [`DEFAULT_INVALIDATION_INTERVAL`](crate::DEFAULT_INVALIDATION_INTERVAL) |
/// | [`max_cached_tokens`](crate::ConfigBuilder::max_cached_tokens) | `max_cached_tokens` | `{P}_MAX_CACHED_TOKENS` | [`DEFAULT_MAX_CACHED_TOKENS`](crate::DEFAULT_MAX_CACHED_TOKENS) |
/// | [`allowed_origin`](crate::ConfigBuilder::allowed_origin) | `allowed_origin` | `{P}_ALLOWED_ORIGIN` | none: every request |
/// | [`danger_allow_plain_http`](crate::ConfigBuilder::danger_allow_plain_http) | `danger_allow_plain_http` | `{P}_DANGER_ALLOW_PLAIN_HTTP` | `false` |
/// | [`client_certificate_files`](crate::ConfigBuilder::client_certificate_files) (or a [`client_certificate`](crate::ConfigBuilder::client_certificate)) | `client_certificate_file`, `client_certificate_key_file` | `{P}_CLIENT_CERTIFICATE_FILE`, `{P}_CLIENT_CERTIFICATE_KEY_FILE` | none |
/// | [`tls_root_certificate`](crate::ConfigBuilder::tls_root_certificate) | `tls_root_certificate_file` | `{P}_TLS_ROOT_CERTIFICATE_FILE` | the system's roots only |
/// | [`grant`](crate::ConfigBuilder::grant) (a [`Grant`](crate::Grant)) | `grant`; token exchange: `subject_token_file`, `subject_token_type`, `actor_token_file`, `actor_token_type`, `requested_token_type`; JWT bearer: `assertion_file`, or `assertion_subject` for an assertion signed with the `client_key` | `{P}_GRANT`, `{P}_SUBJECT_TOKEN_FILE`, `{P}_SUBJECT_TOKEN_TYPE`, `{P}_ACTOR_TOKEN_FILE`, `{P}_ACTOR_TOKEN_TYPE`, `{P}_REQUESTED_TOKEN_TYPE`, `{P}_ASSERTION_FILE`, `{P}_ASSERTION_SUBJECT` | `client_credentials` |
/// | `client_key_file` (or a `client_key`; feature `jwt`) | `client_key_file`, `client_key_algorithm`, `client_key_id` | `{P}_CLIENT_KEY_FILE`, `{P}_CLIENT_KEY_ALGORITHM`, `{P}_CLIENT_KEY_ID` | none; the algorithm `RS256` |
/// | `assertion_audience` (feature `jwt`) | `assertion_audience` | `{P}_ASSERTION_AUDIENCE` | the token URL; `issuer` for the issuer (draft-ietf-oauth-rfc7523bis) |
/// | [`issuer`](crate::ConfigBuilder::issuer) | `issuer` | `{P}_ISSUER` | the discovered one, if any |
/// | [`client_assertion_type`](crate::ConfigBuilder::client_assertion_type) | `client_assertion_type` | `{P}_CLIENT_ASSERTION_TYPE` | `jwt-bearer` |
/// | `assertion_lifetime` (feature `jwt`) | `assertion_lifetime` | `{P}_ASSERTION_LIFETIME` | [`DEFAULT_ASSERTION_LIFETIME`](crate::DEFAULT_ASSERTION_LIFETIME) |
/// | `store_encryption_key` (feature `store`) | `store_encryption_key` | `{P}_STORE_ENCRYPTION_KEY` | derived from the client secret |
/// | `metrics_label` (feature `metrics`) | `metrics_label` | `{P}_METRICS_LABEL` | the scopes, audience or resources |
/// | `dpop` (feature `dpop`) | `dpop_key_file`, `dpop_key_algorithm` | `{P}_DPOP_KEY_FILE`, `{P}_DPOP_KEY_ALGORITHM` | none: bearer tokens; the algorithm `ES256`; the algorithm alone: a key generated by `build` |
/// | `dpop_allow_bearer` (feature `dpop`) | `dpop_allow_bearer` | `{P}_DPOP_ALLOW_BEARER` | `false` |
/// | [`http_client`](crate::ConfigBuilder::http_client) | cannot be text | cannot be text | this crate's own client |
/// | `store` (feature `store`) | cannot be text | cannot be text | none |
/// | [`route`](crate::ConfigBuilder::route) | cannot be text (a table of `TokenParams`) | cannot be text | none |
/// | [`client_secret_source`](crate::ConfigBuilder::client_secret_source), [`client_assertion_source`](crate::ConfigBuilder::client_assertion_source) | cannot be text | cannot be text | none |
///
/// `{P}` is the prefix given to [`Config::from_env`](crate::Config::from_env). Values are
/// written the same way in a file and in the environment:
///
/// - **durations** as text such as `"30s"`, `"5m"` or `"1h 30m"` (see the `humantime` crate),
///   or a plain number of seconds;
/// - **lists** (`scope`, `resource`, `allowed_origin`) as a list, or as one string of items
///   separated by spaces: `ORDERS_SCOPE="orders:read orders:write"`;
/// - **`param`** as a table of names and values, or as form-encoded text:
///   `ORDERS_PARAM="tenant=acme&prompt=none"`;
/// - **`true` and `false`** as booleans or as text;
/// - **`auth_method`** as `"basic"`, `"post"`, `"none"` or a registered name (`"client_secret_post"`,
///   `"private_key_jwt"`, `"tls_client_auth"`, ...); **`client_key_algorithm`** as `"RS256"`,
///   `"PS256"` or `"ES256"`; **`dpop_key_algorithm`** as `"ES256"`, `"RS256"`, `"PS256"` or
///   `"EdDSA"`;
/// - **`grant`** as `"client_credentials"`, `"token_exchange"` or `"jwt_bearer"` (or the
///   grant-type URN); **token types** (`subject_token_type`, ...) as a URI or a short name,
///   `"jwt"`, `"access_token"`, `"id_token"`; **`client_assertion_type`** as `"jwt-bearer"`,
///   `"jwt-spiffe"` or a URN; **`assertion_audience`** as a URL, or `"issuer"`;
/// - **keys and certificates** as the paths of their PEM files, read by `build`;
/// - **`store_encryption_key`** as its 32 bytes in standard base64 (`openssl rand -base64 32`).
///
/// Its fields are private: this table is its schema, and the builder's setters are the one
/// way to set a setting in code ([`into_builder`](Self::into_builder) turns settings read from
/// a file into a builder, to add what cannot be text: a [`ClientCertificate`] or `ClientKey`
/// object, a `reqwest::Client`, a store, a secret known later). So each
/// setting has one name and one way to be written, and its representation can change without
/// breaking anyone.
///
/// `Settings` is serde's `Deserialize`, so any configuration library reads it. A TOML file with
/// environment overrides, the twelve-factor way, with [figment](https://docs.rs/figment)
/// (`features = ["toml", "env"]`): `app.toml` holds an `[auth]` table, and a variable
/// `APP_AUTH__<KEY>` replaces its `<key>` (`APP_AUTH__CLIENT_SECRET`, `APP_AUTH__SCOPE`).
/// Durations, lists and flags are written in variables as in the table below.
///
/// ```ignore
/// use figment::providers::{Env, Format, Toml};
/// use figment::Figment;
/// use tower_client_credentials::{ClientCredentialsLayer, Settings};
///
/// let settings: Settings = Figment::new()
///     .merge(Toml::file("app.toml"))
///     .merge(Env::prefixed("APP_").split("__"))
///     .extract_inner("auth")?;
/// let layer = ClientCredentialsLayer::new(settings.into_config()?);
/// ```
///
/// (`tests/it/settings_from_file_and_env.rs` runs exactly this.) Without a library,
/// [`Settings::from_env`] or [`Config::from_env`](crate::Config::from_env) read the
/// environment alone.
///
/// Unknown fields are refused, so a misspelt setting fails loudly instead of being ignored.
/// The guide's [settings chapter](crate::guide::settings#from-a-file) has a TOML section, and
/// the files a client without a secret names instead (certificate or key).
///
/// The client secret is held as a [`SecretString`], the store's key as a
/// [`SecretSlice`](secrecy::SecretSlice): `Debug` redacts them, and `Settings` cannot be
/// serialized, so they are never written back out.
///
/// [`Config::builder`]: crate::Config::builder
/// [`Config::builder_without_secret`]: crate::Config::builder_without_secret
/// [`ConfigBuilder`]: crate::ConfigBuilder
/// [`ConfigBuilder::build`]: crate::ConfigBuilder::build
/// [`ConfigError::field`]: crate::ConfigError::field
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    // One name per field, no `alias`: the environment reads the names serde lists, aliases too.
    /// The token endpoint. Required.
    pub(super) token_url: String,
    /// The client id; required unless the client does not authenticate (`none`).
    #[serde(default)]
    pub(super) client_id: String,
    /// The client secret. Leave it out for a client that authenticates with
    /// `client_certificate_file` or (feature `jwt`) `client_key_file` instead.
    #[serde(default = "no_secret", deserialize_with = "secret")]
    pub(super) client_secret: SecretString,
    /// See [`ConfigBuilder::client_secret_file`](crate::ConfigBuilder::client_secret_file).
    #[serde(default)]
    pub(super) client_secret_file: Option<PathBuf>,
    /// See [`ConfigBuilder::client_assertion_file`](crate::ConfigBuilder::client_assertion_file).
    #[serde(default)]
    pub(super) client_assertion_file: Option<PathBuf>,
    /// See [`ConfigBuilder::scope`](crate::ConfigBuilder::scope).
    #[serde(default, deserialize_with = "words")]
    pub(super) scope: Vec<String>,
    /// See [`ConfigBuilder::audience`](crate::ConfigBuilder::audience).
    #[serde(default)]
    pub(super) audience: Option<String>,
    /// See [`ConfigBuilder::resource`](crate::ConfigBuilder::resource).
    #[serde(default, deserialize_with = "words")]
    pub(super) resource: Vec<String>,
    /// See [`ConfigBuilder::param`](crate::ConfigBuilder::param).
    #[serde(default, deserialize_with = "params")]
    pub(super) param: Vec<(String, String)>,
    /// See [`ConfigBuilder::auth_method`](crate::ConfigBuilder::auth_method).
    #[serde(default, deserialize_with = "auth_method")]
    pub(super) auth_method: Option<AuthMethod>,
    /// See [`ConfigBuilder::form_encode_basic_credentials`](crate::ConfigBuilder::form_encode_basic_credentials).
    #[serde(default, deserialize_with = "some_flag")]
    pub(super) form_encode_basic_credentials: Option<bool>,
    /// See [`ConfigBuilder::refresh_ahead`](crate::ConfigBuilder::refresh_ahead).
    #[serde(default, deserialize_with = "duration")]
    pub(super) refresh_ahead: Option<Duration>,
    /// See [`ConfigBuilder::expiry_margin`](crate::ConfigBuilder::expiry_margin).
    #[serde(default, deserialize_with = "duration")]
    pub(super) expiry_margin: Option<Duration>,
    /// See [`ConfigBuilder::default_lifetime`](crate::ConfigBuilder::default_lifetime).
    #[serde(default, deserialize_with = "duration")]
    pub(super) default_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::max_lifetime`](crate::ConfigBuilder::max_lifetime).
    #[serde(default, deserialize_with = "duration")]
    pub(super) max_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::token_lifetime`](crate::ConfigBuilder::token_lifetime).
    #[serde(default, deserialize_with = "duration")]
    pub(super) token_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::request_timeout`](crate::ConfigBuilder::request_timeout).
    #[serde(default, deserialize_with = "duration")]
    pub(super) request_timeout: Option<Duration>,
    /// See [`ConfigBuilder::max_cached_tokens`](crate::ConfigBuilder::max_cached_tokens).
    #[serde(default, deserialize_with = "count")]
    pub(super) max_cached_tokens: Option<usize>,
    /// See [`ConfigBuilder::invalidation_interval`](crate::ConfigBuilder::invalidation_interval).
    #[serde(default, deserialize_with = "duration")]
    pub(super) invalidation_interval: Option<Duration>,
    /// See [`ConfigBuilder::allowed_origin`](crate::ConfigBuilder::allowed_origin).
    #[serde(default, deserialize_with = "words")]
    pub(super) allowed_origin: Vec<String>,
    /// See [`ConfigBuilder::danger_allow_plain_http`](crate::ConfigBuilder::danger_allow_plain_http).
    #[serde(default, deserialize_with = "flag")]
    pub(super) danger_allow_plain_http: bool,
    /// See [`ConfigBuilder::grant`](crate::ConfigBuilder::grant).
    #[serde(default)]
    pub(super) grant: Option<String>,
    /// See [`TokenExchange::subject_token_file`](crate::TokenExchange::subject_token_file).
    #[serde(default)]
    pub(super) subject_token_file: Option<PathBuf>,
    /// The type of `subject_token_file`'s token: a URI or a short name (`jwt`).
    #[serde(default)]
    pub(super) subject_token_type: Option<String>,
    /// See [`TokenExchange::actor_token_file`](crate::TokenExchange::actor_token_file).
    #[serde(default)]
    pub(super) actor_token_file: Option<PathBuf>,
    /// Token exchange: the actor token's type.
    #[serde(default)]
    pub(super) actor_token_type: Option<String>,
    /// See [`TokenExchange::requested_token_type`](crate::TokenExchange::requested_token_type).
    #[serde(default)]
    pub(super) requested_token_type: Option<String>,
    /// See [`JwtBearer::assertion_file`](crate::JwtBearer::assertion_file).
    #[serde(default)]
    pub(super) assertion_file: Option<PathBuf>,
    /// See [`JwtBearer::subject`](crate::JwtBearer::subject). Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub(super) assertion_subject: Option<String>,
    /// A PEM file with the client's certificate chain, for mutual TLS (`tls_client_auth`,
    /// `self_signed_tls_client_auth`); give `client_certificate_key_file` with it. See
    /// [`ConfigBuilder::client_certificate`](crate::ConfigBuilder::client_certificate).
    #[serde(default)]
    pub(super) client_certificate_file: Option<PathBuf>,
    /// A PEM file with the private key of `client_certificate_file`.
    #[serde(default)]
    pub(super) client_certificate_key_file: Option<PathBuf>,
    /// A PEM file with certificate authorities to trust besides the system's. See
    /// [`ConfigBuilder::tls_root_certificate`](crate::ConfigBuilder::tls_root_certificate).
    #[serde(default)]
    pub(super) tls_root_certificate_file: Option<PathBuf>,
    /// A PEM file with the private key that signs client assertions (`private_key_jwt`).
    /// See [`ClientKey::from_pem`](crate::ClientKey::from_pem). Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub(super) client_key_file: Option<PathBuf>,
    /// How `client_key_file` signs: RS256 (the default, which every server supports), PS256
    /// or ES256. Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default, deserialize_with = "signing_algorithm")]
    pub(super) client_key_algorithm: Option<SigningAlgorithm>,
    /// The key id sent as the assertion's `kid`. See
    /// [`ClientKey::with_key_id`](crate::ClientKey::with_key_id). Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub(super) client_key_id: Option<String>,
    /// See [`ConfigBuilder::assertion_audience`](crate::ConfigBuilder::assertion_audience).
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub(super) assertion_audience: Option<String>,
    /// See [`ConfigBuilder::issuer`](crate::ConfigBuilder::issuer).
    #[serde(default)]
    pub(super) issuer: Option<String>,
    /// See [`ConfigBuilder::client_assertion_type`](crate::ConfigBuilder::client_assertion_type).
    #[serde(default)]
    pub(super) client_assertion_type: Option<String>,
    /// See [`ConfigBuilder::assertion_lifetime`](crate::ConfigBuilder::assertion_lifetime).
    #[cfg(feature = "jwt")]
    #[serde(default, deserialize_with = "duration")]
    pub(super) assertion_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::store_encryption_key`](crate::ConfigBuilder::store_encryption_key);
    /// written as base64.
    #[cfg(feature = "store")]
    #[serde(default, deserialize_with = "encryption_key")]
    pub(super) store_encryption_key: Option<secrecy::SecretSlice<u8>>,
    /// See [`ConfigBuilder::metrics_label`](crate::ConfigBuilder::metrics_label). Feature
    /// `metrics`.
    #[cfg(feature = "metrics")]
    #[serde(default)]
    pub(super) metrics_label: Option<String>,
    /// A PEM file with the private key that DPoP proofs are signed with. See
    /// [`ConfigBuilder::dpop`](crate::ConfigBuilder::dpop). Feature `dpop`.
    #[cfg(feature = "dpop")]
    #[serde(default)]
    pub(super) dpop_key_file: Option<PathBuf>,
    /// How `dpop_key_file` signs: ES256 (the default), RS256, PS256 or EdDSA. Given without
    /// `dpop_key_file`, `build` generates a key of this algorithm for this process. Feature
    /// `dpop`.
    #[cfg(feature = "dpop")]
    #[serde(default, deserialize_with = "dpop_algorithm")]
    pub(super) dpop_key_algorithm: Option<crate::credential::DpopAlgorithm>,
    /// See [`ConfigBuilder::dpop_allow_bearer`](crate::ConfigBuilder::dpop_allow_bearer).
    /// Feature `dpop`.
    #[cfg(feature = "dpop")]
    #[serde(default, deserialize_with = "flag")]
    pub(super) dpop_allow_bearer: bool,
}

impl Settings {
    /// Settings with the required fields; every other one is left out, as a file leaves it
    /// out, and so takes the default `build()` gives it.
    pub(crate) fn new(token_url: String, client_id: String, client_secret: SecretString) -> Self {
        let required = [("token_url", token_url), ("client_id", client_id)];
        let required = de::value::MapDeserializer::<_, de::value::Error>::new(required.into_iter());
        let mut settings = Self::deserialize(required)
            .expect("two strings are the required settings; the others are optional");
        settings.client_secret = client_secret;
        settings
    }

    /// Reads the settings from the environment, as [`Config::from_env`](crate::Config::from_env)
    /// does, without building them: to add, with [`into_builder`](Self::into_builder), what
    /// cannot be text (a `reqwest::Client`, a store, routes). To layer a file with the
    /// environment, see the [`Settings`] docs (figment).
    ///
    /// ```
    /// use tower_client_credentials::Settings;
    ///
    /// # std::env::set_var("BILLING_TOKEN_URL", "https://auth.example.com/oauth/token");
    /// # std::env::set_var("BILLING_CLIENT_ID", "billing");
    /// # std::env::set_var("BILLING_CLIENT_SECRET", "s3cret");
    /// let settings = Settings::from_env("BILLING")?;
    /// let config = settings.into_builder().max_cached_tokens(10).build()?;
    /// # assert_eq!(config.client_id(), "billing");
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable: a required one missing, one not UTF-8, or a
    /// value that does not parse.
    pub fn from_env(prefix: &str) -> Result<Settings, ConfigError> {
        Self::from_variables(prefix, |name| std::env::var(name))
    }

    /// The settings of the variables `{prefix}_{FIELD}`, looked up by `lookup` (the process
    /// environment, or a test's map). A variable that is set but empty counts as unset.
    ///
    /// The text goes through the same serde code as a file's. Errors name the variable.
    pub(super) fn from_variables(
        prefix: &str,
        lookup: impl Fn(&str) -> Result<String, VarError>,
    ) -> Result<Self, ConfigError> {
        let mut given = Vec::new();
        for &field in fields() {
            match lookup(&variable(prefix, field)) {
                Ok(value) if value.trim().is_empty() => {}
                Ok(value) => given.push((field, value)),
                Err(VarError::NotPresent) => {}
                // Never echo the value: it may be the secret.
                Err(VarError::NotUnicode(_)) => {
                    return Err(named(prefix, field, "is not valid UTF-8"))
                }
            }
        }
        // serde reads a map one entry at a time, the value right after its name: the field
        // read last when an error comes is the one whose value is wrong.
        let reading = Cell::new("");
        let variables = given.into_iter().map(|(field, value)| {
            reading.set(field);
            (field.to_owned(), value)
        });
        envy::from_iter(variables).map_err(|error| match error {
            envy::Error::MissingValue(field) => named(prefix, field, "is not set (or empty)"),
            envy::Error::Custom(reason) => named(prefix, reading.get(), format!("is {reason}")),
        })
    }

    /// The client certificate's chain and key files, if given; an error if only one is.
    pub(crate) fn certificate_files(&self) -> Option<(PathBuf, PathBuf)> {
        let (chain, key) = (&self.client_certificate_file, &self.client_certificate_key_file);
        Some((chain.clone()?, key.clone()?))
    }

    /// The certificate of `client_certificate_file` and `client_certificate_key_file`, if
    /// given.
    pub(crate) fn read_client_certificate(&self) -> Result<Option<ClientCertificate>, ConfigError> {
        match (&self.client_certificate_file, &self.client_certificate_key_file) {
            (Some(chain), Some(key)) => ClientCertificate::read_files(chain, key).map(Some),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "client_certificate_key_file",
                "is missing: `client_certificate_file` needs the certificate's private key",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "client_certificate_file",
                "is missing: `client_certificate_key_file` is given without its certificate",
            )),
        }
    }

    /// The contents of `tls_root_certificate_file`, if given.
    pub(crate) fn read_tls_root_certificate(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let file = self.tls_root_certificate_file.as_deref();
        file.map(|file| read_pem("tls_root_certificate_file", file)).transpose()
    }

    /// The file of the key that signs client assertions, if given.
    #[cfg(feature = "jwt")]
    pub(crate) fn key_file(&self) -> Option<KeyFile> {
        Some(KeyFile {
            path: self.client_key_file.clone()?,
            algorithm: self.client_key_algorithm.unwrap_or_default(),
            key_id: self.client_key_id.clone(),
        })
    }

    /// The signing key of `client_key_file`, if given.
    #[cfg(feature = "jwt")]
    pub(crate) fn read_client_key(&self) -> Result<Option<ClientKey>, ConfigError> {
        if self.client_key_file.is_none()
            && (self.client_key_algorithm.is_some() || self.client_key_id.is_some())
        {
            return Err(ConfigError::new(
                "client_key_file",
                "is missing: `client_key_algorithm` or `client_key_id` describes a key that is \
                 not given",
            ));
        }
        self.key_file().map(|file| file.read()).transpose()
    }
}

/// The names of the settings: the fields of [`Settings`], as serde lists them.
pub(crate) fn fields() -> &'static [&'static str] {
    /// A deserializer that notes the fields it is asked for, and gives nothing.
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_struct<V: de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were wanted"))
        }

        fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct has field names"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = Settings::deserialize(Fields(&mut fields));
    fields
}

/// The environment variable of `field`: `{PREFIX}_{FIELD}`, or `{FIELD}` with an empty
/// prefix; a trailing `_` of the prefix is not doubled.
pub(crate) fn variable(prefix: &str, field: &str) -> String {
    match prefix.trim_end_matches('_') {
        "" => field.to_ascii_uppercase(),
        prefix => format!("{prefix}_{}", field.to_ascii_uppercase()),
    }
}

/// Adds the variable's name to an error about a setting that a variable gives.
pub(crate) fn naming_the_variable(prefix: &str, error: ConfigError) -> ConfigError {
    match fields().iter().find(|&&field| field == error.field()) {
        Some(field) => named(prefix, field, error.reason()),
        None => error,
    }
}

/// An error about `field` that names its variable.
fn named(prefix: &str, field: &'static str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::new(field, format!("{} {reason}", variable(prefix, field)))
}

impl Settings {
    /// Checks the settings and returns the [`Config`]: the same as
    /// `self.into_builder().build()`.
    ///
    /// ```
    /// use tower_client_credentials::Settings;
    ///
    /// let settings: Settings = serde_json::from_str(
    ///     r#"{"token_url": "https://auth.example.com/token", "client_id": "orders-service",
    ///         "client_secret": "s3cret", "token_lifetime": "1h"}"#,
    /// )?;
    /// let config = settings.into_config()?;
    /// # assert_eq!(config.client_id(), "orders-service");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first unusable setting, as from [`ConfigBuilder::build`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        self.into_builder().build()
    }

    /// A builder with these settings, for the ones that cannot be written as text: an
    /// [`http_client`](ConfigBuilder::http_client), a `store`, a [`ClientCertificate`] or
    /// `ClientKey` object. Its setters replace what the settings say (or, for lists, add to
    /// it).
    ///
    /// ```
    /// use tower_client_credentials::Settings;
    ///
    /// let settings: Settings = serde_json::from_str(
    ///     r#"{"token_url": "https://auth.example.com/token", "client_id": "orders-service",
    ///         "client_secret": "s3cret"}"#,
    /// )?;
    /// let proxied = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()?;
    /// let config = settings.into_builder().http_client(proxied).build()?;
    /// # assert_eq!(config.client_id(), "orders-service");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_builder(self) -> ConfigBuilder {
        ConfigBuilder {
            settings: self,
            http_client: None,
            client_certificate: None,
            tls_root_certificates: Vec::new(),
            discovered: None,
            #[cfg(feature = "jwt")]
            client_key: None,
            #[cfg(feature = "store")]
            store: None,
            client_secret_source: None,
            client_assertion_source: None,
            #[cfg(feature = "dpop")]
            dpop_key: None,
            routes: Vec::new(),
            grant: None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::test_support::{builder, field_of, MINUTE};

    /// Settings from a file: JSON here, as any serde format would give them.
    pub(in crate::config) fn settings(json: &str) -> Result<Settings, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The required settings as JSON, and `extra` (`, "key": value`) after them.
    pub(in crate::config) fn with_required(extra: &str) -> String {
        format!(
            r#"{{"token_url": "https://auth.example.com/token", "client_id": "client",
                "client_secret": "hunter2-secret"{extra}}}"#
        )
    }

    #[test]
    fn both_spellings_of_each_auth_method_are_understood() {
        for (name, method) in [
            ("basic", AuthMethod::ClientSecretBasic),
            ("client_secret_basic", AuthMethod::ClientSecretBasic),
            ("post", AuthMethod::ClientSecretPost),
            ("Client_Secret_Post", AuthMethod::ClientSecretPost),
        ] {
            let json = with_required(&format!(r#", "auth_method": "{name}""#));
            assert_eq!(settings(&json).unwrap().auth_method, Some(method), "{name}");
        }
        let json = with_required(r#", "auth_method": "tls_client_auth""#);
        assert_eq!(settings(&json).unwrap().auth_method, Some(AuthMethod::TlsClientAuth));
        let error = settings(&with_required(r#", "auth_method": "bearer""#)).unwrap_err();
        assert!(error.to_string().contains("`bearer`, not `basic`, `post` or one of"), "{error}");
    }

    #[test]
    fn durations_read_as_text_or_seconds() {
        for (written, seconds) in [(r#""30s""#, 30), (r#""5m""#, 300), (r#""1h 30m""#, 5400)] {
            let json = with_required(&format!(r#", "refresh_ahead": {written}"#));
            let parsed = settings(&json).unwrap().refresh_ahead;
            assert_eq!(parsed, Some(Duration::from_secs(seconds)), "{written}");
        }
        for written in ["90", r#""90""#] {
            let json = with_required(&format!(r#", "refresh_ahead": {written}"#));
            assert_eq!(settings(&json).unwrap().refresh_ahead, Some(Duration::from_secs(90)));
        }
        for bad in [r#""soon""#, "-5", "true"] {
            let json = with_required(&format!(r#", "request_timeout": {bad}"#));
            assert!(settings(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_misspelt_setting_is_refused() {
        let error = settings(&with_required(r#", "client_secert": "x""#)).unwrap_err();
        assert!(error.to_string().contains("client_secert"), "{error}");
    }

    #[test]
    fn one_resource_or_scope_may_be_written_without_a_list() {
        let json = with_required(r#", "resource": "https://a.example", "scope": "read""#);
        let parsed = settings(&json).unwrap();
        assert_eq!(parsed.resource, ["https://a.example"]);
        assert_eq!(parsed.scope, ["read"]);
    }

    #[test]
    fn params_keep_their_order_as_a_table_or_as_form_encoded_text() {
        let json = with_required(r#", "param": {"tenant": "acme", "prompt": "none"}"#);
        let expected = [("tenant".to_owned(), "acme".to_owned()), ("prompt".into(), "none".into())];
        assert_eq!(settings(&json).unwrap().param, expected);
        let json = with_required(r#", "param": "tenant=acme&prompt=none""#);
        assert_eq!(settings(&json).unwrap().param, expected);
        let json = with_required(r#", "param": "q=a%26b%3Dc""#);
        assert_eq!(settings(&json).unwrap().param, [("q".to_owned(), "a&b=c".to_owned())]);
    }

    #[test]
    fn flags_read_as_booleans_or_text() {
        let json = with_required(r#", "danger_allow_plain_http": "true""#);
        assert!(settings(&json).unwrap().danger_allow_plain_http);
        let json = with_required(r#", "form_encode_basic_credentials": false"#);
        assert_eq!(settings(&json).unwrap().form_encode_basic_credentials, Some(false));
        let error = settings(&with_required(r#", "danger_allow_plain_http": "yes""#)).unwrap_err();
        assert!(error.to_string().contains("`yes`, not `true` or `false`"), "{error}");
    }

    #[cfg(feature = "store")]
    #[test]
    fn the_store_key_is_32_bytes_of_base64_and_never_shown() {
        use secrecy::ExposeSecret;

        let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="; // 32 times 7
        let json = with_required(&format!(r#", "store_encryption_key": "{key}""#));
        let parsed = settings(&json).unwrap();
        assert_eq!(parsed.store_encryption_key.as_ref().unwrap().expose_secret(), [7; 32]);
        assert!(!format!("{parsed:?}").contains(key));
        for bad in ["BwcHBwcH", "not base64 at all, not at all, not at all, no"] {
            let json = with_required(&format!(r#", "store_encryption_key": "{bad}""#));
            let error = settings(&json).unwrap_err().to_string();
            assert!(error.contains("not 32 bytes in base64") && !error.contains(bad), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let parsed = settings(&with_required("")).unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    #[test]
    fn the_fields_are_the_settings_declared_and_name_their_variables() {
        let fields = fields();
        assert_eq!(fields[..3], ["token_url", "client_id", "client_secret"]);
        assert!(fields.contains(&"refresh_ahead") && fields.contains(&"tls_root_certificate_file"));
        assert_eq!(variable("ORDERS", "refresh_ahead"), "ORDERS_REFRESH_AHEAD");
        assert_eq!(variable("ORDERS_", "refresh_ahead"), "ORDERS_REFRESH_AHEAD");
        assert_eq!(variable("", "refresh_ahead"), "REFRESH_AHEAD");
    }

    // Settings from a file reach the `Config`.

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

    /// The keys in backquotes of column `column` of the table of `doc` whose rows start with
    /// `prefix`, each with its row.
    fn table_keys<'a>(doc: &'a str, prefix: &str, column: usize) -> Vec<(String, &'a str)> {
        let rows = doc.lines().filter_map(|line| line.trim_start().strip_prefix(prefix));
        let cells = rows.filter_map(|row| Some((row.split(" | ").nth(column)?.to_owned(), row)));
        cells
            .flat_map(|(cell, row)| {
                let keys = cell.split('`').skip(1).step_by(2).map(str::to_owned);
                keys.map(move |key| (key, row)).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The `Settings` docs and the guide's settings chapter list each setting under its file
    /// key with its variable: a setting added without its row fails here. (`cargo doc -D
    /// warnings` checks that each row's builder method exists.)
    #[test]
    fn the_settings_tables_list_every_setting_with_its_variable() {
        let docs = table_keys(include_str!("settings.rs"), "/// | ", 1);
        let guide = table_keys(include_str!("../guide/settings.rs"), "//! | ", 1);
        for (table, keys, variable) in
            [("Settings docs", &docs, "{P}_"), ("guide", &guide, "ORDERS_")]
        {
            for field in fields() {
                let row = keys.iter().find(|(key, _)| key == field).map(|(_, row)| row);
                let row = row.unwrap_or_else(|| panic!("{table}: no row for `{field}`"));
                let named = format!("`{variable}{}`", field.to_ascii_uppercase());
                assert!(row.contains(&named), "{table}: the row of `{field}` lacks {named}");
            }
        }
    }

    #[test]
    fn settings_made_in_code_take_every_default_a_file_leaves_out() {
        let (url, id) = ("https://auth.example.com/token".to_owned(), "client".to_owned());
        let made = Settings::new(url, id, "hunter2-secret".into());
        let read = settings(&with_required("")).unwrap();
        assert_eq!(format!("{made:?}"), format!("{read:?}"));
    }
}
