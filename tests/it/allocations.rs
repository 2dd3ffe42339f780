//! A request that finds a fresh token allocates nothing in our code.
//!
//! A counting global allocator counts the allocations made on the test's thread in a window
//! around `poll_ready`, `call` and one poll of the response future: once through the bare
//! inner service, once through our layer around it. Allocation counts are deterministic, so
//! this is a test, not a benchmark.

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::TokenServer;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};
use tower_client_credentials::ClientCredentialsLayer;

/// Counts allocations on each thread, so that tests and runtime threads running meanwhile
/// do not disturb the count.
struct CountingAllocator;

thread_local! {
    // A `const` initialiser and no destructor: using it never allocates itself.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: the allocator may be called while this thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; counting touches only a thread-local integer.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: `ptr` and `layout` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// How many allocations `f` made on this thread.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

/// The inner service: allocates nothing, and hands the request back in the response so the
/// test can reuse it (building a request allocates, and is not ours to count).
#[derive(Clone, Copy, Debug)]
struct Echo;

impl Service<Request<()>> for Echo {
    type Response = Response<Request<()>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        ready(Ok(Response::new(request)))
    }
}

/// One request through `service` as a caller sends it, counting allocations: `poll_ready`,
/// `call`, and one poll of the response future, which is all a fresh token needs. Returns the
/// request as the inner service received it, and the count.
fn counted_round_trip<S>(service: &mut S, request: Request<()>) -> (Request<()>, u64)
where
    S: Service<Request<()>, Response = Response<Request<()>>>,
    S::Error: Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let (response, allocations) = allocations_in(|| {
        assert!(service.poll_ready(&mut cx).is_ready(), "the service is not ready");
        let mut future = pin!(service.call(request));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(response) => response.expect("a response"),
            Poll::Pending => panic!("a request with a fresh token waited"),
        }
    });
    (response.into_body(), allocations)
}

/// A GET with one header already set. The map allocated room for several headers for it, so
/// adding `Authorization` does not grow it: map growth is the request's cost, not ours.
fn api_request() -> Request<()> {
    Request::get("http://127.0.0.1/things")
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .body(())
        .unwrap()
}

#[test]
fn the_counting_allocator_counts() {
    let (_, allocations) = allocations_in(|| black_box(Box::new(1_u64)));
    assert_eq!(allocations, 1);
}

#[tokio::test]
async fn a_request_with_a_fresh_token_allocates_nothing_in_our_code() {
    let server = TokenServer::start().await; // hour-long tokens
    let layer = ClientCredentialsLayer::new(server.config().build().unwrap());
    let token = layer.token().await.unwrap();
    let mut bare = Echo;
    let mut ours = layer.layer(Echo);

    // Once per thread, not per request, arc-swap registers the thread for its lock-free reads
    // on its first load; a first request through our layer pays that outside the count.
    let (mut request, _) = counted_round_trip(&mut ours, api_request());
    request.headers_mut().remove(AUTHORIZATION);

    let (request, bare_allocations) = counted_round_trip(&mut bare, request);
    let (request, our_allocations) = counted_round_trip(&mut ours, request);

    assert_eq!(request.headers().get(AUTHORIZATION), Some(token.header_value()));
    assert_eq!(bare_allocations, 0, "the bare inner service allocates");
    assert_eq!(our_allocations, bare_allocations, "our layer allocates on the fresh path");
    assert_eq!(layer.stats().requests_waited, 1, "only the first token was waited for");
    assert_eq!(server.count(), 1);
}
