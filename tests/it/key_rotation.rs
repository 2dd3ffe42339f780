//! A signing key or client certificate rotated in its files reaches every token cache that
//! uses it (DESIGN.md §4, "Credentials that rotate"): the layer's own token, a token for other
//! `TokenParams` of the same layer (§11), and the token of a second layer built from a clone
//! of the same `Config`. Each keeps its own record of the files' modification times, so one
//! cache noticing the change never hides it from the others (STYLE.md 16).
//!
//! The token endpoints on loopback trust one key (or certificate) at a time and revoke the old
//! one at the rotation: a token request that still signs with (or presents) the old one is
//! answered `401 invalid_client`.

use crate::common;
use common::Folder;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Received, Reply, TokenServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::time::advance;
use tower_client_credentials::{
    AccessToken, ClientCredentialsLayer, Config, SigningAlgorithm, TokenError, TokenParams,
};

const CLIENT_ID: &str = "rotating-client";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tokens live an hour; each round moves the clock past that.
const LIFETIME: u64 = 3600;
const PAST_THE_LIFETIME: Duration = Duration::from_secs(LIFETIME + 1);

/// The three token caches of the tests: a layer's own token, that layer's token for the
/// audience `orders`, and the own token of a second layer made from a clone of the config.
struct ThreeCaches {
    layer: ClientCredentialsLayer,
    other: ClientCredentialsLayer,
    orders: TokenParams,
}

impl ThreeCaches {
    fn new(config: Config) -> Self {
        let other = ClientCredentialsLayer::new(config.clone());
        let layer = ClientCredentialsLayer::new(config);
        Self { layer, other, orders: TokenParams::new().audience("orders") }
    }

    /// A token from each cache in turn: the token, or the error's text.
    async fn tokens(&self) -> [Result<String, String>; 3] {
        let text = |token: Result<_, TokenError>| {
            token
                .map(|t: AccessToken| t.secret().to_owned())
                .map_err(|e| format!("{e} ({:?})", e.oauth_error()))
        };
        [
            text(self.layer.token().await),
            text(self.layer.token_for(&self.orders).await),
            text(self.other.token().await),
        ]
    }
}

/// The token a server issues for a request: `<audience>-<n>`, valid for an hour.
fn token_for(n: usize, form: &[(String, String)]) -> Reply {
    let audience = form.iter().find(|(name, _)| name == "audience").map(|(_, v)| v.as_str());
    let token = format!("{}-{n}", audience.unwrap_or("default"));
    Reply::json(
        200,
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{LIFETIME}}}"#),
    )
}

fn invalid_client() -> Reply {
    Reply::json(401, r#"{"error":"invalid_client","error_description":"unknown key"}"#)
}

/// A P-256 key pair: the private key in PEM as the client's file holds it, and the public key
/// as the server holds it.
struct SigningKey {
    private_pem: String,
    public: DecodingKey,
}

impl SigningKey {
    fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
        Self { private_pem: key.serialize_pem(), public }
    }
}

/// What the token endpoint knows of the client's keys, and what it saw.
struct KeyRegistry {
    /// Every key the client ever had, by name, to tell which one signed an assertion.
    keys: Vec<(&'static str, DecodingKey)>,
    /// The one key the endpoint accepts now; the others are revoked.
    trusted: &'static str,
    /// The name of the key that signed each token request, in order (`"none"` if none did).
    signed_by: Vec<&'static str>,
}

impl KeyRegistry {
    /// The key among `keys` whose signature `assertion` carries.
    fn signer(&self, assertion: &str) -> &'static str {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        validation.validate_exp = false; // the signature is what this endpoint is about
        let verifies = |key| jsonwebtoken::decode::<serde_json::Value>(assertion, key, &validation);
        let signer = self.keys.iter().find(|(_, key)| verifies(key).is_ok());
        signer.map_or("none", |(name, _)| name)
    }
}

/// A token endpoint that issues a token only to an assertion signed by the trusted key.
async fn key_checking_token_server(registry: Arc<Mutex<KeyRegistry>>) -> TokenServer {
    TokenServer::start_judging(move |n, received: &Received| {
        let mut registry = registry.lock().unwrap();
        let assertion = (received.param("client_id") == Some(CLIENT_ID)
            && received.param("client_assertion_type") == Some(ASSERTION_TYPE))
        .then(|| received.param("client_assertion"))
        .flatten();
        let signer = assertion.map_or("none", |assertion| registry.signer(assertion));
        registry.signed_by.push(signer);
        if signer == registry.trusted {
            token_for(n, &received.form)
        } else {
            invalid_client()
        }
    })
    .await
}

