//! `curl` for an API behind the client credentials grant: gets a token, says what was granted,
//! and calls the API with it.
//!
//! ```text
//! export CLIENT_SECRET=...
//! cargo run --example curl -- --token-url https://auth.example.com/oauth/token \
//!     --client-id my-client [--scope "read write"] [--audience URI] [--auth post] \
//!     [--show-token] [API_URL]
//! ```
//!
//! - The client secret is read from the `CLIENT_SECRET` environment variable only: on the
//!   command line it would be in the shell's history and in every process listing.
//! - Without `API_URL` only the token is fetched: a check that the credentials work.
//! - What it learns (the token's type, scopes and lifetime, the API's status) goes to stderr;
//!   the API's body goes to stdout, so it pipes like curl's. The token itself is never shown
//!   unless `--show-token` is given; then it is printed alone on stdout
//!   (`TOKEN=$(cargo run -q --example curl -- ... --show-token)`).
//! - `--auth post` sends the credentials in the form body (`client_secret_post`) instead of
//!   Basic authentication.
//! - Exit status: 0 when the token (and the API's answer, whatever its status) came back, 1 when
//!   not, 2 for a usage error.

use std::env;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_client_credentials::{
    AuthMethod, BoxError, ClientCredentialsLayer, Config, ConfigError, TokenError,
};

const USAGE: &str = "\
usage: CLIENT_SECRET=... cargo run --example curl -- --token-url URL --client-id ID
           [--scope SCOPE]... [--audience URI] [--auth basic|post] [--show-token] [API_URL]";

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("error: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(secret) = env::var("CLIENT_SECRET") else {
        eprintln!(
            "error: CLIENT_SECRET is not set (or not UTF-8); the client secret is read from \
             there only, never from the command line"
        );
        return ExitCode::from(2);
    };
    let config = match args.config(secret) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {}", explain_config_error(&error));
            return ExitCode::from(2);
        }
    };
    match run(&args, ClientCredentialsLayer::new(config)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: &Args, layer: ClientCredentialsLayer) -> Result<(), String> {
    let token = layer.token().await.map_err(|e| explain_token_error(&args.token_url, &e))?;
    eprintln!("token from {}", args.token_url);
    eprintln!("  type      {}", token.token_type());
    eprintln!("  scope     {}", token.scope().unwrap_or("(not stated: the server's default)"));
    eprintln!("  lifetime  {}", humantime::format_duration(token.lifetime()));
    if args.show_token {
        println!("{}", token.secret());
    }
    let Some(api_url) = &args.api_url else { return Ok(()) };

    let (status, body) = call_api(layer, api_url).await.map_err(|error| {
        match error.downcast_ref::<TokenError>() {
            Some(token_error) => explain_token_error(&args.token_url, token_error),
            None => format!("calling {api_url} failed: {}", describe(&*error)),
        }
    })?;
    eprintln!("{api_url}: {status}");
    let mut stdout = std::io::stdout();
    stdout.write_all(&body).and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    if !body.ends_with(b"\n") && !body.is_empty() {
        eprintln!(); // keep the shell prompt off the last line of the body
    }
    Ok(())
}

