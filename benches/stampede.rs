//! A cold stampede: 10,000 concurrent first requests on an empty cache, against a loopback
//! token endpoint that takes 50 ms to answer.
//!
//! ```text
//! cargo bench -p benches --bench stampede
//! ```
//!
//! Each run makes a new layer (an empty cache), starts all the requests as tasks at once and
//! waits for the last to complete. It asserts that the run made exactly one token request, and
//! reports the time until all completed over the endpoint's latency: 1.0 would be the
//! endpoint's latency alone, the rest is starting, waking and finishing 10,000 tasks.
//!
//! The inner service is [`common::Park`], which answers at once: what is measured is getting
//! the token to every request, not an API.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tower::{Layer, ServiceExt};
use tower_client_credentials::ClientCredentialsLayer;

mod common;
use common::{api_request, Park, Spread, TokenServer};

const REQUESTS: usize = 10_000;
const TOKEN_LATENCY: Duration = Duration::from_millis(50);
const RUNS: usize = 15;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TokenServer::start(TOKEN_LATENCY, Duration::from_secs(3600)).await;
    let mut elapsed = Vec::with_capacity(RUNS);
    let mut spawned = Vec::with_capacity(RUNS);
    let mut fan_out = Vec::with_capacity(RUNS);
    let mut waited = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let layer = ClientCredentialsLayer::new(server.config().build().unwrap());
        let service = layer.layer(Park);
        let token_requests_before = server.requests();

        let start = Instant::now();
        let mut requests = JoinSet::new();
        for _ in 0..REQUESTS {
            requests.spawn(service.clone().oneshot(api_request()));
        }
        spawned.push(start.elapsed());
        let mut first_done = None;
        while let Some(response) = requests.join_next().await {
            response.expect("the request task").expect("a response");
            first_done.get_or_insert_with(Instant::now);
        }
        elapsed.push(start.elapsed());
        fan_out.push(first_done.expect("a completed request").elapsed());

        let token_requests = server.requests() - token_requests_before;
        assert_eq!(
            token_requests, 1,
            "{REQUESTS} cold requests made {token_requests} token requests"
        );
        waited.push(layer.stats().requests_waited as f64);
    }

    let latency = TOKEN_LATENCY.as_secs_f64() * 1e3;
    let millis =
        |durations: &[Duration]| Spread::of(durations.iter().map(|d| d.as_secs_f64() * 1e3));
    let ratio = Spread::of(elapsed.iter().map(|e| e.as_secs_f64() * 1e3 / latency));
    println!("stampede: {RUNS} runs of {REQUESTS} concurrent first requests, token endpoint {latency:.0} ms");
    println!("  token requests per run: 1 (asserted in every run)");
    println!("  requests that waited for the token: {:.0}", Spread::of(waited));
    println!("  ms until all completed: {:.1}", millis(&elapsed));
    println!("    of which starting the {REQUESTS} tasks: {:.1}", millis(&spawned));
    println!("    of which from the first completion to the last: {:.1}", millis(&fan_out));
    println!("  time until all completed / endpoint latency: {ratio}");
}
