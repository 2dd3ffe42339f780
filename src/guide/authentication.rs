//! How the client proves itself: a secret, a signed JWT, a TLS certificate, or a credential
//! that the platform rotates in a file; and discovery of the token endpoint from the issuer.
//!
//! # Beyond secrets
//!
//! A client secret is a password the server keeps too. Microsoft Entra ID, Okta, Keycloak,
//! Auth0, Ping and every FAPI deployment also take proof of a key the server never sees: a JWT
//! the client signs with its private key, or the client's TLS certificate. The method is an
//! [`AuthMethod`]:
//!
//! | `auth_method` | credential | the token request carries |
//! |---|---|---|
//! | `PrivateKeyJwt` (`private_key_jwt`, RFC 7523; feature `jwt`) | `ClientKey`: RSA (RS256, PS256) or P-256 (ES256), PEM | `client_id`, `client_assertion_type`, `client_assertion` |
//! | `ClientSecretJwt` (`client_secret_jwt`; feature `jwt`) | the client secret, HMAC SHA-256 | the same: the secret itself never travels |
//! | `TlsClientAuth`, `SelfSignedTlsClientAuth` (RFC 8705) | [`ClientCertificate`]: certificate chain and key, PEM | `client_id`; the TLS handshake authenticates |
//!
//! ```toml
//! tower-client-credentials = { version = "0.1", features = ["jwt"] } # the JWT methods; Rust 1.88
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # fn run(token_url: &str, client_id: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientKey, Config, SigningAlgorithm};
//!
//! let key = ClientKey::from_pem(std::fs::read("client.key")?, SigningAlgorithm::Es256)?;
//! let config = Config::builder_without_secret(token_url, client_id) // no secret to give
//!     .client_key(key)                                              // implies PrivateKeyJwt
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! **The assertion**: `iss` = `sub` = the client id, `aud` = the token endpoint (see [the
//! audience of client assertions](#the-audience-of-client-assertions) for the issuer), header
//! `typ` `JWT`, `iat` and `nbf` now, `exp` 60 seconds later (`assertion_lifetime(..)`), and a
//! `jti` of 128 random bits. Each token request
//! signs a new one, retries included, so servers that accept each `jti` once (they should) never
//! see one twice. `with_key_id(kid)` names the key in the header (`kid`); `with_certificate(pem)`
//! names it by its certificate's thumbprints (`x5t#S256`, `x5t`). A key that cannot sign with
//! its algorithm (an RSA key under 2048 bits, an EC key on another curve) is refused when
//! loaded.
//!
//! **Mutual TLS**: [`client_certificate`] puts the certificate into the HTTP client this crate
//! builds; [`tls_root_certificate`] adds a private CA for the token endpoint's own certificate.
//! With an [`http_client`] of yours, configure both on it and say `auth_method(TlsClientAuth)`.
//! Next to a secret or key, the certificate lets the server bind tokens to it (RFC 8705 §3).
//! When the server refuses the handshake, the error names the TLS alert, e.g. with no
//! certificate over TLS 1.3: `connection to the token endpoint https://... failed: received
//! fatal alert: CertificateRequired`.
//!
//! **Which method**: the one given to `auth_method(..)`, whose credential must be there
//! (`ConfigError` names `client_secret`, `client_key` or `client_certificate` otherwise).
//! Without it, the credential decides: a secret means `client_secret_basic`, a key
//! `private_key_jwt`, a certificate alone `tls_client_auth`; a secret and a key together are
//! refused as ambiguous.
//!
//! # The audience of client assertions
//!
//! draft-ietf-oauth-rfc7523bis (in the RFC Editor's queue since April 2026) closes an
//! audience-confusion attack (CVE-2025-27370, CVE-2025-27371): a client assertion whose `aud`
//! is an endpoint URL can be replayed by a malicious server to another one. Its rule: the
//! `aud` is the authorization server's **issuer identifier, as the sole value**, and the JWT is
//! typed `client-authentication+jwt`. No server metadata says whether a server follows it, and
//! the servers in use today differ:
//!
//! | server | `aud` it accepts | evidence |
//! |---|---|---|
//! | Microsoft Entra ID | the token endpoint, as documented; more than one value is refused (AADSTS5002741) | Microsoft's "certificate credentials" page; zitadel/oidc#887 |
//! | Okta | the token endpoint; the issuer has been refused ("must be the endpoint invoked") | Okta's service-app guide; facile-it/php-openid-client#25 |
//! | Keycloak | the issuer or the token endpoint (and other endpoint URLs), one value only from 26.2 | `JWTClientValidator`; keycloak#38830 |
//! | Auth0 | the tenant URL with its `/`, the issuer, as documented; the token endpoint too | Auth0's private-key JWT page |
//! | node-oidc-provider 8.8 (our interop tests) | the issuer, the token endpoint, or the endpoint called; only the issuer with FAPI 2.0 (v9) | `lib/shared/token_jwt_auth.js` |
//!
//! So the default stays the token endpoint, which every one of them takes today and the two
//! largest document: changing it would break working setups with Entra and Okta. For a server
//! that follows rfc7523bis (FAPI 2.0 profiles, Duende's and Connect2id's strict modes), say
//! `assertion_audience("issuer")`: the `aud` is then the [`issuer`] (discovery's, or the one
//! set), alone, and assertions are typed `client-authentication+jwt`.
//!
//! ```
//! # #[cfg(feature = "jwt")]
//! # fn run(key: tower_client_credentials::ClientKey) -> Result<(), tower_client_credentials::ConfigError> {
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder_without_secret("https://idp.example.com/oauth2/token", "orders")
//!     .client_key(key)
//!     .issuer("https://idp.example.com") // known already after discovery
//!     .assertion_audience("issuer")
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! **SPIFFE.** A JWT-SVID presented as a client assertion goes with `client_assertion_type`
//! `jwt-bearer` by default, which node-oidc-provider and Keycloak's standard JWT authenticator
//! require. Servers that implement the SPIFFE client authentication draft (Keycloak's SPIFFE
//! authenticator, from 26.4, a preview) expect
//! `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`: say
//! [`client_assertion_type("jwt-spiffe")`](crate::ConfigBuilder::client_assertion_type)
//! (`ORDERS_CLIENT_ASSERTION_TYPE=jwt-spiffe`).
//!
//! # Discovery
//!
//! Point the configuration at the issuer instead of copying URLs:
//!
//! ```no_run
//! # async fn run(client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::Config;
//!
//! let metadata = Config::discover("https://idp.example.com/realms/acme").await?;
//! let config = metadata
//!     .builder(client_id, client_secret) // or .builder_without_secret(client_id).client_key(key)
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! [`Config::discover`] reads `/.well-known/oauth-authorization-server` (RFC 8414) and then
//! `/.well-known/openid-configuration` (OpenID Connect), refuses a document whose `issuer` is
//! not the one asked for (a mix-up defence) or that has no `token_endpoint`, and hands the
//! builder the token endpoint, its mTLS alias (used with a client certificate), its issuer
//! (for an `assertion_audience` of `issuer`) and the server's
//! `token_endpoint_auth_methods_supported`. Unless `auth_method` is set, `build()` picks the
//! first of `private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth`,
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` that the server lists and
//! the credentials fit, and says what the server accepts when none fits. When the server lists
//! `token_endpoint_auth_signing_alg_values_supported`, a client assertion it would refuse (an
//! ES256 key for a server that takes RS256 and PS256) is a `build()` error naming
//! `client_key`, not a rejected token request later. [`ServerMetadata::discover`]`(issuer,
//! &client)` reads through your own `reqwest::Client`. The document is read once; discover
//! again on restart.
//!
//! # Credentials that rotate
//!
//! In production the credential is often a file that the platform replaces: Microsoft Entra
//! workload identity mounts a service-account token (rotated at 80 % of its hour), SPIFFE
//! writes a JWT-SVID, cert-manager renews a certificate in place, a mounted Kubernetes secret
//! changes when it is rotated. A client that reads such a file once fails hours later
//! (`AADSTS700024`). This crate reads them again:
//!
//! | credential | setter | read |
//! |---|---|---|
//! | client assertion | [`client_assertion_file`] | for every token request; an expired `exp` is read once more, then a `CredentialError` naming the path and the expiry |
//! | client secret | [`client_secret_file`] | at `build()` (a missing file is a `build()` error), at least once a minute, and at once when the endpoint says `invalid_client` |
//! | client certificate | [`client_certificate_files`] | at `build()`, and again when either file changes (the crate's HTTP client is rebuilt) |
//! | signing key | `client_key_file(path, algorithm)` (feature `jwt`) | at `build()`, and again when the file changes |
//! | anything else | [`client_secret_source`], [`client_assertion_source`] | your [`CredentialSource`], for every token request |
//!
//! Files replaced by an atomic rename or by Kubernetes' `..data` symlink swap both work. When
//! the token endpoint rejects the client and the source has something new, the request is sent
//! again at once with it (once, so a wrong credential still backs off); a usable token keeps
//! serving throughout, and a file that is missing mid-rotation is a transient `Credential`
//! error with backoff. With a [store](super::fleet), give `store_encryption_key`: replicas on
//! the old and the new secret must share tokens. With an `http_client` of your own, it holds
//! its certificate itself: build a new client and layer when yours is renewed.
//!
//! In a file or the environment: `client_secret_file`, `client_assertion_file`,
//! `client_certificate_file` and `client_certificate_key_file`, `client_key_file`
//! (`ORDERS_CLIENT_ASSERTION_FILE=/var/run/...`). The [providers](super::providers) chapter has
//! the recipes: Entra workload identity on AKS, SPIFFE, GitHub Actions, a Kubernetes secret.
//!
//! # Security
//!
//! `ClientKey` and [`ClientCertificate`] never show key material in `Debug`, nor do `Config`
//! and errors. An assertion is valid for a minute, and for one token request. A client without
//! a secret that shares tokens through a store needs `store_encryption_key(..)`: there is no
//! secret to derive the store's key from.
//!
//! [`AuthMethod`]: crate::AuthMethod
//! [`issuer`]: crate::ConfigBuilder::issuer
//! [`ClientCertificate`]: crate::ClientCertificate
//! [`client_certificate`]: crate::ConfigBuilder::client_certificate
//! [`tls_root_certificate`]: crate::ConfigBuilder::tls_root_certificate
//! [`http_client`]: crate::ConfigBuilder::http_client
//! [`Config::discover`]: crate::Config::discover
//! [`ServerMetadata::discover`]: crate::ServerMetadata::discover
//! [`client_assertion_file`]: crate::ConfigBuilder::client_assertion_file
//! [`client_secret_file`]: crate::ConfigBuilder::client_secret_file
//! [`client_certificate_files`]: crate::ConfigBuilder::client_certificate_files
//! [`client_secret_source`]: crate::ConfigBuilder::client_secret_source
//! [`client_assertion_source`]: crate::ConfigBuilder::client_assertion_source
//! [`CredentialSource`]: crate::credential::CredentialSource
