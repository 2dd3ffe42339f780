//! A fleet shares one token: replicas that use one client id share it through Redis, or a
//! store of yours (features `redis` and `store`). [DESIGN.md §8] states the protocol.
//!
//! **When**: many replicas of a service use one client id, and token requests cost money or
//! quota (Auth0 counts every machine-to-machine token issued), or a fleet that restarts
//! together would stampede the token endpoint. Each replica alone makes one token request per
//! refresh ([lifecycle](super::lifecycle#how-many-token-requests)); sharing through Redis,
//! the whole fleet makes one.
//!
//! ```toml
//! tower-client-credentials = { version = "0.1", features = ["redis"] }
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn run(token_url: &str, client_id: &str, client_secret: &str) -> Result<(), tower_client_credentials::BoxError> {
//! use tower_client_credentials::store::RedisStore;
//! use tower_client_credentials::Config;
//!
//! let config = Config::builder(token_url, client_id, client_secret)
//!     .store(RedisStore::new("redis://10.0.0.5:6379")?.prefix("orders-service:"))
//!     .build()?;
//! # let _ = config;
//! # Ok(()) }
//! ```
//!
//! **Measured**: `cargo run --example fleet --features redis` runs six replica processes for
//! three token lifetimes (2-second tokens, `refresh_ahead` 300 ms): **24** token requests each
//! on its own (4 per replica: the first and three refreshes), **4** sharing through Redis. In
//! `tests/redis.rs`, eight processes starting cold at once make exactly **1** token request.
//!
//! # How
//!
//! The local cache stays in front, so the hot path never touches Redis. A replica that needs a
//! token (cold, stale or invalid) reads Redis first and takes a fresh token it finds there.
//! Otherwise it takes a lock (`SET lock NX PX`, expiring after `request_timeout` + 1 s), looks
//! once more, fetches from the token endpoint, writes the token with a TTL of its remaining
//! lifetime and releases the lock only if it still holds it (compare-and-delete in a Lua
//! script). Replicas that find the lock taken poll Redis for the token, and fetch their own as
//! soon as the lock is gone without a token (the holder failed), the value is one they cannot
//! open (a replica on another secret), or `request_timeout` has passed. Expiry is stored as
//! UNIX time and converted to each replica's clock; each replica still refreshes ahead with its
//! own jitter. With a store, a request that waits for a token waits at most
//! `2 × request_timeout + 2.5 s` (the lock holder's request, then its own, and five store
//! operations of at most 500 ms).
//!
//! **A token the API rejected leaves Redis**: after a `401`, the next fetch deletes that token
//! from Redis (compare-and-delete of that exact value, so a newer token another replica wrote
//! stays) and never takes it again; the resend carries a new token.
//!
//! # Security
//!
//! Keys are `<prefix>token:<sha256>` and `<prefix>lock:<sha256>`, the digest over what
//! identifies the token (token URL, client id, auth method, sorted scopes, audience, resources,
//! parameters): never the secret. Values are encrypted and authenticated (ChaCha20-Poly1305)
//! with a key derived by HKDF-SHA256 from the client secret, or from your own 32-byte key
//! (`store_encryption_key`, required without a secret or with one that rotates), and bound to
//! their key name. A Redis dump, or a replica with another secret, reads nothing usable; a
//! tampered value is a miss. Any other Redis user can still delete keys or take the lock
//! (costing a token request), so give the prefix its own ACL.
//!
//! # When Redis fails
//!
//! Every store failure is a miss. Redis down, slow (500 ms per operation at most) or holding
//! garbage: the replica fetches its own token, logs a warning at most once a minute, and shares
//! again once Redis answers (the connection reconnects by itself). A replica that crashes
//! holding the lock delays the others by at most `request_timeout`.
//!
//! # A store of yours
//!
//! Memcached, a database: with the feature `store`, implement [`TokenStore`] (get, set with
//! TTL, try-lock and compare-and-delete, on opaque bytes) and give it to `store(..)`. It should
//! report errors and never panic; a panic becomes a `Panicked` error, backed off
//! ([failures](super::failures)).
//!
//! [DESIGN.md §8]: https://github.com/tower-client-credentials/tower-client-credentials/blob/main/DESIGN.md#8-beyond-one-process
//! [`TokenStore`]: crate::store::TokenStore
