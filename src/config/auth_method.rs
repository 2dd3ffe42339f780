//! How the client proves who it is to the token endpoint: what each [`AuthMethod`] needs, and
//! which method a configuration ends up with.
//!
//! [`ConfigBuilder::build`](crate::ConfigBuilder::build) settles the method in this order:
//!
//! 1. the one given to [`auth_method`](crate::ConfigBuilder::auth_method), if any; the
//!    credentials it needs must be there;
//! 2. with a configuration from [discovery](crate::ServerMetadata), the first method of
//!    `AuthMethod::PREFERENCE` that the server lists and the credentials allow;
//! 3. otherwise the one the credentials imply: a client secret means `client_secret_basic`
//!    (the method every server supports), a `ClientKey` or a client assertion file means
//!    `private_key_jwt`, a [`ClientCertificate`](crate::ClientCertificate) alone means
//!    `tls_client_auth`. A secret and a key together are ambiguous, and refused.
//!
//! Nothing is tried and retried against the server: a wrong guess would cost a rejected token
//! request and back-off.

use std::fmt;

use crate::error::ConfigError;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3).
///
/// Never guessed: servers differ, and a wrong guess costs a rejected request. Without
/// [`ConfigBuilder::auth_method`](crate::ConfigBuilder::auth_method), the method is the one
/// the credentials imply, or after [discovery](crate::ServerMetadata) the first the server
/// lists that they fit.
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
    /// A JWT in the form body (`private_key_jwt`, RFC 7523 §2.2, OpenID Connect Core §9):
    /// signed by this crate with the client's private key, a `ClientKey` (feature `jwt`), or
    /// signed elsewhere and read from a
    /// [`client_assertion_file`](crate::ConfigBuilder::client_assertion_file) or source
    /// (workload identity federation). The server holds only the public key.
    PrivateKeyJwt,
    /// Mutual TLS with a certificate from a certificate authority the server trusts, bound to
    /// the client by its subject (`tls_client_auth`, RFC 8705 §2.1). The form carries
    /// `client_id` and no secret. Needs a [`ClientCertificate`](crate::ClientCertificate).
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered with the server
    /// (`self_signed_tls_client_auth`, RFC 8705 §2.2). Sent as [`AuthMethod::TlsClientAuth`].
    SelfSignedTlsClientAuth,
    /// No client authentication (`none`): the grant's token is the only credential (GCP's
    /// security token service, Google's service-account flow). The `client_id` is sent if it
    /// is not empty. Never with client credentials, which authenticate the client; the method
    /// a token exchange or JWT bearer grant without a client credential implies.
    None,
}

impl AuthMethod {
    /// The methods this build supports, in the order discovery picks them from those a server
    /// lists: keys and certificates before secrets, and of the secrets, `client_secret_basic`
    /// (which every server supports) first. `client_secret_jwt` comes last because servers
    /// commonly require a longer secret for it than for the others.
    pub(crate) const PREFERENCE: &'static [AuthMethod] = &[
        AuthMethod::PrivateKeyJwt,
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        #[cfg(feature = "jwt")]
        AuthMethod::ClientSecretJwt,
    ];

    /// The method's registered name (IANA "OAuth Token Endpoint Authentication Methods"), as
    /// servers list it in `token_endpoint_auth_methods_supported`: `client_secret_basic`,
    /// `private_key_jwt`, `tls_client_auth`, ...
    ///
    /// ```
    /// # use tower_client_credentials::AuthMethod;
    /// assert_eq!(AuthMethod::ClientSecretPost.as_str(), "client_secret_post");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            #[cfg(feature = "jwt")]
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::None => "none",
        }
    }

    /// The credential the method authenticates with.
    pub(crate) fn credential(self) -> Credential {
        match self {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => Credential::Secret,
            #[cfg(feature = "jwt")]
            AuthMethod::ClientSecretJwt => Credential::Secret,
            AuthMethod::PrivateKeyJwt => Credential::Assertion,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                Credential::Certificate
            }
            AuthMethod::None => Credential::Nothing,
        }
    }

    /// Whether the client authenticates with its TLS client certificate (RFC 8705 §2).
    pub(crate) fn is_mutual_tls(self) -> bool {
        self.credential() == Credential::Certificate
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a method authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The client secret, sent (Basic, form) or used to sign (`client_secret_jwt`).
    Secret,
    /// Client assertions: a private key that signs them, or a source of them.
    Assertion,
    /// A TLS client certificate.
    Certificate,
    /// Nothing: the client does not authenticate.
    Nothing,
}