/// The operator replaces the signing key in its file and the endpoint revokes the old key.
/// Over the three rounds that follow, each of the three caches needs a new token once per
/// round: all nine token requests must be signed with the new key, and every cache gets its
/// token.
#[tokio::test(start_paused = true)]
async fn a_rotated_signing_key_signs_the_next_token_request_of_every_cache() {
    let (first, second) = (SigningKey::generate(), SigningKey::generate());
    let registry = Arc::new(Mutex::new(KeyRegistry {
        keys: vec![("first", first.public), ("second", second.public)],
        trusted: "first",
        signed_by: Vec::new(),
    }));
    let tokens = key_checking_token_server(registry.clone()).await;
    let folder = Folder::new("key-rotation-every-cache");
    let file = folder.path("signing.key");
    common::rotate(&file, &first.private_pem);
    let config = Config::builder_without_secret(&tokens.url, CLIENT_ID)
        .client_key_file(&file, SigningAlgorithm::Es256)
        .build()
        .unwrap();
    let caches = ThreeCaches::new(config);

    let before = caches.tokens().await;
    assert_eq!(before, [Ok("default-1".into()), Ok("orders-2".into()), Ok("default-3".into())]);
    assert_eq!(registry.lock().unwrap().signed_by, ["first"; 3]);

    common::rotate(&file, &second.private_pem);
    registry.lock().unwrap().trusted = "second";
    let mut failures = Vec::new();
    for round in 1..=3 {
        advance(PAST_THE_LIFETIME).await;
        let names = ["the layer's own token", "the orders token", "the other layer's token"];
        for (cache, token) in names.into_iter().zip(caches.tokens().await) {
            if let Err(error) = token {
                failures.push(format!("round {round}, {cache}: {error}"));
            }
        }
    }

    let after = registry.lock().unwrap().signed_by[3..].to_vec();
    assert_eq!(after, ["second"; 9], "the key that signed each token request after the rotation");
    assert_eq!(failures, Vec::<String>::new(), "no cache fails");
    assert_eq!(tokens.count(), 12);
}

/// Certificates for mutual TLS (RFC 8705), made at run time with rcgen, and a token endpoint
/// on loopback that requires one.
mod mtls {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::extract::connect_info::{ConnectInfo, Connected};
    use axum::extract::State;
    use axum::response::{IntoResponse, Response};
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

    use super::{invalid_client, token_for, CLIENT_ID};

    /// A certificate and its key, as PEM.
    pub(super) struct Issued {
        pub(super) der: CertificateDer<'static>,
        pub(super) certificate_pem: String,
        pub(super) key_pem: String,
    }

    /// A test certificate authority.
    pub(super) struct TestCa {
        issuer: Issuer<'static, KeyPair>,
        pub(super) pem: String,
        der: CertificateDer<'static>,
    }

    impl TestCa {
        pub(super) fn new() -> Self {
            let mut params = CertificateParams::new(Vec::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, "test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            let certificate = params.self_signed(&key).unwrap();
            let (pem, der) = (certificate.pem(), certificate.der().clone());
            Self { issuer: Issuer::new(params, key), pem, der }
        }

        pub(super) fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, CLIENT_ID);
            params.extended_key_usages = vec![purpose];
            let key = KeyPair::generate().unwrap();
            let certificate = params.signed_by(&key, &self.issuer).unwrap();
            Issued {
                der: certificate.der().clone(),
                certificate_pem: certificate.pem(),
                key_pem: key.serialize_pem(),
            }
        }

