//! One-shot messages shown on the next page a user sees (after a redirect), kept in the session.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const FLASH_KEY: &str = "flash";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashKind {
    Notice,
    Alert,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn notice(message: impl Into<String>) -> Self {
        Self {
            kind: FlashKind::Notice,
            message: message.into(),
        }
    }
}

pub async fn set(session: &Session, flash: Flash) -> Result<(), tower_sessions::session::Error> {
    session.insert(FLASH_KEY, flash).await
}

pub async fn take(session: &Session) -> Result<Option<Flash>, tower_sessions::session::Error> {
    session.remove(FLASH_KEY).await
}
