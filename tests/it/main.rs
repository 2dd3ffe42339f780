//! The integration tests: whole flows against real servers on loopback, one module per
//! behaviour, in one test binary (STYLE.md 17), so that they link once.
//!
//! ```text
//! cargo test --all-features                 # every test
//! cargo test --all-features --test it dpop  # the modules and tests whose path has `dpop`
//! ```
//!
//! A module that needs a feature is compiled only with it; `--all-features` runs them all.
//! `common` holds the loopback servers the modules share, `setup` installs what some of them
//! need beyond Rust (node-oidc-provider, Authlib, redis-server).

mod common;
mod setup;

mod allocations;
mod discovery;
mod error_chains;
mod errors;
mod eviction;
mod faults;
mod interop;
mod leak;
mod lifecycle;
mod many_tokens;
mod mtls;
mod origin_matching;
mod outage;
mod pass_through;
mod recovery;
mod route_paths;
mod security;
mod settings_from_file_and_env;
mod single_flight;
mod token_request;
mod tonic;
mod unauthorized;
mod unauthorized_storm;
mod untrusted_token_params;

#[cfg(feature = "dpop")]
mod dpop;
#[cfg(feature = "dpop")]
mod dpop_nonces;
#[cfg(feature = "store")]
mod durations;
#[cfg(all(feature = "reqwest-middleware", feature = "store", feature = "jwt"))]
mod grant_attacks;
#[cfg(all(feature = "reqwest-middleware", feature = "dpop", feature = "store", feature = "jwt"))]
mod grants;
#[cfg(feature = "jwt")]
mod jwt_bearer_interop;
#[cfg(feature = "jwt")]
mod key_rotation;
#[cfg(feature = "reqwest-middleware")]
mod long_urls;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "jwt")]
mod private_key_jwt;
#[cfg(feature = "reqwest-middleware")]
mod redirects;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "jwt")]
mod rejected_credential;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_resend;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_token_errors;
#[cfg(feature = "jwt")]
mod rotation;
#[cfg(all(feature = "reqwest-middleware", feature = "dpop", feature = "store", feature = "jwt"))]
mod seams;
#[cfg(feature = "jwt")]
mod token_exchange_interop;
