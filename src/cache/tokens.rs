//! [`TokenCaches`]: the tokens of one layer, one [`TokenCache`] per distinct token request.
//!
//! The layer's own token (its configured scopes, audience, resources and parameters) has its
//! cache at hand, and a request that names no other token never looks anything up. A request
//! whose [`TokenParams`] (in its extensions, or from a route matching its URI) come to another
//! token request gets that request's cache, made on first use: each with its own single
//! flight, lifecycle, backoff, `401` invalidation, stats and store key, because each is a
//! whole `TokenCache` made from the layer's `Config` with those parameters.
//!
//! The caches are bounded by `max_cached_tokens`: past it, the least recently used cache that
//! no request holds (a waiting caller, a request in flight with its token) is forgotten, else
//! the least recently used one. Forgetting drops the map's reference; once the last request
//! that holds it is done, the cache is dropped and its token task, if any, aborted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Extensions, Uri};

use crate::cache::TokenCache;
use crate::config::{Config, TokenKey, TokenParams};
use crate::error::TokenError;

/// The caches of one layer: its own, and one per other token that its requests needed.
pub(crate) struct TokenCaches {
    /// The layer's own token.
    pub(crate) default: Arc<TokenCache>,
    default_key: TokenKey,
    config: Config,
    others: Mutex<Others>,
}

#[derive(Default)]
struct Others {
    caches: HashMap<TokenKey, Used>,
    /// Counts lookups: a cache's `last` is the count at its latest use.
    clock: u64,
}

struct Used {
    cache: Arc<TokenCache>,
    last: u64,
}

impl TokenCaches {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            default: TokenCache::new(config),
            default_key: TokenParams::new().key(config),
            config: config.clone(),
            others: Mutex::default(),
        }
    }

    /// Whether a request with these extensions might need another token than the layer's:
    /// the layer has routes, or the request brings its own parameters. The fresh path asks
    /// this and nothing more.
    pub(crate) fn may_differ(&self, extensions: &Extensions) -> bool {
        !self.config.routes.is_empty() || extensions.get::<TokenParams>().is_some()
    }

    /// The cache of the token that a request for `uri` with `extensions` needs.
    ///
    /// # Errors
    ///
    /// A `TokenParams` in the extensions that could not be sent (a scope with a quote, a
    /// reserved parameter): the request is not sent.
    pub(crate) fn select(
        &self,
        uri: &Uri,
        extensions: &Extensions,
    ) -> Result<Arc<TokenCache>, TokenError> {
        let params = match extensions.get::<TokenParams>() {
            Some(params) => {
                params.check().map_err(TokenError::token_params)?;
                params
            }
            None => match self.config.routes.iter().find(|route| route.matches(uri)) {
                Some(route) => &route.params,
                None => return Ok(Arc::clone(&self.default)),
            },
        };
        Ok(self.cache_for(params))
    }

    /// The cache of the token these parameters ask for, made if there is none.
    pub(crate) fn cache_for(&self, params: &TokenParams) -> Arc<TokenCache> {
        let key = params.key(&self.config);
        if key == self.default_key {
            return Arc::clone(&self.default);
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
        if others.caches.len() >= self.config.max_cached_tokens {
            others.forget_one();
        }
        let cache = TokenCache::new(&params.apply(&self.config));
        others.caches.insert(key, Used { cache: Arc::clone(&cache), last: now });
        cache
    }

    /// The cache of the token these parameters ask for, if there is one.
    pub(crate) fn find(&self, params: &TokenParams) -> Option<Arc<TokenCache>> {
        let key = params.key(&self.config);
        if key == self.default_key {
            return Some(Arc::clone(&self.default));
        }
        let others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        others.caches.get(&key).map(|used| Arc::clone(&used.cache))
    }
}

impl Others {
    /// Forgets the least recently used cache that nothing else holds, else the least recently
    /// used.
    fn forget_one(&mut self) {
        let idle = |used: &&Used| Arc::strong_count(&used.cache) == 1;
        let oldest = |candidates: Vec<(&TokenKey, &Used)>| {
            candidates.into_iter().min_by_key(|(_, used)| used.last).map(|(key, _)| key.clone())
        };
        let all: Vec<_> = self.caches.iter().collect();
        let chosen = oldest(all.iter().copied().filter(|(_, used)| idle(used)).collect())
            .or_else(|| oldest(all));
        if let Some(key) = chosen {
            self.caches.remove(&key);
        }
    }
}
