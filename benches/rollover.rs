//! Request latency under steady load across token rollovers, beside a static header.
//!
//! ```text
//! cargo bench -p benches --bench rollover
//! ```
//!
//! A loopback token endpoint issues 2-second tokens and takes 200 ms to answer; a loopback API
//! accepts only tokens that have not expired. Eight clients send a request every 2 ms each,
//! through hyper-util's client, for 7 seconds (three and a half token lifetimes), and every
//! request's latency is recorded. The layer has its default settings, so it refreshes a token
//! halfway through its life (the 5-minute lead is capped at half the lifetime): a run crosses
//! about seven rollovers.
//!
//! The same load runs with tower-http's `SetRequestHeader` and a token that never expires
//! (`static_header`), and with our layer (`client_credentials`), alternately, three times
//! each. A last run shows what the refresh ahead of expiry is for: with `refresh_ahead` set to
//! zero the token is refreshed only once unusable, and requests wait for the 200 ms endpoint
//! at every rollover, as with a synchronous refresh.
//!
//! Each line gives the requests sent, their latency percentiles, how many took over 10 ms or
//! did not get a `200`, and for our layer the token requests made during the run and the
//! requests that waited for one.
//!
//! A request is timed from sending to the end of its body. A client waits for its request
//! before sending the next, so a stall delays that client's next request rather than piling
//! requests up: the stall shows in the maximum, not in every percentile.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tower::{Layer, Service, ServiceExt};
use tower_client_credentials::{ClientCredentialsLayer, Config};
use tower_http::set_header::SetRequestHeader;

mod common;
use common::{bearer_header, serve, verdict, TokenServer};

const TOKEN_LIFETIME: Duration = Duration::from_secs(2);
const TOKEN_LATENCY: Duration = Duration::from_millis(200);
const CLIENTS: usize = 8;
const PERIOD: Duration = Duration::from_millis(2);
const LOAD_FOR: Duration = Duration::from_secs(7);
const ROUNDS: usize = 3;
/// The goal: our slowest request at most this much slower than the static header's (medians
/// over the rounds).
const GOAL: Duration = Duration::from_millis(5);
const STATIC_TOKEN: &str = "static-token-that-never-expires";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tokens = Arc::new(TokenServer::start(TOKEN_LATENCY, TOKEN_LIFETIME).await);
    tokens.trust(STATIC_TOKEN, Instant::now() + Duration::from_secs(3600));
    let api = serve(Router::new().route("/things", get(protected)).with_state(tokens.clone()));
    let api_url = format!("http://{}/things", api.await);
    println!(
        "rollover: {CLIENTS} clients, a request every {} ms each, {} s per run; tokens of {} s \
         from an endpoint taking {} ms",
        PERIOD.as_millis(),
        LOAD_FOR.as_secs(),
        TOKEN_LIFETIME.as_secs(),
        TOKEN_LATENCY.as_millis()
    );
    println!(
        "  {:<22}{:>9}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}",
        "ms per request", "requests", "p50", "p99", "max", ">10 ms", "failed", "tokens", "waited"
    );

    let mut static_max = Vec::new();
    let mut ours_max = Vec::new();
    for _ in 0..ROUNDS {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let service =
            SetRequestHeader::overriding(client, AUTHORIZATION, bearer_header(STATIC_TOKEN));
        let run = steady_load(service, &api_url).await;
        run.print("static_header", None);
        static_max.push(run.max());

        let config = tokens.config().build().unwrap();
        ours_max.push(with_layer("client_credentials", config, &tokens, &api_url).await.max());
    }
    // What refreshing ahead of expiry is for: without it, requests wait at each rollover.
    let config = tokens.config().refresh_ahead(Duration::ZERO).build().unwrap();
    with_layer("no refresh ahead", config, &tokens, &api_url).await;

    let (static_max, ours_max) = (Maxima::of(static_max), Maxima::of(ours_max));
    println!("  max per run, median (range) of {ROUNDS} runs, ms:");
    println!("    static_header       {static_max}");
    println!("    client_credentials  {ours_max}");
    let excess = (ours_max.median.as_secs_f64() - static_max.median.as_secs_f64()) * 1e3;
    println!(
        "  goal: client_credentials max within {} ms of static_header's: {} ({excess:+.1} ms)",
        GOAL.as_millis(),
        verdict(excess <= GOAL.as_secs_f64() * 1e3)
    );
}

