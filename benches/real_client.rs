//! Requests per second through hyper-util's pooled client against a loopback hyper server:
//! the bare client, the client with a static `Authorization` header, and the client with our
//! layer, at 1 and 2 runtime worker threads.
//!
//! ```text
//! cargo bench -p benches --bench real_client
//! ```
//!
//! The micro benchmarks (`hot_path`, `contention`) time the layer around a service that does
//! nothing; this one asks whether what they measure shows through a real client. One
//! hyper-util `Client` (client-legacy, http1, its connection pool) is shared by three services:
//! the client alone (`bare`); the client inside tower-http's
//! `SetRequestHeader::overriding(AUTHORIZATION, ..)` with a `Bearer` header built at run time
//! (`static_header`); and the client inside `ClientCredentialsLayer` with a fresh token
//! (`client_credentials`). The token comes from a loopback token endpoint before anything is
//! measured, and lasts an hour: the endpoint is out of the picture (the run checks that it saw
//! exactly one token request).
//!
//! The API is a hyper http1 server on 127.0.0.1 that answers every request `200` with a
//! two-byte body and looks at nothing. By default it runs on the same runtime as the client,
//! so that the worker count is the number of threads doing all the work (on a 2-core machine,
//! 2 workers use both cores, and nothing else competes for them); with
//! `REAL_CLIENT_SERVER_THREADS=N` it runs on a runtime of its own with `N` workers instead.
//!
//! 64 tasks each send requests back to back (ready, call, read the whole body) through their
//! own clone of the service, so 64 requests are in flight over 64 pooled connections. A round
//! times each service for [`ROUND`] in turn: its requests per second is the requests completed
//! over the time until the last one finished. Rounds cycle through the six orders of the three
//! services, so each comes first, second and last equally often and each of two services
//! precedes the other in half the rounds. Other work on the machine weighs on a whole round, so
//! the ratio of two services' throughputs *within* a round is what is compared: the median, and
//! its interquartile range, over all rounds. The goal: `client_credentials / static_header` at
//! least [`GOAL`], i.e. the layer indistinguishable from a static header.
//!
//! Loopback only; the whole run takes about a minute and a half (`REAL_CLIENT_ROUNDS` changes
//! the number of rounds).

use std::convert::Infallible;
use std::env;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinSet;
use tower::{Layer, Service, ServiceExt};
use tower_client_credentials::ClientCredentialsLayer;
use tower_http::set_header::SetRequestHeader;

mod common;
use common::{bearer_header, verdict, Spread, TokenServer};

/// The goal: the layer's requests/s at least this share of the static header's, per round.
const GOAL: f64 = 0.97;
const WORKERS: [usize; 2] = [1, 2];
/// Rounds per worker count: a multiple of six, so that every order of the services comes up
/// equally often.
const ROUNDS: usize = 150;
/// How long each service is timed in each round: short, so that the services compared in a
/// round ran close together in time, under the same load from the rest of the machine.
const ROUND: Duration = Duration::from_millis(100);
const IN_FLIGHT: usize = 64;
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const NAMES: [&str; 3] = ["bare", "static_header", "client_credentials"];
const BARE: usize = 0;
const STATIC_HEADER: usize = 1;
const CLIENT_CREDENTIALS: usize = 2;
/// The six orders of the three services; round `r` uses `ORDERS[r % 6]`.
const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];

/// What the environment may change: `REAL_CLIENT_ROUNDS`, `REAL_CLIENT_ROUND_MS`,
/// `REAL_CLIENT_SERVER_THREADS`.
#[derive(Clone, Copy)]
struct Settings {
    rounds: usize,
    round: Duration,
    /// `None`: the server on the client's runtime.
    server_threads: Option<usize>,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str| {
            env::var(name)
                .ok()
                .map(|n| n.parse::<u64>().unwrap_or_else(|_| panic!("{name}: a number")))
        };
        Self {
            rounds: number("REAL_CLIENT_ROUNDS").map_or(ROUNDS, |n| n as usize),
            round: number("REAL_CLIENT_ROUND_MS").map_or(ROUND, Duration::from_millis),
            server_threads: number("REAL_CLIENT_SERVER_THREADS").map(|n| n as usize),
        }
    }
}

