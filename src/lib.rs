//! OAuth 2.0 machine-to-machine tokens for any Tower HTTP or gRPC client: client credentials
//! (RFC 6749 §4.4), token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1).
//!
//! [`ClientCredentialsLayer`] wraps a service (hyper-util's client, a tonic `Channel`, anything
//! that is `Service<http::Request<B>>`), gets an access token from the authorization server's
//! token endpoint, and adds `Authorization: Bearer <token>` to every request.
//!
//! ```no_run
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_client_credentials::{ClientCredentialsLayer, Config};
//!
//! # async fn run() -> Result<(), tower_client_credentials::BoxError> {
//! let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
//!     .scope("read write")
//!     .build()?;
//! let layer = ClientCredentialsLayer::new(config);
//! layer.warm_up().await?; // optional: fail now if the credentials are wrong
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let mut api = ServiceBuilder::new().layer(layer).service(client);
//! let request = http::Request::get("http://api.example.com/things").body(Empty::new())?;
//! let response = api.ready().await?.call(request).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! The [guide] takes it from there: stacks with tonic and reqwest, the token's lifecycle, what
//! happens on failures, every setting, recipes for Entra ID, Auth0, Okta and Keycloak, and
//! [grants](guide::grants) beyond client credentials (Google Cloud, on behalf of a user).
//!
//! # What it does for you
//!
//! - **One token request at a time, whatever the load**: the token is cached, and however
//!   many requests need a new one at once, one token request is made and all of them wait for
//!   it (single flight; 10,000 cold requests made 1 token request in every run of
//!   [BENCHMARKS.md §4]). It runs in its own task, so a caller that gives up does not cancel it
//!   for the others.
//! - **No stall at rollover**: a background refresh starts before the token expires
//!   (`refresh_ahead`, 5 minutes by default, capped at half the token's lifetime, jittered),
//!   while requests keep using the current token. Requests wait only when there is no usable
//!   token at all. So under steady traffic a token is replaced once per refresh: about once per
//!   lifetime for tokens of an hour or more, twice for tokens of 10 minutes or less
//!   ([guide::lifecycle] has the timeline and the figures).
//! - **A hot path like a static header**: with a usable token, a request costs one atomic
//!   load, a clock read, a reference-counted header clone, an insert, and an `Arc` clone with
//!   which the response reports a `401`. No lock, no allocation. Through hyper-util's pooled
//!   client on loopback it sends 97.9 to 99.5 % of the requests per second of tower-http's
//!   `SetRequestHeader` with a fixed token ([BENCHMARKS.md §1]).
//! - **Failures that stay small**: after a failed token request the cache backs off
//!   (exponentially, with jitter, honouring `Retry-After`) and answers with that error at once
//!   meanwhile, so an outage of the token endpoint never turns into a flood of token requests.
//!   Errors are a [`TokenError`] inside the service's [`BoxError`]: downcast it to see the
//!   [kind](TokenError::kind), [class](TokenError::class), HTTP status and RFC 6749 fields. A
//!   `401` from the API drops the token it rejected (at most once per `invalidation_interval`),
//!   and [`RetryUnauthorized`] can resend such a request once with the new token
//!   ([guide::failures]).
//! - **Secrets stay secret**: the client secret and tokens never appear in `Debug`, errors or
//!   logs; the header is marked sensitive; token URLs must be `https` (loopback aside); a request
//!   that already carries `Authorization` is left alone ([guide::security]).
//! - **Real servers as they are**: `expires_in` as a string (Apigee Edge, Azure AD v1),
//!   `token_type` `BearerToken` or any case of `bearer`, Apigee's error format; RFC 6749 §2.3.1
//!   form-encoding of Basic credentials ([guide::providers] has a recipe per server).
//! - **Beyond shared secrets**: mutual TLS with a [`ClientCertificate`], signed client
//!   assertions (`private_key_jwt` with a `ClientKey`, `client_secret_jwt`; feature `jwt`),
//!   credentials that rotate in files, and the token endpoint found from the issuer by
//!   [`Config::discover`] ([guide::authentication]).
//! - **Several tokens from one layer**: [routes](ConfigBuilder::route) give an origin (or a
//!   path under it) its own scopes, audience or resources, and a [`TokenParams`] in a
//!   request's extensions names its own; each distinct token has its own cache entry, at most
//!   [`max_cached_tokens`](ConfigBuilder::max_cached_tokens) of them ([guide::several_tokens]).
//! - **reqwest too** (feature `reqwest-middleware`): `layer.reqwest_middleware()` is a
//!   reqwest-middleware `Middleware` on the layer's own cache, so a reqwest client shares the
//!   token of the Tower clients; it resends a request once after a `401` when it can
//!   ([guide::clients]).
//! - **A fleet, DPoP, metrics**: replicas share one token through Redis (feature `redis`,
//!   [guide::fleet]); tokens bound to a key of the client's (feature `dpop`, [guide::dpop]);
//!   time series through the `metrics` facade, labelled by client id, token endpoint host and
//!   `metrics_label`, never a secret (feature `metrics`, [guide::metrics] lists the names).
//!
//! # Where to read on
//!
//! The [guide] has a chapter per subject: stacks, the lifecycle, failures, settings,
//! authentication, provider recipes, several tokens, the fleet, DPoP, metrics, security.
//! [DESIGN.md] states the guarantees; [BENCHMARKS.md] every measured figure.
//!
//! # Layout
//!
//! Each folder is a concept, and each uses only those before it: `credential` (keys,
//! certificates, secrets and assertions that rotate), `config` (every setting, and checking
//! them), `request` (the token request, discovery), `token` (the token and its lifecycle),
//! `cache` (the single flight, which token a request needs), `middleware` (the one decision
//! per request, and the Tower and reqwest front ends). [DESIGN.md §9] has the map.
//!
//! [DESIGN.md]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md
//! [DESIGN.md §9]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#9-where-it-lives
//! [BENCHMARKS.md]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md
//! [BENCHMARKS.md §1]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#1-through-a-real-client
//! [BENCHMARKS.md §4]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#4-cold-stampede

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod config;
pub mod credential;
mod error;
pub mod guide;
mod middleware;
mod request;
#[cfg(feature = "store")]
pub mod store;
mod token;

