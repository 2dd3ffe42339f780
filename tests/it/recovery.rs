//! The token cache never dies (DESIGN.md §2): a token request whose runtime shut down, or whose
//! runtime is no longer driven, is replaced; no caller waits past its bound; outside a runtime
//! the answer is an error, never a panic.
//!
//! These tests use several runtimes, so the servers run on a thread and runtime of their own
//! and time is real; the clock of a test's runtime is moved with [`jump`] where a token must
//! age.

use crate::common;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use common::{api_client, get, jump, ApiServer, Reply, TokenServer};
use futures_util::FutureExt;
use tokio::runtime::{Builder, Runtime};
use tower::{service_fn, Layer, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, TokenError, TokenErrorKind};

/// A token server and an API on a runtime that outlives every test's own.
struct Servers {
    tokens: TokenServer,
    api: ApiServer,
}

impl Servers {
    /// Tokens live 100 s: fresh until 78–80 s, usable until 90 s.
    fn start() -> Self {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let tokens = TokenServer::start_with(|n| Reply::token(n, 100)).await;
                let api = ApiServer::start().await;
                sender.send(Servers { tokens, api }).unwrap();
                std::future::pending::<()>().await
            })
        });
        receiver.recv().unwrap()
    }

    fn layer(&self) -> ClientCredentialsLayer {
        ClientCredentialsLayer::new(self.tokens.windowed_config().build().unwrap())
    }
}

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs `future` on a runtime of its own until `started` says the token server has it, then
/// drops that runtime: the token request it spawned is dropped with it.
fn start_then_drop_runtime<F: Future + Send + 'static>(servers: &Servers, future: F, started: usize)
where
    F::Output: Send,
{
    let doomed = runtime();
    doomed.block_on(async {
        tokio::spawn(future);
        servers.tokens.wait_for_count(started).await;
    });
    drop(doomed);
}

#[test]
fn a_static_layer_survives_the_runtime_that_started_its_token_request() {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    static LAYER: OnceLock<ClientCredentialsLayer> = OnceLock::new();
    let servers = SERVERS.get_or_init(Servers::start);
    let layer = LAYER.get_or_init(|| servers.layer());

    servers.tokens.hold();
    start_then_drop_runtime(servers, layer.token(), 1);
    servers.tokens.release();

    let token = runtime().block_on(layer.token()).expect("a new token request, not `Stopped`");
    assert_eq!(token.secret(), "token-2");
    assert_eq!(servers.tokens.count(), 2);
}

#[test]
fn a_background_refresh_lost_with_its_runtime_is_started_again() {
    let servers = Servers::start();
    let layer = servers.layer();
    let first = runtime();
    first.block_on(async {
        assert_eq!(layer.token().await.unwrap().secret(), "token-1");
    });
    servers.tokens.hold();
    let stale = layer.clone();
    drop(first);
    let doomed = runtime();
    doomed.block_on(async {
        jump(Duration::from_secs(81)).await;
        // Stale: served at once, with a refresh in the background that the server holds.
        assert_eq!(stale.token().await.unwrap().secret(), "token-1");
        servers.tokens.wait_for_count(2).await;
    });
    drop(doomed);
    servers.tokens.release();

    runtime().block_on(async {
        jump(Duration::from_secs(91)).await;
        // Past `usable_until`: the lost refresh is replaced, not joined.
        assert_eq!(layer.token().await.unwrap().secret(), "token-3");
    });
    assert_eq!(servers.tokens.count(), 3);
}

/// One layer in a `static`, used by several `#[tokio::test]`s: each test has its own runtime,
/// which ends with the test, whatever token request it started.
fn shared() -> &'static (Servers, ClientCredentialsLayer) {
    static SHARED: OnceLock<(Servers, ClientCredentialsLayer)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let servers = Servers::start();
        let layer = servers.layer();
        (servers, layer)
    })
}

async fn a_request_through_the_shared_layer() {
    let (servers, layer) = shared();
    let (status, auth) = get(&api_client(layer), &servers.api.url).await.unwrap();
    assert_eq!(status, 200);
    assert!(auth.starts_with("Bearer token-"), "{auth}");
}

#[tokio::test]
async fn a_static_layer_serves_one_tokio_test() {
    a_request_through_the_shared_layer().await;
}

#[tokio::test]
async fn a_static_layer_serves_another_tokio_test() {
    a_request_through_the_shared_layer().await;
}

#[test]
fn a_caller_waits_no_longer_than_request_timeout_for_a_runtime_nobody_drives() {
    let servers = Servers::start();
    let timeout = Duration::from_secs(1);
    let config = servers.tokens.windowed_config().request_timeout(timeout).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    servers.tokens.hold();
    // The token request is spawned on `idle`, which is then never driven again.
    let idle = runtime();
    let starter = layer.clone();
    idle.block_on(async {
        tokio::spawn(async move { starter.token().await });
        servers.tokens.wait_for_count(1).await;
    });

    let caller = Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    caller.block_on(async {
        let start = tokio::time::Instant::now();
        let bounded = tokio::time::timeout(Duration::from_secs(60), layer.token()).await;
        let error = bounded.expect("waited past its bound").unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::Timeout);
        assert!(start.elapsed() <= timeout, "waited {:?}", start.elapsed());

        // The next caller replaces the request stuck on `idle` with one of its own.
        tokio::time::resume();
        servers.tokens.release();
        assert_eq!(layer.token().await.unwrap().secret(), "token-2");
    });
    assert_eq!(servers.tokens.count(), 2);
    drop(idle);
}

#[test]
fn outside_a_runtime_a_token_is_an_error_and_the_layer_works_afterwards() {
    let servers = Servers::start();
    let layer = servers.layer();
    let error = layer.token().now_or_never().expect("answers at once").unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::NoRuntime);
    assert!(error.to_string().contains("Tokio runtime"), "{error}");

    // The same through a service: the response future says so, without panicking.
    let service = layer.layer(service_fn(|_: http::Request<()>| async {
        Ok::<_, BoxError>(http::Response::new(()))
    }));
    let response = service.oneshot(http::Request::new(())).now_or_never().unwrap();
    let error = response.unwrap_err().downcast::<TokenError>().unwrap();
    assert_eq!(error.kind(), TokenErrorKind::NoRuntime);

    assert_eq!(runtime().block_on(layer.token()).unwrap().secret(), "token-1");
    assert_eq!(servers.tokens.count(), 1);
}