/// GETs `api_url` through the layer, with reqwest (it speaks https) as the inner service.
async fn call_api(
    layer: ClientCredentialsLayer,
    api_url: &str,
) -> Result<(http::StatusCode, hyper::body::Bytes), BoxError> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let reqwest_service = tower::service_fn(move |request: http::Request<String>| {
        let client = client.clone();
        async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            Ok::<_, BoxError>(http::Response::from(response))
        }
    });
    let api = ServiceBuilder::new().layer(layer).service(reqwest_service);
    let response = api.oneshot(http::Request::get(api_url).body(String::new())?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The command line, parsed by hand: `--name value` or `--name=value`, and one `API_URL`.
struct Args {
    token_url: String,
    client_id: String,
    scopes: Vec<String>,
    audience: Option<String>,
    auth_method: AuthMethod,
    show_token: bool,
    api_url: Option<String>,
}

impl Args {
    /// `Ok(None)` when help was asked for.
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let (mut token_url, mut client_id, mut audience, mut api_url) = (None, None, None, None);
        let mut scopes = Vec::new();
        let mut auth_method = AuthMethod::ClientSecretBasic;
        let mut show_token = false;
        while let Some(word) = words.next() {
            let (name, inline_value) = match word.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
                _ => (word.as_str(), None),
            };
            let mut value = || {
                let value = inline_value.clone().or_else(|| words.next());
                value.ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "-h" | "--help" => return Ok(None),
                "--token-url" => token_url = Some(value()?),
                "--client-id" => client_id = Some(value()?),
                "--scope" => scopes.push(value()?),
                "--audience" => audience = Some(value()?),
                "--auth" => {
                    auth_method = match value()?.as_str() {
                        "basic" | "client_secret_basic" => AuthMethod::ClientSecretBasic,
                        "post" | "client_secret_post" => AuthMethod::ClientSecretPost,
                        other => return Err(format!("--auth is `basic` or `post`, not `{other}`")),
                    }
                }
                "--show-token" => show_token = true,
                "--client-secret" | "--secret" => {
                    return Err("the client secret is read from CLIENT_SECRET only, so that it \
                                stays out of shell history and process listings"
                        .into())
                }
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                _ if api_url.is_some() => return Err(format!("one API_URL only, not also {word}")),
                _ => api_url = Some(word.clone()),
            }
        }
        Ok(Some(Args {
            token_url: token_url.ok_or("--token-url is required")?,
            client_id: client_id.ok_or("--client-id is required")?,
            scopes,
            audience,
            auth_method,
            show_token,
            api_url,
        }))
    }

    fn config(&self, secret: String) -> Result<Config, ConfigError> {
        let mut builder =
            Config::builder(&self.token_url, &self.client_id, secret).auth_method(self.auth_method);
        for scope in &self.scopes {
            builder = builder.scope(scope);
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience);
        }
        builder.build()
    }
}

/// A [`ConfigError`], with the option or variable the user should look at.
fn explain_config_error(error: &ConfigError) -> String {
    let source = match error.field() {
        "token_url" => "--token-url",
        "client_id" => "--client-id",
        "client_secret" => "CLIENT_SECRET",
        "scope" => "--scope",
        "audience" => "--audience",
        _ => return error.to_string(),
    };
    format!("{error} (check {source})")
}

/// Everything a [`TokenError`] says, one fact a line, with a hint for the usual rejections.
fn explain_token_error(token_url: &str, error: &TokenError) -> String {
    let mut lines = vec![format!("no token from {token_url}: {error}")];
    lines.push(format!("  kind               {:?} ({:?})", error.kind(), error.class()));
    if let Some(status) = error.status() {
        lines.push(format!("  HTTP status        {status}"));
    }
    if let Some(code) = error.oauth_error() {
        lines.push(format!("  error              {code}"));
    }
    if let Some(description) = error.error_description() {
        lines.push(format!("  error_description  {description}"));
    }
    if let Some(uri) = error.error_uri() {
        lines.push(format!("  error_uri          {uri}"));
    }
    if let Some(wait) = error.retry_after() {
        lines.push(format!("  retry after        {}", humantime::format_duration(wait)));
    }
    let hint = match error.oauth_error() {
        Some("invalid_client") => Some(
            "check --client-id and CLIENT_SECRET; if they are right, the server may want the \
             other --auth method",
        ),
        Some("unauthorized_client") => {
            Some("this client may not use the client credentials grant (server configuration)")
        }
        Some("invalid_scope") => Some("check --scope against what the client may ask for"),
        _ => None,
    };
    lines.extend(hint.map(|hint| format!("  hint               {hint}")));
    lines.join("\n")
}

/// An error and its root cause, on one line (the causes between mostly repeat the first).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(source) = root.source() {
        root = source;
    }
    if std::ptr::addr_eq(root, error) {
        error.to_string()
    } else {
        format!("{error}: {root}")
    }
}
