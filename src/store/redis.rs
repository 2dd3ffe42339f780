//! [`RedisStore`]: tokens shared through Redis.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::OnceCell;

use super::{StoreFuture, TokenStore};
use crate::error::ConfigError;

/// How long to wait for Redis to connect or answer; the store's callers wait no longer anyway.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Deletes a key only if it still holds the given value: a lock that expired and was taken by
/// another replica, or a token another replica replaced, is left alone.
const REMOVE_IF_EQUAL: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0"#;

/// A [`TokenStore`] in Redis, over one auto-reconnecting connection.
///
/// Keys are `<prefix>token:<digest>` and `<prefix>lock:<digest>`; the prefix defaults to
/// `tower-client-credentials:`. Connecting is lazy: a Redis that is down when the layer is made
/// (or later) is a cache miss, and sharing starts when it answers.
///
/// # Example
///
/// ```
/// use tower_client_credentials::store::RedisStore;
/// use tower_client_credentials::{ClientCredentialsLayer, Config};
///
/// let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
///     .store(RedisStore::new("redis://127.0.0.1:6379")?.prefix("orders-service:"))
///     .build()?;
/// let layer = ClientCredentialsLayer::new(config);
/// # Ok::<(), tower_client_credentials::ConfigError>(())
/// ```
pub struct RedisStore {
    client: Client,
    prefix: String,
    connection: OnceCell<ConnectionManager>,
    remove_if_equal: Script,
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://` for TLS).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the field `redis_url` if the URL is not one Redis understands.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        // The URL may hold a password: the error does not repeat it.
        let client = Client::open(url)
            .map_err(|_| ConfigError::new("redis_url", "not a valid redis:// or rediss:// URL"))?;
        Ok(Self {
            client,
            prefix: "tower-client-credentials:".to_owned(),
            connection: OnceCell::new(),
            remove_if_equal: Script::new(REMOVE_IF_EQUAL),
        })
    }

    /// Puts `prefix` before every key, to share one Redis between applications.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The connection, made on first use; if making it fails, the next call tries again.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let connect = || {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(self.client.clone(), config)
        };
        self.connection.get_or_try_init(connect).await.cloned()
    }
}

impl TokenStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            let value: Option<Vec<u8>> =
                redis::cmd("GET").arg(self.key(key)).query_async(&mut connection).await?;
            Ok(value)
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut connection)
                .await?;
            Ok(())
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            let taken: Option<String> = redis::cmd("SET")
                .arg(self.key(key))
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut connection)
                .await?;
            Ok(taken.is_some())
        })
    }

    fn remove_if_equal<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            let mut invocation = self.remove_if_equal.key(self.key(key));
            invocation.arg(value).invoke_async::<i64>(&mut connection).await?;
            Ok(())
        })
    }
}

/// `PX` in whole milliseconds: at least one, and no more than Redis takes.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).clamp(1, i64::MAX as u64 / 2)
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password; the address does not.
        f.debug_struct("RedisStore")
            .field("addr", &self.client.get_connection_info().addr().to_string())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
