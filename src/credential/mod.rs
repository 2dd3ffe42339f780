//! Credentials that rotate: a client secret or a client assertion read anew for token requests,
//! from a file the platform rewrites or from a [`CredentialSource`] of your own.
//!
//! On Kubernetes the credential is often a file that the platform replaces: Microsoft Entra
//! workload identity mounts a service-account token at `AZURE_FEDERATED_TOKEN_FILE` (rotated
//! at 80 % of its hour) to send as a client assertion; SPIFFE's helper writes a JWT-SVID; a
//! mounted secret changes when the secret is rotated. A client that read such a file once fails
//! hours later. [`AssertionFile`] reads the assertion for every token request;
//! [`SecretFile`] re-reads the secret at least once a minute. Both follow a file replaced by
//! an atomic rename or by Kubernetes' `..data` symlink swap, since they open it by path each
//! time.
//!
//! When the token endpoint rejects the client (`invalid_client`, `unauthorized_client`), the
//! source is asked again with `fresh` set; if it has something new, the token request is sent
//! again at once with it, rather than after the rejection backoff (once per failure, so a
//! credential that is wrong still backs off).
//!
//! ```no_run
//! use tower_client_credentials::{ClientCredentialsLayer, Config};
//!
//! // Workload identity federation: the assertion comes from a file the platform rotates.
//! let config = Config::builder_without_secret(
//!     "https://login.microsoftonline.com/my-tenant/oauth2/v2.0/token",
//!     "my-client-id",
//! )
//! .client_assertion_file("/var/run/secrets/azure/tokens/azure-identity-token")
//! .scope("https://graph.microsoft.com/.default")
//! .build()?;
//! let layer = ClientCredentialsLayer::new(config);
//! # Ok::<(), tower_client_credentials::ConfigError>(())
//! ```

mod certificate;
#[cfg(feature = "dpop")]
mod dpop_key;
mod error;
mod file;
#[cfg(feature = "jwt")]
mod key;
mod reload;

pub use certificate::ClientCertificate;
#[cfg(feature = "dpop")]
pub use dpop_key::{DpopAlgorithm, DpopKey};
pub use error::{CredentialError, CredentialErrorKind};
pub(crate) use file::{file_version, jwt_expiry, read_token_file};
pub use file::{AssertionFile, SecretFile};
#[cfg(feature = "jwt")]
pub use key::{ClientKey, SigningAlgorithm};

pub(crate) use certificate::{check_own_client, default_http_client};
#[cfg(feature = "jwt")]
pub(crate) use reload::KeyFile;
pub(crate) use reload::{CredentialFiles, Seen};

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use secrecy::SecretString;

use crate::error::ConfigError;
use tower::BoxError;

/// What a [`CredentialSource`] returns.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretString, BoxError>> + Send + 'a>>;

/// Where a client secret or a client assertion comes from, asked for each token request: a
/// Vault agent, a sidecar over HTTP, GitHub Actions' OIDC token endpoint, a file.
///
/// Give it to [`ConfigBuilder::client_secret_source`](crate::ConfigBuilder::client_secret_source)
/// (it yields the client secret) or
/// [`ConfigBuilder::client_assertion_source`](crate::ConfigBuilder::client_assertion_source)
/// (it yields a client assertion, a JWT sent as `client_assertion` with the `jwt-bearer` type).
/// An error fails that token request (a transient [`TokenError`](crate::TokenError) of kind
/// `Credential`, with your error as its source), and the cache backs off; a usable token keeps
/// serving meanwhile. A source should answer within the request timeout, which bounds it.
///
/// # Example
///
/// A client assertion from GitHub Actions' OIDC token endpoint:
///
/// ```no_run
/// use secrecy::SecretString;
/// use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
///
/// #[derive(Debug)]
/// struct GitHubActions {
///     client: reqwest::Client,
///     audience: String,
/// }
///
/// impl CredentialSource for GitHubActions {
///     fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
///         Box::pin(async move {
///             let mut url = url::Url::parse(&std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL")?)?;
///             url.query_pairs_mut().append_pair("audience", &self.audience);
///             let bearer = std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?;
///             let response = self.client.get(url).bearer_auth(bearer).send().await?;
///             let body = response.error_for_status()?.bytes().await?;
///             #[derive(serde::Deserialize)]
///             struct Answer {
///                 value: String,
///             }
///             let answer: Answer = serde_json::from_slice(&body)?;
///             Ok(SecretString::from(answer.value))
///         })
///     }
/// }
/// ```
pub trait CredentialSource: fmt::Debug + Send + Sync + 'static {
    /// The credential for the next token request. `fresh` is `true` right after the token
    /// endpoint rejected the client: read it anew, past any cache of yours, so that a rotated
    /// credential is used at once.
    fn credential(&self, fresh: bool) -> CredentialFuture<'_>;

    /// Which credential the source holds now, as a number that changes whenever it does (a
    /// file's modification time and size, a counter of yours), if the source can tell at once
    /// and without waiting; `None`, the default, if it cannot.
    ///
    /// After the token endpoint rejects the client, the cache compares this number with the
    /// one the rejected credential had, each time a caller needs a token: once it differs,
    /// the next token request goes out at once instead of after the rejection backoff. So a
    /// platform that replaces a credential moments after the server refused it (a reused
    /// assertion, a secret rotated on one side first) costs no failed requests. The file
    /// sources of this module answer it with a `stat`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
    ///
    /// #[derive(Debug)]
    /// struct Pushed {
    ///     secret: std::sync::Mutex<secrecy::SecretString>,
    ///     pushes: AtomicU64,
    /// }
    ///
    /// impl CredentialSource for Pushed {
    ///     fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
    ///         let secret = self.secret.lock().unwrap().clone();
    ///         Box::pin(std::future::ready(Ok(secret)))
    ///     }
    ///
    ///     fn version(&self) -> Option<u64> {
    ///         Some(self.pushes.load(Ordering::Relaxed))
    ///     }
    /// }
    /// ```
    fn version(&self) -> Option<u64> {
        None
    }
}

/// The contents of the PEM file a setting (`field`) names; an error naming the setting and the
/// file if it cannot be read.
pub(crate) fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::new(field, format!("`{}` cannot be read: {e}", path.display())))
}
