//! Presets for Google Cloud: workload identity federation (an external token exchanged at
//! Google's security token service) and a service-account key file (the JWT bearer grant).
//! Each starts a [`ConfigBuilder`] with what Google's documentation spreads over several
//! pages; add the scopes, then `build()`.

use super::{Config, ConfigBuilder, TokenExchange};
#[cfg(feature = "jwt")]
use crate::error::ConfigError;

/// Google's security token service (STS), the token endpoint of workload identity federation.
pub const GOOGLE_STS_TOKEN_URL: &str = "https://sts.googleapis.com/v1/token";

/// The scope of every Google Cloud API, which IAM then narrows.
pub const GOOGLE_CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

impl Config {
    /// Starts a configuration for Google Cloud workload identity federation: the workload's
    /// own token (a Kubernetes service-account token, a GitHub Actions or GitLab OIDC token, an
    /// Azure managed identity token), written to `subject_token_file` by the platform, is
    /// exchanged (RFC 8693) at Google's security token service for a federated access token,
    /// read again for every token request as the platform rotates it.
    ///
    /// `audience` is the workload identity provider's full resource name,
    /// `//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`
    /// (the `audience` of the credential configuration file `gcloud iam
    /// workload-identity-pools create-cred-config` writes). The subject token type is `jwt`;
    /// the scope [`GOOGLE_CLOUD_PLATFORM_SCOPE`]; the client does not authenticate
    /// ([`AuthMethod::None`](crate::AuthMethod::None)): the subject token is the credential.
    ///
    /// The token is the federated principal's: grant that principal access to the resources
    /// (direct resource access). Impersonating a service account with it (the configuration
    /// file's `service_account_impersonation_url`) is a second call this preset does not make.
    ///
    /// ```
    /// use tower_client_credentials::{ClientCredentialsLayer, Config};
    ///
    /// let config = Config::gcp_workload_identity_federation(
    ///     "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/github",
    ///     "/var/run/secrets/tokens/gcp-ksa/token",
    /// )
    /// .build()?;
    /// let layer = ClientCredentialsLayer::new(config);
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn gcp_workload_identity_federation(
        audience: impl Into<String>,
        subject_token_file: impl Into<std::path::PathBuf>,
    ) -> ConfigBuilder {
        let exchange = TokenExchange::subject_token_file(subject_token_file, TokenExchange::JWT)
            .requested_token_type(TokenExchange::ACCESS_TOKEN);
        Config::builder_without_secret(GOOGLE_STS_TOKEN_URL, "")
            .grant(exchange)
            .audience(audience)
            .scope(GOOGLE_CLOUD_PLATFORM_SCOPE)
    }

    /// Starts a configuration for a Google service account from its JSON key file (`gcloud iam
    /// service-accounts keys create`): the JWT bearer grant (RFC 7523 §2.1), with an assertion
    /// this crate signs for each token request with the key's RS256 private key (`kid` its
    /// `private_key_id`), `iss` the `client_email`, `aud` the `token_uri`, and the scopes in
    /// its `scope` claim, as Google's OAuth 2.0 for server-to-server applications wants them.
    /// The file is read now. Add the scopes ([`GOOGLE_CLOUD_PLATFORM_SCOPE`], say), and for
    /// domain-wide delegation the user as the grant's subject. Feature `jwt`.
    ///
    /// ```no_run
    /// use tower_client_credentials::{Config, GOOGLE_CLOUD_PLATFORM_SCOPE};
    ///
    /// let config = Config::google_service_account("/etc/orders/service-account.json")?
    ///     .scope(GOOGLE_CLOUD_PLATFORM_SCOPE)
    ///     .build()?;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `google_service_account`: the file cannot be read, is not a
    /// service-account key (`"type": "service_account"`), lacks `client_email` or
    /// `private_key`, or its key cannot sign RS256.
    #[cfg(feature = "jwt")]
    pub fn google_service_account(
        key_file: impl AsRef<std::path::Path>,
    ) -> Result<ConfigBuilder, ConfigError> {
        let path = key_file.as_ref();
        let text = std::fs::read(path).map_err(|e| {
            ConfigError::new(
                "google_service_account",
                format!("`{}` cannot be read: {e}", path.display()),
            )
        })?;
        service_account(&text)
    }
}

