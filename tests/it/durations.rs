//! Every duration setting, from zero to `Duration::MAX`, is either a `build()` error naming the
//! field or a layer that works (DESIGN.md §3): nothing panics, in `build()`, in a request, in
//! the token task, or in the store's protocol.

use crate::common;

use std::time::Duration;

use common::memory_store::MemoryStore;
use common::{api_client, get, ApiServer, Reply, TokenServer};
use proptest::prelude::*;
use tokio::time::advance;
use tower_client_credentials::{ClientCredentialsLayer, ConfigBuilder, TokenErrorKind};

/// Zero, the extremes, and everything between.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::MAX),
        (0..120_000u64).prop_map(Duration::from_millis),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

#[derive(Debug, Clone)]
struct Durations {
    refresh_ahead: Duration,
    expiry_margin: Duration,
    default_lifetime: Duration,
    max_lifetime: Duration,
    request_timeout: Duration,
    invalidation_interval: Duration,
    with_store: bool,
}

fn any_durations() -> impl Strategy<Value = Durations> {
    let six = [(); 6].map(|_| any_duration());
    (six, any::<bool>()).prop_map(|([a, b, c, d, e, f], with_store)| Durations {
        refresh_ahead: a,
        expiry_margin: b,
        default_lifetime: c,
        max_lifetime: d,
        request_timeout: e,
        invalidation_interval: f,
        with_store,
    })
}

fn configure(builder: ConfigBuilder, d: &Durations) -> ConfigBuilder {
    let builder = builder
        .refresh_ahead(d.refresh_ahead)
        .expiry_margin(d.expiry_margin)
        .default_lifetime(d.default_lifetime)
        .max_lifetime(d.max_lifetime)
        .request_timeout(d.request_timeout)
        .invalidation_interval(d.invalidation_interval);
    if d.with_store {
        builder.store(MemoryStore::default())
    } else {
        builder
    }
}

/// A whole life on paused time: cold start, a `401`, staleness, expiry, a year.
async fn live_through(d: Durations) {
    let tokens = TokenServer::start_with(|n| Reply::token(n, 100)).await;
    let api =
        ApiServer::start_rejecting(|auth| ["Bearer token-1", "Bearer token-2"].contains(&auth))
            .await;
    let config = match configure(tokens.config(), &d).build() {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.field().is_empty() && !error.reason().is_empty());
            return;
        }
    };
    let layer = ClientCredentialsLayer::new(config);
    let service = api_client(&layer);
    for step in [0, 1, 50, 85, 95, 3600, 365 * 24 * 3600] {
        advance(Duration::from_secs(step)).await;
        for _ in 0..2 {
            if let Err(error) = get(&service, &api.url).await {
                let error = error.downcast::<tower_client_credentials::TokenError>().unwrap();
                assert_ne!(error.kind(), TokenErrorKind::Panicked, "{d:?}: {error}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_duration_setting_panics_anywhere(d in any_durations()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(live_through(d));
    }
}
