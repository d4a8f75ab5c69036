//! Input hygiene shared by every edge that takes text from outside (the JSON API, webhooks):
//! what PostgreSQL cannot store (NUL in `text`, `\u0000` in `jsonb`) and what makes no sense in an
//! identifier (control characters). Pure functions; each edge turns a finding into its own error.

use serde_json::Value;

/// True when `s` holds a control character (C0, DEL or C1), NUL included. For identifiers,
/// keys and names, where none of them has a meaning.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// True when `s` holds a control character other than tab, newline or carriage return: free text
/// may span lines, but NUL cannot be stored and the rest only hides what is written.
pub fn has_unprintable_chars(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Where a JSON document holds text PostgreSQL or a reader should not get: the path of the first
/// object key with any control character, or of the first string with an unprintable one (see
/// [`has_unprintable_chars`]). `None` when the document is clean.
pub fn json_bad_text(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => has_unprintable_chars(s),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let bad = walk(item, path);
                if !bad {
                    path.truncate(len);
                }
                bad
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                path.push('.');
                if has_control_chars(key) {
                    // The key itself is at fault; do not print it into the path.
                    path.push_str("<key>");
                    return true;
                }
                path.push_str(key);
                let bad = walk(item, path);
                if !bad {
                    path.truncate(len);
                }
                bad
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then_some(path)
}

/// True when a JSON text holds a string or key with NUL in it, which `jsonb` refuses. Cheap for
/// the usual body: NUL can only be written as the escape `\u0000` (a raw NUL is not valid JSON),
/// so the body is parsed only when it holds a `\u` escape at all. A body that does not parse
/// counts as bad too (lone surrogates parse nowhere, PostgreSQL included).
pub fn json_text_has_nul(body: &[u8]) -> bool {
    if !body.windows(2).any(|w| w == b"\\u") {
        return false;
    }
    fn walk(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(walk),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => walk(&value),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_found() {
        assert!(!has_control_chars("order-42_é✓"));
        assert!(has_control_chars("a\0b"));
        assert!(has_control_chars("a\nb"));
        assert!(has_control_chars("a\u{7f}"));
        assert!(has_control_chars("a\u{85}"));
        assert!(!has_unprintable_chars("two\nlines\tand\r"));
        assert!(has_unprintable_chars("nul\0"));
        assert!(has_unprintable_chars("bell\u{7}"));
    }

    #[test]
    fn bad_text_in_json_is_found_with_its_path() {
        assert_eq!(json_bad_text(&json!({"a": "fine\n", "b": [1, "ok"]})), None);
        assert_eq!(
            json_bad_text(&json!({"a": {"b": [1, "x\u{0}"]}})),
            Some(".a.b[1]".to_owned())
        );
        assert_eq!(
            json_bad_text(&json!({"ok": 1, "k\u{0}": 1})),
            Some(".<key>".to_owned())
        );
    }

    #[test]
    fn nul_escapes_in_json_text_are_found() {
        assert!(!json_text_has_nul(br#"{"id":"evt_1","name":"caf\u00e9"}"#));
        assert!(!json_text_has_nul(br#"{"id":"evt_1"}"#));
        assert!(json_text_has_nul(br#"{"id":"evt_1","x":"a\u0000"}"#));
        assert!(json_text_has_nul(br#"{"id":"evt_1","a\u0000":1}"#));
        // An escaped backslash followed by "u0000" is six ordinary characters.
        assert!(!json_text_has_nul(br#"{"x":"\\u0000"}"#));
        // A lone surrogate parses nowhere.
        assert!(json_text_has_nul(br#"{"x":"\ud800"}"#));
    }
}
