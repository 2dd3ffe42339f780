//! Sharing tokens between replicas (DESIGN.md §8): a fleet with one client id spends one token
//! request per token lifetime, not one per replica.
//!
//! A [`TokenStore`] holds opaque bytes under a key, with a time to live, and a lock; this crate
//! does the rest. When a replica needs a token (cold, stale or invalid), it reads the store
//! first and takes a fresh token another replica left there. Otherwise it tries the lock: the
//! winner asks the token endpoint and writes the token for the others, who wait for it: until it
//! appears, until the lock is released without one (the winner failed) or holds a value they
//! cannot open (a replica on another key), or for at most `request_timeout`; then they ask
//! themselves. The local cache stays in front: the hot path never touches the store.
//!
//! - **A rejected token leaves the store**: when the API answers `401` to a token, the next
//!   fetch deletes it from the store (compare and delete of that exact value, so a newer token
//!   another replica wrote stays) and never takes it again; the new request carries a new token.
//! - **Bounded**: a fetch through the store takes at most `2 × request_timeout + 2.5 s` (waiting
//!   for the replica that holds the lock, our own request, five store operations of at most
//!   500 ms), and no caller waits longer.
//!
//! - **Keys** name what identifies a token (token URL, client id, auth method, sorted scopes,
//!   audience, resources, parameters) as a SHA-256 digest; never the secret.
//! - **Encrypted at rest**: values are sealed with ChaCha20-Poly1305 under a key derived
//!   (HKDF-SHA256) from the client secret, or from a key you give
//!   ([`ConfigBuilder::store_encryption_key`](crate::ConfigBuilder::store_encryption_key)), and
//!   bound to their key name. A dump of the store, or a replica with another secret, reads
//!   nothing; a tampered value is a miss.
//! - **Expiry is wall-clock** (UNIX time) in the store, converted to the local clock on read;
//!   each replica still refreshes ahead with its own jitter.
//! - **A store that fails is a miss**: an error, a garbage value or an operation slower than
//!   500 ms makes the replica fetch on its own, with a warning at most once a minute; sharing
//!   resumes when the store answers again.

#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tower::BoxError;

/// What a [`TokenStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// Somewhere replicas can share a token: Redis ([`RedisStore`] with the `redis` feature), or
/// anything with expiring keys and an atomic set-if-absent.
///
/// Values are already encrypted; the store only keeps bytes. Every error is treated as a
/// miss, so an implementation reports failures and never panics.
pub trait TokenStore: fmt::Debug + Send + Sync + 'static {
    /// The value under `key`, if there is one.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Stores `value` under `key`, to expire after `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Takes the lock `key` for `ttl`, marked with `owner`, if nobody holds it (Redis:
    /// `SET key owner NX PX ttl`). Returns whether it was taken.
    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration)
        -> StoreFuture<'a, bool>;

    /// Deletes `key` if its value is exactly `value`, atomically (compare and delete): to
    /// release a lock that `value` still holds, and to take out a token the API rejected
    /// unless another replica replaced it already.
    fn remove_if_equal<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()>;
}
