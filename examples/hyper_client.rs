//! hyper-util's client, over HTTP and HTTPS, with a bearer token, a timeout and a concurrency
//! limit: the stack a production service builds.
//!
//! ```text
//! cargo run --example hyper_client
//! ```
//!
//! It runs offline: on loopback it starts a token endpoint, an API over plain HTTP, and the same
//! API over HTTPS with a self-signed certificate made at start-up (with `rcgen`). One
//! `hyper_rustls` connector serves both schemes; the client keeps its connection pool (clones of
//! the client and of the stack share it), and the example prints how many connections the
//! requests took. A last call shows the timeout covering the wait for a token.
//!
//! # The order of the layers
//!
//! `ServiceBuilder` wraps from the top down: the first layer added sees each request first.
//!
//! ```text
//! ServiceBuilder::new()
//!     .retry(RetryUnauthorized::new())// outside: each attempt goes through the layers
//!                                     //   below, so it gets the token current at that moment
//!     .concurrency_limit(32)
//!     .timeout(Duration::from_secs(5))// outside our layer: waiting for a token counts
//!                                     //   against the request's time
//!     .layer(client_credentials)      // adds `Authorization: Bearer ...`
//!     .service(hyper_client)
//! ```
//!
//! - **Our layer inside `timeout`**: on a cold cache, or when the token has expired, a request
//!   waits for the token request. Inside the timeout, that wait counts: a caller never waits
//!   longer than its timeout, whatever the token endpoint does. (The token request itself goes
//!   on in the background for the next callers; it has its own `request_timeout`.)
//! - **`retry` outside our layer**: each attempt passes through our layer again and takes the
//!   current token. Inside it, every attempt would carry the header of the first one, even if a
//!   `401` made the crate drop that token. A request that already has `Authorization` is left
//!   alone, so retry a clone of the request as it was before our layer saw it (which is what
//!   `tower::retry` does when it sits outside). `RetryUnauthorized` is this crate's policy for
//!   resending once after a `401` that replaced the token.
//! - `concurrency_limit` outside `timeout` bounds the requests in flight; put it inside
//!   `timeout` instead if time spent waiting for a slot should count too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower::{ServiceBuilder, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, Config, ServiceBuilderExt};

const REQUESTS: usize = 20;
const TOKEN: &str = "demo-token";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let token_url = token_endpoint(token_requests.clone()).await?;

    // A certificate for 127.0.0.1, made now; the client trusts it and nothing else.
    let certificate = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let http_api = Api::start(None).await?;
    let https_api = Api::start(Some(&certificate)).await?;
    println!("token endpoint {token_url}");
    println!("APIs           {}  {}", http_api.url, https_api.url);

    // One connector for both schemes. Against real servers, trust the usual roots instead:
    // `HttpsConnectorBuilder::new().with_native_roots()?` or `.with_webpki_roots()`.
    let mut roots = RootCertStore::empty();
    roots.add(certificate.cert.der().clone())?;
    let tls = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector =
        HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    // Built once and cloned: every clone shares the one connection pool.
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(8)
        .build::<_, Empty<Bytes>>(connector);

    let config =
        Config::builder(&token_url, "reports-service", "s3cret").scope("reports:read").build()?;
    let layer = ClientCredentialsLayer::new(config);
    let api = ServiceBuilder::new()
        .concurrency_limit(4)
        .timeout(Duration::from_secs(5))
        .layer(layer.clone())
        .service(client.clone());

    for server in [&http_api, &https_api] {
        let calls: Vec<_> = (0..REQUESTS)
            .map(|_| {
                let (api, url) = (api.clone(), server.url.clone());
                tokio::spawn(async move {
                    let request = http::Request::get(url).body(Empty::new())?;
                    let response = api.oneshot(request).await?;
                    let status = response.status();
                    // Read to the end, so the connection goes back to the pool.
                    response.into_body().collect().await?;
                    Ok::<_, BoxError>(status)
                })
            })
            .collect();
        let mut ok = 0;
        for call in calls {
            ok += usize::from(call.await?? == StatusCode::OK);
        }
        println!(
            "\n{}: {ok}/{REQUESTS} requests answered 200, over {} connection(s), at most 4 at once",
            server.url,
            server.connections.load(Ordering::Relaxed)
        );
    }
    println!("token requests: {}", token_requests.load(Ordering::Relaxed));

    // The timeout covers the wait for a token: with a token endpoint that takes 3 s, a request
    // with a 500 ms timeout fails after 500 ms, not 3 s.
    let slow = Config::builder(format!("{token_url}?slow"), "reports-service", "s3cret").build()?;
    let impatient = ServiceBuilder::new()
        .timeout(Duration::from_millis(500))
        .client_credentials(slow)
        .service(client);
    let started = Instant::now();
    let request = http::Request::get(&http_api.url).body(Empty::new())?;
    match impatient.oneshot(request).await {
        Err(error) => println!(
            "\nslow token endpoint, 500 ms timeout: failed after {:.0?}: {error}",
            started.elapsed()
        ),
        Ok(response) => println!("\nslow token endpoint: unexpectedly {}", response.status()),
    }
    Ok(())
}

/// A token endpoint that issues [`TOKEN`], counting requests; with `?slow` it takes 3 s.
async fn token_endpoint(count: Arc<AtomicUsize>) -> Result<String, BoxError> {
    let issue = move |query: axum::extract::RawQuery| async move {
        if query.0.as_deref() == Some("slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        count.fetch_add(1, Ordering::Relaxed);
        Json(serde_json::json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}))
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/oauth/token", listener.local_addr()?);
    let router = Router::new().route("/oauth/token", post(issue));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// An API that answers 200 to requests carrying [`TOKEN`], over HTTP or HTTPS, and counts the
/// connections it accepts.
struct Api {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Api {
    async fn start(
        certificate: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>,
    ) -> Result<Self, BoxError> {
        let router = Router::new().route("/reports", get(reports));
        let connections = Arc::new(AtomicUsize::new(0));
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let addr = tcp.local_addr()?;
        let url = match certificate {
            None => {
                let tcp = tcp.tap_io(counting(&connections));
                tokio::spawn(async move { axum::serve(tcp, router).await });
                format!("http://{addr}/reports")
            }
            Some(certificate) => {
                let key = PrivatePkcs8KeyDer::from(certificate.signing_key.serialize_der());
                let tls =
                    ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                        .with_safe_default_protocol_versions()?
                        .with_no_client_auth()
                        .with_single_cert(vec![certificate.cert.der().clone()], key.into())?;
                let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)) };
                let listener = listener.tap_io(counting(&connections));
                tokio::spawn(async move { axum::serve(listener, router).await });
                format!("https://{addr}/reports")
            }
        };
        Ok(Self { url, connections })
    }
}

/// Counts each connection accepted, whatever its type.
fn counting<Io>(connections: &Arc<AtomicUsize>) -> impl FnMut(&mut Io) + Send + 'static {
    let connections = connections.clone();
    move |_| {
        connections.fetch_add(1, Ordering::Relaxed);
    }
}

async fn reports(headers: HeaderMap) -> StatusCode {
    match headers.get("authorization") {
        Some(value) if value == format!("Bearer {TOKEN}").as_str() => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// A TCP listener that hands axum TLS connections.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let (tcp, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
            // One handshake at a time: enough for a demo; a server under load would handshake
            // in each connection's own task.
            match self.acceptor.accept(tcp).await {
                Ok(tls) => return (tls, addr),
                Err(error) => eprintln!("TLS handshake with {addr} failed: {error}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
