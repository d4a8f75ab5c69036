//! Anti-forgery for every state-changing form, bound to the session: each session holds a random
//! secret (made the first time a page with a form is rendered for it), and a form's token is a
//! fresh nonce with an HMAC, under the server key (`SECRET_KEY`), of that secret and the nonce.
//! A token therefore only verifies with the session it was issued for: a token obtained with one
//! session and replayed with another session's cookie is refused, and so is every token issued
//! before the secret is replaced (at log-in, and at log-out, which starts a new session).
//!
//! Every form embeds [`CsrfField`](crate::web::layout::CsrfField), and every form's server
//! function checks it with [`verify`] before anything else (`web::caller::Visitor::posting`). The
//! Origin check that goes with it is [`crate::web::origin`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tower_sessions::Session;

use crate::error::AppError;

/// The hidden field's name in every form.
pub use crate::web::layout::TOKEN_FIELD as FIELD;

/// Where the session keeps its anti-forgery secret.
const SESSION_KEY: &str = "csrf_secret";

/// Bytes of randomness in a session secret and in a token's nonce.
const SECRET_LEN: usize = 32;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// Separates these MACs from anything else the server key might ever sign.
const CONTEXT: &[u8] = b"billing-portal anti-forgery v1\0";

/// The server's key for anti-forgery tokens. Every instance behind one address must share it.
/// Holds the keyed HMAC state, cloned for each token.
#[derive(Clone)]
pub struct CsrfKey(Arc<Hmac<Sha256>>);

impl CsrfKey {
    pub fn new(key: &[u8]) -> anyhow::Result<Self> {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|e| anyhow::anyhow!("the anti-forgery key is unusable: {e}"))?;
        Ok(Self(Arc::new(mac)))
    }

    /// A key for this process only (forms do not survive a restart).
    pub fn random() -> anyhow::Result<Self> {
        let mut key = [0u8; 64];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key)
    }

    /// HMAC-SHA256 of `message` under the server key for another purpose than anti-forgery (the
    /// unsubscribe links of `notify::token`); `purpose` keeps the two from ever meaning the same.
    pub fn sign(&self, purpose: &[u8], message: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = (*self.0).clone();
        mac.update(purpose);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, secret: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac = (*self.0).clone();
        mac.update(CONTEXT);
        mac.update(secret);
        mac.update(nonce);
        mac
    }

    /// A new token for the session whose secret is `secret`: `nonce ‖ HMAC(secret ‖ nonce)`,
    /// base64url. Every page gets a different token, so a page's bytes never repeat the secret.
    fn issue(&self, secret: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let tag = self.mac(secret, &nonce).finalize().into_bytes();
        let mut token = Vec::with_capacity(NONCE_LEN + MAC_LEN);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` was issued for the session whose secret is `secret` (in constant time).
    fn accepts(&self, secret: &[u8], token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        if bytes.len() != NONCE_LEN + MAC_LEN {
            return false;
        }
        let (nonce, tag) = bytes.split_at(NONCE_LEN);
        self.mac(secret, nonce).verify_slice(tag).is_ok()
    }
}

/// The anti-forgery secret of one session, ready to issue tokens for its pages. A secret made for
/// a session that had none is stored in the session only once a token has been issued, so pages
/// without forms create no session.
pub struct CsrfToken {
    key: CsrfKey,
    secret: Vec<u8>,
    unsaved: bool,
    issued: AtomicBool,
}

impl CsrfToken {
    /// The session's secret, or a new one for a session that has none yet.
    pub async fn of_session(session: &Session, key: &CsrfKey) -> Result<Self, AppError> {
        let (secret, unsaved) = match stored_secret(session).await? {
            Some(secret) => (secret, false),
            None => {
                let mut secret = vec![0u8; SECRET_LEN];
                rand::rng().fill_bytes(&mut secret);
                (secret, true)
            }
        };
        Ok(Self {
            key: key.clone(),
            secret,
            unsaved,
            issued: AtomicBool::new(false),
        })
    }

    /// A token for a form on the page being rendered.
    pub fn authenticity_token(&self) -> String {
        self.issued.store(true, Ordering::Relaxed);
        self.key.issue(&self.secret)
    }

    /// Stores a new secret in the session if a token was issued from it. Called once the page is
    /// rendered (see [`crate::web::caller`]).
    pub async fn save(&self, session: &Session) -> Result<(), AppError> {
        if self.unsaved && self.issued.load(Ordering::Relaxed) {
            session
                .insert(SESSION_KEY, URL_SAFE_NO_PAD.encode(&self.secret))
                .await?;
        }
        Ok(())
    }
}

/// The secret the session holds, if any.
async fn stored_secret(session: &Session) -> Result<Option<Vec<u8>>, AppError> {
    let stored: Option<String> = session.get(SESSION_KEY).await?;
    Ok(stored
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .filter(|s| s.len() == SECRET_LEN))
}

/// Checks `token` against the session's secret. A session without a secret (say, a new session
/// after log-out, or none at all) accepts no token.
pub async fn verify(session: &Session, key: &CsrfKey, token: &str) -> Result<(), AppError> {
    match stored_secret(session).await? {
        Some(secret) if key.accepts(&secret, token) => Ok(()),
        _ => Err(AppError::CsrfRejected),
    }
}

/// Forgets the session's secret, so every token issued so far stops working and the next page
/// gets a new one. Signing in calls it: a token the session had before belongs to whoever
/// prepared that session, not to the user now signed in.
pub async fn rotate(session: &Session) -> Result<(), AppError> {
    session.remove_value(SESSION_KEY).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_own_session_secret_and_key() {
        let key = CsrfKey::new(&[7u8; 64]).expect("key");
        let mine = [1u8; SECRET_LEN];
        let theirs = [2u8; SECRET_LEN];
        let token = key.issue(&mine);
        assert!(key.accepts(&mine, &token));
        assert!(!key.accepts(&theirs, &token));
        let other_key = CsrfKey::new(&[8u8; 64]).expect("key");
        assert!(!other_key.accepts(&mine, &token));
        // Each page gets a different token; all of them verify.
        let another = key.issue(&mine);
        assert_ne!(token, another);
        assert!(key.accepts(&mine, &another));
    }

    #[test]
    fn malformed_or_tampered_tokens_are_refused() {
        let key = CsrfKey::new(&[7u8; 64]).expect("key");
        let secret = [1u8; SECRET_LEN];
        let token = key.issue(&secret);
        let mut tampered = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        tampered[NONCE_LEN] ^= 1;
        for bad in [
            String::new(),
            "Zm9yZ2Vk".to_owned(),
            "not base64!".to_owned(),
            URL_SAFE_NO_PAD.encode(tampered),
            token[..token.len() - 2].to_owned(),
            format!("{token}AA"),
        ] {
            assert!(!key.accepts(&secret, &bad), "{bad:?} should be refused");
        }
    }
}
