//! What the benchmarks share: a no-op inner service, the two baselines (a static header and a
//! hand-rolled mutex), a token endpoint on loopback, and the statistics they report.
#![allow(dead_code)] // each benchmark uses a different part

use std::cell::Cell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderValue, Request, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower::Layer;
use tower_client_credentials::{ClientCredentials, ClientCredentialsLayer, Config};
use tower_http::set_header::SetRequestHeader;
use tower_service::Service;

/// The inner service of the per-request benchmarks: it answers at once with an empty response
/// and sets the request aside (on this thread, for [`take_parked`]) instead of dropping it.
///
/// Setting the request aside lets a benchmark reuse one request, so that building and freeing
/// requests is no part of what is timed or counted. Its future is zero-sized, as a real
/// client's boxed future is small: the benchmarks should not time the copying of big futures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Park;

thread_local! {
    static PARKED: Cell<Option<Request<()>>> = const { Cell::new(None) };
}

/// The last request [`Park`] received on this thread.
pub fn take_parked() -> Option<Request<()>> {
    PARKED.take()
}

impl Service<Request<()>> for Park {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Answer {
        PARKED.set(Some(request));
        Answer
    }
}

/// [`Park`]'s response future: an empty `200 OK`, ready at once.
#[derive(Debug)]
pub struct Answer;

impl Future for Answer {
    type Output = Result<Response<()>, Infallible>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(Response::new(())))
    }
}

/// The request every per-request benchmark sends: a GET with one header already set, as API
/// calls usually have. That first header made the map allocate room for six, so adding
/// `Authorization` never grows it: map growth is the request's cost, not the middleware's.
pub fn api_request() -> Request<()> {
    Request::get("http://127.0.0.1/things")
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .body(())
        .expect("a valid request")
}

/// One request through `service`, as a caller sends it: `poll_ready`, `call`, and one poll of
/// the response future (every service here answers at once). Then the request is taken back
/// from [`Park`] and its `Authorization` removed (which drops the header, part of the cost of
/// having added it), ready for the next round trip.
pub fn round_trip<S>(service: &mut S, request: Request<()>) -> Request<()>
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        panic!("the service is not ready");
    };
    let mut future = pin!(service.call(request));
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        panic!("the response is not ready");
    };
    black_box(response);
    let mut request = take_parked().expect("the inner service is `Park`");
    request.headers_mut().remove(AUTHORIZATION);
    request
}

/// Runs `iterations` round trips through `service` and returns how long they took.
///
/// Never inlined: one copy of the loop per service, the same machine code wherever it is
/// timed from (copies inlined at different places can differ in speed by more than what
/// is measured).
#[inline(never)]
pub fn time_round_trips<S>(service: &mut S, iterations: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: fmt::Debug,
{
    time_round_trips_of(service, api_request(), iterations)
}

/// [`time_round_trips`] with `request` instead of [`api_request`]'s.
#[inline(never)]
pub fn time_round_trips_of<S>(
    service: &mut S,
    mut request: Request<()>,
    iterations: u64,
) -> Duration
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iterations {
        request = round_trip(service, request);
    }
    start.elapsed()
}

/// The hand-rolled alternative, for contrast: the token and its expiry behind a mutex, and a
/// new `Bearer` string formatted and turned into a header on every request.
///
/// A real one would fetch a new token while holding the lock when the token has expired (and
/// make every other request wait for it); the benchmarks give it a token that outlives them,
/// so that branch only panics.
#[derive(Clone, Debug)]
pub struct NaiveBearer<S> {
    inner: S,
    token: Arc<Mutex<Option<(String, Instant)>>>,
}

impl<S> NaiveBearer<S> {
    pub fn new(inner: S, token: &str, lifetime: Duration) -> Self {
        let token = Some((token.to_owned(), Instant::now() + lifetime));
        Self { inner, token: Arc::new(Mutex::new(token)) }
    }
}

impl<S, B> Service<Request<B>> for NaiveBearer<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let bearer = match &*self.token.lock().unwrap() {
            Some((token, expires_at)) if Instant::now() < *expires_at => format!("Bearer {token}"),
            _ => panic!("the naive baseline never fetches a token in these benchmarks"),
        };
        let header = HeaderValue::try_from(bearer).expect("a printable token");
        request.headers_mut().insert(AUTHORIZATION, header);
        self.inner.call(request)
    }
}

/// The services the per-request benchmarks compare, each around [`Park`].
#[derive(Clone)]
pub struct Services {
    /// No middleware: the baseline every added cost is measured from.
    pub bare: Park,
    /// tower-http's `SetRequestHeader::overriding` with one fixed `Bearer` header: the floor.
    pub static_header: SetRequestHeader<Park, HeaderValue>,
    /// The same with `if_not_present`, which, like our layer, first looks for an
    /// `Authorization` the caller set: the like-for-like floor.
    pub static_header_if_not_present: SetRequestHeader<Park, HeaderValue>,
    /// Our layer, with a fresh token.
    pub client_credentials: ClientCredentials<Park>,
    /// The hand-rolled mutex, with a valid token.
    pub naive_mutex: NaiveBearer<Park>,
}

