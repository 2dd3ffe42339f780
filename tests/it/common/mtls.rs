//! Mutual TLS on loopback: a test certificate authority made at run time with rcgen, and a
//! rustls token endpoint that requires a client certificate from it and issues tokens only to
//! the one it has registered (RFC 8705 §2), recording what each token request presented.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::serve::IncomingStream;
use axum::{Form, Router};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower_client_credentials::ClientCertificate;

use super::Reply;

/// A certificate and its key.
pub struct Issued {
    pub certificate: CertificateDer<'static>,
    pub certificate_pem: String,
    pub key: KeyPair,
}

impl Issued {
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate::from_pem(&self.certificate_pem, self.key_pem()).unwrap()
    }
}

/// A test certificate authority, whose certificates name `client_id` as their subject.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    client_id: String,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new(name: &str, client_id: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        let (pem, der) = (certificate.pem(), certificate.der().clone());
        Self { issuer: Issuer::new(params, key), client_id: client_id.to_owned(), pem, der }
    }

    pub fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, &self.client_id);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued { certificate_pem: certificate.pem(), certificate: certificate.der().clone(), key }
    }

    /// A client certificate.
    pub fn client(&self) -> Issued {
        self.issue(&[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A token request as the server saw it: its form, and the client certificate of its
/// connection.
#[derive(Clone)]
pub struct Request {
    pub form: Vec<(String, String)>,
    pub peer_certificate: Option<Vec<u8>>,
}

/// How the endpoint answers the registered client's `n`th token request (from 1) with `form`.
pub type Answer = fn(usize, &[(String, String)]) -> Reply;

struct Seen {
    client_id: String,
    answer: Answer,
    /// The DER of the one certificate the endpoint takes as the client's.
    registered: Mutex<Vec<u8>>,
    /// Failed handshakes, as rustls describes them.
    handshake_failures: Mutex<Vec<String>>,
    /// Token requests, in order.
    requests: Mutex<Vec<Request>>,
}

/// A token endpoint on 127.0.0.1 over TLS that requires a client certificate from the test CA.
pub struct MtlsServer {
    pub url: String,
    seen: Arc<Seen>,
}

impl MtlsServer {
    /// Takes `registered` as `client_id`'s certificate; answers that client with `answer`, and
    /// any other with `invalid_client`.
    pub async fn start(ca: &TestCa, registered: &Issued, client_id: &str, answer: Answer) -> Self {
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
        let seen = Arc::new(Seen {
            client_id: client_id.to_owned(),
            answer,
            registered: Mutex::new(registered.certificate.to_vec()),
            handshake_failures: Mutex::default(),
            requests: Mutex::default(),
        });
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TlsListener { tcp, acceptor, seen: Arc::clone(&seen) };
        let router = Router::new().route("/token", post(issue)).with_state(Arc::clone(&seen));
        let service = router.into_make_service_with_connect_info::<PeerCertificate>();
        tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        Self { url, seen }
    }

    /// From now on the client's certificate is `issued`; the one before is refused.
    pub fn register(&self, issued: &Issued) {
        *self.seen.registered.lock().unwrap() = issued.certificate.to_vec();
    }

    pub fn handshake_failures(&self) -> Vec<String> {
        self.seen.handshake_failures.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// The client certificate presented with each token request, in order.
    pub fn presented(&self) -> Vec<Option<Vec<u8>>> {
        self.requests().into_iter().map(|request| request.peer_certificate).collect()
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
    State(seen): State<Arc<Seen>>,
    ConnectInfo(PeerCertificate(peer)): ConnectInfo<PeerCertificate>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let n = {
        let mut requests = seen.requests.lock().unwrap();
        requests.push(Request { form: form.clone(), peer_certificate: peer.clone() });
        requests.len()
    };
    let client_id = form.iter().find(|(name, _)| name == "client_id").map(|(_, v)| v.as_str());
    // RFC 8705 §2: the client is the one whose registered certificate was presented.
    let registered = seen.registered.lock().unwrap().clone();
    let reply = if client_id == Some(seen.client_id.as_str()) && peer == Some(registered) {
        (seen.answer)(n, &form)
    } else {
        Reply::json(401, r#"{"error":"invalid_client"}"#)
    };
    reply.into_response()
}
