//! Mutual TLS client authentication (RFC 8705 §2) against a rustls token endpoint on loopback
//! that requires a client certificate: a test CA, made at run time with rcgen, issues the
//! server's certificate and the client's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Form, Json, Router};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower_client_credentials::{
    AuthMethod, ClientCertificate, ClientCredentialsLayer, Config, TokenErrorKind,
};

const CLIENT_ID: &str = "mtls-client";

/// A certificate and its key, as PEM.
struct Issued {
    certificate: CertificateDer<'static>,
    certificate_pem: String,
    key: KeyPair,
}

impl Issued {
    fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate::from_pem(&self.certificate_pem, self.key_pem()).unwrap()
    }
}

/// A test certificate authority.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        let (pem, der) = (certificate.pem(), certificate.der().clone());
        Self { issuer: Issuer::new(params, key), pem, der }
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, CLIENT_ID);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued { certificate_pem: certificate.pem(), certificate: certificate.der().clone(), key }
    }
}

/// A token request as the server saw it: its form, and the client certificate of its
/// connection.
#[derive(Clone)]
struct Request {
    form: Vec<(String, String)>,
    peer_certificate: Option<Vec<u8>>,
}

/// The DER of the certificate the server takes as the client's.
type Registered = Arc<Mutex<Vec<u8>>>;

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// Failed handshakes, as rustls describes them.
    handshake_failures: Mutex<Vec<String>>,
    /// Token requests, in order.
    requests: Mutex<Vec<Request>>,
}

/// A token endpoint on 127.0.0.1 over TLS that requires a client certificate from the test CA,
/// and issues a token to the client whose certificate it registered.
struct MtlsServer {
    url: String,
    seen: Arc<Seen>,
    registered: Registered,
}

impl MtlsServer {
    async fn start(ca: &TestCa, registered: &Issued) -> Self {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(ca.der.clone()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let server = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let key = PrivatePkcs8KeyDer::from(server.key.serialize_der());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server.certificate.clone(), ca.der.clone()], key.into())
            .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/token", tcp.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let listener =
            TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)), seen: seen.clone() };
        let registered = Arc::new(Mutex::new(registered.certificate.to_vec()));
        let state = (seen.clone(), registered.clone());
        let router = Router::new().route("/token", post(issue)).with_state(state);
        let service = router.into_make_service_with_connect_info::<PeerCertificate>();
        tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        Self { url, seen, registered }
    }

    /// From now on, the client's certificate is `issued`.
    fn register(&self, issued: &Issued) {
        *self.registered.lock().unwrap() = issued.certificate.to_vec();
    }

    fn handshake_failures(&self) -> Vec<String> {
        self.seen.handshake_failures.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().unwrap().clone()
    }
}

/// A TCP listener that hands axum the connections whose TLS handshake succeeded.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    seen: Arc<Seen>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let (tcp, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
            match self.acceptor.accept(tcp).await {
                Ok(tls) => return (tls, addr),
                Err(error) => self.seen.handshake_failures.lock().unwrap().push(error.to_string()),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The client certificate of a connection, for the handler.
#[derive(Clone)]
struct PeerCertificate(Option<Vec<u8>>);

impl Connected<IncomingStream<'_, TlsListener>> for PeerCertificate {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        let (_, connection) = stream.io().get_ref();
        Self(connection.peer_certificates().and_then(|chain| chain.first()).map(|c| c.to_vec()))
    }
}

