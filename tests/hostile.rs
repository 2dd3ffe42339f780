//! Several tokens, reqwest-middleware and DPoP nonces, attacked as a hostile network and a
//! careless user would: thousands of `TokenParams` from request data against a small cap,
//! megabyte values, routes spelled every way (IPv6 included), 401 storms, URLs reqwest cannot
//! send, endless bodies, a token endpoint that is down, a nonce on every answer and nonces
//! that cannot be used, `Duration::MAX` with DPoP. Real servers on loopback; no real seconds
//! slept (time moves with `common::jump`), every loop bounded.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response};
use axum::routing::any;
use axum::Router;
use common::{api_client, get, get_with, jump, ApiServer, HttpClient, Reply, TokenServer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, TokenParams};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A token endpoint whose `n`th token is `<audience or scope>-<n>` (`big-<n>` for a long one),
/// valid for an hour.
async fn naming_token_server() -> TokenServer {
    TokenServer::start_judging(|n, received| {
        let what = received.param("audience").or(received.param("scope")).unwrap_or("default");
        let what = if what.len() > 64 { "big" } else { what };
        let token = format!("{}-{n}", what.replace(' ', "+"));
        Reply::json(
            200,
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
        )
    })
    .await
}

/// What each token request asked for (audience, else scope, else `default`), in order.
fn asked(tokens: &TokenServer) -> Vec<String> {
    let what = |r: &common::Received| {
        r.param("audience").or(r.param("scope")).unwrap_or("default").to_owned()
    };
    tokens.received().iter().map(what).collect()
}

fn origin(url: &str) -> String {
    url::Url::parse(url).unwrap().origin().ascii_serialization()
}

fn request_with(url: &str, params: TokenParams) -> http::Request<Empty<Bytes>> {
    let mut request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(params);
    request
}

async fn serve_on(addr: &str, router: Router) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// An API that answers 200 with the `Authorization` it got, on `addr`; records each.
async fn echo_api(addr: &str) -> (SocketAddr, Seen) {
    async fn echo(State(seen): State<Seen>, headers: HeaderMap) -> Response<Body> {
        let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        seen.lock().unwrap().push(auth.clone());
        Response::new(Body::from(auth.unwrap_or_default()))
    }
    let seen = Seen::default();
    let addr = serve_on(addr, Router::new().fallback(any(echo)).with_state(seen.clone())).await;
    (addr, seen)
}

/// hyper's client behind a step that sends every request to `to` (as plain http), whatever
/// host, scheme and port its URI names: the layer sees the URI the caller wrote, the loopback
/// API gets the request.
fn redirected(
    layer: &ClientCredentialsLayer,
    to: SocketAddr,
) -> impl Service<
    http::Request<Empty<Bytes>>,
    Response = http::Response<hyper::body::Incoming>,
    Error = BoxError,
> + Clone {
    use tower::Layer;
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let rewrite = tower::util::MapRequestLayer::new(move |mut request: http::Request<_>| {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        *request.uri_mut() = format!("http://{to}{path}").parse().unwrap();
        request
    });
    layer.layer(rewrite.layer(client))
}

