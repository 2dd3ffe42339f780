//! The origin allow-list: which requests may carry the token (DESIGN.md §5).
//!
//! An origin is a scheme, host and port (RFC 6454). Requests are compared by the scheme and
//! authority of their URI; a request whose URI has none (a relative URI, as a tonic client
//! made with `new` rather than `with_origin` sends) is not on any list, and so gets no token.

use http::Uri;
use url::Url;

use crate::error::ConfigError;

/// One allowed origin, normalised: lowercase scheme and host, explicit port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl std::fmt::Display for Origin {
    /// `scheme://host:port`, as the allow-list compares it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The host as a URL writes it: an IPv6 address in brackets already.
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Origin {
    /// Parses `https://api.example.com` (a path of `/` at most).
    pub(crate) fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::new("allowed_origin", reason.to_owned());
        let url = Url::parse(raw).map_err(|_| invalid("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("an origin is a scheme, host and port, with no path"));
        }
        let host = url.host_str().ok_or_else(|| invalid("has no host"))?;
        let port = url.port_or_known_default().ok_or_else(|| invalid("has no port"))?;
        Ok(Self { scheme: url.scheme().to_owned(), host: host.to_owned(), port })
    }

    /// The origin of `uri`, if it has a scheme (http or https) and a host.
    pub(crate) fn of(uri: &Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let host = canonical_host(uri.host()?)?;
        Some(Self { scheme, host, port: uri.port_u16().unwrap_or(default_port) })
    }

    /// Whether `uri` is at this origin.
    pub(crate) fn matches(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else { return false };
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return false,
        };
        // Most hosts are written as the origin has them; an address may be spelled otherwise
        // (`[0:0:0:0:0:0:0:1]` for `[::1]`), and is compared as an address.
        let written_otherwise = |host: &str| {
            let address = host.starts_with('[') || host.starts_with(|c: char| c.is_ascii_digit());
            address && canonical_host(host).is_some_and(|host| host == self.host)
        };
        scheme.eq_ignore_ascii_case(&self.scheme)
            && uri.port_u16().unwrap_or(default_port) == self.port
            && (host.eq_ignore_ascii_case(&self.host) || written_otherwise(host))
    }
}

/// `host` as a URL writes it (the allow-list's origins are parsed as URLs): lower case, an IP
/// address in its shortest form.
fn canonical_host(host: &str) -> Option<String> {
    url::Host::parse(host).ok().map(|host| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(raw: &str) -> Origin {
        Origin::parse(raw).unwrap()
    }

    fn uri(raw: &str) -> Uri {
        raw.parse().unwrap()
    }

    #[test]
    fn matches_scheme_host_and_effective_port() {
        let api = origin("https://API.example.com");
        assert!(api.matches(&uri("https://api.example.com/things?x=1")));
        assert!(api.matches(&uri("https://api.example.com:443/")));
        assert!(!api.matches(&uri("http://api.example.com/")));
        assert!(!api.matches(&uri("https://api.example.com:8443/")));
        assert!(!api.matches(&uri("https://api.example.com.evil.example/")));
        assert!(!api.matches(&uri("/relative/path")));
        assert!(origin("http://127.0.0.1:8080").matches(&uri("http://127.0.0.1:8080/x")));
    }

    #[test]
    fn an_origin_has_no_path() {
        assert!(Origin::parse("https://api.example.com/v1").is_err());
        assert!(Origin::parse("ftp://api.example.com").is_err());
        assert!(Origin::parse("api.example.com").is_err());
        assert_eq!(
            Origin::parse("https://api.example.com/").unwrap(),
            origin("https://api.example.com")
        );
    }
}
