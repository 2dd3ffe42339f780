//! The token cache: one current token for lock-free reads, and at most one token request in
//! flight, whatever the number of callers.
//!
//! Reads load the token from an [`ArcSwapOption`]. Everything else (starting a request, joining
//! one, backing off after a failure) happens under a mutex that the fresh path never touches.
//!
//! A token request runs in a spawned task, never inside a caller's future: a caller that is
//! dropped or times out does not cancel it, and every caller waiting on it gets the same
//! outcome, the error included, through a `watch` channel. The task holds only a weak reference
//! to the cache, and dropping the cache aborts it: when the last layer and service are gone,
//! nothing keeps running.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{HeaderValue, Uri};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::error::{TokenError, TokenErrorKind};
use crate::origin::Origin;
use crate::source::{Received, TokenSource};
use crate::stats::{Counters, Stats};
use crate::token::{AccessToken, Freshness, LifetimePolicy};

/// What a token request ends with; every waiter gets a clone.
pub(crate) type Outcome = Result<Arc<AccessToken>, TokenError>;

pub(crate) struct TokenCache {
    /// Its key in [`LIVE_CACHES`].
    id: u64,
    current: ArcSwapOption<AccessToken>,
    refresh: Mutex<Refresh>,
    source: Arc<TokenSource>,
    policy: LifetimePolicy,
    client_id: String,
    allowed_origins: Vec<Origin>,
    invalidation_interval: Duration,
    counters: Counters,
}

/// The slow-path state, under the mutex.
#[derive(Default)]
struct Refresh {
    in_flight: Option<Flight>,
    backoff: Backoff,
    /// The generation of the latest token received.
    generation: u64,
    last_invalidation: Option<Instant>,
}

/// The token a request was sent with, to invalidate if the API rejects it.
///
/// Plain numbers, not an `Arc<TokenCache>`: cloning an `Arc` on every request would write its
/// reference count, a cache line that every core sending requests would then take turns at.
/// The rare `401` finds the cache in [`LIVE_CACHES`] instead.
#[derive(Clone, Copy)]
pub(crate) struct SentToken {
    cache: u64,
    generation: u64,
}

/// Every cache alive, by id.
static LIVE_CACHES: Mutex<BTreeMap<u64, Weak<TokenCache>>> = Mutex::new(BTreeMap::new());
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(0);

fn live_caches() -> MutexGuard<'static, BTreeMap<u64, Weak<TokenCache>>> {
    LIVE_CACHES.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SentToken {
    /// The API answered `401`: drop this token unless a newer one replaced it already or one
    /// was dropped within `invalidation_interval`. Returns whether it was dropped, i.e. whether
    /// the next request will carry a different token.
    pub(crate) fn rejected(self) -> bool {
        // The registry's lock is released before the cache could be dropped (its `Drop`
        // takes that lock too).
        let cache = live_caches().get(&self.cache).and_then(Weak::upgrade);
        cache.is_some_and(|cache| cache.invalidate(self.generation, Instant::now()))
    }
}

/// The one token request in flight.
struct Flight {
    outcome: watch::Receiver<Option<Outcome>>,
    task: AbortHandle,
}

/// What a caller that has no usable token should do.
enum Next {
    /// A usable token appeared in the meantime.
    Use(Arc<AccessToken>),
    /// Wait for the request in flight.
    Wait(watch::Receiver<Option<Outcome>>),
}

impl TokenCache {
    pub(crate) fn new(config: &Config) -> Arc<Self> {
        let cache = Arc::new(Self {
            id: NEXT_CACHE_ID.fetch_add(1, Relaxed),
            current: ArcSwapOption::empty(),
            refresh: Mutex::default(),
            source: Arc::new(TokenSource::new(config)),
            policy: LifetimePolicy::new(config),
            client_id: config.client_id.clone(),
            allowed_origins: config.allowed_origins.clone(),
            invalidation_interval: config.invalidation_interval,
            counters: Counters::default(),
        });
        live_caches().insert(cache.id, Arc::downgrade(&cache));
        cache
    }

    pub(crate) fn token_url(&self) -> &str {
        self.source.url().as_str()
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn stats(&self) -> Stats {
        let remaining = self.current.load().as_deref().map(AccessToken::remaining);
        self.counters.snapshot(remaining)
    }

    /// Whether a request for `uri` may carry the token: yes, unless an allow-list excludes it.
    /// Inlined into the caller's crate: without an allow-list it is one comparison.
    #[inline]
    pub(crate) fn allows(&self, uri: &Uri) -> bool {
        self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|o| o.matches(uri))
    }

