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
use super::{check_param_name, check_resource, check_scope, Config};
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
    scope: Option<Vec<String>>,
    audience: Option<String>,
    resource: Option<Vec<String>>,
    param: Option<Vec<(String, String)>>,
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

    /// Whether they could go into a token request, as `build()` checks the layer's own.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.scope.iter().flatten().try_for_each(|scope| check_scope(scope))?;
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("audience", "must not be empty"));
        }
        self.resource.iter().flatten().try_for_each(|resource| check_resource(resource))?;
        self.param.iter().flatten().try_for_each(|(name, _)| check_param_name(name))
    }

    /// The token request that `config` makes with these parameters, in a canonical order.
    pub(crate) fn key(&self, config: &Config) -> TokenKey {
        TokenKey {
            scope: sorted(self.scope.as_deref().unwrap_or(&config.scopes)),
            audience: self.audience.clone().or_else(|| config.audience.clone()),
            resource: sorted(self.resource.as_deref().unwrap_or(&config.resources)),
            param: sorted(self.param.as_deref().unwrap_or(&config.params)),
        }
    }

    /// `config` with these parameters, for the cache entry of their token.
    pub(crate) fn apply(&self, config: &Config) -> Config {
        let mut config = config.clone();
        if let Some(scope) = &self.scope {
            config.scopes.clone_from(scope);
        }
        if let Some(audience) = &self.audience {
            config.audience = Some(audience.clone());
        }
        if let Some(resource) = &self.resource {
            config.resources.clone_from(resource);
        }
        if let Some(param) = &self.param {
            config.params.clone_from(param);
        }
        // The layer's label names the layer's token; this one is named by what it changes.
        #[cfg(feature = "metrics")]
        {
            config.metrics_label = Some(self.label());
        }
        config
    }

    /// A short name for the token, from what these parameters set: the scopes, else the
    /// audience, else the resources, else the names (never the values) of the parameters.
    #[cfg(feature = "metrics")]
    fn label(&self) -> String {
        let joined = |list: &[String]| sorted(list).join(" ");
        match (&self.scope, &self.audience, &self.resource) {
            (Some(scope), _, _) => joined(scope),
            (None, Some(audience), _) => audience.clone(),
            (None, None, Some(resource)) => joined(resource),
            (None, None, None) => {
                let names: Vec<&str> =
                    self.param.iter().flatten().map(|(name, _)| name.as_str()).collect();
                format!("param {}", names.join(" "))
            }
        }
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
            .finish()
    }
}

/// `list` in order, without repeats: the canonical form of an unordered set.
fn sorted<T: Clone + Ord>(list: &[T]) -> Vec<T> {
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    list
}

/// What one token request asks for, in a canonical order: requests with equal keys share a
/// token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    scope: Vec<String>,
    audience: Option<String>,
    resource: Vec<String>,
    param: Vec<(String, String)>,
}

/// Requests for `origin` whose path starts with `path` take `params`.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    origin: Origin,
    path: String,
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

    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// How specific the route is: of two that match, the longer path wins.
    pub(crate) fn path_len(&self) -> usize {
        self.path.len()
    }

    /// Whether `uri`, whose path resolves to `path` ([`resolved_path`]), is for this route:
    /// its origin, and its path in this route's, a whole segment at a time (`/orders` takes
    /// `/orders/7`, not `/orders-archive`).
    pub(crate) fn matches(&self, uri: &Uri, path: &str) -> bool {
        if !self.origin.matches(uri) {
            return false;
        }
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// The path a server resolves `raw` to (RFC 3986 §6.2.2): percent-encoded unreserved
/// characters decoded, other encodings in upper case, dot segments (`.`, `..`, and their
/// encodings) removed. A gateway in front of several APIs routes by that path, so a route's
/// token must be chosen by it too: `/orders/../billing` is for `/billing`.
///
/// `None` when servers disagree on what the path is: an encoded `/` or `\` (one server keeps
/// `..%2F` in a segment, another decodes it into a separator), a raw `\`, or a dot segment
/// with a `;` parameter (`..;`, which Java servers read as `..`). Such a path takes no route.
///
/// Most paths hold neither `%`, `\` nor a dot segment, and come back borrowed.
pub(crate) fn resolved_path(raw: &str) -> Option<Cow<'_, str>> {
    let dot_segment = |segment: &str| matches!(segment.split(';').next(), Some("." | ".."));
    if !raw.contains(['%', '\\']) && !raw.split('/').any(dot_segment) {
        return Some(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        trailing_slash = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ if dot_segment(segment) => return None,
            _ => segments.push(segment),
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

    fn config() -> Config {
        Config::builder("https://auth.example.com/token", "client", "secret")
            .scope("base")
            .resource("https://b.example/")
            .resource("https://a.example/")
            .param("tenant", "acme")
            .build()
            .unwrap()
    }

    #[test]
    fn parameters_that_come_to_the_layers_own_token_request_have_its_key() {
        let config = config();
        let own = TokenParams::new().key(&config);
        let same = TokenParams::new()
            .scope("base")
            .resource("https://a.example/")
            .resource("https://b.example/")
            .param("tenant", "acme");
        assert!(same.key(&config) == own);
        assert!(TokenParams::new().audience("x").key(&config) != own);
        assert!(TokenParams::new().param("tenant", "other").key(&config) != own);
    }

    #[test]
    fn debug_shows_the_names_of_parameters_never_their_values() {
        let params = TokenParams::new().param("client_token", "hunter2-value");
        let debug = format!("{params:?} {:?}", params.apply(&config()));
        assert!(debug.contains("client_token"), "{debug}");
        assert!(!debug.contains("hunter2-value") && !debug.contains("acme"), "{debug}");
    }

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
        ] {
            assert_eq!(resolved(raw), None, "{raw}");
        }
        assert!(matches!(resolved_path("/orders/7"), Some(Cow::Borrowed(_))));
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn each_token_is_labelled_by_what_its_parameters_change() {
        let config = config();
        let label = |params: TokenParams| params.apply(&config).metrics_label.unwrap();
        assert_eq!(label(TokenParams::new().audience("orders")), "orders");
        assert_eq!(label(TokenParams::new().scope("b a")), "a b");
        assert_eq!(label(TokenParams::new().resource("https://r.example/")), "https://r.example/");
        assert_eq!(label(TokenParams::new().param("tenant", "secret-value")), "param tenant");
    }
}
