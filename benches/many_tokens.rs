//! What choosing among several tokens costs a request that finds its token fresh, beside the
//! layer with one token and a static header.
//!
//! ```text
//! cargo bench -p benches --bench many_tokens
//! ```
//!
//! Five services around [`common::Park`], as in `hot_path`: none (`bare`); tower-http's
//! `SetRequestHeader::overriding` with a fixed header (`static_header`); our layer with one
//! token (`one_token`); our layer with a route for the request's origin, so that each request
//! matches it and looks its token up (`route`); and our layer with no route, each request
//! carrying a [`TokenParams`] in its extensions (`request_params`). Every token is fresh
//! before anything is timed.
//!
//! Interleaved rounds (every service in turn, each round) give each service's added cost over
//! `bare`, and that over the static header's, so that other work on the machine weighs on all
//! of them alike. The goal is the issue's: a layer with one token pays nothing for the
//! others, so `one_token` is the plain hot path of `hot_path`; what routes and parameters add
//! is reported, not judged.

use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower::Layer;
use tower_client_credentials::{ClientCredentialsLayer, TokenParams};
use tower_http::set_header::SetRequestHeader;
use tower_service::Service;

mod common;
use common::{api_request, bearer_header, time_round_trips_of, Park, Spread, TokenServer};

const ROUNDS: usize = 31;
const PER_ROUND: u64 = 100_000;
const NAMES: [&str; 5] = ["bare", "static_header", "one_token", "route", "request_params"];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let orders = TokenParams::new().audience("https://orders.example.com");
    let (server, one, routed, params, token) = runtime.block_on(async {
        let server = TokenServer::start(Duration::ZERO, Duration::from_secs(3600)).await;
        let one = ClientCredentialsLayer::new(server.config().build().unwrap());
        // `api_request` goes to http://127.0.0.1: the route takes every request.
        let routed = server.config().route("http://127.0.0.1", orders.clone()).build().unwrap();
        let routed = ClientCredentialsLayer::new(routed);
        let params = ClientCredentialsLayer::new(server.config().build().unwrap());
        let token = one.token().await.unwrap().secret().to_owned();
        routed.token_for(&orders).await.unwrap();
        params.token_for(&orders).await.unwrap();
        (server, one, routed, params, token)
    });
    let header = bearer_header(&token);
    let mut bare = Park;
    let mut static_header = SetRequestHeader::overriding(Park, AUTHORIZATION, header);
    let mut one_token = one.layer(Park);
    let mut route = routed.layer(Park);
    let mut request_params = params.layer(Park);
    let with_params = || {
        let mut request = api_request();
        request.extensions_mut().insert(orders.clone());
        request
    };

    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        rounds.push([
            ns_per_request(&mut bare, api_request()),
            ns_per_request(&mut static_header, api_request()),
            ns_per_request(&mut one_token, api_request()),
            ns_per_request(&mut route, api_request()),
            ns_per_request(&mut request_params, with_params()),
        ]);
    }
    assert_eq!(server.requests(), 3, "one token per layer, none while timing");
    assert!(routed.stats().tokens_fetched == 0 && params.stats().tokens_fetched == 0);

    println!("\nmany_tokens: {ROUNDS} interleaved rounds of {PER_ROUND} requests per service");
    println!("  {:<18}{:<29}{:<29}added / static_header's", "", "ns per request", "ns added");
    let spread = |f: &dyn Fn(&[f64; 5]) -> f64| Spread::of(rounds.iter().map(f));
    for (i, name) in NAMES.iter().enumerate() {
        let time = spread(&|r| r[i]).to_string();
        let added = spread(&|r| r[i] - r[0]).to_string();
        let ratio = if i < 2 {
            String::new()
        } else {
            spread(&|r| (r[i] - r[0]) / (r[1] - r[0])).to_string()
        };
        println!("  {name:<18}{time:<29}{added:<29}{ratio}");
    }
    drop(runtime);
}

fn ns_per_request<S>(service: &mut S, request: Request<()>) -> f64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let elapsed = time_round_trips_of(service, request, PER_ROUND);
    elapsed.as_nanos() as f64 / PER_ROUND as f64
}
