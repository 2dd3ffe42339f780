//! DPoP (RFC 9449) against loopback servers that check every proof (`common/dpop.rs`): the
//! token request carries a proof and survives the token endpoint's nonce round trip; API
//! requests carry `Authorization: DPoP` and a proof the resource server accepts, nonce
//! included, in a concurrent burst; what a thief could send instead is refused.

use crate::common;

use std::convert::Infallible;
use std::time::Duration;

use common::dpop::{foreign_proof, DpopServers, Outcome, RS_NONCE};
use common::{api_client, HttpClient};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::retry::{Retry, RetryLayer};
use tower::{Layer, ServiceExt};
use tower_client_credentials::{
    ClientCredentials, ClientCredentialsLayer, DpopAlgorithm, DpopKey, RetryUnauthorized,
    TokenError, TokenErrorKind,
};

type Api = Retry<RetryUnauthorized, ClientCredentials<HttpClient>>;

/// hyper-util's client, our layer and `RetryUnauthorized` outside it, as the README stacks them.
fn retrying(layer: &ClientCredentialsLayer) -> Api {
    RetryLayer::new(RetryUnauthorized::new()).layer(api_client(layer))
}

async fn send(api: Api, url: String) -> (u16, String) {
    let request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    let response = api.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A request with exactly these headers, through no layer.
async fn send_raw(url: &str, headers: &[(&str, &str)]) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = http::Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client.request(request.body(Empty::new()).unwrap()).await.unwrap().status().as_u16()
}

fn layer(servers: &DpopServers, key: &DpopKey) -> ClientCredentialsLayer {
    ClientCredentialsLayer::new(servers.config().dpop(key.clone()).build().unwrap())
}

#[tokio::test]
async fn a_concurrent_burst_against_a_resource_server_that_demands_a_nonce_all_succeeds() {
    const BURST: usize = 32;
    let servers = DpopServers::start().await;
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = layer(&servers, &key);
    let api = retrying(&layer);

    let burst: Vec<_> =
        (0..BURST).map(|_| tokio::spawn(send(api.clone(), servers.api_url.clone()))).collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), (200, "served".to_owned()));
    }

    // One token, after one nonce round trip at the token endpoint.
    let calls = servers.token_calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [400, 200]);
    let claims: Vec<&Value> = calls.iter().map(|c| c.claims.as_ref().unwrap()).collect();
    assert_eq!(claims[0].get("nonce"), None);
    assert_eq!(claims[1]["nonce"], "as-nonce-1");
    for claims in &claims {
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], servers.token_url.as_str());
        assert_eq!(claims.get("ath"), None, "a token request has no token to hash");
    }
    let token = layer.token().await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(servers.jkt_of(token.secret()).as_deref(), Some(key.thumbprint()));

    // Each request that went before the nonce was known was asked for it once, and resent.
    let outcomes = servers.api_outcomes();
    let asked = outcomes.iter().filter(|o| **o == Outcome::Refused("nonce")).count();
    let served = outcomes.iter().filter(|o| **o == Outcome::Served).count();
    assert_eq!(served, BURST);
    assert!((1..=BURST).contains(&asked), "{outcomes:?}");
    assert_eq!(outcomes.len(), served + asked, "no other refusal: {outcomes:?}");
    let expected = format!("DPoP {}", token.secret());
    for headers in servers.api_headers() {
        assert_eq!(headers["authorization"], expected.as_str());
    }
    let stats = layer.stats();
    assert_eq!((stats.invalidations, stats.tokens_fetched), (0, 1), "a nonce is no invalidation");
}

