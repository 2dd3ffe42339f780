//! A fleet of replicas sharing one token through Redis.
//!
//! ```text
//! cargo run --example fleet --features redis
//! ```
//!
//! Starts a token endpoint (2-second tokens) and a `redis-server` (it must be on `PATH`) on
//! loopback, then runs six replicas as separate processes twice, for six seconds each: first
//! each on its own, then sharing through Redis. Prints the token requests each run made.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use tower_client_credentials::store::RedisStore;
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config};

const REPLICAS: usize = 6;
const TOKEN_LIFETIME: Duration = Duration::from_secs(2);
const REFRESH_AHEAD: Duration = Duration::from_millis(300);
const RUN_FOR: Duration = Duration::from_secs(6);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, token_url, redis_url] = &args[..] {
        if role == "replica" {
            return replica(token_url, redis_url).await;
        }
    }

    let issued = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let token_url = format!("http://{}/token", listener.local_addr()?);
    let router = Router::new().route("/token", post(issue)).with_state(issued.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let redis_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "could not start redis-server ({e}); install it, e.g. apt-get install redis-server"
            )
        })?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");

    let lifetimes = RUN_FOR.as_secs_f64() / TOKEN_LIFETIME.as_secs_f64();
    println!(
        "fleet: {REPLICAS} replica processes, {} s tokens, {} s per run ({lifetimes:.0} lifetimes)",
        TOKEN_LIFETIME.as_secs(),
        RUN_FOR.as_secs()
    );
    for (name, store) in [("each on its own", "-"), ("sharing through Redis", redis_url.as_str())] {
        let before = issued.load(Ordering::SeqCst);
        run_replicas(&token_url, store).await?;
        let made = issued.load(Ordering::SeqCst) - before;
        println!("  {name:<22} {made:>3} token requests");
    }
    let refreshes = RUN_FOR.as_secs_f64() / (TOKEN_LIFETIME - REFRESH_AHEAD).as_secs_f64();
    println!(
        "  (one replica makes one per refresh, every {:?}: {:.0})",
        TOKEN_LIFETIME - REFRESH_AHEAD,
        refreshes.ceil()
    );
    let _ = redis.kill();
    Ok(())
}

async fn run_replicas(token_url: &str, redis_url: &str) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..REPLICAS)
        .map(|_| Command::new(&exe).args(["replica", token_url, redis_url]).spawn())
        .collect::<Result<_, _>>()?;
    tokio::task::spawn_blocking(move || {
        for mut child in children {
            if !child.wait()?.success() {
                return Err::<(), BoxError>("a replica failed".into());
            }
        }
        Ok(())
    })
    .await?
}

/// One replica: a token for a request every 10 ms, for `RUN_FOR`.
async fn replica(token_url: &str, redis_url: &str) -> Result<(), BoxError> {
    let mut config = Config::builder(token_url, "fleet", "fleet-secret")
        .refresh_ahead(REFRESH_AHEAD)
        .expiry_margin(Duration::from_millis(100));
    if redis_url != "-" {
        config = config.store(RedisStore::new(redis_url)?);
    }
    let layer = ClientCredentialsLayer::new(config.build()?);
    let until = tokio::time::Instant::now() + RUN_FOR;
    while tokio::time::Instant::now() < until {
        layer.token().await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn issue(State(issued): State<Arc<AtomicUsize>>) -> Json<serde_json::Value> {
    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
    Json(serde_json::json!({
        "access_token": format!("fleet-token-{n}"),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
    }))
}
