//! `Idempotency-Key` for every `POST` and `PUT` under `/api/v1`, as Stripe does it: the first
//! request with a key runs and its answer (2xx or 4xx) is saved; a repeat with the same key, the
//! same method, path and body answers the saved response with `Idempotent-Replayed: true` and
//! runs nothing; the same key with another body or path is 409 `idempotency_key_reused`; a
//! repeat while the first is still running is 409 `idempotency_in_progress` with `Retry-After`.
//! Keys belong to the API key's organization, live in PostgreSQL (so every instance sees them)
//! and are kept 24 hours. A 5xx is not saved, so the request may be retried with the same key.
//! This module holds the pure rules; [`store`] the SQL, [`layer`] the middleware.

pub mod layer;
pub mod store;

use sha2::{Digest, Sha256};

/// The header.
pub const HEADER: &str = "idempotency-key";
/// The answer header of a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest key (Stripe's).
pub const MAX_KEY_LEN: usize = 255;
/// How long a key is kept.
pub const KEEP_HOURS: i64 = 24;
/// A request still marked in flight after this long is taken as lost (its instance stopped), and
/// the key may run again.
pub const LOST_AFTER_SECONDS: i64 = 300;

/// Why a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKey {
    Length,
    Characters,
}

impl BadKey {
    pub fn message(self) -> String {
        match self {
            BadKey::Length => {
                format!("The Idempotency-Key header must be 1 to {MAX_KEY_LEN} characters.")
            }
            BadKey::Characters => "The Idempotency-Key header may hold only visible ASCII \
                 characters (letters, digits and punctuation such as - _ . : /), no spaces."
                .to_owned(),
        }
    }
}

/// Checks a key as sent: 1 to 255 visible ASCII characters (a UUID, a job id, ...).
pub fn parse_key(raw: &[u8]) -> Result<String, BadKey> {
    if raw.is_empty() || raw.len() > MAX_KEY_LEN {
        return Err(BadKey::Length);
    }
    if !raw.iter().all(|b| b.is_ascii_graphic()) {
        return Err(BadKey::Characters);
    }
    Ok(String::from_utf8_lossy(raw).into_owned())
}

/// What a repeat must match: the method, the path with its query, and the body's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub method: String,
    pub target: String,
    pub body_sha256: [u8; 32],
}

impl Fingerprint {
    pub fn of(method: &str, target: &str, body: &[u8]) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            body_sha256: Sha256::digest(body).into(),
        }
    }
}

/// A saved answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Whether an answer with this status is saved: successes and the caller's own errors are final;
/// a server error may go away, so the key stays free for a retry.
pub fn worth_saving(status: u16) -> bool {
    (200..300).contains(&status) || (400..500).contains(&status)
}

/// Response headers that describe one transfer rather than the answer, and are not replayed.
pub fn replayable_header(name: &str) -> bool {
    !matches!(
        name,
        "content-length" | "transfer-encoding" | "connection" | "date" | "keep-alive"
    ) && !name.starts_with("ratelimit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(
            parse_key(b"job-42:retry/1").as_deref(),
            Ok("job-42:retry/1")
        );
        assert_eq!(parse_key(b""), Err(BadKey::Length));
        assert_eq!(parse_key(&[b'a'; 256]), Err(BadKey::Length));
        assert!(parse_key(&[b'a'; 255]).is_ok());
        assert_eq!(parse_key(b"has space"), Err(BadKey::Characters));
        assert_eq!(parse_key(b"nul\0"), Err(BadKey::Characters));
        assert_eq!(parse_key("é".as_bytes()), Err(BadKey::Characters));
    }

    #[test]
    fn a_repeat_matches_only_the_same_request() {
        let first = Fingerprint::of("POST", "/api/v1/usage", b"{\"tier\":\"small\"}");
        assert_eq!(
            first,
            Fingerprint::of("POST", "/api/v1/usage", b"{\"tier\":\"small\"}")
        );
        assert_ne!(
            first,
            Fingerprint::of("POST", "/api/v1/usage", b"{\"tier\":\"large\"}")
        );
        assert_ne!(
            first,
            Fingerprint::of("POST", "/api/v1/usage/batch", b"{\"tier\":\"small\"}")
        );
        assert_ne!(
            first,
            Fingerprint::of("PUT", "/api/v1/usage", b"{\"tier\":\"small\"}")
        );
    }

    #[test]
    fn only_final_answers_are_saved() {
        assert!(worth_saving(200) && worth_saving(201) && worth_saving(402) && worth_saving(422));
        assert!(!worth_saving(500) && !worth_saving(503) && !worth_saving(302));
        assert!(replayable_header("content-type") && replayable_header("location"));
        assert!(!replayable_header("content-length") && !replayable_header("ratelimit"));
    }
}