#[tokio::test]
async fn a_replay_another_url_a_wrong_key_and_a_bearer_token_are_refused() {
    let servers = DpopServers::start().await;
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = layer(&servers, &key);
    let api = retrying(&layer);
    assert_eq!(send(api.clone(), servers.api_url.clone()).await.0, 200);
    let accepted = servers.api_headers().pop().unwrap();
    let authorization = accepted["authorization"].to_str().unwrap().to_owned();
    let proof = accepted["dpop"].to_str().unwrap().to_owned();
    let token = authorization.strip_prefix("DPoP ").unwrap().to_owned();
    let before = servers.api_outcomes().len();

    let url = servers.api_url.as_str();
    let stolen = [("authorization", authorization.as_str())];
    let replayed = [stolen[0], ("dpop", proof.as_str())];
    assert_eq!(send_raw(url, &replayed).await, 401);
    assert_eq!(send_raw(&servers.api("/elsewhere"), &replayed).await, 401);
    let forged = foreign_proof("GET", url, &token, RS_NONCE);
    assert_eq!(send_raw(url, &[stolen[0], ("dpop", forged.as_str())]).await, 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(send_raw(url, &[("authorization", bearer.as_str())]).await, 401);
    assert_eq!(send_raw(url, &stolen).await, 401);

    assert_eq!(
        servers.api_outcomes()[before..],
        [
            Outcome::Refused("jti seen before"),
            Outcome::Refused("htu"),
            Outcome::Refused("cnf.jkt"),
            Outcome::Refused("not a DPoP token"),
            Outcome::Refused("no proof"),
        ]
    );
    // The key's holder still gets through, at once: the nonce is kept.
    assert_eq!(send(api, servers.api_url.clone()).await.0, 200);
    assert_eq!(servers.api_outcomes()[before + 5..], [Outcome::Served]);
}

#[tokio::test]
async fn the_token_endpoint_nonce_costs_one_round_trip_and_the_latest_one_is_kept() {
    let servers = DpopServers::start().await;
    servers.rotate_token_endpoint_nonce(); // each success gives the next nonce
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = layer(&servers, &key);

    layer.token().await.unwrap();
    common::jump(Duration::from_secs(3600)).await; // the token has expired on Tokio's clock
    layer.token().await.unwrap();

    let calls = servers.token_calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [400, 200, 200]);
    let nonces: Vec<Option<&str>> =
        calls.iter().map(|c| c.claims.as_ref().unwrap()["nonce"].as_str()).collect();
    assert_eq!(nonces, [None, Some("as-nonce-1"), Some("as-nonce-1+")]);
    let jtis: std::collections::HashSet<&str> =
        calls.iter().map(|c| c.claims.as_ref().unwrap()["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), 3, "a new proof each time, the resend included");
    assert_eq!(layer.stats().tokens_fetched, 2);
}

#[tokio::test]
async fn every_algorithm_makes_proofs_the_servers_accept() {
    for algorithm in
        [DpopAlgorithm::Es256, DpopAlgorithm::Rs256, DpopAlgorithm::Ps256, DpopAlgorithm::EdDsa]
    {
        let servers = DpopServers::start().await;
        let key = DpopKey::generate(algorithm).unwrap();
        let layer = layer(&servers, &key);
        assert_eq!(send(retrying(&layer), servers.api_url.clone()).await.0, 200, "{algorithm}");
        let token = layer.token().await.unwrap();
        assert_eq!(servers.jkt_of(token.secret()).as_deref(), Some(key.thumbprint()));
    }
}

#[tokio::test]
async fn a_bearer_answer_to_a_dpop_request_is_refused_unless_the_downgrade_is_allowed() {
    let servers = DpopServers::start().await;
    servers.answer_with_token_type("Bearer");
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();

    let error = layer(&servers, &key).token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::UnsupportedTokenType);
    assert!(error.to_string().contains("`dpop_allow_bearer` accepts it"), "{error}");

    let config = servers.config().dpop(key).dpop_allow_bearer().build().unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let token = layer.token().await.unwrap();
    assert_eq!(token.header_value(), format!("Bearer {}", token.secret()).as_str());
    // Sent as the bearer token it is, without a proof (this server wants DPoP: it refuses,
    // and the token is replaced and the request resent once, as any rejected token is).
    assert_eq!(send(retrying(&layer), servers.api_url.clone()).await.0, 401);
    let sent = servers.api_headers();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["authorization"], token.header_value());
    for headers in sent {
        assert!(headers["authorization"].to_str().unwrap().starts_with("Bearer "));
        assert!(headers.get("dpop").is_none());
    }
}

#[tokio::test]
async fn a_request_without_an_origin_gets_an_error_not_a_proofless_token() {
    let servers = DpopServers::start().await;
    let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let layer = layer(&servers, &key);
    let service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
        panic!("nothing may be sent");
        #[allow(unreachable_code)]
        Ok::<_, Infallible>(http::Response::new(()))
    }));
    for warm in [false, true] {
        if warm {
            layer.warm_up().await.unwrap();
        }
        let request = http::Request::get("/relative").body(()).unwrap();
        let error = service.clone().oneshot(request).await.unwrap_err();
        let error = error.downcast_ref::<TokenError>().expect("a TokenError");
        assert_eq!(error.kind(), TokenErrorKind::DpopProof, "warm: {warm}");
        assert!(error.to_string().contains("no scheme and host"), "{error}");
    }
}

#[cfg(feature = "store")]
#[test]
fn a_store_needs_the_same_dpop_key_on_every_replica() {
    use tower_client_credentials::store::{StoreFuture, TokenStore};

    #[derive(Debug)]
    struct NoStore;
    impl TokenStore for NoStore {
        fn get<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(async { Ok(None) })
        }
        fn set<'a>(&'a self, _: &'a str, _: Vec<u8>, _: Duration) -> StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn try_lock<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, bool> {
            Box::pin(async { Ok(false) })
        }
        fn remove_if_equal<'a>(&'a self, _: &'a str, _: &'a [u8]) -> StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }
    let builder = || {
        tower_client_credentials::Config::builder("https://idp.example/token", "c", "s")
            .store(NoStore)
    };
    let generated = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
    let error = builder().dpop(generated).build().unwrap_err();
    assert_eq!(error.field(), "dpop");
    assert!(error.to_string().contains("`store`"), "{error}");
    let error = builder().dpop_allow_bearer().build().unwrap_err();
    assert_eq!(error.field(), "dpop_allow_bearer");

    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    let given = DpopKey::from_pem(pem, DpopAlgorithm::Es256).unwrap();
    builder().dpop(given).build().expect("a key every replica can be given");
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
        assert_eq!(send(api.clone(), servers.api_url.clone()).await, (200, "served".into()));
    }
    let statuses: Vec<u16> = servers.token_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 200]);
    assert_eq!(layer.stats().tokens_fetched, 1);

    common::jump(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(send(api.clone(), servers.api_url.clone()).await, (200, "served".into()));
    let statuses: Vec<u16> = servers.token_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 200, 200], "one new token, the nonce kept");
    assert_eq!(layer.stats().tokens_fetched, 2);
    assert_eq!(layer.stats().invalidations, 0);
    #[cfg(feature = "reqwest-middleware")]
    {
        let client = common::reqwest_client(&layer);
        let response = client.get(&servers.api_url).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "served");
    }
}