/// The builder of a service-account key file's contents.
#[cfg(feature = "jwt")]
fn service_account(text: &[u8]) -> Result<ConfigBuilder, ConfigError> {
    use crate::credential::{ClientKey, SigningAlgorithm};
    use crate::JwtBearer;

    /// The fields of a key file that are used; the others (`project_id`, ...) are not.
    #[derive(serde::Deserialize)]
    struct KeyFile {
        #[serde(rename = "type")]
        kind: String,
        client_email: String,
        #[serde(deserialize_with = "super::text::secret")]
        private_key: secrecy::SecretString,
        private_key_id: Option<String>,
        token_uri: Option<String>,
    }

    let invalid = |reason: String| ConfigError::new("google_service_account", reason);
    // serde's message names the field, never its value.
    let file: KeyFile = serde_json::from_slice(text)
        .map_err(|e| invalid(format!("is not a service-account key file: {e}")))?;
    if file.kind != "service_account" {
        return Err(invalid(format!(
            "is a key file of type `{}`, not `service_account`",
            crate::error::sanitize(&file.kind, 40)
        )));
    }
    let pem = secrecy::ExposeSecret::expose_secret(&file.private_key);
    let mut key = ClientKey::from_pem(pem, SigningAlgorithm::Rs256)
        .map_err(|e| invalid(format!("`private_key`: {}", e.reason())))?;
    if let Some(key_id) = file.private_key_id {
        key = key.with_key_id(key_id);
    }
    let token_url = file.token_uri.unwrap_or_else(|| "https://oauth2.googleapis.com/token".into());
    Ok(Config::builder_without_secret(token_url, file.client_email)
        .client_key(key)
        .grant(JwtBearer::signed().scope_claim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMethod, Grant};

    #[test]
    fn workload_identity_federation_exchanges_the_file_at_sts_without_client_auth() {
        let config = Config::gcp_workload_identity_federation("//iam.example/pool", "/run/token")
            .build()
            .unwrap();
        assert_eq!(config.token_url().as_str(), GOOGLE_STS_TOKEN_URL);
        assert_eq!(config.auth_method(), AuthMethod::None);
        assert_eq!(config.requested.audience.as_deref(), Some("//iam.example/pool"));
        assert_eq!(config.scopes(), [GOOGLE_CLOUD_PLATFORM_SCOPE]);
        let Grant::TokenExchange(exchange) = &config.requested.grant else { panic!() };
        assert_eq!(exchange.subject.token_type.as_deref(), Some(TokenExchange::JWT));
        assert_eq!(exchange.requested_token_type.as_deref(), Some(TokenExchange::ACCESS_TOKEN));
    }

    #[test]
    fn the_settings_of_the_guide_make_the_same_configuration_as_the_preset() {
        let section = serde_json::json!({
            "token_url": GOOGLE_STS_TOKEN_URL,
            "grant": "token_exchange",
            "subject_token_file": "/run/token",
            "subject_token_type": "jwt",
            "requested_token_type": "access_token",
            "audience": "//iam.example/pool",
            "scope": GOOGLE_CLOUD_PLATFORM_SCOPE,
        });
        let settings: crate::Settings = serde_json::from_value(section).unwrap();
        let from_file = settings.into_config().unwrap();
        let preset = Config::gcp_workload_identity_federation("//iam.example/pool", "/run/token")
            .build()
            .unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{preset:?}"));
        assert_eq!(from_file.requested.grant, preset.requested.grant);
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn a_service_account_key_file_signs_jwt_bearer_assertions_with_its_key() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap().serialize_pem();
        let file = serde_json::json!({
            "type": "service_account",
            "project_id": "orders",
            "private_key_id": "k-1",
            "private_key": pem,
            "client_email": "orders@orders.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        let config = service_account(file.to_string().as_bytes()).unwrap().build().unwrap();
        assert_eq!(config.client_id(), "orders@orders.iam.gserviceaccount.com");
        assert_eq!(config.auth_method(), AuthMethod::None);
        let key = config.endpoint.assertion.client_key.as_ref().unwrap();
        assert_eq!(key.key_id(), Some("k-1"));
        assert!(matches!(&config.requested.grant, Grant::JwtBearer(b) if b.claims.scope_claim));
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn a_file_that_is_not_a_service_account_key_is_refused_without_echoing_it() {
        let secret_pem = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----";
        let user = serde_json::json!({ "type": "authorized_user", "client_email": "a",
            "private_key": secret_pem });
        let error = service_account(user.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.field(), "google_service_account");
        assert!(error.to_string().contains("authorized_user"), "{error}");
        let bad_key = serde_json::json!({ "type": "service_account", "client_email": "a",
            "private_key": secret_pem });
        let error = service_account(bad_key.to_string().as_bytes()).unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
        assert!(service_account(b"{\"type\":").is_err());
    }
}
