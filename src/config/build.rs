//! Checking every setting: [`ConfigBuilder::build`] resolves the builder's settings into a
//! [`Config`] or names the first unusable one, with the checks it shares with `TokenParams`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use super::auth_method::{self, Credentials};
use super::origin::Origin;
use super::*;
use crate::credential::{
    check_own_client, default_http_client, AssertionFile, CredentialFiles, CredentialSource,
    SecretFile,
};
use crate::error::ConfigError;

impl ConfigBuilder {
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
            grant,
        } = self;
        let grant = grant::settle(grant, &settings)?;
        // Only a client that does not authenticate may go without an id, and client
        // credentials always authenticate: named before the credentials it would have.
        if grant == Grant::ClientCredentials && settings.client_id.is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
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
        // A key that signs the grant's assertions is not, by itself, a client credential.
        let key_signs_grant =
            matches!(&grant, Grant::JwtBearer(bearer) if bearer.assertion.is_none());
        #[cfg(feature = "jwt")]
        if key_signs_grant && !has_key {
            return Err(ConfigError::new(
                "client_key",
                "is required to sign the assertions of `JwtBearer::signed()` (or give an \
                 `assertion_file`)",
            ));
        }
        let credentials = Credentials {
            secret: fixed_secret || client_secret_source.is_some(),
            // Unless `private_key_jwt` is chosen: then the one key signs both.
            assertion: (has_key
                && (!key_signs_grant || settings.auth_method == Some(AuthMethod::PrivateKeyJwt)))
                || client_assertion_source.is_some(),
            certificate: client_certificate.is_some(),
            own_http_client: http_client.is_some(),
        };
        let auth_method = match settings.auth_method {
            Some(AuthMethod::None) if grant == Grant::ClientCredentials => {
                return Err(ConfigError::new(
                    "auth_method",
                    "`none` cannot get a token with client credentials, which authenticate \
                     the client; it is for token exchange and the JWT bearer grant",
                ))
            }
            Some(AuthMethod::None) => AuthMethod::None,
            // Other grants present a token of their own: a client without a credential
            // does not authenticate.
            None if grant != Grant::ClientCredentials && !credentials.any() => AuthMethod::None,
            chosen => auth_method::choose(
                chosen,
                discovered.as_ref().map(|d| d.auth_methods.as_slice()),
                credentials,
            )?,
        };
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
        if !(auth_method == AuthMethod::None && settings.client_id.is_empty()) {
            check_client_id(&settings.client_id, auth_method, form_encode_basic_credentials)?;
        }
        let issuer = settings.issuer.clone().or_else(|| discovered.map(|d| d.issuer));
        if issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err(ConfigError::new("issuer", "must not be empty"));
        }
        let client_assertion_type = assertion_type(settings.client_assertion_type.as_deref())?;
        #[cfg(feature = "jwt")]
        let (assertion_audience, rfc7523bis) = {
            if assertion_lifetime < Duration::from_secs(1) {
                return Err(ConfigError::new("assertion_lifetime", "must be at least one second"));
            }
            match settings.assertion_audience.as_deref().map(str::trim) {
                Some("") => {
                    return Err(ConfigError::new("assertion_audience", "must not be empty"))
                }
                Some("issuer") => match issuer {
                    Some(issuer) => (Some(issuer), true),
                    None => {
                        return Err(ConfigError::new(
                            "assertion_audience",
                            "is `issuer`, and the issuer is not known: set `issuer`, or start \
                             from discovery",
                        ))
                    }
                },
                _ => (settings.assertion_audience.clone(), false),
            }
        };
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
            && routes.iter().any(|r| !allowed_origins.contains(&r.origin))
        {
            return Err(ConfigError::new(
                "route",
                "is for an origin that `allowed_origin` does not list: it would never get a token",
            ));
        }
        // Of two routes that match, the longer path is the more specific.
        routes.sort_by_key(|route| std::cmp::Reverse(route.path.len()));
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
            grant,
            scopes: settings.scope,
            audience: settings.audience,
            resources: settings.resource,
            params: settings.param,
        };
        let config = Config {
            requested,
            endpoint: Endpoint {
                token_url,
                client_id: settings.client_id,
                client_secret: settings.client_secret,
                auth_method,
                form_encode_basic_credentials,
                client_secret_source,
                client_assertion_source,
                client_assertion_type,
                #[cfg(feature = "jwt")]
                assertion: Assertion {
                    client_key,
                    audience: assertion_audience,
                    rfc7523bis,
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
        };
        if let Some(error) = config.requested.grant.unusable_by(&config.endpoint) {
            return Err(error);
        }
        let route_grants = config.selection.routes.iter().filter_map(|r| r.params.grant.as_ref());
        if let Some(error) = route_grants.filter_map(|g| g.unusable_by(&config.endpoint)).next() {
            return Err(ConfigError::new(
                "route",
                format!("has a grant this client cannot use: {}", error.reason()),
            ));
        }
        Ok(config)
    }
}

