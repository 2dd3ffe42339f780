//! Which token a request needs: the canonical key of a token request, the `Config` of a
//! [`TokenParams`]' token, and the route a request's URI takes (DESIGN.md §11).
//!
//! Routes and `TokenParams` are values of the configuration (`config/params.rs`); the cache
//! derives from them what it keys and makes its caches by.

use http::Uri;

use crate::config::{Config, Grant, Route, TokenParams};

/// What one token request asks for, in a canonical order: requests with equal keys share a
/// token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    scope: Vec<String>,
    audience: Option<String>,
    resource: Vec<String>,
    param: Vec<(String, String)>,
    grant: Grant,
}

/// The token request that `config` makes with `params`, in a canonical order.
pub(crate) fn key(params: &TokenParams, config: &Config) -> TokenKey {
    let own = &config.requested;
    TokenKey {
        scope: sorted(params.scope.as_deref().unwrap_or(&own.scopes)),
        audience: params.audience.clone().or_else(|| own.audience.clone()),
        resource: sorted(params.resource.as_deref().unwrap_or(&own.resources)),
        param: sorted(params.param.as_deref().unwrap_or(&own.params)),
        grant: params.grant.clone().unwrap_or_else(|| own.grant.clone()),
    }
}

/// `config` with `params`, for the cache of their token.
pub(crate) fn apply(params: &TokenParams, config: &Config) -> Config {
    let mut config = config.clone();
    let requested = &mut config.requested;
    if let Some(scope) = &params.scope {
        requested.scopes.clone_from(scope);
    }
    if let Some(audience) = &params.audience {
        requested.audience = Some(audience.clone());
    }
    if let Some(resource) = &params.resource {
        requested.resources.clone_from(resource);
    }
    if let Some(param) = &params.param {
        requested.params.clone_from(param);
    }
    if let Some(grant) = &params.grant {
        requested.grant = grant.clone();
    }
    // The layer's label names the layer's token; this one is named by what it changes.
    #[cfg(feature = "metrics")]
    {
        config.metrics_label = Some(label(params));
    }
    config
}

/// A short name for the token of `params`, from what they set: the scopes, else the
/// audience, else the resources, else the names (never the values) of the parameters.
#[cfg(feature = "metrics")]
fn label(params: &TokenParams) -> String {
    let joined = |list: &[String]| sorted(list).join(" ");
    match (&params.scope, &params.audience, &params.resource) {
        (Some(scope), _, _) => joined(scope),
        (None, Some(audience), _) => audience.clone(),
        (None, None, Some(resource)) => joined(resource),
        (None, None, None) if params.param.is_none() && params.grant.is_some() => {
            params.grant.as_ref().map_or_else(String::new, |grant| grant.name().to_owned())
        }
        (None, None, None) => {
            let names: Vec<&str> =
                params.param.iter().flatten().map(|(name, _)| name.as_str()).collect();
            format!("param {}", names.join(" "))
        }
    }
}

/// `list` in order, without repeats: the canonical form of an unordered set.
fn sorted<T: Clone + Ord>(list: &[T]) -> Vec<T> {
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    list
}

/// Whether `uri`, whose path resolves to `path` (`config::resolved_path`), is for `route`:
/// its origin, and its path in the route's, a whole segment at a time (`/orders` takes
/// `/orders/7`, not `/orders-archive`).
pub(crate) fn takes(route: &Route, uri: &Uri, path: &str) -> bool {
    if !route.origin.matches(uri) {
        return false;
    }
    match path.strip_prefix(route.path.as_str()) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
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
        let own = key(&TokenParams::new(), &config);
        let same = TokenParams::new()
            .scope("base")
            .resource("https://a.example/")
            .resource("https://b.example/")
            .param("tenant", "acme");
        assert!(key(&same, &config) == own);
        assert!(key(&TokenParams::new().audience("x"), &config) != own);
        assert!(key(&TokenParams::new().param("tenant", "other"), &config) != own);
    }

    #[test]
    fn debug_shows_the_names_of_parameters_never_their_values() {
        let params = TokenParams::new().param("client_token", "hunter2-value");
        let debug = format!("{params:?} {:?}", apply(&params, &config()));
        assert!(debug.contains("client_token"), "{debug}");
        assert!(!debug.contains("hunter2-value") && !debug.contains("acme"), "{debug}");
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn each_token_is_labelled_by_what_its_parameters_change() {
        let config = config();
        let label = |params: TokenParams| apply(&params, &config).metrics_label.unwrap();
        assert_eq!(label(TokenParams::new().audience("orders")), "orders");
        assert_eq!(label(TokenParams::new().scope("b a")), "a b");
        assert_eq!(label(TokenParams::new().resource("https://r.example/")), "https://r.example/");
        assert_eq!(label(TokenParams::new().param("tenant", "secret-value")), "param tenant");
    }
}
