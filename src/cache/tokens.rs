//! [`TokenCaches`]: the tokens of one layer, one [`TokenCache`] per distinct token request.
//!
//! The layer's own token (its configured scopes, audience, resources and parameters) has its
//! cache at hand, and a request that names no other token never looks anything up. So does
//! each route's token: its cache is made with the layer and kept as long as the layer, so that
//! a route costs a prefix comparison and no lookup. A request whose [`TokenParams`] (in its
//! extensions) come to another token request gets that request's cache from a map, made on
//! first use. Each is a whole `TokenCache` made from the layer's `Config` with those
//! parameters: its own single flight, lifecycle, backoff, `401` invalidation, stats, metrics
//! label and store key.
//!
//! The map is bounded by `max_cached_tokens`: past it, the least recently used cache that no
//! request holds (a waiting caller, a request in flight with its token) is forgotten. One that
//! requests hold is never forgotten: that would free nothing while they run and would give
//! the next request a second flight for the same token. A forgotten cache is dropped, and its
//! token task aborted, with its last reference.
//!
//! What a token's cache learned of failures outlives it: a forgotten cache that was backing
//! off leaves its backoff behind (for at most `max_cached_tokens` forgotten tokens, those
//! free soonest dropped first), and the cache made again for that token takes it up. The
//! endpoint's transient failures are the layer's, shared by every cache (`backoff.rs`), so
//! neither the cap nor the number of distinct tokens changes how often a down endpoint is
//! asked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Extensions, Uri};

use crate::cache::select::{apply, key, takes, TokenKey};
use crate::cache::{EndpointBackoff, Resting, TokenCache};
use crate::config::{resolved_path, Config, TokenParams};
use crate::error::TokenError;

/// The caches of one layer: its own, its routes', and one per other token that its requests
/// needed.
pub(crate) struct TokenCaches {
    /// The layer's own token.
    pub(crate) default: Arc<TokenCache>,
    default_key: TokenKey,
    /// The token of each of `config.routes`, in the same order, with its key.
    routes: Vec<(TokenKey, Arc<TokenCache>)>,
    config: Config,
    /// The token endpoint's transient failures, which hold back every token of the layer.
    endpoint: Arc<EndpointBackoff>,
    others: Mutex<Others>,
}

#[derive(Default)]
struct Others {
    caches: HashMap<TokenKey, Used>,
    /// What forgotten caches learned, for the cache made again for their token.
    resting: HashMap<TokenKey, Resting>,
    /// Counts lookups: a cache's `last` is the count at its latest use.
    clock: u64,
}

struct Used {
    cache: Arc<TokenCache>,
    last: u64,
}

impl TokenCaches {
    pub(crate) fn new(config: &Config) -> Self {
        let endpoint = Arc::default();
        let default = TokenCache::new(config, &endpoint, Resting::default());
        let default_key = key(&TokenParams::new(), config);
        // Routes that come to the same token share its cache, the layer's own included.
        let mut made: Vec<(TokenKey, Arc<TokenCache>)> =
            vec![(default_key.clone(), default.clone())];
        let routes = config
            .selection
            .routes
            .iter()
            .map(|route| {
                let key = key(&route.params, config);
                if let Some(shared) = made.iter().find(|(made, _)| *made == key) {
                    return shared.clone();
                }
                let cache =
                    TokenCache::new(&apply(&route.params, config), &endpoint, Resting::default());
                made.push((key.clone(), Arc::clone(&cache)));
                (key, cache)
            })
            .collect();
        Self {
            default,
            default_key,
            routes,
            config: config.clone(),
            endpoint,
            others: Mutex::default(),
        }
    }

