//! Throughput of one shared layer from one thread and from two at once, beside the same for a
//! static header, a hand-rolled mutex and no middleware at all.
//!
//! ```text
//! cargo bench -p benches --bench contention
//! ```
//!
//! Each thread sends requests back to back through its own clone of the service, as each task
//! of a real client has its own clone; the clones share what their originals share: our
//! layer's token cache, the static header's reference-counted bytes, the naive mutex. Two
//! threads on two cores can at best double the throughput of one; what they share decides how
//! close they come.
//!
//! Criterion times each service and thread count (one iteration is one request on every
//! thread). Then, because the machine may be busy with other work, scaling comes from
//! interleaved rounds: each round runs every service on one thread and on two, and scaling in
//! that round is the ratio of the two throughputs. A round in which a thread waited for a core
//! (other work had it) or started late measured the machine, not contention: the goals are
//! judged on the undisturbed rounds, from the scheduler's own account of each thread
//! (`/proc/thread-self/schedstat`). `bare` shows what the machine allows.

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use http::{Request, Response};
use tower_service::Service;

mod common;
use common::{time_round_trips, verdict, FreshToken, Services, Spread};

/// The goal: two threads give at least this many times the throughput of one.
const GOAL: f64 = 1.8;
const ROUNDS: usize = 101;
const REQUESTS_PER_THREAD: u64 = 50_000;
/// A measurement counts as undisturbed when no thread waited for a core, or started after
/// the first, for longer than this share of the time it took.
const DISTURBANCE: f64 = 0.02;
/// Judge the goals on undisturbed rounds only if at least this many were.
const MIN_UNDISTURBED: usize = 10;

fn contention(c: &mut Criterion) {
    let fresh = FreshToken::start();
    let services = fresh.services();

    let mut group = c.benchmark_group("contention");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.sample_size(30);
    for threads in [1, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        bench(&mut group, "bare", &services.bare, threads);
        bench(&mut group, "static_header", &services.static_header, threads);
        bench(&mut group, "client_credentials", &services.client_credentials, threads);
        bench(&mut group, "naive_mutex", &services.naive_mutex, threads);
    }
    group.finish();

    report_scaling(&services);
}

fn bench<S>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, service: &S, threads: usize)
where
    S: Service<Request<()>, Response = Response<()>> + Clone + Send,
    S::Error: Debug,
{
    group.bench_function(BenchmarkId::new(name, format!("{threads}_threads")), |b| {
        b.iter_custom(|iterations| on_threads(service, threads, iterations).span)
    });
}

/// One measurement: requests sent on some threads at once.
#[derive(Clone, Copy)]
struct Run {
    /// From the first thread's first request to the last thread's last.
    span: Duration,
    /// Whether the threads ran together throughout, undisturbed by other work on the machine:
    /// none waited for a core, and none started late. Otherwise the machine, not contention,
    /// shaped the result.
    undisturbed: bool,
}

