//! The security headers every browser page is sent with (error pages and 404s included): a strict
//! Content-Security-Policy, no framing by any site (`frame-ancestors 'none'` and
//! `X-Frame-Options: DENY`, against clickjacking the one-click forms), `nosniff`, a referrer
//! policy that sends other sites no paths, and HSTS when the public address is https.
//!
//! The pages have no inline script, style or event handlers, so the policy allows none: scripts
//! not at all, styles, images and fonts only from the portal itself. Forms may post to the portal
//! and to https addresses, since starting Checkout answers a form post with a redirect to Stripe;
//! a Stripe served over plain http (the offline emulator on loopback) is allowed by its origin.

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The portal's Content-Security-Policy. `http_stripe` is the origin of a Stripe served over
/// plain http (the offline emulator), which forms are redirected to as well; Stripe itself is
/// https, which the policy allows anyway.
pub fn content_security_policy(http_stripe: Option<&str>) -> String {
    let extra = http_stripe
        .filter(|origin| {
            origin.starts_with("http://")
                && origin
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":/.[]-".contains(c))
        })
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'; form-action 'self' https:{extra}; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    )
}

/// The policy for a page rendered by the application: the same, with scripts allowed only when
/// they carry this response's `nonce` (Leptos' serialized page data, and the browser bundle where
/// one is built). A nonce is base64 and is dropped if it is anything else.
pub fn content_security_policy_with_nonce(http_stripe: Option<&str>, nonce: &str) -> String {
    let policy = content_security_policy(http_stripe);
    if nonce.is_empty()
        || !nonce
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
    {
        return policy;
    }
    policy.replacen(
        "default-src 'none';",
        &format!("default-src 'none'; script-src 'nonce-{nonce}';"),
        1,
    )
}

/// One year: browsers remember to use https only. No `includeSubDomains`: other hosts of the
/// operator's domain are not the portal's to decide.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The headers for the portal's own pages; `https` adds HSTS; `http_stripe` as in
/// [`content_security_policy`].
pub fn for_pages(https: bool, http_stripe: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = others(https);
    headers.extend(default_policy(http_stripe));
    headers
}

/// The policy for every answer that does not bring its own (pages rendered by the application
/// send theirs, with a nonce: see `crate::app::page_policy`).
pub fn default_policy(http_stripe: Option<&str>) -> Option<(HeaderName, HeaderValue)> {
    // The policy is built from checked characters only, so it is always a valid header value.
    HeaderValue::from_str(&content_security_policy(http_stripe))
        .ok()
        .map(|policy| (header::CONTENT_SECURITY_POLICY, policy))
}

/// Everything but the policy, replacing what any handler set.
fn others(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = framing_and_sniffing();
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

/// Sends `headers` on every response of `router`, replacing any a handler set; the
/// Content-Security-Policy only where a page did not send its own (with its nonce).
pub fn with_headers<S>(mut router: Router<S>, headers: Vec<(HeaderName, HeaderValue)>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    for (name, value) in headers {
        router = if name == header::CONTENT_SECURITY_POLICY {
            router.layer(SetResponseHeaderLayer::if_not_present(name, value))
        } else {
            router.layer(SetResponseHeaderLayer::overriding(name, value))
        };
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_may_go_to_the_portal_https_and_only_the_named_http_stripe() {
        let plain = content_security_policy(None);
        assert!(plain.contains("form-action 'self' https:;"), "{plain}");
        let local = content_security_policy(Some("http://127.0.0.1:12111"));
        assert!(
            local.contains("form-action 'self' https: http://127.0.0.1:12111;"),
            "{local}"
        );
        // Anything that could end the directive or add another is dropped.
        for bad in [
            "http://x; script-src *",
            "https://x.example",
            "http://x 'unsafe-inline'",
        ] {
            assert_eq!(content_security_policy(Some(bad)), plain, "{bad}");
        }
        assert!(HeaderValue::from_str(&local).is_ok());
    }
}