pub use cache::Stats;
#[cfg(feature = "jwt")]
pub use config::DEFAULT_ASSERTION_LIFETIME;
pub use config::{
    AuthMethod, Config, ConfigBuilder, Grant, JwtBearer, Settings, TokenExchange, TokenParams,
    DEFAULT_EXPIRY_MARGIN, DEFAULT_INVALIDATION_INTERVAL, DEFAULT_LIFETIME,
    DEFAULT_MAX_CACHED_TOKENS, DEFAULT_REFRESH_AHEAD, DEFAULT_REQUEST_TIMEOUT,
    GOOGLE_CLOUD_PLATFORM_SCOPE, GOOGLE_STS_TOKEN_URL, JWT_BEARER_ASSERTION_TYPE,
    JWT_SPIFFE_ASSERTION_TYPE,
};
pub use credential::ClientCertificate;
#[cfg(feature = "jwt")]
pub use credential::{ClientKey, SigningAlgorithm};
#[cfg(feature = "dpop")]
pub use credential::{DpopAlgorithm, DpopKey};
pub use error::{ConfigError, ErrorClass, TokenError, TokenErrorKind};
#[cfg(feature = "reqwest-middleware")]
pub use middleware::ClientCredentialsMiddleware;
pub use middleware::{
    ClientCredentials, ClientCredentialsLayer, ResponseFuture, RetryUnauthorized, ServiceBuilderExt,
};
pub use request::discovery::{DiscoveryError, DiscoveryErrorKind, ServerMetadata};
pub use token::AccessToken;

/// The error type of [`ClientCredentials`]: the inner service's error, or a [`TokenError`].
/// It is tower's own, so that a `tower::timeout` or `tower::buffer` around the layer returns
/// the same type.
pub use tower::BoxError;
