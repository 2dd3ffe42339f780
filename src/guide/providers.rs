//! Recipes: a [`Config`] for each common authorization server. Each goes into a stack as the
//! [clients](super::clients) chapter shows. Token exchange and the JWT bearer grant (Google
//! Cloud, Okta token exchange, Entra on-behalf-of) are in the [grants](super::grants) chapter. DPoP recipes (Okta, Keycloak) are in the
//! [dpop](super::dpop) chapter; several APIs from one Entra app, in
//! [several tokens](super::several_tokens).
//!
//! # Microsoft Entra ID (v2 endpoint), with a secret
//!
//! ```no_run
//! # fn run(tenant_id: &str, client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{AuthMethod, Config};
//!
//! let config = Config::builder(
//!     format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"),
//!     client_id,     // the application (client) id
//!     client_secret,
//! )
//! .scope("api://orders-api/.default") // the API's App ID URI + "/.default": the app roles granted
//! .auth_method(AuthMethod::ClientSecretPost)
//! .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! A v2 token is for one resource: for two APIs, give the second a
//! [route](super::several_tokens). The v1 endpoint, `/{tenant_id}/oauth2/token`, names the API
//! with `.resource("https://orders.example.com")` instead of a scope, and sends `expires_in` as
//! a string, which is understood.
//!
//! # Microsoft Entra ID, with a certificate (feature `jwt`)
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # fn run(tenant_id: &str, client_id: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientKey, Config, SigningAlgorithm};
//!
//! let key = ClientKey::from_pem(std::fs::read("orders-client.key")?, SigningAlgorithm::Ps256)?
//!     .with_certificate(std::fs::read("orders-client.crt")?)?; // Entra finds the key by x5t#S256
//! let config = Config::builder_without_secret(
//!     format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"),
//!     client_id, // the application (client) id
//! )
//! .client_key(key)
//! .scope("api://orders-api/.default")
//! .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Upload the certificate (not the key) under the app registration's "Certificates & secrets".
//! The assertion's `aud` is the token endpoint, and `client_id` goes in the form, as Entra asks.
//!
//! # Microsoft Entra workload identity (AKS)
//!
//! The pod gets a federated service-account token in a file that the platform rotates; it is
//! read again for every token request ([authentication](super::authentication#credentials-that-rotate)).
//!
//! ```no_run
//! use tower_client_credentials::Config;
//!
//! // AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE (and AZURE_AUTHORITY_HOST)
//! let config = Config::azure_workload_identity()?
//!     .scope("https://graph.microsoft.com/.default")
//!     .build()?;
//! # Ok::<(), tower_client_credentials::ConfigError>(())
//! ```
//!
//! # Auth0
//!
//! ```no_run
//! # fn run(client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{AuthMethod, Config};
//!
//! let config = Config::builder("https://your-tenant.eu.auth0.com/oauth/token", client_id, client_secret)
//!     .audience("https://orders.example.com")    // the API identifier: required by Auth0
//!     .auth_method(AuthMethod::ClientSecretPost) // the application's "Token Endpoint Authentication Method"
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Auth0 counts (and bills) machine-to-machine tokens. Each process makes one token request per
//! refresh: with tokens of a day (Auth0's default for an API), about one a day, each refreshed
//! 5 minutes before it expires ([lifecycle](super::lifecycle#how-many-token-requests)). A
//! fleet shares one token through the [Redis store](super::fleet).
//!
//! # Okta: `private_key_jwt` (feature `jwt`)
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # async fn run(client_id: &str, kid: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientKey, Config, SigningAlgorithm};
//!
//! let key = ClientKey::from_pem(std::fs::read("okta-client.pem")?, SigningAlgorithm::Rs256)?
//!     .with_key_id(kid); // the kid of the public key registered with the app
//! let config = Config::discover("https://your-org.okta.com/oauth2/default") // the authorization server
//!     .await?
//!     .builder_without_secret(client_id)
//!     .client_key(key)
//!     .scope("orders:read")
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! In the app's "Client Credentials", choose "Public key / Private key" and add the public key.
//! Okta checks `aud` (the token endpoint) and refuses a `jti` it has seen.
//!
//! # Keycloak
//!
//! A confidential client with "Service accounts roles" on:
//!
//! ```no_run
//! # fn run(client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder(
//!     "https://keycloak.example.com/realms/acme/protocol/openid-connect/token", // Keycloak < 17: /auth/realms/...
//!     client_id,
//!     client_secret,
//! )
//! .scope("orders:read") // optional: client scopes of the realm
//! .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Keycloak accepts both `client_secret_basic` (the default here; it form-decodes the
//! credentials as RFC 6749 asks) and `client_secret_post`. Its other client authenticators
//! (feature `jwt` for the first two):
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # async fn run(client_id: &str, client_secret: &str, kid: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{AuthMethod, ClientCertificate, ClientKey, Config, SigningAlgorithm};
//!
//! let metadata = Config::discover("https://keycloak.example.com/realms/acme").await?;
//!
//! // "Signed JWT", with the client's public key or JWKS URL under "Keys":
//! let key = ClientKey::from_pem(std::fs::read("orders-client.key")?, SigningAlgorithm::Rs256)?
//!     .with_key_id(kid);
//! let signed_jwt = metadata.builder_without_secret(client_id).client_key(key).build()?;
//!
//! // "Signed JWT with client secret":
//! let secret_jwt = metadata
//!     .builder(client_id, client_secret)
//!     .auth_method(AuthMethod::ClientSecretJwt)
//!     .build()?;
//!
//! // "X509 Certificate", with Keycloak asking for client certificates
//! // (`--https-client-auth=request`); the request goes to its mTLS alias of the token endpoint:
//! let certificate = ClientCertificate::from_pem(
//!     std::fs::read("orders-client.crt")?,
//!     std::fs::read("orders-client.key")?,
//! )?;
//! let mtls = metadata
//!     .builder_without_secret(client_id)
//!     .client_certificate(certificate)
//!     .build()?;
//! # let _ = (signed_jwt, secret_jwt, mtls);
//! # Ok(()) }
//! ```
//!
//! Behind a proxy that ends TLS, the proxy must ask for the client certificate and pass it on.
//! With Keycloak's certificate from a private CA, read the metadata through a client that
//! trusts it, [`ServerMetadata::discover`]`(issuer, &client)`, and add
//! `.tls_root_certificate(ca_pem)` to the builder.
//!
//! # Apigee Edge
//!
//! `/oauth/client_credential/accesstoken?grant_type=client_credentials`, or a proxy at
//! `/oauth/accesstoken`, with Basic auth (the default). It answers `"expires_in": "3599"` as a
//! string and `"token_type": "BearerToken"`; both are understood as they come.
//!
//! ```no_run
//! # fn run(consumer_key: &str, consumer_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder("https://org-env.apigee.net/oauth/accesstoken", consumer_key, consumer_secret)
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! # Credentials in the form body, with a fixed token time
//!
//! The classic .NET setup (`TokenEndPoint`, `ClientId`, `ClientSecret`, `Scope`, `TokenTime`;
//! the [settings](super::settings#from-the-environment) chapter maps them to variables):
//!
//! ```no_run
//! # fn run(token_end_point: &str, client_id: &str, client_secret: &str, scope: &str, token_time: u64) -> Result<(), tower_client_credentials::BoxError> {
//! use std::time::Duration;
//! use tower_client_credentials::{AuthMethod, Config};
//!
//! let config = Config::builder(token_end_point, client_id, client_secret)
//!     .auth_method(AuthMethod::ClientSecretPost)
//!     .scope(scope)
//!     .token_lifetime(Duration::from_secs(token_time)) // the cap, and the lifetime without expires_in
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! # SPIFFE: a JWT-SVID from a file
//!
//! ```no_run
//! # fn run(token_url: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! // spiffe-helper writes the JWT-SVID for this audience to a file and renews it.
//! let config = Config::builder_without_secret(token_url, "spiffe://example.org/orders")
//!     .client_assertion_file("/run/spiffe/jwt_svid.token")
//!     .client_assertion_type("jwt-spiffe") // for servers of the SPIFFE draft (Keycloak's SPIFFE authenticator)
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Servers that take a JWT-SVID as an ordinary client assertion want the default
//! `client_assertion_type`, `jwt-bearer`: leave the line out for them (node-oidc-provider,
//! Keycloak's standard JWT authenticator).
//!
//! # GitHub Actions OIDC, through a credential source
//!
//! The workflow's OIDC token, asked for each token request, is the client assertion; the
//! `GitHubActions` source is the example of [`CredentialSource`], in full:
//!
//! ```no_run
//! # use tower_client_credentials::credential::{CredentialFuture, CredentialSource};
//! # #[derive(Debug)]
//! # struct GitHubActions { client: reqwest::Client, audience: String }
//! # impl CredentialSource for GitHubActions {
//! #     fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
//! #         let _ = (&self.client, &self.audience);
//! #         unimplemented!()
//! #     }
//! # }
//! # fn run(token_url: &str, client_id: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder_without_secret(token_url, client_id)
//!     .client_assertion_source(GitHubActions {
//!         client: reqwest::Client::new(),
//!         audience: "api://AzureADTokenExchange".into(),
//!     })
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! # A Kubernetes secret mounted as a volume
//!
//! ```no_run
//! # fn run(token_url: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder_without_secret(token_url, "orders-service")
//!     .client_secret_file("/var/run/secrets/orders/client-secret") // read again when rotated
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! [`Config`]: crate::Config
//! [`ServerMetadata::discover`]: crate::ServerMetadata::discover
//! [`CredentialSource`]: crate::credential::CredentialSource
