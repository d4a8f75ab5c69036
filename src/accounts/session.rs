//! What the session remembers about a signed-in user: who they are and which organization they
//! last looked at. Signing in rotates the session id so a planted id cannot be reused.

use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use super::repo::{self, User};
use crate::error::AppError;

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
        session.flush().await?;
    }
    Ok(user)
}

/// Starts an authenticated session under a fresh id.
pub async fn sign_in(session: &Session, user_id: Uuid) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_KEY, user_id).await?;
    Ok(())
}

/// Ends the session: its record is deleted and the cookie forgotten.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

pub async fn current_org(session: &Session) -> Result<Option<Uuid>, AppError> {
    Ok(session.get(ORG_KEY).await?)
}

pub async fn remember_org(session: &Session, org_id: Uuid) -> Result<(), AppError> {
    session.insert(ORG_KEY, org_id).await?;
    Ok(())
}
