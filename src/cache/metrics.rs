//! Time series of what the token cache does, through the [`metrics`] facade (feature `metrics`).
//!
//! [`Stats`](super::Stats) is a snapshot of one layer; this records the same events, and a few
//! more, for any `metrics` recorder the application installs (Prometheus, StatsD, OpenTelemetry
//! through a bridge, ...). Without the feature, [`Metrics`] is empty and each of its methods
//! does nothing, so the calls in the cache compile to nothing.
//!
//! Names follow the OpenTelemetry conventions: dotted, durations in seconds as histograms
//! named `*.duration`, counters without a `_total` (a Prometheus exporter adds it), units in
//! the description, and `server.address` for the token endpoint's host. With
//! `metrics-exporter-prometheus` and `with_recommended_naming(true)` the dots become
//! underscores and the units and `_total` are appended:
//!
//! | metric | kind, unit | labels beyond the three below | what |
//! |---|---|---|---|
//! | `oauth.client.token_requests` | counter | `outcome`, `status_class` | requests to the token endpoint |
//! | `oauth.client.token_request.duration` | histogram, s | `outcome`, `status_class` | how long each took |
//! | `oauth.client.token_waits` | counter | | callers that had no usable token and waited |
//! | `oauth.client.token_wait.duration` | histogram, s | | how long each waited |
//! | `oauth.client.stale_serves` | counter | | requests sent with a stale token |
//! | `oauth.client.invalidations` | counter | | tokens dropped after a `401` |
//! | `oauth.client.requests_passed_through` | counter | `reason` | requests sent without a token: `allow_list` (their origin is not on it) or `relative_uri` |
//! | `oauth.client.token.expiration_timestamp` | gauge, s | | UNIX time the cached token expires |
//! | `oauth.client.store.hits` | counter | | tokens taken from the store (feature `store`) |
//! | `oauth.client.store.misses` | counter | | token requests made though a store is set |
//! | `oauth.client.store.failures` | counter | `operation`, `error.type` | store operations that failed |
//!
//! Every series has `client_id`, `server.address` (the token endpoint's host) and `token` (the
//! token parameters' short name: `metrics_label`, or the scopes, audience or resources). Never
//! a secret, a token or a form parameter. `outcome` is `ok`, `transient` or `rejected` (the
//! [`ErrorClass`](crate::ErrorClass)); `status_class` is `2xx` ... `5xx`, or `none` when the
//! endpoint did not answer.
//!
//! **Why an expiry time, not a remaining lifetime.** A recorder holds what it was last given,
//! and the remaining lifetime changes every second, between the cache's events too. The
//! gauge holds the UNIX time the token expires, so `expiration_timestamp - time()` is the
//! remaining lifetime at every scrape, exactly, also while the client is idle (Prometheus'
//! own advice: export the timestamp, not the time since or until).
//!
//! Handles are looked up at each event, never cached: the recorder installed when an event
//! happens gets it, whenever the layer was made. Events are off the fresh path (a token request,
//! a wait, a stale serve, a `401`, a store operation), so the lookup costs nothing per request.

#[cfg(feature = "metrics")]
use std::sync::{Arc, Once};
#[cfg(feature = "metrics")]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::future::Future;

#[cfg(feature = "metrics")]
use metrics::{Label, SharedString, Unit};
use tokio::time::Instant;

use crate::config::Config;
#[cfg(feature = "metrics")]
use crate::config::Requested;
use crate::error::TokenError;
#[cfg(feature = "metrics")]
use crate::error::{ErrorClass, TokenErrorKind};
use crate::request::response::TokenResponse;

/// The metric names, one place.
#[cfg(feature = "metrics")]
mod name {
    pub(super) const TOKEN_REQUESTS: &str = "oauth.client.token_requests";
    pub(super) const TOKEN_REQUEST_DURATION: &str = "oauth.client.token_request.duration";
    pub(super) const TOKEN_WAITS: &str = "oauth.client.token_waits";
    pub(super) const TOKEN_WAIT_DURATION: &str = "oauth.client.token_wait.duration";
    pub(super) const STALE_SERVES: &str = "oauth.client.stale_serves";
    pub(super) const INVALIDATIONS: &str = "oauth.client.invalidations";
    pub(super) const PASSED_THROUGH: &str = "oauth.client.requests_passed_through";
    pub(super) const TOKEN_EXPIRATION: &str = "oauth.client.token.expiration_timestamp";
    pub(super) const STORE_HITS: &str = "oauth.client.store.hits";
    pub(super) const STORE_MISSES: &str = "oauth.client.store.misses";
    pub(super) const STORE_FAILURES: &str = "oauth.client.store.failures";
}

/// Where a cache records its events: the labels of its series. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    inner: Arc<Inner>,
}

#[cfg(feature = "metrics")]
struct Inner {
    /// `client_id`, `server.address`, `token`.
    labels: [Label; 3],
    /// The descriptions (and units) are given to the recorder once, at the first event.
    described: Once,
}

