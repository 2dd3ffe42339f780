//! [`ResponseFuture`]: the response future of [`ClientCredentials`](crate::ClientCredentials).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::cache::{Outcome, SentToken, TokenCache};
use crate::middleware::{retry, Dpop, NonceDemand, Proved};
use crate::BoxError;

type TokenFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pin_project! {
    /// Response future of [`ClientCredentials`](crate::ClientCredentials).
    ///
    /// With a usable token it only drives the inner service's future. Otherwise it first waits
    /// for the token (the only state that allocates, once per request that has to wait). A
    /// `401` answer to our token is reported to the cache.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        WaitingForToken {
            token: TokenFuture,
            cache: Arc<TokenCache>,
            request: Option<Request<B>>,
            // Readied by `poll_ready` before `call` swapped it out.
            inner: S,
            // Proofs to add once the token is there, with DPoP.
            dpop: Dpop,
        },
        Calling {
            #[pin]
            future: S::Future,
            // The token the request carries; `None` if it went without ours.
            sent: Option<SentToken>,
            // Where the request's proof was for, with DPoP, for the nonce its answer may give.
            proved: Proved,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future, sent: Option<SentToken>) -> Self {
        Self { state: State::Calling { future, sent, proved: Proved::default() } }
    }

    pub(crate) fn waiting(cache: &Arc<TokenCache>, request: Request<B>, inner: S) -> Self {
        Self::waiting_for(Box::pin(Arc::clone(cache).get()), cache, request, inner, Dpop::default())
    }

    fn waiting_for(
        token: TokenFuture,
        cache: &Arc<TokenCache>,
        request: Request<B>,
        inner: S,
        dpop: Dpop,
    ) -> Self {
        let cache = Arc::clone(cache);
        let request = Some(request);
        Self { state: State::WaitingForToken { token, cache, request, inner, dpop } }
    }

    /// A request that carries our token and its proof `proved`.
    #[cfg(feature = "dpop")]
    pub(crate) fn proved(future: S::Future, sent: SentToken, proved: Proved) -> Self {
        Self { state: State::Calling { future, sent: Some(sent), proved } }
    }

    /// Waits for a token, then adds it and its proof.
    #[cfg(feature = "dpop")]
    pub(crate) fn waiting_with_proofs(
        cache: &Arc<TokenCache>,
        request: Request<B>,
        inner: S,
        proofs: Arc<crate::middleware::dpop::ApiProofs>,
    ) -> Self {
        let token = Box::pin(Arc::clone(cache).get());
        Self::waiting_for(token, cache, request, inner, Dpop(Some(proofs)))
    }

    /// Answers with `error` (no proof could be made, the token parameters cannot be sent),
    /// sending nothing.
    pub(crate) fn failed(
        error: crate::error::TokenError,
        cache: &Arc<TokenCache>,
        request: Request<B>,
        inner: S,
    ) -> Self {
        let token = Box::pin(std::future::ready(Err(error)));
        Self::waiting_for(token, cache, request, inner, Dpop::default())
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::WaitingForToken { token, cache, request, inner, dpop } => {
                    let token = ready!(token.as_mut().poll(cx))?;
                    let Some(mut request) = request.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let (header, sent) = cache.outgoing(&token);
                    #[cfg(feature = "dpop")]
                    let proved = match &dpop.0 {
                        Some(proofs) => proofs.prove(&mut request, &header)?,
                        None => None,
                    };
                    #[cfg(not(feature = "dpop"))]
                    let (proved, Dpop()) = ((), std::mem::take(dpop));
                    request.headers_mut().insert(AUTHORIZATION, header);
                    let future = inner.call(request);
                    this.state.set(State::Calling { future, sent: Some(sent), proved });
                }
                StateProj::Calling { future, sent, proved } => {
                    let mut response = ready!(future.poll(cx)).map_err(Into::into)?;
                    // A nonce the resource server asked for is no verdict on the token.
                    #[cfg(feature = "dpop")]
                    let demand = proved.take().map_or(NonceDemand::None, |proved| {
                        proved.nonce_demand(response.status(), response.headers())
                    });
                    #[cfg(not(feature = "dpop"))]
                    let ((), demand) = (*proved, NonceDemand::None);
                    if response.status() == StatusCode::UNAUTHORIZED {
                        if let Some(sent) = sent.take() {
                            match demand {
                                NonceDemand::None => retry::rejected(&mut response, sent),
                                NonceDemand::Resend => retry::nonce_demanded(&mut response),
                                NonceDemand::Unusable => {}
                            }
                        }
                    }
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
