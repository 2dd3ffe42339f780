//! [`ResponseFuture`]: the response future of [`ClientCredentials`](crate::ClientCredentials).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::Request;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::cache::Outcome;
use crate::BoxError;

type TokenFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pin_project! {
    /// Response future of [`ClientCredentials`](crate::ClientCredentials).
    ///
    /// With a usable token it only drives the inner service's future. Otherwise it first waits
    /// for the token (the only state that allocates, once per request that has to wait).
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
            request: Option<Request<B>>,
            // Readied by `poll_ready` before `call` swapped it out.
            inner: S,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future) -> Self {
        Self { state: State::Calling { future } }
    }

    pub(crate) fn waiting(
        token: impl Future<Output = Outcome> + Send + 'static,
        request: Request<B>,
        inner: S,
    ) -> Self {
        let token = Box::pin(token);
        Self { state: State::WaitingForToken { token, request: Some(request), inner } }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::WaitingForToken { token, request, inner } => {
                    let token = ready!(token.as_mut().poll(cx))?;
                    let Some(mut request) = request.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    request.headers_mut().insert(AUTHORIZATION, token.header_value().clone());
                    let future = inner.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => return future.poll(cx).map_err(Into::into),
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
