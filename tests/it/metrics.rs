//! What the cache records through the `metrics` facade (feature `metrics`), read back from
//! metrics-util's debugging recorder after known sequences against loopback servers: exact
//! counts, the labels of every series, and never a secret or a token in them.
//!
//! Each test installs its recorder for its own thread only (`set_default_local_recorder`): a
//! `#[tokio::test]` runtime runs the token task and the servers on that thread, so tests running
//! side by side do not see each other's metrics.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{api_client, get, ApiServer, Reply, TokenServer, CLIENT_ID, CLIENT_SECRET};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::CompositeKey;
use tower_client_credentials::ClientCredentialsLayer;

const TOKEN_REQUESTS: &str = "oauth.client.token_requests";
const TOKEN_REQUEST_DURATION: &str = "oauth.client.token_request.duration";
const TOKEN_WAITS: &str = "oauth.client.token_waits";
const TOKEN_WAIT_DURATION: &str = "oauth.client.token_wait.duration";
const STALE_SERVES: &str = "oauth.client.stale_serves";
const INVALIDATIONS: &str = "oauth.client.invalidations";
const TOKEN_EXPIRATION: &str = "oauth.client.token.expiration_timestamp";

/// One snapshot of the recorder (taking it resets the recorder's counters).
struct Recorded(Vec<(CompositeKey, Option<Unit>, DebugValue)>);

impl Recorded {
    fn take(snapshotter: &Snapshotter) -> Self {
        let all = snapshotter.snapshot().into_vec();
        Self(all.into_iter().map(|(key, unit, _, value)| (key, unit, value)).collect())
    }

