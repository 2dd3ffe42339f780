//! Redirects through the reqwest middleware (feature `reqwest-middleware`; DPoP cases also
//! `dpop`): a response is judged only against the origin its token went to, and no DPoP proof
//! reaches another origin.
//!
//! reqwest follows redirects inside the client, below every middleware: the middleware sees
//! the request it was given and the response of the last hop. With reqwest's default policy,
//! API A (one loopback server) answers `302 Location: <B>/x`, and origin B (another loopback
//! server, on another port, so another origin) answers `401`. reqwest drops `Authorization` on
//! the way to B (reqwest 0.13 `redirect::remove_sensitive_headers`) but copies every other
//! header, the `DPoP` proof included. B's `401` and its `DPoP-Nonce` say nothing of A: they
//! must not drop A's token, cause a resend to A, or put B's nonce in a proof sent to A.
//!
//! With `ClientCredentialsMiddleware::redirect_policy()` (module `with_redirect_policy`, at
//! the bottom) the client follows nothing: the middleware follows redirects within the origin,
//! up to 10, each hop with the token of its own path and a proof for its own URL, and hands a
//! redirect to another origin back to the caller, so that nothing of ours goes there.

use crate::common;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use common::origin::{found, ok, Origin};
use common::TokenServer;
use tower_client_credentials::ClientCredentialsLayer;