/// The credentials a builder was given.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Credentials {
    /// A non-empty client secret.
    pub(crate) secret: bool,
    /// A `ClientKey`, or a source of client assertions.
    pub(crate) assertion: bool,
    /// A [`ClientCertificate`](crate::ClientCertificate).
    pub(crate) certificate: bool,
    /// An `http_client` of the user's, which may present a certificate we cannot see.
    pub(crate) own_http_client: bool,
}

impl Credentials {
    /// Whether any credential is given.
    pub(crate) fn any(self) -> bool {
        self.secret || self.assertion || self.certificate
    }

    fn allow(self, method: AuthMethod) -> bool {
        match method.credential() {
            Credential::Secret => self.secret,
            Credential::Assertion => self.assertion,
            Credential::Certificate => self.certificate,
            Credential::Nothing => true,
        }
    }

    fn describe(self) -> String {
        let given: Vec<&str> = [
            (self.secret, "a client secret"),
            (self.assertion, "a client key or assertion"),
            (self.certificate, "a client certificate"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect();
        if given.is_empty() {
            "none".to_owned()
        } else {
            given.join(", ")
        }
    }
}

/// The method a configuration uses (see the module docs for the order).
///
/// `server_lists` is the server's `token_endpoint_auth_methods_supported`, when the
/// configuration came from discovery.
pub(crate) fn choose(
    chosen: Option<AuthMethod>,
    server_lists: Option<&[String]>,
    credentials: Credentials,
) -> Result<AuthMethod, ConfigError> {
    if let Some(method) = chosen {
        return check_fits(method, credentials).map(|()| method);
    }
    if let Some(listed) = server_lists {
        return AuthMethod::PREFERENCE
            .iter()
            .copied()
            .find(|m| listed.iter().any(|l| l == m.as_str()) && credentials.allow(*m))
            .ok_or_else(|| {
                ConfigError::new(
                    "auth_method",
                    format!(
                        "the server accepts {}, and none of them fits the credentials given \
                         ({}); give other credentials, or choose with `auth_method`",
                        if listed.is_empty() { "no method".to_owned() } else { listed.join(", ") },
                        credentials.describe()
                    ),
                )
            });
    }
    match (credentials.secret, credentials.assertion, credentials.certificate) {
        (true, false, _) => Ok(AuthMethod::ClientSecretBasic),
        (false, true, _) => Ok(AuthMethod::PrivateKeyJwt),
        (false, false, true) => Ok(AuthMethod::TlsClientAuth),
        (true, true, _) => Err(ConfigError::new(
            "auth_method",
            "both a client secret and a client key or assertion are given; choose how to \
             authenticate with `auth_method`",
        )),
        _ => Err(ConfigError::new(
            "client_secret",
            "must not be empty (a client without a secret needs a `client_key`, a \
             `client_assertion_file` or a `client_certificate`)",
        )),
    }
}

/// Refuses a client assertion signed with `algorithm` (the key's, or `HS256` for
/// `client_secret_jwt`) when the server lists the algorithms it accepts and that is not one.
#[cfg(feature = "jwt")]
pub(crate) fn check_signing_algorithm(
    method: AuthMethod,
    key_algorithm: Option<&str>,
    server_accepts: &[String],
) -> Result<(), ConfigError> {
    let (field, algorithm) = match method {
        AuthMethod::PrivateKeyJwt => ("client_key", key_algorithm),
        AuthMethod::ClientSecretJwt => ("auth_method", Some("HS256")),
        _ => return Ok(()),
    };
    match algorithm {
        Some(algorithm) if !server_accepts.iter().any(|a| a == algorithm) => Err(ConfigError::new(
            field,
            format!(
                "signs `{method}` assertions with {algorithm}, and the server accepts only \
                     {} (`token_endpoint_auth_signing_alg_values_supported`)",
                server_accepts.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

fn check_fits(method: AuthMethod, credentials: Credentials) -> Result<(), ConfigError> {
    match method.credential() {
        Credential::Secret if !credentials.secret => Err(ConfigError::new(
            "client_secret",
            format!("must not be empty: `{method}` authenticates with the client secret"),
        )),
        Credential::Assertion if !credentials.assertion => Err(ConfigError::new(
            "client_key",
            format!(
                "is required by `{method}`: give one with `client_key` (feature `jwt`), or \
                 the assertions with `client_assertion_file`"
            ),
        )),
        Credential::Certificate if !credentials.certificate && !credentials.own_http_client => {
            Err(ConfigError::new(
                "client_certificate",
                format!(
                    "is required by `{method}`: give one with `client_certificate`, or an \
                     `http_client` that presents one"
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: Credentials =
        Credentials { secret: true, assertion: false, certificate: false, own_http_client: false };
    const CERTIFICATE: Credentials =
        Credentials { secret: false, assertion: false, certificate: true, own_http_client: false };

    fn listed(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn registered_names_round_trip_through_the_preference_list() {
        for method in AuthMethod::PREFERENCE {
            assert_eq!(method.to_string(), method.as_str());
        }
        assert_eq!(AuthMethod::SelfSignedTlsClientAuth.as_str(), "self_signed_tls_client_auth");
    }

    #[test]
    fn credentials_alone_imply_the_method() {
        assert_eq!(choose(None, None, SECRET), Ok(AuthMethod::ClientSecretBasic));
        assert_eq!(choose(None, None, CERTIFICATE), Ok(AuthMethod::TlsClientAuth));
        // A certificate next to a secret binds tokens to it; the secret authenticates.
        let both = Credentials { certificate: true, ..SECRET };
        assert_eq!(choose(None, None, both), Ok(AuthMethod::ClientSecretBasic));
        let none = Credentials::default();
        assert_eq!(choose(None, None, none).unwrap_err().field(), "client_secret");
    }

    #[test]
    fn a_chosen_method_needs_its_credential() {
        let error = choose(Some(AuthMethod::TlsClientAuth), None, SECRET).unwrap_err();
        assert_eq!(error.field(), "client_certificate");
        let own_client = Credentials { own_http_client: true, ..SECRET };
        assert_eq!(
            choose(Some(AuthMethod::TlsClientAuth), None, own_client),
            Ok(AuthMethod::TlsClientAuth)
        );
        let error = choose(Some(AuthMethod::ClientSecretPost), None, CERTIFICATE).unwrap_err();
        assert_eq!(error.field(), "client_secret");
    }

    #[test]
    fn a_chosen_method_wins_over_the_server_list() {
        let server = listed(&["client_secret_post"]);
        let method = choose(Some(AuthMethod::ClientSecretBasic), Some(&server), SECRET);
        assert_eq!(method, Ok(AuthMethod::ClientSecretBasic));
    }

    #[test]
    fn discovery_picks_the_strongest_listed_method_the_credentials_allow() {
        let server = listed(&["client_secret_post", "tls_client_auth", "client_secret_basic"]);
        assert_eq!(choose(None, Some(&server), SECRET), Ok(AuthMethod::ClientSecretBasic));
        let both = Credentials { certificate: true, ..SECRET };
        assert_eq!(choose(None, Some(&server), both), Ok(AuthMethod::TlsClientAuth));
        let post_only = listed(&["client_secret_post"]);
        assert_eq!(choose(None, Some(&post_only), SECRET), Ok(AuthMethod::ClientSecretPost));
    }

    #[test]
    fn discovery_without_a_fitting_method_says_what_the_server_accepts() {
        let server = listed(&["private_key_jwt", "tls_client_auth"]);
        let error = choose(None, Some(&server), SECRET).unwrap_err();
        assert_eq!(error.field(), "auth_method");
        let message = error.to_string();
        assert!(message.contains("private_key_jwt, tls_client_auth"), "{message}");
        assert!(message.contains("a client secret"), "{message}");
    }
}
