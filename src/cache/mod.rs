//! The token cache: one current token for lock-free reads, and at most one token request in
//! flight, whatever the number of callers.
//!
//! Reads load the token from an [`ArcSwapOption`]. Everything else (starting a request, joining
//! one, backing off after a failure) happens under a mutex that the fresh path never touches.
//! Nothing under the mutex can panic, and a poisoned mutex is used as it is: every field is
//! replaced whole, so the state is consistent whatever happened.
//!
//! A token request runs in a task spawned on the runtime of the caller that needed it, never
//! inside a caller's future: a caller that is dropped or times out does not cancel it, and
//! every caller waiting on it gets the same outcome, the error included, through a `watch`
//! channel. A panic in the request (in a [`TokenStore`] of the user's, say) becomes an error
//! like any other. The task can still vanish without an answer, when its runtime shuts down;
//! and its runtime can stop being driven (a `current_thread` runtime outside `block_on`). So a
//! flight has a deadline, no caller waits for it past that, and a flight whose task is gone or
//! whose deadline passed is replaced by the next caller that needs a token. The task holds only
//! a weak reference to the cache, and dropping the cache aborts it: when the last layer and
//! service are gone, nothing keeps running.
//!
//! [`TokenStore`]: crate::store::TokenStore

mod backoff;
mod metrics;
#[cfg(feature = "store")]
mod sealed;
mod select;
#[cfg(feature = "store")]
mod shared;
mod source;
mod stats;
mod tokens;

pub use stats::Stats;
pub(crate) use tokens::TokenCaches;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use http::HeaderValue;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::Config;
use crate::config::Lifetimes;
use crate::error::{TokenError, TokenErrorKind};
use crate::request::CredentialVersion;
use crate::token::{later, AccessToken, Freshness, Lifecycle};
pub(crate) use backoff::{Backoff, EndpointBackoff};
use metrics::Metrics;
use source::{Avoid, Received, TokenSource};
use stats::Counters;

/// What a token request ends with; every waiter gets a clone.
pub(crate) type Outcome = Result<Arc<Entry>, TokenError>;

/// The cache's token: the token, when it is fresh and usable, and which one it is. `Debug`
/// shows no token.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) token: AccessToken,
    times: Lifecycle,
    /// Which token of this cache it is (1, 2, ...): a `401` invalidates only the token that
    /// was sent, never a newer one.
    generation: u64,
    /// The `ath` of DPoP proofs sent with this token, hashed once, when first needed.
    #[cfg(feature = "dpop")]
    ath: std::sync::OnceLock<String>,
}

impl Entry {
    fn new(token: AccessToken, times: Lifecycle, generation: u64) -> Self {
        #[cfg(feature = "dpop")]
        let ath = std::sync::OnceLock::new();
        Self {
            token,
            times,
            generation,
            #[cfg(feature = "dpop")]
            ath,
        }
    }

    /// base64url(SHA-256(token)), the `ath` claim of DPoP proofs sent with it (RFC 9449 §4.2).
    #[cfg(feature = "dpop")]
    pub(crate) fn ath(&self) -> &str {
        self.ath.get_or_init(|| crate::request::dpop::ath(self.token.secret()))
    }
}

/// How many flights one caller starts or joins before giving up: more than one only when a
/// flight's task vanished, which happens when its runtime is shutting down.
const FLIGHTS_PER_CALLER: usize = 3;

pub(crate) struct TokenCache {
    current: ArcSwapOption<Entry>,
    refresh: Mutex<Refresh>,
    source: Arc<TokenSource>,
    lifetimes: Lifetimes,
    client_id: String,
    invalidation_interval: Duration,
    /// The transient failures of the token endpoint, shared with the layer's other tokens.
    endpoint: Arc<EndpointBackoff>,
    counters: Counters,
}

