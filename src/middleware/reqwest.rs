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

use ::reqwest::{Request, Response};
use http::{Extensions, Uri};
use reqwest_middleware::{Error, Middleware, Next};
use tokio::time::Instant;

use crate::config::Config;
use crate::middleware::authorizer::{other_origin, Authorizer, Outgoing, Sent, Verdict};
use crate::middleware::layer::ClientCredentialsLayer;

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
    authorizer: Arc<Authorizer>,
}

impl ClientCredentialsMiddleware {
    /// The middleware with a token cache of its own. To share one token with Tower services,
    /// use [`ClientCredentialsLayer::reqwest_middleware`] instead.
    pub fn new(config: Config) -> Self {
        Self { authorizer: Arc::new(Authorizer::new(&config)) }
    }

    /// A redirect policy for the reqwest client under this middleware: it follows redirects
    /// within the origin the request was sent to (at most 10, as reqwest's default does), and
    /// stops at a redirect to another origin, handing its `3xx` back to the caller.
    ///
    /// reqwest's default policy follows a redirect anywhere and takes `Authorization` off on
    /// the way to another origin, but no other header: a DPoP proof (feature `dpop`) would
    /// follow, and a middleware sees neither the redirect nor the next request. With this
    /// policy nothing of ours reaches an origin it was not sent to. Without DPoP the default
    /// policy is safe too; this one also spares the other origin a request that has lost its
    /// token. Either way the middleware judges an answer only by the origin it came from: a
    /// `401` or a nonce from another origin says nothing about our token.
    ///
    /// ```
    /// use reqwest_middleware::ClientBuilder;
    /// use tower_client_credentials::{ClientCredentialsMiddleware, Config};
    ///
    /// # let config = Config::builder("https://auth.example.com/token", "id", "secret").build()?;
    /// let client = reqwest::Client::builder()
    ///     .redirect(ClientCredentialsMiddleware::redirect_policy())
    ///     .build()
    ///     .expect("a client");
    /// let client = ClientBuilder::new(client).with(ClientCredentialsMiddleware::new(config)).build();
    /// # let _ = client;
    /// # Ok::<(), tower_client_credentials::ConfigError>(())
    /// ```
    pub fn redirect_policy() -> reqwest::redirect::Policy {
        let limited = reqwest::redirect::Policy::default();
        reqwest::redirect::Policy::custom(move |attempt| {
            let from = attempt.previous().last().map(url::Url::origin);
            if from == Some(attempt.url().origin()) {
                limited.redirect(attempt)
            } else {
                attempt.stop()
            }
        })
    }

    /// Puts what [`Authorizer::outgoing`] decided on `request` for `uri`, waiting for the
    /// token first if it must: `None` for a request that goes as it is.
    async fn authorize(
        &self,
        decision: Outgoing<'_>,
        request: &mut Request,
        uri: &Uri,
    ) -> reqwest_middleware::Result<Option<Sent>> {
        let attach = match decision {
            Outgoing::Pass => return Ok(None),
            Outgoing::Attach(attach) => attach,
            Outgoing::Wait(cache) => {
                let entry = Arc::clone(&cache).get().await.map_err(Error::middleware)?;
                let attach = self.authorizer.attach(&cache, &entry, request.method(), uri);
                attach.map_err(Error::middleware)?
            }
            Outgoing::Fail(error) => return Err(Error::middleware(error)),
        };
        Ok(Some(attach.apply(request.headers_mut())))
    }

    fn decide<'a>(&'a self, request: &Request, uri: &Uri, extensions: &Extensions) -> Outgoing<'a> {
        let headers = request.headers();
        self.authorizer.outgoing(request.method(), uri, headers, extensions, Instant::now())
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
        ClientCredentialsMiddleware { authorizer: Arc::clone(&self.authorizer) }
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
        // reqwest refuses to send a URL that is no URI (over 64 KiB, say): it goes as it is.
        let Ok(uri) = Uri::try_from(request.url().as_str()) else {
            return next.run(request, extensions).await;
        };
        let decision = self.decide(&request, &uri, extensions);
        if let Outgoing::Pass = decision {
            return next.run(request, extensions).await;
        }
        // Taken before the token goes on: a resend takes the token current then. A streaming
        // body cannot be sent twice, and gives none.
        let copy = request.try_clone();
        let sent = self.authorize(decision, &mut request, &uri).await?;
        let response = next.clone().run(request, extensions).await?;
        let Some(sent) = sent else { return Ok(response) };
        let elsewhere = other_origin(&uri, response.url());
        let verdict = sent.judge(response.status(), response.headers(), elsewhere);
        let (Verdict::Unauthorized { resend: true }, Some(mut request)) = (verdict, copy) else {
            return Ok(response);
        };
        drop(response);
        let decision = self.decide(&request, &uri, extensions);
        let sent = self.authorize(decision, &mut request, &uri).await?;
        let response = next.run(request, extensions).await?;
        if let Some(sent) = sent {
            // Once only: what this answer teaches reaches the cache, and the caller gets it.
            let elsewhere = other_origin(&uri, response.url());
            sent.judge(response.status(), response.headers(), elsewhere);
        }
        Ok(response)
    }
}

impl fmt::Debug for ClientCredentialsMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsMiddleware")
            .field("token_url", &self.authorizer.caches.default.token_url())
            .field("client_id", &self.authorizer.caches.default.client_id())
            .finish_non_exhaustive()
    }
}
