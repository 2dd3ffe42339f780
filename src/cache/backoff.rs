//! Waiting after a failed token request before the next one.
//!
//! Exponential with jitter: after the `n`th failure in a row the next request waits a random
//! time in `[step/2, step]` where `step = min(cap, base · 2ⁿ⁻¹)`, and never less than the
//! endpoint's `Retry-After`. Half the step is random, enough to spread a fleet that failed
//! together; half is fixed, so that no draw retries at once ("full" jitter, `[0, step]`, can
//! pick a delay near zero, which would undo the negative caching below). Rejections (bad credentials, bad scope) back off from a higher base to a
//! higher cap than transient failures: asking again soon will not change the answer.
//!
//! Until then the cache answers requests that need a new token with the last error at once
//! (negative caching), so a down endpoint sees at most one request per backoff step whatever
//! the load. A success forgets the failures.
//!
//! Each token has its backoff, and a layer has one more for its token endpoint
//! ([`EndpointBackoff`]): a transient failure (the endpoint is down, slow or overloaded) says
//! nothing about one token, so it holds back every token of the layer, however many distinct
//! tokens requests ask for. Rejections stay with their token.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ErrorClass, TokenError, TokenErrorKind};

const TRANSIENT_BASE: Duration = Duration::from_secs(1);
const TRANSIENT_CAP: Duration = Duration::from_secs(60);
const REJECTED_BASE: Duration = Duration::from_secs(5);
const REJECTED_CAP: Duration = Duration::from_secs(5 * 60);

/// The failures since the last success, and what they imply.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    last: Option<(TokenError, Instant)>,
}

impl Backoff {
    /// The error to answer with if a token request may not be made at `now`.
    pub(crate) fn blocking(&self, now: Instant) -> Option<TokenError> {
        let (error, retry_at) = self.last.as_ref()?;
        (now < *retry_at).then(|| error.clone())
    }

    /// Records a failure at `now`; `jitter` in `[0, 1]` picks where in the step to retry.
    pub(crate) fn failed(&mut self, error: TokenError, now: Instant, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = delay(&error, self.failures, jitter);
        self.last = Some((error, now + delay));
        delay
    }

    pub(crate) fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// Whether a failure is remembered: a token forgotten with one must hand it on.
    pub(crate) fn has_failed(&self) -> bool {
        self.failures > 0
    }

    /// When the next request may be made, if a failure holds it back.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.last.as_ref().map(|(_, at)| *at)
    }
}

/// The transient failures of a layer's token endpoint, shared by all of the layer's tokens.
#[derive(Debug, Default)]
pub(crate) struct EndpointBackoff(Mutex<Backoff>);

impl EndpointBackoff {
    /// The endpoint's last transient error, while it holds every token request back.
    pub(crate) fn blocking(&self, now: Instant) -> Option<TokenError> {
        self.lock().blocking(now)
    }

    /// Records the outcome of any token request of the layer: a transient failure holds the
    /// endpoint back (with the same `jitter` as the token's own backoff, so that one token
    /// alone waits as it always did), a success frees it, and a rejection is the token's. So
    /// are two transient failures that say nothing of the endpoint: a token its grant presents
    /// that could not be had (a user's subject token that expired, or whose source hung),
    /// where the endpoint was not even asked; and a token dead on arrival (issued no longer
    /// than the user's subject token lives), where it answered.
    pub(crate) fn record(&self, outcome: Result<(), &TokenError>, now: Instant, jitter: f64) {
        match outcome {
            Ok(()) => self.lock().succeeded(),
            Err(error)
                if matches!(
                    error.kind(),
                    TokenErrorKind::GrantToken | TokenErrorKind::ExpiredOnArrival
                ) => {}
            Err(error) if error.class() == ErrorClass::Transient => {
                self.lock().failed(error.clone(), now, jitter);
            }
            Err(_) => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backoff> {
        // Nothing under the lock panics, and a `Backoff` is replaced whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long to wait after the `failures`th failure in a row, the last being `error`.
fn delay(error: &TokenError, failures: u32, jitter: f64) -> Duration {
    let (base, cap) = match error.class() {
        ErrorClass::Transient => (TRANSIENT_BASE, TRANSIENT_CAP),
        ErrorClass::Rejected => (REJECTED_BASE, REJECTED_CAP),
    };
    let step = base.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(cap);
    let jittered = step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0);
    jittered.max(error.retry_after().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn transient() -> TokenError {
        TokenError::new(TokenErrorKind::Timeout)
    }

    #[test]
    fn steps_double_up_to_the_cap() {
        let steps: Vec<_> = (1..=8).map(|n| delay(&transient(), n, 1.0).as_secs()).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(delay(&transient(), u32::MAX, 1.0), TRANSIENT_CAP);
    }

    #[test]
    fn jitter_picks_within_the_upper_half_of_the_step() {
        assert_eq!(delay(&transient(), 3, 0.0), Duration::from_secs(2));
        assert_eq!(delay(&transient(), 3, 0.5), Duration::from_secs(3));
        assert_eq!(delay(&transient(), 3, 1.0), Duration::from_secs(4));
    }

    #[test]
    fn rejections_wait_longer() {
        let rejected = TokenError::response(StatusCode::UNAUTHORIZED, None, None, None);
        assert_eq!(delay(&rejected, 1, 1.0), REJECTED_BASE);
        assert_eq!(delay(&rejected, 20, 1.0), REJECTED_CAP);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let limited = TokenError::response(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            None,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(delay(&limited, 1, 0.0), Duration::from_secs(7));
    }

    #[test]
    fn a_grant_token_that_could_not_be_had_does_not_hold_the_endpoint_back() {
        let endpoint = EndpointBackoff::default();
        let now = Instant::now();
        let expired = TokenError::about(TokenErrorKind::GrantToken, "subject_token", "expired");
        endpoint.record(Err(&expired), now, 1.0);
        assert!(endpoint.blocking(now).is_none());
        endpoint.record(Err(&transient()), now, 1.0);
        assert!(endpoint.blocking(now).is_some());
    }

    #[test]
    fn blocks_until_the_step_ends_and_a_success_forgets() {
        let mut backoff = Backoff::default();
        let now = Instant::now();
        let wait = backoff.failed(transient(), now, 1.0);
        assert!(backoff.blocking(now).is_some());
        assert!(backoff.blocking(now + wait).is_none());
        backoff.succeeded();
        assert!(backoff.blocking(now).is_none());
    }
}
