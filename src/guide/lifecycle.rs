//! When a token is fetched, refreshed and dropped, and how many token requests that makes.
//!
//! # The three windows
//!
//! A token received with lifetime `L` (its `expires_in`; without one, the time to its `exp` if
//! the access token is a JWT, else `default_lifetime`; capped by `max_lifetime` and never over
//! a year) is timed from the moment its request was sent, on Tokio's clock (so tests can pause
//! and advance it):
//!
//! ```text
//! sent            refresh_at                  usable_until   expires_at
//!  |---- fresh ------|---------- stale ------------|--- invalid ---|
//!                    one background refresh,       requests wait for the
//!                    requests keep the old token   in-flight refresh
//! ```
//!
//! - `expires_at = sent + L`
//! - `usable_until = expires_at - min(expiry_margin, L/4)`
//! - `refresh_at = expires_at - min(refresh_ahead, L/2) - jitter`, the jitter drawn for each
//!   token between zero and a tenth of that window (so replicas started together do not
//!   refresh together), never later than `usable_until`
//!
//! **The server's hints.** Microsoft Entra answers with `refresh_in` as well, the point at
//! which MSAL refreshes (half the lifetime of long tokens): when it comes before `refresh_at`,
//! it is the refresh point; it never delays one, and never brings one before half the
//! lifetime (a hint of a millisecond would otherwise make every request start a refresh). Servers that omit `expires_in` (Salesforce)
//! often issue JWT access tokens: their `exp` bounds the lifetime. The JWT's signature is not
//! verified, and cannot be: the token is the API's to verify. Its `exp` is read for timing
//! only, and a token that claims a later `exp` than it has is refused by the API like any
//! expired one (a `401`, then a new token).
//!
//! **Fresh**: the token is attached, nothing else happens. **Stale**: the token is attached,
//! and exactly one background refresh runs. **Invalid** (or no token yet): the request waits
//! for the one in-flight token request, then is sent with the token it brings or fails with its
//! error. Refresh is lazy: creating a layer or idling fetches nothing, so a client that comes
//! back after `usable_until` waits for a token. [`warm_up`] fetches one now (bad credentials
//! fail at start-up); [`token`] serves code outside a Tower stack.
//!
//! The token request runs in its own task: a caller that is dropped or times out does not
//! cancel it, and every caller waiting gets the same result, the error included. Dropping the
//! last clone of the layer (and its services) stops it. What happens when it fails is the
//! [failures](super::failures) chapter.
//!
//! # How many token requests
//!
//! However many requests are in flight, a layer makes one token request at a time for a token
//! (single flight): on a cold cache, 10,000 requests started at once made exactly **1** token
//! request in each of 15 runs ([BENCHMARKS.md §4], 50 ms endpoint latency, 2 workers).
//!
//! Under steady traffic, each token is replaced at its `refresh_at`: one token request every
//! `L - min(refresh_ahead, L/2)`, up to a tenth of that window sooner. With the defaults
//! (`refresh_ahead` 5 minutes):
//!
//! | token lifetime | refreshed after | token requests per lifetime |
//! |---|---|---|
//! | 24 h | 23 h 54.5 min – 23 h 55 min | about 1.004 |
//! | 1 h | 54.5 – 55 min | about 1.1 |
//! | 10 min | 4.5 – 5 min | 2 – 2.2 |
//! | under 10 min | 45 – 50 % of its lifetime | 2 – 2.2 |
//!
//! So "one token request per lifetime" holds only for long tokens; a token of 10 minutes or
//! less costs two. Measured: 2-second tokens under steady load (8 clients, a request every
//! 2 ms each, 7 s) took 7 token requests per run, and no request waited for a token
//! ([BENCHMARKS.md §5]). A smaller `refresh_ahead` (the quickstart's 3-second tokens use
//! 500 ms) brings short tokens to one request per lifetime, and leaves less time to retry a
//! refresh that fails before the token stops being usable.
//!
//! # Servers that hand back their current token
//!
//! Some servers, asked early, answer with the token they already issued: the GCP metadata
//! server until about 4 minutes before expiry, WSO2 until it expires. Each answer sets the
//! token's lifecycle from its own `expires_in`, and each repeat at least halves the time to the
//! next refresh, so a lifetime costs a bounded number of token requests: 3 for the GCP pattern,
//! at most 13 for WSO2's (an `expires_in` under a second means "ask again in a second"), and
//! every request still carries a valid token ([`tests/lifecycle.rs`]).
//!
//! [`warm_up`]: crate::ClientCredentialsLayer::warm_up
//! [`token`]: crate::ClientCredentialsLayer::token
//! [BENCHMARKS.md §4]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#4-cold-stampede
//! [BENCHMARKS.md §5]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/BENCHMARKS.md#5-rollover-under-steady-load
//! [`tests/lifecycle.rs`]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/tests/lifecycle.rs
