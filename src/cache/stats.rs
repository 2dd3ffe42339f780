//! Counters of what the token cache has done, for dashboards and tests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of a token cache's counters, from
/// [`ClientCredentialsLayer::stats`](crate::ClientCredentialsLayer::stats).
///
/// Counts are since the layer was created and shared by all its clones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Token requests that returned a usable token.
    pub tokens_fetched: u64,
    /// Token requests that failed.
    pub token_request_failures: u64,
    /// Callers that had no usable token and waited for a token request.
    pub requests_waited: u64,
    /// Requests sent with a stale token while a refresh was due or running.
    pub stale_serves: u64,
    /// Tokens dropped because the API answered `401` to them.
    pub invalidations: u64,
    /// Requests the layer sent without a token because the `allowed_origin` list leaves their
    /// origin out, or their URI has none (a relative URI, as a tonic client made with `new`
    /// sends): the layer's, in the stats of its own token. Requests that bring their own
    /// `Authorization` are not counted: they are meant to go as they are.
    pub requests_passed_through: u64,
    /// How long the current token has until it expires; `None` if there is none.
    pub token_remaining: Option<Duration>,
}

/// The live counters. Relaxed atomics: each is an independent tally, and none is on the fresh
/// path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) tokens_fetched: AtomicU64,
    pub(crate) token_request_failures: AtomicU64,
    pub(crate) requests_waited: AtomicU64,
    pub(crate) stale_serves: AtomicU64,
    pub(crate) invalidations: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, token_remaining: Option<Duration>) -> Stats {
        Stats {
            tokens_fetched: self.tokens_fetched.load(Relaxed),
            token_request_failures: self.token_request_failures.load(Relaxed),
            requests_waited: self.requests_waited.load(Relaxed),
            stale_serves: self.stale_serves.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            requests_passed_through: 0,
            token_remaining,
        }
    }
}