/// The `client_assertion_type` URN of the setting: `jwt-bearer` (the default), `jwt-spiffe`,
/// or a URN given whole.
fn assertion_type(setting: Option<&str>) -> Result<String, ConfigError> {
    match setting.map(str::trim) {
        None | Some("jwt-bearer") => Ok(JWT_BEARER_ASSERTION_TYPE.to_owned()),
        Some("jwt-spiffe") => Ok(JWT_SPIFFE_ASSERTION_TYPE.to_owned()),
        Some(urn) if urn.starts_with("urn:") && !urn.chars().any(char::is_whitespace) => {
            Ok(urn.to_owned())
        }
        Some(_) => Err(ConfigError::new(
            "client_assertion_type",
            "must be `jwt-bearer`, `jwt-spiffe` or a URN",
        )),
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
pub(crate) fn check_scope(scope: &str) -> Result<(), ConfigError> {
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
pub(crate) fn check_resource(resource: &str) -> Result<(), ConfigError> {
    match Url::parse(resource) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        Ok(_) => Err(ConfigError::new("resource", "must not contain a fragment")),
        Err(e) => Err(ConfigError::new("resource", format!("not an absolute URI ({e})"))),
    }
}

/// The form parameters this crate sets: the request's, the client's and the grants'.
const RESERVED_PARAMS: [&str; 14] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "audience",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "assertion",
];

pub(crate) fn check_param_name(name: &str) -> Result<(), ConfigError> {
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
    use super::*;
    #[cfg(feature = "store")]
    use crate::config::test_support::TempFiles;
    use crate::config::test_support::{builder, field_of};
    use crate::credential::ClientCertificate;

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
    fn a_grant_the_client_cannot_use_is_refused_for_the_layer_and_for_a_route() {
        let exchange = crate::TokenExchange::subject_token("user-token", "access_token");
        let no_credential = || {
            Config::builder_without_secret("https://idp.example/token", "c").grant(exchange.clone())
        };
        assert_eq!(no_credential().build().unwrap().auth_method(), AuthMethod::None);
        let client_credentials = TokenParams::new().grant(Grant::ClientCredentials);
        let error = no_credential().route("https://api.example", client_credentials).build();
        let error = error.unwrap_err();
        assert_eq!(error.field(), "route");
        assert!(error.to_string().contains("authenticate the client"), "{error}");
        let error = builder("https://idp.example/token").auth_method(AuthMethod::None).build();
        assert_eq!(field_of(error), "auth_method");
        #[cfg(feature = "jwt")]
        {
            let signed = TokenParams::new().grant(crate::JwtBearer::signed());
            let error = builder("https://idp.example/token").route("https://api.example", signed);
            assert!(error.build().unwrap_err().to_string().contains("client_key"));
            let error = builder("https://idp.example/token").grant(crate::JwtBearer::signed());
            assert_eq!(field_of(error.build()), "client_key");
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
}
