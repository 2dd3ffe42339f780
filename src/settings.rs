//! The configuration as operators keep it: a section of a configuration file ([`Settings`]), or
//! environment variables ([`Config::from_env`]).
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
//! Both end in [`ConfigBuilder::build`], so a file, the environment and code are checked
//! alike, and errors name the setting ([`ConfigError::field`]) with the same names.

use std::collections::BTreeMap;
use std::env::VarError;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;

use crate::config::{AuthMethod, Config, ConfigBuilder};
use crate::error::ConfigError;
use crate::tls::ClientCertificate;

/// A configuration-file section for a [`ClientCredentialsLayer`](crate::ClientCredentialsLayer),
/// read with serde; [`into_config`](Self::into_config) checks it.
///
/// Each field is the [`ConfigBuilder`] setter of the same name; the ones left out keep the
/// builder's defaults. Unknown fields are refused, so a misspelt setting fails loudly instead
/// of being ignored. In TOML:
///
/// ```toml
/// [orders_api.auth]
/// token_url = "https://login.example.com/oauth2/token"
/// client_id = "orders-service"
/// client_secret = "s3cret"            # better: injected from a secret store
/// scope = "orders:read orders:write"  # or a list: ["orders:read", "orders:write"]
/// audience = "https://orders.example.com"
/// resources = ["https://orders.example.com"]
/// auth_method = "post"                # "basic" (default) or "post", or any registered name:
///                                     # "client_secret_post", "private_key_jwt", ...
/// refresh_ahead = "5m"
/// expiry_margin = "30s"
/// token_lifetime = "1h"               # a fixed token time: default and maximum lifetime
/// request_timeout = "10s"
///
/// [orders_api.auth.params]            # any other form parameter
/// tenant = "acme"
/// ```
///
/// A client without a secret names its certificate or key files instead:
///
/// ```toml
/// [orders_api.auth]
/// token_url = "https://login.example.com/oauth2/token"
/// client_id = "orders-service"
/// # mutual TLS (tls_client_auth):
/// client_certificate_file = "/etc/orders/client.crt"
/// client_certificate_key_file = "/etc/orders/client.key"
/// # or private_key_jwt (feature `jwt`):
/// # client_key_file = "/etc/orders/signing.key"
/// # client_key_algorithm = "ES256"   # "RS256" (default), "PS256" or "ES256"
/// # client_key_id = "orders-2026"
/// ```
///
/// Durations are text such as `"30s"`, `"5m"` or `"1h 30m"` (see the `humantime` crate), or a
/// plain number of seconds.
///
/// The client secret is held as a [`SecretString`]: `Debug` redacts it, and `Settings` cannot
/// be serialized, so it is never written back out. Keys and certificates stay in their files
/// until [`into_config`](Self::into_config) reads them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The token endpoint. Required.
    pub token_url: String,
    /// The client id. Required.
    pub client_id: String,
    /// The client secret. Leave it out for a client that authenticates with
    /// `client_certificate_file` or (feature `jwt`) `client_key_file` instead.
    #[serde(default = "no_secret", deserialize_with = "secret")]
    pub client_secret: SecretString,
    /// Scopes to request: a string of scopes separated by spaces, or a list. Also read as
    /// `scopes`.
    #[serde(default, alias = "scopes", deserialize_with = "one_or_many")]
    pub scope: Vec<String>,
    /// The `audience` parameter (Auth0, Okta).
    #[serde(default)]
    pub audience: Option<String>,
    /// RFC 8707 `resource` parameters: one URI or a list. Also read as `resource`.
    #[serde(default, alias = "resource", deserialize_with = "one_or_many")]
    pub resources: Vec<String>,
    /// Any other form parameters, by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `"basic"` or `"post"` (also `"client_secret_basic"`, `"client_secret_post"`).
    #[serde(default, deserialize_with = "auth_method")]
    pub auth_method: Option<AuthMethod>,
    /// See [`ConfigBuilder::form_encode_basic_credentials`].
    #[serde(default)]
    pub form_encode_basic_credentials: Option<bool>,
    /// See [`ConfigBuilder::refresh_ahead`].
    #[serde(default, deserialize_with = "duration")]
    pub refresh_ahead: Option<Duration>,
    /// See [`ConfigBuilder::expiry_margin`].
    #[serde(default, deserialize_with = "duration")]
    pub expiry_margin: Option<Duration>,
    /// See [`ConfigBuilder::default_lifetime`].
    #[serde(default, deserialize_with = "duration")]
    pub default_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::max_lifetime`].
    #[serde(default, deserialize_with = "duration")]
    pub max_lifetime: Option<Duration>,
    /// A fixed token time: sets both `default_lifetime` and `max_lifetime`, as the .NET
    /// `TokenTime` setting does. Give either it or them.
    #[serde(default, deserialize_with = "duration")]
    pub token_lifetime: Option<Duration>,
    /// See [`ConfigBuilder::request_timeout`].
    #[serde(default, deserialize_with = "duration")]
    pub request_timeout: Option<Duration>,
    /// See [`ConfigBuilder::invalidation_interval`].
    #[serde(default, deserialize_with = "duration")]
    pub invalidation_interval: Option<Duration>,
    /// Origins that may receive the token: one or a list. Also read as `allowed_origin`. See
    /// [`ConfigBuilder::allowed_origin`].
    #[serde(default, alias = "allowed_origin", deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
    /// See [`ConfigBuilder::danger_allow_plain_http`]. Default: `false`.
    #[serde(default)]
    pub danger_allow_plain_http: bool,
    /// A PEM file with the client's certificate chain, for mutual TLS (`tls_client_auth`,
    /// `self_signed_tls_client_auth`); give `client_certificate_key_file` with it. See
    /// [`ClientCertificate::from_pem`].
    #[serde(default)]
    pub client_certificate_file: Option<PathBuf>,
    /// A PEM file with the private key of `client_certificate_file`.
    #[serde(default)]
    pub client_certificate_key_file: Option<PathBuf>,
    /// A PEM file with the private key that signs client assertions (`private_key_jwt`).
    /// See [`ClientKey::from_pem`](crate::ClientKey::from_pem). Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// How `client_key_file` signs: `"RS256"` (the default, which every server supports),
    /// `"PS256"` or `"ES256"`. Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default, deserialize_with = "signing_algorithm")]
    pub client_key_algorithm: Option<crate::SigningAlgorithm>,
    /// The key id sent as the assertion's `kid`. Feature `jwt`.
    #[cfg(feature = "jwt")]
    #[serde(default)]
    pub client_key_id: Option<String>,
}

impl Settings {
    /// Settings with the required fields and nothing else.
    fn new(token_url: String, client_id: String, client_secret: SecretString) -> Self {
        Self {
            token_url,
            client_id,
            client_secret,
            scope: Vec::new(),
            audience: None,
            resources: Vec::new(),
            params: BTreeMap::new(),
            auth_method: None,
            form_encode_basic_credentials: None,
            refresh_ahead: None,
            expiry_margin: None,
            default_lifetime: None,
            max_lifetime: None,
            token_lifetime: None,
            request_timeout: None,
            invalidation_interval: None,
            allowed_origins: Vec::new(),
            danger_allow_plain_http: false,
            client_certificate_file: None,
            client_certificate_key_file: None,
            #[cfg(feature = "jwt")]
            client_key_file: None,
            #[cfg(feature = "jwt")]
            client_key_algorithm: None,
            #[cfg(feature = "jwt")]
            client_key_id: None,
        }
    }

    /// Checks the settings and returns the [`Config`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first unusable setting, as from [`ConfigBuilder::build`],
    /// or `token_lifetime` when it is given together with `default_lifetime` or
    /// `max_lifetime`.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        self.into_builder()?.build()
    }

    fn into_builder(self) -> Result<ConfigBuilder, ConfigError> {
        let (mut default_lifetime, mut max_lifetime) = (self.default_lifetime, self.max_lifetime);
        if let Some(lifetime) = self.token_lifetime {
            if default_lifetime.is_some() || max_lifetime.is_some() {
                return Err(ConfigError::new(
                    "token_lifetime",
                    "sets both `default_lifetime` and `max_lifetime`; give either it or them",
                ));
            }
            (default_lifetime, max_lifetime) = (Some(lifetime), Some(lifetime));
        }

        let mut builder = Config::builder(self.token_url, self.client_id, self.client_secret);
        for scope in self.scope {
            builder = builder.scope(scope);
        }
        for resource in self.resources {
            builder = builder.resource(resource);
        }
        for (name, value) in self.params {
            builder = builder.param(name, value);
        }
        for origin in self.allowed_origins {
            builder = builder.allowed_origin(origin);
        }
        if self.danger_allow_plain_http {
            builder = builder.danger_allow_plain_http();
        }
        if let Some(audience) = self.audience {
            builder = builder.audience(audience);
        }
        if let Some(method) = self.auth_method {
            builder = builder.auth_method(method);
        }
        if let Some(encode) = self.form_encode_basic_credentials {
            builder = builder.form_encode_basic_credentials(encode);
        }
        let certificate = (self.client_certificate_file, self.client_certificate_key_file);
        if let Some(certificate) = client_certificate(certificate)? {
            builder = builder.client_certificate(certificate);
        }
        #[cfg(feature = "jwt")]
        if let Some(key) =
            client_key(self.client_key_file, self.client_key_algorithm, self.client_key_id)?
        {
            builder = builder.client_key(key);
        }
        let durations: [(Option<Duration>, DurationSetter); 6] = [
            (self.refresh_ahead, ConfigBuilder::refresh_ahead),
            (self.expiry_margin, ConfigBuilder::expiry_margin),
            (default_lifetime, ConfigBuilder::default_lifetime),
            (max_lifetime, ConfigBuilder::max_lifetime),
            (self.request_timeout, ConfigBuilder::request_timeout),
            (self.invalidation_interval, ConfigBuilder::invalidation_interval),
        ];
        for (value, set) in durations {
            if let Some(duration) = value {
                builder = set(builder, duration);
            }
        }
        Ok(builder)
    }
}

/// The certificate of `client_certificate_file` and `client_certificate_key_file`, if given.
fn client_certificate(
    files: (Option<PathBuf>, Option<PathBuf>),
) -> Result<Option<ClientCertificate>, ConfigError> {
    match files {
        (Some(chain), Some(key)) => ClientCertificate::from_pem(
            read("client_certificate_file", &chain)?,
            read("client_certificate_key_file", &key)?,
        )
        .map(Some)
        .map_err(|error| ConfigError::new("client_certificate_file", error.reason())),
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

/// The signing key of `client_key_file`, if given.
#[cfg(feature = "jwt")]
fn client_key(
    file: Option<PathBuf>,
    algorithm: Option<crate::SigningAlgorithm>,
    key_id: Option<String>,
) -> Result<Option<crate::ClientKey>, ConfigError> {
    let Some(file) = file else {
        if algorithm.is_some() || key_id.is_some() {
            return Err(ConfigError::new(
                "client_key_file",
                "is missing: `client_key_algorithm` or `client_key_id` describes a key that is \
                 not given",
            ));
        }
        return Ok(None);
    };
    let algorithm = algorithm.unwrap_or(crate::SigningAlgorithm::Rs256);
    let key = crate::ClientKey::from_pem(read("client_key_file", &file)?, algorithm)
        .map_err(|error| ConfigError::new("client_key_file", error.reason()))?;
    Ok(Some(match key_id {
        Some(id) => key.with_key_id(id),
        None => key,
    }))
}

/// The contents of the file a setting names; an error naming the setting and the file if it
/// cannot be read.
fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    fs::read(path)
        .map_err(|e| ConfigError::new(field, format!("`{}` cannot be read: {e}", path.display())))
}

/// A [`ConfigBuilder`] method that takes a duration.
type DurationSetter = fn(ConfigBuilder, Duration) -> ConfigBuilder;

impl TryFrom<Settings> for Config {
    type Error = ConfigError;

    /// The same as [`Settings::into_config`].
    fn try_from(settings: Settings) -> Result<Self, Self::Error> {
        settings.into_config()
    }
}

/// The variables [`Config::from_env`] reads, after the prefix, with the setting each feeds.
const VARIABLES: &[(&str, &str)] = &[
    ("TOKEN_URL", "token_url"),
    ("CLIENT_ID", "client_id"),
    ("CLIENT_SECRET", "client_secret"),
    ("SCOPE", "scope"),
    ("AUDIENCE", "audience"),
    ("AUTH_METHOD", "auth_method"),
    ("TOKEN_LIFETIME", "token_lifetime"),
    ("REFRESH_AHEAD", "refresh_ahead"),
    ("REQUEST_TIMEOUT", "request_timeout"),
    ("CLIENT_CERTIFICATE_FILE", "client_certificate_file"),
    ("CLIENT_CERTIFICATE_KEY_FILE", "client_certificate_key_file"),
    #[cfg(feature = "jwt")]
    ("CLIENT_KEY_FILE", "client_key_file"),
    #[cfg(feature = "jwt")]
    ("CLIENT_KEY_ALGORITHM", "client_key_algorithm"),
    #[cfg(feature = "jwt")]
    ("CLIENT_KEY_ID", "client_key_id"),
];

impl Config {
    /// Reads the configuration from environment variables named `{prefix}_...`:
    ///
    /// | variable | setting | |
    /// |---|---|---|
    /// | `{prefix}_TOKEN_URL` | `token_url` | required (.NET `TokenEndPoint`) |
    /// | `{prefix}_CLIENT_ID` | `client_id` | required (`ClientId`) |
    /// | `{prefix}_CLIENT_SECRET` | `client_secret` | unless a certificate or key is given (`ClientSecret`) |
    /// | `{prefix}_SCOPE` | `scope` | scopes separated by spaces (`Scope`) |
    /// | `{prefix}_AUDIENCE` | `audience` | |
    /// | `{prefix}_AUTH_METHOD` | `auth_method` | `basic`, `post`, or a registered name such as `private_key_jwt` |
    /// | `{prefix}_TOKEN_LIFETIME` | `default_lifetime`, `max_lifetime` | fixed (`TokenTime`) |
    /// | `{prefix}_REFRESH_AHEAD` | `refresh_ahead` | |
    /// | `{prefix}_REQUEST_TIMEOUT` | `request_timeout` | |
    /// | `{prefix}_CLIENT_CERTIFICATE_FILE` | `client_certificate_file` | mutual TLS: a PEM chain |
    /// | `{prefix}_CLIENT_CERTIFICATE_KEY_FILE` | `client_certificate_key_file` | its PEM key |
    /// | `{prefix}_CLIENT_KEY_FILE` | `client_key_file` | `private_key_jwt`: a PEM key (feature `jwt`) |
    /// | `{prefix}_CLIENT_KEY_ALGORITHM` | `client_key_algorithm` | `RS256` (default), `PS256`, `ES256` |
    /// | `{prefix}_CLIENT_KEY_ID` | `client_key_id` | the assertion's `kid` |
    ///
    /// Durations read like `30s`, `5m` or `1h 30m`, or as a plain number of seconds. An
    /// optional variable that is set but empty counts as unset. With an empty `prefix` the
    /// names are bare (`TOKEN_URL`, ...). For other settings, use [`Settings`] or the builder.
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
    /// not UTF-8, a duration or method that does not parse, or any error of
    /// [`ConfigBuilder::build`].
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        from_variables(prefix, |name| std::env::var(name))
    }
}

/// [`Config::from_env`] with the variables looked up by `lookup`, so tests need not touch the
/// process environment.
fn from_variables(
    prefix: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<Config, ConfigError> {
    let vars = Variables { prefix, lookup };
    let mut settings = Settings::new(
        vars.required("TOKEN_URL")?,
        vars.required("CLIENT_ID")?,
        vars.optional("CLIENT_SECRET")?.unwrap_or_default().into(),
    );
    settings.scope = vars.optional("SCOPE")?.into_iter().collect();
    settings.audience = vars.optional("AUDIENCE")?;
    settings.auth_method = vars.parsed("AUTH_METHOD", parse_auth_method)?;
    settings.token_lifetime = vars.parsed("TOKEN_LIFETIME", parse_duration)?;
    settings.refresh_ahead = vars.parsed("REFRESH_AHEAD", parse_duration)?;
    settings.request_timeout = vars.parsed("REQUEST_TIMEOUT", parse_duration)?;
    settings.client_certificate_file = vars.optional("CLIENT_CERTIFICATE_FILE")?.map(PathBuf::from);
    settings.client_certificate_key_file =
        vars.optional("CLIENT_CERTIFICATE_KEY_FILE")?.map(PathBuf::from);
    #[cfg(feature = "jwt")]
    {
        settings.client_key_file = vars.optional("CLIENT_KEY_FILE")?.map(PathBuf::from);
        settings.client_key_algorithm =
            vars.parsed("CLIENT_KEY_ALGORITHM", parse_signing_algorithm)?;
        settings.client_key_id = vars.optional("CLIENT_KEY_ID")?;
    }
    settings.into_config().map_err(|error| vars.naming_the_variable(error))
}

struct Variables<'a, F> {
    prefix: &'a str,
    lookup: F,
}

impl<F: Fn(&str) -> Result<String, VarError>> Variables<'_, F> {
    fn name(&self, suffix: &'static str) -> String {
        match self.prefix.trim_end_matches('_') {
            "" => suffix.to_owned(),
            prefix => format!("{prefix}_{suffix}"),
        }
    }

    fn error(&self, suffix: &'static str, reason: impl fmt::Display) -> ConfigError {
        let field = VARIABLES.iter().find(|(s, _)| *s == suffix).map_or(suffix, |(_, f)| f);
        ConfigError::new(field, format!("{} {reason}", self.name(suffix)))
    }

    fn optional(&self, suffix: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(&self.name(suffix)) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            // Never echo the value: it may be the secret.
            Err(VarError::NotUnicode(_)) => Err(self.error(suffix, "is not valid UTF-8")),
        }
    }

    fn required(&self, suffix: &'static str) -> Result<String, ConfigError> {
        self.optional(suffix)?.ok_or_else(|| self.error(suffix, "is not set (or empty)"))
    }

    fn parsed<T>(
        &self,
        suffix: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.optional(suffix)? else { return Ok(None) };
        parse(&value).map(Some).map_err(|reason| self.error(suffix, format!("is {reason}")))
    }

    /// Adds the variable's name to an error of [`Settings::into_config`].
    fn naming_the_variable(&self, error: ConfigError) -> ConfigError {
        let Some((suffix, _)) = VARIABLES.iter().find(|(_, field)| match error.field() {
            "default_lifetime" | "max_lifetime" => *field == "token_lifetime",
            other => *field == other,
        }) else {
            return error;
        };
        ConfigError::new(error.field(), format!("{} {}", self.name(suffix), error.reason()))
    }
}

/// A duration as operators write it: `30s`, `5m`, `1h 30m`, or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("not a duration ({e}); write e.g. `30s`, `5m`, `1h 30m` or a number of seconds")
    })
}

fn parse_auth_method(text: &str) -> Result<AuthMethod, String> {
    let name = match text.trim().to_ascii_lowercase().as_str() {
        "basic" => "client_secret_basic".to_owned(),
        "post" => "client_secret_post".to_owned(),
        name => name.to_owned(),
    };
    AuthMethod::PREFERENCE.iter().copied().find(|method| method.as_str() == name).ok_or_else(|| {
        let known: Vec<&str> = AuthMethod::PREFERENCE.iter().map(|m| m.as_str()).collect();
        format!("`{}`, not `basic`, `post` or one of {}", text.trim(), known.join(", "))
    })
}

#[cfg(feature = "jwt")]
fn parse_signing_algorithm(text: &str) -> Result<crate::SigningAlgorithm, String> {
    use crate::SigningAlgorithm::{Es256, Ps256, Rs256};
    [Rs256, Ps256, Es256]
        .into_iter()
        .find(|algorithm| text.trim().eq_ignore_ascii_case(algorithm.as_str()))
        .ok_or_else(|| format!("`{}`, not `RS256`, `PS256` or `ES256`", text.trim()))
}

fn no_secret() -> SecretString {
    SecretString::from(String::new())
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

fn auth_method<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<AuthMethod>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    parse_auth_method(&name)
        .map(Some)
        .map_err(|reason| de::Error::custom(format_args!("invalid auth_method {reason}")))
}

#[cfg(feature = "jwt")]
fn signing_algorithm<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<crate::SigningAlgorithm>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    parse_signing_algorithm(&name)
        .map(Some)
        .map_err(|reason| de::Error::custom(format_args!("invalid client_key_algorithm {reason}")))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<HumanDuration>::deserialize(deserializer)?.map(|d| d.0))
}

/// A duration as text (`"5m"`) or as a number of seconds.
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"1h 30m\", or seconds")
            }

            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(seconds)))
            }

            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<HumanDuration, E> {
                let seconds = u64::try_from(seconds)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(seconds), &self))?;
                self.visit_u64(seconds)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                parse_duration(text).map(HumanDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// A string, or a list of strings.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn settings(json: &str) -> Result<Settings, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn with_required(extra: &str) -> String {
        format!(
            r#"{{"token_url": "https://auth.example.com/token", "client_id": "client",
                "client_secret": "hunter2-secret"{extra}}}"#
        )
    }

    #[test]
    fn every_setting_of_a_file_section_reaches_the_config() {
        let json = with_required(
            r#", "scope": ["read", "write admin"], "audience": "https://api.example.com",
                "resources": ["https://api.example.com"], "params": {"tenant": "acme"},
                "auth_method": "post", "form_encode_basic_credentials": false,
                "refresh_ahead": "2m", "expiry_margin": "10s", "default_lifetime": "15m",
                "max_lifetime": "1h", "request_timeout": 7, "invalidation_interval": "1s",
                "allowed_origins": "https://api.example.com""#,
        );
        let config = settings(&json).unwrap().into_config().unwrap();
        assert_eq!(config.scopes(), ["read", "write", "admin"]);
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretPost);
        assert_eq!(config.audience.as_deref(), Some("https://api.example.com"));
        assert_eq!(config.resources, ["https://api.example.com"]);
        assert_eq!(config.params, [("tenant".to_owned(), "acme".to_owned())]);
        assert!(!config.form_encode_basic_credentials);
        assert_eq!(config.refresh_ahead, 2 * MINUTE);
        assert_eq!(config.expiry_margin, Duration::from_secs(10));
        assert_eq!(config.default_lifetime, 15 * MINUTE);
        assert_eq!(config.max_lifetime, Some(60 * MINUTE));
        assert_eq!(config.request_timeout, Duration::from_secs(7));
        assert_eq!(config.invalidation_interval, Duration::from_secs(1));
        assert_eq!(config.allowed_origins.len(), 1);
        assert_eq!(config.client_secret.expose_secret(), "hunter2-secret");
    }

    #[test]
    fn left_out_settings_keep_the_builder_defaults() {
        let config = settings(&with_required("")).unwrap().into_config().unwrap();
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretBasic);
        assert_eq!(config.refresh_ahead, crate::DEFAULT_REFRESH_AHEAD);
        assert_eq!(config.request_timeout, crate::DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.max_lifetime, None);
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
        let json = with_required(r#", "resource": "https://a.example", "scopes": "read""#);
        let parsed = settings(&json).unwrap();
        assert_eq!(parsed.resources, ["https://a.example"]);
        assert_eq!(parsed.scope, ["read"]);
    }

    #[test]
    fn token_lifetime_sets_the_default_and_the_cap_and_excludes_them() {
        let config =
            settings(&with_required(r#", "token_lifetime": "1h""#)).unwrap().into_config().unwrap();
        assert_eq!(config.default_lifetime, 60 * MINUTE);
        assert_eq!(config.max_lifetime, Some(60 * MINUTE));

        let both = with_required(r#", "token_lifetime": "1h", "max_lifetime": "2h""#);
        let error = settings(&both).unwrap().into_config().unwrap_err();
        assert_eq!(error.field(), "token_lifetime");
    }

    #[test]
    fn builder_errors_name_the_setting() {
        let json = r#"{"token_url": "http://auth.example.com/t", "client_id": "c",
                       "client_secret": "s"}"#;
        let error = Config::try_from(settings(json).unwrap()).unwrap_err();
        assert_eq!(error.field(), "token_url");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let parsed = settings(&with_required("")).unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    fn from_map(prefix: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_variables(prefix, |name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("ORDERS_TOKEN_URL", "https://auth.example.com/token"),
        ("ORDERS_CLIENT_ID", "orders-service"),
        ("ORDERS_CLIENT_SECRET", "hunter2-secret"),
    ];

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
        assert_eq!(config.client_secret.expose_secret(), "hunter2-secret");
        assert_eq!(config.scopes(), ["orders:read", "orders:write"]);
        assert_eq!(config.audience.as_deref(), Some("https://orders.example.com"));
        assert_eq!(config.auth_method(), AuthMethod::ClientSecretPost);
        assert_eq!(config.default_lifetime, 60 * MINUTE);
        assert_eq!(config.max_lifetime, Some(60 * MINUTE));
        assert_eq!(config.refresh_ahead, 2 * MINUTE);
        assert_eq!(config.request_timeout, Duration::from_secs(5));
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

    /// A file in a directory of this test's own, removed with it.
    struct TempFiles(std::path::PathBuf);

    impl TempFiles {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tcc-{test}-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.0.join(name);
            fs::write(&path, contents).unwrap();
            path.display().to_string()
        }
    }

    impl Drop for TempFiles {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A self-signed client certificate and its key, as PEM files.
    fn certificate_files(files: &TempFiles) -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
        let chain = certified.cert.pem();
        let key = certified.signing_key.serialize_pem();
        (files.write("client.crt", &chain), files.write("client.key", &key))
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
        assert_eq!(config.client_key.as_ref().and_then(|k| k.key_id()), Some("k1"));

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
    }

    #[test]
    fn empty_optional_variables_count_as_unset() {
        let mut vars = REQUIRED.to_vec();
        vars.push(("ORDERS_SCOPE", ""));
        vars.push(("ORDERS_REQUEST_TIMEOUT", " "));
        let config = from_map("ORDERS", &vars).unwrap();
        assert!(config.scopes().is_empty());
        assert_eq!(config.request_timeout, crate::DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn an_empty_prefix_reads_bare_names_and_a_trailing_underscore_is_not_doubled() {
        let bare: Vec<_> = REQUIRED.iter().map(|(n, v)| (&n["ORDERS_".len()..], *v)).collect();
        assert!(from_map("", &bare).is_ok());
        assert!(from_map("ORDERS_", &REQUIRED).is_ok());
    }
}
