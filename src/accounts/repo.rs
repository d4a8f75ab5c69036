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
    sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(email) = $1")
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
    sqlx::query_as("SELECT id, email, is_platform_admin FROM users WHERE lower(email) = $1")
        .bind(email.normalized())
        .fetch_optional(db)
        .await
}

/// Grants the platform admin flag; `false` when no user has that email.
pub async fn make_platform_admin(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<bool> {
    let updated = sqlx::query("UPDATE users SET is_platform_admin = true WHERE lower(email) = $1")
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
