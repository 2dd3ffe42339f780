//! DPoP nonces a resource server may send (RFC 9449 §9): a new nonce on every answer costs one
//! resend per request and drops no token; a nonce that no proof may carry (too long, a space,
//! a quote, bytes past ASCII, empty) never reaches a proof, and nothing loops.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::any;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::dpop::DpopServers;
use common::{api_client, serve_on, HttpClient};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tower::retry::{Retry, RetryLayer};
use tower::{Layer, ServiceExt};
use tower_client_credentials::{
    ClientCredentials, ClientCredentialsLayer, DpopAlgorithm, DpopKey, RetryUnauthorized,
};

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
struct Hit {
    /// The `nonce` claim of its proof; `Err` if the proof's claims were not JSON.
    pub nonce: Result<Option<String>, String>,
    /// The nonce the server answered with.
    pub given: Vec<u8>,
}

/// A resource server that answers every request `401 use_dpop_nonce` with the nonce
/// `nonce(n)` for its `n`th request (from 1).
async fn nonce_demanding_api(
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
    let addr = serve_on("127.0.0.1:0", Router::new().fallback(any(api)).with_state(shared)).await;
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
    let client = common::reqwest_client(&layer);

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