async fn issue(
    State((seen, registered)): State<(Arc<Seen>, Registered)>,
    ConnectInfo(PeerCertificate(peer)): ConnectInfo<PeerCertificate>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let request = Request { form: form.clone(), peer_certificate: peer.clone() };
    seen.requests.lock().unwrap().push(request);
    let client_id = form.iter().find(|(name, _)| name == "client_id").map(|(_, v)| v.as_str());
    // RFC 8705 §2: the client is the one whose registered certificate was presented.
    if client_id == Some(CLIENT_ID) && peer == Some(registered.lock().unwrap().clone()) {
        Json(serde_json::json!({"access_token": "mtls-token", "token_type": "Bearer"}))
            .into_response()
    } else {
        let body = serde_json::json!({"error": "invalid_client"});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

#[tokio::test]
async fn with_its_certificate_the_client_gets_a_token_without_a_secret() {
    let ca = TestCa::new("test CA");
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = MtlsServer::start(&ca, &client).await;
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate(client.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);

    let token = ClientCredentialsLayer::new(config).token().await.unwrap();

    assert_eq!(token.secret(), "mtls-token");
    let request = &server.requests()[0];
    assert_eq!(request.peer_certificate.as_deref(), Some(client.certificate.as_ref()));
    let names: Vec<&str> = request.form.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["grant_type", "client_id"], "client_id in the body and no secret");
}

#[tokio::test]
async fn without_a_certificate_the_handshake_fails_with_a_clear_error() {
    let ca = TestCa::new("test CA");
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = MtlsServer::start(&ca, &client).await;
    let config = Config::builder(&server.url, CLIENT_ID, "a-secret")
        .auth_method(AuthMethod::ClientSecretPost)
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.unwrap_err();

    assert!(matches!(error.kind(), TokenErrorKind::Connect | TokenErrorKind::Transport), "{error}");
    let message = error.to_string();
    assert!(message.contains(&server.url), "{message}");
    assert!(message.contains("CertificateRequired"), "{message}");
    assert!(server.requests().is_empty());
    let failures = server.handshake_failures();
    assert!(failures[0].contains("peer sent no certificates"), "{failures:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let ca = TestCa::new("test CA");
    let registered = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = MtlsServer::start(&ca, &registered).await;
    let stranger = TestCa::new("another CA").issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate(stranger.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    let error = ClientCredentialsLayer::new(config).token().await.unwrap_err();

    assert!(error.to_string().contains("UnknownCA"), "{error}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn discovery_sends_a_client_with_a_certificate_to_the_mtls_alias() {
    let ca = TestCa::new("test CA");
    let client = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = MtlsServer::start(&ca, &client).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/no-certificates-here"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "tls_client_auth"],
        "mtls_endpoint_aliases": {"token_endpoint": server.url},
    });
    let router = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(move || async move { Json(document) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let metadata = Config::discover(&issuer).await.unwrap();
    let config = metadata
        .builder_without_secret(CLIENT_ID)
        .client_certificate(client.client_certificate())
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();

    assert_eq!(config.token_url().as_str(), server.url);
    assert_eq!(config.auth_method(), AuthMethod::TlsClientAuth);
    let token = ClientCredentialsLayer::new(config).token().await.unwrap();
    assert_eq!(token.secret(), "mtls-token");
}

/// cert-manager renews the client certificate in place: the next token request presents the
/// new one, over a new connection, without a restart.
#[tokio::test]
async fn a_client_certificate_renewed_in_its_files_is_presented_at_the_next_token_request() {
    let ca = TestCa::new("test CA");
    let first = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    let server = MtlsServer::start(&ca, &first).await;
    let dir = std::env::temp_dir().join(format!("tcc-mtls-renewal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |issued: &Issued| {
        for (name, content) in
            [("tls.crt", issued.certificate_pem.clone()), ("tls.key", issued.key_pem())]
        {
            std::fs::write(dir.join(format!("{name}.new")), content).unwrap();
            std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
        }
    };
    write(&first);
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate_files(dir.join("tls.crt"), dir.join("tls.key"))
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    let layer = ClientCredentialsLayer::new(config);
    layer.token().await.unwrap();

    let renewed = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
    write(&renewed);
    server.register(&renewed);
    // Past the token's default lifetime, then real time again: the connection needs it.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(300)).await;
    tokio::time::resume();
    layer.token().await.expect("the renewed certificate");

    let presented: Vec<_> = server.requests().into_iter().map(|r| r.peer_certificate).collect();
    assert_eq!(presented, [Some(first.certificate.to_vec()), Some(renewed.certificate.to_vec())]);
    std::fs::remove_dir_all(&dir).unwrap();
}