    /// The hot path: the header to send now, if the current token is usable. A stale token
    /// also makes sure a background refresh is running. `None` means "wait for [`get`]".
    ///
    /// [`get`]: Self::get
    #[inline]
    pub(crate) fn header(self: &Arc<Self>, now: Instant) -> Option<(HeaderValue, SentToken)> {
        self.with_usable(now, |token| self.outgoing(token))
    }

    /// What a request carries of `token`: this thread's copy of its header, and the record of
    /// which token it is.
    #[inline]
    pub(crate) fn outgoing(&self, token: &AccessToken) -> (HeaderValue, SentToken) {
        let sent = SentToken { cache: self.id, generation: token.generation };
        (token.header_for_this_thread().clone(), sent)
    }

    /// A usable token: the current one, or the outcome of the request in flight (started if
    /// none is), or at once the last error while backing off after a failure.
    pub(crate) async fn get(self: Arc<Self>) -> Outcome {
        let now = Instant::now();
        if let Some(token) = self.with_usable(now, Arc::clone) {
            return Ok(token);
        }
        let mut outcome = match self.join_or_start(now)? {
            Next::Use(token) => return Ok(token),
            Next::Wait(outcome) => outcome,
        };
        Counters::bump(&self.counters.requests_waited);
        let result = outcome.wait_for(Option::is_some).await;
        // The sender is gone without an answer only if the task was aborted or panicked.
        result
            .ok()
            .and_then(|outcome| outcome.clone())
            .unwrap_or_else(|| Err(TokenError::new(TokenErrorKind::Stopped)))
    }

