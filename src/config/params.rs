//! [`TokenParams`]: which token a request needs when it is not the layer's default, and the
//! routes that choose them by origin and path.
//!
//! One client id often needs several tokens: a Microsoft Entra v2 token is for one resource,
//! an Auth0 or Okta token for one audience. A request says which token it needs with a
//! `TokenParams` in its extensions, or the layer's routes choose one by the request's URI;
//! each distinct set is a token of its own, with its own cache entry (`cache/tokens.rs`).

use std::borrow::Cow;
use std::fmt;

use http::Uri;

use super::origin::Origin;
use super::Grant;
use super::{check_param_name, check_resource, check_scope};
use crate::error::ConfigError;

/// The token parameters of one request, overriding the layer's: insert it into the request's
/// extensions, or give it to a [route](crate::ConfigBuilder::route).
///
/// Each parameter that is set replaces the layer's value of that parameter; those not set
/// keep the layer's. Requests whose parameters come to the same token request (the same
/// scopes in any order, audience, resources and extra parameters) share one token.
///
/// # Example
///
/// ```
/// use tower_client_credentials::TokenParams;
///
/// let mut request = http::Request::get("https://graph.microsoft.com/v1.0/users")
///     .body(String::new())
///     .unwrap();
/// // This request needs a token for Microsoft Graph, whatever the layer's default scope.
/// request.extensions_mut().insert(TokenParams::new().scope("https://graph.microsoft.com/.default"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenParams {
    pub(crate) scope: Option<Vec<String>>,
    pub(crate) audience: Option<String>,
    pub(crate) resource: Option<Vec<String>>,
    pub(crate) param: Option<Vec<(String, String)>>,
    pub(crate) grant: Option<Grant>,
}

impl TokenParams {
    /// No parameter set: the layer's own.
    ///
    /// ```
    /// # use tower_client_credentials::TokenParams;
    /// assert_eq!(TokenParams::new(), TokenParams::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Scopes to request instead of the layer's: one, or several separated by spaces. May be
    /// called more than once. Their order does not matter: requests whose scopes differ only
    /// in order share one token.
    ///
    /// ```
    /// # use tower_client_credentials::TokenParams;
    /// let params = TokenParams::new().scope("orders:read orders:write");
    /// ```
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        let scopes = self.scope.get_or_insert_with(Vec::new);
        scopes.extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// The `audience` to request instead of the layer's (Auth0, Okta).
    ///
    /// ```
    /// # use tower_client_credentials::TokenParams;
    /// let params = TokenParams::new().audience("https://orders.example.com");
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// A `resource` (RFC 8707) to request instead of the layer's; may be called more than
    /// once.
    ///
    /// ```
    /// # use tower_client_credentials::TokenParams;
    /// let params = TokenParams::new().resource("https://orders.example.com/");
    /// ```
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource.get_or_insert_with(Vec::new).push(resource.into());
        self
    }

    /// An extra form parameter; the parameters given here replace all of the layer's. May be
    /// called more than once. Its value is never shown in `Debug`.
    ///
    /// ```
    /// # use tower_client_credentials::TokenParams;
    /// let params = TokenParams::new().param("tenant", "acme");
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.param.get_or_insert_with(Vec::new).push((name.into(), value.into()));
        self
    }

    /// The grant of this token instead of the layer's: a token exchange on behalf of the
    /// request's user, say, beside the layer's client-credentials token. Requests with equal
    /// grants (the same subject token value, file or source) share a token. The grant's token
    /// values are never shown in `Debug`.
    ///
    /// ```
    /// # use tower_client_credentials::{TokenExchange, TokenParams};
    /// let users_token = "eyJhbGciOi...";
    /// let params = TokenParams::new()
    ///     .grant(TokenExchange::subject_token(users_token, TokenExchange::ACCESS_TOKEN))
    ///     .audience("orders");
    /// ```
    pub fn grant(mut self, grant: impl Into<Grant>) -> Self {
        self.grant = Some(grant.into());
        self
    }

    /// Whether they could go into a token request, as `build()` checks the layer's own.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.scope.iter().flatten().try_for_each(|scope| check_scope(scope))?;
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("audience", "must not be empty"));
        }
        self.resource.iter().flatten().try_for_each(|resource| check_resource(resource))?;
        self.param.iter().flatten().try_for_each(|(name, _)| check_param_name(name))?;
        self.grant.clone().map_or(Ok(()), |grant| super::grant::check(grant).map(drop))
    }
}

impl fmt::Debug for TokenParams {
    /// Shows the names of extra parameters, never their values: they may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.param.as_ref().map(|p| p.iter().map(|(n, _)| n).collect::<Vec<_>>());
        f.debug_struct("TokenParams")
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("param", &names)
            .field("grant", &self.grant)
            .finish()
    }
}

/// Requests for `origin` whose path starts with `path` take `params`.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) origin: Origin,
    /// Resolved ([`resolved_path`]), without a trailing `/`.
    pub(crate) path: String,
    pub(crate) params: TokenParams,
}

