//! Several tokens from one layer: routes by origin and path, `TokenParams` in a request's
//! extensions, one cache entry (and one token request) per distinct token, the bound on the
//! number of entries, and a `401` that drops only the token it answered. Against a token
//! endpoint on loopback that names each token after the audience or scope it was asked for,
//! and APIs on loopback that accept only tokens for themselves.

use crate::common;

use std::collections::BTreeMap;

use common::{api_client, get, get_with, ApiServer, HttpClient, Reply, TokenServer};
use http_body_util::Empty;
use hyper::body::Bytes;
use tower_client_credentials::{
    ClientCredentials, ClientCredentialsLayer, ConfigBuilder, TokenErrorKind, TokenParams,
};

/// A token endpoint whose `n`th token is `<audience or scope>-<n>`, valid for an hour.
async fn naming_token_server() -> TokenServer {
    TokenServer::start_judging(|n, received| {
        let what = received.param("audience").or(received.param("scope")).unwrap_or("default");
        let token = format!("{}-{n}", what.replace(' ', "+"));
        Reply::json(
            200,
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
        )
    })
    .await
}

/// An API that serves only tokens whose name starts with `audience-`.
async fn api_for(audience: &'static str) -> ApiServer {
    ApiServer::start_rejecting(move |auth| {
        !auth
            .strip_prefix("Bearer ")
            .is_some_and(|token| token.starts_with(&format!("{audience}-")))
    })
    .await
}

fn origin(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url.origin().ascii_serialization()
}

/// The tokens asked for, by audience (or scope), in order of the requests.
fn asked(tokens: &TokenServer) -> Vec<String> {
    let what = |r: &common::Received| {
        r.param("audience").or(r.param("scope")).unwrap_or("default").to_owned()
    };
    tokens.received().iter().map(what).collect()
}

/// A GET of `url` whose token is for `audience`; the `Authorization` the API echoed.
fn send_for(
    client: &ClientCredentials<HttpClient>,
    url: &str,
    audience: &'static str,
) -> impl std::future::Future<Output = String> {
    let mut request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(TokenParams::new().audience(audience));
    let client = client.clone();
    async move { get_with(&client, request).await.unwrap().1 }
}

fn with_routes(tokens: &TokenServer, orders: &ApiServer, billing: &ApiServer) -> ConfigBuilder {
    tokens
        .config()
        .audience("default")
        .route(origin(&orders.url), TokenParams::new().audience("orders"))
        .route(origin(&billing.url), TokenParams::new().audience("billing"))
}

#[tokio::test]
async fn one_layer_sends_each_origin_the_token_for_its_audience() {
    let tokens = naming_token_server().await;
    let orders = api_for("orders").await;
    let billing = api_for("billing").await;
    let layer =
        ClientCredentialsLayer::new(with_routes(&tokens, &orders, &billing).build().unwrap());
    let client = api_client(&layer);

    for _ in 0..3 {
        assert_eq!(get(&client, &orders.url).await.unwrap(), (200, "Bearer orders-1".into()));
        assert_eq!(get(&client, &billing.url).await.unwrap().0, 200);
    }
    assert_eq!(asked(&tokens), ["orders", "billing"], "one token request per audience");
    // The layer's own token, for code outside the stack, is the default audience's.
    assert_eq!(layer.token().await.unwrap().secret(), "default-3");
    let orders_stats = layer.stats_for(&TokenParams::new().audience("orders")).unwrap();
    assert_eq!((orders_stats.tokens_fetched, orders_stats.requests_waited), (1, 1));
}

