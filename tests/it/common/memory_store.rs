//! A [`TokenStore`] of the user's kind, in memory: what replicas of one test process share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower_client_credentials::store::{StoreFuture, TokenStore};
use tower_client_credentials::BoxError;

/// Values and when they expire, by key.
type Entries = HashMap<String, (Vec<u8>, Instant)>;

/// Expiry on Tokio's clock (a time to live past the clock's range never expires). Clones share
/// the entries. A `failing` store fails every operation.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<Entries>>,
    failing: bool,
}

impl MemoryStore {
    /// A store that is down: every operation fails.
    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    fn live(&self, key: &str) -> Option<Vec<u8>> {
        let map = self.map.lock().unwrap();
        map.get(key).filter(|(_, until)| Instant::now() < *until).map(|(v, _)| v.clone())
    }

    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let far_future = || Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        let until = Instant::now().checked_add(ttl).unwrap_or_else(far_future);
        self.map.lock().unwrap().insert(key.to_owned(), (value, until));
    }

    fn check(&self) -> Result<(), BoxError> {
        if self.failing {
            return Err("the store is down".into());
        }
        Ok(())
    }
}

impl TokenStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.check().map(|()| self.live(key)) })
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.put(key, value, ttl);
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
            self.check()?;
            let free = self.live(key).is_none();
            if free {
                self.put(key, owner.as_bytes().to_vec(), ttl);
            }
            Ok(free)
        })
    }
    fn remove_if_equal<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            let mut map = self.map.lock().unwrap();
            if map.get(key).is_some_and(|(v, _)| v == value) {
                map.remove(key);
            }
            Ok(())
        })
    }
}
