//! Real servers on loopback for the integration tests: a token endpoint that counts and records
//! what it receives and can be told how to answer (or to hold its answer), and a protected API
//! that records the `Authorization` header of each request.
#![allow(dead_code)] // each set of features uses a different part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::{any, post};
use axum::Router;
use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Layer, ServiceExt};
use tower_client_credentials::{
    BoxError, ClientCredentials, ClientCredentialsLayer, Config, ConfigBuilder, TokenParams,
};

#[cfg(feature = "dpop")]
pub mod dpop;
pub mod grants;
pub mod interop_server;
#[cfg(feature = "store")]
pub mod memory_store;
pub mod mtls;
pub mod named_tokens;
pub mod origin;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret";

/// One answer of the token server.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Send the body as a chunked stream, without `content-length`.
    pub chunked: bool,
    /// Answer after this long (the endpoint's latency).
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        let headers = vec![("content-type", "application/json".into())];
        Self { status, headers, body: body.into(), chunked: false, delay: Duration::ZERO }
    }

    /// A standard success: `token-<n>`, valid for `expires_in` seconds.
    pub fn token(n: usize, expires_in: u64) -> Self {
        Self::json(
            200,
            format!(
                r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":{expires_in}}}"#
            ),
        )
    }
}

/// What the token server received in one request.
#[derive(Clone, Debug)]
pub struct Received {
    /// Client id and secret from `Authorization: Basic`, each form-decoded as RFC 6749 §2.3.1 says.
    pub basic: Option<(String, String)>,
    pub form: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl Received {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

type Responder = Box<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

struct TokenState {
    count: watch::Sender<usize>,
    received: Mutex<Vec<Received>>,
    respond: Mutex<Responder>,
    /// `false` while answers are held back.
    open: watch::Sender<bool>,
}

/// A token endpoint on 127.0.0.1.
pub struct TokenServer {
    pub url: String,
    state: Arc<TokenState>,
}

impl TokenServer {
    /// Answers the `n`th request (from 1) with `token-<n>`, valid for an hour.
    pub async fn start() -> Self {
        Self::start_with(|n| Reply::token(n, 3600)).await
    }

    pub async fn start_with(respond: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_judging(move |n, _| respond(n)).await
    }

    /// Answers the `n`th request (from 1) as `respond` says after looking at what it received.
    pub async fn start_judging(
        respond: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(TokenState {
            count: watch::Sender::new(0),
            received: Mutex::default(),
            respond: Mutex::new(Box::new(respond)),
            open: watch::Sender::new(true),
        });
        let router = Router::new().route("/token", post(token_handler)).with_state(state.clone());
        let addr = serve(router).await;
        Self { url: format!("http://{addr}/token"), state }
    }

    /// A config builder for this server with the test credentials.
    pub fn config(&self) -> ConfigBuilder {
        Config::builder(&self.url, CLIENT_ID, CLIENT_SECRET)
    }

    /// [`config`](Self::config) with `refresh_ahead` 20 s and `expiry_margin` 10 s: a 100 s
    /// token is then fresh until 78–80 s (jitter) and usable until 90 s.
    pub fn windowed_config(&self) -> ConfigBuilder {
        self.config().refresh_ahead(Duration::from_secs(20)).expiry_margin(Duration::from_secs(10))
    }

    pub fn respond_with(&self, respond: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        *self.state.respond.lock().unwrap() = Box::new(move |n, _| respond(n));
    }

    /// Token requests received so far (counted on arrival, held or not).
    pub fn count(&self) -> usize {
        *self.state.count.borrow()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Holds every answer until [`release`](Self::release).
    pub fn hold(&self) {
        self.state.open.send_replace(false);
    }

    pub fn release(&self) {
        self.state.open.send_replace(true);
    }

    /// Waits (bounded) until at least `n` token requests have arrived.
    pub async fn wait_for_count(&self, n: usize) {
        let mut count = self.state.count.subscribe();
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|c| *c >= n))
            .await
            .expect("token requests did not arrive")
            .unwrap();
    }
}

async fn token_handler(
    State(state): State<Arc<TokenState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            let (id, secret) = v.split_once(':')?;
            Some((form_decode(id), form_decode(secret)))
        });
    let form = form_urlencoded::parse(&body).into_owned().collect();
    let received = Received { basic, form, headers };
    state.received.lock().unwrap().push(received.clone());
    let mut n = 0;
    state.count.send_modify(|c| {
        *c += 1;
        n = *c;
    });
    let _ = state.open.subscribe().wait_for(|open| *open).await;
    let reply = (state.respond.lock().unwrap())(n, &received);
    tokio::time::sleep(reply.delay).await;
    reply.into_response()
}

impl Reply {
    /// The answer as a response (its `delay` is the server's to wait).
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::builder().status(self.status);
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        let body = if self.chunked {
            let chunks: Vec<Result<String, std::convert::Infallible>> = self
                .body
                .as_bytes()
                .chunks(64 * 1024)
                .map(|c| Ok(String::from_utf8_lossy(c).into()))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        } else {
            Body::from(self.body)
        };
        response.body(body).unwrap()
    }
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A protected API on 127.0.0.1 that answers 200 with the `Authorization` it received as body,
/// or 401 without one or with one it is told to reject.
pub struct ApiServer {
    pub url: String,
    seen: Seen,
}

