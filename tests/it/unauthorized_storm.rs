//! A 401 storm: an API that rejects every token it is sent, answering many requests at once,
//! costs one token request per `invalidation_interval` for its own route's token and nothing
//! for the others; `RetryUnauthorized` cannot multiply it.

use crate::common;

use std::time::Duration;

use common::named_tokens::{asked, naming_token_server};
use common::{api_client, get, jump, origin, ApiServer};
use http_body_util::Empty;
use hyper::body::Bytes;
use tower::ServiceExt;
use tower_client_credentials::{ClientCredentialsLayer, TokenParams};

/// An API that rejects every token it is sent: however many requests it answers at once, its
/// token is requested again once per `invalidation_interval`, and the other route's token is
/// not touched. With `RetryUnauthorized` each request is sent at most twice, and not at all
/// twice once the interval forbids a new token.
#[tokio::test]
async fn a_401_storm_on_one_token_costs_one_token_request_per_interval_and_spares_the_others() {
    use tower::retry::RetryLayer;
    use tower::Layer;
    use tower_client_credentials::RetryUnauthorized;

    let tokens = naming_token_server().await;
    let orders = ApiServer::start_rejecting(|_| true).await;
    let billing = ApiServer::start_rejecting(|auth| !auth.starts_with("Bearer billing-")).await;
    let config = tokens
        .config()
        .audience("default")
        .route(origin(&orders.url), TokenParams::new().audience("orders"))
        .route(origin(&billing.url), TokenParams::new().audience("billing"))
        .invalidation_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let client = api_client(&layer);
    assert_eq!(get(&client, &billing.url).await.unwrap(), (200, "Bearer billing-1".into()));

    let storm = |n: usize| {
        let orders_url = orders.url.clone();
        let all: Vec<_> = (0..n)
            .flat_map(|_| [orders.url.clone(), billing.url.clone()])
            .map(|url| {
                let client = client.clone();
                tokio::spawn(async move { (get(&client, &url).await.unwrap(), url) })
            })
            .collect();
        async move {
            for answer in all {
                let ((status, auth), url) = answer.await.unwrap();
                if url == orders_url {
                    assert_eq!(status, 401);
                } else {
                    assert_eq!((status, auth.as_str()), (200, "Bearer billing-1"));
                }
            }
        }
    };
    storm(100).await;
    storm(100).await;
    let count = |what: &str| asked(&tokens).iter().filter(|a| *a == what).count();
    assert_eq!((count("orders"), count("billing"), count("default")), (2, 1, 0));
    let stats = |audience| layer.stats_for(&TokenParams::new().audience(audience)).unwrap();
    assert_eq!((stats("orders").invalidations, stats("billing").invalidations), (1, 0));

    // Resending cannot multiply the storm: the interval has not passed, nothing is resent.
    let retrying = RetryLayer::new(RetryUnauthorized::new()).layer(client.clone());
    let before = orders.seen().len();
    for _ in 0..20 {
        let request = http::Request::get(&orders.url).body(Empty::<Bytes>::new()).unwrap();
        assert_eq!(retrying.clone().oneshot(request).await.unwrap().status(), 401);
    }
    assert_eq!(orders.seen().len() - before, 20, "no resend without a new token");
    assert_eq!(count("orders"), 2);

    // A minute later, one more token for orders, whatever the storm; billing keeps its own.
    jump(Duration::from_secs(61)).await;
    storm(50).await;
    storm(50).await;
    assert_eq!((count("orders"), count("billing"), count("default")), (3, 1, 0));
    assert_eq!((stats("orders").invalidations, stats("billing").invalidations), (2, 0));
}
