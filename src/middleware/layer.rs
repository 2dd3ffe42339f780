//! [`ClientCredentialsLayer`]: the handle users keep, and the [`Layer`] that wraps services.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::cache::{Stats, TokenCaches};
use crate::config::{Config, TokenParams};
use crate::error::TokenError;
use crate::middleware::authorizer::Authorizer;
use crate::middleware::service::ClientCredentials;
use crate::token::AccessToken;

/// Adds an OAuth 2.0 client credentials bearer token to every request of the service it wraps.
///
/// Clones share one token cache, so one layer used for several clients (a hyper client and a
/// tonic channel, say) makes one token request per token lifetime for all of them. Creating
/// the layer fetches nothing: the first request does, or [`warm_up`](Self::warm_up).
///
/// # Example
///
/// ```
/// use tower::{ServiceBuilder, service_fn};
/// use tower_client_credentials::{ClientCredentialsLayer, Config};
///
/// let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
///     .scope("read")
///     .build()?;
/// let layer = ClientCredentialsLayer::new(config);
/// let service = ServiceBuilder::new().layer(layer.clone()).service(service_fn(
///     |request: http::Request<String>| async move {
///         // `request` carries `Authorization: Bearer <token>` here.
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     },
/// ));
/// # let _ = service;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientCredentialsLayer {
    pub(super) authorizer: Arc<Authorizer>,
}

impl ClientCredentialsLayer {
    /// Creates the layer and its (empty) token cache.
    pub fn new(config: Config) -> Self {
        Self { authorizer: Arc::new(Authorizer::new(&config)) }
    }

    fn caches(&self) -> &TokenCaches {
        &self.authorizer.caches
    }

    /// A usable token, for code outside a Tower stack: the cached one, or a new one if it has
    /// none (waiting for the token request already in flight, if any).
    ///
    /// # Errors
    ///
    /// The [`TokenError`] of the token request, or, while backing off after a failed one, that
    /// request's error at once.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let entry = Arc::clone(&self.caches().default).get().await?;
        Ok(entry.token.clone())
    }

    /// As [`token`](Self::token), for the token that requests with `params` get (see
    /// [`TokenParams`]): the layer's own if they come to the same token request.
    ///
    /// ```no_run
    /// # use tower_client_credentials::{ClientCredentialsLayer, Config, TokenParams};
    /// # async fn run(layer: ClientCredentialsLayer) -> Result<(), Box<dyn std::error::Error>> {
    /// let graph = layer.token_for(&TokenParams::new().scope("https://graph.microsoft.com/.default")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`token`](Self::token); a [`TokenParams`](crate::TokenErrorKind::TokenParams)
    /// error for parameters that cannot be sent.
    pub async fn token_for(&self, params: &TokenParams) -> Result<AccessToken, TokenError> {
        params.check().map_err(TokenError::token_params)?;
        let entry = self.caches().cache_for(params).get().await?;
        Ok(entry.token.clone())
    }

    /// Gets a token now rather than on the first request, so that bad credentials or an
    /// unreachable endpoint fail at start-up. Does nothing if a usable token is cached.
    ///
    /// # Errors
    ///
    /// As for [`token`](Self::token).
    pub async fn warm_up(&self) -> Result<(), TokenError> {
        Arc::clone(&self.caches().default).warm_up().await.map(drop)
    }

    /// A snapshot of the cache's counters: tokens fetched, failures, waits, stale serves, and
    /// the current token's remaining lifetime. For the layer's own token; see
    /// [`stats_for`](Self::stats_for) for the others.
    pub fn stats(&self) -> Stats {
        let mut stats = self.caches().default.stats();
        stats.requests_passed_through = self.authorizer.passed_through();
        stats
    }

    /// As [`stats`](Self::stats), for the token that requests with `params` get; `None` while
    /// the layer keeps no such token (none was needed yet, or it was
    /// [forgotten](crate::ConfigBuilder::max_cached_tokens)).
    ///
    /// ```
    /// # use tower_client_credentials::{ClientCredentialsLayer, Config, TokenParams};
    /// # let layer = ClientCredentialsLayer::new(Config::builder("https://a.example/t", "id", "s").build()?);
    /// assert!(layer.stats_for(&TokenParams::new().audience("orders")).is_none());
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn stats_for(&self, params: &TokenParams) -> Option<Stats> {
        self.caches().find(params).map(|cache| cache.stats())
    }
}

impl<S> Layer<S> for ClientCredentialsLayer {
    type Service = ClientCredentials<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCredentials::with_authorizer(inner, Arc::clone(&self.authorizer))
    }
}

impl fmt::Debug for ClientCredentialsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsLayer")
            .field("token_url", &self.caches().default.token_url())
            .field("client_id", &self.caches().default.client_id())
            .finish_non_exhaustive()
    }
}
