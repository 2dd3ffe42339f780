//! When a token is fresh, stale, and no longer usable.
//!
//! A token received with lifetime `L` (its `expires_in`, or the configured default, capped by
//! `max_lifetime`) is timed from the moment its request was *sent*, on Tokio's clock:
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
//! - `refresh_at = expires_at - min(refresh_ahead, L/2) - jitter`, the jitter random in
//!   `[0, window/10]` so that replicas started together do not refresh together; never later
//!   than `usable_until`.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Lifetimes, LIFETIME_CEILING};

/// `now + after`, with `after` capped at [`LIFETIME_CEILING`]: a deadline from any setting,
/// `Duration::MAX` included, without overflow.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now + after.min(LIFETIME_CEILING)
}

/// When a token stops being fresh, and when it stops being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifecycle {
    pub(crate) refresh_at: Instant,
    pub(crate) usable_until: Instant,
    pub(crate) expires_at: Instant,
}

/// Where a token stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Send it; nothing else to do.
    Fresh,
    /// Send it, and make sure a background refresh is running.
    Stale,
    /// Do not send it; wait for a new one.
    Invalid,
}

/// How lifetimes are derived from a token response: by the lifetime settings of a
/// configuration.
impl Lifetimes {
    /// The lifetime to use for a token whose response said `expires_in`.
    pub(crate) fn lifetime(&self, expires_in: Option<Duration>) -> Duration {
        let lifetime = expires_in.unwrap_or(self.default_lifetime);
        lifetime.min(self.max_lifetime.unwrap_or(LIFETIME_CEILING)).min(LIFETIME_CEILING)
    }

    /// The lifecycle of a token of `lifetime` whose request was sent at `sent`. `jitter` in
    /// `[0, 1]` picks how much earlier than the plain refresh point to refresh. The server's
    /// `refresh_in` (Microsoft Entra's) moves the refresh earlier, never later, and never
    /// before half the lifetime: a hint of a millisecond would otherwise make every request
    /// start a refresh.
    pub(crate) fn lifecycle(
        &self,
        sent: Instant,
        lifetime: Duration,
        refresh_in: Option<Duration>,
        jitter: f64,
    ) -> Lifecycle {
        let expires_at = sent + lifetime;
        let usable_until = expires_at - self.expiry_margin.min(lifetime / 4);
        let window = self.refresh_ahead.min(lifetime / 2);
        let mut refresh_at = expires_at - window - window.mul_f64(jitter.clamp(0.0, 1.0) / 10.0);
        if let Some(hint) = refresh_in {
            refresh_at = refresh_at.min(sent + hint.clamp(lifetime / 2, lifetime));
        }
        Lifecycle { refresh_at: refresh_at.min(usable_until), usable_until, expires_at }
    }
}

impl Lifecycle {
    pub(crate) fn freshness(&self, now: Instant) -> Freshness {
        if now < self.refresh_at {
            Freshness::Fresh
        } else if now < self.usable_until {
            Freshness::Stale
        } else {
            Freshness::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn policy() -> Lifetimes {
        Lifetimes {
            refresh_ahead: 5 * MINUTE,
            expiry_margin: Duration::from_secs(30),
            default_lifetime: 5 * MINUTE,
            max_lifetime: None,
        }
    }

    #[test]
    fn an_hour_token_refreshes_five_minutes_early_and_stops_thirty_seconds_early() {
        let sent = Instant::now();
        let times = policy().lifecycle(sent, 60 * MINUTE, None, 0.0);
        assert_eq!(times.expires_at, sent + 60 * MINUTE);
        assert_eq!(times.usable_until, sent + 60 * MINUTE - Duration::from_secs(30));
        assert_eq!(times.refresh_at, sent + 55 * MINUTE);
    }

    #[test]
    fn jitter_refreshes_up_to_a_tenth_of_the_window_earlier() {
        let sent = Instant::now();
        let times = policy().lifecycle(sent, 60 * MINUTE, None, 1.0);
        assert_eq!(times.refresh_at, sent + 55 * MINUTE - Duration::from_secs(30));
    }

    #[test]
    fn short_lifetimes_cap_the_window_at_half_and_the_margin_at_a_quarter() {
        let sent = Instant::now();
        let times = policy().lifecycle(sent, Duration::from_secs(4), None, 0.0);
        assert_eq!(times.refresh_at, sent + Duration::from_secs(2));
        assert_eq!(times.usable_until, sent + Duration::from_secs(3));
    }

    #[test]
    fn refresh_never_comes_after_the_token_stops_being_usable() {
        let policy = Lifetimes { expiry_margin: 10 * MINUTE, refresh_ahead: MINUTE, ..policy() };
        let sent = Instant::now();
        let times = policy.lifecycle(sent, 60 * MINUTE, None, 0.0);
        assert_eq!(times.refresh_at, times.usable_until);
    }

    #[test]
    fn refresh_in_moves_the_refresh_earlier_never_later() {
        let sent = Instant::now();
        let hinted = policy().lifecycle(sent, 60 * MINUTE, Some(30 * MINUTE), 0.0);
        assert_eq!(hinted.refresh_at, sent + 30 * MINUTE);
        assert_eq!(hinted.usable_until, sent + 60 * MINUTE - Duration::from_secs(30));
        let late = policy().lifecycle(sent, 60 * MINUTE, Some(59 * MINUTE), 0.0);
        assert_eq!(late.refresh_at, sent + 55 * MINUTE);
        let tiny = policy().lifecycle(sent, 60 * MINUTE, Some(Duration::from_millis(1)), 0.0);
        assert_eq!(tiny.refresh_at, sent + 30 * MINUTE, "never before half the lifetime");
    }

    #[test]
    fn freshness_follows_the_three_windows() {
        let sent = Instant::now();
        let times = policy().lifecycle(sent, 60 * MINUTE, None, 0.0);
        assert_eq!(times.freshness(sent), Freshness::Fresh);
        assert_eq!(times.freshness(times.refresh_at), Freshness::Stale);
        assert_eq!(times.freshness(times.usable_until), Freshness::Invalid);
    }

    #[test]
    fn lifetime_falls_back_to_the_default_and_is_capped() {
        assert_eq!(policy().lifetime(None), 5 * MINUTE);
        let capped = Lifetimes { max_lifetime: Some(MINUTE), ..policy() };
        assert_eq!(capped.lifetime(Some(60 * MINUTE)), MINUTE);
        let huge = Duration::from_secs(1_000_000_000_000);
        assert_eq!(policy().lifetime(Some(huge)), LIFETIME_CEILING);
        // The ceiling keeps instant arithmetic in range.
        let _ = policy().lifecycle(Instant::now(), policy().lifetime(Some(huge)), None, 1.0);
    }
}
