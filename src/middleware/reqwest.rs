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

use ::reqwest::{Method, Request, Response, StatusCode};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, TRANSFER_ENCODING};
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
///   (`use_dpop_nonce`) is resent once with it, as above, without dropping the token;
/// - an answer from another origin than the one the token went to (a redirect the client
///   followed) teaches nothing: no `401`, no nonce. Build the client with
///   [`redirect_policy`](Self::redirect_policy), and the middleware follows redirects within
///   the origin itself, each hop with its own token and proof, and hands back the others.
///
/// Middleware runs in the order it was added, the first added seeing the request first. Add a
/// retry middleware (reqwest-retry's) *before* this one, so that each attempt passes through it
/// and takes the token current at that moment.
///
/// When no token can be had, the request fails with [`reqwest_middleware::Error::Middleware`],
/// holding the [`TokenError`](crate::TokenError), which
/// [`TokenError::find`](crate::TokenError::find) finds:
///
/// ```
/// use tower_client_credentials::TokenError;
///
/// fn token_error(error: &reqwest_middleware::Error) -> Option<&TokenError> {
///     TokenError::find(error)
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
    /// The most redirects within an origin that the middleware follows in a row for one
    /// request, with [`redirect_policy`](Self::redirect_policy): reqwest's own default.
    pub const MAX_REDIRECTS: usize = 10;

    /// The middleware with a token cache of its own. To share one token with Tower services,
    /// use [`ClientCredentialsLayer::reqwest_middleware`] instead.
    pub fn new(config: Config) -> Self {
        Self { authorizer: Arc::new(Authorizer::new(&config)) }
    }

    /// The redirect policy for the reqwest client under this middleware: the client follows
    /// no redirect itself, and the middleware follows those within the origin a request with
    /// our token was sent to (at most [`MAX_REDIRECTS`](Self::MAX_REDIRECTS) in a row, as reqwest's default), each
    /// hop decided anew: the token its path's route takes, a DPoP proof for its own URL. A
    /// redirect to another origin is handed back to the caller with its `3xx`.
    ///
    /// reqwest's default policy follows a redirect anywhere, taking `Authorization` off on the
    /// way to another origin but no other header, and sends each hop the first hop's headers:
    /// a DPoP proof (feature `dpop`) would reach the other origin, and within the origin a
    /// proof for the wrong URL or a route's token would reach another path. No middleware
    /// sees those hops. With this policy nothing of ours reaches a URL it was not made for.
    /// Whatever the policy, the middleware judges an answer only by the origin it came from:
    /// a `401` or a nonce from another origin says nothing about our token.
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
        reqwest::redirect::Policy::none()
    }

    /// Puts what [`Authorizer::outgoing`] decided on `request` for `uri`, waiting for the
    /// token first if it must: `None` for a request that goes as it is.
    async fn authorize(
        &self,
        decision: Outgoing,
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

    fn decide(&self, request: &Request, uri: &Uri, extensions: &Extensions) -> Outgoing {
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
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // reqwest refuses to send a URL that is no URI (over 64 KiB, say): it goes as it is.
        let Ok(uri) = Uri::try_from(request.url().as_str()) else {
            return next.run(request, extensions).await;
        };
        let mut decision = self.decide(&request, &uri, extensions);
        if let Outgoing::Pass = decision {
            return next.run(request, extensions).await;
        }
        // A request's `TokenParams` name the token for its own URL: a hop to another route's
        // path takes that route's token instead.
        let route = self.authorizer.caches.route_of(&uri);
        let mut own_params = true;
        let (mut request, mut uri) = (request, uri);
        let (mut resent, mut redirects) = (false, 0);
        loop {
            // Taken before our headers go on: a resend or a redirect takes its own. A
            // streaming body cannot be sent twice, and gives none.
            let copy = request.try_clone();
            let sent = self.authorize(decision, &mut request, &uri).await?;
            let response = next.clone().run(request, extensions).await?;
            let Some(sent) = sent else { return Ok(response) };
            let elsewhere = other_origin(&uri, response.url());
            let verdict = sent.judge(response.status(), response.headers(), elsewhere);
            let Some(copy) = copy else { return Ok(response) };
            request = match verdict {
                // Once: a new token, or a proof with the nonce asked for, goes with it.
                Verdict::Unauthorized { resend: true } if !resent => {
                    resent = true;
                    copy
                }
                _ if redirects < Self::MAX_REDIRECTS => match redirected(copy, &response) {
                    Some(redirected) => {
                        redirects += 1;
                        redirected
                    }
                    None => return Ok(response),
                },
                _ => return Ok(response),
            };
            drop(response);
            uri = Uri::try_from(request.url().as_str()).map_err(Error::middleware)?;
            own_params &= self.authorizer.caches.route_of(&uri) == route;
            decision = match own_params {
                true => self.decide(&request, &uri, extensions),
                false => self.decide(&request, &uri, &Extensions::new()),
            };
        }
    }
}

/// The request that a redirect within the origin asks for, made from `request` (a copy of
/// the one sent, without our headers) as reqwest would make it: `303` (and `301`, `302` after
/// a `POST`) as a `GET` without a body, `307` and `308` as they were. `None` when `response`
/// is no such redirect: another status, no usable `Location`, or another origin.
fn redirected(mut request: Request, response: &Response) -> Option<Request> {
    let status = response.status();
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let url = response.url().join(location).ok()?;
    if url.origin() != response.url().origin() {
        return None;
    }
    let to_get = match status {
        StatusCode::SEE_OTHER => request.method() != Method::HEAD,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => request.method() == Method::POST,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => false,
        _ => return None,
    };
    if to_get {
        *request.method_mut() = Method::GET;
        *request.body_mut() = None;
        for header in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
            request.headers_mut().remove(header);
        }
    }
    *request.url_mut() = url;
    Some(request)
}

impl fmt::Debug for ClientCredentialsMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsMiddleware")
            .field("token_url", &self.authorizer.caches.default.token_url())
            .field("client_id", &self.authorizer.caches.default.client_id())
            .finish_non_exhaustive()
    }
}
