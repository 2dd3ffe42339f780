//! The failure contract: what a caller sees, and what the token endpoint sees, when things go
//! wrong. [DESIGN.md §2] and [§3] state it as guarantees, with the fault matrix the tests
//! drive.
//!
//! # No caller waits past a bound
//!
//! - **No caller waits longer than `request_timeout`** (10 s by default) for a token; with a
//!   [store](super::fleet), `2 × request_timeout + 2.5 s`. Whatever runtime the token request
//!   runs on.
//! - **Where the token request runs**: in a task spawned on the Tokio runtime of the caller
//!   that needed the token. A caller that gives up does not cancel it. If that runtime shuts
//!   down while the request is in flight (a client in a `static` used by several
//!   `#[tokio::test]`s), or stops being driven (a `current_thread` runtime outside
//!   `block_on`), the next caller that needs a token starts a new request on its own runtime;
//!   the layer never stays broken. A panic in a token request (in a `TokenStore` of yours, say)
//!   is a `Panicked` error, backed off like any other failure.
//! - **Outside a Tokio runtime** nothing panics: a request that must wait for a token,
//!   [`token`] and [`warm_up`] fail with `NoRuntime`; a stale token keeps being sent, without
//!   a refresh.
//! - **Every duration setting**, from zero to `Duration::MAX`, is either refused by `build()`
//!   (naming the setting) or works; a property test drives the whole builder through a token's
//!   life.
//!
//! # Errors
//!
//! A token failure is a [`TokenError`] inside the service's [`BoxError`] (downcast it; the
//! [clients](super::clients) chapter shows how) with a [`kind()`](crate::TokenError::kind), a
//! [`class()`](crate::TokenError::class), the HTTP `status()`, and `oauth_error()`,
//! `error_description()`, `error_uri()` (Apigee's `ErrorCode` / `Error` too). The class is:
//!
//! - **transient**: connect, timeout, connection lost, 5xx, 429, a token that arrived already
//!   expired;
//! - **rejected**: an RFC 6749 `error` such as `invalid_client`, another 4xx, a redirect, or a
//!   success that is not a usable token.
//!
//! Text from the network is truncated to 200 characters and stripped of control characters.
//!
//! # Backoff, and answering from the last error
//!
//! After a failure the cache backs off before the next token request: exponentially, 1 s
//! doubling to 60 s for transient failures and 5 s doubling to 5 min for rejections, each wait
//! drawn at random between half and all of its step (the random half spreads a fleet that
//! failed together; the fixed half means no draw retries at once, as "full" jitter's
//! `[0, step]` can), and never sooner than a `Retry-After` (seconds or HTTP date, capped at one
//! hour). A transient failure holds back the layer's token endpoint for all of its tokens;
//! a rejection stays with its token.
//!
//! Meanwhile, requests that need a new token fail at once with the last error instead of each
//! asking again: with the endpoint answering `503` and no usable token, 10,000 requests over a
//! minute make 6 or 7 token requests ([`tests/outage.rs`]). A success forgets the failures; no
//! error disables refreshing for good.
//!
//! A failed background refresh never evicts a token that is still usable: requests keep it
//! until `usable_until` (with a `warn` in the log) while the refresh is retried on the backoff
//! schedule. When the endpoint rejects the client and a rotating credential has changed since,
//! the request goes out at once ([authentication](super::authentication#credentials-that-rotate)).
//!
//! # A `401` from the API
//!
//! A `401` to a request that carried our token drops exactly that token (tokens are numbered,
//! so a late `401` never evicts a newer one), at most once per `invalidation_interval` (5 s);
//! the next request waits for a new token. Any `401` counts, with or without
//! `WWW-Authenticate: Bearer error="invalid_token"`. An API that rejects every token thus costs
//! one token request per interval, not one per request. A `401` from another origin than the
//! one the token went to (after a redirect) teaches nothing, and one to the caller's own
//! `Authorization` is ignored.
//!
//! **Resending a rejected request** is opt-in, for bodies that can be replayed (`B: Clone`),
//! with the [`RetryUnauthorized`] policy of `tower::retry`, outside the layer:
//!
//! ```no_run
//! # use http_body_util::Full;
//! # use hyper::body::Bytes;
//! # use hyper_util::client::legacy::Client;
//! # use hyper_util::rt::TokioExecutor;
//! use tower::retry::RetryLayer;
//! use tower::ServiceBuilder;
//! use tower_client_credentials::{ClientCredentialsLayer, Config, RetryUnauthorized};
//!
//! # let config = Config::builder("https://auth.example.com/token", "id", "secret").build()?;
//! # let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let api = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryUnauthorized::new())) // resend once with the new token
//!     .layer(ClientCredentialsLayer::new(config))
//!     .service(client);
//! # let _ = api;
//! # Ok::<(), tower_client_credentials::BoxError>(())
//! ```
//!
//! It resends once, and only when the `401` really replaced the token. Services with streaming
//! bodies (hyper's `Incoming`, tonic's) use the layer without it. The reqwest middleware
//! resends by itself when it can ([clients](super::clients#reqwest-through-reqwest-middleware)).
//!
//! # What the token endpoint may answer
//!
//! Responses are parsed leniently where real servers differ: `expires_in` as a number or a
//! numeric string (Apigee Edge, Azure AD v1), `token_type` `bearer` in any case, `BearerToken`
//! or absent. They are strict where safety needs it:
//!
//! - the token must be printable ASCII without spaces (never a header injection); one longer
//!   than 8 KiB (a header most servers refuse) is `InvalidAccessToken`;
//! - a 200 with an `error` is a failure;
//! - a negative or non-numeric `expires_in` is `InvalidExpiresIn`; a huge one (10¹²) is capped
//!   at a year; a token that is no longer usable when its answer arrives (an endpoint slower
//!   than the token's lifetime) is `ExpiredOnArrival`, transient;
//! - bodies are read up to 1 MiB: a larger success body is `BodyTooLarge`, a larger error body
//!   is cut there and keeps its status and `Retry-After`;
//! - a body that is not JSON is quoted in the error, shortened to 200 characters, unless it is
//!   a success body that may contain a token (`access_token=...`), which is withheld;
//! - redirects are not followed, and a `3xx` is a rejection ([security](super::security#redirects)).
//!
//! [`token`]: crate::ClientCredentialsLayer::token
//! [`warm_up`]: crate::ClientCredentialsLayer::warm_up
//! [`TokenError`]: crate::TokenError
//! [`BoxError`]: crate::BoxError
//! [`RetryUnauthorized`]: crate::RetryUnauthorized
//! [DESIGN.md §2]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#2-single-flight
//! [§3]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#3-failures
//! [`tests/outage.rs`]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/tests/outage.rs
