//! The security headers every browser page is sent with (error pages and 404s included): a strict
//! Content-Security-Policy, no framing by any site (`frame-ancestors 'none'` and
//! `X-Frame-Options: DENY`, against clickjacking the one-click forms), `nosniff`, a referrer
//! policy that sends other sites no paths, and HSTS when the public address is https.
//!
//! The pages have no inline script, style or event handlers, so the policy allows none: scripts
//! not at all, styles, images and fonts only from the portal itself. Forms may post to the portal
//! and to https addresses, since starting Checkout answers a form post with a redirect to Stripe.

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The portal's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self' https:; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// One year: browsers remember to use https only. No `includeSubDomains`: other hosts of the
/// operator's domain are not the portal's to decide.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The headers for the portal's own pages; `https` adds HSTS.
pub fn for_pages(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = framing_and_sniffing();
    headers.push((
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ));
    if https {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ));
    }
    headers
}

fn framing_and_sniffing() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
    ]
}

/// Sends `headers` on every response of `router`, replacing any a handler set.
pub fn with_headers<S>(mut router: Router<S>, headers: Vec<(HeaderName, HeaderValue)>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}