impl Route {
    /// A route for `prefix`: an origin (`https://graph.microsoft.com`), or an origin and a path
    /// (`https://api.example.com/orders`).
    pub(crate) fn new(prefix: &str, params: TokenParams) -> Result<Self, ConfigError> {
        let field = |reason: String| ConfigError::new("route", reason);
        let uri: Uri = prefix.parse().map_err(|e| field(format!("`{prefix}`: {e}")))?;
        let origin = Origin::of(&uri)
            .ok_or_else(|| field(format!("`{prefix}` needs a scheme and a host")))?;
        if uri.query().is_some() {
            return Err(field(format!("`{prefix}`: a route is an origin and a path, no query")));
        }
        if uri.authority().is_some_and(|authority| authority.as_str().contains('@')) {
            return Err(field("a route must not hold a user name or password".to_owned()));
        }
        params.check().map_err(|e| field(format!("`{prefix}`: {e}")))?;
        let path = resolved_path(uri.path()).ok_or_else(|| {
            field(format!(
                "`{prefix}`: an encoded `/` or `\\`, or a `;` by a dot segment, has no one meaning"
            ))
        })?;
        let path = path.trim_end_matches('/').to_owned();
        Ok(Self { origin, path, params })
    }
}

/// The path a server resolves `raw` to (RFC 3986 §6.2.2): percent-encoded unreserved
/// characters decoded, other encodings in upper case, dot segments (`.`, `..`, and their
/// encodings) removed. A gateway in front of several APIs routes by that path, so a route's
/// token must be chosen by it too: `/orders/../billing` is for `/billing`.
///
/// `None` when servers disagree on what the path is: an encoded `/` or `\` (one server keeps
/// `..%2F` in a segment, another decodes it into a separator), a raw `\`, a dot segment with a
/// `;` parameter (`..;`, which Java servers read as `..`), or a `..` after an empty segment
/// (`//..`, which a server that merges slashes resolves one segment higher). Such a path takes
/// no route.
///
/// Most paths hold neither `%`, `\` nor a dot segment, and come back borrowed.
pub(crate) fn resolved_path(raw: &str) -> Option<Cow<'_, str>> {
    let dot_segment = |segment: &str| matches!(segment.split(';').next(), Some("." | ".."));
    if !raw.contains(['%', '\\']) && !raw.split('/').any(dot_segment) {
        return Some(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    let mut segments: Vec<&str> = Vec::new();
    let (mut trailing_slash, mut empty_segment) = (false, false);
    for segment in decoded.split('/').skip(1) {
        trailing_slash = matches!(segment, "." | "..");
        match segment {
            "." => {}
            // `//..`: RFC 3986 pops the empty segment, a server that merges slashes (nginx by
            // default) the one before it.
            ".." if empty_segment => return None,
            ".." => {
                segments.pop();
            }
            _ if dot_segment(segment) => return None,
            _ => {
                empty_segment |= segment.is_empty();
                segments.push(segment);
            }
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || path.is_empty() {
        path.push('/');
    }
    Some(Cow::Owned(path))
}

/// `raw` with each `%XX` of an unreserved character decoded and every other one in upper
/// case; `None` for an encoded `/` or `\`, a raw `\`, or a `%` that starts no escape.
fn decode_unreserved(raw: &str) -> Option<String> {
    let mut decoded = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find(['%', '\\']) {
        decoded.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).filter(|e| e.starts_with('%'))?;
        let byte = u8::from_str_radix(&escape[1..], 16).ok()?;
        match byte {
            b'/' | b'\\' => return None,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                decoded.push(char::from(byte));
            }
            _ => decoded.push_str(&escape.to_ascii_uppercase()),
        }
        rest = &rest[at + 3..];
    }
    decoded.push_str(rest);
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_a_server_resolves_them() {
        let resolved = |raw| resolved_path(raw).map(Cow::into_owned);
        for (raw, path) in [
            ("/orders/7", "/orders/7"),
            ("/orders/../billing/pay", "/billing/pay"),
            ("/orders/%2e%2e/billing/pay", "/billing/pay"),
            ("/orders/%2E%2E/billing/pay", "/billing/pay"),
            ("/orders/./7", "/orders/7"),
            ("/%6Frders/7", "/orders/7"),
            ("/orders/%c3%a9", "/orders/%C3%A9"),
            ("/orders/..", "/"),
            ("/orders/.", "/orders/"),
            ("/../../x", "/x"),
            ("/", "/"),
            ("", ""),
            ("/orders/..x/.y", "/orders/..x/.y"),
        ] {
            assert_eq!(resolved(raw).as_deref(), Some(path), "{raw}");
        }
        for raw in [
            "/orders/..%2fbilling/pay",
            "/orders/..%2Fbilling/pay",
            "/orders/..%5cbilling/pay",
            "/orders/..\\billing/pay",
            "/orders/..;/billing/pay",
            "/orders/.;x/7",
            "/orders/%",
            "/orders/%zz",
            "/orders//../billing/pay",
            "//../x",
        ] {
            assert_eq!(resolved(raw), None, "{raw}");
        }
        assert!(matches!(resolved_path("/orders/7"), Some(Cow::Borrowed(_))));
    }
}
