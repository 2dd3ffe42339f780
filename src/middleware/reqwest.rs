//! [`ClientCredentialsMiddleware`]: the layer's token on a reqwest client, through
//! reqwest-middleware (feature `reqwest-middleware`).
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use tower_client_credentials::{ClientCredentialsLayer, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
//!     .scope("orders:read")
//!     .build()?;
//! let layer = ClientCredentialsLayer::new(config); // also for hyper, tonic: one token for all
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(layer.reqwest_middleware())
//!     .build();
//! let response = client.get("https://orders.example.com/orders").send().await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! [`ClientCredentialsMiddleware`] says what it does.

use std::fmt;
use std::sync::Arc;

use ::reqwest::{Request, Response, StatusCode};
use http::header::AUTHORIZATION;
use http::{Extensions, Uri};
use reqwest_middleware::{Middleware, Next};
use tokio::time::Instant;

use crate::cache::{SentToken, TokenCache, TokenCaches};
use crate::config::Config;
use crate::middleware::layer::ClientCredentialsLayer;
use crate::middleware::NonceDemand;

/// A [`reqwest_middleware::Middleware`] that adds the bearer token of a
/// [`ClientCredentialsLayer`] to each request, drops a token the API answers `401` to, and
/// resends such a request once with the new token when it can be cloned.
///
/// Made by [`ClientCredentialsLayer::reqwest_middleware`] (sharing the layer's cache, and so
/// its token, with every Tower service of the layer) or [`new`](Self::new) (a cache of its
/// own). Clones share the cache.
///
/// It does what the Tower service does (DESIGN.md §3, §5), on the same cache:
///
/// - a request for an origin outside the layer's `allowed_origin` list, or that already has an
///   `Authorization` header (`bearer_auth`, `basic_auth`, `header`), is sent as it is, without
///   waiting for a token, and its `401` invalidates nothing;
/// - otherwise it gets the cached token (a stale one starts the one background refresh) or
///   waits for the token request in flight;
/// - a `401` is reported to the exact token the request carried, so a late `401` never drops
///   a newer token, at most once per `invalidation_interval`;
/// - when that `401` replaced the token and the request can be cloned
///   ([`reqwest::Request::try_clone`]: any body but a stream), it is resent once with the new
///   token. A streaming body cannot be sent twice: its `401` goes back to the caller, and the
///   next request carries the new token.
/// - with DPoP (feature `dpop`), each request gets its proof, and a `401` that demands a nonce
///   (`use_dpop_nonce`) is resent once with it, as above, without dropping the token.
///
/// Middleware runs in the order it was added, the first added seeing the request first. Add a
/// retry middleware (reqwest-retry's) *before* this one, so that each attempt passes through it
/// and takes the token current at that moment.
///
/// When no token can be had, the request fails with [`reqwest_middleware::Error::Middleware`],
/// holding the [`TokenError`](crate::TokenError):
///
/// ```
/// use tower_client_credentials::TokenError;
///
/// fn token_error(error: &reqwest_middleware::Error) -> Option<&TokenError> {
///     match error {
///         reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<TokenError>(),
///         reqwest_middleware::Error::Reqwest(_) => None,
///     }
/// }
/// ```
///
/// # Example
///
/// ```
/// use reqwest_middleware::ClientBuilder;
/// use tower_client_credentials::{ClientCredentialsMiddleware, Config};
///
/// let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
///     .allowed_origin("https://orders.example.com") // the token goes there only
///     .build()?;
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(ClientCredentialsMiddleware::new(config))
///     .build();
/// # let _ = client;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientCredentialsMiddleware {
    caches: Arc<TokenCaches>,
    #[cfg(feature = "dpop")]
    dpop: crate::middleware::Dpop,
}

/// The token a request carries, and with DPoP what its response needs.
struct Attached {
    sent: SentToken,
    #[cfg(feature = "dpop")]
    proved: crate::middleware::Proved,
}

impl Attached {
    /// Keeps the nonce `response` gives (DPoP), and says whether it is a `401` that asks for
    /// one: no rejection of the token, and worth a resend when the nonce can be used.
    #[cfg(feature = "dpop")]
    fn nonce_demand(&mut self, response: &Response) -> NonceDemand {
        self.proved.take().map_or(NonceDemand::None, |proved| {
            proved.nonce_demand(response.status(), response.headers())
        })
    }

    #[cfg(not(feature = "dpop"))]
    fn nonce_demand(&mut self, _: &Response) -> NonceDemand {
        NonceDemand::None
    }
}

impl ClientCredentialsMiddleware {
    /// The middleware with a token cache of its own. To share one token with Tower services,
    /// use [`ClientCredentialsLayer::reqwest_middleware`] instead.
    pub fn new(config: Config) -> Self {
        Self {
            caches: Arc::new(TokenCaches::new(&config)),
            #[cfg(feature = "dpop")]
            dpop: crate::middleware::Dpop::new(&config),
        }
    }

