"""A JWT bearer token server (RFC 7523) for tests/it/jwt_bearer_interop.rs: Authlib (PyPI
`Authlib`, written independently of this crate) on Python's own HTTP server.

- The JWT bearer grant (RFC 7523 §2.1) is Authlib's `JWTBearerGrant`: Authlib finds the client
  by the assertion's `iss`, verifies its signature with the client's public key and checks
  `iss`, `aud` (the token endpoint URL), `exp` (60 s leeway, Authlib's default) and `sub` (a
  known user, or the client itself). Client `bearer-client`, key the RSA public key (PEM) in
  INTEROP_CLIENT_PUBLIC_PEM. Users: `alice@example.com`.
- The client credentials grant with Authlib's `JWTBearerClientAssertion` (RFC 7523 §2.2,
  `private_key_jwt`) for client `assertion-client`, same key, which takes only assertions
  whose `aud` is the issuer (draft-ietf-oauth-rfc7523bis) and each `jti` once. Authlib does not
  check the assertion's `typ`; the server prints it as `client_assertion typ=<typ>`.

Tokens are JWTs the server signs (HS256) with `sub` (the assertion's subject, else the client
id), `client_id`, `grant_type` and `scope`, valid for 600 s. Scopes: `api:read`, `api:write`.

Each answer of the token endpoint is printed as `token <status>`, each refusal as
`refused <error>` (with `: <description>` when
Authlib gives one). It listens on a free port of 127.0.0.1 and prints
`ready <issuer>`; the token endpoint is `<issuer>/token`. It stops when stdin closes.
"""

import json
import os
import secrets
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

JWT_BEARER = JWTBearerGrant.GRANT_TYPE
SCOPES = ["api:read", "api:write"]
USERS = {"alice@example.com"}
LIFETIME = 600

public_pem = os.environ.get("INTEROP_CLIENT_PUBLIC_PEM")
if not public_pem:
    print("INTEROP_CLIENT_PUBLIC_PEM is not set", file=sys.stderr)
    sys.exit(2)
CLIENT_KEY = RSAKey.import_key(public_pem)
TOKEN_KEY = OctKey.generate_key(256)


def log(line):
    print(line, flush=True)


class Client(ClientMixin):
    def __init__(self, client_id, grant_type, auth_method):
        self.client_id = client_id
        self.grant_type = grant_type
        self.auth_method = auth_method

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return False

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint == "token" and method == self.auth_method

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == self.grant_type


CLIENTS = {
    # JWTBearerGrant authenticates no client: the assertion is the credential.
    "bearer-client": Client("bearer-client", JWT_BEARER, "none"),
    "assertion-client": Client(
        "assertion-client", "client_credentials", JWTBearerClientAssertion.CLIENT_AUTH_METHOD
    ),
}


class Server(AuthorizationServer):
    def __init__(self, issuer):
        super().__init__(scopes_supported=SCOPES)
        self.issuer = issuer
        self.token_url = f"{issuer}/token"

    def query_client(self, client_id):
        return CLIENTS.get(client_id)

    def save_token(self, token, request):
        pass

    def send_signal(self, name, *args, **kwargs):
        pass

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        raise NotImplementedError()

    def handle_response(self, status, body, headers):
        if status >= 400:
            description = body.get("error_description")
            log(f"refused {body.get('error')}" + (f": {description}" if description else ""))
        return status, body, headers


class BearerGrant(JWTBearerGrant):
    def resolve_issuer_client(self, issuer):
        return CLIENTS.get(issuer)

    def resolve_client_public_key(self, client):
        return CLIENT_KEY

    def authenticate_user(self, subject):
        # A known user, or the client itself (found by `iss` before this is asked).
        if subject in USERS or subject == self.request.client.get_client_id():
            return subject
        return None

    def has_granted_permission(self, client, user):
        return True

    def get_audiences(self):
        return [self.server.token_url]


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [JWTBearerClientAssertion.CLIENT_AUTH_METHOD]


class IssuerAudienceAssertion(JWTBearerClientAssertion):
    """`private_key_jwt` with the issuer as the only audience, each `jti` once."""

    def __init__(self, issuer):
        super().__init__()
        self.issuer = issuer
        self.seen = set()
        self.lock = threading.Lock()

    def get_audiences(self):
        return [self.issuer]

    def extract_assertion(self, assertion):
        headers, claims = super().extract_assertion(assertion)
        log(f"client_assertion typ={headers.get('typ')}")
        return headers, claims

    def validate_jti(self, claims, jti):
        with self.lock:
            if (claims["sub"], jti) in self.seen:
                return False
            self.seen.add((claims["sub"], jti))
            return True

    def resolve_client_public_key(self, client):
        return CLIENT_KEY


def access_token(client, grant_type, user, scope):
    now = int(time.time())
    claims = {
        "sub": user or client.get_client_id(),
        "client_id": client.get_client_id(),
        "grant_type": grant_type,
        "scope": scope,
        "iat": now,
        "exp": now + LIFETIME,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode({"alg": "HS256"}, claims, TOKEN_KEY)


class FormPayload(OAuth2Payload):
    def __init__(self, lists):
        self._lists = defaultdict(list, lists)
        self._data = {name: values[0] for name, values in lists.items()}

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._lists


class FormRequest(OAuth2Request):
    def __init__(self, uri, headers, lists):
        super().__init__("POST", uri, headers=headers)
        self.payload = FormPayload(lists)

    @property
    def args(self):
        return {}

    @property
    def form(self):
        return self.payload.data


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/token":
            self.answer(404, {"error": "not_found"}, [])
            return
        length = int(self.headers.get("Content-Length", 0))
        lists = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        request = FormRequest(server.token_url, self.headers, lists)
        status, body, headers = server.create_token_response(request)
        self.answer(status, body, headers)
        log(f"token {status}")

    def answer(self, status, body, headers):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-type":
                self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def stop_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
issuer = f"http://127.0.0.1:{http_server.server_address[1]}"
server = Server(issuer)
server.register_token_generator(
    "default", BearerTokenGenerator(access_token, expires_generator=LIFETIME)
)
server.register_grant(BearerGrant)
server.register_grant(ClientCredentialsGrant)
server.register_client_auth_method(
    JWTBearerClientAssertion.CLIENT_AUTH_METHOD, IssuerAudienceAssertion(issuer)
)
threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
log(f"ready {issuer}")
http_server.serve_forever()