#[tokio::test]
async fn the_longest_matching_path_wins_and_request_params_win_over_routes() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let api_origin = origin(&api.url);
    let config = tokens
        .config()
        .audience("default")
        .route(&api_origin, TokenParams::new().audience("site"))
        .route(format!("{api_origin}/things"), TokenParams::new().audience("things"))
        .build()
        .unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    let at = |path: &str| format!("{api_origin}{path}");
    assert_eq!(get(&client, &at("/things/7")).await.unwrap().1, "Bearer things-1");
    assert_eq!(get(&client, &at("/things")).await.unwrap().1, "Bearer things-1");
    assert_eq!(get(&client, &at("/things-archive")).await.unwrap().1, "Bearer site-2");
    assert_eq!(get(&client, &at("/")).await.unwrap().1, "Bearer site-2");

    let mut request = http::Request::get(at("/things/7")).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(TokenParams::new().audience("mine"));
    assert_eq!(get_with(&client, request).await.unwrap().1, "Bearer mine-3");
    assert_eq!(tokens.count(), 3);
}

#[tokio::test]
async fn a_thousand_cold_requests_over_three_token_sets_make_three_token_requests() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().scope("base").build().unwrap());
    let client = api_client(&layer);
    // The second set differs from the layer's only in scope order: the same token.
    let sets = [
        TokenParams::new().scope("read write"),
        TokenParams::new().scope("base"),
        TokenParams::new().audience("orders"),
    ];
    tokens.hold();
    let requests: Vec<_> = (0..1000)
        .map(|i| {
            let mut request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
            request.extensions_mut().insert(sets[i % 3].clone());
            let client = client.clone();
            tokio::spawn(async move { get_with(&client, request).await.unwrap() })
        })
        .collect();
    // Plus requests without parameters, which take the layer's own token.
    let plain: Vec<_> = (0..100)
        .map(|_| {
            let (client, url) = (client.clone(), api.url.clone());
            tokio::spawn(async move { get(&client, &url).await.unwrap() })
        })
        .collect();
    tokens.wait_for_count(3).await;
    tokens.release();
    let mut seen = BTreeMap::<String, usize>::new();
    for request in requests.into_iter().chain(plain) {
        let (status, auth) = request.await.unwrap();
        assert_eq!(status, 200);
        *seen.entry(auth).or_default() += 1;
    }
    assert_eq!(tokens.count(), 3, "{:?}", asked(&tokens));
    let mut asked = asked(&tokens);
    asked.sort();
    assert_eq!(asked, ["base", "orders", "read write"]);
    let counts: Vec<usize> = seen.values().copied().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(counts.iter().sum::<usize>(), 1100);
    assert!(seen.iter().any(|(auth, n)| auth.starts_with("Bearer base-") && *n == 333 + 100));
}

#[tokio::test]
async fn past_the_cap_the_least_recently_used_token_is_forgotten_and_fetched_again() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().max_cached_tokens(2).build().unwrap());
    let client = api_client(&layer);
    let send = |audience| send_for(&client, &api.url, audience);
    let a = TokenParams::new().audience("a");
    let b = TokenParams::new().audience("b");

    assert_eq!(send("a").await, "Bearer a-1");
    assert_eq!(send("b").await, "Bearer b-2");
    assert_eq!(send("a").await, "Bearer a-1", "a is the most recently used now");
    assert_eq!(send("c").await, "Bearer c-3", "b is forgotten to make room");
    assert!(layer.stats_for(&b).is_none());
    assert!(layer.stats_for(&a).is_some());
    assert_eq!(send("b").await, "Bearer b-4", "fetched again");
    assert_eq!(tokens.count(), 4);
    // The layer's own token does not count against the cap and is never forgotten.
    assert_eq!(layer.token().await.unwrap().secret(), "default-5");
    assert_eq!(send("c").await, "Bearer c-3");
    assert_eq!(layer.token().await.unwrap().secret(), "default-5");
}