impl Metrics {
    pub(crate) fn new(config: &Config) -> Self {
        #[cfg(feature = "metrics")]
        {
            let shared = |value: &str| SharedString::from_shared(Arc::<str>::from(value));
            let endpoint = &config.endpoint;
            let host = endpoint.token_url.host_str().unwrap_or_default();
            let token =
                config.metrics_label.clone().unwrap_or_else(|| default_label(&config.requested));
            let labels = [
                Label::new("client_id", shared(&endpoint.client_id)),
                Label::new("server.address", shared(host)),
                Label::new("token", shared(&token)),
            ];
            Self { inner: Arc::new(Inner { labels, described: Once::new() }) }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = config;
            Self {}
        }
    }

    /// Runs one request to the token endpoint, and records its outcome and duration.
    pub(crate) async fn token_request(
        &self,
        request: impl Future<Output = Result<TokenResponse, TokenError>>,
    ) -> Result<TokenResponse, TokenError> {
        let started = Instant::now();
        let result = request.await;
        #[cfg(feature = "metrics")]
        {
            let error = result.as_ref().err();
            let outcome = match error.map(TokenError::class) {
                None => "ok",
                Some(ErrorClass::Transient) => "transient",
                Some(ErrorClass::Rejected) => "rejected",
            };
            let mut labels = self.labels();
            labels.push(Label::from_static_parts("outcome", outcome));
            labels.push(Label::from_static_parts("status_class", status_class(error)));
            metrics::counter!(name::TOKEN_REQUESTS, labels.clone()).increment(1);
            metrics::histogram!(name::TOKEN_REQUEST_DURATION, labels).record(seconds(started));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        result
    }

    /// A caller starts waiting for a token; the wait is recorded when the guard is dropped,
    /// whether the caller got a token, an error, or gave up.
    pub(crate) fn waiting(&self) -> Waiting {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(name::TOKEN_WAITS, self.labels()).increment(1);
        }
        Waiting {
            #[cfg(feature = "metrics")]
            metrics: self.clone(),
            #[cfg(feature = "metrics")]
            since: Instant::now(),
        }
    }

    /// A request went without a token: the allow-list left it out, for `reason`.
    pub(crate) fn passed_through(&self, reason: &'static str) {
        #[cfg(feature = "metrics")]
        {
            let mut labels = self.labels();
            labels.push(Label::from_static_parts("reason", reason));
            metrics::counter!(name::PASSED_THROUGH, labels).increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = reason;
    }

    /// A request was sent with a stale token.
    pub(crate) fn stale_serve(&self) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(name::STALE_SERVES, self.labels()).increment(1);
        }
    }

    /// A `401` dropped the cached token at `now`: it counts as expired from then.
    pub(crate) fn invalidated(&self, now: Instant) {
        #[cfg(feature = "metrics")]
        {
            let labels = self.labels();
            metrics::counter!(name::INVALIDATIONS, labels.clone()).increment(1);
            metrics::gauge!(name::TOKEN_EXPIRATION, labels).set(unix_seconds(now));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = now;
    }

    /// A new token is cached, expiring at `expires_at` (Tokio's clock).
    pub(crate) fn token_cached(&self, expires_at: Instant) {
        #[cfg(feature = "metrics")]
        {
            metrics::gauge!(name::TOKEN_EXPIRATION, self.labels()).set(unix_seconds(expires_at));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = expires_at;
    }

    /// The store held a token this replica took.
    #[cfg(feature = "store")]
    pub(crate) fn store_hit(&self) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(name::STORE_HITS, self.labels()).increment(1);
        }
    }

    /// This replica asks the endpoint itself, though it has a store.
    #[cfg(feature = "store")]
    pub(crate) fn store_miss(&self) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(name::STORE_MISSES, self.labels()).increment(1);
        }
    }

    /// A store `operation` (`read`, `lock`, `write`, `unlock`, `remove`) failed: `error`,
    /// `timeout`, or `unreadable` for a value that does not open.
    #[cfg(feature = "store")]
    pub(crate) fn store_failure(&self, operation: &str, error_type: &'static str) {
        #[cfg(feature = "metrics")]
        {
            let mut labels = self.labels();
            labels.push(Label::new("operation", operation.to_owned()));
            labels.push(Label::from_static_parts("error.type", error_type));
            metrics::counter!(name::STORE_FAILURES, labels).increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (operation, error_type);
    }

    /// This cache's labels, with room for two more; the descriptions go to the recorder
    /// first, once.
    #[cfg(feature = "metrics")]
    fn labels(&self) -> Vec<Label> {
        self.inner.described.call_once(describe);
        let mut labels = Vec::with_capacity(self.inner.labels.len() + 2);
        labels.extend_from_slice(&self.inner.labels);
        labels
    }
}

/// A caller waiting for a token; records how long when dropped.
pub(crate) struct Waiting {
    #[cfg(feature = "metrics")]
    metrics: Metrics,
    #[cfg(feature = "metrics")]
    since: Instant,
}

