//! The hot path in instructions, counted by callgrind: the same four services as `hot_path`,
//! without the noise of a shared machine.
//!
//! ```text
//! cargo bench -p benches --bench hot_path_instructions
//! ```
//!
//! The program runs itself under `valgrind --tool=callgrind` once per service and request
//! count, collecting only inside [`counted_round_trips`]. Counts are deterministic, and the
//! difference between two request counts cancels what is paid once (the loop's set-up, first
//! uses), leaving instructions per request. Instructions are not time: an atomic
//! read-modify-write or the clock read counts as one or a few instructions but costs tens of
//! cycles, so read this beside `hot_path`, not instead of it.
//!
//! Without valgrind it says so and does nothing.

use std::env;
use std::fmt::Debug;
use std::fs;
use std::process::Command;

use http::{Request, Response};
use tower_service::Service;

mod common;
use common::{api_request, round_trip, verdict, FreshToken};

/// Tells the program that it runs under callgrind, and which service to count.
const SERVICE_VARIABLE: &str = "HOT_PATH_INSTRUCTIONS_SERVICE";
const REQUESTS_VARIABLE: &str = "HOT_PATH_INSTRUCTIONS_REQUESTS";
const SERVICES: [&str; 5] =
    ["bare", "static_header", "static_header_if_not_present", "client_credentials", "naive_mutex"];
const FEWER: u64 = 1_000;
const MORE: u64 = 11_000;
const GOAL: f64 = 1.5;

fn main() {
    match env::var(SERVICE_VARIABLE) {
        Ok(service) => {
            let requests = env::var(REQUESTS_VARIABLE).expect("a request count");
            run_counted(&service, requests.parse().expect("a number of requests"));
        }
        Err(_) => report(),
    }
}

/// Under callgrind: sends `requests` requests through `service`.
fn run_counted(service: &str, requests: u64) {
    let fresh = FreshToken::start();
    let mut services = fresh.services();
    match service {
        "bare" => counted_round_trips(&mut services.bare, requests),
        "static_header" => counted_round_trips(&mut services.static_header, requests),
        "static_header_if_not_present" => {
            counted_round_trips(&mut services.static_header_if_not_present, requests)
        }
        "client_credentials" => counted_round_trips(&mut services.client_credentials, requests),
        "naive_mutex" => counted_round_trips(&mut services.naive_mutex, requests),
        other => panic!("no service named {other}"),
    }
}

/// The only code callgrind counts (`--toggle-collect`).
#[inline(never)]
fn counted_round_trips<S>(service: &mut S, requests: u64)
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: Debug,
{
    let mut request = api_request();
    for _ in 0..requests {
        request = round_trip(service, request);
    }
}

fn report() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("hot_path_instructions: valgrind is not installed; nothing counted");
        return;
    }
    let per_request = SERVICES.map(|service| {
        let more = instructions(service, MORE);
        let fewer = instructions(service, FEWER);
        (more - fewer) as f64 / (MORE - FEWER) as f64
    });
    let [bare, static_header, if_not_present, client_credentials, _] = per_request;
    println!(
        "hot_path_instructions: callgrind, instructions per request ({MORE} minus {FEWER} \
         requests)"
    );
    println!("  {:<30}{:>10}{:>10}{:>26}", "", "per request", "added", "added / static_header's");
    for (service, instructions) in SERVICES.iter().zip(per_request) {
        let added = instructions - bare;
        let ratio = added / (static_header - bare);
        println!("  {service:<30}{instructions:>10.1}{added:>10.1}{ratio:>26.2}");
    }
    let ours = (client_credentials - bare) / (static_header - bare);
    let like_for_like = (client_credentials - bare) / (if_not_present - bare);
    println!("  client_credentials added / static_header_if_not_present's: {like_for_like:.2}");
    println!(
        "  goal: client_credentials <= {GOAL}x static_header (in instructions): {}",
        verdict(ours <= GOAL)
    );
}

/// The instructions callgrind counted in [`counted_round_trips`] for `requests` requests.
fn instructions(service: &str, requests: u64) -> u64 {
    let out = env::temp_dir().join(format!("hot-path-{service}-{requests}.callgrind"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--toggle-collect=*counted_round_trips*", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(env::current_exe().expect("the path of this program"))
        .env(SERVICE_VARIABLE, service)
        .env(REQUESTS_VARIABLE, requests.to_string())
        .status()
        .expect("valgrind runs");
    assert!(status.success(), "callgrind run of {service} failed: {status}");
    let profile = fs::read_to_string(&out).expect("callgrind's output");
    let _ = fs::remove_file(&out);
    profile
        .lines()
        .find_map(|line| line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")))
        .and_then(|count| count.trim().parse().ok())
        .expect("a summary line in callgrind's output")
}
