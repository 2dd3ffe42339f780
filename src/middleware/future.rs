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
use crate::middleware::retry;
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
        },
        Calling {
            #[pin]
            future: S::Future,
            // The token the request carries; `None` if it went without ours.
            sent: Option<SentToken>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future, sent: Option<SentToken>) -> Self {
        Self { state: State::Calling { future, sent } }
    }

    pub(crate) fn waiting(cache: &Arc<TokenCache>, request: Request<B>, inner: S) -> Self {
        let token = Box::pin(Arc::clone(cache).get());
        let cache = Arc::clone(cache);
        Self { state: State::WaitingForToken { token, cache, request: Some(request), inner } }
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
                StateProj::WaitingForToken { token, cache, request, inner } => {
                    let token = ready!(token.as_mut().poll(cx))?;
                    let Some(mut request) = request.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let (header, sent) = cache.outgoing(&token);
                    request.headers_mut().insert(AUTHORIZATION, header);
                    let future = inner.call(request);
                    this.state.set(State::Calling { future, sent: Some(sent) });
                }
                StateProj::Calling { future, sent } => {
                    let mut response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if response.status() == StatusCode::UNAUTHORIZED {
                        if let Some(sent) = sent.take() {
                            retry::rejected(&mut response, sent);
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
