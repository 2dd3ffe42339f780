//! Routes are chosen by the path a server resolves, not by the raw text of the request's path
//! (DESIGN.md §11). hyper-util's client sends an `http::Uri` as it was written, so a path such
//! as `/orders/../billing/pay` reaches the server, which resolves it (RFC 3986 §6.2.2:
//! percent-encoded unreserved characters decoded, dot segments removed) to `/billing/pay`.
//! That request must carry the billing token, never the orders one. A path whose meaning
//! servers disagree on (`%2F` and `%5C`, which some take as separators and some not) takes no
//! route at all, and gets the layer's own token.
//!
//! Against a token endpoint on loopback that names each token after its audience, and an API
//! on loopback that records the raw path and the `Authorization` of each request.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, Uri};
use axum::routing::any;
use axum::Router;
use common::{api_client, get, Reply, TokenServer};
use tokio::net::TcpListener;
use tower_client_credentials::{ClientCredentialsLayer, Config, TokenExchange, TokenParams};

const DEFAULT: &str = "Bearer token-for-default";
const ORDERS: &str = "Bearer token-for-orders";
const BILLING: &str = "Bearer token-for-billing";

/// A token endpoint whose tokens are `token-for-<audience>`, valid for an hour.
/// A token exchange is answered with its `issued_token_type`.
async fn naming_token_server() -> TokenServer {
    TokenServer::start_judging(|_, received| {
        let audience = received.param("audience").unwrap_or("none");
        let issued = match received.param("grant_type") {
            Some(TokenExchange::GRANT_TYPE) => {
                format!(r#","issued_token_type":"{}""#, TokenExchange::ACCESS_TOKEN)
            }
            _ => String::new(),
        };
        Reply::json(
            200,
            format!(
                r#"{{"access_token":"token-for-{audience}","token_type":"Bearer","expires_in":3600{issued}}}"#
            ),
        )
    })
    .await
}

/// The raw path and the `Authorization` of each request, in order.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An API on 127.0.0.1 that answers every path with 200 and the `Authorization` it received.
struct PathApi {
    origin: String,
    seen: Seen,
}

impl PathApi {
    async fn start() -> Self {
        let seen = Seen::default();
        let router = Router::new().fallback(any(record)).with_state(seen.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { origin, seen }
    }

    /// The raw paths received, in order.
    fn paths(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(path, _)| path.clone()).collect()
    }
}

async fn record(State(seen): State<Seen>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    seen.lock().unwrap().push((uri.path().to_owned(), auth.clone()));
    Response::new(Body::from(auth.unwrap_or_default()))
}

/// A layer with the default audience `default` and two routes on the API: `/orders` and
/// `/billing/`.
fn config(tokens: &TokenServer, api: &PathApi) -> Config {
    tokens
        .config()
        .audience("default")
        .route(format!("{}/orders", api.origin), TokenParams::new().audience("orders"))
        .route(format!("{}/billing/", api.origin), TokenParams::new().audience("billing"))
        .build()
        .unwrap()
}

/// Each path with the token it must carry: the token of the route its resolved path is in,
/// or the layer's own for a path that servers resolve differently.
const CASES: [(&str, &str); 11] = [
    // Dot segments, as written and percent-encoded: `/billing/pay`.
    ("/orders/../billing/pay", BILLING),
    ("/orders/%2e%2e/billing/pay", BILLING),
    ("/orders/%2E%2E/billing/pay", BILLING),
    // An encoded separator: `/orders/..%2fbilling/pay` is `/billing/pay` to a server that
    // decodes it before resolving, and a file `..%2fbilling` under `/orders` to one that does
    // not. Neither route's token may go.
    ("/orders/..%2fbilling/pay", DEFAULT),
    ("/orders/..%2Fbilling/pay", DEFAULT),
    ("/orders/..%5cbilling/pay", DEFAULT),
    // Within `/orders`: a `.` segment, and an encoded unreserved letter.
    ("/orders/./7", ORDERS),
    ("/orders/7", ORDERS),
    ("/%6Frders/7", ORDERS),
    // Not `/orders`, a whole segment at a time.
    ("/orders-archive/1", DEFAULT),
    ("/billing/pay", BILLING),
];

#[tokio::test]
async fn a_route_is_chosen_by_the_path_the_server_resolves() {
    let tokens = naming_token_server().await;
    let api = PathApi::start().await;
    check_cases(&api, config(&tokens, &api)).await;
}

/// The same with the orders token exchanged on behalf of a user (a route whose grant is a
/// token exchange): the exchanged token never goes to a path outside `/orders`.
#[tokio::test]
async fn an_exchanged_route_token_goes_only_where_the_server_resolves_its_route() {
    let tokens = naming_token_server().await;
    let api = PathApi::start().await;
    let exchange = TokenExchange::subject_token("orders-user", TokenExchange::ACCESS_TOKEN);
    let config = tokens
        .config()
        .audience("default")
        .route(
            format!("{}/orders", api.origin),
            TokenParams::new().audience("orders").grant(exchange),
        )
        .route(format!("{}/billing/", api.origin), TokenParams::new().audience("billing"))
        .build()
        .unwrap();

    check_cases(&api, config).await;
    let exchanged: Vec<_> = tokens
        .received()
        .iter()
        .filter_map(|r| r.param("subject_token").map(str::to_owned))
        .collect();
    assert_eq!(exchanged, ["orders-user"], "one exchange, for the orders route");
}

/// Sends each of [`CASES`] through a layer of `config` and checks the token it carried.
async fn check_cases(api: &PathApi, config: Config) {
    let client = api_client(&ClientCredentialsLayer::new(config));
    let mut wrong = Vec::new();
    for (path, token) in CASES {
        let (status, auth) = get(&client, &format!("{}{path}", api.origin)).await.unwrap();
        assert_eq!(status, 200, "{path}");
        if auth != token {
            wrong.push(format!("{path} carried `{auth}`, not `{token}`"));
        }
    }

    let raw: Vec<&str> = CASES.iter().map(|(path, _)| *path).collect();
    assert_eq!(api.paths(), raw, "the API received each path as it was written");
    assert_eq!(wrong, Vec::<String>::new(), "paths that carried the wrong token");
}

/// reqwest resolves `.` and `..` (and their encoded forms) itself, but keeps `%2F`: the
/// reqwest middleware must not send the orders token to a path that may be outside `/orders`.
#[cfg(feature = "reqwest-middleware")]
#[tokio::test]
async fn the_reqwest_middleware_sends_no_route_token_to_an_encoded_separator() {
    let tokens = naming_token_server().await;
    let api = PathApi::start().await;
    let layer = ClientCredentialsLayer::new(config(&tokens, &api));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(layer.reqwest_middleware())
        .build();

    let url = format!("{}/orders/..%2fbilling/pay", api.origin);
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let auth = response.text().await.unwrap();
    assert_eq!(api.paths(), ["/orders/..%2fbilling/pay"], "reqwest sent the path as it was");
    assert_ne!(auth, ORDERS, "the orders token went to a path outside /orders");
}
