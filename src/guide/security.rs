//! What never leaks, where the token goes, and redirects. [DESIGN.md §5] states it as
//! guarantees.
//!
//! - **Redaction.** The client secret is a `secrecy::SecretString`; the Basic credentials,
//!   `Authorization` and `DPoP` headers are marked sensitive; `Debug` of every type redacts
//!   them; errors and log events, at any level, never contain them. [`AccessToken::secret`] is
//!   the one way out.
//! - **https.** Token URLs must be `https`, except on loopback (`localhost`, `127.0.0.0/8`,
//!   `::1`), unless `danger_allow_plain_http()` is called; user info in the URL is refused.
//! - **The caller's `Authorization` wins.** A request that already has one is sent as it is,
//!   without waiting for a token; its `401` invalidates nothing.
//! - **Origin allow-list.** With `allowed_origin(..)`, the token goes only to requests whose
//!   scheme, host and port are listed; others, and requests with a relative URI (a tonic client
//!   made with `new` instead of `with_origin`), pass through without it: counted in
//!   `Stats::requests_passed_through` and the metric `oauth.client.requests_passed_through`,
//!   logged at `debug`, and a `warn` the first time and then at most once a minute.
//!
//! # Redirects
//!
//! **Of token requests.** The crate's own HTTP client follows no redirects, and a `3xx` from the
//! token endpoint is a rejected error: a `307` or `308` would send the form body to another
//! host, and with `client_secret_post` that body holds the secret (with the JWT methods, a
//! valid assertion). If you give your own [`http_client`], build it with
//! `redirect(reqwest::redirect::Policy::none())`.
//!
//! **Of API requests, through Tower.** A Tower client answers for the URI it was given; put
//! tower-http's `FollowRedirect` outside the layer so that each hop passes through it and gets
//! the token (and proof) for its own URL.
//!
//! **Of API requests, through reqwest-middleware.** reqwest follows redirects below every
//! middleware, copying each header but `Authorization`, `Cookie`, `Proxy-Authorization` and
//! `WWW-Authenticate` to the next hop, and no middleware sees the hops: with reqwest's default
//! policy a [DPoP](super::dpop) proof reaches another origin, and within the origin a proof
//! made for another URL or a route's token reaches another path. Build the client with
//! [`ClientCredentialsMiddleware::redirect_policy`]: the client then follows nothing, and the
//! middleware follows redirects within the origin (at most 10) itself, each hop decided anew (a
//! request's `TokenParams` go with the hops that stay on its route; a hop to another route's
//! path takes that route's token), and hands a redirect to another origin back with its `3xx`.
//! Nothing of ours reaches a URL it was not made for (`tests/redirects.rs`). Whatever the
//! policy, an answer is judged (a `401`, a nonce) only if it came from the origin the token
//! went to.
//!
//! [`AccessToken::secret`]: crate::AccessToken::secret
//! [`http_client`]: crate::ConfigBuilder::http_client
//! [`ClientCredentialsMiddleware::redirect_policy`]: crate::ClientCredentialsMiddleware::redirect_policy
//! [DESIGN.md §5]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#5-security
