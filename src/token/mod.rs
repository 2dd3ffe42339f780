//! [`AccessToken`]: a token from the token endpoint, ready to send, and (in [`lifecycle`]) when
//! it is fresh, stale and no longer usable.

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

mod lifecycle;

pub(crate) use lifecycle::{later, Freshness, Lifecycle};

/// An access token from the token endpoint, ready to send.
///
/// `Debug` shows everything but the token itself. [`secret`](Self::secret) hands the token
/// out for code that must send it some other way.
#[derive(Clone)]
pub struct AccessToken {
    /// `Bearer <token>`, marked sensitive; built once, cloned onto every request.
    header: HeaderValue,
    token_type: String,
    scope: Option<String>,
    lifetime: Duration,
    expires_at: Instant,
}

impl AccessToken {
    pub(crate) fn new(
        header: HeaderValue,
        token_type: String,
        scope: Option<String>,
        lifetime: Duration,
        expires_at: Instant,
    ) -> Self {
        Self { header, token_type, scope, lifetime, expires_at }
    }

    /// The token itself, for code that sends it some other way than our layer. Keep it out of
    /// logs.
    pub fn secret(&self) -> &str {
        crate::request::response::token_in(&self.header)
    }

    /// The `Authorization` header value (`Bearer <token>`), marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// The token type as the server sent it (`"Bearer"` when it sent none).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The scopes the server granted, if it said (it may grant fewer than requested).
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The lifetime this token was given, after `default_lifetime` and `max_lifetime`.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the token expires, on Tokio's clock.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// How long until the token expires (zero once it has).
    pub fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}
