//! The Tower side: [`ClientCredentialsLayer`] wraps a service in [`ClientCredentials`], whose
//! [`ResponseFuture`] waits for a token only when there is no usable one, and reports a `401`
//! to the cache; [`RetryUnauthorized`] resends such a request once; [`ServiceBuilderExt`] adds
//! `.client_credentials(config)` to `ServiceBuilder`.

mod builder_ext;
mod future;
mod layer;
#[cfg(feature = "reqwest-middleware")]
mod reqwest;
mod retry;
mod service;

#[cfg(feature = "reqwest-middleware")]
pub use self::reqwest::ClientCredentialsMiddleware;
pub use builder_ext::ServiceBuilderExt;
pub use future::ResponseFuture;
pub use layer::ClientCredentialsLayer;
pub use retry::RetryUnauthorized;
pub use service::ClientCredentials;