    /// Applies `f` to the current token if it is usable at `now`, starting a background
    /// refresh if it is stale. One `ArcSwap` load; no lock, no reference count touched.
    #[inline]
    fn with_usable<R>(
        self: &Arc<Self>,
        now: Instant,
        f: impl FnOnce(&Arc<AccessToken>) -> R,
    ) -> Option<R> {
        let current = self.current.load();
        let token = current.as_ref()?;
        match token.times.freshness(now) {
            Freshness::Fresh => Some(f(token)),
            Freshness::Stale => {
                Counters::bump(&self.counters.stale_serves);
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
        if let Some(flight) = &refresh.in_flight {
            return Ok(Next::Wait(flight.outcome.clone()));
        }
        if let Some(error) = refresh.backoff.blocking(now) {
            return Err(error);
        }
        Ok(Next::Wait(self.start(&mut refresh)))
    }

    /// Drops the current token if it is generation `generation` and no token was dropped
    /// within `invalidation_interval` of `now`.
    fn invalidate(&self, generation: u64, now: Instant) -> bool {
        let mut refresh = self.lock();
        let current = self.current.load();
        if current.as_ref().is_none_or(|token| token.generation != generation) {
            return false; // a late 401: the token it names is already gone
        }
        if refresh.last_invalidation.is_some_and(|at| now < at + self.invalidation_interval) {
            tracing::debug!(client_id = %self.client_id, "API rejected the token again; not invalidating it so soon");
            return false;
        }
        refresh.last_invalidation = Some(now);
        self.current.store(None);
        Counters::bump(&self.counters.invalidations);
        tracing::warn!(client_id = %self.client_id, generation, "API rejected the token (401); fetching a new one");
        true
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        // Contention means another caller is starting, joining or finishing a request right
        // now; any of those leaves a refresh running or a fresh token. No need to wait.
        let Ok(mut refresh) = self.refresh.try_lock() else { return };
        let still_stale = self
            .current
            .load()
            .as_deref()
            .is_some_and(|token| token.times.freshness(now) == Freshness::Stale);
        if still_stale && refresh.in_flight.is_none() && refresh.backoff.blocking(now).is_none() {
            tracing::debug!(client_id = %self.client_id, "token is stale; refreshing in the background");
            self.start(&mut refresh);
        }
    }

    /// Spawns the token request. Called with the lock held and nothing in flight.
    fn start(self: &Arc<Self>, refresh: &mut Refresh) -> watch::Receiver<Option<Outcome>> {
        let (sender, receiver) = watch::channel(None);
        let cache = Arc::downgrade(self);
        let source = Arc::clone(&self.source);
        let current = self.current.load().as_ref().map(|token| token.header_value().clone());
        let span = tracing::info_span!(
            "token_request",
            token_url = %source.url(),
            client_id = %self.client_id,
            outcome = tracing::field::Empty,
            status = tracing::field::Empty,
            lifetime_secs = tracing::field::Empty,
        );
        let task = tokio::spawn(fetch(cache, source, current, sender).instrument(span));
        refresh.in_flight = Some(Flight { outcome: receiver.clone(), task: task.abort_handle() });
        receiver
    }

    /// Publishes the result of a token request.
    fn finish(&self, result: Result<Received, TokenError>) -> Outcome {
        let mut refresh = self.lock();
        refresh.in_flight = None;
        match result {
            Ok(Received { response, sent }) => {
                let lifetime = self.policy.lifetime(response.expires_in);
                let times = self.policy.lifecycle(sent, lifetime, fastrand::f64());
                refresh.generation += 1;
                let token = Arc::new(AccessToken::new(
                    response.header,
                    response.token_type,
                    response.scope,
                    lifetime,
                    times,
                    refresh.generation,
                ));
                self.current.store(Some(Arc::clone(&token)));
                refresh.backoff.succeeded();
                Counters::bump(&self.counters.tokens_fetched);
                let span = tracing::Span::current();
                span.record("outcome", "ok");
                span.record("lifetime_secs", lifetime.as_secs());
                tracing::debug!(scope = token.scope(), "token received");
                Ok(token)
            }
            Err(error) => {
                let retry_in =
                    refresh.backoff.failed(error.clone(), Instant::now(), fastrand::f64());
                Counters::bump(&self.counters.token_request_failures);
                let span = tracing::Span::current();
                span.record("outcome", "error");
                if let Some(status) = error.status() {
                    span.record("status", status.as_u16());
                }
                tracing::warn!(error = %error, class = ?error.class(), ?retry_in, "token request failed");
                let now = Instant::now();
                if let Some(token) = self.current.load().as_deref() {
                    if token.times.freshness(now) != Freshness::Invalid {
                        let usable_for = token.times.usable_until - now;
                        tracing::warn!(?usable_for, "still sending the current token meanwhile");
                    }
                }
                Err(error)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Refresh> {
        // Nothing panics while holding the lock, but if something did, the state is still
        // consistent: every field is replaced whole.
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The body of the spawned task: one token request, then publish its outcome. It holds the
/// cache weakly, so that dropping the last layer is not delayed by a request in flight.
async fn fetch(
    cache: Weak<TokenCache>,
    source: Arc<TokenSource>,
    current: Option<HeaderValue>,
    outcome: watch::Sender<Option<Outcome>>,
) {
    let result = source.fetch(current.as_ref()).await;
    let Some(cache) = cache.upgrade() else { return };
    outcome.send_replace(Some(cache.finish(result)));
}

impl Drop for TokenCache {
    fn drop(&mut self) {
        live_caches().remove(&self.id);
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
    use crate::response;
    use http::StatusCode;

    fn cache() -> Arc<TokenCache> {
        let config = Config::builder("http://127.0.0.1:9/token", "id", "secret").build().unwrap();
        TokenCache::new(&config)
    }

    /// Stores a token as a finished token request would.
    fn receive(cache: &TokenCache, token: &str) -> Arc<AccessToken> {
        let body = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
        let response = response::parse(StatusCode::OK, None, body.as_bytes()).unwrap();
        cache.finish(Ok(Received { response, sent: Instant::now() })).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_401_never_evicts_a_newer_token() {
        let cache = cache();
        let first = receive(&cache, "first");
        let second = receive(&cache, "second");
        assert!(!cache.outgoing(&first).1.rejected(), "the 401 names a token that is already gone");
        assert_eq!(cache.current.load_full().unwrap().generation, second.generation);
        assert!(cache.outgoing(&second).1.rejected());
        assert!(cache.current.load().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn invalidations_are_at_most_one_per_interval() {
        let cache = cache();
        let first = receive(&cache, "first");
        assert!(cache.outgoing(&first).1.rejected());
        let second = receive(&cache, "second");
        tokio::time::advance(DEFAULT_INVALIDATION_INTERVAL - Duration::from_millis(1)).await;
        assert!(!cache.outgoing(&second).1.rejected());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.outgoing(&second).1.rejected());
    }

    #[tokio::test]
    async fn a_401_after_the_cache_is_gone_does_nothing_and_the_cache_leaves_no_entry() {
        let cache = cache();
        let token = receive(&cache, "first");
        let sent = cache.outgoing(&token).1;
        let id = cache.id;
        assert!(live_caches().contains_key(&id));
        drop(cache);
        assert!(!live_caches().contains_key(&id));
        assert!(!sent.rejected());
    }
}
