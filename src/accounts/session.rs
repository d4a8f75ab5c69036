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
/// The day the session was last saved because of activity alone (see [`keep_alive`]).
const TOUCHED_KEY: &str = "touched_on";

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

/// Remembers the organization a user looks at (tower-sessions writes the session only when the
/// value changes).
pub async fn remember_org(session: &Session, org_id: Uuid) -> Result<(), AppError> {
    session.insert(ORG_KEY, org_id).await?;
    Ok(())
}

/// Sessions expire after `SESSION_DAYS` without activity, and the store only learns of activity
/// when the session is saved. Saving it on every request would cost a durable write per page
/// view, so a signed-in session that nothing else changed is saved once a day: it then lasts
/// between `SESSION_DAYS - 1` and `SESSION_DAYS` days after the last visit.
pub async fn keep_alive(session: &Session, today: chrono::NaiveDate) -> Result<(), AppError> {
    if user_id(session).await?.is_none() {
        return Ok(());
    }
    let touched: Option<chrono::NaiveDate> = session.get(TOUCHED_KEY).await?;
    if needs_touch(touched, today) {
        session.insert(TOUCHED_KEY, today).await?;
    }
    Ok(())
}

/// Whether a session last touched on `touched` must be saved again `today`.
fn needs_touch(touched: Option<chrono::NaiveDate>, today: chrono::NaiveDate) -> bool {
    touched.is_none_or(|day| day < today)
}

#[cfg(test)]
mod tests {
    use super::needs_touch;
    use chrono::NaiveDate;

    #[test]
    fn a_session_is_saved_for_activity_once_a_day() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).expect("date");
        assert!(needs_touch(None, day(1)));
        assert!(!needs_touch(Some(day(1)), day(1)));
        assert!(needs_touch(Some(day(1)), day(2)));
        // A clock that went back does not make every view write.
        assert!(!needs_touch(Some(day(3)), day(2)));
    }
}
