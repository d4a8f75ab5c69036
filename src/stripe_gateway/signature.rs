//! Checks a `Stripe-Signature` header on the raw body: HMAC-SHA256 of `"{t}.{body}"` with any of
//! the configured secrets (several during rotation), and a timestamp within the tolerance.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header Stripe signs webhook deliveries in.
pub const HEADER: &str = "stripe-signature";

/// Stripe's default: events signed more than five minutes ago (or ahead) are refused.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // verify_slice compares in constant time.
        if candidates
            .iter()
            .any(|c| mac.clone().verify_slice(c).is_ok())
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_any_configured_secret_within_the_tolerance() {
        let body = r#"{"id":"evt_1"}"#;
        let header = sign("whsec_new", 1_000, body);
        assert_eq!(
            verify(
                Some(&header),
                body.as_bytes(),
                &["whsec_old", "whsec_new"],
                1_100
            ),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), body.as_bytes(), &["whsec_old"], 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), body.as_bytes(), &["whsec_new"], 1_000 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), b"{\"id\":\"evt_2\"}", &["whsec_new"], 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(None, body.as_bytes(), &["whsec_new"], 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("t=abc"), body.as_bytes(), &["whsec_new"], 1_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn several_v1_signatures_in_one_header_are_all_tried() {
        let body = "{}";
        let good = sign("whsec_a", 50, body);
        let v1 = good.split("v1=").nth(1).expect("sig");
        let header = format!("t=50,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(
            verify(Some(&header), body.as_bytes(), &["whsec_a"], 60),
            Ok(())
        );
    }
}