/// The `Authorization` header of each request, in order.
type Seen = Arc<Mutex<Vec<Option<String>>>>;
type Rejects = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl ApiServer {
    pub async fn start() -> Self {
        Self::start_rejecting(|_| false).await
    }

    /// Answers 401 (with `WWW-Authenticate: Bearer error="invalid_token"`) to every
    /// `Authorization` value for which `rejects` is true.
    pub async fn start_rejecting(rejects: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        let seen = Seen::default();
        let rejects: Rejects = Arc::new(rejects);
        let router = Router::new().fallback(any(api_handler)).with_state((seen.clone(), rejects));
        let addr = serve(router).await;
        Self { url: format!("http://{addr}/things"), seen }
    }

    /// The `Authorization` header of each request received, in order.
    pub fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

async fn api_handler(
    State((seen, rejects)): State<(Seen, Rejects)>,
    headers: HeaderMap,
) -> Response<Body> {
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    seen.lock().unwrap().push(auth.clone());
    let response = Response::builder();
    match auth {
        Some(auth) if !rejects(&auth) => response.status(StatusCode::OK).body(Body::from(auth)),
        _ => response
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", r#"Bearer error="invalid_token""#)
            .body(Body::empty()),
    }
    .unwrap()
}

/// A token endpoint that reads the request, then writes `response` (raw bytes) and closes the
/// connection. For answers no HTTP server would give.
pub async fn raw_token_server(response: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0; 8192];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(response).await;
        }
    });
    format!("http://{addr}/token")
}

/// Moves the current runtime's clock `by` ahead, then lets real time run again: for tests whose
/// servers run elsewhere (another runtime, another process), where paused time would fire
/// timeouts while an answer is on its way.
pub async fn jump(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// hyper-util's client wrapped in the layer: what users build.
pub fn api_client(layer: &ClientCredentialsLayer) -> ClientCredentials<HttpClient> {
    layer.layer(Client::builder(TokioExecutor::new()).build_http())
}

/// Sends a GET through `service`; returns the status and body.
pub async fn get(
    service: &ClientCredentials<HttpClient>,
    url: &str,
) -> Result<(u16, String), BoxError> {
    get_with(service, http::Request::get(url).body(Empty::new()).unwrap()).await
}

pub async fn get_with(
    service: &ClientCredentials<HttpClient>,
    request: http::Request<Empty<Bytes>>,
) -> Result<(u16, String), BoxError> {
    let response = service.clone().oneshot(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// The origin of `url` as `allowed_origin` and `route` take it (`http://127.0.0.1:8080`).
pub fn origin(url: &str) -> String {
    url::Url::parse(url).unwrap().origin().ascii_serialization()
}

/// A GET for `url` with `params` in its extensions: the token it gets is the one for `params`.
pub fn request_with(url: &str, params: TokenParams) -> http::Request<Empty<Bytes>> {
    let mut request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(params);
    request
}

/// Serves `router` on `addr` (`"127.0.0.1:0"`, `"[::1]:0"`) until the runtime ends.
pub async fn serve_on(addr: &str, router: Router) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// reqwest's client with the layer's middleware, as the README builds it.
#[cfg(feature = "reqwest-middleware")]
pub fn reqwest_client(layer: &ClientCredentialsLayer) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(layer.reqwest_middleware())
        .build()
}

/// The reqwest client as the docs say to build it: the client follows no redirect, the
/// middleware follows those within the origin (`redirect_policy()`).
#[cfg(feature = "reqwest-middleware")]
pub fn reqwest_client_with_our_redirects(
    layer: &ClientCredentialsLayer,
) -> reqwest_middleware::ClientWithMiddleware {
    let redirect = tower_client_credentials::ClientCredentialsMiddleware::redirect_policy();
    let reqwest = reqwest::Client::builder().redirect(redirect).build().unwrap();
    reqwest_middleware::ClientBuilder::new(reqwest).with(layer.reqwest_middleware()).build()
}

/// A folder of a test's own under the system's temporary directory, removed on drop.
pub struct Folder(pub std::path::PathBuf);

impl Folder {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tcc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces the file at `path` as a platform rotating it does: `content` and a newline written
/// beside it, then renamed over it, with a modification time a minute after the old file's so
/// that no file system's clock granularity can make the two look the same.
pub fn rotate(path: &std::path::Path, content: &str) {
    rotate_after(path, content, Duration::from_secs(60));
}

/// [`rotate`], the new file's modification time `shift` after the old one's (zero: the same,
/// for a change that only its inode and size tell).
pub fn rotate_after(path: &std::path::Path, content: &str, shift: Duration) {
    let new = path.with_extension("new");
    std::fs::write(&new, format!("{content}\n")).unwrap();
    if let Ok(old) = std::fs::metadata(path).and_then(|metadata| metadata.modified()) {
        let file = std::fs::File::options().write(true).open(&new).unwrap();
        file.set_modified(old + shift).unwrap();
    }
    std::fs::rename(&new, path).unwrap();
}
