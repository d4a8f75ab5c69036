//! Refusing state-changing browser requests sent from another site: a POST, PUT, PATCH or DELETE
//! whose `Origin` (or, when a browser sends none, `Referer`) names another origin than the
//! portal's public address (`APP_URL`) gets 403 before any handler runs. A request with neither
//! header is let through (older clients, curl): the anti-forgery token still has to match its
//! session ([`crate::web::csrf`]). Only for the browser routes: Stripe's webhooks and the JSON API
//! carry no cookies and are not behind this check.
//!
//! [`SameOrigin::check`] is the whole rule, so a Leptos server function can call it directly;
//! [`refuse_cross_site`] is the middleware the router uses.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::{Origin, Url};

use crate::error::AppError;

/// Which origins may send state-changing requests.
#[derive(Clone)]
pub struct SameOrigin(Arc<Inner>);

struct Inner {
    public: Origin,
    /// When `APP_URL` is not configured the public address is only a guess from the bound socket
    /// (say `http://0.0.0.0:3000`, or `127.0.0.1` while the browser says `localhost`); then an
    /// origin naming the `Host` the request was sent to counts as ours too.
    trust_host: bool,
}

impl SameOrigin {
    /// `public_url` is the portal's address; `configured` says whether an operator set it.
    pub fn new(public_url: &str, configured: bool) -> anyhow::Result<Self> {
        let url = Url::parse(public_url)
            .map_err(|e| anyhow::anyhow!("APP_URL {public_url:?} is not a URL: {e}"))?;
        let public = url.origin();
        if !public.is_tuple() {
            anyhow::bail!("APP_URL {public_url:?} must be an http:// or https:// address");
        }
        Ok(Self(Arc::new(Inner {
            public,
            trust_host: !configured,
        })))
    }

    /// Whether a request with this method and these headers may go on.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), AppError> {
        if !changes_state(method) {
            return Ok(());
        }
        let claimed = match headers.get(header::ORIGIN) {
            Some(origin) => Some(origin),
            None => headers.get(header::REFERER),
        };
        let Some(claimed) = claimed else {
            return Ok(());
        };
        // `Origin: null` (sandboxed frames, some cross-site redirects) and anything unparsable
        // name no site of ours.
        let origin = claimed
            .to_str()
            .ok()
            .and_then(|v| Url::parse(v).ok())
            .map(|url| url.origin())
            .filter(Origin::is_tuple)
            .ok_or(AppError::CsrfRejected)?;
        if origin == self.0.public || (self.0.trust_host && names_host(&origin, headers)) {
            Ok(())
        } else {
            Err(AppError::CsrfRejected)
        }
    }
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Whether `origin` is `http(s)://` + the request's `Host` header.
fn names_host(origin: &Origin, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    ["http", "https"].iter().any(|scheme| {
        Url::parse(&format!("{scheme}://{host}/")).is_ok_and(|url| url.origin() == *origin)
    })
}

/// Middleware: answers 403 to a cross-site state-changing request.
pub async fn refuse_cross_site(
    State(same_origin): State<SameOrigin>,
    request: Request,
    next: Next,
) -> Response {
    match same_origin.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::warn!(
                origin = ?request.headers().get(header::ORIGIN),
                referer_present = request.headers().contains_key(header::REFERER),
                "cross-site request refused"
            );
            refused.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    fn configured() -> SameOrigin {
        SameOrigin::new("https://billing.example.com", true).expect("valid")
    }

    #[test]
    fn same_origin_posts_pass_and_other_sites_are_refused() {
        let rule = configured();
        let ok = |pairs: &[(header::HeaderName, &str)]| rule.check(&Method::POST, &headers(pairs));
        assert!(ok(&[(header::ORIGIN, "https://billing.example.com")]).is_ok());
        assert!(ok(&[(header::ORIGIN, "https://billing.example.com:443")]).is_ok());
        assert!(ok(&[(header::REFERER, "https://billing.example.com/orgs/acme?x=1")]).is_ok());
        assert!(ok(&[]).is_ok(), "no header at all: the token decides");
        for (name, value) in [
            (header::ORIGIN, "https://evil.example"),
            (header::ORIGIN, "http://billing.example.com"),
            (header::ORIGIN, "https://billing.example.com:8443"),
            (header::ORIGIN, "https://billing.example.com.evil.example"),
            (header::ORIGIN, "null"),
            (header::ORIGIN, "garbage"),
            (header::REFERER, "https://evil.example/billing.example.com"),
        ] {
            assert!(
                matches!(ok(&[(name.clone(), value)]), Err(AppError::CsrfRejected)),
                "{name}: {value} should be refused"
            );
        }
        // Origin wins over Referer.
        assert!(ok(&[
            (header::ORIGIN, "https://evil.example"),
            (header::REFERER, "https://billing.example.com/"),
        ])
        .is_err());
    }

    #[test]
    fn reads_are_not_checked() {
        let evil = headers(&[(header::ORIGIN, "https://evil.example")]);
        assert!(configured().check(&Method::GET, &evil).is_ok());
        assert!(configured().check(&Method::HEAD, &evil).is_ok());
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(configured().check(&method, &evil).is_err());
        }
    }

    #[test]
    fn without_app_url_the_host_the_browser_used_counts_as_ours() {
        let guessed = SameOrigin::new("http://0.0.0.0:3000", false).expect("valid");
        let request =
            |origin: &str| headers(&[(header::HOST, "localhost:3000"), (header::ORIGIN, origin)]);
        assert!(guessed
            .check(&Method::POST, &request("http://localhost:3000"))
            .is_ok());
        assert!(guessed
            .check(&Method::POST, &request("http://evil.example"))
            .is_err());
        // With APP_URL configured, Host is not trusted.
        let strict = SameOrigin::new("https://billing.example.com", true).expect("valid");
        let rebinding = headers(&[
            (header::HOST, "evil.example"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert!(strict.check(&Method::POST, &rebinding).is_err());
    }
}
