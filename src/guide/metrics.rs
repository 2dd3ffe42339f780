//! Time series of what the token cache does (feature `metrics`), for Prometheus or any other
//! recorder.
//!
//! With the feature `metrics`, every layer records through the
//! [`metrics`](https://docs.rs/metrics) facade, for whichever recorder the application
//! installs: [metrics-exporter-prometheus](https://docs.rs/metrics-exporter-prometheus), StatsD,
//! or OpenTelemetry through a bridge. Without a recorder the calls cost nothing; without the
//! feature they are not compiled. [`stats`](crate::ClientCredentialsLayer::stats) gives the
//! same counts in process, without the feature.
//!
//! ```toml
//! tower-client-credentials = { version = "0.1", features = ["metrics"] }
//! metrics-exporter-prometheus = { version = "0.18", default-features = false }
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "metrics")]
//! # fn run(token_url: &str, client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower_client_credentials::Config;
//!
//! // First, before the first request: events recorded before a recorder is installed are lost.
//! let prometheus = PrometheusBuilder::new()
//!     .with_recommended_naming(true) // `_total` and `_seconds`, as Prometheus names them
//!     .install_recorder()?;
//! // Serve `prometheus.render()` at GET /metrics (an axum route, say), and call
//! // `prometheus.run_upkeep()` every few seconds.
//! let config = Config::builder(token_url, client_id, client_secret)
//!     .scope("orders:read orders:write")
//!     .metrics_label("orders") // the `token` label; by default the scopes
//!     .build()?;
//! # let _ = (prometheus, config);
//! # Ok(()) }
//! ```
//!
//! # The series
//!
//! Names follow the OpenTelemetry semantic conventions' rules (dotted, durations in seconds as
//! `*.duration` histograms, `server.address` for the host); the Prometheus exporter writes the
//! dots as underscores:
//!
//! | metric (Prometheus name) | kind | extra labels | what |
//! |---|---|---|---|
//! | `oauth.client.token_requests` (`oauth_client_token_requests_total`) | counter | `outcome`, `status_class` | requests to the token endpoint |
//! | `oauth.client.token_request.duration` (`..._duration_seconds`) | histogram, s | `outcome`, `status_class` | how long each took |
//! | `oauth.client.token_waits` (`oauth_client_token_waits_total`) | counter | | callers with no usable token, who waited |
//! | `oauth.client.token_wait.duration` (`..._duration_seconds`) | histogram, s | | how long each waited (token or error) |
//! | `oauth.client.stale_serves` (`oauth_client_stale_serves_total`) | counter | | requests sent with a stale token |
//! | `oauth.client.invalidations` (`oauth_client_invalidations_total`) | counter | | tokens dropped after a `401` |
//! | `oauth.client.token.expiration_timestamp` (`..._timestamp_seconds`) | gauge, s | | UNIX time the cached token expires |
//! | `oauth.client.store.hits` (`oauth_client_store_hits_total`) | counter | | tokens taken from the store |
//! | `oauth.client.store.misses` (`oauth_client_store_misses_total`) | counter | | token requests made though a store is set |
//! | `oauth.client.store.failures` (`oauth_client_store_failures_total`) | counter | `operation`, `error.type` | store operations that failed (`read`, `lock`, `write`, `unlock`, `remove`; `error`, `timeout`, `unreadable`) |
//!
//! Every series carries `client_id`, `server.address` (the token endpoint's host) and `token`
//! (`metrics_label`, or the scopes, else the audience or resources, else `default`; never a
//! form `param`, whose values may be credentials). No label ever holds a secret or a token.
//! `outcome` is `ok`, `transient` or `rejected` (the [`ErrorClass`]); `status_class` is `2xx`
//! to `5xx`, or `none` when the endpoint did not answer (connection refused, timeout). `ok`
//! counts requests that brought a token: with a store, a token another replica shared is a
//! store hit, not a token request.
//!
//! # Alerts
//!
//! The remaining lifetime is `oauth_client_token_expiration_timestamp_seconds - time()`: a
//! recorder keeps the last value it was given, and a remaining lifetime changes every second,
//! so the gauge holds the expiry instead (Prometheus' advice: export timestamps, not durations
//! since or until). After a `401` it holds the time the token was dropped.
//!
//! ```promql
//! # No usable token within a minute, while requests are still being made
//! oauth_client_token_expiration_timestamp_seconds - time() < 60
//! # The token endpoint refuses us
//! increase(oauth_client_token_requests_total{outcome="rejected"}[5m]) > 0
//! # Requests that waited more than a second, at the 99th percentile
//! histogram_quantile(0.99, sum by (le) (rate(oauth_client_token_wait_duration_seconds_bucket[5m]))) > 1
//! ```
//!
//! Histograms are summaries unless buckets are set (`set_buckets(..)`, as the example does).
//! `cargo run --example prometheus --features metrics` records one `ok`, one `rejected` and one
//! stale serve against servers on loopback, and prints the scrape.
//!
//! [`ErrorClass`]: crate::ErrorClass
