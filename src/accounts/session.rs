//! What the session remembers about a signed-in user: who they are and which organization they
//! last looked at. Signing in and signing out both rotate the session id, so a planted id cannot be
//! reused and a copied cookie stops working at log-out; signing in also replaces the session's
//! anti-forgery secret, so tokens handed out before belong to nobody.

use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use super::repo::{self, User};
use crate::error::AppError;
use crate::web::csrf;

const USER_KEY: &str = "user_id";
const ORG_KEY: &str = "current_org_id";

pub async fn user_id(session: &Session) -> Result<Option<Uuid>, AppError> {
    Ok(session.get(USER_KEY).await?)
}

/// The signed-in user, if any. A session naming a deleted user is cleared.
pub async fn current_user(session: &Session, db: &PgPool) -> Result<Option<User>, AppError> {
    let Some(user_id) = user_id(session).await? else {
        return Ok(None);
    };
    let user = repo::find(db, user_id).await?;
    if user.is_none() {
        sign_out(session).await?;
    }
    Ok(user)
}

/// Starts an authenticated session under a fresh id, with a fresh anti-forgery secret.
pub async fn sign_in(session: &Session, user_id: Uuid) -> Result<(), AppError> {
    session.cycle_id().await?;
    csrf::rotate(session).await?;
    session.insert(USER_KEY, user_id).await?;
    Ok(())
}

/// Ends the session: its data is dropped and its record deleted, and whatever is stored next
/// (the "logged out" notice) lives under a new id. `flush` alone is not enough: tower-sessions
/// keeps the old id for the record saved after it, so the cookie would stay the same.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.clear().await;
    session.cycle_id().await?;
    Ok(())
}

pub async fn current_org(session: &Session) -> Result<Option<Uuid>, AppError> {
    Ok(session.get(ORG_KEY).await?)
}

pub async fn remember_org(session: &Session, org_id: Uuid) -> Result<(), AppError> {
    session.insert(ORG_KEY, org_id).await?;
    Ok(())
}