#[tokio::test]
async fn a_401_drops_only_the_token_it_answered() {
    let tokens = naming_token_server().await;
    // The orders API revokes its first token; billing accepts its own.
    let orders = ApiServer::start_rejecting(|auth| auth != "Bearer orders-3").await;
    let billing = api_for("billing").await;
    let layer =
        ClientCredentialsLayer::new(with_routes(&tokens, &orders, &billing).build().unwrap());
    let client = api_client(&layer);

    assert_eq!(get(&client, &billing.url).await.unwrap(), (200, "Bearer billing-1".into()));
    assert_eq!(get(&client, &orders.url).await.unwrap().0, 401);
    assert_eq!(get(&client, &orders.url).await.unwrap(), (200, "Bearer orders-3".into()));
    assert_eq!(get(&client, &billing.url).await.unwrap(), (200, "Bearer billing-1".into()));
    assert_eq!(asked(&tokens), ["billing", "orders", "orders"]);
    let stats = |audience| layer.stats_for(&TokenParams::new().audience(audience)).unwrap();
    assert_eq!((stats("orders").invalidations, stats("billing").invalidations), (1, 0));
}

#[tokio::test]
async fn token_params_that_cannot_be_sent_fail_the_request_and_routes_fail_the_build() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let client = api_client(&ClientCredentialsLayer::new(tokens.config().build().unwrap()));

    let mut request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(TokenParams::new().param("client_secret", "x"));
    let error = get_with(&client, request).await.unwrap_err();
    let error = error.downcast_ref::<tower_client_credentials::TokenError>().unwrap();
    assert_eq!(error.kind(), TokenErrorKind::TokenParams);
    assert!(!error.is_transient());
    assert_eq!(api.seen(), [], "nothing was sent");
    assert_eq!(tokens.count(), 0);

    let field = |builder: ConfigBuilder| builder.build().unwrap_err().field().to_owned();
    let route = |prefix: &str, params| field(tokens.config().route(prefix, params));
    assert_eq!(route("/orders", TokenParams::new()), "route");
    assert_eq!(route("https://a.example?x=1", TokenParams::new()), "route");
    assert_eq!(route("https://a.example", TokenParams::new().scope("a\"b")), "route");
    assert_eq!(field(tokens.config().max_cached_tokens(0)), "max_cached_tokens");
    assert_eq!(route("https://user:pw@a.example", TokenParams::new()), "route");
    let outside = tokens
        .config()
        .allowed_origin("https://a.example")
        .route("https://b.example", TokenParams::new().audience("b"));
    assert_eq!(field(outside), "route", "a route that could never be taken");

    // A request that brings its own `Authorization` goes as it is, whatever its parameters.
    let mut request = http::Request::get(&api.url)
        .header("authorization", "Bearer mine")
        .body(Empty::<Bytes>::new())
        .unwrap();
    request.extensions_mut().insert(TokenParams::new().param("client_secret", "x"));
    assert_eq!(get_with(&client, request).await.unwrap(), (200, "Bearer mine".into()));
    assert_eq!(tokens.count(), 0);
}

#[tokio::test]
async fn a_token_that_requests_are_waiting_for_is_not_forgotten_and_routes_are_never() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let config = tokens
        .config()
        .max_cached_tokens(1)
        .route(origin(&api.url), TokenParams::new().audience("routed"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let client = api_client(&layer);
    let send = |audience| send_for(&client, &api.url, audience);

    assert_eq!(get(&client, &api.url).await.unwrap().1, "Bearer routed-1");
    // `a` waits for its token while `b` comes: the cap is 1, but `a` is in use.
    tokens.hold();
    let waiting = tokio::spawn(send("a"));
    tokens.wait_for_count(2).await;
    let b = tokio::spawn(send("b"));
    tokens.wait_for_count(3).await;
    tokens.release();
    assert_eq!(waiting.await.unwrap(), "Bearer a-2");
    assert_eq!(b.await.unwrap(), "Bearer b-3");
    // Both were kept: `a` is still there, with no new token request.
    assert_eq!(send("a").await, "Bearer a-2");
    // Once idle, the next new token brings the map back under the cap.
    assert_eq!(send("c").await, "Bearer c-4");
    assert!(layer.stats_for(&TokenParams::new().audience("a")).is_none());
    assert!(layer.stats_for(&TokenParams::new().audience("b")).is_none());
    // The route's token was never at risk.
    assert_eq!(get(&client, &api.url).await.unwrap().1, "Bearer routed-1");
    assert_eq!(tokens.count(), 4);
}
