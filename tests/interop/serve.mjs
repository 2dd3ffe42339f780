// What the node-oidc-provider servers of tests/interop share, as tests/it/common/interop_server.rs
// expects it of them: they listen on a free port of 127.0.0.1 and print `ready <issuer>` once
// they accept connections (the token endpoint is `<issuer>/token`); each answer of the token
// endpoint is printed as `token <status>`; they stop when stdin closes, so none outlives the
// test that started it.
import http from 'node:http';

/// The environment variable `name`; if it is not set, says so and exits with status 2.
export function fromEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

/// Serves the provider that `makeProvider(issuer)` returns, as said above.
export function serve(makeProvider) {
  const server = http.createServer();
  server.listen(0, '127.0.0.1', () => {
    const issuer = `http://127.0.0.1:${server.address().port}`;
    const callback = makeProvider(issuer).callback();
    server.on('request', (request, response) => {
      if (request.method === 'POST' && request.url === '/token') {
        response.on('finish', () => console.log(`token ${response.statusCode}`));
      }
      callback(request, response);
    });
    console.log(`ready ${issuer}`);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
