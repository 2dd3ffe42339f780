//! What DPoP costs per request, against its floor: the signature alone, with the same key.
//!
//! ```text
//! cargo bench -p benches --features dpop --bench dpop
//! ```
//!
//! A proof per request is inherent to DPoP (RFC 9449 §7), and its signature is most of it. The
//! goal: the whole of it (the claims, their encoding, the signature, the `DPoP` and
//! `Authorization` headers, and the response's check for a nonce) costs at most 1.3× the bare
//! signature. Timed around [`common::Park`] as the other per-request benchmarks are:
//!
//! - `bare`: `Park` alone;
//! - `client_credentials`: our layer without DPoP configured (in this build, with the feature
//!   on): the hot path of `hot_path`, which must not change;
//! - `dpop_es256`, `dpop_eddsa`: our layer with DPoP, holding a fresh DPoP-bound token: a
//!   round trip, minus `bare`, is what DPoP adds;
//! - `signature_es256`, `signature_eddsa`: the floor, aws-lc-rs signing one of those proofs'
//!   signing input with the same key (loaded from the same PKCS #8).
//!
//! Criterion times each; then interleaved rounds (every service in turn, each round) give the
//! ratios, so that other work on the machine weighs on all of them alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use criterion::Criterion;
use http::{Request, Response};
use serde_json::{json, Value};
use tower::Layer;
use tower_client_credentials::{ClientCredentials, ClientCredentialsLayer, DpopAlgorithm, DpopKey};
use tower_service::Service;

mod common;
use common::{take_parked, time_round_trips, verdict, FreshToken, Park, Spread};

/// The goal: the whole proof at most this many times the bare signature.
const GOAL: f64 = 1.3;
const ROUNDS: usize = 31;
/// Requests per round for the services without a signature, and with one.
const FAST_PER_ROUND: u64 = 100_000;
const SIGNED_PER_ROUND: u64 = 2_000;

/// A key, both as our layer holds it and as aws-lc-rs signs with it alone.
enum Floor {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Floor {
    fn sign(&self, message: &[u8]) -> usize {
        match self {
            Floor::Es256(key) => key.sign(&SystemRandom::new(), message).unwrap().as_ref().len(),
            Floor::EdDsa(key) => key.sign(message).as_ref().len(),
        }
    }
}

/// A key of `algorithm`: ours, the same for the floor, and its PEM.
fn keys(algorithm: DpopAlgorithm) -> (DpopKey, Floor) {
    let rng = SystemRandom::new();
    let (der, floor) = match algorithm {
        DpopAlgorithm::Es256 => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref());
            (der.as_ref().to_vec(), Floor::Es256(key.unwrap()))
        }
        _ => {
            let der = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.as_ref()).unwrap();
            (der.as_ref().to_vec(), Floor::EdDsa(key))
        }
    };
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
    (DpopKey::from_pem(pem, algorithm).unwrap(), floor)
}

/// Our layer with DPoP and a fresh DPoP-bound token, around `Park`; and one proof's signing
/// input, for the floor.
struct Bound {
    service: ClientCredentials<Park>,
    floor: Floor,
    signing_input: Vec<u8>,
}

fn bound(runtime: &tokio::runtime::Runtime, algorithm: DpopAlgorithm) -> Bound {
    let (key, floor) = keys(algorithm);
    let layer = runtime.block_on(async {
        let router = Router::new().route(
            "/token",
            post(|| async {
                // An opaque token of a common length, as `common::TokenServer` issues.
                let token = format!("opaque-token-{:030}", 1);
                Json::<Value>(
                    json!({"access_token": token, "token_type": "DPoP", "expires_in": 3600}),
                )
            }),
        );
        let addr = common::serve(router).await;
        let config = tower_client_credentials::Config::builder(
            format!("http://{addr}/token"),
            "bench-client",
            "bench-secret",
        )
        .dpop(key)
        .build()
        .unwrap();
        let layer = ClientCredentialsLayer::new(config);
        layer.warm_up().await.expect("a DPoP token from the loopback endpoint");
        layer
    });
    let mut service = layer.layer(Park);
    common::round_trip(&mut service, common::api_request());
    let _ = take_parked();
    // One more to read a proof: `round_trip` hands the request back with its `DPoP` header.
    let request = common::round_trip(&mut service, common::api_request());
    let proof = request.headers()["dpop"].to_str().unwrap();
    let signing_input = proof.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    Bound { service, floor, signing_input }
}

#[inline(never)]
fn time_signatures(floor: &Floor, message: &[u8], iterations: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(floor.sign(black_box(message)));
    }
    start.elapsed()
}

fn ns<S>(service: &mut S, iterations: u64) -> f64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    time_round_trips(service, iterations).as_nanos() as f64 / iterations as f64
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fresh = FreshToken::start();
    let mut plain = fresh.services().client_credentials;
    let mut bare = Park;
    let mut es256 = bound(&runtime, DpopAlgorithm::Es256);
    let mut eddsa = bound(&runtime, DpopAlgorithm::EdDsa);

    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("dpop");
        group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        group.bench_function("bare", |b| b.iter_custom(|n| time_round_trips(&mut bare, n)));
        group.bench_function("client_credentials", |b| {
            b.iter_custom(|n| time_round_trips(&mut plain, n))
        });
        for (name, bound) in [("es256", &mut es256), ("eddsa", &mut eddsa)] {
            group.bench_function(format!("signature_{name}"), |b| {
                b.iter_custom(|n| time_signatures(&bound.floor, &bound.signing_input, n))
            });
            group.bench_function(format!("dpop_{name}"), |b| {
                b.iter_custom(|n| time_round_trips(&mut bound.service, n))
            });
        }
        group.finish();
    }
    c.final_summary();

    // Interleaved rounds: bare, client_credentials, then per algorithm the floor and ours.
    let mut rounds: Vec<[f64; 6]> = Vec::new();
    for _ in 0..ROUNDS {
        let signature = |bound: &Bound| {
            let elapsed = time_signatures(&bound.floor, &bound.signing_input, SIGNED_PER_ROUND);
            elapsed.as_nanos() as f64 / SIGNED_PER_ROUND as f64
        };
        rounds.push([
            ns(&mut bare, FAST_PER_ROUND),
            ns(&mut plain, FAST_PER_ROUND),
            signature(&es256),
            ns(&mut es256.service, SIGNED_PER_ROUND),
            signature(&eddsa),
            ns(&mut eddsa.service, SIGNED_PER_ROUND),
        ]);
    }
    let spread = |f: &dyn Fn(&[f64; 6]) -> f64| Spread::of(rounds.iter().map(f));
    println!("\ndpop: {ROUNDS} interleaved rounds ({FAST_PER_ROUND} or {SIGNED_PER_ROUND} requests each)");
    println!("  bare                      {} ns", spread(&|r| r[0]));
    println!("  client_credentials added  {} ns (no DPoP configured)", spread(&|r| r[1] - r[0]));
    let mut met = true;
    for (name, at) in [("es256", 2), ("eddsa", 4)] {
        let ratio = spread(&|r| (r[at + 1] - r[0]) / r[at]);
        println!("  signature_{name}           {} ns (the floor)", spread(&|r| r[at]));
        println!("  dpop_{name} added          {} ns", spread(&|r| r[at + 1] - r[0]));
        println!("  dpop_{name} added / signature_{name}: {ratio:.3}");
        met &= ratio.median <= GOAL;
    }
    println!("  goal: the whole proof <= {GOAL}x the bare signature: {}", verdict(met));
}