/// What a token's cache leaves for the next cache of the same token when it is forgotten
/// (DESIGN.md §11): what it learned of failures, of the API and of the endpoint.
#[derive(Default)]
pub(crate) struct Resting {
    backoff: Backoff,
    /// The token the API rejected: the store must not hand it back.
    rejected: Option<HeaderValue>,
    /// The credential the endpoint rejected: a change lifts the backoff.
    credential: Option<CredentialVersion>,
}

impl Resting {
    /// When its backoff lets a token request go, for choosing which to forget first.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.backoff.retry_at()
    }
}

/// The slow-path state, under the mutex.
#[derive(Default)]
struct Refresh {
    in_flight: Option<Flight>,
    /// Flights started so far; the latest one's number identifies it.
    flights: u64,
    backoff: Backoff,
    /// The generation of the latest token received.
    generation: u64,
    last_invalidation: Option<Instant>,
    /// The token the API rejected last, until a new one arrives: a store must not hand it back.
    rejected: Option<HeaderValue>,
}

/// The token a request was sent with, to invalidate if the API rejects it.
#[derive(Clone)]
pub(crate) struct SentToken {
    cache: Arc<TokenCache>,
    generation: u64,
}

impl SentToken {
    /// The API answered `401`: drop this token unless a newer one replaced it already or one
    /// was dropped within `invalidation_interval`. Returns whether it was dropped, i.e. whether
    /// the next request will carry a different token.
    pub(crate) fn rejected(&self) -> bool {
        self.cache.invalidate(self.generation, Instant::now())
    }
}

/// The one token request in flight.
struct Flight {
    number: u64,
    outcome: watch::Receiver<Option<Outcome>>,
    task: AbortHandle,
    /// Nobody waits for this flight past this instant.
    deadline: Instant,
}

impl Flight {
    /// Whether it can still answer in time: its task is running and its deadline ahead.
    fn is_alive(&self, now: Instant) -> bool {
        !self.task.is_finished() && now < self.deadline
    }
}

/// What a caller that has no usable token should do.
enum Next {
    /// A usable token appeared in the meantime.
    Use(Arc<Entry>),
    /// Wait for the request in flight, until the deadline.
    Wait(watch::Receiver<Option<Outcome>>, Instant),
}

impl TokenCache {
    /// A cache for the token `config` asks for, taking up what a forgotten cache of the same
    /// token left (`resting`), and backing off as the layer's `endpoint` says too.
    pub(crate) fn new(
        config: &Config,
        endpoint: &Arc<EndpointBackoff>,
        resting: Resting,
    ) -> Arc<Self> {
        let Resting { backoff, rejected, credential } = resting;
        let source = TokenSource::new(config);
        source.endpoint().remember_rejected(credential);
        Arc::new(Self {
            current: ArcSwapOption::empty(),
            refresh: Mutex::new(Refresh { backoff, rejected, ..Refresh::default() }),
            source: Arc::new(source),
            lifetimes: config.lifetimes,
            client_id: config.endpoint.client_id.clone(),
            invalidation_interval: config.limits.invalidation_interval,
            endpoint: Arc::clone(endpoint),
            counters: Counters::default(),
        })
    }

    /// What this cache learned that the cache made again for its token must know, when it
    /// is forgotten: its failures, the token the API rejected, the credential the endpoint
    /// rejected. `None` if it learned none of that.
    pub(crate) fn take_resting(&self) -> Option<Resting> {
        let mut refresh = self.lock();
        let credential = self.source.endpoint().rejected_credential();
        let learned =
            refresh.backoff.has_failed() || refresh.rejected.is_some() || credential.is_some();
        learned.then(|| Resting {
            backoff: std::mem::take(&mut refresh.backoff),
            rejected: refresh.rejected.take(),
            credential,
        })
    }

    /// Whether a token request of this cache's is running: then it is in use, whoever waits.
    pub(crate) fn is_fetching(&self) -> bool {
        let refresh = self.lock();
        refresh.in_flight.as_ref().is_some_and(|flight| flight.is_alive(Instant::now()))
    }

