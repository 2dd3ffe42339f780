//! Backoff survives the eviction of a token cache (DESIGN.md §3 and §11, STYLE.md 16): a
//! layer with `max_cached_tokens` below the number of tokens its requests ask for forgets and
//! makes caches again, and none of that may undo a backoff.
//!
//! - A transient failure (5xx, 429, a refused connection, a timeout) is about the endpoint,
//!   not one token: the whole layer backs off, so the endpoint sees one token request per
//!   backoff step whichever tokens the requests ask for and whatever the cap.
//! - A rejection is about one token request: it backs off that token only, and its backoff
//!   outlives the cache that was forgotten.
//!
//! Against a token endpoint on loopback, with the clock paused: every request below is sent
//! at the same instant unless the test moves the clock.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{api_client, get_with, ApiServer, HttpClient, Received, Reply, TokenServer};
use http_body_util::Empty;
use hyper::body::Bytes;
use tokio::time::advance;
use tower_client_credentials::{
    BoxError, ClientCredentials, ClientCredentialsLayer, ErrorClass, TokenError, TokenParams,
};

/// The audiences the requests cycle through.
const AUDIENCES: [&str; 3] = ["a", "b", "c"];

/// Sends a GET of `url` whose `TokenParams` ask for `audience`.
async fn send(
    client: &ClientCredentials<HttpClient>,
    url: &str,
    audience: &str,
) -> Result<(u16, String), BoxError> {
    let mut request = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    request.extensions_mut().insert(TokenParams::new().audience(audience));
    get_with(client, request).await
}

/// Sends `n` requests one after the other, cycling through `audiences`; each must fail with
/// the endpoint's 503.
async fn send_during_outage(
    client: &ClientCredentials<HttpClient>,
    url: &str,
    audiences: &[&str],
    n: usize,
) {
    for (i, audience) in audiences.iter().cycle().take(n).enumerate() {
        let error = send(client, url, audience).await.expect_err("no token, no request");
        let error = error.downcast_ref::<TokenError>().expect("a token error");
        assert_eq!(error.class(), ErrorClass::Transient, "request {i}: {error}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "request {i}: {error}");
    }
}

async fn unavailable_token_server() -> TokenServer {
    TokenServer::start_with(|_| Reply::json(503, r#"{"error":"temporarily_unavailable"}"#)).await
}

/// The number of token requests for each audience.
fn asked(tokens: &TokenServer) -> BTreeMap<String, usize> {
    let mut asked = BTreeMap::new();
    for received in tokens.received() {
        let audience = received.param("audience").unwrap_or("none").to_owned();
        *asked.entry(audience).or_default() += 1;
    }
    asked
}

/// Three tokens and room for two: each request's cache is one that was just forgotten (or
/// never made). The first request's 503 backs off the layer, so the 299 others, for every
/// audience, get that error without a token request; one step later (at most 1 s), one more.
#[tokio::test(start_paused = true)]
async fn an_unavailable_endpoint_is_asked_once_per_backoff_step_while_caches_are_evicted() {
    let tokens = unavailable_token_server().await;
    let api = ApiServer::start().await;
    let config = tokens.config().max_cached_tokens(2).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    send_during_outage(&client, &api.url, &AUDIENCES, 300).await;
    assert_eq!(tokens.count(), 1, "token requests for 300 requests, cap 2: {:?}", asked(&tokens));

    // Past the first step, [0.5 s, 1 s]; the second is [1 s, 2 s].
    advance(Duration::from_millis(1001)).await;
    send_during_outage(&client, &api.url, &AUDIENCES, 300).await;
    assert_eq!(tokens.count(), 2, "one more token request for the next 300");
    assert_eq!(api.seen(), [], "no request reached the API");
}

/// The same outage without a cap in the way: the figure is the layer's, not the cap's.
#[tokio::test(start_paused = true)]
async fn an_unavailable_endpoint_is_asked_once_per_backoff_step_whatever_the_token() {
    let tokens = unavailable_token_server().await;
    let api = ApiServer::start().await;
    let client = api_client(&ClientCredentialsLayer::new(tokens.config().build().unwrap()));

    send_during_outage(&client, &api.url, &AUDIENCES, 300).await;
    assert_eq!(tokens.count(), 1, "token requests for 300 requests over 3 tokens: {:?}", {
        asked(&tokens)
    });
}

/// The endpoint issues tokens for `a` and `b` and refuses `c` (`invalid_target`), with room
/// for two caches. `c`'s rejection backs off `c` for at least 2.5 s, longer than its cache
/// lives in the map: the one token request it made is the only one. Three tokens in use over
/// a cap of two push each other out, so `a` and `b` are fetched each time they come back:
/// that is the cap's price, paid in successful requests only, never in repeated failures.
#[tokio::test(start_paused = true)]
async fn a_rejected_token_stays_backed_off_when_its_cache_is_evicted() {
    let tokens =
        TokenServer::start_judging(|n, received: &Received| match received.param("audience") {
            Some("c") => Reply::json(
                400,
                r#"{"error":"invalid_target","error_description":"no such audience"}"#,
            ),
            audience => {
                let token = format!("{}-{n}", audience.unwrap_or("none"));
                Reply::json(
                    200,
                    format!(
                        r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#
                    ),
                )
            }
        })
        .await;
    let api = ApiServer::start().await;
    let config = tokens.config().max_cached_tokens(2).build().unwrap();
    let client = api_client(&ClientCredentialsLayer::new(config));

    let mut answers = BTreeMap::<String, usize>::new();
    for audience in ["c", "a", "b"].iter().cycle().take(300) {
        let answer = match send(&client, &api.url, audience).await {
            Ok((status, auth)) => format!("{status} {auth}"),
            Err(error) => match error.downcast_ref::<TokenError>() {
                Some(error) => format!("{:?} {:?}", error.class(), error.oauth_error()),
                None => error.to_string(),
            },
        };
        *answers.entry(format!("{audience}: {answer}")).or_default() += 1;
    }

    let expected =
        BTreeMap::from([("a".to_owned(), 100), ("b".to_owned(), 100), ("c".to_owned(), 1)]);
    assert_eq!(asked(&tokens), expected, "token requests by audience");
    let served = |audience: &str| {
        answers
            .iter()
            .filter(|(answer, _)| {
                answer.starts_with(&format!("{audience}: 200 Bearer {audience}-"))
            })
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert_eq!((served("a"), served("b")), (100, 100), "{answers:?}");
    assert_eq!(answers.get(r#"c: Rejected Some("invalid_target")"#), Some(&100), "{answers:?}");
}
