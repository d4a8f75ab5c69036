//! SQL for invitations. The token is random and shown once; only its SHA-256 is stored and
//! looked up, so a copy of the table cannot be used to join an organization.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::invitation::{decide, Decision, Lifecycle, Refusal};
use super::model::Role;
use super::repo as orgs;
use super::seats::{room_for_one_more, Counting};
use crate::accounts::model::Email;
use crate::billing::catalog::Catalog;
use crate::billing::limits::OverLimit;

/// A fresh random token (256 bits, hex) for an invitation link.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates an invitation and returns its token (for the link, shown once). An earlier pending
/// invitation of the same address to the same organization is revoked, so one link is live.
pub async fn create(
    pool: &PgPool,
    org_id: Uuid,
    email: &Email,
    role: Role,
    invited_by: Uuid,
    valid_days: u32,
) -> sqlx::Result<String> {
    let token = new_token();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE invitations SET revoked_at = now()
         WHERE org_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(email.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))",
    )
    .bind(Uuid::new_v4())
    .bind(org_id)
    .bind(email.as_str())
    .bind(role.as_str())
    .bind(token_hash(&token))
    .bind(invited_by)
    .bind(i32::try_from(valid_days).unwrap_or(7))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// An invitation waiting for an answer, as the organization's managers see it (read with the
/// dashboard, `super::repo::dashboard`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Pending {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// Revokes a pending invitation of this organization; `None` when there is none by that id,
/// else the address it was for.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE invitations SET revoked_at = now()
         WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
         RETURNING email",
    )
    .bind(id)
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Whether someone with this address already belongs to the organization.
pub async fn is_member(db: impl PgExecutor<'_>, org_id: Uuid, email: &Email) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                        WHERE m.org_id = $1 AND u.email = $2)",
    )
    .bind(org_id)
    .bind(email.as_str())
    .fetch_one(db)
    .await
}

/// An invitation found by its link, with the organization it is for.
#[derive(Debug, Clone)]
pub struct Found {
    pub org_id: Uuid,
    pub org_name: String,
    pub org_slug: String,
    pub email: String,
    pub role: Role,
    pub lifecycle: Lifecycle,
}

type FoundRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
    Option<DateTime<Utc>>,
);

const FIND: &str =
    "SELECT i.id, o.id, o.name, o.slug, i.email, i.role, i.expires_at, i.accepted_at,
                           i.accepted_by, i.revoked_at
                    FROM invitations i JOIN organizations o ON o.id = i.org_id
                    WHERE i.token_hash = $1";

fn found(row: FoundRow) -> sqlx::Result<(Uuid, Found)> {
    let (
        id,
        org_id,
        org_name,
        org_slug,
        email,
        role,
        expires_at,
        accepted_at,
        accepted_by,
        revoked_at,
    ) = row;
    Ok((
        id,
        Found {
            org_id,
            org_name,
            org_slug,
            email,
            role: role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            lifecycle: Lifecycle {
                expires_at,
                accepted_at,
                accepted_by,
                revoked_at,
            },
        },
    ))
}

pub async fn find(db: impl PgExecutor<'_>, token: &str) -> sqlx::Result<Option<Found>> {
    let row: Option<FoundRow> = sqlx::query_as(FIND)
        .bind(token_hash(token))
        .fetch_optional(db)
        .await?;
    Ok(row.map(found).transpose()?.map(|(_, f)| f))
}

/// What accepting did.
#[derive(Debug, Clone)]
pub enum Accepted {
    Joined(Found),
    AlreadyJoined(Found),
    Refused(Found, Refusal),
    /// The organization's plan has no seat left; nothing changed.
    NoSeat(Found, Box<OverLimit>),
}

/// Accepts the invitation behind `token` for this user, once: the row is locked, so a double
/// submit adds one membership and the second answer is "already joined". Someone new needs a
/// seat in the organization's plan (see [`super::seats`]). `None` when no invitation has this
/// token.
pub async fn accept(
    pool: &PgPool,
    catalog: &Catalog,
    token: &str,
    user_id: Uuid,
    user_email: &str,
) -> sqlx::Result<Option<Accepted>> {
    let mut tx = pool.begin().await?;
    let row: Option<FoundRow> = sqlx::query_as(&format!("{FIND} FOR UPDATE OF i"))
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
    let Some((id, invitation)) = row.map(found).transpose()? else {
        return Ok(None);
    };
    let state = invitation.lifecycle.state(Utc::now());
    let outcome = match decide(state, &invitation.email, user_id, user_email) {
        Decision::Join => {
            crate::usage::gauges::lock_limits(&mut tx, invitation.org_id).await?;
            let member_already: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2)",
            )
            .bind(invitation.org_id)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if !member_already {
                let room =
                    room_for_one_more(&mut tx, catalog, invitation.org_id, Counting::MembersOnly)
                        .await?;
                if let Err(over) = room {
                    return Ok(Some(Accepted::NoSeat(invitation, over)));
                }
            }
            // Someone who is a member already keeps the role they have.
            let added =
                orgs::add_member(&mut *tx, invitation.org_id, user_id, invitation.role).await?;
            if added {
                // The new member hears of it, in the same transaction, once per invitation.
                crate::notify::enqueue(
                    &mut tx,
                    crate::notify::Notice {
                        kind: crate::notify::kinds::Kind::MemberAdded,
                        org_id: Some(invitation.org_id),
                        user_id: Some(user_id),
                        cause: &format!("invitation-{id}"),
                        values: serde_json::json!({ "role": invitation.role.as_str() }),
                    },
                )
                .await?;
            }
            sqlx::query(
                "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            Accepted::Joined(invitation)
        }
        Decision::AlreadyJoined => Accepted::AlreadyJoined(invitation),
        Decision::Refuse(refusal) => Accepted::Refused(invitation, refusal),
    };
    tx.commit().await?;
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_only_hashed() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
