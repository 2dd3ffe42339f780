//! Origins as users write them: routes and `allowed_origin` with an upper-case host or scheme,
//! the default port spelled out, a trailing slash, an IPv6 address in any spelling. Hosts and
//! schemes match whatever their case, ports by their effective value, IPv6 hosts as addresses,
//! paths exactly and a whole segment at a time; a look-alike host gets nothing of the route's.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response};
use axum::routing::any;
use axum::Router;
use common::named_tokens::{asked, naming_token_server};
use common::{api_client, get, serve_on, HttpClient, TokenServer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tower::{Service, ServiceExt};
use tower_client_credentials::{BoxError, ClientCredentialsLayer, TokenParams};

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
