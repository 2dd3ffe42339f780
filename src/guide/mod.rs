//! The guide: how to use the layer, a chapter per subject. Documentation only; nothing here is
//! code to call. The [crate docs](crate) open with a first example; the
//! [README](https://github.com/tower-client-credentials/tower-client-credentials/blob/main/README.md)
//! says what the crate is for.
//!
//! | chapter | read it for |
//! |---|---|
//! | [`clients`] | the layer in a hyper-util, tonic or reqwest stack; where it goes beside `timeout` and `retry`; reading errors |
//! | [`lifecycle`] | when a token is fetched, refreshed and dropped, and how many token requests that makes |
//! | [`failures`] | what happens when the token endpoint fails, the API answers `401`, or the runtime goes away |
//! | [`settings`] | every setting, in code, in a file and in the environment |
//! | [`authentication`] | `private_key_jwt`, mutual TLS, discovery, credentials that rotate |
//! | [`grants`] | token exchange and the JWT bearer grant: Google Cloud workload identity federation and service accounts, Okta token exchange, Entra on-behalf-of |
//! | [`providers`] | recipes: Microsoft Entra ID (with a secret, a certificate, AKS workload identity), Auth0, Okta, Keycloak, Apigee, SPIFFE, GitHub Actions, a Kubernetes secret |
//! | [`several_tokens`] | one layer, several APIs: routes and `TokenParams` |
//! | [`fleet`] | one token for many replicas, through Redis or a store of yours |
//! | [`dpop`] | sender-constrained tokens (RFC 9449) |
//! | [`metrics`] | time series for Prometheus and other recorders |
//! | [`security`] | what never leaks, where the token goes, and redirects |
//!
//! # Features
//!
//! None is on by default.
//!
//! | feature | adds |
//! |---|---|
//! | `jwt` | `private_key_jwt` and `client_secret_jwt` ([authentication]), JWT bearer assertions this crate signs ([grants]); needs Rust 1.88 |
//! | `dpop` | DPoP-bound tokens ([dpop]) |
//! | `reqwest-middleware` | the layer as a reqwest-middleware `Middleware` ([clients](clients#reqwest-through-reqwest-middleware)) |
//! | `metrics` | time series through the `metrics` facade ([metrics]) |
//! | `store` | the `TokenStore` seam, to share tokens between replicas ([fleet]) |
//! | `redis` | `RedisStore`, with `store` ([fleet]) |
//!
//! # Elsewhere
//!
//! - [DESIGN.md]: what the crate guarantees, section by section, cited by the code and tests.
//! - [BENCHMARKS.md]: every performance figure, how it was measured, on which machine.
//! - [examples/]: `quickstart`, `hyper_client`, `tonic_channel`, `reqwest_middleware`,
//!   `prometheus`, `fleet`, `curl`, each against servers it starts on loopback.
//!
//! [DESIGN.md]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md
//! [BENCHMARKS.md]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md
//! [examples/]: https://github.com/tower-client-credentials/tower-client-credentials/tree/main/examples

pub mod authentication;
pub mod clients;
pub mod dpop;
pub mod failures;
pub mod fleet;
pub mod grants;
pub mod lifecycle;
pub mod metrics;
pub mod providers;
pub mod security;
pub mod settings;
pub mod several_tokens;