/// B's answer: its token is not ours, so it rejects it; with `nonce`, it also asks for a DPoP
/// nonce and gives one (`from-b`).
fn unauthorized(nonce: bool) -> Response<Body> {
    let mut response = Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header("www-authenticate", r#"Bearer error="invalid_token""#);
    if nonce {
        response = response
            .header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
            .header("dpop-nonce", "from-b");
    }
    response.body(Body::empty()).unwrap()
}

/// Origin B, answering `401` to everything, and API A: `/start` redirects to `<B>/x`, `/old`
/// to `/new` on A itself, `/hop/<n>` to `/hop/<n + 1>` up to `/hop/10`, `/long/<n>` to
/// `/long/<n + 1>` whatever `n`; anything else is `200`.
async fn origins(b_asks_for_a_nonce: bool) -> (Origin, Origin) {
    let b = Origin::start(move |_| unauthorized(b_asks_for_a_nonce)).await;
    let to_b = b.url("/x");
    let a = Origin::start(move |path| {
        let hop = |prefix: &str| path.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
        match path {
            "/start" => found(&to_b),
            "/old" => found("/new"),
            "/orders/old" => found("/billing/new"),
            _ => match (hop("/hop/"), hop("/long/")) {
                (Some(n), _) if n < 10 => found(&format!("/hop/{}", n + 1)),
                (_, Some(n)) => found(&format!("/long/{}", n + 1)),
                _ => ok(),
            },
        }
    })
    .await;
    (a, b)
}

/// The reqwest client with reqwest's default redirect policy (up to 10 hops, to any origin).
use common::reqwest_client as client;

#[tokio::test]
async fn a_redirect_to_another_origin_carries_no_token() {
    let tokens = TokenServer::start().await;
    let (a, b) = origins(false).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let response = client(&layer).get(a.url("/start")).send().await.unwrap();

    assert_eq!(response.status(), 401, "B's answer");
    assert_eq!(a.requests_for("/start")[0]["authorization"], "Bearer token-1");
    let to_b = b.requests();
    assert!(!to_b.is_empty(), "reqwest followed the redirect");
    for (path, headers) in to_b {
        assert_eq!(headers.get("authorization"), None, "{path}");
    }
}

#[tokio::test]
async fn a_401_from_the_origin_redirected_to_drops_no_token_and_resends_nothing() {
    let tokens = TokenServer::start().await;
    let (a, b) = origins(false).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
    let client = client(&layer);

    let response = client.get(a.url("/start")).send().await.unwrap();

    assert_eq!(response.status(), 401, "B's answer goes back to the caller");
    assert_eq!(a.requests_for("/start").len(), 1, "A's request is not resent");
    assert_eq!(b.requests().len(), 1);
    assert_eq!(layer.stats().invalidations, 0, "B's 401 says nothing of A's token");
    assert_eq!(tokens.count(), 1, "A's token is kept");
    let response = client.get(a.url("/other")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(a.requests_for("/other")[0]["authorization"], "Bearer token-1");
    assert_eq!(tokens.count(), 1);
}

/// reqwest's default policy follows a redirect within the origin with the same headers: the
/// token, and with DPoP the proof made for the first URL (see `dpop` below).
#[tokio::test]
async fn a_redirect_within_the_origin_keeps_the_token() {
    let tokens = TokenServer::start().await;
    let (a, b) = origins(false).await;
    let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

    let response = client(&layer).get(a.url("/old")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(a.requests_for("/new")[0]["authorization"], "Bearer token-1");
    assert_eq!((tokens.count(), b.requests().len()), (1, 0));
}

#[cfg(feature = "dpop")]
mod dpop {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use http::HeaderMap;
    use serde_json::Value;
    use tower_client_credentials::{ClientCredentialsLayer, DpopAlgorithm, DpopKey};

    use super::common::dpop::DpopServers;
    use super::{client, origins};

    /// A layer whose tokens are DPoP-bound, from a token endpoint that checks our proofs.
    pub(super) async fn dpop_layer() -> (DpopServers, ClientCredentialsLayer) {
        let servers = DpopServers::start().await;
        let key = DpopKey::generate(DpopAlgorithm::Es256).unwrap();
        let layer = ClientCredentialsLayer::new(servers.config().dpop(key).build().unwrap());
        (servers, layer)
    }

    /// Tokens issued: the token endpoint's answers that were `200`.
    pub(super) fn tokens_issued(servers: &DpopServers) -> usize {
        servers.token_calls().iter().filter(|call| call.status == 200).count()
    }

    /// The claims of the request's DPoP proof (not verified: the test made the key).
    pub(super) fn proof_claims(headers: &HeaderMap) -> Value {
        let proof = headers.get("dpop").expect("a DPoP proof").to_str().unwrap();
        let claims = proof.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_nonce_demanded_by_the_origin_redirected_to_causes_no_resend() {
        let (servers, layer) = dpop_layer().await;
        let (a, b) = origins(true).await;

        let response = client(&layer).get(a.url("/start")).send().await.unwrap();

        assert_eq!(response.status(), 401, "B's answer goes back to the caller");
        assert_eq!(a.requests_for("/start").len(), 1, "A's request is not resent");
        assert_eq!(b.requests().len(), 1);
        assert_eq!(tokens_issued(&servers), 1);
        assert_eq!(layer.stats().invalidations, 0);
    }

    #[tokio::test]
    async fn a_nonce_from_the_origin_redirected_to_is_never_sent_to_the_first() {
        let (servers, layer) = dpop_layer().await;
        let (a, _b) = origins(true).await;
        let client = client(&layer);

        let _ = client.get(a.url("/start")).send().await.unwrap();
        let response = client.get(a.url("/other")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        let other = proof_claims(&a.requests_for("/other")[0]);
        assert_eq!(other["htu"], a.url("/other"));
        assert_eq!(other.get("nonce"), None, "B's nonce in the proof of the next request to A");
        for (path, headers) in a.requests() {
            let claims = proof_claims(&headers);
            assert_eq!(claims.get("nonce"), None, "B's nonce in a proof sent to A's {path}");
        }
        assert_eq!(tokens_issued(&servers), 1);
    }

    /// What happens: reqwest copies the headers to the next hop, so `/new` gets the proof made
    /// for `/old` (`htu` is `/old`'s). A resource server that checks `htu` against the URL it
    /// serves (RFC 9449 §4.3 step 9) refuses it.
    #[tokio::test]
    async fn a_redirect_within_the_origin_carries_the_proof_made_for_the_first_url() {
        let (servers, layer) = dpop_layer().await;
        let (a, b) = origins(false).await;

        let response = client(&layer).get(a.url("/old")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        let new = &a.requests_for("/new")[0];
        let token = layer.token().await.unwrap();
        assert_eq!(new["authorization"], format!("DPoP {}", token.secret()).as_str());
        assert_eq!(proof_claims(new)["htu"], a.url("/old"));
        assert_eq!(proof_claims(new), proof_claims(&a.requests_for("/old")[0]), "the same proof");
        assert_eq!((tokens_issued(&servers), b.requests().len()), (1, 0));
    }
}

/// The client built with `ClientCredentialsMiddleware::redirect_policy()`.
mod with_redirect_policy {
    use tower_client_credentials::ClientCredentialsLayer;

    use super::common::TokenServer;
    use super::origins;

    use super::common::reqwest_client_with_our_redirects as client;

    #[tokio::test]
    async fn a_redirect_to_another_origin_is_handed_back_and_that_origin_gets_nothing() {
        let tokens = TokenServer::start().await;
        let (a, b) = origins(false).await;
        let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

        let response = client(&layer).get(a.url("/start")).send().await.unwrap();

        assert_eq!(response.status(), 302, "the redirect goes back to the caller");
        assert_eq!(response.headers()["location"], b.url("/x").as_str());
        assert_eq!(b.requests().len(), 0);
        assert_eq!(a.requests_for("/start")[0]["authorization"], "Bearer token-1");
        assert_eq!((a.requests().len(), tokens.count()), (1, 1));
        assert_eq!(layer.stats().invalidations, 0);
    }

    #[tokio::test]
    async fn a_redirect_within_the_origin_is_followed_with_the_token() {
        let tokens = TokenServer::start().await;
        let (a, b) = origins(false).await;
        let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());

        let response = client(&layer).get(a.url("/old")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        assert_eq!(a.requests_for("/new")[0]["authorization"], "Bearer token-1");
        assert_eq!((tokens.count(), b.requests().len()), (1, 0));
    }

    #[tokio::test]
    async fn ten_redirects_within_the_origin_are_followed_and_an_eleventh_is_not() {
        let tokens = TokenServer::start().await;
        let (a, _b) = origins(false).await;
        let layer = ClientCredentialsLayer::new(tokens.config().build().unwrap());
        let client = client(&layer);

        let response = client.get(a.url("/hop/0")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let hops: Vec<_> = (0..=10).map(|n| format!("/hop/{n}")).collect();
        let paths: Vec<_> = a.requests().into_iter().map(|(path, _)| path).collect();
        assert_eq!(paths, hops);
        for (path, headers) in a.requests() {
            assert_eq!(headers["authorization"], "Bearer token-1", "{path}");
        }

        let long = client.get(a.url("/long/0")).send().await;
        assert!(long.as_ref().map_or(true, |r| r.status().is_redirection()), "{long:?}");
        assert!(a.requests_for("/long/10").len() == 1 && a.requests_for("/long/11").is_empty());
    }

    #[cfg(feature = "dpop")]
    #[tokio::test]
    async fn with_dpop_a_redirect_to_another_origin_sends_it_no_proof() {
        use super::dpop::{dpop_layer, proof_claims, tokens_issued};

        let (servers, layer) = dpop_layer().await;
        let (a, b) = origins(true).await;

        let response = client(&layer).get(a.url("/start")).send().await.unwrap();

        assert_eq!(response.status(), 302, "the redirect goes back to the caller");
        assert_eq!(b.requests().len(), 0, "B gets nothing, no proof");
        let start = a.requests_for("/start");
        assert_eq!(start.len(), 1);
        assert_eq!(proof_claims(&start[0])["htu"], a.url("/start"));
        assert_eq!((tokens_issued(&servers), layer.stats().invalidations), (1, 0));
    }

    /// Unlike the default policy, which sends `/new` the proof made for `/old`: each hop goes
    /// through the middleware and gets a proof of its own.
    #[cfg(feature = "dpop")]
    #[tokio::test]
    async fn with_dpop_a_redirect_within_the_origin_is_followed_with_a_proof_for_the_new_url() {
        use super::dpop::{dpop_layer, proof_claims, tokens_issued};

        let (servers, layer) = dpop_layer().await;
        let (a, b) = origins(false).await;

        let response = client(&layer).get(a.url("/old")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        let new = &a.requests_for("/new")[0];
        let token = layer.token().await.unwrap();
        assert_eq!(new["authorization"], format!("DPoP {}", token.secret()).as_str());
        assert_eq!(proof_claims(new)["htu"], a.url("/new"));
        let old = &a.requests_for("/old")[0];
        assert_ne!(proof_claims(new)["jti"], proof_claims(old)["jti"], "a new proof");
        assert_eq!((tokens_issued(&servers), b.requests().len()), (1, 0));
    }

    /// A route's token stays on its route's paths: the hop to `/billing` takes billing's.
    #[tokio::test]
    async fn a_redirect_to_another_route_of_the_origin_takes_that_routes_token() {
        use super::common::named_tokens::{naming_token_server, orders_and_billing};

        let tokens = naming_token_server().await;
        let (a, _b) = origins(false).await;
        let config = orders_and_billing(tokens.config(), &a.url).build().unwrap();
        let layer = ClientCredentialsLayer::new(config);

        let response = client(&layer).get(a.url("/orders/old")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        assert_eq!(a.requests_for("/orders/old")[0]["authorization"], "Bearer orders-1");
        assert_eq!(a.requests_for("/billing/new")[0]["authorization"], "Bearer billing-2");
    }
}
