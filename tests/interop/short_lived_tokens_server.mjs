// An authorization server for tests/rejected_credential.rs: node-oidc-provider (npm
// `oidc-provider`, as in oidc_server.mjs) with one client, `interop-key-jwt`, that
// authenticates with private_key_jwt (its public key the JWK in INTEROP_CLIENT_JWK), and
// client-credentials tokens that last INTEROP_TOKEN_TTL seconds: short, so that a test of a
// few seconds sees many refreshes.
//
// Like Okta and Keycloak, it takes each client assertion's `jti` once, and checks `exp` on its
// own clock, without tolerance (`clockTolerance: 0`; the provider's default allows 15 s).
//
// It listens on a free port of 127.0.0.1 and prints `ready <issuer>` once it accepts
// connections; the token endpoint is `<issuer>/token`. Each answer of the token endpoint is
// printed as `token <status>`, and each refusal's reason as `refused <reason>` (the provider
// answers `invalid_client` with a generic description). It stops when stdin closes, so it
// never outlives the test that started it (serve.mjs).
import Provider from 'oidc-provider';
import { fromEnv, serve } from './serve.mjs';

const jwk = JSON.parse(fromEnv('INTEROP_CLIENT_JWK'));
const ttl = Number(process.env.INTEROP_TOKEN_TTL);
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error('INTEROP_TOKEN_TTL must be a whole number of seconds');
  process.exit(2);
}

serve((issuer) => {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'interop-key-jwt',
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read',
        jwks: { keys: [jwk] },
      },
    ],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
    },
    clockTolerance: 0,
    cookies: { keys: ['interop-test-only'] },
    scopes: ['api:read'],
    ttl: { ClientCredentials: ttl },
  });
  provider.on('grant.error', (ctx, error) => {
    console.log(`refused ${error.error_detail ?? error.error_description ?? error.message}`);
  });
  return provider;
});
