//! SQL for users. Every query takes its values as bind parameters.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::model::Email;
use crate::orgs::model::{OrgName, Role};
use crate::orgs::repo::{self as orgs_repo, Org};

/// A signed-in person as the pages need them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub is_platform_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("An account with this email already exists. Log in instead.")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}

/// Creates a user with no organization.
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &Email,
    password_hash: &str,
    is_platform_admin: bool,
) -> Result<User, SignupError> {
    sqlx::query_as(
        "INSERT INTO users (id, email, password_hash, is_platform_admin) VALUES ($1, $2, $3, $4)
         RETURNING id, email, is_platform_admin",
    )
    .bind(Uuid::new_v4())
    // Already normalized: the unique constraint on the column is the uniqueness rule.
    .bind(email.as_str())
    .bind(password_hash)
    .bind(is_platform_admin)
    .fetch_one(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "users_email_key") {
            SignupError::EmailTaken
        } else {
            SignupError::Database(e)
        }
    })
}

/// Signup: the user, their organization and their owner membership, all or nothing.
pub async fn sign_up(
    pool: &PgPool,
    email: &Email,
    password_hash: &str,
    org_name: &OrgName,
) -> Result<(User, Org), SignupError> {
    let mut tx = pool.begin().await?;
    let user = insert_user(&mut *tx, email, password_hash, false).await?;
    let org = orgs_repo::insert_org(&mut tx, org_name).await?;
    orgs_repo::add_member(&mut *tx, org.id, user.id, Role::Owner).await?;
    tx.commit().await?;
    Ok((user, org))
}

/// The user id and password hash for a login attempt.
pub async fn credentials(
    db: impl PgExecutor<'_>,
    email: &Email,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(email.normalized())
        .fetch_optional(db)
        .await
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as("SELECT id, email, is_platform_admin FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn find_by_email(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<Option<User>> {
    sqlx::query_as("SELECT id, email, is_platform_admin FROM users WHERE email = $1")
        .bind(email.normalized())
        .fetch_optional(db)
        .await
}

/// Grants the platform admin flag; `false` when no user has that email.
pub async fn make_platform_admin(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<bool> {
    let updated = sqlx::query("UPDATE users SET is_platform_admin = true WHERE email = $1")
        .bind(email.normalized())
        .execute(db)
        .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db)
        .await
}

/// Brings stored addresses to the one normalized form where SQL alone could not (non-ASCII
/// letters: the migration's `lower()` folds only ASCII here). An address whose normalized form
/// another account already has is left as it is, for an operator to settle. Returns how many
/// rows changed.
pub async fn normalize_stored_emails(pool: &PgPool) -> sqlx::Result<u64> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE email ~ '[^\\x01-\\x7e]'")
            .fetch_all(pool)
            .await?;
    let mut changed = 0;
    for (id, email) in rows {
        let normalized = super::model::normalize_email(&email);
        if normalized == email {
            continue;
        }
        let updated = sqlx::query(
            "UPDATE users SET email = $2 WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM users WHERE email = $2)",
        )
        .bind(id)
        .bind(&normalized)
        .execute(pool)
        .await;
        match updated {
            Ok(done) => changed += done.rows_affected(),
            // Another instance normalized the same address meanwhile.
            Err(e) if is_unique_violation(&e, "users_email_key") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}
