//! Hygiene for text people type into the portal (organization names, reasons, ...): the one rule
//! for which characters a stored, displayed text may hold. Pure, so every model type's `parse`
//! uses it the same way.
//!
//! Refused are the characters that render as nothing or rearrange what is around them: control
//! characters (C0, DEL, C1, including tab and newlines), format characters (Unicode category Cf:
//! the bidirectional overrides, embeddings and isolates U+202A–U+202E and U+2066–U+2069, the
//! marks U+200E/U+200F, zero-width U+200B–U+200D, U+2060, U+FEFF, soft hyphen, tags, ...) and the
//! line and paragraph separators U+2028/U+2029. They let a name look like another one ("Acme"
//! with a zero-width space) or flip the text shown after it (a right-to-left override).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` may not appear in user-entered text.
pub fn is_forbidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
    )
}

/// The first character of `text` that [`is_forbidden`], if any.
pub fn first_forbidden(text: &str) -> Option<char> {
    text.chars().find(|&c| is_forbidden(c))
}

/// Whether `text` holds only allowed characters.
pub fn is_clean(text: &str) -> bool {
    first_forbidden(text).is_none()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_in_any_script_is_clean() {
        for text in [
            "Acme Rockets, Inc.",
            "Über Tools GmbH",
            "株式会社アクメ",
            "שלום עולם",
            "مرحبا",
            "Café ☕ 🚀",
            "O'Brien & Sons (EU) – №1",
        ] {
            assert!(is_clean(text), "{text:?} should be clean");
        }
    }

    #[test]
    fn bidi_controls_zero_width_and_control_characters_are_refused() {
        let forbidden = [
            // Bidirectional embeddings and overrides, isolates, marks.
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            // Zero-width characters and the byte order mark.
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            // Other format characters: soft hyphen, invisible operators, a tag character.
            '\u{00AD}',
            '\u{2062}',
            '\u{E0041}',
            // Controls: NUL, tab, newlines, escape, DEL, a C1 control; line/paragraph separators.
            '\u{0}',
            '\t',
            '\n',
            '\r',
            '\u{1B}',
            '\u{7F}',
            '\u{85}',
            '\u{2028}',
            '\u{2029}',
        ];
        for c in forbidden {
            let text = format!("Acme{c}Corp");
            assert!(is_forbidden(c), "U+{:04X} should be forbidden", c as u32);
            assert_eq!(first_forbidden(&text), Some(c));
            assert!(!is_clean(&text));
        }
    }
}
