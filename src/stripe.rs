//! Per-core copies of a token's header, so that no two cores write the same cache line on the
//! fresh path.
//!
//! Cloning a `HeaderValue` writes a reference count. Were there one count for all threads,
//! every request on every core would write the same cache line and the cores would take turns
//! at it: two threads would send little more than one request for each one a single thread
//! sends (`BENCHMARKS.md`, contention). So a token holds one copy per thread that can run at
//! once, each with its count on cache lines of its own, and a thread always uses the same copy.
//! The token's bytes themselves are shared: reading a line from many cores costs nothing.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use bytes::Bytes;
use http::HeaderValue;

/// A token's header, one copy per thread that can run at once, made when the token arrives.
#[derive(Clone)]
pub(crate) struct Stripes(Box<[HeaderValue]>);

thread_local! {
    /// This thread's stripe, handed out in turn as threads first send a request. Every token
    /// has [`count`] stripes, so the division is done once here and not on every request.
    static THREAD_STRIPE: usize = NEXT_STRIPE.fetch_add(1, Relaxed) % count();
}
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

impl Stripes {
    pub(crate) fn new(header: &HeaderValue) -> Self {
        Self((0..count()).map(|_| own_count(header)).collect())
    }

    /// The current thread's copy.
    pub(crate) fn current(&self) -> &HeaderValue {
        &self.0[THREAD_STRIPE.with(|index| *index)]
    }
}

/// Twice the cores: threads are handed stripes in turn, so any this many threads that start
/// sending one after another never share one, the runtime's workers and the odd other thread
/// (the one in `block_on`, a blocking-pool thread) included.
fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get().min(64)))
}

/// `header` with a reference count of its own, alone on its cache lines, over the same bytes.
fn own_count(header: &HeaderValue) -> HeaderValue {
    /// Owns a clone of the header (whose count is written only here, and when the token goes).
    /// The alignment keeps the count that `Bytes` puts beside it off other data's lines; 128
    /// bytes, not 64, because some processors fetch cache lines in pairs.
    #[repr(align(128))]
    struct Owner(HeaderValue);

    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }

    let bytes = Bytes::from_owner(Owner(header.clone()));
    let mut copy = HeaderValue::from_maybe_shared(bytes).expect("the bytes of a valid header");
    copy.set_sensitive(header.is_sensitive());
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_is_the_token_s_sensitive_header_over_the_same_bytes() {
        let mut header = HeaderValue::from_static("Bearer abc");
        header.set_sensitive(true);
        let stripes = Stripes::new(&header);
        assert!(stripes.0.len() >= 2);
        for copy in stripes.0.iter() {
            assert_eq!(copy, header);
            assert!(copy.is_sensitive());
            assert_eq!(copy.as_bytes().as_ptr(), header.as_bytes().as_ptr());
        }
    }

    #[test]
    fn a_thread_keeps_its_copy() {
        let stripes = Stripes::new(&HeaderValue::from_static("Bearer abc"));
        assert!(std::ptr::eq(stripes.current(), stripes.current()));
    }
}
