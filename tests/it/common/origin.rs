//! An origin on loopback that answers each path as it is told and records the path and
//! headers of each request, for tests of where tokens and proofs go (redirects, routes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use axum::routing::any;
use axum::Router;
use tokio::net::TcpListener;

/// What an origin answers to a path.
type Answer = Arc<dyn Fn(&str) -> Response<Body> + Send + Sync>;
/// The path and headers of each request an origin received, in order.
type Log = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// A loopback server: one origin, answering as it is told and recording what it receives.
pub struct Origin {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    log: Log,
}

impl Origin {
    pub async fn start(answer: impl Fn(&str) -> Response<Body> + Send + Sync + 'static) -> Self {
        let log = Log::default();
        let answer: Answer = Arc::new(answer);
        let router = Router::new().fallback(any(record)).with_state((log.clone(), answer));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url: format!("http://{addr}"), log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The headers of each request for `path`, in order.
    pub fn requests_for(&self, path: &str) -> Vec<HeaderMap> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|(p, _)| p == path).map(|(_, headers)| headers.clone()).collect()
    }

    /// The `Authorization` of each request for `path`, in order.
    pub fn authorization_for(&self, path: &str) -> Vec<Option<String>> {
        let of = |headers: HeaderMap| {
            headers.get("authorization").map(|v| v.to_str().unwrap().to_owned())
        };
        self.requests_for(path).into_iter().map(of).collect()
    }

    /// The path and headers of every request, in order.
    pub fn requests(&self) -> Vec<(String, HeaderMap)> {
        self.log.lock().unwrap().clone()
    }
}

async fn record(
    State((log, answer)): State<(Log, Answer)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    log.lock().unwrap().push((uri.path().to_owned(), headers));
    answer(uri.path())
}

/// `302 Found` to `location`.
pub fn found(location: &str) -> Response<Body> {
    let response = Response::builder().status(StatusCode::FOUND).header("location", location);
    response.body(Body::empty()).unwrap()
}

/// `200 OK`.
pub fn ok() -> Response<Body> {
    Response::new(Body::from("ok"))
}