/// A token endpoint on loopback and our layer holding a fresh token from it, for the
/// per-request benchmarks. The runtime lives as long as this does, to serve the endpoint and
/// any refresh (none happens: the token lasts an hour).
pub struct FreshToken {
    pub layer: ClientCredentialsLayer,
    token: String,
    _server: TokenServer,
    _runtime: Runtime,
}

impl FreshToken {
    const LIFETIME: Duration = Duration::from_secs(3600);

    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a Tokio runtime");
        let (server, layer, token) = runtime.block_on(async {
            let server = TokenServer::start(Duration::ZERO, Self::LIFETIME).await;
            let layer = ClientCredentialsLayer::new(server.config().build().unwrap());
            let token = layer.token().await.expect("a token from the loopback endpoint");
            (server, layer, token.secret().to_owned())
        });
        Self { layer, token, _server: server, _runtime: runtime }
    }

    pub fn services(&self) -> Services {
        Services {
            bare: Park,
            static_header: SetRequestHeader::overriding(Park, AUTHORIZATION, self.static_header()),
            static_header_if_not_present: SetRequestHeader::if_not_present(
                Park,
                AUTHORIZATION,
                self.static_header(),
            ),
            client_credentials: self.layer.layer(Park),
            naive_mutex: NaiveBearer::new(Park, &self.token, Self::LIFETIME),
        }
    }

    /// The same `Bearer` header our layer sends, built the way it builds it: from a string
    /// known only at run time, so its bytes are reference-counted like ours (a
    /// `HeaderValue::from_static` would have no count to touch, which no real token allows).
    pub fn static_header(&self) -> HeaderValue {
        bearer_header(&self.token)
    }
}

/// `Bearer <token>`, marked sensitive, as a header built at run time.
pub fn bearer_header(token: &str) -> HeaderValue {
    let mut header = HeaderValue::try_from(format!("Bearer {token}")).expect("a printable token");
    header.set_sensitive(true);
    header
}

/// A token endpoint on 127.0.0.1 that answers each request after `latency` with a new token
/// valid for `lifetime`, and remembers when each token it issued expires.
pub struct TokenServer {
    pub url: String,
    issued: Arc<Issued>,
}

struct Issued {
    latency: Duration,
    lifetime: Duration,
    requests: AtomicUsize,
    expiries: Mutex<HashMap<String, Instant>>,
}

impl TokenServer {
    pub async fn start(latency: Duration, lifetime: Duration) -> Self {
        let issued = Arc::new(Issued {
            latency,
            lifetime,
            requests: AtomicUsize::new(0),
            expiries: Mutex::default(),
        });
        let router = Router::new().route("/token", post(issue_token)).with_state(issued.clone());
        let addr = serve(router).await;
        Self { url: format!("http://{addr}/token"), issued }
    }

    /// A config for this endpoint with the benchmarks' credentials.
    pub fn config(&self) -> tower_client_credentials::ConfigBuilder {
        Config::builder(&self.url, "bench-client", "bench-secret")
    }

    /// Token requests received so far.
    pub fn requests(&self) -> usize {
        self.issued.requests.load(Relaxed)
    }

    /// Whether `token` was issued here (or [`trust`](Self::trust)ed) and has not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        let expiries = self.issued.expiries.lock().unwrap();
        expiries.get(token).is_some_and(|expires_at| Instant::now() < *expires_at)
    }

    /// Accepts `token` until `expires_at`, as if issued here: the static header's token.
    pub fn trust(&self, token: &str, expires_at: Instant) {
        self.issued.expiries.lock().unwrap().insert(token.to_owned(), expires_at);
    }
}

async fn issue_token(State(issued): State<Arc<Issued>>) -> Json<Value> {
    let n = issued.requests.fetch_add(1, Relaxed) + 1;
    // Timed from arrival, as the client times its token from sending the request.
    let expires_at = Instant::now() + issued.lifetime;
    tokio::time::sleep(issued.latency).await;
    // An opaque token of a common length (32 random bytes in base64url are 43 characters).
    let token = format!("opaque-token-{n:030}");
    issued.expiries.lock().unwrap().insert(token.clone(), expires_at);
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": issued.lifetime.as_secs(),
    }))
}

/// Serves `router` on a new loopback port.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the server runs") });
    addr
}

/// The median and interquartile range of a set of measurements.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
}

impl Spread {
    /// # Panics
    ///
    /// When `values` is empty.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        assert!(!values.is_empty(), "no measurements");
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Self { median: at(0.5), p25: at(0.25), p75: at(0.75) }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = f.precision().unwrap_or(2);
        write!(
            f,
            "{:.precision$} (IQR {:.precision$}-{:.precision$})",
            self.median, self.p25, self.p75
        )
    }
}

/// `"met"` or `"NOT met"`, for the goal lines.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}
