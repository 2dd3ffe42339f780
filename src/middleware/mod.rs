//! The request side: what an outgoing request carries and what its answer teaches, decided
//! in one place ([`authorizer`]), and the front ends that translate those decisions:
//! [`ClientCredentialsLayer`] wraps a service in [`ClientCredentials`], whose
//! [`ResponseFuture`] waits for a token only when there is no usable one, and reports a `401`
//! to the cache; [`RetryUnauthorized`] resends such a request once; [`ServiceBuilderExt`] adds
//! `.client_credentials(config)` to `ServiceBuilder`; the reqwest middleware (feature
//! `reqwest-middleware`) does the same for reqwest.

mod authorizer;
mod builder_ext;
#[cfg(feature = "dpop")]
mod dpop;
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

/// What a `401` says of DPoP nonces (feature `dpop`): nothing (`None`: it may be a rejection of
/// the token), or that the resource server wants a nonce in the proof, which is no verdict on
/// the token; `Resend` when it gave one that can be used, `Unusable` when not.
#[cfg_attr(not(feature = "dpop"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonceDemand {
    None,
    Resend,
    Unusable,
}

/// What a response future keeps of the proof its request carried (feature `dpop`).
#[cfg(feature = "dpop")]
pub(crate) type Proved = Option<Box<dpop::Proved>>;
#[cfg(not(feature = "dpop"))]
pub(crate) type Proved = ();