    /// The request's URI, if it may carry our token: it has no `Authorization` of the
    /// caller's, its URL is a URI (reqwest refuses to send one that is not, e.g. over 64 KiB),
    /// and the allow-list (if any) has its origin.
    fn takes_token(&self, request: &Request) -> Option<Uri> {
        if request.headers().contains_key(AUTHORIZATION) {
            return None;
        }
        let uri = Uri::try_from(request.url().as_str()).ok()?;
        self.caches.default.allows(&uri).then_some(uri)
    }

    /// Puts the token on `request` (the cached one, or the one the token request brings), and
    /// with DPoP its proof.
    async fn attach(
        &self,
        request: &mut Request,
        #[cfg_attr(not(feature = "dpop"), allow(unused_variables))] uri: &Uri,
        cache: &Arc<TokenCache>,
    ) -> reqwest_middleware::Result<Attached> {
        let (header, sent) = match cache.header(Instant::now()) {
            Some(usable) => usable,
            None => {
                let entry = Arc::clone(cache).get().await;
                let entry = entry.map_err(reqwest_middleware::Error::middleware)?;
                cache.outgoing(&entry)
            }
        };
        #[cfg(feature = "dpop")]
        let proved = self.prove(request, uri, &header)?;
        request.headers_mut().insert(AUTHORIZATION, header);
        Ok(Attached {
            sent,
            #[cfg(feature = "dpop")]
            proved,
        })
    }

    /// Adds the DPoP proof for a request that is to carry our token in `header`.
    #[cfg(feature = "dpop")]
    fn prove(
        &self,
        request: &mut Request,
        uri: &Uri,
        header: &http::HeaderValue,
    ) -> reqwest_middleware::Result<crate::middleware::Proved> {
        let Some(proofs) = &self.dpop.0 else { return Ok(None) };
        let proof = proofs.proof_for(request.method(), uri, header);
        let Some((proof, proved)) = proof.map_err(reqwest_middleware::Error::middleware)? else {
            return Ok(None);
        };
        request.headers_mut().insert(crate::request::dpop::DPOP, proof);
        Ok(Some(proved))
    }
}

impl ClientCredentialsLayer {
    /// A middleware for reqwest-middleware's `ClientBuilder::with(..)`, on this layer's token
    /// cache: a reqwest client, a hyper client and a tonic channel made with one layer share
    /// one token (feature `reqwest-middleware`).
    ///
    /// ```
    /// use reqwest_middleware::ClientBuilder;
    /// use tower_client_credentials::{ClientCredentialsLayer, Config};
    ///
    /// # let config = Config::builder("https://auth.example.com/token", "id", "secret").build()?;
    /// let layer = ClientCredentialsLayer::new(config);
    /// let client = ClientBuilder::new(reqwest::Client::new())
    ///     .with(layer.reqwest_middleware())
    ///     .build();
    /// // `layer.stats()` counts the reqwest client's token use too.
    /// # let _ = client;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn reqwest_middleware(&self) -> ClientCredentialsMiddleware {
        ClientCredentialsMiddleware {
            caches: Arc::clone(&self.caches),
            #[cfg(feature = "dpop")]
            dpop: self.dpop.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for ClientCredentialsMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(uri) = self.takes_token(&request) else {
            return next.run(request, extensions).await;
        };
        // The token the request needs: by route, or a `TokenParams` given with
        // `RequestBuilder::with_extension`.
        let cache =
            self.caches.select(&uri, extensions).map_err(reqwest_middleware::Error::middleware)?;
        // Before the token goes on: the copy to resend takes the token current then.
        let copy = request.try_clone();
        let mut attached = self.attach(&mut request, &uri, &cache).await?;
        let response = next.clone().run(request, extensions).await?;
        // A DPoP nonce demanded says nothing against the token, and is worth a resend when
        // the nonce can be used; any other `401` is, when it dropped the token (a new one is
        // coming).
        let demand = attached.nonce_demand(&response);
        let resend = response.status() == StatusCode::UNAUTHORIZED
            && match demand {
                NonceDemand::None => attached.sent.rejected(),
                NonceDemand::Resend => true,
                NonceDemand::Unusable => false,
            };
        if !resend {
            return Ok(response);
        }
        // A stream cannot be sent again.
        let Some(mut request) = copy else { return Ok(response) };
        drop(response);
        let mut attached = self.attach(&mut request, &uri, &cache).await?;
        let response = next.run(request, extensions).await?;
        let demand = attached.nonce_demand(&response);
        if response.status() == StatusCode::UNAUTHORIZED && demand == NonceDemand::None {
            attached.sent.rejected();
        }
        Ok(response)
    }
}

impl fmt::Debug for ClientCredentialsMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsMiddleware")
            .field("token_url", &self.caches.default.token_url())
            .field("client_id", &self.caches.default.client_id())
            .finish_non_exhaustive()
    }
}
