//! URLs that callers hand the emulator (`success_url`, `cancel_url`, `return_url`, webhook
//! endpoints) are checked as Stripe checks them: absolute `http` or `https` URLs with a host, or
//! refused with `url_invalid`. The hosted pages check again before they render or redirect to
//! one, so nothing stored before this check (or by a bug) can become a `javascript:` link.

use crate::error::StripeError;

/// Stripe refuses longer URLs.
const MAX_URL_LEN: usize = 2048;

/// `Ok` when `raw` is an absolute http(s) URL with a host and nothing a browser would read
/// differently from a parser (control characters, spaces, backslashes).
pub fn check(raw: &str) -> Result<(), &'static str> {
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return Err("must be between 1 and 2048 characters");
    }
    // Browsers strip tabs and newlines from URLs and treat `\` as `/`; a parser does not, so
    // refuse them rather than guess which reading wins.
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err("must not contain spaces, control characters or backslashes");
    }
    // Parsers (and browsers) forgive `https:/host` and `https:host`; Stripe's callers write the
    // two slashes, so anything else is a mistake or a trick.
    let lower = raw.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err("must be an absolute http:// or https:// URL");
    }
    let parsed = url::Url::parse(raw).map_err(|_| "must be an absolute URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password");
    }
    Ok(())
}

/// [`check`] as Stripe's error for the parameter `param`.
pub fn check_param(raw: &str, param: &str) -> Result<(), StripeError> {
    check(raw).map_err(|why| {
        StripeError::invalid_request(format!("Invalid URL: {param} {why}."), Some(param))
            .with_code("url_invalid")
    })
}

/// The URL if a hosted page may link or redirect to it.
pub fn safe_link(raw: &str) -> Option<String> {
    check(raw).ok().map(|()| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_absolute_http_and_https_urls() {
        for ok in [
            "https://portal.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
            "http://127.0.0.1:3000/billing/cancel",
            "http://localhost/x",
            "https://[::1]:8443/",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_scripts_data_relative_and_ambiguous_urls() {
        for bad in [
            "javascript:alert(document.cookie)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "/billing/success",
            "//evil.example/",
            "evil.example",
            "https:/evil.example",
            "https://",
            "java\tscript:alert(1)",
            "https://evil.example/\n",
            " https://evil.example/",
            "https:\\\\evil.example",
            "https://user:pass@evil.example/",
            "ftp://files.example/",
            "file:///etc/passwd",
            "",
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check(&format!("https://x.example/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn the_error_is_stripes() {
        let e = check_param("javascript:alert(1)", "cancel_url").expect_err("refused");
        assert_eq!(e.status, 400);
        let body = e.body();
        assert_eq!(body["error"]["code"], "url_invalid");
        assert_eq!(body["error"]["param"], "cancel_url");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}
