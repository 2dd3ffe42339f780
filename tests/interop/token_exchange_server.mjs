// A token exchange server (RFC 8693) for tests/it/token_exchange_interop.rs: node-oidc-provider
// (npm `oidc-provider`, as in oidc_server.mjs) with the grant registered through its extension
// API, `provider.registerGrantType`. The provider parses the form, rejects repeated parameters
// other than `resource` and `audience`, authenticates the client by its registered method and
// checks that the client may use the grant; the handler below checks the rest of RFC 8693 §2.1
// and answers as §2.2 says.
//
// Clients:
// - `exchange-basic` authenticates with client_secret_basic, the secret INTEROP_CLIENT_SECRET;
// - `exchange-key-jwt` with private_key_jwt, its public key the JWK in INTEROP_CLIENT_JWK.
//
// Subject and actor tokens are JWTs issued by `https://sts.test` and signed (ES256) with the
// key whose public JWK is INTEROP_SUBJECT_JWK (the test holds the private half). The token
// type must fit the token: `access_token` is a JWT access token (header `typ: at+jwt`, RFC
// 9068), `id_token` a JWT with an `aud`, and `jwt` any JWT. A token that is not valid for its
// type is answered `invalid_request`, as §2.2.2 says ("if either the subject_token or
// actor_token are invalid or unacceptable").
//
// It issues, for 300 s:
// - an access token (the default, or `requested_token_type` access_token or jwt): a JWT signed
//   by the server with `sub` the subject token's, `act` the actor token's `sub`, `client_id`,
//   `aud` the requested audiences and resources, and `scope`;
// - an ID token (`requested_token_type` id_token): a JWT for the client, `token_type` "N_A".
// Audiences it knows: `orders`, and `legacy`, whose tokens it issues as `jwt` whatever was
// requested (a server that gets `issued_token_type` wrong, for the client's check). Resources:
// `https://orders.test/`. Scopes: the client's registered `api:read api:write`.
//
// Each answer of the token endpoint is printed as `token <status>`, each refusal as
// `refused <error>: <reason>`. It listens on a free port of 127.0.0.1 and prints
// `ready <issuer>`; the token endpoint is `<issuer>/token`. It stops when stdin closes
// (serve.mjs).
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, generateKeyPair, importJWK, jwtVerify } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { fromEnv, serve } from './serve.mjs';
const secret = fromEnv('INTEROP_CLIENT_SECRET');
const clientJwk = JSON.parse(fromEnv('INTEROP_CLIENT_JWK'));
const subjectKey = await importJWK(JSON.parse(fromEnv('INTEROP_SUBJECT_JWK')), 'ES256');
const issuingKey = (await generateKeyPair('ES256')).privateKey;

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TYPE = (name) => `urn:ietf:params:oauth:token-type:${name}`;
const ACCESS_TOKEN = TYPE('access_token');
const JWT = TYPE('jwt');
const ID_TOKEN = TYPE('id_token');
/// The subject and actor token types it takes, each with what the token must be.
const PRESENTABLE = new Map([
  [ACCESS_TOKEN, (header) => header.typ === 'at+jwt' || 'is not a JWT access token (typ at+jwt)'],
  [ID_TOKEN, (header, claims) => claims.aud !== undefined || 'is an ID token without aud'],
  [JWT, () => true],
]);
/// The token types it issues.
const ISSUABLE = new Set([ACCESS_TOKEN, JWT, ID_TOKEN]);
const SUBJECT_ISSUER = 'https://sts.test';
const AUDIENCES = new Set(['orders', 'legacy']);
const RESOURCES = new Set(['https://orders.test/']);
const LIFETIME = 300;

const list = (value) => (value === undefined ? [] : [].concat(value));

/// The claims of `token`, presented as `name` with type `type`, once verified; throws
/// invalid_request naming what is wrong.
async function verifyPresented(name, token, type) {
  const fits = PRESENTABLE.get(type);
  if (!fits) {
    throw new errors.InvalidRequest(`unsupported ${name}_type ${type}`);
  }
  let verified;
  try {
    verified = await jwtVerify(token, subjectKey, {
      issuer: SUBJECT_ISSUER,
      algorithms: ['ES256'],
      requiredClaims: ['sub', 'exp'],
    });
  } catch (error) {
    throw new errors.InvalidRequest(`${name} is invalid: ${error.code ?? error.message}`);
  }
  const fit = fits(decodeProtectedHeader(token), verified.payload);
  if (fit !== true) {
    throw new errors.InvalidRequest(`${name} ${fit}, not a ${type}`);
  }
  return verified.payload;
}

