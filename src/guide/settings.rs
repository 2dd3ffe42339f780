//! Every setting, in code, in a configuration file and in the environment.
//!
//! Every setting has one name: its builder method's, which is also its key in a configuration
//! file ([`Settings`]) and, in capitals after a prefix, its environment variable
//! (`Config::from_env("ORDERS")` reads `ORDERS_REFRESH_AHEAD`). The [`Settings`] docs hold
//! the same table with the defaults' constants; a test holds both tables to the settings
//! declared.
//!
//! # The table
//!
//! | builder method | file key | environment | default | meaning |
//! |---|---|---|---|---|
//! | [`Config::builder`]`(token_url, ..)` | `token_url` | `ORDERS_TOKEN_URL` | required | must be `https`, except on loopback |
//! | [`Config::builder`]`(.., client_id, ..)` | `client_id` | `ORDERS_CLIENT_ID` | required | except for a client that does not authenticate (`none`, [grants](super::grants)) |
//! | [`Config::builder`]`(.., client_secret)` or [`client_secret`](crate::ConfigBuilder::client_secret) | `client_secret` | `ORDERS_CLIENT_SECRET` | none ([`Config::builder_without_secret`]) | then a certificate or key authenticates |
//! | [`client_secret_file`](crate::ConfigBuilder::client_secret_file) | `client_secret_file` | `ORDERS_CLIENT_SECRET_FILE` | none | the secret, read again as it rotates ([authentication](super::authentication#credentials-that-rotate)) |
//! | [`client_assertion_file`](crate::ConfigBuilder::client_assertion_file) | `client_assertion_file` | `ORDERS_CLIENT_ASSERTION_FILE` | none | a client assertion for each token request: workload identity federation |
//! | [`scope`](crate::ConfigBuilder::scope) | `scope` | `ORDERS_SCOPE` | none | one scope or several separated by spaces; repeatable |
//! | [`audience`](crate::ConfigBuilder::audience) | `audience` | `ORDERS_AUDIENCE` | none | the `audience` parameter (Auth0, Okta) |
//! | [`resource`](crate::ConfigBuilder::resource) | `resource` | `ORDERS_RESOURCE` | none | RFC 8707 `resource`; repeatable |
//! | [`param`](crate::ConfigBuilder::param) | `param` | `ORDERS_PARAM` | none | any other form parameter; repeatable |
//! | [`auth_method`](crate::ConfigBuilder::auth_method) | `auth_method` | `ORDERS_AUTH_METHOD` | implied by the credentials | `ClientSecretBasic` with a secret, `ClientSecretPost` (credentials in the form body), ... ([`AuthMethod`]) |
//! | [`form_encode_basic_credentials`](crate::ConfigBuilder::form_encode_basic_credentials) | `form_encode_basic_credentials` | `ORDERS_FORM_ENCODE_BASIC_CREDENTIALS` | `true` | RFC 6749 §2.3.1 form-encoding of id and secret before base64 (a space as `%20`, which form decoders and plain percent-decoders both read as a space); turn off only for servers that do not decode |
//! | [`refresh_ahead`](crate::ConfigBuilder::refresh_ahead) | `refresh_ahead` | `ORDERS_REFRESH_AHEAD` | 5 min | start a background refresh this long before expiry (capped at half the lifetime, jittered up to 10 % earlier; [lifecycle](super::lifecycle)) |
//! | [`expiry_margin`](crate::ConfigBuilder::expiry_margin) | `expiry_margin` | `ORDERS_EXPIRY_MARGIN` | 30 s | stop sending a token this long before expiry (capped at a quarter of the lifetime) |
//! | [`default_lifetime`](crate::ConfigBuilder::default_lifetime) | `default_lifetime` | `ORDERS_DEFAULT_LIFETIME` | 5 min | lifetime when the response has no `expires_in` |
//! | [`max_lifetime`](crate::ConfigBuilder::max_lifetime) | `max_lifetime` | `ORDERS_MAX_LIFETIME` | none | caps every lifetime |
//! | [`token_lifetime`](crate::ConfigBuilder::token_lifetime) | `token_lifetime` | `ORDERS_TOKEN_LIFETIME` | none | a fixed token time: sets both of the above (not with them) |
//! | [`request_timeout`](crate::ConfigBuilder::request_timeout) | `request_timeout` | `ORDERS_REQUEST_TIMEOUT` | 10 s | one token request, connect to last byte; no caller waits longer ([failures](super::failures)) |
//! | [`max_cached_tokens`](crate::ConfigBuilder::max_cached_tokens) | `max_cached_tokens` | `ORDERS_MAX_CACHED_TOKENS` | 100 | tokens kept beside the layer's own, for routes and `TokenParams` (least recently used forgotten; [several tokens](super::several_tokens)) |
//! | [`invalidation_interval`](crate::ConfigBuilder::invalidation_interval) | `invalidation_interval` | `ORDERS_INVALIDATION_INTERVAL` | 5 s | a `401` from the API drops the token at most once per interval |
//! | [`allowed_origin`](crate::ConfigBuilder::allowed_origin) | `allowed_origin` | `ORDERS_ALLOWED_ORIGIN` | none (every request) | attach the token only to requests for these origins (`https://api.example.com`); repeatable |
//! | [`danger_allow_plain_http`](crate::ConfigBuilder::danger_allow_plain_http) | `danger_allow_plain_http` | `ORDERS_DANGER_ALLOW_PLAIN_HTTP` | off | allow `http://` to a non-loopback token URL (the secret travels in clear) |
//! | [`client_certificate_files`](crate::ConfigBuilder::client_certificate_files) or [`client_certificate`](crate::ConfigBuilder::client_certificate) | `client_certificate_file`, `client_certificate_key_file` | `ORDERS_CLIENT_CERTIFICATE_FILE`, `ORDERS_CLIENT_CERTIFICATE_KEY_FILE` | none | mutual TLS: PEM chain and key, read again when the files change |
//! | [`tls_root_certificate`](crate::ConfigBuilder::tls_root_certificate) | `tls_root_certificate_file` | `ORDERS_TLS_ROOT_CERTIFICATE_FILE` | system roots only | also trust this CA for the token endpoint |
//! | `client_key_file(path, alg)` or `client_key(k)` (`jwt`) | `client_key_file`, `client_key_algorithm`, `client_key_id` | `ORDERS_CLIENT_KEY_FILE`, `ORDERS_CLIENT_KEY_ALGORITHM`, `ORDERS_CLIENT_KEY_ID` | none; `RS256` | `private_key_jwt`: PEM key, `RS256`/`PS256`/`ES256`, `kid` |
//! | `assertion_audience(a)` (`jwt`) | `assertion_audience` | `ORDERS_ASSERTION_AUDIENCE` | the token URL | `aud` of the assertions this crate signs; `issuer` for the issuer, typed `client-authentication+jwt` (draft-ietf-oauth-rfc7523bis; [authentication](super::authentication#the-audience-of-client-assertions)) |
//! | [`issuer`](crate::ConfigBuilder::issuer) | `issuer` | `ORDERS_ISSUER` | the discovered one | the authorization server's issuer identifier |
//! | [`client_assertion_type`](crate::ConfigBuilder::client_assertion_type) | `client_assertion_type` | `ORDERS_CLIENT_ASSERTION_TYPE` | `jwt-bearer` | `jwt-spiffe` for a SPIFFE JWT-SVID, or a URN |
//! | [`grant`](crate::ConfigBuilder::grant) ([`Grant`](crate::Grant)) | `grant` | `ORDERS_GRANT` | `client_credentials` | `token_exchange` or `jwt_bearer` ([grants](super::grants)) |
//! | [`TokenExchange`](crate::TokenExchange) | `subject_token_file`, `subject_token_type`, `actor_token_file`, `actor_token_type`, `requested_token_type` | `ORDERS_SUBJECT_TOKEN_FILE`, `ORDERS_SUBJECT_TOKEN_TYPE`, `ORDERS_ACTOR_TOKEN_FILE`, `ORDERS_ACTOR_TOKEN_TYPE`, `ORDERS_REQUESTED_TOKEN_TYPE` | none | token exchange: the tokens' files (read for each request) and types (`jwt`, `access_token`, `id_token` or a URI) |
//! | [`JwtBearer`](crate::JwtBearer) | `assertion_file`, `assertion_subject` (`jwt`) | `ORDERS_ASSERTION_FILE`, `ORDERS_ASSERTION_SUBJECT` | signed with the client key | JWT bearer: the assertion's file, or the `sub` of one this crate signs |
//! | `assertion_lifetime(d)` (`jwt`) | `assertion_lifetime` | `ORDERS_ASSERTION_LIFETIME` | 60 s | how long a client assertion is valid |
//! | `store_encryption_key(k)` (`store`) | `store_encryption_key` | `ORDERS_STORE_ENCRYPTION_KEY` | derived from the secret | 32 bytes; as text, base64 (`openssl rand -base64 32`); [fleet](super::fleet) |
//! | `metrics_label(l)` (`metrics`) | `metrics_label` | `ORDERS_METRICS_LABEL` | the scopes, else the audience or resources | the `token` label of this layer's [metrics](super::metrics) |
//! | `dpop(k)` (`dpop`) | `dpop_key_file`, `dpop_key_algorithm` | `ORDERS_DPOP_KEY_FILE`, `ORDERS_DPOP_KEY_ALGORITHM` | none (bearer tokens); `ES256` | [DPoP](super::dpop)-bound tokens: PEM key, `ES256`/`RS256`/`PS256`/`EdDSA`; the algorithm alone: a key generated at start-up |
//! | `dpop_allow_bearer()` (`dpop`) | `dpop_allow_bearer` | `ORDERS_DPOP_ALLOW_BEARER` | off | accept a `Bearer` answer to a DPoP token request (a server without DPoP) |
//! | [`http_client`](crate::ConfigBuilder::http_client) | cannot be text | cannot be text | own client, no redirects | for proxies, custom roots, mTLS ([security](super::security#redirects)) |
//! | `store(s)` (`store`) | cannot be text | cannot be text | none | share tokens across replicas ([fleet](super::fleet)) |
//! | [`route`](crate::ConfigBuilder::route) | cannot be text | cannot be text | none | other token parameters for an origin or path ([several tokens](super::several_tokens)) |
//! | [`client_secret_source`](crate::ConfigBuilder::client_secret_source), [`client_assertion_source`](crate::ConfigBuilder::client_assertion_source) | cannot be text | cannot be text | none | a [`CredentialSource`] of yours ([authentication](super::authentication#credentials-that-rotate)) |
//!
//! The settings marked with a feature (`jwt`, `store`, `metrics`, `dpop`) exist with it.
//!
//! # As text
//!
//! In a file or the environment: durations are `"30s"`, `"5m"`, `"1h 30m"` or a number of
//! seconds; lists (`scope`, `resource`, `allowed_origin`) are a list or one string of items
//! separated by spaces (`ORDERS_SCOPE="orders:read orders:write"`); `param` is a table or
//! form-encoded text (`ORDERS_PARAM="tenant=acme&prompt=none"`); flags are `true` or `false`;
//! keys and certificates are the paths of their PEM files, read by `build()`; `auth_method` is
//! `"basic"`, `"post"`, `"none"` or a registered name (`"private_key_jwt"`, ...); `grant` is
//! `"client_credentials"`, `"token_exchange"` or `"jwt_bearer"`; token types are a URI or a
//! short name (`"jwt"`, `"access_token"`, `"id_token"`). The objects that cannot
//! be text go to [`Settings::into_builder`].
//!
//! # From a file
//!
//! [`Settings`] is a serde section with every setting of the table by its name, the secret held
//! as a `SecretString` (never serialized back). Unknown keys are refused, so a misspelt setting
//! fails at start-up instead of being ignored.
//!
//! ```toml
//! [orders_api]
//! url = "https://orders.example.com"
//!
//! [orders_api.auth]
//! token_url = "https://login.example.com/oauth2/token"
//! client_id = "orders-service"
//! # client_secret: leave it out of the file, and set it from the environment or a secret store
//! scope = "orders:read"
//! auth_method = "post"  # "basic" (default), "post", or a registered name ("private_key_jwt", ...)
//! token_lifetime = "1h" # a fixed token time; or default_lifetime / max_lifetime
//! refresh_ahead = "5m"
//! request_timeout = "10s"
//! ```
//!
//! Any serde loader reads it; here figment, with `APP_ORDERS_API__AUTH__CLIENT_SECRET` (and
//! any other `APP_` variable, `__` for a level) over the file:
//!
//! ```no_run
//! use figment::providers::{Env, Format, Toml};
//! use figment::Figment;
//! use tower_client_credentials::{ClientCredentialsLayer, Settings};
//!
//! #[derive(serde::Deserialize)]
//! struct OrdersApi {
//!     url: String,
//!     auth: Settings,
//! }
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let orders: OrdersApi = Figment::new()
//!     .merge(Toml::file("app.toml"))
//!     .merge(Env::prefixed("APP_").split("__"))
//!     .extract_inner("orders_api")?;
//! let layer = ClientCredentialsLayer::new(orders.auth.into_config()?); // ConfigError names the bad setting
//! // or, for what cannot be text: orders.auth.into_builder().http_client(client).build()?
//! # let _ = (layer, orders.url);
//! # Ok(()) }
//! ```
//!
//! A client without a secret names files instead: `client_certificate_file` and
//! `client_certificate_key_file` for mutual TLS, or (feature `jwt`) `client_key_file`,
//! `client_key_algorithm` and `client_key_id` for `private_key_jwt`. A file that cannot be read
//! is an error naming the setting and the path.
//!
//! # From the environment
//!
//! [`Config::from_env`]`("ORDERS")` reads every setting of the table from `ORDERS_` and its
//! name in capitals: `ORDERS_TOKEN_URL`, `ORDERS_CLIENT_ID` (required, unless the client does
//! not authenticate), `ORDERS_CLIENT_SECRET` (unless a certificate or key file is given), `ORDERS_SCOPE`, `ORDERS_REFRESH_AHEAD`, ... It
//! reads them into the same [`Settings`] as a file, through serde, so values are written the
//! same way; an empty variable counts as unset, and an error names the variable
//! ([`Settings::from_env`] gives the settings, to add to in code).
//!
//! ```no_run
//! use tower_client_credentials::{ClientCredentialsLayer, Config};
//!
//! let layer = ClientCredentialsLayer::new(Config::from_env("ORDERS")?);
//! # Ok::<(), tower_client_credentials::ConfigError>(())
//! ```
//!
//! Moving a .NET service's settings across:
//!
//! | .NET setting | variable | note |
//! |---|---|---|
//! | `TokenEndPoint` | `ORDERS_TOKEN_URL` | |
//! | `ClientId` | `ORDERS_CLIENT_ID` | |
//! | `ClientSecret` | `ORDERS_CLIENT_SECRET` | |
//! | `Scope` | `ORDERS_SCOPE` | scopes separated by spaces |
//! | `TokenTime` | `ORDERS_TOKEN_LIFETIME` | seconds (`3600`) or `1h`: both the lifetime used without `expires_in` and the cap |
//! | (credentials in the form body) | `ORDERS_AUTH_METHOD=post` | the .NET client posts them; the default here is Basic |
//!
//! # Checking credentials from the shell
//!
//! The `curl` example fetches a token with the settings given and prints what was granted
//! (never the token, unless `--show-token`) and the API's answer, or every field of the error:
//!
//! ```sh
//! CLIENT_SECRET=... cargo run --example curl -- --token-url URL --client-id ID [--scope S] [--auth post] [API_URL]
//! ```
//!
//! [`Settings`]: crate::Settings
//! [`Settings::into_builder`]: crate::Settings::into_builder
//! [`Settings::from_env`]: crate::Settings::from_env
//! [`Config::builder`]: crate::Config::builder
//! [`Config::builder_without_secret`]: crate::Config::builder_without_secret
//! [`Config::from_env`]: crate::Config::from_env
//! [`AuthMethod`]: crate::AuthMethod
//! [`CredentialSource`]: crate::credential::CredentialSource
