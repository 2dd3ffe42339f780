//! One token request for the whole fleet: read the store, else take the lock and fetch, else
//! wait for the replica that holds it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::sealed::{Sealer, StoredToken};
use crate::cache::source::{Avoid, Received};
use crate::config::Lifetimes;
use crate::config::LIFETIME_CEILING;
use crate::config::{Config, Grant, Held, Presented};
use crate::error::TokenError;
use crate::request::response;
use crate::request::TokenEndpoint;
use crate::store::{StoreFuture, TokenStore};
use crate::token::Freshness;

/// No store operation may take longer: a hung store must not stall token requests.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// The store operations of one fetch, besides polling while another replica asks: read, lock,
/// read again, write, unlock.
const STORE_OPERATIONS: u32 = 5;
/// How often a replica waiting for another's token looks for it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Store trouble is logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// A configured store, and what this cache keeps in it.
pub(crate) struct SharedTokens {
    store: Arc<dyn TokenStore>,
    token_key: String,
    lock_key: String,
    sealer: Sealer,
    lifetimes: Lifetimes,
    request_timeout: Duration,
    last_warning: Mutex<Option<Instant>>,
    metrics: Metrics,
}

/// What the store holds for this cache.
enum Stored {
    /// A token to take.
    Usable(Received),
    /// A value that does not open: sealed by a replica with another key (or tampered with).
    Unreadable,
    /// Nothing we may take: no value, an expired or stale token, or one in [`Avoid`].
    Nothing,
}

impl SharedTokens {
    /// Shares the tokens of `config` through its store, if it has one, recording what it
    /// does in `metrics`.
    pub(crate) fn new(config: &Config, metrics: &Metrics) -> Option<Self> {
        let shared = &config.shared;
        let store = Arc::clone(shared.store.as_ref()?);
        let name = key_name(config);
        let key_material = match &shared.encryption_key {
            Some(key) => key.expose_secret(),
            None => config.endpoint.client_secret.expose_secret().as_bytes(),
        };
        Some(Self {
            store,
            sealer: Sealer::new(key_material, &name),
            token_key: format!("token:{name}"),
            lock_key: format!("lock:{name}"),
            lifetimes: config.lifetimes,
            request_timeout: config.endpoint.request_timeout,
            last_warning: Mutex::new(None),
            metrics: metrics.clone(),
        })
    }

    /// The longest [`fetch`](Self::fetch) takes: waiting for the replica that holds the lock,
    /// then a request of our own, and each store operation at most once.
    pub(crate) fn time_bound(&self) -> Duration {
        let operations = STORE_TIMEOUT * STORE_OPERATIONS;
        self.request_timeout.saturating_mul(2).saturating_add(operations)
    }

    /// A token for this replica: another replica's, if a fresh one not in `avoid` is in the
    /// store; otherwise one from the endpoint, fetched by whichever replica takes the lock.
    pub(crate) async fn fetch(
        &self,
        endpoint: &TokenEndpoint,
        avoid: &Avoid,
    ) -> Result<Received, TokenError> {
        if let Stored::Usable(shared) = self.read(avoid).await {
            return Ok(shared);
        }
        let owner = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        // Held until our request ends; if we crash, it expires about when a request would have.
        let lock_ttl = self.request_timeout.saturating_add(Duration::from_secs(1));
        let lock_ttl = lock_ttl.min(LIFETIME_CEILING);
        match self
            .within_timeout("lock", self.store.try_lock(&self.lock_key, &owner, lock_ttl))
            .await
        {
            Some(true) => {
                // Look again: a replica may have shared its token between our read and our lock.
                let received = match self.read(avoid).await {
                    Stored::Usable(shared) => Ok(shared),
                    Stored::Unreadable | Stored::Nothing => self.fetch_and_share(endpoint).await,
                };
                let unlock = self.store.remove_if_equal(&self.lock_key, owner.as_bytes());
                self.within_timeout("unlock", unlock).await;
                received
            }
            Some(false) => match self.wait_for_holder(avoid).await {
                Some(shared) => Ok(shared),
                None => self.fetch_and_share(endpoint).await,
            },
            None => self.fetch_and_share(endpoint).await,
        }
    }

    /// Waits for the replica that holds the lock to share its token: `None` as soon as it is
    /// clear that no token for us is coming (the lock is gone without one, or the store holds
    /// a value we cannot open), or after `request_timeout`.
    async fn wait_for_holder(&self, avoid: &Avoid) -> Option<Received> {
        let wait = async {
            loop {
                tokio::time::sleep(POLL_INTERVAL).await;
                // The lock first: the holder writes its token before it unlocks, so a token
                // shared before the lock went is found by the read after.
                let lock = self.within_timeout("read", self.store.get(&self.lock_key)).await;
                match self.read(avoid).await {
                    Stored::Usable(shared) => return Some(shared),
                    Stored::Unreadable => return None,
                    Stored::Nothing if matches!(lock, Some(None)) => return None,
                    Stored::Nothing => {}
                }
            }
        };
        let shared = tokio::time::timeout(self.request_timeout, wait).await.ok().flatten();
        if shared.is_none() {
            tracing::debug!("no token from the replica holding the lock; fetching our own");
        }
        shared
    }