async function tokenExchange(ctx, next) {
  const { params, client } = ctx.oidc;

  // subject_token and subject_token_type: REQUIRED.
  for (const name of ['subject_token', 'subject_token_type']) {
    if (!params[name]) {
      throw new errors.InvalidRequest(`missing required parameter '${name}'`);
    }
  }
  // actor_token_type: REQUIRED with an actor_token, and MUST NOT be sent without one.
  if (params.actor_token && !params.actor_token_type) {
    throw new errors.InvalidRequest("'actor_token_type' is required with an 'actor_token'");
  }
  if (!params.actor_token && params.actor_token_type) {
    throw new errors.InvalidRequest("'actor_token_type' must not be sent without 'actor_token'");
  }
  // requested_token_type: OPTIONAL, one the server can issue.
  const requested = params.requested_token_type;
  if (requested !== undefined && !ISSUABLE.has(requested)) {
    throw new errors.InvalidRequest(`cannot issue requested_token_type ${requested}`);
  }
  // resource: absolute URIs without a fragment (§2.1), known ones (invalid_target, §2.2.2).
  const resources = list(params.resource);
  for (const resource of resources) {
    let url;
    try {
      url = new URL(resource);
    } catch {
      throw new errors.InvalidRequest(`resource ${resource} is not an absolute URI`);
    }
    if (url.hash !== '' || resource.includes('#')) {
      throw new errors.InvalidRequest(`resource ${resource} has a fragment`);
    }
    if (!RESOURCES.has(resource)) {
      throw new errors.InvalidTarget(`unknown resource ${resource}`);
    }
  }
  // audience: logical names the server knows.
  const audiences = list(params.audience);
  for (const audience of audiences) {
    if (!AUDIENCES.has(audience)) {
      throw new errors.InvalidTarget(`unknown audience ${audience}`);
    }
  }
  // scope: within the client's registered scopes.
  const scopes = params.scope ? [...new Set(params.scope.split(' '))] : [];
  const allowed = new Set((client.scope ?? '').split(' '));
  for (const scope of scopes) {
    if (!allowed.has(scope)) {
      throw new errors.InvalidScope('requested scope is not allowed', scope);
    }
  }

  const subject = await verifyPresented('subject_token', params.subject_token, params.subject_token_type);
  const actor = params.actor_token
    ? await verifyPresented('actor_token', params.actor_token, params.actor_token_type)
    : undefined;

  const now = Math.floor(Date.now() / 1000);
  const jwt = (claims) => new SignJWT({ ...claims, iss: provider.issuer, iat: now, exp: now + LIFETIME, jti: randomUUID() });
  let body;
  if (requested === ID_TOKEN) {
    const idToken = await jwt({ sub: subject.sub, aud: client.clientId })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .sign(issuingKey);
    body = { access_token: idToken, issued_token_type: ID_TOKEN, token_type: 'N_A' };
  } else {
    const claims = {
      sub: subject.sub,
      client_id: client.clientId,
      ...(actor ? { act: { sub: actor.sub } } : {}),
      ...(audiences.length + resources.length ? { aud: [...audiences, ...resources] } : {}),
      ...(scopes.length ? { scope: scopes.join(' ') } : {}),
    };
    const accessToken = await jwt(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .sign(issuingKey);
    const issued = audiences.includes('legacy') ? JWT : (requested ?? ACCESS_TOKEN);
    body = { access_token: accessToken, issued_token_type: issued, token_type: 'Bearer' };
  }
  ctx.body = {
    ...body,
    expires_in: LIFETIME,
    ...(scopes.length ? { scope: scopes.join(' ') } : {}),
  };
  await next();
}

const client = (id, method, extra) => ({
  client_id: id,
  token_endpoint_auth_method: method,
  grant_types: [GRANT_TYPE],
  response_types: [],
  redirect_uris: [],
  scope: 'api:read api:write',
  ...extra,
});

let provider;
serve((issuer) => {
  provider = new Provider(issuer, {
    clients: [
      client('exchange-basic', 'client_secret_basic', { client_secret: secret }),
      client('exchange-key-jwt', 'private_key_jwt', { jwks: { keys: [clientJwk] } }),
    ],
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['interop-test-only'] },
    scopes: ['api:read', 'api:write'],
  });
  provider.registerGrantType(
    GRANT_TYPE,
    tokenExchange,
    [
      'audience',
      'resource',
      'scope',
      'requested_token_type',
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
    ],
    ['audience', 'resource'],
  );
  provider.on('grant.error', (ctx, error) => {
    console.log(`refused ${error.error}: ${error.error_description ?? error.message}`);
  });
  return provider;
});
