//! The environment: [`Config::from_env`] reads every setting from `{PREFIX}_{SETTING}`
//! variables through the same serde code as a file, and [`Config::azure_workload_identity`]
//! reads the variables that Microsoft Entra workload identity sets.

use std::env::VarError;

use super::{settings, Config, ConfigBuilder, Settings};
use crate::error::ConfigError;

impl Config {
    /// Reads the configuration from environment variables: every setting of the
    /// [`Settings`] table is `{prefix}_` and its name in capitals (`ORDERS_TOKEN_URL`,
    /// `ORDERS_CLIENT_ID`, `ORDERS_REFRESH_AHEAD`, ...), its value written as in a file:
    /// durations like `30s`, `5m` or `1h 30m`, or seconds; lists separated by spaces
    /// (`ORDERS_SCOPE="orders:read orders:write"`); `ORDERS_PARAM` form-encoded
    /// (`tenant=acme&prompt=none`); keys and certificates as file paths.
    ///
    /// `{prefix}_TOKEN_URL` and `{prefix}_CLIENT_ID` are required (the client id not for a
    /// client that does not authenticate, with another grant), and `{prefix}_CLIENT_SECRET`
    /// unless a certificate or key file is given, or the grant's token is the credential. A variable that is
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
pub(super) fn from_variables(
    prefix: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<Config, ConfigError> {
    let settings = Settings::from_variables(prefix, lookup)?;
    settings.into_config().map_err(|error| settings::naming_the_variable(prefix, error))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use futures_util::FutureExt;

    use crate::config::settings::tests::settings;
    use crate::config::test_support::{certificate_files, from_map, TempFiles, MINUTE};
    use crate::config::{AuthMethod, Grant, Held};

    const REQUIRED: [(&str, &str); 3] = [
        ("ORDERS_TOKEN_URL", "https://auth.example.com/token"),
        ("ORDERS_CLIENT_ID", "orders-service"),
        ("ORDERS_CLIENT_SECRET", "hunter2-secret"),
    ];

    /// A setting, its value as text, other settings it needs, and what it shows in the
    /// `Config` built (or in the error).
    type Case = (&'static str, String, Vec<(&'static str, String)>, Check);
    type Check = fn(Result<&Config, &ConfigError>) -> bool;

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

    /// Each setting of [`Settings`], written as text in a file and in the environment, reaches
    /// the `Config`. The cases must be the fields of `Settings`: a setting added without a case
    /// here fails this test.
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
        let subject_token = files.write("subject.jwt", "a.b.c");
        let exchange = || ("grant", text("token_exchange"));
        let exchanged = || ("subject_token_file", subject_token.clone());
        let jwt_type = || ("subject_token_type", text("jwt"));
        fn exchange_of(c: &Config) -> Option<&crate::TokenExchange> {
            match &c.requested.grant {
                Grant::TokenExchange(exchange) => Some(exchange),
                _ => None,
            }
        }
        fn subject(c: &Config) -> Option<&crate::config::Presented> {
            exchange_of(c).map(|e| &e.subject)
        }

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
            ("grant", text("token_exchange"), vec![exchanged(), jwt_type()], |c| {
                c.is_ok_and(|c| matches!(c.requested.grant, Grant::TokenExchange(_)))
            }),
            ("subject_token_file", subject_token.clone(), vec![exchange(), jwt_type()], |c| {
                c.is_ok_and(|c| {
                    subject(c).is_some_and(
                        |s| matches!(&s.held, Held::File(path) if path.ends_with("subject.jwt")),
                    )
                })
            }),
            ("subject_token_type", text("id_token"), vec![exchange(), exchanged()], |c| {
                c.is_ok_and(|c| {
                    subject(c).is_some_and(|s| {
                        s.token_type.as_deref() == Some(crate::TokenExchange::ID_TOKEN)
                    })
                })
            }),
            (
                "actor_token_file",
                subject_token.clone(),
                vec![exchange(), exchanged(), jwt_type(), ("actor_token_type", text("jwt"))],
                |c| c.is_ok_and(|c| exchange_of(c).is_some_and(|e| e.actor.is_some())),
            ),
            (
                "actor_token_type",
                text("jwt"),
                vec![
                    exchange(),
                    exchanged(),
                    jwt_type(),
                    ("actor_token_file", subject_token.clone()),
                ],
                |c| {
                    c.is_ok_and(|c| {
                        exchange_of(c).and_then(|e| e.actor.as_ref()).is_some_and(|a| {
                            a.token_type.as_deref() == Some(crate::TokenExchange::JWT)
                        })
                    })
                },
            ),
            (
                "requested_token_type",
                text("access_token"),
                vec![exchange(), exchanged(), jwt_type()],
                |c| {
                    c.is_ok_and(|c| {
                        exchange_of(c).is_some_and(|e| {
                            e.requested_token_type.as_deref()
                                == Some(crate::TokenExchange::ACCESS_TOKEN)
                        })
                    })
                },
            ),
            ("assertion_file", subject_token.clone(), vec![("grant", text("jwt_bearer"))], |c| {
                c.is_ok_and(
                    |c| matches!(&c.requested.grant, Grant::JwtBearer(b) if b.assertion.is_some()),
                )
            }),
            #[cfg(feature = "jwt")]
            (
                "assertion_subject",
                text("user@example.com"),
                vec![
                    no_secret(),
                    ("grant", text("jwt_bearer")),
                    ("client_key_file", signing_key.clone()),
                    ("client_key_algorithm", text("ES256")),
                ],
                |c| {
                    c.is_ok_and(|c| {
                        c.endpoint.auth_method == AuthMethod::None
                            && matches!(&c.requested.grant, Grant::JwtBearer(b)
                                if b.claims.subject.as_deref() == Some("user@example.com"))
                    })
                },
            ),
            ("issuer", text("https://issuer.example"), vec![], |c| {
                // Known, and used only by an `assertion_audience` of `issuer`.
                c.is_ok()
            }),
            ("client_assertion_type", text("jwt-spiffe"), vec![], |c| {
                c.is_ok_and(|c| {
                    c.endpoint.client_assertion_type == crate::JWT_SPIFFE_ASSERTION_TYPE
                })
            }),
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
        assert_eq!(error.to_string(), "invalid `client_id`: ORDERS_CLIENT_ID must not be empty");
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
    fn a_client_that_does_not_authenticate_needs_no_id_in_the_environment() {
        let config = from_map(
            "GCS",
            &[
                ("GCS_TOKEN_URL", "https://sts.googleapis.com/v1/token"),
                ("GCS_GRANT", "token_exchange"),
                ("GCS_SUBJECT_TOKEN_FILE", "/var/run/secrets/tokens/gcp/token"),
                ("GCS_SUBJECT_TOKEN_TYPE", "jwt"),
                ("GCS_REQUESTED_TOKEN_TYPE", "access_token"),
                ("GCS_AUDIENCE", "//iam.googleapis.com/projects/1/locations/global/x"),
            ],
        )
        .unwrap();
        assert_eq!((config.client_id(), config.auth_method()), ("", AuthMethod::None));
        let error = from_map("GCS", &[("GCS_TOKEN_URL", "https://a.example/t")]).unwrap_err();
        assert_eq!(error.field(), "client_id", "client credentials always need one");
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
}