    async fn fetch_and_share(&self, endpoint: &TokenEndpoint) -> Result<Received, TokenError> {
        self.metrics.store_miss();
        let (sent, sent_wall) = (Instant::now(), SystemTime::now());
        let response = self.metrics.token_request(endpoint.request()).await?;
        let lifetime = self.lifetimes.lifetime(response.expires_in);
        let expires_at = sent_wall + lifetime;
        let remaining = expires_at.duration_since(SystemTime::now()).unwrap_or_default();
        if !remaining.is_zero() {
            let stored = StoredToken {
                access_token: response::token_in(&response.header).to_owned(),
                token_type: response.token_type.clone(),
                scope: response.scope.clone(),
                lifetime_ms: millis(lifetime),
                expires_at_ms: since_epoch(expires_at),
                refresh_at_ms: response.refresh_in.map(|hint| since_epoch(sent_wall + hint)),
            };
            let sealed = self.sealer.seal(&stored);
            self.within_timeout("write", self.store.set(&self.token_key, sealed, remaining)).await;
        }
        Ok(Received { response, sent })
    }

    /// What the store holds, and whether we may take it: a token fresh by this replica's
    /// settings and not in `avoid`. A token the API rejected is deleted from the store, unless
    /// another replica replaced it meanwhile.
    async fn read(&self, avoid: &Avoid) -> Stored {
        let Some(Some(sealed)) = self.within_timeout("read", self.store.get(&self.token_key)).await
        else {
            return Stored::Nothing;
        };
        let Some(stored) = self.sealer.open(&sealed) else {
            self.metrics.store_failure("read", "unreadable");
            self.warn("the stored token does not open (tampered, or sealed with another key)");
            return Stored::Unreadable;
        };
        let Some(received) = to_local(stored) else { return Stored::Nothing };
        let header = Some(&received.response.header);
        if avoid.rejected.as_ref() == header {
            let remove = self.store.remove_if_equal(&self.token_key, &sealed);
            self.within_timeout("remove", remove).await;
            return Stored::Nothing;
        }
        let Some(lifetime) = received.response.expires_in else { return Stored::Nothing };
        let refresh_in = received.response.refresh_in;
        let times = self.lifetimes.lifecycle(received.sent, lifetime, refresh_in, 0.0);
        if avoid.current.as_ref() == header || times.freshness(Instant::now()) != Freshness::Fresh {
            return Stored::Nothing;
        }
        self.metrics.store_hit();
        Stored::Usable(received)
    }

    /// Runs a store operation; a failure or a timeout is logged and becomes `None`.
    async fn within_timeout<T>(&self, what: &str, operation: StoreFuture<'_, T>) -> Option<T> {
        match tokio::time::timeout(STORE_TIMEOUT, operation).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.metrics.store_failure(what, "error");
                self.warn(&format!("token store {what} failed: {error}"));
                None
            }
            Err(_) => {
                self.metrics.store_failure(what, "timeout");
                self.warn(&format!("token store {what} took longer than {STORE_TIMEOUT:?}"));
                None
            }
        }
    }

    fn warn(&self, message: &str) {
        let now = Instant::now();
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| now >= at + WARN_INTERVAL) {
            *last = Some(now);
            tracing::warn!("{message}; this replica fetches its own token meanwhile");
        }
    }
}