fn main() {
    let settings = Settings::from_env();
    let placement = match settings.server_threads {
        Some(n) => format!("the server on a runtime of its own ({n} workers)"),
        None => "the server on the same runtime".to_owned(),
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "real_client: hyper-util's pooled client against a loopback hyper server, {placement}; \
         {IN_FLIGHT} requests in flight; {} interleaved rounds of {} ms per service \
         (load average at start: {})",
        settings.rounds,
        settings.round.as_millis(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    for workers in WORKERS {
        let runtime = multi_thread(workers);
        let server = settings.server_threads.map(multi_thread);
        let server_handle = server.as_ref().unwrap_or(&runtime).handle().clone();
        // On a worker, not on this thread: `workers` threads do all the work.
        let measured = runtime.spawn(measure(workers, settings, server_handle));
        runtime.block_on(measured).expect("the measurement");
        // Dropping the runtimes stops the servers and every connection.
    }
}

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("a runtime")
}

async fn measure(workers: usize, settings: Settings, server: Handle) {
    let api = start_api(&server);
    let url = format!("http://{api}/things");
    let tokens = TokenServer::start(Duration::ZERO, TOKEN_LIFETIME).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().expect("a config"));
    let token = layer.token().await.expect("a token from the loopback endpoint");

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let bare = client.clone();
    let static_header =
        SetRequestHeader::overriding(client.clone(), AUTHORIZATION, bearer_header(token.secret()));
    let client_credentials = layer.layer(client);

    // Each service sends what it should, and the pool has its connections before timing.
    let bearer = format!("Bearer {}", token.secret());
    assert_eq!(echo(&bare, api).await, "");
    assert_eq!(echo(&static_header, api).await, bearer);
    assert_eq!(echo(&client_credentials, api).await, bearer);
    let round = settings.round;
    throughput(&bare, &url, round).await;
    throughput(&static_header, &url, round).await;
    throughput(&client_credentials, &url, round).await;

    let mut results: Vec<[Sample; 3]> = Vec::with_capacity(settings.rounds);
    for r in 0..settings.rounds {
        let mut result = [Sample::default(); 3];
        for service in ORDERS[r % ORDERS.len()] {
            result[service] = match service {
                BARE => throughput(&bare, &url, round).await,
                STATIC_HEADER => throughput(&static_header, &url, round).await,
                _ => throughput(&client_credentials, &url, round).await,
            };
        }
        results.push(result);
    }
    assert_eq!(tokens.requests(), 1, "the token endpoint was out of the picture");

    let spread = |f: &dyn Fn(&[Sample; 3]) -> f64| Spread::of(results.iter().map(f));
    let waited = spread(&|r| r.iter().map(|s| s.waited).sum::<f64>() / 3.0);
    println!(
        "  {workers} worker(s): our threads waited for a core {:.1} % of the time (median of \
         rounds; IQR {:.1}-{:.1} %)",
        waited.median * 100.0,
        waited.p25 * 100.0,
        waited.p75 * 100.0
    );
    println!("    {:<38}{:<30}per CPU-second", "median (IQR) of rounds", "requests/s");
    for (i, name) in NAMES.iter().enumerate() {
        let per_second = spread(&|r| r[i].per_second);
        println!(
            "    {name:<38}{:<30}{:.0}",
            format!("{per_second:.0}"),
            spread(&|r| r[i].per_cpu_second)
        );
    }
    let ratio = |a: usize, b: usize| {
        let per_second = spread(&|r| r[a].per_second / r[b].per_second);
        let per_cpu_second = spread(&|r| r[a].per_cpu_second / r[b].per_cpu_second);
        (per_second, per_cpu_second)
    };
    println!("    paired ratios within a round");
    for (a, b) in
        [(STATIC_HEADER, BARE), (CLIENT_CREDENTIALS, BARE), (CLIENT_CREDENTIALS, STATIC_HEADER)]
    {
        let (per_second, per_cpu_second) = ratio(a, b);
        let name = format!("{} / {}", NAMES[a], NAMES[b]);
        println!("    {name:<38}{:<30}{per_cpu_second:.3}", format!("{per_second:.3}"));
    }
    let ours: Vec<f64> = results
        .iter()
        .map(|r| r[CLIENT_CREDENTIALS].per_second / r[STATIC_HEADER].per_second)
        .collect();
    let (low, high) = median_interval(&ours);
    let median = Spread::of(ours.iter().copied()).median;
    println!(
        "  {workers} worker(s): client_credentials / static_header: median {median:.3}, 95 % \
         confidence interval of the median {low:.3}-{high:.3}; goal >= {GOAL}: {}",
        verdict(median >= GOAL)
    );
}

