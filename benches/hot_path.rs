//! The cost our layer adds to a request that finds a fresh token, beside a static header.
//!
//! ```text
//! cargo bench -p benches --bench hot_path
//! ```
//!
//! Five services around the same no-op inner service ([`common::Park`]): none (`bare`);
//! tower-http's `SetRequestHeader` with a fixed `HeaderValue`, `overriding` (`static_header`,
//! the floor: something must insert a header) and `if_not_present`
//! (`static_header_if_not_present`, which also looks for the caller's own `Authorization`
//! first, as our layer does); our layer with a fresh token (`client_credentials`); and a
//! hand-rolled `Mutex<Option<(String, Instant)>>` that formats the header per request
//! (`naive_mutex`).
//!
//! Criterion times each one, and the ingredients of our hot path on their own (`ingredients`:
//! a clock read, an `ArcSwap` load, a header clone). Then come the ratios against the goal,
//! from interleaved rounds: each round times every service in turn, so that other work on the
//! machine weighs on all of them alike, and a service's added cost in that round is its time
//! minus `bare`'s. The rounds run in several processes of this program: the same code runs
//! measurably faster or slower from one process to the next (where the address-space layout
//! puts the stack and the heap matters to copying requests around), and the spread should
//! show it.

use std::env;
use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion};
use http::{Request, Response};
use tower_service::Service;

mod common;
use common::{time_round_trips, verdict, FreshToken, Spread};

/// The goal: our added cost at most this many times the static header's.
const GOAL: f64 = 1.5;
const PROCESSES: usize = 7;
const ROUNDS_PER_PROCESS: usize = 9;
const ROUND_TRIPS_PER_ROUND: u64 = 100_000;
/// Tells a process of this program to run rounds and print them, one line each.
const ROUNDS_VARIABLE: &str = "HOT_PATH_ROUNDS";
/// The services in the order of a round's measurements.
const NAMES: [&str; 5] =
    ["bare", "static_header", "static_header_if_not_present", "client_credentials", "naive_mutex"];

fn main() {
    if env::var_os(ROUNDS_VARIABLE).is_some() {
        print_rounds();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}

fn hot_path(c: &mut Criterion) {
    let fresh = FreshToken::start();
    let mut services = fresh.services();

    let mut group = c.benchmark_group("hot_path");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    bench(&mut group, NAMES[0], &mut services.bare);
    bench(&mut group, NAMES[1], &mut services.static_header);
    bench(&mut group, NAMES[2], &mut services.static_header_if_not_present);
    bench(&mut group, NAMES[3], &mut services.client_credentials);
    bench(&mut group, NAMES[4], &mut services.naive_mutex);
    group.finish();

    ingredients(c, &fresh);
}

fn bench<S>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, service: &mut S)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| time_round_trips(service, iterations))
    });
}

/// What our hot path is made of, each on its own: the costs that counting instructions
/// misses (a clock read, atomic read-modify-writes).
fn ingredients(c: &mut Criterion, fresh: &FreshToken) {
    let mut group = c.benchmark_group("ingredients");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group.bench_function("tokio_instant_now", |b| b.iter(tokio::time::Instant::now));
    let current = ArcSwapOption::from_pointee(1_u64);
    group.bench_function("arc_swap_load", |b| b.iter(|| current.load().as_deref().copied()));
    let header = fresh.static_header();
    group.bench_function("header_clone_and_drop", |b| b.iter(|| black_box(header.clone())));
    group.finish();
}

/// In a child process: times every service in turn, round after round, and prints each
/// round's nanoseconds per request.
fn print_rounds() {
    let fresh = FreshToken::start();
    let mut services = fresh.services();
    for _ in 0..ROUNDS_PER_PROCESS {
        let round = [
            ns_per_request(&mut services.bare),
            ns_per_request(&mut services.static_header),
            ns_per_request(&mut services.static_header_if_not_present),
            ns_per_request(&mut services.client_credentials),
            ns_per_request(&mut services.naive_mutex),
        ];
        println!("round {}", round.map(|ns| ns.to_string()).join(" "));
    }
}

fn report_ratios() {
    let mut rounds: Vec<[f64; 5]> = Vec::new();
    for _ in 0..PROCESSES {
        let child = Command::new(env::current_exe().expect("the path of this program"))
            .env(ROUNDS_VARIABLE, "1")
            .output()
            .expect("a process of this program");
        assert!(child.status.success(), "a rounds process failed: {}", child.status);
        for line in String::from_utf8_lossy(&child.stdout).lines() {
            let Some(round) = line.strip_prefix("round ") else { continue };
            let numbers: Vec<f64> =
                round.split(' ').map(|n| n.parse().expect("a number")).collect();
            rounds.push(numbers.try_into().expect("five numbers"));
        }
    }
    let spread = |f: &dyn Fn(&[f64; 5]) -> f64| Spread::of(rounds.iter().map(f));

    println!(
        "\nhot_path: {PROCESSES} processes x {ROUNDS_PER_PROCESS} interleaved rounds of \
         {ROUND_TRIPS_PER_ROUND} requests per service"
    );
    println!("  {:<30}{:<29}{:<29}added / static_header's", "", "ns per request", "ns added");
    for (i, name) in NAMES.iter().enumerate() {
        let time = spread(&|r| r[i]).to_string();
        let added = spread(&|r| r[i] - r[0]).to_string();
        let ratio =
            if i == 0 { String::new() } else { spread(&|r| added_ratio(r, i, 1)).to_string() };
        println!("  {name:<30}{time:<29}{added:<29}{ratio}");
    }
    let ours = spread(&|r| added_ratio(r, 3, 1));
    let like_for_like = spread(&|r| added_ratio(r, 3, 2));
    println!("  client_credentials added / static_header_if_not_present's: {like_for_like}");
    println!(
        "  goal: client_credentials <= {GOAL}x static_header: {}",
        verdict(ours.median <= GOAL)
    );
}

fn ns_per_request<S>(service: &mut S) -> f64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let elapsed = time_round_trips(service, ROUND_TRIPS_PER_ROUND);
    elapsed.as_nanos() as f64 / ROUND_TRIPS_PER_ROUND as f64
}

/// Service `i`'s added cost over service `base`'s, in one round.
fn added_ratio(round: &[f64; 5], i: usize, base: usize) -> f64 {
    (round[i] - round[0]) / (round[base] - round[0])
}

criterion_group!(benches, hot_path);
