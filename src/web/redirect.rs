//! Redirect targets that come from outside (a `next` parameter, a form field): the one check that
//! they stay on this site. Pure: no axum, so Leptos server functions can use it too.
//!
//! Browsers are generous with `Location`: they drop tabs and newlines inside it, turn `\` into
//! `/`, and read `//host` as another site. So a target is accepted only when it is a plain
//! absolute path, both as given and once percent-decoded (a proxy or a later redirect may decode
//! it): one leading `/` not followed by `/` or `\`, no backslash, no whitespace, no control or
//! invisible characters, not too long, and resolving against a placeholder origin keeps that
//! origin. Anything else becomes `/`.

use percent_encoding::percent_decode_str;
use url::Url;

/// Longest redirect target kept. Real paths in the portal are far shorter; long ones are noise.
pub const MAX_TARGET_LEN: usize = 2048;

/// Where to go when a target is refused.
pub const HOME: &str = "/";

/// `raw` if it is a same-origin path, else `None`.
pub fn local_path(raw: &str) -> Option<&str> {
    if raw.len() > MAX_TARGET_LEN || !is_plain_absolute_path(raw, true) {
        return None;
    }
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    if !is_plain_absolute_path(&decoded, false) {
        return None;
    }
    // The parser browsers follow (WHATWG URL) must agree that it stays on the origin.
    let base = Url::parse("https://portal.invalid/").ok()?;
    let resolved = base.join(raw).ok()?;
    (resolved.origin() == base.origin()).then_some(raw)
}

/// The target to redirect to: `raw` when it is a same-origin path, else [`HOME`].
pub fn local_path_or_home(raw: Option<&str>) -> &str {
    raw.and_then(local_path).unwrap_or(HOME)
}

/// One leading `/` not followed by `/` or `\`, and no backslash or control or invisible
/// character anywhere. `raw` text may not hold whitespace either (browsers would drop or
/// re-encode it); decoded text may hold an encoded space (`%20`), which no browser strips.
fn is_plain_absolute_path(path: &str, raw: bool) -> bool {
    let mut chars = path.chars();
    if chars.next() != Some('/') {
        return false;
    }
    if matches!(chars.next(), Some('/' | '\\')) {
        return false;
    }
    !path.chars().any(|c| {
        c == '\\' || crate::text::is_forbidden(c) || (c.is_whitespace() && (raw || c != ' '))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_are_kept() {
        for good in [
            "/",
            "/orgs/acme",
            "/orgs/acme/billing?tab=invoices",
            "/orgs/acme/usage#chart",
            "/orgs/%C3%BCber",
            "/search?q=a%20b",
            "/a/../b",
        ] {
            assert_eq!(local_path(good), Some(good), "{good:?} should be kept");
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_becomes_home() {
        let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        for bad in [
            "",
            "orgs/acme",
            "//evil.example",
            "//evil.example/path",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%09/evil.example/",
            "/%0A/evil.example",
            "/%0d%0a/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5C%5Cevil.example",
            "%2F%2Fevil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/\t/evil.example",
            "/\n/evil.example",
            "/orgs\r\nSet-Cookie: a=b",
            "\t//evil.example",
            " /orgs",
            "/\u{0}",
            "/orgs/\u{7F}",
            "/orgs/\u{85}",
            "/\u{202E}lmth.xedni",
            "/\u{200B}/evil.example",
            "/\u{3000}/evil.example",
            "/%E3%80%80/evil.example",
            "/%E2%80%AE/evil.example",
            "/orgs/a b",
            "/orgs/a\\b",
            "/%FF%FE",
            &long,
        ] {
            assert_eq!(local_path(bad), None, "{bad:?} should be refused");
            assert_eq!(local_path_or_home(Some(bad)), HOME);
        }
        assert_eq!(local_path_or_home(None), HOME);
    }

    #[test]
    fn the_limit_is_inclusive() {
        let longest = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
        assert_eq!(local_path(&longest), Some(longest.as_str()));
    }
}
