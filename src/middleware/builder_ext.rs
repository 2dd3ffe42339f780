//! [`ServiceBuilderExt`]: `ServiceBuilder::new().client_credentials(config)`.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder};
//! use tower_client_credentials::{Config, ServiceBuilderExt};
//!
//! let config = Config::builder("https://auth.example.com/oauth/token", "my-client", "s3cret")
//!     .scope("read")
//!     .build()?;
//! let service = ServiceBuilder::new()
//!     .client_credentials(config)
//!     .service(service_fn(|request: http::Request<String>| async move {
//!         // `request` carries `Authorization: Bearer <token>` here.
//!         Ok::<_, Infallible>(http::Response::new(String::new()))
//!     }));
//! # let _ = service;
//! # Ok::<(), tower_client_credentials::ConfigError>(())
//! ```
//!
//! The method makes a new [`ClientCredentialsLayer`], with a token cache of its own. To share
//! one cache (and so one token) between several clients, make the layer once and add clones of
//! it with [`ServiceBuilder::layer`].

use tower::ServiceBuilder;
use tower_layer::Stack;

use crate::config::Config;
use crate::middleware::layer::ClientCredentialsLayer;

mod sealed {
    /// Only [`tower::ServiceBuilder`] implements [`super::ServiceBuilderExt`], so methods can be
    /// added to it without breaking anyone.
    pub trait Sealed<L> {}
}

/// Adds [`client_credentials`](Self::client_credentials) to [`tower::ServiceBuilder`], as
/// tower-http's `ServiceBuilderExt` does for its middleware.
///
/// This trait is sealed: it is implemented for `ServiceBuilder` only.
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Adds a bearer token from the client credentials grant to every request, through a new
    /// [`ClientCredentialsLayer`] made from `config`.
    ///
    /// Layers added before this one wrap it: put it inside `timeout` (waiting for a token then
    /// counts against the request's time) and inside `retry` (each attempt then takes the
    /// current token).
    fn client_credentials(self, config: Config)
        -> ServiceBuilder<Stack<ClientCredentialsLayer, L>>;
}

impl<L> sealed::Sealed<L> for ServiceBuilder<L> {}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn client_credentials(
        self,
        config: Config,
    ) -> ServiceBuilder<Stack<ClientCredentialsLayer, L>> {
        self.layer(ClientCredentialsLayer::new(config))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::header::AUTHORIZATION;
    use tower::{service_fn, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn the_builder_method_wraps_the_service_like_the_layer() {
        let config =
            Config::builder("https://auth.example.com/token", "client", "secret").build().unwrap();
        // A request that already has `Authorization` passes through, so no token is fetched.
        let service = ServiceBuilder::new().client_credentials(config).service(service_fn(
            |request: http::Request<()>| async move {
                let seen = request.headers()[AUTHORIZATION].clone();
                Ok::<_, Infallible>(http::Response::new(seen))
            },
        ));
        let request = http::Request::builder().header(AUTHORIZATION, "Basic x").body(()).unwrap();
        assert_eq!(service.oneshot(request).await.unwrap().body(), "Basic x");
    }
}
