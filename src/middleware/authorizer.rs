//! [`Authorizer`]: the one place that decides what an outgoing request carries, and what its
//! answer teaches. The Tower service ([`ClientCredentials`](crate::ClientCredentials)), its
//! response future and the reqwest middleware only translate these decisions into their own
//! types, so that every front end makes them in the same order:
//!
//! 1. a request that brings its own `Authorization` is sent as it is (DESIGN.md §5);
//! 2. so is one for an origin the allow-list leaves out, checked here once for the layer;
//! 3. the token is chosen: the request's `TokenParams`, else a route by the path as a server
//!    resolves it, else the layer's own (§11); parameters that cannot be sent fail the request;
//! 4. a usable token goes on at once, with its DPoP proof (§10); without one, the request
//!    waits for the token, then [`attach`](Authorizer::attach) puts it on.
//!
//! The answer is judged by [`Sent::judge`], only when it comes from the origin the token went
//! to: a `401` from there drops that token (§3), a DPoP nonce from there is kept for it (§10).
//! A client that follows a redirect elsewhere (reqwest does) hands back another origin's
//! answer, which says nothing about our token.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use tokio::time::Instant;

use crate::cache::{Entry, SentToken, TokenCache, TokenCaches};
use crate::config::origin::Origin;
use crate::config::Config;
use crate::error::TokenError;
use crate::middleware::{NonceDemand, Proved};

/// How often a request that goes without a token because of the allow-list is a warning.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Decides for the requests of one layer: its tokens, its allow-list and its DPoP proofs.
pub(crate) struct Authorizer {
    pub(crate) caches: TokenCaches,
    /// Origins that may get a token; empty for all.
    allowed_origins: Vec<Origin>,
    /// Requests the allow-list sent without a token, and when that was last a warning.
    passed_through: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    /// Proofs for API requests and the resource servers' nonces, with DPoP configured.
    #[cfg(feature = "dpop")]
    proofs: Option<Arc<crate::middleware::dpop::ApiProofs>>,
}

/// What to do with an outgoing request.
pub(crate) enum Outgoing {
    /// Send it as it is: it is not ours to authorize.
    Pass,
    /// Add these headers and send it.
    Attach(Attach),
    /// There is no usable token: wait for this cache's, then [`Authorizer::attach`] it.
    Wait(Arc<TokenCache>),
    /// Do not send it.
    Fail(TokenError),
}

/// The headers a request gets, and the record its answer is judged by.
pub(crate) struct Attach {
    authorization: HeaderValue,
    #[cfg(feature = "dpop")]
    proof: Option<HeaderValue>,
    sent: Sent,
}

/// What a request carried of ours: its token, and with DPoP where its proof was for.
pub(crate) struct Sent {
    token: SentToken,
    proved: Proved,
}

/// What an answer teaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing: it is no `401` to our token, or it came from another origin.
    Nothing,
    /// A `401` to our token; `resend` when another attempt would carry something new (a new
    /// token, because this one was dropped; or, with DPoP, a proof with the nonce it asked
    /// for).
    Unauthorized { resend: bool },
}

