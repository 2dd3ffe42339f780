//! Where the cache gets its tokens: the token endpoint, or, with a [`TokenStore`], the other
//! replicas first.
//!
//! [`TokenStore`]: crate::store::TokenStore

use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;
use url::Url;

use crate::cache::metrics::Metrics;
use crate::config::Config;
use crate::error::TokenError;
use crate::request::response::TokenResponse;
use crate::request::TokenEndpoint;

/// A token response, and when its request was sent (on this replica's clock).
pub(crate) struct Received {
    pub(crate) response: TokenResponse,
    pub(crate) sent: Instant,
}

/// A token with less than this left is at the end of its life.
const END_OF_LIFE: Duration = Duration::from_secs(1);

/// Tokens a fetch must not hand back, though a store may still hold them.
#[derive(Default)]
#[cfg_attr(not(feature = "store"), allow(dead_code))] // only a store can hand them back
pub(crate) struct Avoid {
    /// The token the cache holds: a refresh wants a newer one.
    pub(crate) current: Option<HeaderValue>,
    /// The token the API rejected: no replica may take it again.
    pub(crate) rejected: Option<HeaderValue>,
}

pub(crate) struct TokenSource {
    endpoint: TokenEndpoint,
    #[cfg(feature = "store")]
    shared: Option<crate::cache::shared::SharedTokens>,
    metrics: Metrics,
}

impl TokenSource {
    pub(crate) fn new(config: &Config) -> Self {
        let metrics = Metrics::new(config);
        Self {
            endpoint: TokenEndpoint::new(&config.endpoint, &config.requested),
            #[cfg(feature = "store")]
            shared: crate::cache::shared::SharedTokens::new(config, &metrics),
            metrics,
        }
    }

    /// Where the cache records its events (feature `metrics`; nothing without it).
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn url(&self) -> &Url {
        self.endpoint.url()
    }

    /// Whether the client's credential changed since the endpoint last rejected it.
    pub(crate) fn credential_changed(&self) -> bool {
        self.endpoint.credential_changed()
    }

    /// The token endpoint, for what outlives this source (the credential it rejected).
    pub(crate) fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The longest a [`fetch`](Self::fetch) takes: the request timeout, or with a store the
    /// bound of its protocol.
    pub(crate) fn time_bound(&self) -> Duration {
        #[cfg(feature = "store")]
        if let Some(shared) = &self.shared {
            return shared.time_bound();
        }
        self.endpoint.timeout()
    }

    /// A new token, none of those in `avoid`.
    ///
    /// A server that hands back its current token until it expires (WSO2 does) answers in the
    /// token's last second with an `expires_in` under a second (`0`, rounded down): then ask
    /// once more a second later, when that token has expired, so that the renewal reaches the
    /// callers waiting for this request rather than an error.
    pub(crate) async fn fetch(&self, avoid: &Avoid) -> Result<Received, TokenError> {
        let received = self.fetch_once(avoid).await?;
        match received.response.expires_in {
            Some(left) if left < END_OF_LIFE => {
                tokio::time::sleep(END_OF_LIFE).await;
                self.fetch_once(avoid).await
            }
            _ => Ok(received),
        }
    }

    async fn fetch_once(&self, avoid: &Avoid) -> Result<Received, TokenError> {
        #[cfg(feature = "store")]
        if let Some(shared) = &self.shared {
            return shared.fetch(&self.endpoint, avoid).await;
        }
        let _ = avoid; // only a store can hand back a token we have seen
        let sent = Instant::now();
        let response = self.metrics.token_request(self.endpoint.request()).await;
        response.map(|response| Received { response, sent })
    }
}
