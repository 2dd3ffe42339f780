//! [`ResponseFuture`]: the response future of [`ClientCredentials`](crate::ClientCredentials).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::cache::{Outcome, TokenCache};
use crate::error::TokenError;
use crate::middleware::authorizer::{Authorizer, Sent, Verdict};
use crate::middleware::retry;
use tower::BoxError;

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
            // Puts the token (and its proof) on the request once it is there.
            authorizer: Arc<Authorizer>,
        },
        Calling {
            #[pin]
            future: S::Future,
            // What the request carries of ours; `None` if it went without.
            sent: Option<Sent>,
        },
        // Nothing was sent: the token parameters cannot be, or no proof could be made.
        Failed {
            error: Option<TokenError>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn calling(future: S::Future, sent: Option<Sent>) -> Self {
        Self { state: State::Calling { future, sent } }
    }

    /// Waits for the token of `cache`, then sends `request` with it through `inner`.
    pub(crate) fn waiting(
        cache: Arc<TokenCache>,
        request: Request<B>,
        inner: S,
        authorizer: Arc<Authorizer>,
    ) -> Self {
        let token = Box::pin(Arc::clone(&cache).get());
        let request = Some(request);
        Self { state: State::WaitingForToken { token, cache, request, inner, authorizer } }
    }

    /// Answers with `error`, sending nothing.
    pub(crate) fn failed(error: TokenError) -> Self {
        Self { state: State::Failed { error: Some(error) } }
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
                StateProj::WaitingForToken { token, cache, request, inner, authorizer } => {
                    let entry = ready!(token.as_mut().poll(cx))?;
                    let Some(mut request) = request.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let (method, uri) = (request.method(), request.uri());
                    let attach = authorizer.attach(cache, &entry, method, uri)?;
                    let sent = attach.apply(request.headers_mut());
                    let future = inner.call(request);
                    this.state.set(State::Calling { future, sent: Some(sent) });
                }
                StateProj::Calling { future, sent } => {
                    let mut response = ready!(future.poll(cx)).map_err(Into::into)?;
                    // A Tower client answers for the URI it was given: the same origin.
                    let verdict = sent
                        .take()
                        .map(|sent| sent.judge(response.status(), response.headers(), false));
                    if let Some(Verdict::Unauthorized { resend }) = verdict {
                        retry::mark(&mut response, resend);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Err(error.into()));
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
