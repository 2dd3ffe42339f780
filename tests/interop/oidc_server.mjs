// An authorization server for tests/interop.rs: node-oidc-provider (npm `oidc-provider`, an
// OpenID Certified implementation written independently of this crate), with the client
// credentials grant on and clients that share one secret, passed in the environment:
//
// - `interop client:basic` authenticates with client_secret_basic (its id needs form-encoding);
// - `interop-post` with client_secret_post;
// - `interop-raw` with client_secret_basic, for a client that does not form-encode;
// - `interop-secret-jwt` with client_secret_jwt (an HS256 assertion made with the secret);
// - `interop-key-jwt` with private_key_jwt, its public key the JWK in INTEROP_CLIENT_JWK;
// - `interop-dpop` with client_secret_basic, and only DPoP-bound tokens
//   (`dpop_bound_access_tokens`).
//
// DPoP (RFC 9449, `features.dPoP`) is on, and a nonce is required in every proof
// (`requireNonce`), so that a client's first token request is answered `use_dpop_nonce`.
// Introspection (RFC 7662) is on, for the tests to read a token's `cnf.jkt`. Each answer of
// the token endpoint is printed as `token <status>`, for the tests to count round trips.
//
// It listens on a free port of 127.0.0.1 and prints `ready <issuer>` once it accepts
// connections; the token endpoint is `<issuer>/token`. It stops when stdin closes, so it never
// outlives the test that started it (serve.mjs).
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { fromEnv, serve } from './serve.mjs';

const secret = fromEnv('INTEROP_CLIENT_SECRET');
const jwk = JSON.parse(fromEnv('INTEROP_CLIENT_JWK'));

const client = (id, method, extra = { client_secret: secret }) => ({
  client_id: id,
  token_endpoint_auth_method: method,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api:read',
  ...extra,
});

serve((issuer) => new Provider(issuer, {
  clients: [
    client('interop client:basic', 'client_secret_basic'),
    client('interop-post', 'client_secret_post'),
    client('interop-raw', 'client_secret_basic'),
    client('interop-secret-jwt', 'client_secret_jwt'),
    client('interop-key-jwt', 'private_key_jwt', { jwks: { keys: [jwk] } }),
    client('interop-dpop', 'client_secret_basic', {
      client_secret: secret,
      dpop_bound_access_tokens: true,
    }),
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    introspection: { enabled: true, allowedPolicy: async () => true },
  },
  cookies: { keys: ['interop-test-only'] },
  scopes: ['api:read'],
  ttl: { ClientCredentials: 600 },
}));