/// Sends `requests` requests through a clone of `service` on each of `threads` threads at
/// once.
fn on_threads<S>(service: &S, threads: usize, requests: u64) -> Run
where
    S: Service<Request<()>, Response = Response<()>> + Clone + Send,
    S::Error: Debug,
{
    // Threads spin until all have started, rather than sleep on a barrier: waking a sleeping
    // thread can take longer than the whole run, and the threads would not overlap.
    let arrived = AtomicUsize::new(0);
    let timings: Vec<(Instant, Instant, Duration)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut service = service.clone();
                let arrived = &arrived;
                scope.spawn(move || {
                    arrived.fetch_add(1, SeqCst);
                    while arrived.load(SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    let waited_before = time_waiting_for_core();
                    let start = Instant::now();
                    time_round_trips(&mut service, requests);
                    (start, Instant::now(), time_waiting_for_core() - waited_before)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a worker")).collect()
    });
    let first_start = timings.iter().map(|t| t.0).min().unwrap();
    let last_start = timings.iter().map(|t| t.0).max().unwrap();
    let span = timings.iter().map(|t| t.1).max().unwrap() - first_start;
    let limit = span.mul_f64(DISTURBANCE);
    let undisturbed = last_start - first_start <= limit && timings.iter().all(|t| t.2 <= limit);
    Run { span, undisturbed }
}

/// How long the calling thread has waited, ready to run, for a core, from the scheduler's own
/// account (the second figure of `schedstat`; it is up to date whenever the thread reads it,
/// since it is running then). Zero where the kernel does not keep it.
fn time_waiting_for_core() -> Duration {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = schedstat.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// Millions of requests per second from one thread and from two, in one round, and whether
/// other work on the machine left our threads alone meanwhile.
#[derive(Clone, Copy)]
struct Throughputs {
    one: f64,
    two: f64,
    undisturbed: bool,
}

impl Throughputs {
    fn measure<S>(service: &S) -> Self
    where
        S: Service<Request<()>, Response = Response<()>> + Clone + Send,
        S::Error: Debug,
    {
        let one = on_threads(service, 1, REQUESTS_PER_THREAD);
        let two = on_threads(service, 2, REQUESTS_PER_THREAD);
        let per_second = |run: Run, threads: u64| {
            (threads * REQUESTS_PER_THREAD) as f64 / run.span.as_secs_f64() / 1e6
        };
        Self {
            one: per_second(one, 1),
            two: per_second(two, 2),
            undisturbed: one.undisturbed && two.undisturbed,
        }
    }

    fn scaling(self) -> f64 {
        self.two / self.one
    }
}

/// The services in the order of a round's measurements.
const NAMES: [&str; 4] = ["bare", "static_header", "client_credentials", "naive_mutex"];
const BARE: usize = 0;
const STATIC_HEADER: usize = 1;
const CLIENT_CREDENTIALS: usize = 2;

fn report_scaling(services: &Services) {
    let rounds: Vec<[Throughputs; 4]> = (0..ROUNDS)
        .map(|_| {
            [
                Throughputs::measure(&services.bare),
                Throughputs::measure(&services.static_header),
                Throughputs::measure(&services.client_credentials),
                Throughputs::measure(&services.naive_mutex),
            ]
        })
        .collect();
    let spread = |f: &dyn Fn(&[Throughputs; 4]) -> f64| Spread::of(rounds.iter().map(f));

    println!(
        "\ncontention: {ROUNDS} interleaved rounds, {REQUESTS_PER_THREAD} requests per thread"
    );
    println!(
        "  M requests/s with 1 thread, with 2, and scaling (2 / 1); median (IQR) of all rounds"
    );
    for (i, name) in NAMES.iter().enumerate() {
        let one = spread(&|r| r[i].one).to_string();
        let two = spread(&|r| r[i].two).to_string();
        println!("    {name:<20}{one:<26}{two:<26}{}", spread(&|r| r[i].scaling()));
    }
    println!(
        "  scaling in undisturbed rounds (no thread waited for a core or started late > {:.0}%)",
        DISTURBANCE * 100.0
    );
    for (i, name) in NAMES.iter().enumerate() {
        let undisturbed: Vec<f64> =
            rounds.iter().filter(|r| r[i].undisturbed).map(|r| r[i].scaling()).collect();
        match undisturbed.len() {
            0 => println!("    {name:<20}none of {ROUNDS} rounds"),
            n => println!("    {name:<20}{} in {n} of {ROUNDS} rounds", Spread::of(undisturbed)),
        }
    }
    // The goals, on rounds where both services ran undisturbed (all rounds if too few did).
    let both =
        |r: &&[Throughputs; 4]| r[CLIENT_CREDENTIALS].undisturbed && r[STATIC_HEADER].undisturbed;
    let mut judged: Vec<&[Throughputs; 4]> = rounds.iter().filter(both).collect();
    let undisturbed = judged.len();
    let which = if undisturbed >= MIN_UNDISTURBED {
        format!("the {undisturbed} rounds undisturbed for both")
    } else {
        judged = rounds.iter().collect();
        format!("all rounds (only {undisturbed} undisturbed for both: the machine was busy)")
    };
    let ours = Spread::of(judged.iter().map(|r| r[CLIENT_CREDENTIALS].scaling()));
    let against_static = Spread::of(
        judged.iter().map(|r| r[CLIENT_CREDENTIALS].scaling() / r[STATIC_HEADER].scaling()),
    );
    // What the machine allowed in the same round: `bare` has nothing to share.
    let of_ceiling =
        |i: usize| Spread::of(judged.iter().map(|r| r[i].scaling() / r[BARE].scaling()));
    println!("  judged on {which}:");
    println!("    client_credentials scaling {ours}");
    println!("    client_credentials scaling / static_header's {against_static}");
    println!(
        "    scaling / bare's in the same round: static_header {}, client_credentials {}",
        of_ceiling(STATIC_HEADER),
        of_ceiling(CLIENT_CREDENTIALS)
    );
    println!("  goal: client_credentials scaling >= {GOAL}: {}", verdict(ours.median >= GOAL));
    println!("  goal: never below the static header's: {}", verdict(against_static.median >= 1.0));
}

criterion_group!(benches, contention);
criterion_main!(benches);
