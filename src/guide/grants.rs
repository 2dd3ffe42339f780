//! Tokens by other grants than client credentials: token exchange (RFC 8693) and the JWT
//! bearer grant (RFC 7523 §2.1), with recipes for Google Cloud, Okta and Microsoft Entra.
//!
//! # Which grant
//!
//! The [`Grant`] is a setting ([`grant`](crate::ConfigBuilder::grant); `grant` in a file,
//! `ORDERS_GRANT` in the environment). Everything else works as for client credentials: one
//! token request at a time per token, refresh ahead of expiry, backoff, a `401` from the API,
//! the [store](super::fleet), [DPoP](super::dpop), [several tokens](super::several_tokens) and
//! [metrics](super::metrics).
//!
//! | grant | the request presents | for |
//! |---|---|---|
//! | client credentials (default) | the client's credential | the service's own token |
//! | [`TokenExchange`] | a subject token (and maybe an actor token), typed | a workload token for a cloud token (GCP workload identity federation), a user's token for one for the next API (Okta, Keycloak: on behalf of the user) |
//! | [`JwtBearer`] | a JWT, the assertion: from a file or a source, or signed by this crate with the client key (feature `jwt`) | Google service accounts, Salesforce, Microsoft Entra on-behalf-of |
//!
//! The client authenticates as for client credentials, with any method; a client with no
//! credential does not ([`AuthMethod::None`]), which these grants allow where the token
//! presented is the credential (Google's token service). The tokens a grant presents are read
//! for each token request: a file that the platform rewrites is used as it rotates, and when
//! the server refuses one (`invalid_grant`) that has changed since it was read, the request is
//! sent again at once with the new one (once). A refusal is `invalid_grant` (RFC 7521) or,
//! for a token exchange, `invalid_request` (RFC 8693 §2.2.2).
//!
//! **What is checked before anything is sent**: a token that is empty, a file that cannot be
//! read, or a JWT whose `exp` has passed (read, not verified) fails the token request with
//! kind [`GrantToken`](crate::TokenErrorKind::GrantToken), and [`TokenError::field`] names
//! `subject_token`, `actor_token` or `assertion`. **What is checked in the answer**: a token
//! exchange must say what it issued (`issued_token_type`), and it must be the
//! `requested_token_type` if one was asked for ([`IssuedTokenType`]); a token that is not an
//! access token (`token_type` `N_A`: an ID token, a JWT for another audience) is taken only
//! when another type was requested, and is then sent as a bearer token (Cloud Run, for
//! instance, takes ID tokens).
//!
//! # A workload token for a cloud token: Google Cloud workload identity federation
//!
//! The workload's own token (a Kubernetes service-account token projected for the pool's
//! audience, a CI job's OIDC token) is exchanged at Google's security token service:
//!
//! ```no_run
//! use tower_client_credentials::{ClientCredentialsLayer, Config};
//!
//! let config = Config::gcp_workload_identity_federation(
//!     "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/prod/providers/gke",
//!     "/var/run/secrets/tokens/gcp/token", // a projected token, rotated by the kubelet
//! )
//! .build()?;
//! let layer = ClientCredentialsLayer::new(config);
//! # Ok::<(), tower_client_credentials::ConfigError>(())
//! ```
//!
//! That is [`TokenExchange::subject_token_file`]`(file, "jwt")`, requesting an access token,
//! `audience` the provider, the `cloud-platform` scope, no client authentication, at
//! `https://sts.googleapis.com/v1/token`. The token is the federated principal's: grant it
//! access to the resources. In a file or the environment:
//!
//! ```toml
//! [gcs.auth]
//! token_url = "https://sts.googleapis.com/v1/token" # no client_id: the client does not authenticate
//! grant = "token_exchange"
//! subject_token_file = "/var/run/secrets/tokens/gcp/token"
//! subject_token_type = "jwt"
//! requested_token_type = "access_token"
//! audience = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/prod/providers/gke"
//! scope = "https://www.googleapis.com/auth/cloud-platform"
//! ```
//!
//! # A Google service account key (feature `jwt`)
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # fn run() -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{Config, GOOGLE_CLOUD_PLATFORM_SCOPE};
//!
//! let config = Config::google_service_account("/etc/orders/service-account.json")?
//!     .scope(GOOGLE_CLOUD_PLATFORM_SCOPE)
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! The key file's RS256 key signs an assertion for each token request ([`JwtBearer::signed`]):
//! `iss` the service account's email, `aud` the file's `token_uri`, the scopes in a `scope`
//! claim, valid for a minute. For domain-wide delegation, replace the grant with
//! `JwtBearer::signed().scope_claim().subject("user@example.com")`.
//!
//! # On behalf of the caller: Okta token exchange
//!
//! A gateway that received a user's access token asks Okta for a token for the next API, on
//! the user's behalf. The subject token is the request's, so the grant goes with the request,
//! in its [`TokenParams`]; the layer's own token stays the service's:
//!
//! ```no_run
//! # async fn run(users_token: String, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{Config, TokenExchange, TokenParams};
//!
//! let config = Config::builder(
//!     "https://example.okta.com/oauth2/default/v1/token",
//!     "0oa-gateway", // a service app with the Token Exchange grant enabled
//!     client_secret,
//! )
//! .scope("gateway:self")
//! .build()?;
//!
//! // For each incoming request, with the caller's bearer token:
//! let on_behalf = TokenExchange::subject_token(users_token, TokenExchange::ACCESS_TOKEN);
//! let mut request = http::Request::get("https://orders.example.com/v1/orders").body(())?;
//! request.extensions_mut().insert(
//!     TokenParams::new()
//!         .grant(on_behalf)
//!         .audience("api://orders") // the orders API's authorization server audience
//!         .scope("orders:read"),
//! );
//! # let _ = (config, request);
//! # Ok(()) }
//! ```
//!
//! Requests with the same user token share one exchanged token; each user's is a token of its
//! own, kept while there is room (at most [`max_cached_tokens`], the least recently used
//! forgotten). Keycloak's token exchange takes the same request (`audience` the target
//! client's id).
//!
//! # On behalf of the caller: Microsoft Entra
//!
//! Entra's on-behalf-of flow is the JWT bearer grant, with the user's token as the assertion
//! and `requested_token_use=on_behalf_of`:
//!
//! ```no_run
//! # async fn run(tenant: &str, users_token: String, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{AuthMethod, Config, JwtBearer, TokenParams};
//!
//! let config = Config::builder(
//!     format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
//!     "middle-tier-app-id",
//!     client_secret, // or a certificate: `client_key(..)`
//! )
//! .auth_method(AuthMethod::ClientSecretPost)
//! .scope("api://middle-tier/.default")
//! .build()?;
//!
//! let params = TokenParams::new()
//!     .grant(JwtBearer::assertion(users_token))
//!     .param("requested_token_use", "on_behalf_of")
//!     .scope("https://graph.microsoft.com/.default");
//! # let _ = (config, params);
//! # Ok(()) }
//! ```
//!
//! # Salesforce and other signed JWT bearer grants (feature `jwt`)
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # fn run(consumer_key: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientKey, Config, JwtBearer, SigningAlgorithm};
//!
//! let key = ClientKey::from_pem(std::fs::read("salesforce.key")?, SigningAlgorithm::Rs256)?;
//! let config = Config::builder_without_secret("https://login.salesforce.com/services/oauth2/token", consumer_key)
//!     .grant(JwtBearer::signed().subject("integration@example.com"))
//!     .client_key(key)
//!     .assertion_audience("https://login.salesforce.com")
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Salesforce answers without `expires_in`: the session lifetime applies, so set
//! `default_lifetime` to your org's session timeout.
//!
//! # With a store
//!
//! Replicas share a token through a [store](super::fleet) when they ask for the same one: the
//! store's key names the grant and what it presents, a token given as a value by its SHA-256
//! digest, a file by its path, a [`CredentialSource`](crate::credential::CredentialSource) of
//! yours by nothing (replicas sharing a store with one must present the same subject). A client
//! without a secret needs `store_encryption_key`.
//!
//! [`Grant`]: crate::Grant
//! [`TokenExchange`]: crate::TokenExchange
//! [`TokenExchange::subject_token_file`]: crate::TokenExchange::subject_token_file
//! [`JwtBearer`]: crate::JwtBearer
//! [`JwtBearer::signed`]: crate::JwtBearer::signed
//! [`AuthMethod::None`]: crate::AuthMethod::None
//! [`TokenError::field`]: crate::TokenError::field
//! [`IssuedTokenType`]: crate::TokenErrorKind::IssuedTokenType
//! [`TokenParams`]: crate::TokenParams
//! [`max_cached_tokens`]: crate::ConfigBuilder::max_cached_tokens