        pub(super) fn client(&self) -> Issued {
            self.issue(&[], ExtendedKeyUsagePurpose::ClientAuth)
        }
    }

    #[derive(Default)]
    struct Seen {
        /// The client certificate presented with each token request, in order.
        presented: Mutex<Vec<Option<Vec<u8>>>>,
        /// The one certificate the endpoint takes as the client's.
        registered: Mutex<Vec<u8>>,
    }

    /// A token endpoint over TLS that requires a certificate from the test CA and issues a
    /// token only to the registered one.
    pub(super) struct MtlsServer {
        pub(super) url: String,
        seen: Arc<Seen>,
    }

    impl MtlsServer {
        pub(super) async fn start(ca: &TestCa, registered: &Issued) -> Self {
            let provider = Arc::new(aws_lc_rs::default_provider());
            let mut roots = RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .unwrap();
            let server = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
            let key = KeyPair::from_pem(&server.key_pem).unwrap();
            let key = PrivatePkcs8KeyDer::from(key.serialize_der());
            let tls = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![server.der.clone(), ca.der.clone()], key.into())
                .unwrap();
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("https://{}/token", tcp.local_addr().unwrap());
            let seen = Arc::new(Seen::default());
            *seen.registered.lock().unwrap() = registered.der.to_vec();
            let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)) };
            let router = Router::new().route("/token", post(issue)).with_state(seen.clone());
            let service = router.into_make_service_with_connect_info::<PeerCertificate>();
            tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
            Self { url, seen }
        }

        /// From now on the client's certificate is `issued`; the one before is refused.
        pub(super) fn register(&self, issued: &Issued) {
            *self.seen.registered.lock().unwrap() = issued.der.to_vec();
        }

        pub(super) fn presented(&self) -> Vec<Option<Vec<u8>>> {
            self.seen.presented.lock().unwrap().clone()
        }
    }

    /// A TCP listener that hands axum the connections whose TLS handshake succeeded.
    struct TlsListener {
        tcp: TcpListener,
        acceptor: TlsAcceptor,
    }

    impl axum::serve::Listener for TlsListener {
        type Io = tokio_rustls::server::TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, SocketAddr) {
            loop {
                let (tcp, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
                if let Ok(tls) = self.acceptor.accept(tcp).await {
                    return (tls, addr);
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
            let chain = connection.peer_certificates();
            Self(chain.and_then(|chain| chain.first()).map(|c| c.to_vec()))
        }
    }

    async fn issue(
        State(seen): State<Arc<Seen>>,
        ConnectInfo(PeerCertificate(peer)): ConnectInfo<PeerCertificate>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> Response {
        seen.presented.lock().unwrap().push(peer.clone());
        let client_id = form.iter().find(|(name, _)| name == "client_id").map(|(_, v)| v.as_str());
        let registered = seen.registered.lock().unwrap().clone();
        let reply = if client_id == Some(CLIENT_ID) && peer == Some(registered) {
            token_for(seen.presented.lock().unwrap().len(), &form)
        } else {
            invalid_client()
        };
        let mut response = axum::http::Response::builder().status(reply.status);
        for (name, value) in reply.headers {
            response = response.header(name, value);
        }
        response.body(axum::body::Body::from(reply.body)).unwrap().into_response()
    }
}

/// cert-manager renews the client certificate in its files and the endpoint registers the new
/// one: over the three rounds that follow, each of the three caches presents the new
/// certificate (9 of 9 token requests) and gets its token.
#[tokio::test]
async fn a_renewed_client_certificate_is_presented_by_every_cache() {
    let ca = mtls::TestCa::new();
    let (first, renewed) = (ca.client(), ca.client());
    let server = mtls::MtlsServer::start(&ca, &first).await;
    let folder = Folder::new("certificate-rotation-every-cache");
    let (chain, key) = (folder.path("tls.crt"), folder.path("tls.key"));
    common::rotate(&chain, &first.certificate_pem);
    common::rotate(&key, &first.key_pem);
    let config = Config::builder_without_secret(&server.url, CLIENT_ID)
        .client_certificate_files(&chain, &key)
        .tls_root_certificate(ca.pem.clone())
        .build()
        .unwrap();
    let caches = ThreeCaches::new(config);

    let before = caches.tokens().await;
    assert_eq!(before, [Ok("default-1".into()), Ok("orders-2".into()), Ok("default-3".into())]);

    common::rotate(&chain, &renewed.certificate_pem);
    common::rotate(&key, &renewed.key_pem);
    server.register(&renewed);
    let mut failures = Vec::new();
    for round in 1..=3 {
        // Past the tokens' lifetime, then real time again: TLS handshakes on loopback must
        // not race a paused clock's timeouts.
        common::jump(PAST_THE_LIFETIME).await;
        let names = ["the layer's own token", "the orders token", "the other layer's token"];
        for (cache, token) in names.into_iter().zip(caches.tokens().await) {
            if let Err(error) = token {
                failures.push(format!("round {round}, {cache}: {error}"));
            }
        }
    }

    let name = |presented: &Option<Vec<u8>>| match presented.as_deref() {
        Some(der) if der == first.der.as_ref() => "first",
        Some(der) if der == renewed.der.as_ref() => "renewed",
        Some(_) => "another",
        None => "none",
    };
    let presented: Vec<&str> = server.presented().iter().map(name).collect();
    assert_eq!(presented[..3], ["first"; 3]);
    assert_eq!(presented[3..], ["renewed"; 9], "the certificate of each token request after");
    assert_eq!(failures, Vec::<String>::new(), "no cache fails");
}
