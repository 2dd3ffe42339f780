//! [`ClientCredentials`]: the service that puts the token on each request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::time::Instant;
use tower_service::Service;

use crate::cache::TokenCaches;
use crate::config::Config;
use crate::middleware::future::ResponseFuture;
use crate::middleware::layer::ClientCredentialsLayer;
use crate::middleware::Dpop;
use crate::BoxError;

/// Wraps a service so that each request carries `Authorization: Bearer <token>`.
///
/// Usually made by [`ClientCredentialsLayer`]. A request that already has an `Authorization`
/// header, or (with an allow-list) is for an origin not on it, is passed through untouched.
/// A `401` answer to our token drops that token, so that the next request gets a new one. With a usable token the header is added and the inner
/// service called at once; without one the response future first waits for the single token
/// request in flight.
///
/// Works for any request body, so it wraps hyper-util's client, a tonic `Channel`, or any
/// `Service<http::Request<B>>` that is `Clone` (the clone is used to wait for a token without
/// holding `&mut self`).
pub struct ClientCredentials<S> {
    inner: S,
    caches: Arc<TokenCaches>,
    dpop: Dpop,
}

impl<S> ClientCredentials<S> {
    /// Wraps `inner` with a token cache of its own. To share one cache between services, make
    /// them from one [`ClientCredentialsLayer`] instead.
    pub fn new(inner: S, config: Config) -> Self {
        Self::from_caches(inner, Arc::new(TokenCaches::new(&config)), Dpop::new(&config))
    }

    pub(crate) fn from_caches(inner: S, caches: Arc<TokenCaches>, dpop: Dpop) -> Self {
        Self { inner, caches, dpop }
    }

    /// A layer that wraps services with this middleware; the same as
    /// [`ClientCredentialsLayer::new`].
    pub fn layer(config: Config) -> ClientCredentialsLayer {
        ClientCredentialsLayer::new(config)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResB> Service<Request<B>> for ClientCredentials<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// # Panics
    ///
    /// When a token request must be started outside a Tokio runtime.
    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut cache = &self.caches.default;
        if !cache.allows(request.uri()) {
            return ResponseFuture::calling(self.inner.call(request), None);
        }
        // Another token than the layer's, by route or by the request's `TokenParams`; not for
        // a request that brings its own `Authorization`, which goes as it is.
        let selected;
        if self.caches.may_differ(request.extensions()) {
            if request.headers().contains_key(AUTHORIZATION) {
                return ResponseFuture::calling(self.inner.call(request), None);
            }
            selected = match self.caches.select(request.uri(), request.extensions()) {
                Ok(selected) => selected,
                Err(error) => {
                    return ResponseFuture::failed(error, cache, request, self.inner.clone())
                }
            };
            cache = &selected;
        }
        // With DPoP, each request also needs a proof of its own (`middleware/dpop.rs`).
        #[cfg(feature = "dpop")]
        if let Some(proofs) = &self.dpop.0 {
            return crate::middleware::dpop::call(&mut self.inner, cache, proofs, request);
        }
        if let Some((header, sent)) = cache.header(Instant::now()) {
            // Append, and in the rare case that the caller brought their own, take ours off
            // again: one lookup of `Authorization` on the path every request takes, not two.
            let sent = if request.headers_mut().append(AUTHORIZATION, header) {
                take_ours_off(request.headers_mut());
                None
            } else {
                Some(sent)
            };
            return ResponseFuture::calling(self.inner.call(request), sent);
        }
        if request.headers().contains_key(AUTHORIZATION) {
            return ResponseFuture::calling(self.inner.call(request), None);
        }
        // Waiting for the token happens in the future, with the service that `poll_ready`
        // readied; `self` keeps a fresh clone that must be readied before its next call.
        // See https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::waiting(cache, request, inner)
    }
}

/// Removes the `Authorization` value we appended after the caller's own, keeping theirs (all
/// of them, in order).
#[cold]
fn take_ours_off(headers: &mut HeaderMap) {
    let mut values: Vec<HeaderValue> = headers.get_all(AUTHORIZATION).iter().cloned().collect();
    values.pop();
    headers.remove(AUTHORIZATION);
    for value in values {
        headers.append(AUTHORIZATION, value);
    }
}

impl<S: Clone> Clone for ClientCredentials<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            caches: Arc::clone(&self.caches),
            dpop: self.dpop.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ClientCredentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("inner", &self.inner)
            .field("token_url", &self.caches.default.token_url())
            .field("client_id", &self.caches.default.client_id())
            .finish()
    }
}