impl Authorizer {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            caches: TokenCaches::new(config),
            allowed_origins: config.selection.allowed_origins.clone(),
            passed_through: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            #[cfg(feature = "dpop")]
            proofs: crate::middleware::dpop::ApiProofs::new(config),
        }
    }

    /// What a request of `method` to `uri` with `headers` and `extensions` gets at `now`.
    pub(crate) fn outgoing(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
        now: Instant,
    ) -> Outgoing {
        if headers.contains_key(AUTHORIZATION) {
            return Outgoing::Pass;
        }
        if !self.allows(uri) {
            self.pass_through(uri, now);
            return Outgoing::Pass;
        }
        let cache = match self.caches.select(uri, extensions) {
            Ok(cache) => cache,
            Err(error) => return Outgoing::Fail(error),
        };
        match cache.with_usable(now, |entry| self.attach(&cache, entry, method, uri)) {
            Some(Ok(attach)) => Outgoing::Attach(attach),
            Some(Err(error)) => Outgoing::Fail(error),
            None => Outgoing::Wait(cache.into_owned()),
        }
    }

    /// The headers for a request of `method` to `uri` that carries `entry`, the token of
    /// `cache`: its `Authorization`, and with a DPoP-bound token a proof.
    ///
    /// # Errors
    ///
    /// A `DpopProof` error when no proof can be made (a URI without scheme and host).
    pub(crate) fn attach(
        &self,
        cache: &Arc<TokenCache>,
        entry: &Entry,
        #[cfg_attr(not(feature = "dpop"), allow(unused_variables))] method: &Method,
        #[cfg_attr(not(feature = "dpop"), allow(unused_variables))] uri: &Uri,
    ) -> Result<Attach, TokenError> {
        #[cfg(feature = "dpop")]
        let (proof, proved) = match &self.proofs {
            Some(proofs) => proofs.proof_for(method, uri, entry)?.unzip(),
            None => (None, None),
        };
        #[cfg(not(feature = "dpop"))]
        let proved = ();
        Ok(Attach {
            authorization: entry.token.header_value().clone(),
            #[cfg(feature = "dpop")]
            proof,
            sent: Sent { token: cache.sent(entry), proved },
        })
    }

    /// Whether a request for `uri` may carry a token: yes, unless an allow-list leaves its
    /// origin out (or it has none, being relative).
    fn allows(&self, uri: &Uri) -> bool {
        self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|o| o.matches(uri))
    }

    /// Makes a request the allow-list sends without a token visible: counted, a `debug` line
    /// each time, and a `warn` the first time and then at most once a minute (a misspelt
    /// origin, or a tonic client made with `new`, would otherwise fail with the API's `401`
    /// and nothing of ours in the logs). Only the origin is logged, never the path or query.
    fn pass_through(&self, uri: &Uri, now: Instant) {
        self.passed_through.fetch_add(1, Relaxed);
        let origin = Origin::of(uri);
        let reason = if origin.is_some() { "allow_list" } else { "relative_uri" };
        self.caches.default.metrics().passed_through(reason);
        let origin = origin.map_or_else(|| "none (a relative URI)".to_owned(), |o| o.to_string());
        tracing::debug!(%origin, "a request not on the allowed origins goes without a token");
        let mut last = self.last_warning.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY) {
            *last = Some(now);
            tracing::warn!(%origin, passed_through = self.passed_through(), "a request not on the allowed origins goes without a token; add its origin with `allowed_origin` if it needs one");
        }
    }

    /// How many requests the allow-list sent without a token.
    pub(crate) fn passed_through(&self) -> u64 {
        self.passed_through.load(Relaxed)
    }
}

impl Attach {
    /// Puts the headers on the request, and returns the record to judge its answer by.
    pub(crate) fn apply(self, headers: &mut HeaderMap) -> Sent {
        headers.insert(AUTHORIZATION, self.authorization);
        #[cfg(feature = "dpop")]
        if let Some(proof) = self.proof {
            headers.insert(crate::request::dpop::DPOP, proof);
        }
        self.sent
    }
}

impl Sent {
    /// What the answer (`status`, `headers`) to the request teaches. `elsewhere`: it came
    /// from another origin than the one the token went to (see [`other_origin`]), and then
    /// it teaches nothing: no rejection, no nonce.
    pub(crate) fn judge(self, status: StatusCode, headers: &HeaderMap, elsewhere: bool) -> Verdict {
        if elsewhere {
            tracing::debug!(%status, "an answer from another origin, after a redirect: it says nothing of our token");
            return Verdict::Nothing;
        }
        // A nonce the resource server asks for is no verdict on the token.
        #[cfg(feature = "dpop")]
        let demand =
            self.proved.map_or(NonceDemand::None, |proved| proved.nonce_demand(status, headers));
        #[cfg(not(feature = "dpop"))]
        let ((), demand, _) = (self.proved, NonceDemand::None, headers);
        if status != StatusCode::UNAUTHORIZED {
            return Verdict::Nothing;
        }
        match demand {
            NonceDemand::None => Verdict::Unauthorized { resend: self.token.rejected() },
            NonceDemand::Resend => Verdict::Unauthorized { resend: true },
            // Nothing new would go with a resend, and the token was not what it refused.
            NonceDemand::Unusable => Verdict::Nothing,
        }
    }
}

/// Whether the answer came from another origin than `sent_to`, the URI the request was sent
/// to: `answered_by` is the URL of the answer, after any redirect the client followed.
#[cfg_attr(not(feature = "reqwest-middleware"), allow(dead_code))]
pub(crate) fn other_origin(sent_to: &Uri, answered_by: &url::Url) -> bool {
    let answered_by = Uri::try_from(answered_by.as_str()).ok();
    answered_by.and_then(|uri| Origin::of(&uri)) != Origin::of(sent_to)
}
