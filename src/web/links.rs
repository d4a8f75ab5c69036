//! Which links that come from outside (Stripe's invoice and checkout URLs, anything in a webhook)
//! may be stored and rendered: `https` ones, and `http` ones on a loopback host, where the
//! offline Stripe emulator serves. Everything else (`javascript:`, `data:`, other hosts over
//! plain http, relative or unparsable links) is dropped. Pure; the one place that decides.

use std::net::IpAddr;

/// Longest external link kept (Stripe's hosted invoice links are about 150 characters).
const MAX_URL_LEN: usize = 2048;

/// `url` when it is safe to render as a link, otherwise `None`.
pub fn safe_external_url(url: &str) -> Option<&str> {
    if url.is_empty() || url.len() > MAX_URL_LEN || url.chars().any(char::is_control) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    // Credentials in a link only serve to dress one host up as another.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    let host = parsed.host()?;
    match parsed.scheme() {
        "https" => Some(url),
        "http" if is_loopback(&host) => Some(url),
        _ => None,
    }
}

/// The owned form, for values read from the database or from Stripe.
pub fn safe_external_url_owned(url: Option<String>) -> Option<String> {
    url.filter(|u| safe_external_url(u).is_some())
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_links_are_kept() {
        let link = "https://invoice.stripe.com/i/acct_1/test_YWNjdF8x?s=ap";
        assert_eq!(safe_external_url(link), Some(link));
        assert!(safe_external_url("https://pay.stripe.com/invoice/acct_1/pdf").is_some());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:12111/invoices/in_1",
            "http://127.8.9.10/x",
            "http://localhost:12111/x",
            "http://LOCALHOST/x",
            "http://[::1]:3000/x",
        ] {
            assert_eq!(safe_external_url(ok), Some(ok), "{ok}");
        }
        for bad in [
            "http://invoice.example.com/x",
            "http://10.0.0.5/x",
            "http://localhost.evil.example/x",
            "http://127.0.0.1.evil.example/x",
            "http://[::2]/x",
        ] {
            assert_eq!(safe_external_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn other_schemes_and_odd_links_are_dropped() {
        for bad in [
            "javascript:alert(document.cookie)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            "/relative/path",
            "ftp://files.example.com/x",
            "https://user:pass@evil.example/x",
            "",
            "https://",
        ] {
            assert_eq!(safe_external_url(bad), None, "{bad:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(safe_external_url(&long), None);
    }

    #[test]
    fn the_owned_form_filters_too() {
        assert_eq!(
            safe_external_url_owned(Some("javascript:alert(1)".into())),
            None
        );
        assert_eq!(
            safe_external_url_owned(Some("https://a.example/x".into())),
            Some("https://a.example/x".into())
        );
        assert_eq!(safe_external_url_owned(None), None);
    }
}
