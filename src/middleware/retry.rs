//! When the API answers `401 Unauthorized` to a request that carried our token (DESIGN.md §3).
//!
//! The response future tells the cache, which drops exactly that token (a newer one is never
//! evicted by a late `401`), at most once per `invalidation_interval`; the next request waits
//! for a new token. Any `401` counts, whether or not it has `WWW-Authenticate: Bearer
//! error="invalid_token"`: APIs that reject a token do not all say so.
//!
//! Resending the rejected request is opt-in, with [`RetryUnauthorized`] as a
//! `tower::retry` policy, because only a request whose body can be replayed can be resent.

use http::{Request, Response};
use tower::retry::Policy;

/// Left in the extensions of a `401` response to our token: will a new attempt carry
/// something new, a new token (the token was dropped) or, with DPoP, a proof with the nonce
/// the server asked for?
#[derive(Debug, Clone, Copy)]
struct TokenRejected {
    resend: bool,
}

/// Marks a `401` to our token: `resend` when another attempt would carry something new.
pub(crate) fn mark<B>(response: &mut Response<B>, resend: bool) {
    response.extensions_mut().insert(TokenRejected { resend });
}

/// A [`tower::retry::Policy`] that resends a request once when the API rejected its token
/// with `401` and the token was replaced.
///
/// Put it outside [`ClientCredentialsLayer`](crate::ClientCredentialsLayer), so that the
/// resent request goes through the layer again and gets the new token. Only for request
/// bodies that are `Clone` (`String`, `Full<Bytes>`, `Empty<Bytes>`...); streaming bodies
/// such as hyper's `Incoming` cannot be replayed, so services with those simply go without.
///
/// A request is resent at most once, and only when its `401` invalidated the token: if a
/// token was invalidated within `invalidation_interval` already, the `401` is returned as it
/// is rather than spending another token request. With DPoP (feature `dpop`), a `401` that
/// asks for a nonce (`WWW-Authenticate: DPoP error="use_dpop_nonce"` with a `DPoP-Nonce`) is
/// resent too, once, with the same token and a proof that carries the nonce.
///
/// # Example
///
/// ```
/// use tower::retry::RetryLayer;
/// use tower::{service_fn, ServiceBuilder};
/// use tower_client_credentials::{ClientCredentialsLayer, Config, RetryUnauthorized};
///
/// # let config = Config::builder("https://auth.example.com/token", "id", "secret").build()?;
/// let service = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryUnauthorized::new()))
///     .layer(ClientCredentialsLayer::new(config))
///     .service(service_fn(|_: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     }));
/// # let _ = service;
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RetryUnauthorized {
    retried: bool,
}

impl RetryUnauthorized {
    /// A policy that has not retried yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Clone, ResB, E> Policy<Request<B>, Response<ResB>, E> for RetryUnauthorized {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<ResB>, E>,
    ) -> Option<Self::Future> {
        let rejected = result.as_ref().ok()?.extensions().get::<TokenRejected>()?;
        if self.retried || !rejected.resend {
            return None;
        }
        self.retried = true;
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        if self.retried {
            return None;
        }
        let mut clone = Request::new(request.body().clone());
        *clone.method_mut() = request.method().clone();
        *clone.uri_mut() = request.uri().clone();
        *clone.version_mut() = request.version();
        *clone.headers_mut() = request.headers().clone();
        *clone.extensions_mut() = request.extensions().clone();
        Some(clone)
    }
}