    /// The cache of the token that a request for `uri` with `extensions` needs. Without
    /// routes and without `TokenParams` in the request, the layer's own: no lookup, no
    /// reference count touched.
    ///
    /// # Errors
    ///
    /// A `TokenParams` in the extensions that could not be sent (a scope with a quote, a
    /// reserved parameter): the request is not sent.
    pub(crate) fn select(
        &self,
        uri: &Uri,
        extensions: &Extensions,
    ) -> Result<Cow<'_, Arc<TokenCache>>, TokenError> {
        if let Some(params) = extensions.get::<TokenParams>() {
            params.check().map_err(TokenError::token_params)?;
            return Ok(Cow::Owned(self.cache_for(params)));
        }
        if self.routes.is_empty() {
            return Ok(Cow::Borrowed(&self.default));
        }
        let route = self.route_of(uri);
        Ok(Cow::Borrowed(route.map_or(&self.default, |at| &self.routes[at].1)))
    }

    /// The route that a request for `uri` takes, if any. A path that servers resolve
    /// differently (an encoded `/`, say) takes none.
    pub(crate) fn route_of(&self, uri: &Uri) -> Option<usize> {
        let routes = &self.config.selection.routes;
        if routes.is_empty() {
            return None;
        }
        let path = resolved_path(uri.path())?;
        routes.iter().position(|route| takes(route, uri, &path))
    }

    /// The cache of the token these parameters ask for, made if there is none.
    pub(crate) fn cache_for(&self, params: &TokenParams) -> Arc<TokenCache> {
        let key = key(params, &self.config);
        if let Some(cache) = self.kept(&key) {
            return cache;
        }
        // Nothing under the lock panics but making a cache, which does not either; a poisoned
        // map is used as it is, each entry being whole.
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        others.clock += 1;
        let now = others.clock;
        if let Some(used) = others.caches.get_mut(&key) {
            used.last = now;
            return Arc::clone(&used.cache);
        }
        let max = self.config.limits.max_cached_tokens;
        while others.caches.len() >= max && others.forget_one(max) {}
        let resting = others.resting.remove(&key).unwrap_or_default();
        #[cfg_attr(not(feature = "store"), allow(unused_mut))]
        let mut config = apply(params, &self.config);
        // A source in a request's grant (a user's session) is this request's: the store names
        // every source alike (replicas share the layer's own), and would hand one user's token
        // to another. Its token stays in this process.
        #[cfg(feature = "store")]
        if params.grant.as_ref().is_some_and(crate::config::Grant::holds_source) {
            config.shared.store = None;
        }
        let cache = TokenCache::new(&config, &self.endpoint, resting);
        others.caches.insert(key, Used { cache: Arc::clone(&cache), last: now });
        cache
    }

    /// The cache of the token these parameters ask for, if there is one.
    pub(crate) fn find(&self, params: &TokenParams) -> Option<Arc<TokenCache>> {
        let key = key(params, &self.config);
        if let Some(cache) = self.kept(&key) {
            return Some(cache);
        }
        let others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        others.caches.get(&key).map(|used| Arc::clone(&used.cache))
    }

    /// The layer's own cache or a route's, if `key` is theirs: kept for the layer's life.
    fn kept(&self, key: &TokenKey) -> Option<Arc<TokenCache>> {
        if *key == self.default_key {
            return Some(Arc::clone(&self.default));
        }
        let route = self.routes.iter().find(|(route, _)| route == key);
        route.map(|(_, cache)| Arc::clone(cache))
    }
}

impl Others {
    /// Forgets the least recently used cache that nothing uses (no other holder, no token
    /// request running), keeping what it learned (for at most `max` tokens); `false` if every
    /// one is in use.
    fn forget_one(&mut self, max: usize) -> bool {
        let idle = self
            .caches
            .iter()
            .filter(|(_, used)| Arc::strong_count(&used.cache) == 1 && !used.cache.is_fetching());
        let oldest = idle.min_by_key(|(_, used)| used.last).map(|(key, _)| key.clone());
        let Some((key, used)) = oldest.and_then(|key| self.caches.remove_entry(&key)) else {
            return false;
        };
        if let Some(resting) = used.cache.take_resting() {
            if self.resting.len() >= max {
                let soonest = self.resting.iter().min_by_key(|(_, resting)| resting.retry_at());
                let soonest = soonest.map(|(key, _)| key.clone());
                soonest.and_then(|key| self.resting.remove(&key));
            }
            self.resting.insert(key, resting);
        }
        true
    }
}
