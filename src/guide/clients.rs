//! The layer in a client stack: hyper-util, tonic, reqwest through Tower or through
//! reqwest-middleware, and what a caller sees when no token can be had.
//!
//! Five examples run these stacks offline, against servers they start on loopback:
//! `cargo run --example hyper_client` (HTTP and HTTPS), `cargo run --example tonic_channel`
//! (gRPC), `cargo run --example curl -- --help` (your own server, from the shell),
//! `cargo run --example reqwest_middleware --features reqwest-middleware` and
//! `cargo run --example prometheus --features metrics`.
//!
//! # Calling, and reading errors
//!
//! ```no_run
//! # use http_body_util::Empty;
//! # use hyper::body::Bytes;
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_client_credentials::{ClientCredentialsLayer, Config, TokenError};
//!
//! # async fn run() -> Result<(), tower_client_credentials::BoxError> {
//! # let (token_url, client_id, client_secret) = ("https://auth.example.com/token", "id", "s");
//! # let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! # let request = http::Request::get("https://orders.example.com/orders").body(Empty::new())?;
//! let config = Config::builder(token_url, client_id, client_secret)
//!     .scope("orders:read")
//!     .audience("https://orders.example.com") // Auth0, Okta
//!     .build()?;                              // a ConfigError names the bad setting
//! let layer = ClientCredentialsLayer::new(config);
//! layer.warm_up().await?;                     // optional: fail at start-up on bad credentials
//!
//! let api = ServiceBuilder::new().layer(layer.clone()).service(client);
//! match api.oneshot(request).await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(error) => match TokenError::find(error.as_ref()) {
//!         Some(no_token) => eprintln!("no token: {no_token}"), // kind(), class(), status(), oauth_error()
//!         None => eprintln!("request failed: {error}"),
//!     },
//! }
//!
//! let token = layer.token().await?;           // for code outside a Tower stack
//! println!("{:?}", layer.stats());            // tokens fetched, failures, waits, stale serves
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! Clones of the layer share one token cache: wrap a hyper client and a tonic channel with the
//! same layer and they share one token. A request that already carries `Authorization` is
//! passed through untouched. [`ClientCredentials`] needs an inner service that is `Clone`
//! (hyper-util's client, a tonic `Channel`) and whose response is an `http::Response`, to see
//! `401`s.
//!
//! # hyper-util's client, over HTTP and HTTPS
//!
//! ```no_run
//! # use std::time::Duration;
//! # use http_body_util::Full;
//! # use hyper::body::Bytes;
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! # use tower::retry::RetryLayer;
//! # use tower::ServiceBuilder;
//! use tower_client_credentials::{RetryUnauthorized, ServiceBuilderExt};
//!
//! # fn run(config: tower_client_credentials::Config, tls: tokio_rustls::rustls::ClientConfig) {
//! let https = hyper_rustls::HttpsConnectorBuilder::new()
//!     .with_tls_config(tls) // or .with_native_roots()? with hyper-rustls' `native-tokio`
//!     .https_or_http()
//!     .enable_http1()
//!     .build();
//! let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https); // one pool, shared by clones
//! let api = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryUnauthorized::new())) // outside: each attempt takes the current token
//!     .concurrency_limit(32)
//!     .timeout(Duration::from_secs(5))                  // outside: waiting for a token counts
//!     .client_credentials(config)                       // or .layer(layer.clone()) to share a cache
//!     .service(client);
//! # let _ = api;
//! # }
//! ```
//!
//! The order matters. **Our layer inside `timeout`**: a request that must wait for a token
//! (cold cache, expired token) waits inside its timeout, so no caller waits longer than its
//! timeout, whatever the token endpoint does; the token request goes on in the background for
//! the others. **`retry` outside our layer**: each attempt passes through the layer again and
//! gets the token current at that moment; a retry inside it would resend the first attempt's
//! header, even after a `401` replaced that token. To follow redirects, put tower-http's
//! `FollowRedirect` outside the layer too, so that each hop passes through it.
//!
//! # tonic
//!
//! ```no_run
//! use tonic::transport::Channel;
//! use tonic_health::pb::health_client::HealthClient;
//! use tower::ServiceBuilder;
//! # use tower_client_credentials::ClientCredentialsLayer;
//!
//! # async fn run(layer: ClientCredentialsLayer) -> Result<(), tower_client_credentials::BoxError> {
//! let channel = Channel::from_static("https://orders.example.com").connect().await?;
//! let health = HealthClient::new(ServiceBuilder::new().layer(layer.clone()).service(channel));
//! # let _ = health;
//! # Ok(()) }
//! ```
//!
//! One layer (clones share a cache) can wrap a tonic channel and a hyper client: one token
//! request for both. When no token can be had, tonic reports `Code::Unknown`, with the
//! `TokenError` as the status's `source()`: `TokenError::find(&status)` finds it, and (feature
//! `tonic`) `tonic::Status::from(token_error)` is `Unauthenticated` for a rejected client and
//! `Unavailable` for what may pass. With `allowed_origin`, make the client with
//! `with_origin(svc, origin)`: clients made with `new` send a path only, and a request with no
//! origin gets no token.
//!
//! # reqwest, through Tower
//!
//! reqwest is not a Tower service, but `service_fn` makes one of it:
//!
//! ```no_run
//! use tower::ServiceBuilder;
//! use tower_client_credentials::{BoxError, ClientCredentialsLayer};
//!
//! # fn run(layer: ClientCredentialsLayer) {
//! let http = reqwest::Client::new();
//! let api = ServiceBuilder::new().layer(layer.clone()).service(tower::service_fn(
//!     move |request: http::Request<String>| {
//!         let http = http.clone();
//!         async move {
//!             let response = http.execute(reqwest::Request::try_from(request)?).await?;
//!             Ok::<_, BoxError>(http::Response::from(response))
//!         }
//!     },
//! ));
//! # let _ = api;
//! # }
//! ```
//!
//! # reqwest, through reqwest-middleware
//!
//! With the feature `reqwest-middleware`, [`ClientCredentialsLayer::reqwest_middleware`] gives
//! a middleware for reqwest-middleware's `ClientBuilder` (version 0.5, the one built on
//! reqwest 0.13, which this crate uses), on the layer's own token cache:
//!
//! ```toml
//! tower-client-credentials = { version = "0.1", features = ["reqwest-middleware"] }
//! reqwest-middleware = "0.5"
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "reqwest-middleware")]
//! # async fn run(config: tower_client_credentials::Config) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::{ClientCredentialsLayer, ClientCredentialsMiddleware};
//!
//! let layer = ClientCredentialsLayer::new(config);
//! let reqwest = reqwest::Client::builder()
//!     .redirect(ClientCredentialsMiddleware::redirect_policy()) // redirects go through ours
//!     .build()?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest)
//!     // a retry middleware (reqwest-retry), if any, goes here: before ours
//!     .with(layer.reqwest_middleware())
//!     .build();
//! let orders = client.get("https://orders.example.com/orders").send().await?;
//! // The same `layer` wraps a hyper client or a tonic channel: one token, one `stats()`.
//! # let _ = orders;
//! # Ok(()) }
//! ```
//!
//! It decides as the Tower service does, on the same cache: the token goes only to origins on
//! the `allowed_origin` list; a request with its own `Authorization` (`bearer_auth`,
//! `basic_auth`) is sent as it is; a `401` drops exactly the token that request carried. When
//! that `401` replaced the token and the request can be cloned (`reqwest::Request::try_clone`:
//! any body but a stream), it is resent once with the new token; a streaming body
//! (`Body::wrap_stream`, `Body::wrap`) gets its `401` back, and the next request carries the
//! new token. With [DPoP](super::dpop), each request carries its proof, and a `401` that asks
//! for a nonce is resent once with it. Middleware added before ours (a retry) sees each attempt
//! go through ours.
//!
//! **Build the reqwest client with [`redirect_policy()`]**: reqwest follows redirects below
//! every middleware, so no middleware sees the hops; with this policy the middleware follows
//! redirects within the origin itself, each hop with its own token and proof, and hands the
//! others back ([security](super::security#redirects) says why).
//!
//! Without a token the request fails with `reqwest_middleware::Error::Middleware`, holding the
//! `TokenError`: [`TokenError::find`](crate::TokenError::find)`(&error)` finds it. The `reqwest_middleware` example shows
//! a reqwest and a hyper client sharing one token, a resend after a `401`, and a stream that is
//! not resent.
//!
//! [`ClientCredentials`]: crate::ClientCredentials
//! [`ClientCredentialsLayer::reqwest_middleware`]: crate::ClientCredentialsLayer::reqwest_middleware
//! [`redirect_policy()`]: crate::ClientCredentialsMiddleware::redirect_policy
