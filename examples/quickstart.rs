//! The crate doing its job, end to end, in about ten seconds.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no settings it starts, on loopback, a token endpoint that issues 3-second tokens with
//! 50 ms of latency and a protected API that accepts only unexpired tokens from it. It wraps
//! hyper-util's client in `ClientCredentialsLayer`, sends a burst of 1,000 concurrent requests
//! on a cold cache, then steady traffic across several token lifetimes, and prints how many
//! token requests that took and how slow the slowest request was.
//!
//! With `TOKEN_URL`, `CLIENT_ID` and `CLIENT_SECRET` (and optionally `SCOPE` and `API_URL`) in
//! the environment it uses your authorization server instead: it fetches a token, prints what
//! was granted (never the token), and calls `API_URL` if given.

use std::collections::HashMap;
use std::env;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpSocket;
use tower::{ServiceBuilder, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config};

const TOKEN_LIFETIME: Duration = Duration::from_secs(3);
const TOKEN_LATENCY: Duration = Duration::from_millis(50);
const BURST: usize = 1000;
const STEADY_CLIENTS: usize = 8;
const STEADY_FOR: Duration = Duration::from_secs(9);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match env::var("TOKEN_URL") {
        Ok(token_url) => against_your_server(token_url).await,
        Err(_) => demo().await,
    }
}

async fn demo() -> Result<(), BoxError> {
    let issued = Issued::default();
    let token_url = serve(Router::new().route("/oauth/token", post(issue_token)), &issued).await;
    let api_url = serve(Router::new().route("/things", get(protected)), &issued).await;
    println!("tower-client-credentials quickstart");
    println!("  token endpoint  {token_url}/oauth/token  (3 s tokens, 50 ms latency)");
    println!("  protected API   {api_url}/things  (accepts only unexpired tokens)");

    let config = Config::builder(format!("{token_url}/oauth/token"), "quickstart", "s3cret")
        .scope("things:read")
        // Tokens this short want a short lead; the defaults suit tokens of minutes or hours.
        .refresh_ahead(Duration::from_millis(500))
        .expiry_margin(Duration::from_millis(250))
        .build()?;
    let layer = ClientCredentialsLayer::new(config);
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let api = ServiceBuilder::new().layer(layer.clone()).service(client);
    let url = format!("{api_url}/things");

    let burst = Latencies::run(BURST, 1, Duration::ZERO, &api, &url).await;
    let after_burst = issued.count();
    println!("\nburst: {BURST} concurrent requests on a cold cache");
    println!("  {}  token requests: {after_burst}", burst.summary());

    let steady = Latencies::run(STEADY_CLIENTS, usize::MAX, STEADY_FOR, &api, &url).await;
    let lifetimes = STEADY_FOR.as_secs_f64() / TOKEN_LIFETIME.as_secs_f64();
    println!(
        "\nsteady: {STEADY_CLIENTS} clients for {} s ({lifetimes:.0} token lifetimes)",
        STEADY_FOR.as_secs()
    );
    println!("  {}  token requests: {}", steady.summary(), issued.count() - after_burst);

    let stats = layer.stats();
    println!(
        "\nstats: tokens fetched {}, failures {}, requests that waited {}, stale serves {}",
        stats.tokens_fetched,
        stats.token_request_failures,
        stats.requests_waited,
        stats.stale_serves
    );
    println!("total: {} requests, {} token requests", burst.sent + steady.sent, issued.count());
    if burst.failed + steady.failed > 0 {
        return Err("some requests failed".into());
    }
    Ok(())
}

/// Request latencies of a run of concurrent clients.
struct Latencies {
    sent: usize,
    failed: usize,
    sorted: Vec<Duration>,
}