/// A distribution-free 95 % confidence interval for the median of `values`: the order
/// statistics `n/2 -+ 1.96 sqrt(n)/2` (the normal approximation to the binomial).
fn median_interval(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let half_width = 1.96 * n.sqrt() / 2.0;
    let low = ((n / 2.0 - half_width).floor().max(0.0)) as usize;
    let high = ((n / 2.0 + half_width).ceil() as usize).min(sorted.len() - 1);
    (sorted[low], sorted[high])
}

/// Starts the API on a loopback port, on `runtime`.
fn start_api(runtime: &Handle) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let addr = listener.local_addr().expect("a bound address");
    runtime.spawn(async move {
        let listener = TcpListener::from_std(listener).expect("a Tokio listener");
        loop {
            let (stream, _) = listener.accept().await.expect("a connection");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            tokio::spawn(async move {
                // A connection ends when the client drops it; how is of no interest here.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
    addr
}

/// `200` with a two-byte body; on `/echo`, the request's `Authorization` as the body.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = if request.uri().path() == "/echo" {
        let header = request.headers().get(AUTHORIZATION);
        Bytes::copy_from_slice(header.map_or(&b""[..], |value| value.as_bytes()))
    } else {
        Bytes::from_static(b"ok")
    };
    Ok(Response::new(Full::new(body)))
}

/// The `Authorization` header the API received from `service`.
async fn echo<S>(service: &S, api: std::net::SocketAddr) -> String
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>> + Clone,
    S::Error: Debug,
{
    let request = Request::get(format!("http://{api}/echo")).body(Empty::new()).unwrap();
    let response = service.clone().oneshot(request).await.expect("a response");
    let body = response.into_body().collect().await.expect("a body").to_bytes();
    String::from_utf8(body.to_vec()).expect("a printable header")
}

/// One service's share of a round.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Requests completed per second of wall-clock time.
    per_second: f64,
    /// Requests completed per second that this process's threads ran on a core.
    per_cpu_second: f64,
    /// The share of the wall-clock time that this process's threads, added up, spent ready to
    /// run but waiting for a core (other work on the machine had it).
    waited: f64,
}

/// Sends requests through clones of `service` from [`IN_FLIGHT`] tasks for `round`; counts
/// the requests completed until the last one finished.
async fn throughput<S>(service: &S, url: &str, round: Duration) -> Sample
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug + Send,
{
    let before = Schedstat::now();
    let start = Instant::now();
    let until = start + round;
    let mut tasks = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let mut service = service.clone();
        let url = url.to_owned();
        tasks.spawn(async move {
            let mut completed = 0_u64;
            while Instant::now() < until {
                let request = Request::get(url.as_str()).body(Empty::new()).unwrap();
                let response =
                    service.ready().await.expect("a ready client").call(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.into_body().collect().await.expect("a body");
                completed += 1;
            }
            completed
        });
    }
    let mut completed = 0;
    while let Some(task) = tasks.join_next().await {
        completed += task.expect("a client task");
    }
    let wall = start.elapsed();
    let after = Schedstat::now();
    let completed = completed as f64;
    Sample {
        per_second: completed / wall.as_secs_f64(),
        per_cpu_second: completed / (after.ran - before.ran).as_secs_f64(),
        waited: (after.waited - before.waited).as_secs_f64() / wall.as_secs_f64(),
    }
}

/// The scheduler's account of this process's threads, added up
/// (`/proc/self/task/*/schedstat`): time on a core, and time ready but waiting for one.
struct Schedstat {
    ran: Duration,
    waited: Duration,
}

impl Schedstat {
    fn now() -> Self {
        let (mut ran, mut waited) = (0, 0);
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
            let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue; // a thread that ended meanwhile
            };
            let mut fields = line.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
            ran += fields.next().unwrap_or(0);
            waited += fields.next().unwrap_or(0);
        }
        Self { ran: Duration::from_nanos(ran), waited: Duration::from_nanos(waited) }
    }
}
