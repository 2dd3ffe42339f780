//! The layer's metrics for Prometheus: metrics-exporter-prometheus as the `metrics` recorder, a
//! `/metrics` endpoint on loopback, and one scrape printed.
//!
//! ```text
//! cargo run --example prometheus --features metrics
//! ```
//!
//! It runs offline, in about two seconds: on loopback it starts a token endpoint that issues one
//! two-second token and then refuses the client (`invalid_client`, as after the client was
//! disabled), and an API. A cold request waits for the token (one `ok` token request); a
//! second later the token is stale, so the next request is sent with it and starts the
//! background refresh, which is refused (one stale serve, one `rejected`). Then it scrapes
//! `/metrics` and prints the crate's series.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::{Layer, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The recorder first: metrics recorded before it is installed are lost.
    let prometheus = PrometheusBuilder::new()
        .with_recommended_naming(true) // `_total`, `_seconds`: Prometheus' naming
        .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])?
        .install_recorder()?;
    let scrape = prometheus.clone();
    let metrics_url =
        serve(Router::new().route("/metrics", get(move || async move { scrape.render() }))).await;
    // The exporter's housekeeping (histogram windows); run it every few seconds in a service.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            prometheus.run_upkeep();
        }
    });

    let requests = Arc::new(AtomicUsize::new(0));
    let token_url = serve(Router::new().route(
        "/token",
        post(move || async move {
            match requests.fetch_add(1, Ordering::Relaxed) {
                0 => (
                    StatusCode::OK,
                    Json(serde_json::json!({"access_token": "t1", "expires_in": 2})),
                ),
                _ => {
                    (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_client"})))
                }
            }
        }),
    ))
    .await;
    let api = serve(Router::new().route(
        "/orders",
        get(|headers: HeaderMap| async move {
            if headers.contains_key("authorization") {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }),
    ))
    .await;

    let config = Config::builder(format!("{token_url}/token"), "orders-service", "s3cret")
        .scope("orders:read orders:write")
        .metrics_label("orders") // the `token` label; by default, the scopes
        .build()?;
    let layer = ClientCredentialsLayer::new(config);
    let client = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let get_orders = || http::Request::get(format!("{api}/orders")).body(Empty::new());

    let cold = client.clone().oneshot(get_orders()?).await?;
    println!("cold request   -> {} (waited for the token)", cold.status());
    // A 2 s token is fresh for about its first second, and usable until 1.5 s.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stale = client.clone().oneshot(get_orders()?).await?;
    println!(
        "stale request  -> {} (sent with the stale token; the refresh is refused)",
        stale.status()
    );
    tokio::time::sleep(Duration::from_millis(100)).await; // the refresh's answer

    let body = reqwest::get(format!("{metrics_url}/metrics")).await?.text().await?;
    println!("\nGET {metrics_url}/metrics (the crate's series, histogram buckets left out):\n");
    let ours = |line: &&str| line.contains("oauth_client") && !line.contains("_bucket{");
    for line in body.lines().filter(ours) {
        println!("{line}");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let expiry = body
        .lines()
        .find(|line| line.starts_with("oauth_client_token_expiration_timestamp_seconds{"))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
    if let Some(expiry) = expiry {
        println!(
            "\nthe token's remaining lifetime, as `expiration_timestamp - time()`: {:.1} s",
            expiry - now
        );
    }
    Ok(())
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}
