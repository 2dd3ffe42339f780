//! URLs over 64 KiB through reqwest-middleware: more than `http::Uri` holds. Whatever reqwest
//! then does, the request goes with the token of its route (or of its allowed origin) or not at
//! all: never with another route's token, and no token is fetched for it.

use crate::common;

use std::sync::{Arc, Mutex};

use common::named_tokens::{asked, naming_token_server};
use common::{reqwest_client, TokenServer};
use tokio::net::TcpListener;
use tower_client_credentials::{ClientCredentialsLayer, TokenParams};

type Seen = Arc<Mutex<Vec<Option<String>>>>;

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
    let layer = ClientCredentialsLayer::new(tokens.config().allowed_origin(&api).build().unwrap());
    let client = reqwest_client(&layer);
    let long = format!("{api}/things?q={}", "a".repeat(70 * 1024));
    let answer = client.get(&long).send().await;
    let seen = seen.lock().unwrap().clone();
    match answer {
        Ok(_) => assert_eq!(seen, [Some("Bearer token-1".to_owned())]),
        Err(error) => assert!(seen.is_empty(), "not sent: {error}"),
    }
}