    pub(crate) fn token_url(&self) -> &str {
        self.source.url().as_str()
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where this cache's events are recorded (feature `metrics`).
    pub(crate) fn metrics(&self) -> &Metrics {
        self.source.metrics()
    }

    pub(crate) fn stats(&self) -> Stats {
        let remaining = self.current.load().as_deref().map(|entry| entry.token.remaining());
        self.counters.snapshot(remaining)
    }

    /// The record of which token of this cache a request carries: `entry`.
    pub(crate) fn sent(self: &Arc<Self>, entry: &Entry) -> SentToken {
        SentToken { cache: Arc::clone(self), generation: entry.generation }
    }

    /// A usable token: the current one, or the outcome of the request in flight (started if
    /// none is), or at once the last error while backing off after a failure. Never waits
    /// past the flight's deadline: `request_timeout`, plus the store's bounds with a store.
    /// A caller that waits is counted (`requests_waited`, and a wait in the metrics).
    pub(crate) async fn get(self: Arc<Self>) -> Outcome {
        self.get_counting(true).await
    }

    /// As [`get`](Self::get), for `warm_up`: fetching ahead of any request is no caller that
    /// waited, and is not counted as one.
    pub(crate) async fn warm_up(self: Arc<Self>) -> Outcome {
        self.get_counting(false).await
    }

    async fn get_counting(self: Arc<Self>, counted: bool) -> Outcome {
        if let Some(token) = self.with_usable(Instant::now(), Arc::clone) {
            return Ok(token);
        }
        // Without a runtime there is no task to spawn and no timer to bound the wait.
        if Handle::try_current().is_err() {
            return Err(self.located(TokenError::new(TokenErrorKind::NoRuntime)));
        }
        let mut waited = false;
        let mut _waiting = None; // records the wait when `get` returns (feature `metrics`)
        for _ in 0..FLIGHTS_PER_CALLER {
            let (mut outcome, deadline) = match self.join_or_start(Instant::now())? {
                Next::Use(token) => return Ok(token),
                Next::Wait(outcome, deadline) => (outcome, deadline),
            };
            if counted && !std::mem::replace(&mut waited, true) {
                Counters::bump(&self.counters.requests_waited);
                _waiting = Some(self.source.metrics().waiting());
            }
            let answer =
                match tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await {
                    Ok(Ok(answer)) => answer.clone(),
                    // The task is gone without an answer: the next round replaces the flight.
                    Ok(Err(_)) => None,
                    Err(_) => return Err(self.located(TokenError::new(TokenErrorKind::Timeout))),
                };
            if let Some(outcome) = answer {
                return outcome;
            }
        }
        Err(self.located(TokenError::new(TokenErrorKind::Stopped)))
    }

    /// `error`, naming this cache's token endpoint and client.
    fn located(&self, error: TokenError) -> TokenError {
        error.at(self.source.url(), &self.client_id)
    }

    /// The hot path: applies `f` to the current token if it is usable at `now`, starting a
    /// background refresh if it is stale. One `ArcSwap` load; no lock, no reference count
    /// touched. `None` means "wait for [`get`](Self::get)".
    pub(crate) fn with_usable<R>(
        self: &Arc<Self>,
        now: Instant,
        f: impl FnOnce(&Arc<Entry>) -> R,
    ) -> Option<R> {
        let current = self.current.load();
        let token = current.as_ref()?;
        match token.times.freshness(now) {
            Freshness::Fresh => Some(f(token)),
            Freshness::Stale => {
                Counters::bump(&self.counters.stale_serves);
                self.source.metrics().stale_serve();
                self.refresh_in_background(now);
                Some(f(token))
            }
            Freshness::Invalid => None,
        }
    }

    fn join_or_start(self: &Arc<Self>, now: Instant) -> Result<Next, TokenError> {
        let mut refresh = self.lock();
        // A request may have finished between our look at the token and taking the lock.
        if let Some(token) = self.current.load_full() {
            if token.times.freshness(now) != Freshness::Invalid {
                return Ok(Next::Use(token));
            }
        }
        if let Some(flight) = refresh.in_flight.as_ref().filter(|f| f.is_alive(now)) {
            return Ok(Next::Wait(flight.outcome.clone(), flight.deadline));
        }
        if let Some(error) = self.blocked(&refresh, now) {
            return Err(error);
        }
        self.start(&mut refresh, now)
            .ok_or_else(|| self.located(TokenError::new(TokenErrorKind::NoRuntime)))
    }

    /// The error that holds a token request back at `now`, if any: this token's backoff, unless
    /// it is a rejection of the client, or of what the grant presented, whose credential has
    /// changed since (a new assertion, secret, key or certificate, a new subject token, is
    /// worth trying at once), or the endpoint's.
    fn blocked(&self, refresh: &Refresh, now: Instant) -> Option<TokenError> {
        let own = refresh.backoff.blocking(now).filter(|error| {
            let rejected = error.rejects_the_client() || error.rejects_the_grant();
            let retry = rejected && self.source.credential_changed();
            if retry {
                tracing::info!(
                    "the credential or grant token rejected has changed since; asking again"
                );
            }
            !retry
        });
        own.or_else(|| self.endpoint.blocking(now))
    }

    /// Drops the current token if it is generation `generation` and no token was dropped
    /// within `invalidation_interval` of `now`.
    fn invalidate(&self, generation: u64, now: Instant) -> bool {
        let mut refresh = self.lock();
        let current = self.current.load();
        let Some(token) = current.as_ref().filter(|token| token.generation == generation) else {
            return false; // a late 401: the token it names is already gone
        };
        let too_soon = refresh
            .last_invalidation
            .is_some_and(|at| now.saturating_duration_since(at) < self.invalidation_interval);
        if !too_soon {
            refresh.last_invalidation = Some(now);
            refresh.rejected = Some(token.token.header_value().clone());
            self.current.store(None);
        }
        drop(refresh);
        if too_soon {
            tracing::debug!(client_id = %self.client_id, "API rejected the token again; not invalidating it so soon");
            return false;
        }
        Counters::bump(&self.counters.invalidations);
        self.source.metrics().invalidated(now);
        tracing::warn!(client_id = %self.client_id, generation, "API rejected the token (401); fetching a new one");
        true
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        // Contention means another caller is starting, joining or finishing a request right
        // now; any of those leaves a refresh running or a fresh token. No need to wait.
        let mut refresh = match self.refresh.try_lock() {
            Ok(refresh) => refresh,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let still_stale = self
            .current
            .load()
            .as_deref()
            .is_some_and(|token| token.times.freshness(now) == Freshness::Stale);
        let running = refresh.in_flight.as_ref().is_some_and(|flight| flight.is_alive(now));
        if still_stale && !running && self.blocked(&refresh, now).is_none() {
            // Outside a runtime there is nothing to refresh with: the token serves until it
            // is no longer usable, and then callers get `NoRuntime`.
            self.start(&mut refresh, now);
        }
    }

    /// Spawns a token request on the current runtime, in place of any flight that is gone or
    /// late. Called with the lock held; `None` outside a runtime.
    fn start(self: &Arc<Self>, refresh: &mut Refresh, now: Instant) -> Option<Next> {
        let runtime = Handle::try_current().ok()?;
        let (sender, receiver) = watch::channel(None);
        refresh.flights += 1;
        let avoid = Avoid {
            current: self.current.load().as_ref().map(|entry| entry.token.header_value().clone()),
            rejected: refresh.rejected.clone(),
        };
        let task = runtime.spawn(fetch(Arc::downgrade(self), refresh.flights, avoid, sender));
        let deadline = later(now, self.source.time_bound());
        let flight = Flight {
            number: refresh.flights,
            outcome: receiver.clone(),
            task: task.abort_handle(),
            deadline,
        };
        if let Some(replaced) = refresh.in_flight.replace(flight) {
            replaced.task.abort();
        }
        Some(Next::Wait(receiver, deadline))
    }

    /// Publishes the result of flight `number`; `None` if that flight was replaced meanwhile.
    fn finish(&self, number: u64, result: Result<Received, TokenError>) -> Option<Outcome> {
        let now = Instant::now();
        let result = result.map_err(|error| self.located(error));
        let result = result.and_then(|Received { response, sent }| {
            let lifetime = self.lifetimes.lifetime(response.expires_in);
            let times =
                self.lifetimes.lifecycle(sent, lifetime, response.refresh_in, fastrand::f64());
            // An endpoint slower than the token's lifetime: the waiters cannot use it.
            if times.freshness(now) == Freshness::Invalid {
                return Err(TokenError::new(TokenErrorKind::ExpiredOnArrival));
            }
            Ok((response, lifetime, times))
        });
        let jitter = fastrand::f64();

        let mut refresh = self.lock();
        if refresh.in_flight.as_ref().map(|flight| flight.number) != Some(number) {
            return None;
        }
        refresh.in_flight = None;
        self.endpoint.record(result.as_ref().map(drop), now, jitter);
        let outcome = match result {
            Ok((response, lifetime, times)) => {
                refresh.generation += 1;
                refresh.rejected = None;
                refresh.backoff.succeeded();
                let token = AccessToken::new(
                    response.header,
                    response.token_type,
                    response.scope,
                    lifetime,
                    times.expires_at,
                );
                let entry = Arc::new(Entry::new(token, times, refresh.generation));
                self.current.store(Some(Arc::clone(&entry)));
                Ok(entry)
            }
            Err(error) => Err((refresh.backoff.failed(error.clone(), now, jitter), error)),
        };
        drop(refresh);

        let span = tracing::Span::current();
        Some(match outcome {
            Ok(entry) => {
                Counters::bump(&self.counters.tokens_fetched);
                self.source.metrics().token_cached(entry.token.expires_at());
                span.record("outcome", "ok");
                span.record("lifetime_secs", entry.token.lifetime().as_secs());
                tracing::debug!(scope = entry.token.scope(), "token received");
                Ok(entry)
            }
            Err((retry_in, error)) => {
                Counters::bump(&self.counters.token_request_failures);
                span.record("outcome", "error");
                if let Some(status) = error.status() {
                    span.record("status", status.as_u16());
                }
                tracing::warn!(error = %error, class = ?error.class(), ?retry_in, "token request failed");
                if let Some(token) = self.current.load().as_deref() {
                    if token.times.freshness(now) != Freshness::Invalid {
                        let usable_for = token.times.usable_until - now;
                        tracing::warn!(?usable_for, "still sending the current token meanwhile");
                    }
                }
                Err(error)
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Refresh> {
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The body of the spawned task: one token request, then publish its outcome. It holds the
/// cache weakly, so that dropping the last layer is not delayed by a request in flight.
async fn fetch(
    cache: Weak<TokenCache>,
    number: u64,
    avoid: Avoid,
    outcome: watch::Sender<Option<Outcome>>,
) {
    let Some((source, span)) = cache.upgrade().map(|cache| {
        let span = tracing::info_span!(
            "token_request",
            token_url = %cache.source.url(),
            client_id = %cache.client_id,
            outcome = tracing::field::Empty,
            status = tracing::field::Empty,
            lifetime_secs = tracing::field::Empty,
        );
        (Arc::clone(&cache.source), span)
    }) else {
        return;
    };
    let request = AssertUnwindSafe(source.fetch(&avoid)).catch_unwind().instrument(span.clone());
    let result = request.await.unwrap_or_else(|_| Err(TokenError::new(TokenErrorKind::Panicked)));
    let Some(cache) = cache.upgrade() else { return };
    let _entered = span.enter();
    if let Some(published) = cache.finish(number, result) {
        outcome.send_replace(Some(published));
    }
}

impl Drop for TokenCache {
    fn drop(&mut self) {
        let refresh = self.refresh.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = refresh.in_flight.take() {
            flight.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_INVALIDATION_INTERVAL;
    use crate::request::response;
    use http::StatusCode;

    fn cache() -> Arc<TokenCache> {
        let config = Config::builder("http://127.0.0.1:9/token", "id", "secret").build().unwrap();
        TokenCache::new(&config, &Arc::default(), Resting::default())
    }

    /// Stores a token as a finished token request would.
    fn receive(cache: &TokenCache, token: &str) -> Arc<Entry> {
        let number = {
            let mut refresh = cache.lock();
            refresh.flights += 1;
            let task = tokio::spawn(async {}).abort_handle();
            let (_, outcome) = watch::channel(None);
            let deadline = Instant::now();
            refresh.in_flight = Some(Flight { number: refresh.flights, outcome, task, deadline });
            refresh.flights
        };
        let body = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
        let response = response::parse(StatusCode::OK, None, body.as_bytes()).unwrap();
        let received = Received { response, sent: Instant::now() };
        cache.finish(number, Ok(received)).unwrap().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_401_never_evicts_a_newer_token() {
        let cache = cache();
        let first = receive(&cache, "first");
        let second = receive(&cache, "second");
        assert!(!cache.sent(&first).rejected(), "the 401 names a token that is already gone");
        assert_eq!(cache.current.load_full().unwrap().generation, second.generation);
        assert!(cache.sent(&second).rejected());
        assert!(cache.current.load().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn invalidations_are_at_most_one_per_interval() {
        let cache = cache();
        let first = receive(&cache, "first");
        assert!(cache.sent(&first).rejected());
        let second = receive(&cache, "second");
        tokio::time::advance(DEFAULT_INVALIDATION_INTERVAL - Duration::from_millis(1)).await;
        assert!(!cache.sent(&second).rejected());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.sent(&second).rejected());
    }

    #[tokio::test(start_paused = true)]
    async fn the_result_of_a_replaced_flight_is_not_published() {
        let cache = cache();
        receive(&cache, "first");
        let body = r#"{"access_token":"late","expires_in":3600}"#;
        let response = response::parse(StatusCode::OK, None, body.as_bytes()).unwrap();
        let late = Received { response, sent: Instant::now() };
        assert!(cache.finish(0, Ok(late)).is_none());
        assert_eq!(cache.current.load_full().unwrap().token.secret(), "first");
    }

    #[test]
    fn outside_a_runtime_the_cache_answers_with_an_error_and_stays_usable() {
        let cache = cache();
        let error = futures_util::FutureExt::now_or_never(Arc::clone(&cache).get());
        assert_eq!(error.unwrap().unwrap_err().kind(), TokenErrorKind::NoRuntime);
        assert!(cache.lock().in_flight.is_none());
    }

    /// A token that went stale a second ago and is usable for an hour.
    fn store_stale(cache: &TokenCache) {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        let times = Lifecycle {
            refresh_at: now - Duration::from_secs(1),
            usable_until: now + hour,
            expires_at: now + hour,
        };
        let header = HeaderValue::from_static("Bearer stale");
        let token = AccessToken::new(header, "Bearer".into(), None, hour, times.expires_at);
        cache.current.store(Some(Arc::new(Entry::new(token, times, 1))));
    }

    #[test]
    fn outside_a_runtime_a_stale_token_is_sent_without_a_refresh() {
        let cache = cache();
        store_stale(&cache);
        let header = cache.with_usable(Instant::now(), |entry| entry.token.header_value().clone());
        assert_eq!(header.expect("the stale token still serves"), "Bearer stale");
        assert!(cache.lock().in_flight.is_none());
    }

    #[tokio::test]
    async fn a_poisoned_lock_does_not_stop_background_refresh() {
        let cache = cache();
        store_stale(&cache);
        std::thread::scope(|scope| {
            let poisoner = scope.spawn(|| {
                let _refresh = cache.refresh.lock().unwrap();
                panic!("a panic while holding the lock");
            });
            assert!(poisoner.join().is_err());
        });
        assert!(cache.refresh.is_poisoned());
        assert!(cache.with_usable(Instant::now(), |_| ()).is_some());
        assert!(cache.lock().in_flight.is_some(), "the stale token started a refresh");
    }
}
