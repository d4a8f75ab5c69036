//! One-shot messages shown on the next page a user sees (after a redirect), kept in the session,
//! and [`take_once`] for any value shown once that way (a new API key, an invitation link).

use serde::de::DeserializeOwned;
use tower_sessions::Session;

pub use crate::web::chrome::{Flash, FlashKind};

const FLASH_KEY: &str = "flash";

pub async fn set(session: &Session, flash: Flash) -> Result<(), tower_sessions::session::Error> {
    session.insert(FLASH_KEY, flash).await
}

/// The pending message, removed.
pub async fn take(session: &Session) -> Result<Option<Flash>, tower_sessions::session::Error> {
    take_once(session, FLASH_KEY).await
}

/// The value under `key`, removed from the session. Without one the session is left untouched:
/// tower-sessions marks a session modified by any removal, even of an absent key, which would
/// cost a write of the session (an upsert and a durable commit) on every page view.
pub async fn take_once<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> Result<Option<T>, tower_sessions::session::Error> {
    match session.get::<T>(key).await? {
        Some(value) => {
            session.remove_value(key).await?;
            Ok(Some(value))
        }
        None => Ok(None),
    }
}
