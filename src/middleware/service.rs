//! [`ClientCredentials`]: the service that puts the token on each request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;
use tower_service::Service;

use crate::config::Config;
use crate::middleware::authorizer::{Authorizer, Outgoing};
use crate::middleware::future::ResponseFuture;
use crate::middleware::layer::ClientCredentialsLayer;
use tower::BoxError;

/// Wraps a service so that each request carries `Authorization: Bearer <token>`.
///
/// Usually made by [`ClientCredentialsLayer`]. A request that already has an `Authorization`
/// header, or (with an allow-list) is for an origin not on it, is passed through untouched.
/// A `401` answer to our token drops that token, so that the next request gets a new one.
/// With a usable token the header is added and the inner service called at once; without one
/// the response future first waits for the single token request in flight.
///
/// Works for any request body, so it wraps hyper-util's client, a tonic `Channel`, or any
/// `Service<http::Request<B>>` that is `Clone` (the clone is used to wait for a token without
/// holding `&mut self`).
pub struct ClientCredentials<S> {
    inner: S,
    authorizer: Arc<Authorizer>,
}

impl<S> ClientCredentials<S> {
    /// Wraps `inner` with a token cache of its own. To share one cache between services, make
    /// them from one [`ClientCredentialsLayer`] instead.
    pub fn new(inner: S, config: Config) -> Self {
        Self::with_authorizer(inner, Arc::new(Authorizer::new(&config)))
    }

    pub(crate) fn with_authorizer(inner: S, authorizer: Arc<Authorizer>) -> Self {
        Self { inner, authorizer }
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let (method, uri) = (request.method(), request.uri());
        let (headers, extensions) = (request.headers(), request.extensions());
        match self.authorizer.outgoing(method, uri, headers, extensions, Instant::now()) {
            Outgoing::Pass => ResponseFuture::calling(self.inner.call(request), None),
            Outgoing::Attach(attach) => {
                let sent = attach.apply(request.headers_mut());
                ResponseFuture::calling(self.inner.call(request), Some(sent))
            }
            Outgoing::Wait(cache) => {
                // Waiting for the token happens in the future, with the service that
                // `poll_ready` readied; `self` keeps a fresh clone that must be readied before
                // its next call. See https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(cache, request, inner, Arc::clone(&self.authorizer))
            }
            Outgoing::Fail(error) => ResponseFuture::failed(error),
        }
    }
}

impl<S: Clone> Clone for ClientCredentials<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), authorizer: Arc::clone(&self.authorizer) }
    }
}

impl<S: fmt::Debug> fmt::Debug for ClientCredentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("inner", &self.inner)
            .field("token_url", &self.authorizer.caches.default.token_url())
            .field("client_id", &self.authorizer.caches.default.client_id())
            .finish()
    }
}