/// Runs the load through our layer made with `config`, from a warm cache, and prints it.
async fn with_layer(name: &str, config: Config, tokens: &TokenServer, api_url: &str) -> Run {
    let layer = ClientCredentialsLayer::new(config);
    layer.warm_up().await.expect("a first token");
    let (requests_before, waited_before) = (tokens.requests(), layer.stats().requests_waited);
    let client = Client::builder(TokioExecutor::new()).build_http();
    let run = steady_load(layer.layer(client), api_url).await;
    let waited = layer.stats().requests_waited - waited_before;
    run.print(name, Some((tokens.requests() - requests_before, waited)));
    run
}

/// The protected API: `200` for a token the endpoint issued that has not expired, else `401`.
async fn protected(State(tokens): State<Arc<TokenServer>>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match token {
        Some(token) if tokens.is_valid(token) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The slowest request of each run, summarised.
struct Maxima {
    median: Duration,
    least: Duration,
    most: Duration,
}

impl Maxima {
    fn of(mut maxima: Vec<Duration>) -> Self {
        maxima.sort();
        Self { median: maxima[maxima.len() / 2], least: maxima[0], most: maxima[maxima.len() - 1] }
    }
}

impl fmt::Display for Maxima {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(f, "{:.1} ({:.1}-{:.1})", ms(self.median), ms(self.least), ms(self.most))
    }
}

/// Every request's latency in one run, and how many did not get a `200`.
struct Run {
    latencies: Vec<Duration>,
    failed: usize,
}

impl Run {
    fn percentile(&self, q: f64) -> Duration {
        self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize]
    }

    fn max(&self) -> Duration {
        self.percentile(1.0)
    }

    /// Prints a line of figures; `tokens` is the token requests during the run and the
    /// requests that waited for one, for our layer.
    fn print(&self, name: &str, tokens: Option<(usize, u64)>) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (token_requests, waited) = match tokens {
            Some((requests, waited)) => (requests.to_string(), waited.to_string()),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "  {name:<22}{:>9}{:>8.2}{:>8.2}{:>8.1}{:>8}{:>8}{:>8}{:>8}",
            self.latencies.len(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.max()),
            self.latencies.iter().filter(|l| **l > Duration::from_millis(10)).count(),
            self.failed,
            token_requests,
            waited
        );
    }
}

/// Runs [`CLIENTS`] clients against `url` through clones of `service` for [`LOAD_FOR`].
async fn steady_load<S>(service: S, url: &str) -> Run
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug + Send,
{
    let until = Instant::now() + LOAD_FOR;
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let mut service = service.clone();
        let url = url.to_owned();
        clients.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            let mut ticks = tokio::time::interval(PERIOD);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while Instant::now() < until {
                ticks.tick().await;
                let request = Request::get(&url).body(Empty::new()).expect("a valid request");
                let start = Instant::now();
                let ok = match service.ready().await.expect("a ready client").call(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.into_body().collect().await;
                        status == StatusCode::OK && body.is_ok()
                    }
                    Err(_) => false,
                };
                latencies.push(start.elapsed());
                failed += usize::from(!ok);
            }
            (latencies, failed)
        });
    }
    let mut run = Run { latencies: Vec::new(), failed: 0 };
    while let Some(client) = clients.join_next().await {
        let (latencies, failed) = client.expect("a client task");
        run.latencies.extend(latencies);
        run.failed += failed;
    }
    run.latencies.sort();
    run
}