impl Latencies {
    /// `clients` tasks each send up to `each` requests, for at most `period` if not zero.
    async fn run<S>(clients: usize, each: usize, period: Duration, api: &S, url: &str) -> Self
    where
        S: tower::Service<
                http::Request<Empty<Bytes>>,
                Response = http::Response<hyper::body::Incoming>,
                Error = BoxError,
            > + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        let until = Instant::now() + period;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (api, url) = (api.clone(), url.to_owned());
                tokio::spawn(async move {
                    let mut results = Vec::new();
                    for _ in 0..each {
                        let request = http::Request::get(&url).body(Empty::new()).unwrap();
                        let started = Instant::now();
                        let ok = matches!(api.clone().oneshot(request).await, Ok(r) if r.status() == 200);
                        results.push((ok, started.elapsed()));
                        if period.is_zero() || Instant::now() >= until {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    results
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        let failed = all.iter().filter(|(ok, _)| !ok).count();
        let mut sorted: Vec<_> = all.into_iter().map(|(_, latency)| latency).collect();
        sorted.sort();
        Self { sent: sorted.len(), failed, sorted }
    }

    fn summary(&self) -> String {
        let at = |q: f64| self.sorted[((self.sorted.len() - 1) as f64 * q) as usize];
        format!(
            "succeeded {}/{}  p50 {:.1?}  p99 {:.1?}  slowest {:.1?}",
            self.sent - self.failed,
            self.sent,
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// The tokens the demo token endpoint has issued, and when each expires.
#[derive(Clone, Default)]
struct Issued(Arc<Mutex<HashMap<String, Instant>>>);

impl Issued {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn issue_token(
    State(issued): State<Issued>,
    headers: HeaderMap,
) -> (StatusCode, Json<serde_json::Value>) {
    // "quickstart:s3cret", as client_secret_basic sends it.
    if headers.get("authorization").is_none_or(|v| v != "Basic cXVpY2tzdGFydDpzM2NyZXQ=") {
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"})));
    }
    tokio::time::sleep(TOKEN_LATENCY).await;
    let mut tokens = issued.0.lock().unwrap();
    let token = format!("demo-token-{}", tokens.len() + 1);
    tokens.insert(token.clone(), Instant::now() + TOKEN_LIFETIME);
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "scope": "things:read",
    });
    (StatusCode::OK, Json(body))
}

async fn protected(State(issued): State<Issued>, headers: HeaderMap) -> StatusCode {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    let expires = token.and_then(|t| issued.0.lock().unwrap().get(t).copied());
    match expires {
        Some(expires) if Instant::now() < expires => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn serve(router: Router<Issued>, issued: &Issued) -> String {
    // A backlog above the burst: the client opens a connection per concurrent request, and
    // with the usual 1,024 the kernel drops some handshakes; each costs a 200 ms
    // retransmission later, which would show here as a slow request that is not ours.
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind loopback");
    let listener = socket.listen(4096).expect("listen");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = router.with_state(issued.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Checks real credentials, and calls `API_URL` with the token if it is set.
async fn against_your_server(token_url: String) -> Result<(), BoxError> {
    let variable = |name: &str| env::var(name).map_err(|_| format!("{name} is not set"));
    let mut config =
        Config::builder(&token_url, variable("CLIENT_ID")?, variable("CLIENT_SECRET")?);
    if let Ok(scope) = env::var("SCOPE") {
        config = config.scope(scope);
    }
    let layer = ClientCredentialsLayer::new(config.build()?);
    let token = layer.token().await?;
    println!("token from {token_url}");
    println!(
        "  type {}, scope {:?}, lifetime {:?}",
        token.token_type(),
        token.scope(),
        token.lifetime()
    );

    if let Ok(api_url) = env::var("API_URL") {
        // reqwest speaks https; `service_fn` makes it a Tower service of `http::Request`s.
        let http = reqwest::Client::new();
        let service = tower::service_fn(move |request: http::Request<String>| {
            let http = http.clone();
            async move {
                let response = http.execute(reqwest::Request::try_from(request)?).await?;
                let status = response.status();
                let body = response.text().await?;
                Ok::<_, BoxError>(http::Response::builder().status(status).body(body)?)
            }
        });
        let api = ServiceBuilder::new().layer(layer.clone()).service(service);
        let response = api.oneshot(http::Request::get(&api_url).body(String::new())?).await?;
        let body: String = response.body().chars().take(2000).collect();
        println!("{api_url}: {}\n{body}", response.status());
    }
    Ok(())
}