/// A stored token on this replica's clock, if it has not expired and is a valid token.
fn to_local(stored: StoredToken) -> Option<Received> {
    let expires_at = UNIX_EPOCH + Duration::from_millis(stored.expires_at_ms);
    let wall_now = SystemTime::now();
    let remaining = expires_at.duration_since(wall_now).ok()?;
    let lifetime = Duration::from_millis(stored.lifetime_ms).max(remaining);
    let now = Instant::now();
    // The instant it was "sent", as the lifecycle counts; a token older than this process
    // counts from now, with what remains of it as its lifetime.
    let (sent, lifetime) = match (now + remaining).checked_sub(lifetime) {
        Some(sent) => (sent, lifetime),
        None => (now, remaining),
    };
    // The server's `refresh_in`, counted from `sent` as the lifetime is: how long ago that
    // was, and how long from now to the refresh point (none if it has passed: refresh now).
    let refresh_in = stored.refresh_at_ms.map(|refresh_at| {
        let refresh_at = UNIX_EPOCH + Duration::from_millis(refresh_at);
        now.duration_since(sent) + refresh_at.duration_since(wall_now).unwrap_or_default()
    });
    let mut response =
        response::stored(stored.access_token, stored.token_type, stored.scope, lifetime).ok()?;
    response.refresh_in = refresh_in;
    Some(Received { response, sent })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `at` in milliseconds since the UNIX epoch.
fn since_epoch(at: SystemTime) -> u64 {
    millis(at.duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// What identifies a token, as a SHA-256 digest: the same for every replica with the same
/// settings, and never revealing the secret.
fn key_name(config: &Config) -> String {
    let (endpoint, requested) = (&config.endpoint, &config.requested);
    let mut scopes = requested.scopes.clone();
    scopes.sort();
    let mut resources = requested.resources.clone();
    resources.sort();
    let mut params = requested.params.clone();
    params.sort();
    #[cfg_attr(not(feature = "dpop"), allow(unused_mut))]
    let mut identity = serde_json::json!({
        "token_url": endpoint.token_url.as_str(),
        "client_id": endpoint.client_id,
        "auth_method": format!("{:?}", endpoint.auth_method),
        "scopes": scopes,
        "audience": requested.audience,
        "resources": resources,
        "params": params,
    });
    // Another grant's token is for what it presents. Client credentials keep the name they
    // always had.
    if requested.grant != Grant::ClientCredentials {
        identity["grant"] = grant_identity(&requested.grant);
    }
    // A DPoP-bound token is of use only with its key: replicas with another key (or none)
    // never see it. Without DPoP the name is what it always was.
    #[cfg(feature = "dpop")]
    if let Some(dpop) = &endpoint.dpop {
        identity["dpop_jkt"] = dpop.key.thumbprint().into();
    }
    let digest = Sha256::digest(identity.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a grant presents, as replicas can agree on it: a token given as a value by its
/// digest, a file by its path, a source of yours by nothing (replicas that share a store with
/// one must present the same subject).
fn grant_identity(grant: &Grant) -> serde_json::Value {
    let presented = |presented: &Presented| {
        let held = match &presented.held {
            Held::Value(value) => {
                let digest = Sha256::digest(value.expose_secret().as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            }
            Held::File(path) => path.display().to_string(),
            Held::Source(_) => "source".to_owned(),
        };
        serde_json::json!({ "held": held, "type": presented.token_type })
    };
    match grant {
        Grant::ClientCredentials => serde_json::Value::Null,
        Grant::TokenExchange(exchange) => serde_json::json!({
            "type": grant.name(),
            "subject": presented(&exchange.subject),
            "actor": exchange.actor.as_ref().map(presented),
            "requested_token_type": exchange.requested_token_type,
        }),
        Grant::JwtBearer(bearer) => serde_json::json!({
            "type": grant.name(),
            "assertion": bearer.assertion.as_ref().map(presented),
            "issuer": bearer.claims.issuer,
            "subject": bearer.claims.subject,
            "scope_claim": bearer.claims.scope_claim,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        build: impl FnOnce(crate::config::ConfigBuilder) -> crate::config::ConfigBuilder,
    ) -> Config {
        build(Config::builder("https://a.example/token", "client", "hunter2")).build().unwrap()
    }

    #[test]
    fn the_key_ignores_scope_order_and_never_holds_the_secret() {
        let a = key_name(&config(|b| b.scope("read write")));
        let b = key_name(&config(|b| b.scope("write read")));
        assert_eq!(a, b);
        assert_ne!(a, key_name(&config(|b| b.scope("read"))));
        assert_ne!(a, key_name(&config(|b| b.scope("read write").audience("x"))));
        assert!(!a.contains("hunter2") && a.len() == 64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stored_refresh_time_is_counted_from_when_the_token_was_sent() {
        let minute = Duration::from_secs(60);
        let now = SystemTime::now();
        let stored = |refresh_at: SystemTime| StoredToken {
            access_token: "t".into(),
            token_type: "Bearer".into(),
            scope: None,
            lifetime_ms: millis(60 * minute),
            // Sent 10 minutes ago.
            expires_at_ms: since_epoch(now + 50 * minute),
            refresh_at_ms: Some(since_epoch(refresh_at)),
        };
        // Make room on Tokio's clock for a token sent before now.
        tokio::time::advance(60 * minute).await;
        let hinted = to_local(stored(now + 20 * minute)).unwrap().response.refresh_in.unwrap();
        let within_a_second = |d: Duration, of: Duration| d.abs_diff(of) < Duration::from_secs(1);
        assert!(within_a_second(hinted, 30 * minute), "{hinted:?}");
        let passed = to_local(stored(now - minute)).unwrap();
        let refresh_at = passed.sent + passed.response.refresh_in.unwrap();
        assert!(within_a_second(refresh_at.elapsed(), Duration::ZERO), "refresh now");
        let mut without = stored(now);
        without.refresh_at_ms = None;
        assert_eq!(to_local(without).unwrap().response.refresh_in, None);
    }

    #[cfg(feature = "dpop")]
    #[test]
    fn the_key_names_the_dpop_key_so_only_its_holders_share_its_tokens() {
        let pem = |_| {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem()
        };
        let key = |pem: &str| {
            crate::credential::DpopKey::from_pem(pem, crate::credential::DpopAlgorithm::Es256)
                .unwrap()
        };
        let (one, two) = (pem(1), pem(2));
        let bearer = key_name(&config(|b| b));
        let bound = key_name(&config(|b| b.dpop(key(&one))));
        assert_ne!(bearer, bound);
        assert_eq!(bound, key_name(&config(|b| b.dpop(key(&one)))), "the same key, the same name");
        assert_ne!(bound, key_name(&config(|b| b.dpop(key(&two)))));
    }
}
