//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on the blocking pool
//! and never stalls the async runtime.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::model::NewPassword;

/// A PHC-format argon2id hash, safe to store.
pub async fn hash(password: &NewPassword) -> anyhow::Result<String> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `candidate` matches `stored`. With no stored hash (unknown email) it still does the
/// same work against a dummy hash, so the answer takes as long either way.
pub async fn verify(candidate: &str, stored: Option<String>) -> anyhow::Result<bool> {
    let candidate = candidate.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let matches = Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await?
}

/// An argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZBmv3Wd1bQVQ2z7dYbPnJx5P0y0Dq3T8Yl3cZ1oVQ+g";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let password = NewPassword::parse("correct horse battery").expect("valid");
        let stored = hash(&password).await.expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(stored.clone()))
            .await
            .expect("verify"));
        assert!(!verify("wrong horse battery", Some(stored))
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        assert!(!verify("anything at all", None).await.expect("verify"));
    }
}