    /// The values of the series named `name` that have all of `labels`.
    fn values<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a DebugValue> + 'a {
        self.0.iter().filter_map(move |(key, _, value)| {
            let key = key.key();
            let has =
                |(k, v): &(&str, &str)| key.labels().any(|l| l.key() == *k && l.value() == *v);
            (key.name() == name && labels.iter().all(has)).then_some(value)
        })
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counts = self.values(name, labels).map(|value| match value {
            DebugValue::Counter(count) => *count,
            other => panic!("{name} is not a counter: {other:?}"),
        });
        counts.sum()
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let samples = self.values(name, labels).flat_map(|value| match value {
            DebugValue::Histogram(samples) => samples.iter().map(|s| s.0).collect::<Vec<_>>(),
            other => panic!("{name} is not a histogram: {other:?}"),
        });
        samples.collect()
    }

    fn gauge(&self, name: &str) -> f64 {
        match self.values(name, &[]).collect::<Vec<_>>()[..] {
            [DebugValue::Gauge(value)] => value.0,
            ref other => panic!("{name}: {other:?}"),
        }
    }

    fn series(&self, name: &str) -> usize {
        self.values(name, &[]).count()
    }

    fn unit(&self, name: &str) -> Option<Unit> {
        self.0.iter().find(|(key, _, _)| key.key().name() == name).and_then(|(_, unit, _)| *unit)
    }

    /// Every series has the layer's three labels, and no label holds a secret or a token.
    fn assert_labels(&self, token_label: &str) {
        assert!(!self.0.is_empty());
        for (key, _, _) in &self.0 {
            let key = key.key();
            let label = |name: &str| key.labels().find(|l| l.key() == name).map(|l| l.value());
            assert_eq!(label("client_id"), Some(CLIENT_ID), "{key:?}");
            assert_eq!(label("server.address"), Some("127.0.0.1"), "{key:?}");
            assert_eq!(label("token"), Some(token_label), "{key:?}");
            for l in key.labels() {
                assert!(!l.value().contains(CLIENT_SECRET), "{key:?}");
                assert!(!l.value().contains("token-"), "an access token in {key:?}");
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Lets the token task finish (paused time: each sleep advances the clock).
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not done after 10 s");
}

#[tokio::test(start_paused = true)]
async fn one_ok_one_rejected_and_one_stale_serve_are_recorded_once_each() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    // token-1 for 100 s (50 ms to answer), then `invalid_client`.
    let tokens = TokenServer::start_with(|n| match n {
        1 => Reply { delay: Duration::from_millis(50), ..Reply::token(1, 100) },
        _ => Reply::json(400, r#"{"error":"invalid_client"}"#),
    })
    .await;
    let api = ApiServer::start().await;
    let config = tokens.windowed_config().scope("orders:read").metrics_label("orders");
    let layer = ClientCredentialsLayer::new(config.build().unwrap());
    let service = api_client(&layer);

    // A cold cache: the request waits for token-1 (1 ok).
    let before = unix_now();
    assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-1".into()));
    let after = unix_now();
    // Stale (fresh until 78–80 s, usable until 90 s): sent with token-1 (1 stale serve), and
    // the background refresh is refused (1 rejected).
    tokio::time::advance(Duration::from_secs(85)).await;
    assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-1".into()));
    until(|| layer.stats().token_request_failures == 1).await;

    let recorded = Recorded::take(&snapshotter);
    let ok = [("outcome", "ok"), ("status_class", "2xx")];
    let rejected = [("outcome", "rejected"), ("status_class", "4xx")];
    assert_eq!(recorded.counter(TOKEN_REQUESTS, &ok), 1);
    assert_eq!(recorded.counter(TOKEN_REQUESTS, &rejected), 1);
    assert_eq!(recorded.series(TOKEN_REQUESTS), 2, "no other outcome");
    let ok_durations = recorded.histogram(TOKEN_REQUEST_DURATION, &ok);
    assert_eq!(ok_durations.len(), 1);
    assert!(ok_durations[0] >= 0.05, "the endpoint took 50 ms: {ok_durations:?}");
    assert_eq!(recorded.histogram(TOKEN_REQUEST_DURATION, &rejected).len(), 1);
    assert_eq!(recorded.unit(TOKEN_REQUEST_DURATION), Some(Unit::Seconds));

    assert_eq!(recorded.counter(STALE_SERVES, &[]), 1);
    assert_eq!(recorded.counter(TOKEN_WAITS, &[]), 1, "only the cold request waited");
    let waits = recorded.histogram(TOKEN_WAIT_DURATION, &[]);
    assert_eq!(waits.len(), 1);
    assert!(waits[0] >= 0.05, "it waited for the 50 ms answer: {waits:?}");
    assert_eq!(recorded.series(INVALIDATIONS), 0);

    // token-1 expires 100 s after it was asked for (the wall clock stood still meanwhile).
    let expiry = recorded.gauge(TOKEN_EXPIRATION);
    assert!(before + 99.0 <= expiry && expiry <= after + 101.0, "{before} {expiry} {after}");
    assert_eq!(recorded.unit(TOKEN_EXPIRATION), Some(Unit::Seconds));
    recorded.assert_labels("orders");

    // The same events as the layer's own snapshot.
    let stats = layer.stats();
    assert_eq!((stats.tokens_fetched, stats.token_request_failures), (1, 1));
    assert_eq!((stats.stale_serves, stats.requests_waited), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_401_is_an_invalidation_and_the_new_token_moves_the_expiry() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let tokens = TokenServer::start().await; // token-n for an hour
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let layer = ClientCredentialsLayer::new(tokens.config().scope("orders:read").build().unwrap());
    let service = api_client(&layer);

    assert_eq!(get(&service, &api.url).await.unwrap().0, 401);
    let recorded = Recorded::take(&snapshotter);
    assert_eq!(recorded.counter(INVALIDATIONS, &[]), 1);
    let dropped_at = recorded.gauge(TOKEN_EXPIRATION);
    assert!((dropped_at - unix_now()).abs() < 2.0, "expired when dropped: {dropped_at}");
    recorded.assert_labels("orders:read"); // the default label: the scopes

    assert_eq!(get(&service, &api.url).await.unwrap(), (200, "Bearer token-2".into()));
    let recorded = Recorded::take(&snapshotter);
    let expiry = recorded.gauge(TOKEN_EXPIRATION);
    assert!((expiry - unix_now() - 3600.0).abs() < 2.0, "token-2 has an hour: {expiry}");
    assert_eq!(recorded.counter(TOKEN_REQUESTS, &[("outcome", "ok")]), 1);
    assert_eq!(recorded.counter(TOKEN_WAITS, &[]), 1);
    assert_eq!(recorded.counter(INVALIDATIONS, &[]), 0, "no other 401");
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_does_not_answer_is_transient_without_a_status() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let url = common::raw_token_server(b"").await; // reads the request, closes the connection
    let config = tower_client_credentials::Config::builder(url, CLIENT_ID, CLIENT_SECRET);
    let layer = ClientCredentialsLayer::new(config.metrics_label("orders").build().unwrap());
    assert!(layer.warm_up().await.is_err());

    let recorded = Recorded::take(&snapshotter);
    let transient = [("outcome", "transient"), ("status_class", "none")];
    assert_eq!(recorded.counter(TOKEN_REQUESTS, &transient), 1);
    assert_eq!(recorded.series(TOKEN_REQUESTS), 1);
    assert_eq!(recorded.counter(TOKEN_WAITS, &[]), 0, "warm_up is no caller that waited");
    assert_eq!(recorded.series(TOKEN_EXPIRATION), 0, "no token, no expiry");
    recorded.assert_labels("orders");
}

#[cfg(feature = "store")]
mod store {
    use super::*;
    use crate::common::memory_store::MemoryStore;

    const STORE_HITS: &str = "oauth.client.store.hits";
    const STORE_MISSES: &str = "oauth.client.store.misses";
    const STORE_FAILURES: &str = "oauth.client.store.failures";

    #[tokio::test(start_paused = true)]
    async fn a_shared_token_is_a_miss_for_the_replica_that_asks_and_a_hit_for_the_other() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);

        let tokens = TokenServer::start().await;
        let store = MemoryStore::default();
        let replica = || {
            let config = tokens.config().metrics_label("orders").store(store.clone());
            ClientCredentialsLayer::new(config.build().unwrap())
        };
        let (first, second) = (replica(), replica());
        assert_eq!(first.token().await.unwrap().secret(), "token-1");
        assert_eq!(second.token().await.unwrap().secret(), "token-1");
        assert_eq!(tokens.count(), 1);

        let recorded = Recorded::take(&snapshotter);
        assert_eq!(recorded.counter(STORE_MISSES, &[]), 1);
        assert_eq!(recorded.counter(STORE_HITS, &[]), 1);
        assert_eq!(recorded.series(STORE_FAILURES), 0);
        assert_eq!(recorded.counter(TOKEN_REQUESTS, &[("outcome", "ok")]), 1, "the miss only");
        recorded.assert_labels("orders");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_counts_each_failed_operation_and_the_replica_asks_itself() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);

        let tokens = TokenServer::start().await;
        let store = MemoryStore::failing();
        let config = tokens.config().metrics_label("orders").store(store);
        let layer = ClientCredentialsLayer::new(config.build().unwrap());
        assert_eq!(layer.token().await.unwrap().secret(), "token-1");

        let recorded = Recorded::take(&snapshotter);
        for operation in ["read", "lock", "write"] {
            let labels = [("operation", operation), ("error.type", "error")];
            assert_eq!(recorded.counter(STORE_FAILURES, &labels), 1, "{operation}");
        }
        assert_eq!(recorded.series(STORE_FAILURES), 3);
        assert_eq!(recorded.counter(STORE_MISSES, &[]), 1);
        assert_eq!(recorded.series(STORE_HITS), 0);
        assert_eq!(recorded.counter(TOKEN_REQUESTS, &[("outcome", "ok")]), 1);
        recorded.assert_labels("orders");
    }
}
