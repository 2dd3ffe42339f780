//! Sender-constrained tokens with DPoP (RFC 9449, feature `dpop`).
//!
//! A bearer token works for whoever holds it. With DPoP the token is bound to a key that only
//! the client holds: each request carries a new proof signed with it, and a stolen token is
//! useless without the key. Okta (service apps), Keycloak (26.4 and later) and Auth0 (early
//! access, `client_credentials`) issue DPoP-bound tokens, and FAPI 2.0 requires
//! sender-constrained tokens (DPoP or mutual TLS).
//!
//! ```toml
//! tower-client-credentials = { version = "0.1", features = ["dpop"] } # signs with aws-lc-rs
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "dpop")]
//! # fn run(token_url: &str, client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! # use http_body_util::Full;
//! # use hyper::body::Bytes;
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! # let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! use tower::retry::RetryLayer;
//! use tower::ServiceBuilder;
//! use tower_client_credentials::{Config, DpopAlgorithm, DpopKey, RetryUnauthorized, ServiceBuilderExt};
//!
//! let key = DpopKey::from_pem(std::fs::read("dpop.pem")?, DpopAlgorithm::Es256)?; // or DpopKey::generate(..)
//! let config = Config::builder(token_url, client_id, client_secret)
//!     .dpop(key)
//!     .build()?;
//! let api = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryUnauthorized::new())) // resends once when an API asks for a nonce
//!     .client_credentials(config)
//!     .service(client);
//! # let _ = api;
//! # Ok(()) }
//! ```
//!
//! # What is sent
//!
//! The token request carries a `DPoP` header: a `dpop+jwt` with the public key (`jwk`) in its
//! header and `jti` (128 random bits), `htm` (`POST`), `htu` (the token URL without query) and
//! `iat` as claims. The server must answer `token_type` `DPoP`: a `Bearer` answer means it
//! ignored the proof, and is an `UnsupportedTokenType` error unless `dpop_allow_bearer()` says
//! to take it (then it is sent as a bearer token, without proofs). Each API request carries
//! `Authorization: DPoP <token>` and a proof of its own: `htm` its method, `htu` its scheme,
//! host, port and path, `iat`, a new `jti`, and `ath`, the base64url SHA-256 of the token. A
//! request whose URI has no scheme and host (a tonic client made with `new`, not
//! `with_origin`) cannot be proved, and fails with a `DpopProof` error instead of being sent. A
//! request that brings its own `Authorization` is sent as it is, with no proof of ours.
//!
//! # Nonces
//!
//! A token endpoint that answers `use_dpop_nonce` with a `DPoP-Nonce` header gets the request
//! once more, at once, with that nonce, within the same `request_timeout`; the latest nonce it
//! gave goes into the next token request, so that round trip happens once. An API that answers
//! `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` has the nonce
//! kept for its origin (32 origins at most, the least recently given forgotten first) and,
//! through [`RetryUnauthorized`], the request resent once with it. That `401` is not a
//! rejection of the token, which stays; nor is one whose nonce cannot be used (over 1 KiB, or
//! characters a nonce may not hold), which goes back as it is, unsent again. A `DPoP-Nonce` on
//! any other answer replaces the origin's nonce.
//!
//! # The key
//!
//! ES256 (P-256) is the default and what every DPoP server accepts; RS256 and PS256 (RSA, 2048
//! bits or more) and EdDSA (Ed25519) also work. [`DpopKey::from_pem`] reads PKCS #8 (and SEC 1
//! for P-256, PKCS #1 for RSA); [`DpopKey::generate`] makes one for this process, as does
//! `dpop_key_algorithm` given without `dpop_key_file`. [`DpopKey::thumbprint`] is the key's RFC
//! 7638 thumbprint, the `cnf.jkt` the server binds its tokens to. Neither the key nor any proof
//! appears in `Debug`, errors or logs; the `DPoP` header is marked sensitive.
//!
//! **With a store**, every replica that shares tokens must hold the same key: a DPoP-bound token
//! is of use only with its key, so `build()` refuses a generated key next to `store(..)`,
//! naming `dpop` and `store`. The store's key names the key's thumbprint, so replicas with
//! another key (or none) never take such a token.
//!
//! # Cost
//!
//! A signature per request is what DPoP costs. Measured around an inner service that answers
//! at once ([BENCHMARKS.md §7], 2 vCPUs of a Xeon, shared): our layer with an ES256 key adds
//! about 22 µs per request, 1.10× the bare ES256 signature (EdDSA: about 15 µs, 1.16×). Without
//! DPoP configured, none of it runs.
//!
//! # Okta: DPoP for a service app
//!
//! ```no_run
//! # #[cfg(all(feature = "dpop", feature = "jwt"))]
//! # async fn run(client_id: &str, kid: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientKey, Config, DpopAlgorithm, DpopKey, SigningAlgorithm};
//!
//! let key = ClientKey::from_pem(std::fs::read("okta-client.pem")?, SigningAlgorithm::Rs256)?
//!     .with_key_id(kid);
//! let dpop = DpopKey::from_pem(std::fs::read("okta-dpop.pem")?, DpopAlgorithm::Es256)?;
//! let config = Config::discover("https://your-org.okta.com/oauth2/default")
//!     .await?
//!     .builder_without_secret(client_id)
//!     .client_key(key) // private_key_jwt, as in the providers chapter
//!     .dpop(dpop)
//!     .scope("orders:read")
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! In the app's settings, turn on "Require Demonstrating Proof of Possession (DPoP) header in
//! token requests". Okta asks for a nonce on the first token request (`use_dpop_nonce`); the
//! crate answers it, once. Okta's resource servers (and yours, verifying Okta's tokens) then
//! need the proof with each request, which the layer sends.
//!
//! # Keycloak: DPoP-bound tokens
//!
//! ```no_run
//! # #[cfg(feature = "dpop")]
//! # async fn run(client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{Config, DpopAlgorithm, DpopKey};
//!
//! let metadata = Config::discover("https://keycloak.example.com/realms/acme").await?;
//! let config = metadata
//!     .builder(client_id, client_secret) // or a signed JWT, as in the providers chapter
//!     .dpop(DpopKey::from_pem(std::fs::read("dpop.pem")?, DpopAlgorithm::Es256)?)
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! Keycloak 26.4 supports DPoP out of the box: in the client's "Advanced" tab, turn on "Require
//! DPoP bound tokens" (`dpop_bound_access_tokens`), so that the client gets no bearer tokens at
//! all. The token comes back with `token_type` `DPoP` and `cnf.jkt` set to the key's
//! thumbprint.
//!
//! [`RetryUnauthorized`]: crate::RetryUnauthorized
//! [`DpopKey::from_pem`]: crate::DpopKey::from_pem
//! [`DpopKey::generate`]: crate::DpopKey::generate
//! [`DpopKey::thumbprint`]: crate::DpopKey::thumbprint
//! [BENCHMARKS.md §7]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#7-dpop-the-proof-against-the-bare-signature