#[cfg(feature = "metrics")]
impl Drop for Waiting {
    fn drop(&mut self) {
        let labels = self.metrics.labels();
        metrics::histogram!(name::TOKEN_WAIT_DURATION, labels).record(seconds(self.since));
    }
}

/// The `token` label when `metrics_label` is not set: what the token is for, as configured.
/// Never a form parameter: `param` values may be credentials.
#[cfg(feature = "metrics")]
fn default_label(requested: &Requested) -> String {
    if !requested.scopes.is_empty() {
        requested.scopes.join(" ")
    } else if let Some(audience) = &requested.audience {
        audience.clone()
    } else if !requested.resources.is_empty() {
        requested.resources.join(" ")
    } else {
        "default".to_owned()
    }
}

/// The class of the endpoint's status: from the error if it kept one, `2xx` for a success or
/// for the errors only a success body can cause, `none` when the endpoint did not answer.
#[cfg(feature = "metrics")]
fn status_class(error: Option<&TokenError>) -> &'static str {
    use TokenErrorKind::*;
    let Some(error) = error else { return "2xx" };
    match error.status().map(|status| status.as_u16() / 100) {
        Some(1) => "1xx",
        Some(2) => "2xx",
        Some(3) => "3xx",
        Some(4) => "4xx",
        Some(5) => "5xx",
        Some(_) => "none",
        None => match error.kind() {
            MalformedResponse | BodyTooLarge | MissingAccessToken | InvalidAccessToken
            | UnsupportedTokenType | InvalidExpiresIn => "2xx",
            _ => "none",
        },
    }
}

#[cfg(feature = "metrics")]
fn seconds(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// An instant on Tokio's clock as UNIX time in seconds, through the wall clock now.
#[cfg(feature = "metrics")]
fn unix_seconds(at: Instant) -> f64 {
    let now = Instant::now();
    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if at >= now {
        (unix_now + (at - now)).as_secs_f64()
    } else {
        unix_now.saturating_sub(now - at).as_secs_f64()
    }
}

#[cfg(feature = "metrics")]
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(name::TOKEN_REQUESTS, Unit::Count, "Requests to the OAuth token endpoint");
    describe_histogram!(
        name::TOKEN_REQUEST_DURATION,
        Unit::Seconds,
        "How long requests to the OAuth token endpoint took"
    );
    describe_counter!(name::TOKEN_WAITS, Unit::Count, "Callers that waited for an access token");
    describe_histogram!(
        name::TOKEN_WAIT_DURATION,
        Unit::Seconds,
        "How long callers waited for an access token"
    );
    describe_counter!(name::STALE_SERVES, Unit::Count, "Requests sent with a stale access token");
    describe_counter!(
        name::INVALIDATIONS,
        Unit::Count,
        "Access tokens dropped because the API answered 401"
    );
    describe_gauge!(
        name::TOKEN_EXPIRATION,
        Unit::Seconds,
        "UNIX time at which the cached access token expires (when it was dropped, after a 401)"
    );
    describe_counter!(name::STORE_HITS, Unit::Count, "Access tokens taken from the token store");
    describe_counter!(
        name::STORE_MISSES,
        Unit::Count,
        "Token requests made by this replica though a token store is set"
    );
    describe_counter!(name::STORE_FAILURES, Unit::Count, "Token store operations that failed");
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;
    use http::StatusCode;

    fn config(
        build: impl FnOnce(crate::config::ConfigBuilder) -> crate::config::ConfigBuilder,
    ) -> Config {
        build(Config::builder("https://auth.example.com/token", "orders", "hunter2"))
            .build()
            .unwrap()
    }

    #[test]
    fn the_token_label_is_the_setting_or_what_the_token_is_for_never_a_parameter() {
        let label = |config: &Config| Metrics::new(config).inner.labels[2].value().to_owned();
        assert_eq!(label(&config(|b| b.scope("read write").param("key", "hunter3"))), "read write");
        assert_eq!(
            label(&config(|b| b.audience("https://api.example.com"))),
            "https://api.example.com"
        );
        assert_eq!(label(&config(|b| b.resource("https://a.example/"))), "https://a.example/");
        assert_eq!(label(&config(|b| b.param("key", "hunter3"))), "default");
        assert_eq!(label(&config(|b| b.scope("read").metrics_label("orders-read"))), "orders-read");
    }

    #[test]
    fn the_status_class_comes_from_the_answer_or_is_none() {
        let response = TokenError::response(StatusCode::BAD_REQUEST, None, None, None);
        assert_eq!(status_class(Some(&response)), "4xx");
        assert_eq!(status_class(Some(&TokenError::new(TokenErrorKind::MalformedResponse))), "2xx");
        assert_eq!(status_class(Some(&TokenError::new(TokenErrorKind::Timeout))), "none");
        assert_eq!(status_class(None), "2xx");
    }
}
