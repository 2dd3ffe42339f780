//! Several tokens from one layer: routes, and [`TokenParams`] in a request.
//!
//! A Microsoft Entra v2 token is for one resource, an Auth0 or Okta token for one audience; a
//! gateway calls many APIs with one client id. One layer serves them all: a route gives the
//! requests for an origin (or an origin and a path) their own token parameters, and a request
//! can name its own with a [`TokenParams`] in its extensions. Each distinct token request (its
//! scopes in any order, audience, resources and extra parameters) has its own cache entry: its
//! own single flight, refresh, backoff, `401` invalidation, [`stats_for`], and store key.
//!
//! # Two Entra resources from one stack
//!
//! ```no_run
//! # use http_body_util::Empty;
//! # use hyper::body::Bytes;
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! # fn run(entra_token_url: &str, client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! # let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! use tower::ServiceBuilder;
//! use tower_client_credentials::{Config, ServiceBuilderExt, TokenParams};
//!
//! let config = Config::builder(entra_token_url, client_id, client_secret)
//!     .scope("https://graph.microsoft.com/.default")                  // the layer's own token
//!     .route("https://orders.example.com", TokenParams::new().scope("api://orders-api/.default"))
//!     .route("https://api.example.com/billing", TokenParams::new().scope("api://billing/.default"))
//!     .build()?;
//! let client = ServiceBuilder::new()
//!     .client_credentials(config)
//!     .service(hyper_client);
//! // https://graph.microsoft.com/v1.0/users   -> a Graph token
//! // https://orders.example.com/orders/7      -> an orders-api token
//! // https://api.example.com/billing/invoices -> a billing token (`/billing-old` is not under it)
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! Of two routes that match, the longer path wins; a `TokenParams` in the request wins over
//! every route:
//!
//! ```no_run
//! # use tower_client_credentials::TokenParams;
//! let mut request = http::Request::get("https://orders.example.com/admin").body(())?;
//! request.extensions_mut().insert(TokenParams::new().scope("api://orders-api/Admin"));
//! # Ok::<(), http::Error>(())
//! ```
//!
//! With reqwest-middleware, `client.get(url).with_extension(TokenParams::new()...)`. Outside a
//! stack, [`token_for`]`(&params)`.
//!
//! Routes compare the request's path as servers resolve it (percent-encoded unreserved
//! characters decoded, dot segments removed), a whole segment at a time, and a path that
//! servers resolve differently takes no route ([DESIGN.md §11]).
//!
//! # Bounded
//!
//! Parameters taken from request data must not grow memory without limit: the layer keeps at
//! most `max_cached_tokens` tokens for them (default 100), and past it forgets the least
//! recently used ones that no request is using (a token is fetched again when next needed;
//! what a forgotten token learned about failures stays, so a failing endpoint is not asked
//! more often). The layer's own token and the routes' are kept for the layer's life and do not
//! count. With the `metrics` feature, each token's series carry a label of their own (its
//! scopes, audience or resources); a recorder keeps every series, so with parameters from
//! request data set the exporter's idle timeout (`PrometheusBuilder::idle_timeout`).
//! Parameters that could not be sent (a scope with a quote, a reserved name such as
//! `client_secret`) fail that request with a `TokenParams` error and send nothing; in a route
//! they are a `build()` error naming `route`.
//!
//! # Cost
//!
//! A layer without routes, whose requests carry no `TokenParams`, takes the plain path: one
//! check of an empty list and of the request's extensions, no lookup. Measured around an inner
//! service that answers at once ([BENCHMARKS.md §8], 2 vCPUs, shared): 698 instructions added
//! per request, against 714 before several tokens existed. In time, over that bare service,
//! one token added 123 ns, a matching route 233 ns (a prefix comparison and an `Arc` clone),
//! and a `TokenParams` in the request 243 ns (its key computed, a lookup under a mutex): about
//! a quarter of a microsecond, beside the tens of microseconds of a real request.
//!
//! [`TokenParams`]: crate::TokenParams
//! [`stats_for`]: crate::ClientCredentialsLayer::stats_for
//! [`token_for`]: crate::ClientCredentialsLayer::token_for
//! [DESIGN.md §11]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#11-several-tokens-from-one-layer
//! [BENCHMARKS.md §8]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#8-several-tokens-what-routes-and-request-parameters-cost
