//! A fleet shares one token through a real `redis-server` on loopback (DESIGN.md §8).
//!
//! The fleet tests run replicas as separate OS processes: this test binary started again with
//! `--ignored --exact redis::replica_process` and its orders in the environment.

use crate::common;
use crate::setup;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener as StdListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{api_client, jump, ApiServer, Reply, TokenServer, CLIENT_ID, CLIENT_SECRET};
use http_body_util::Empty;
use hyper::body::Bytes;
use tower_client_credentials::store::{RedisStore, StoreFuture, TokenStore};
use tower_client_credentials::{ClientCredentialsLayer, Config, ErrorClass, TokenErrorKind};

/// A `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    port: u16,
    process: Child,
}

impl RedisServer {
    fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Self {
        let process = Command::new(setup::redis_server())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot run redis-server");
        let server = Self { port, process };
        for _ in 0..500 {
            if server.ping() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) -> u16 {
        let _ = self.process.kill();
        let _ = self.process.wait();
        self.port
    }

    /// The raw values under the crate's keys, for tampering with.
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn shared_layer(tokens: &TokenServer, redis: &RedisServer, secret: &str) -> ClientCredentialsLayer {
    let config = Config::builder(&tokens.url, CLIENT_ID, secret)
        .refresh_ahead(Duration::from_millis(300))
        .expiry_margin(Duration::from_millis(100))
        .request_timeout(Duration::from_secs(2))
        .store(RedisStore::new(&redis.url()).unwrap().prefix("test:"))
        .build()
        .unwrap();
    ClientCredentialsLayer::new(config)
}

async fn token_key(connection: &mut redis::aio::MultiplexedConnection) -> String {
    let keys: Vec<String> =
        redis::cmd("KEYS").arg("test:token:*").query_async(connection).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().unwrap()
}

/// Replicas as OS processes: each waits for "go" on a socket, then does its part and prints
/// one line per token it used.
struct Fleet {
    replicas: Vec<Child>,
    go: Vec<TcpStream>,
}

impl Fleet {
    fn start(count: usize, token_url: &str, redis_url: &str, run_for: Duration) -> Self {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let barrier = listener.local_addr().unwrap().to_string();
        let replicas = (0..count)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--ignored",
                        "--exact",
                        // The test's path in the one test binary (tests/it/main.rs).
                        "redis::replica_process",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env("REPLICA_TOKEN_URL", token_url)
                    .env("REPLICA_REDIS_URL", redis_url)
                    .env("REPLICA_BARRIER", &barrier)
                    .env("REPLICA_RUN_MS", run_for.as_millis().to_string())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let go = (0..count).map(|_| listener.accept().unwrap().0).collect();
        Self { replicas, go }
    }

    /// Lets every replica go at once; returns each one's output lines once it exits.
    fn run(mut self) -> Vec<Vec<String>> {
        for stream in &mut self.go {
            stream.write_all(b"!").unwrap();
        }
        self.replicas
            .into_iter()
            .map(|mut replica| {
                let lines = BufReader::new(replica.stdout.take().unwrap())
                    .lines()
                    .map(Result::unwrap)
                    .filter_map(|line| line.split_once("used ").map(|(_, token)| token.to_owned()))
                    .collect();
                assert!(replica.wait().unwrap().success(), "a replica failed");
                lines
            })
            .collect()
    }
}

/// The replica's side of [`Fleet`]. Ignored in a normal run: it needs the fleet's orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the fleet tests as a separate process"]
async fn replica_process() {
    let var = |name| std::env::var(name).expect("started by a fleet test");
    let config = Config::builder(var("REPLICA_TOKEN_URL"), CLIENT_ID, CLIENT_SECRET)
        .refresh_ahead(Duration::from_millis(300))
        .expiry_margin(Duration::from_millis(100))
        .store(RedisStore::new(&var("REPLICA_REDIS_URL")).unwrap().prefix("test:"))
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    let mut go = TcpStream::connect(var("REPLICA_BARRIER")).unwrap();
    go.read_exact(&mut [0]).unwrap();

    let run_for = Duration::from_millis(var("REPLICA_RUN_MS").parse().unwrap());
    let until = tokio::time::Instant::now() + run_for;
    let mut last = String::new();
    loop {
        let token = layer.token().await.expect("every request gets a token");
        if token.secret() != last {
            last = token.secret().to_owned();
            println!("used {last}");
        }
        if tokio::time::Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_starting_cold_at_once_make_one_token_request() {
    let redis = RedisServer::start();
    // Latency keeps every replica's first request overlapping the winner's token request.
    let delay = Duration::from_millis(100);
    let tokens = TokenServer::start_with(move |n| Reply { delay, ..Reply::token(n, 3600) }).await;
    let fleet = Fleet::start(8, &tokens.url, &redis.url(), Duration::ZERO);
    let used = tokio::task::spawn_blocking(move || fleet.run()).await.unwrap();

    assert_eq!(tokens.count(), 1, "one token request for eight replicas");
    assert!(used.iter().all(|lines| lines == &["token-1"]), "{used:?}");
    println!("8 cold processes: {} token request(s)", tokens.count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_make_one_token_request_per_lifetime() {
    let redis = RedisServer::start();
    // 2 s tokens, refreshed 0.3 s (and up to 30 ms of jitter) before expiry: one every ~1.7 s.
    let tokens = TokenServer::start_with(|n| Reply::token(n, 2)).await;
    let run_for = Duration::from_millis(6_500);
    let fleet = Fleet::start(8, &tokens.url, &redis.url(), run_for);
    let used = tokio::task::spawn_blocking(move || fleet.run()).await.unwrap();

    // At t = 0, ~1.7, ~3.4 and ~5.1 s: 4, where replicas on their own would make 8 × 4 = 32.
    let count = tokens.count();
    println!("8 processes over 6.5 s of 2 s tokens: {count} token requests");
    assert!((3..=5).contains(&count), "{count} token requests");
    assert!(used.iter().all(|lines| !lines.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_working_while_redis_is_down_and_share_again_after() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start_with(|n| Reply::token(n, 1)).await;
    let replicas: Vec<_> = (0..4).map(|_| shared_layer(&tokens, &redis, CLIENT_SECRET)).collect();
    let phase = |seconds: u64| {
        let replicas = replicas.clone();
        async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while tokio::time::Instant::now() < until {
                for replica in &replicas {
                    replica.token().await.expect("every request gets a token");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    phase(2).await;
    let shared_before = tokens.count();
    let port = redis.stop();
    phase(2).await;
    let alone = tokens.count() - shared_before;
    let _redis = RedisServer::start_on(port);
    phase(2).await; // reconnect, and let the tokens fetched alone run out
    let settled = tokens.count();
    phase(3).await;
    let shared_after = tokens.count() - settled;

    println!("token requests: {shared_before} shared in 2 s, {alone} alone in 2 s, {shared_after} shared in 3 s");
    // 1 s tokens, refreshed ~0.7 s in: shared, one per refresh for all four replicas.
    assert!(shared_before <= 4, "{shared_before}");
    assert!(alone >= 4, "each replica fetched its own: {alone}");
    assert!(shared_after <= 6, "sharing resumed: {shared_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_lock_holder_is_taken_over_after_the_lock_expires() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start().await;
    tokens.hold();
    let crashing = Fleet::start(1, &tokens.url, &redis.url(), Duration::ZERO);
    let mut crashing = crashing;
    crashing.go[0].write_all(b"!").unwrap();
    tokens.wait_for_count(1).await; // it holds the lock and waits for its token
    let mut process = crashing.replicas.pop().unwrap();
    process.kill().unwrap();
    process.wait().unwrap();
    tokens.release();

    let survivor = shared_layer(&tokens, &redis, CLIENT_SECRET);
    let token = survivor.token().await.unwrap();
    assert_eq!(token.secret(), "token-2", "the survivor fetched after waiting out the lock");
    assert_eq!(tokens.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_values_are_misses_and_values_hold_no_secret_or_token() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start().await;
    let mut raw = redis.connection().await;

    assert_eq!(
        shared_layer(&tokens, &redis, CLIENT_SECRET).token().await.unwrap().secret(),
        "token-1"
    );
    let key = token_key(&mut raw).await;
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&stored);
    assert!(!text.contains("token-1") && !text.contains(CLIENT_SECRET), "{text}");
    // Another layer with the same settings takes it from Redis.
    assert_eq!(
        shared_layer(&tokens, &redis, CLIENT_SECRET).token().await.unwrap().secret(),
        "token-1"
    );
    assert_eq!(tokens.count(), 1);

    let mut tampered = stored.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("tampered", tampered, CLIENT_SECRET),
        ("garbage", b"\x01not a sealed token at all".to_vec(), CLIENT_SECRET),
        ("another secret", stored, "another-secret"),
    ];
    for (n, (case, value, secret)) in cases.into_iter().enumerate() {
        let _: () = redis::cmd("SET").arg(&key).arg(value).query_async(&mut raw).await.unwrap();
        let token = shared_layer(&tokens, &redis, secret).token().await.unwrap();
        assert_eq!(token.secret(), format!("token-{}", n + 2), "{case}: fetched its own");
    }
}

/// How many `SET` commands the server has run: each lock attempt is one.
async fn sets_run(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String =
        redis::cmd("INFO").arg("commandstats").query_async(connection).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// Waits (bounded) until Redis has run `n` `SET`s.
async fn until_sets(redis: &RedisServer, n: u64) {
    let mut connection = redis.connection().await;
    for _ in 0..1_000 {
        if sets_run(&mut connection).await >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("Redis never ran {n} SETs");
}

fn patient_layer(
    tokens: &TokenServer,
    redis: &RedisServer,
    secret: &str,
) -> ClientCredentialsLayer {
    let config = Config::builder(&tokens.url, CLIENT_ID, secret)
        .request_timeout(Duration::from_secs(30))
        .store(RedisStore::new(&redis.url()).unwrap().prefix("test:"))
        .build()
        .unwrap();
    ClientCredentialsLayer::new(config)
}

/// Far less than `patient_layer`'s `request_timeout`: waiting out the lock would take longer.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_api_rejected_is_never_taken_from_the_store_again() {
    use tower::retry::RetryLayer;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_client_credentials::RetryUnauthorized;

    let redis = RedisServer::start();
    let tokens = TokenServer::start().await;
    let api = ApiServer::start_rejecting(|auth| auth == "Bearer token-1").await;
    let replica = shared_layer(&tokens, &redis, CLIENT_SECRET);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryUnauthorized::new()))
        .service(api_client(&replica));
    let request = http::Request::get(&api.url).body(Empty::<Bytes>::new()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200, "the resend carried a new token");
    assert_eq!(api.seen(), [Some("Bearer token-1".into()), Some("Bearer token-2".into())]);

    // Another replica, cold, finds the new token in Redis, not the rejected one.
    let other = shared_layer(&tokens, &redis, CLIENT_SECRET);
    assert_eq!(other.token().await.unwrap().secret(), "token-2");
    assert_eq!(tokens.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_waiting_on_the_lock_learns_at_once_that_the_holder_failed() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start_with(|_| Reply::json(503, "down")).await;
    tokens.hold();
    let holder = patient_layer(&tokens, &redis, CLIENT_SECRET);
    let holding = tokio::spawn(async move { holder.token().await });
    tokens.wait_for_count(1).await; // it holds the lock, its request held
    let waiter = patient_layer(&tokens, &redis, CLIENT_SECRET);
    let waiting = tokio::spawn(async move { waiter.token().await });
    until_sets(&redis, 2).await; // the waiter tried the lock too
    tokens.release();

    let held = holding.await.unwrap().unwrap_err();
    let error = tokio::time::timeout(PROMPTLY, waiting).await.expect("still waiting");
    let error = error.unwrap().unwrap_err();
    assert_eq!(error.class(), held.class());
    assert_eq!(error.status(), held.status());
    assert_eq!(tokens.count(), 2, "the waiter asked on its own once the lock was gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_on_another_secret_stops_waiting_for_a_token_it_cannot_open() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start().await;
    tokens.hold();
    let old_secret = patient_layer(&tokens, &redis, CLIENT_SECRET);
    let holding = tokio::spawn(async move { old_secret.token().await });
    tokens.wait_for_count(1).await;
    let new_secret = patient_layer(&tokens, &redis, "rotated-secret");
    let waiting = tokio::spawn(async move { new_secret.token().await });
    until_sets(&redis, 2).await;
    tokens.release();

    assert_eq!(holding.await.unwrap().unwrap().secret(), "token-1");
    let token = tokio::time::timeout(PROMPTLY, waiting).await.expect("still waiting");
    assert_eq!(token.unwrap().unwrap().secret(), "token-2", "it fetched its own");
}

/// A store of the user's that panics on its first read.
#[derive(Debug)]
struct PanicsOnce {
    redis: RedisStore,
    panicked: std::sync::atomic::AtomicBool,
}

impl TokenStore for PanicsOnce {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        if !self.panicked.swap(true, std::sync::atomic::Ordering::Relaxed) {
            panic!("a bug in the user's store");
        }
        self.redis.get(key)
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> StoreFuture<'a, ()> {
        self.redis.set(key, value, ttl)
    }
    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.redis.try_lock(key, owner, ttl)
    }
    fn remove_if_equal<'a>(&'a self, key: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        self.redis.remove_if_equal(key, value)
    }
}

#[tokio::test]
async fn a_store_that_panics_once_costs_one_backoff_step_not_the_layer() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start().await;
    let store =
        PanicsOnce { redis: RedisStore::new(&redis.url()).unwrap(), panicked: false.into() };
    let config = tokens.config().store(store).build().unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let error = layer.token().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Panicked);
    assert_eq!(error.class(), ErrorClass::Transient);
    jump(Duration::from_secs(1)).await; // the first transient backoff step
    assert_eq!(layer.token().await.unwrap().secret(), "token-1");
    assert_eq!(tokens.count(), 1);
}