async fn send_via<S>(service: &S, request: http::Request<Empty<Bytes>>) -> (u16, String)
where
    S: Service<
            http::Request<Empty<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = BoxError,
        > + Clone,
{
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// 1. Several tokens from one layer
// ---------------------------------------------------------------------------------------------

/// Token parameters taken from request data (a tenant per user, say): thousands of distinct
/// ones through a layer capped at 4 make one token request each, and once a token is idle and
/// newer ones came, it is gone: memory holds the cap, not the history.
#[tokio::test]
async fn thousands_of_distinct_token_params_keep_at_most_max_cached_tokens() {
    const N: usize = 2000;
    const CAP: usize = 4;
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let config = tokens.config().audience("default").max_cached_tokens(CAP).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let client = api_client(&layer);
    let params = |i: usize| TokenParams::new().audience(format!("user-{i}"));

    // At most CAP at a time, so that the map never needs to hold more than the cap.
    for batch in (0..N).collect::<Vec<_>>().chunks(CAP) {
        let sent: Vec<_> = batch
            .iter()
            .map(|&i| {
                let (client, request) = (client.clone(), request_with(&api.url, params(i)));
                (i, tokio::spawn(async move { get_with(&client, request).await.unwrap() }))
            })
            .collect();
        for (i, answer) in sent {
            let (status, auth) = answer.await.unwrap();
            assert_eq!(status, 200);
            assert!(auth.starts_with(&format!("Bearer user-{i}-")), "{i}: {auth}");
        }
    }
    assert_eq!(tokens.count(), N, "one token request per distinct set");
    let kept: Vec<usize> = (0..N).filter(|&i| layer.stats_for(&params(i)).is_some()).collect();
    assert_eq!(kept, (N - CAP..N).collect::<Vec<_>>(), "only the latest CAP are kept");
    assert_eq!(layer.stats().tokens_fetched, 0, "the layer's own token was never needed");
}

/// Hundreds of distinct sets at once while the token endpoint holds its answers: each set
/// makes exactly one token request however many requests need it (none is forgotten while
/// requests wait for it, the cap notwithstanding), and once they are done the next new set
/// brings the map back under the cap.
#[tokio::test]
async fn concurrent_distinct_params_while_the_token_endpoint_is_held() {
    const N: usize = 300;
    const CAP: usize = 2;
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer =
        ClientCredentialsLayer::new(tokens.config().max_cached_tokens(CAP).build().unwrap());
    let client = api_client(&layer);
    let params = |i: usize| TokenParams::new().audience(format!("tenant-{i}"));

    tokens.hold();
    let sent: Vec<_> = (0..2 * N)
        .map(|k| {
            let i = k % N; // two requests for each set
            let (client, request) = (client.clone(), request_with(&api.url, params(i)));
            (i, tokio::spawn(async move { get_with(&client, request).await.unwrap() }))
        })
        .collect();
    tokens.wait_for_count(N).await;
    tokens.release();
    let mut token_of = vec![None; N];
    for (i, answer) in sent {
        let (status, auth) = answer.await.unwrap();
        assert_eq!(status, 200);
        assert!(auth.starts_with(&format!("Bearer tenant-{i}-")), "{i}: {auth}");
        let first = token_of[i].get_or_insert_with(|| auth.clone());
        assert_eq!(*first, auth, "both requests for set {i} share one token");
    }
    assert_eq!(tokens.count(), N, "{:?}", &asked(&tokens)[..10]);

    // All idle now; one new set makes room for itself.
    let (status, auth) = get_with(&client, request_with(&api.url, params(N))).await.unwrap();
    assert_eq!((status, auth), (200, format!("Bearer tenant-{N}-{}", N + 1)));
    let kept = (0..N).filter(|&i| layer.stats_for(&params(i)).is_some()).count();
    assert!(kept < CAP, "{kept} idle old tokens kept with a cap of {CAP}");
    assert!(layer.stats_for(&params(N)).is_some());
}

/// A megabyte of scope, or of audience, from a careless caller: sent whole, one token request,
/// and the token is reused.
#[tokio::test]
async fn a_megabyte_scope_or_audience_makes_one_token_request_and_is_reused() {
    let tokens = naming_token_server().await;
    let api = ApiServer::start().await;
    let layer = ClientCredentialsLayer::new(tokens.config().scope("base").build().unwrap());
    let client = api_client(&layer);

    let scope = "s".repeat(1 << 20);
    let audience = "a".repeat(1 << 20);
    let by_scope = TokenParams::new().scope(&scope);
    let by_audience = TokenParams::new().audience(&audience);
    for _ in 0..3 {
        let answer = get_with(&client, request_with(&api.url, by_scope.clone())).await.unwrap();
        assert_eq!(answer, (200, "Bearer big-1".into()));
    }
    for _ in 0..3 {
        let request = request_with(&api.url, by_audience.clone());
        assert_eq!(get_with(&client, request).await.unwrap(), (200, "Bearer big-2".into()));
    }
    // 100,000 scopes, given in reverse order: the same token as in order.
    let many: Vec<String> = (0..100_000).map(|i| format!("scope-{i}")).collect();
    let forward = TokenParams::new().scope(many.join(" "));
    let reversed: Vec<&str> = many.iter().rev().map(String::as_str).collect();
    let reverse = TokenParams::new().scope(reversed.join(" "));
    assert_eq!(get_with(&client, request_with(&api.url, forward)).await.unwrap().0, 200);
    assert_eq!(
        get_with(&client, request_with(&api.url, reverse.clone())).await.unwrap(),
        (200, "Bearer big-3".into())
    );

    assert_eq!(tokens.count(), 3);
    let received = tokens.received();
    assert_eq!(received[0].param("scope"), Some(scope.as_str()));
    assert_eq!(received[1].param("audience"), Some(audience.as_str()));
    assert_eq!(received[1].param("scope"), Some("base"), "the layer's scope stays");
    assert_eq!(received[2].param("scope").unwrap().split(' ').count(), 100_000);
    assert_eq!(layer.stats_for(&by_scope).unwrap().tokens_fetched, 1);
    assert_eq!(layer.stats_for(&reverse).unwrap().tokens_fetched, 1);
}

/// Routes written carelessly: an upper-case host, the default port spelled out, a trailing
/// slash, an upper-case scheme. Hosts and schemes match whatever their case, ports by their
/// effective value, paths exactly and a whole segment at a time.
#[tokio::test]
async fn routes_match_hosts_in_any_case_explicit_default_ports_and_trailing_slashes() {
    let tokens = naming_token_server().await;
    let (api, _) = echo_api("127.0.0.1:0").await;
    let config = tokens
        .config()
        .audience("default")
        .route("https://API.Example.COM:443/Orders/", TokenParams::new().audience("orders"))
        .route("HTTPS://api.example.com/", TokenParams::new().audience("site"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let service = redirected(&layer, api);
    let token_for = |uri: &'static str| {
        let service = service.clone();
        async move {
            let (status, auth) =
                send_via(&service, http::Request::get(uri).body(Empty::new()).unwrap()).await;
            assert_eq!(status, 200, "{uri}");
            auth.trim_start_matches("Bearer ").split('-').next().unwrap().to_owned()
        }
    };

    for (uri, audience) in [
        ("https://api.example.com/Orders/7", "orders"),
        ("https://API.EXAMPLE.COM/Orders", "orders"),
        ("https://api.example.com:443/Orders/", "orders"),
        ("HTTPS://Api.Example.Com/Orders/7?x=1", "orders"),
        ("https://api.example.com/Orders-archive", "site"),
        ("https://api.example.com/orders/7", "site"),
        ("https://api.example.com", "site"),
        ("https://api.example.com:443/", "site"),
        ("https://api.example.com:8443/Orders/7", "default"),
        ("http://api.example.com/Orders/7", "default"),
        ("https://api.example.com.evil.example/Orders/7", "default"),
    ] {
        assert_eq!(token_for(uri).await, audience, "{uri}");
    }
    let mut asked = asked(&tokens);
    asked.sort();
    assert_eq!(asked, ["default", "orders", "site"], "one token request per token");
}

/// An IPv6 route, against a real API on [::1]: the route takes the requests for its origin,
/// however the request spells the address.
#[tokio::test]
async fn an_ipv6_route_takes_every_spelling_of_its_address() {
    let tokens = naming_token_server().await;
    let (api, seen) = echo_api("[::1]:0").await;
    let port = api.port();
    let config = tokens
        .config()
        .audience("default")
        .route(format!("http://[::1]:{port}"), TokenParams::new().audience("v6"))
        .build()
        .unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    assert_eq!(get(&client, &format!("http://[::1]:{port}/x")).await.unwrap().1, "Bearer v6-1");
    assert_eq!(get(&client, &format!("http://[::1]:{port}")).await.unwrap().1, "Bearer v6-1");
    let long = format!("http://[0:0:0:0:0:0:0:1]:{port}/x");
    let answer = get(&client, &long).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3, "all three reached the API on [::1]");
    assert_eq!(answer.1, "Bearer v6-1", "the same origin, the route's token");
    assert_eq!(asked(&tokens), ["v6"]);
}

/// A careless user gives the same IPv6 origin, in a non-canonical spelling, to
/// `allowed_origin` and to `route`: the layer must build, and the route's token go there.
#[tokio::test]
async fn the_same_ipv6_origin_given_to_allowed_origin_and_route_builds_and_is_served() {
    let tokens = naming_token_server().await;
    let (api, _) = echo_api("[::1]:0").await;
    let listed = format!("http://[0:0:0:0:0:0:0:1]:{}", api.port());
    let config = tokens
        .config()
        .allowed_origin(&listed)
        .route(&listed, TokenParams::new().audience("v6"))
        .build()
        .expect("the route's origin is the allowed origin, written the same way");
    let client = api_client(&ClientCredentialsLayer::new(config));
    let answer = get(&client, &format!("{listed}/x")).await.unwrap();
    assert_eq!(answer, (200, "Bearer v6-1".into()));
}

/// A request to the allowed origin as `allowed_origin` was written must get the token, even
/// when the host is not in canonical form (the origin check alone, no route).
#[tokio::test]
async fn a_request_spelled_as_its_allowed_origin_gets_the_token() {
    let tokens = TokenServer::start().await;
    let (api, _) = echo_api("[::1]:0").await;
    let listed = format!("http://[0:0:0:0:0:0:0:1]:{}", api.port());
    let config = tokens.config().allowed_origin(&listed).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));
    assert_eq!(get(&client, &format!("{listed}/x")).await.unwrap(), (200, "Bearer token-1".into()));
}

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

