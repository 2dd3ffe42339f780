//! Where the cache gets its tokens: the token endpoint, or, with a [`TokenStore`], the other
//! replicas first.
//!
//! [`TokenStore`]: crate::store::TokenStore

use http::HeaderValue;
use tokio::time::Instant;
use url::Url;

use crate::config::Config;
use crate::endpoint::TokenEndpoint;
use crate::error::TokenError;
use crate::response::TokenResponse;

/// A token response, and when its request was sent (on this replica's clock).
pub(crate) struct Received {
    pub(crate) response: TokenResponse,
    pub(crate) sent: Instant,
}

pub(crate) struct TokenSource {
    endpoint: TokenEndpoint,
    #[cfg(feature = "store")]
    shared: Option<crate::store::shared::SharedTokens>,
}

impl TokenSource {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            endpoint: TokenEndpoint::new(config),
            #[cfg(feature = "store")]
            shared: crate::store::shared::SharedTokens::new(config),
        }
    }

    pub(crate) fn url(&self) -> &Url {
        self.endpoint.url()
    }

    /// A new token, other than `current` (the one the cache holds now, if any).
    pub(crate) async fn fetch(
        &self,
        current: Option<&HeaderValue>,
    ) -> Result<Received, TokenError> {
        #[cfg(feature = "store")]
        if let Some(shared) = &self.shared {
            return shared.fetch(&self.endpoint, current).await;
        }
        let _ = current; // only a store can hand back the token we already hold
        let sent = Instant::now();
        self.endpoint.request().await.map(|response| Received { response, sent })
    }
}