// ---------------------------------------------------------------------------------------------
// 2. reqwest-middleware
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "reqwest-middleware")]
mod reqwest_attacks {
    use axum::http::StatusCode;

    use super::*;
    use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
    use tower_client_credentials::{TokenError, TokenErrorKind};

    pub(super) fn reqwest_client(layer: &ClientCredentialsLayer) -> ClientWithMiddleware {
        ClientBuilder::new(reqwest::Client::new()).with(layer.reqwest_middleware()).build()
    }

    fn token_error(error: &reqwest_middleware::Error) -> &TokenError {
        match error {
            reqwest_middleware::Error::Middleware(error) => {
                error.downcast_ref::<TokenError>().expect("a TokenError")
            }
            reqwest_middleware::Error::Reqwest(error) => panic!("not a token error: {error:?}"),
        }
    }

    /// A raw API on loopback that reads a request's head however long it is (no HTTP server's
    /// URI limit), records its `Authorization`, and answers 200.
    async fn raw_api() -> (String, Seen) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0; 65536];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 1 << 22 {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let auth = head.lines().find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
                    });
                    let body = auth.clone().unwrap_or_default();
                    record.lock().unwrap().push(auth);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    /// A URL over 64 KiB: more than `http::Uri` holds. Whatever reqwest then does, the request
    /// goes with the token of its route or not at all; never with the wrong token, and no token
    /// is fetched for a request that cannot be sent.
    #[tokio::test]
    async fn a_url_over_64_kib_never_carries_another_routes_token() {
        let tokens = naming_token_server().await;
        let (api, seen) = raw_api().await;
        let config = tokens
            .config()
            .audience("default")
            .route(&api, TokenParams::new().audience("routed"))
            .build()
            .unwrap();
        let layer = ClientCredentialsLayer::new(config);
        let client = reqwest_client(&layer);
        // The route works for a short URL.
        let short = client.get(format!("{api}/things")).send().await.unwrap();
        assert_eq!(short.text().await.unwrap(), "Bearer routed-1");

        let long = format!("{api}/things?q={}", "a".repeat(70 * 1024));
        let answer = client.get(&long).send().await;
        let seen = seen.lock().unwrap().clone();
        match answer {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                assert_eq!(seen.len(), 2);
                assert_eq!(seen[1].as_deref(), Some("Bearer routed-1"), "the route's token");
            }
            Err(error) => assert_eq!(seen.len(), 1, "not sent: {error}"),
        }
        assert_eq!(asked(&tokens), ["routed"], "no token for another audience");
    }

    /// The same, with an allow-list: the long URL is for an allowed origin.
    #[tokio::test]
    async fn a_url_over_64_kib_for_an_allowed_origin_is_sent_with_the_token_or_not_at_all() {
        let tokens = TokenServer::start().await;
        let (api, seen) = raw_api().await;
        let layer =
            ClientCredentialsLayer::new(tokens.config().allowed_origin(&api).build().unwrap());
        let client = reqwest_client(&layer);
        let long = format!("{api}/things?q={}", "a".repeat(70 * 1024));
        let answer = client.get(&long).send().await;
        let seen = seen.lock().unwrap().clone();
        match answer {
            Ok(_) => assert_eq!(seen, [Some("Bearer token-1".to_owned())]),
            Err(error) => assert!(seen.is_empty(), "not sent: {error}"),
        }
    }

    /// An API whose 401 body streams and never ends. The middleware must not read it before
    /// resending: the resend, with the new token, is served.
    #[tokio::test]
    async fn a_401_with_an_endless_streaming_body_is_resent_without_reading_it() {
        type Seen = Arc<Mutex<Vec<String>>>;
        async fn api(State(seen): State<Seen>, headers: HeaderMap) -> Response<Body> {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            seen.lock().unwrap().push(auth.clone());
            if auth == "Bearer token-1" || auth.contains("always") {
                let first = futures_util::stream::iter([Ok::<_, std::io::Error>("denied, ")]);
                let endless =
                    futures_util::StreamExt::chain(first, futures_util::stream::pending());
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .body(Body::from_stream(endless))
                    .unwrap();
            }
            Response::new(Body::from(auth))
        }
        let tokens = TokenServer::start().await;
        let seen = Seen::default();
        let addr =
            serve_on("127.0.0.1:0", Router::new().fallback(any(api)).with_state(seen.clone()))
                .await;
        let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
        let client = reqwest_client(&layer);

        let url = format!("http://{addr}/things");
        let bounded = Duration::from_secs(30);
        let response = tokio::time::timeout(bounded, client.post(&url).body("again").send())
            .await
            .expect("the endless 401 body was waited for")
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Bearer token-2");
        assert_eq!(*seen.lock().unwrap(), ["Bearer token-1", "Bearer token-2"]);
        assert_eq!(tokens.count(), 2);

        // A streaming request body cannot be resent: the endless 401 comes back, readable.
        // Tokens for the audience `always` are always rejected, with the same endless body.
        tokens.respond_with(|n| {
            let body = format!(
                r#"{{"access_token":"always-{n}","token_type":"Bearer","expires_in":3600}}"#
            );
            Reply::json(200, body)
        });
        let before = seen.lock().unwrap().len();
        let frame = hyper::body::Frame::data(Bytes::from_static(b"x"));
        let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(frame)]);
        let stream = reqwest::Body::wrap(http_body_util::StreamBody::new(chunks));
        let always = TokenParams::new().audience("always");
        let mut response = tokio::time::timeout(
            bounded,
            client.post(&url).body(stream).with_extension(always.clone()).send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(response.status(), 401);
        let first = tokio::time::timeout(bounded, response.chunk()).await.unwrap().unwrap();
        assert_eq!(first.as_deref(), Some(&b"denied, "[..]));
        drop(response);
        assert_eq!(seen.lock().unwrap().len(), before + 1, "a stream is not resent");
        assert_eq!(layer.stats_for(&always).unwrap().invalidations, 1);
    }

    /// A token endpoint that is down (nothing listens): the error is the TokenError inside
    /// `Error::Middleware`, of kind `Connect`, nothing reaches the API, and while backing off
    /// the next request fails at once without another connection attempt.
    #[tokio::test]
    async fn a_token_endpoint_that_is_down_fails_with_a_token_error_and_sends_nothing() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let api = ApiServer::start().await;
        let config = tower_client_credentials::Config::builder(
            format!("http://{closed}/token"),
            common::CLIENT_ID,
            common::CLIENT_SECRET,
        )
        .build()
        .unwrap();
        let layer = ClientCredentialsLayer::new(config);
        let client = reqwest_client(&layer);

        let error = client.get(&api.url).send().await.unwrap_err();
        assert_eq!(token_error(&error).kind(), TokenErrorKind::Connect);
        assert!(token_error(&error).is_transient());
        let error = client
            .get(&api.url)
            .with_extension(TokenParams::new().audience("orders"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(token_error(&error).kind(), TokenErrorKind::Connect);
        let again = client.post(&api.url).body("x").send().await.unwrap_err();
        assert_eq!(token_error(&again).kind(), TokenErrorKind::Connect);
        assert!(api.seen().is_empty(), "the API got nothing");
        assert_eq!(layer.stats().token_request_failures, 1, "backing off: one attempt");

        // A token endpoint that answers 503: the same, with its status, and one request.
        let tokens = TokenServer::start_with(|_| {
            let mut reply = Reply::json(503, r#"{"error":"temporarily_unavailable"}"#);
            reply.headers.push(("retry-after", "120".into()));
            reply
        })
        .await;
        let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
        let client = reqwest_client(&layer);
        for _ in 0..5 {
            let error = client.get(&api.url).send().await.unwrap_err();
            assert_eq!(token_error(&error).kind(), TokenErrorKind::ErrorResponse);
            assert_eq!(token_error(&error).status().map(|s| s.as_u16()), Some(503));
        }
        assert_eq!(tokens.count(), 1, "Retry-After honoured: no second token request");
        assert!(api.seen().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 3. DPoP
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "dpop")]
mod dpop_attacks {
    use axum::http::StatusCode;
    use tower_client_credentials::ClientCredentials;

    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use common::dpop::DpopServers;
    use tower::retry::{Retry, RetryLayer};
    use tower::Layer;
    use tower_client_credentials::{DpopAlgorithm, DpopKey, RetryUnauthorized};

    type Api = Retry<RetryUnauthorized, ClientCredentials<HttpClient>>;

    fn retrying(layer: &ClientCredentialsLayer) -> Api {
        RetryLayer::new(RetryUnauthorized::new()).layer(api_client(layer))
    }

    async fn send(api: &Api, url: &str) -> (u16, String) {
        let request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
        let response = api.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn dpop_layer(servers: &DpopServers) -> ClientCredentialsLayer {
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        ClientCredentialsLayer::new(servers.config().dpop(key).build().unwrap())
    }

    /// One request as the hostile resource server saw it.
    #[derive(Clone, Debug)]
    pub(super) struct Hit {
        /// The `nonce` claim of its proof; `Err` if the proof's claims were not JSON.
        pub nonce: Result<Option<String>, String>,
        /// The nonce the server answered with.
        pub given: Vec<u8>,
    }

    /// A resource server that answers every request `401 use_dpop_nonce` with the nonce
    /// `nonce(n)` for its `n`th request (from 1).
    pub(super) async fn nonce_demanding_api(
        nonce: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<Hit>>>) {
        type Shared = (Arc<Mutex<Vec<Hit>>>, Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>);
        async fn api(State((hits, nonce)): State<Shared>, headers: HeaderMap) -> Response<Body> {
            let claims = headers.get("dpop").and_then(|proof| {
                let payload = proof.to_str().ok()?.split('.').nth(1)?.to_owned();
                URL_SAFE_NO_PAD.decode(payload).ok()
            });
            let claims = claims.ok_or("no proof".to_owned()).and_then(|bytes| {
                serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())
            });
            let mut hits = hits.lock().unwrap();
            let given = nonce(hits.len() + 1);
            hits.push(Hit {
                nonce: claims.map(|c| c.get("nonce").and_then(|n| n.as_str()).map(str::to_owned)),
                given: given.clone(),
            });
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", r#"DPoP algs="ES256", error="use_dpop_nonce""#)
                .header("dpop-nonce", http::HeaderValue::from_bytes(&given).unwrap())
                .body(Body::empty())
                .unwrap()
        }
        let hits = Arc::new(Mutex::new(Vec::new()));
        let shared: Shared = (hits.clone(), Arc::new(nonce));
        let addr =
            serve_on("127.0.0.1:0", Router::new().fallback(any(api)).with_state(shared)).await;
        (format!("http://{addr}/things"), hits)
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// A resource server that answers every request with a new nonce and `use_dpop_nonce`:
    /// each request is resent once with the nonce it was given, and then its 401 comes back;
    /// no loop, no token dropped, one token for everything.
    #[tokio::test]
    async fn a_new_nonce_on_every_answer_costs_one_resend_per_request_and_no_token() {
        let servers = DpopServers::start().await;
        let (url, hits) = nonce_demanding_api(|n| format!("nonce-{n}").into_bytes()).await;
        let layer = dpop_layer(&servers);
        let api = retrying(&layer);

        for i in 0..10 {
            assert_eq!(send(&api, &url).await.0, 401, "request {i}");
            assert_eq!(hits.lock().unwrap().len(), 2 * (i + 1), "request {i}: two attempts");
        }
        let sequential = hits.lock().unwrap().clone();
        for (at, hit) in sequential.iter().enumerate() {
            let expected = (at > 0).then(|| text(&sequential[at - 1].given));
            assert_eq!(hit.nonce, Ok(expected), "attempt {at} carries the latest nonce");
        }
        // Concurrently: still two attempts each.
        let burst: Vec<_> = (0..20)
            .map(|_| {
                let (api, url) = (api.clone(), url.clone());
                tokio::spawn(async move { send(&api, &url).await.0 })
            })
            .collect();
        for answer in burst {
            assert_eq!(answer.await.unwrap(), 401);
        }
        assert_eq!(hits.lock().unwrap().len(), 20 + 2 * 20, "two attempts each in the burst too");
        let stats = layer.stats();
        assert_eq!((stats.tokens_fetched, stats.invalidations), (1, 0));
        let statuses: Vec<u16> = servers.token_calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses, [400, 200], "one token, after the token endpoint's own nonce");
    }

    #[cfg(feature = "reqwest-middleware")]
    #[tokio::test]
    async fn a_new_nonce_on_every_answer_costs_one_resend_per_reqwest_request() {
        let servers = DpopServers::start().await;
        let (url, hits) = nonce_demanding_api(|n| format!("nonce-{n}").into_bytes()).await;
        let layer = dpop_layer(&servers);
        let client = super::reqwest_attacks::reqwest_client(&layer);

        for i in 0..10 {
            let response = client.post(&url).body("x").send().await.unwrap();
            assert_eq!(response.status(), 401, "request {i}");
            assert_eq!(hits.lock().unwrap().len(), 2 * (i + 1), "request {i}: two attempts");
        }
        let hits = hits.lock().unwrap().clone();
        for (at, hit) in hits.iter().enumerate() {
            let expected = (at > 0).then(|| text(&hits[at - 1].given));
            assert_eq!(hit.nonce, Ok(expected), "attempt {at}");
        }
        let stats = layer.stats();
        assert_eq!((stats.tokens_fetched, stats.invalidations), (1, 0));
    }

    /// Nonces no proof may carry: too long, a space, a quote, a backslash, bytes past ASCII,
    /// empty. None reaches a proof (every proof stays JSON), and nothing loops: at most two
    /// attempts per request, at most one token dropped per `invalidation_interval`.
    #[tokio::test]
    async fn an_unusable_nonce_never_reaches_a_proof_and_nothing_loops() {
        let bad: Vec<Vec<u8>> = vec![
            vec![b'n'; 1025],
            vec![b'n'; 64 * 1024],
            b"with space".to_vec(),
            br#"quo"te"#.to_vec(),
            br"back\slash".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            b"\x80\xff".to_vec(),
            Vec::new(),
        ];
        for nonce in bad {
            let servers = DpopServers::start().await;
            let given = nonce.clone();
            let (url, hits) = nonce_demanding_api(move |_| given.clone()).await;
            let layer = dpop_layer(&servers);
            let api = retrying(&layer);
            for i in 0..5 {
                assert_eq!(send(&api, &url).await.0, 401);
                assert!(
                    hits.lock().unwrap().len() <= 2 * (i + 1),
                    "{:?}",
                    &nonce[..nonce.len().min(16)]
                );
            }
            for hit in hits.lock().unwrap().iter() {
                assert_eq!(hit.nonce, Ok(None), "{:?}", &nonce[..nonce.len().min(16)]);
            }
            assert!(layer.stats().tokens_fetched <= 2);
        }
        // The longest nonce kept, 1024 bytes of NQCHAR, is carried.
        let servers = DpopServers::start().await;
        let (url, hits) = nonce_demanding_api(|_| vec![b'~'; 1024]).await;
        let api = retrying(&dpop_layer(&servers));
        assert_eq!(send(&api, &url).await.0, 401);
        let hits = hits.lock().unwrap().clone();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[1].nonce, Ok(Some("~".repeat(1024))));
    }

    /// A `use_dpop_nonce` answer says the token is fine and the proof lacks the nonce. When the
    /// nonce cannot be used, the token should still not be dropped: a new token cannot help.
    #[tokio::test]
    async fn a_nonce_demand_with_an_unusable_nonce_drops_no_token() {
        let servers = DpopServers::start().await;
        let (url, hits) = nonce_demanding_api(|_| vec![b'n'; 2048]).await;
        let layer = dpop_layer(&servers);
        let api = retrying(&layer);
        for _ in 0..3 {
            assert_eq!(send(&api, &url).await.0, 401);
        }
        let stats = layer.stats();
        assert_eq!((stats.tokens_fetched, stats.invalidations), (1, 0));
        assert_eq!(hits.lock().unwrap().len(), 3, "nothing new to resend with");
    }

    /// Every duration setting at `Duration::MAX`, with DPoP: the layer builds, serves against
    /// the proof-checking resource server, makes one token (after the token endpoint's nonce),
    /// and a year later one more.
    #[tokio::test]
    async fn duration_max_everywhere_with_dpop_serves_and_renews() {
        let servers = DpopServers::start().await;
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        let config = servers
            .config()
            .dpop(key)
            .refresh_ahead(Duration::MAX)
            .expiry_margin(Duration::MAX)
            .default_lifetime(Duration::MAX)
            .max_lifetime(Duration::MAX)
            .request_timeout(Duration::MAX)
            .invalidation_interval(Duration::MAX)
            .build()
            .expect("every one of these is documented as accepted");
        let layer = ClientCredentialsLayer::new(config);
        let api = retrying(&layer);

        for _ in 0..5 {
            assert_eq!(send(&api, &servers.api_url).await, (200, "served".into()));
        }
        let statuses: Vec<u16> = servers.token_calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses, [400, 200]);
        assert_eq!(layer.stats().tokens_fetched, 1);

        jump(Duration::from_secs(365 * 24 * 3600)).await;
        assert_eq!(send(&api, &servers.api_url).await, (200, "served".into()));
        let statuses: Vec<u16> = servers.token_calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses, [400, 200, 200], "one new token, the nonce kept");
        assert_eq!(layer.stats().tokens_fetched, 2);
        assert_eq!(layer.stats().invalidations, 0);
        #[cfg(feature = "reqwest-middleware")]
        {
            let client = super::reqwest_attacks::reqwest_client(&layer);
            let response = client.get(&servers.api_url).send().await.unwrap();
            assert_eq!(response.text().await.unwrap(), "served");
        }
    }
}
