//! Resending a notification: a platform admin's repair action. The message is written again to
//! the outbox as a new row (a new key, so the original stays as it was in the history), sent by
//! the worker like any other, and the action is recorded in the audit log with its reason in the
//! same transaction. A message its recipient turned off is not resent.

use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::context::{self as audit, Actor, Stamp};
use crate::sync::repair::{self, RepairError};

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error(transparent)]
    Invalid(#[from] RepairError),
    #[error("there is no such message for this organization")]
    NotFound,
    #[error("its recipient turned this kind of message off, so it is not resent")]
    Suppressed,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Writes message `id` of organization `org_id` to the outbox again; returns the new row's id.
pub async fn resend(
    db: &PgPool,
    admin: Uuid,
    org_id: Uuid,
    id: i64,
    typed_reason: &str,
) -> Result<i64, ResendError> {
    let reason = repair::reason(typed_reason)?;
    let stamp = Stamp::of(Actor::User(admin))
        .action("admin.resend_notification")
        .reason(reason);
    let mut tx = db.begin().await?;
    let original: Option<(String, String)> = sqlx::query_as(
        "SELECT status, kind FROM notification_outbox WHERE id = $1 AND org_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (status, kind) = original.ok_or(ResendError::NotFound)?;
    if status == "suppressed" {
        return Err(ResendError::Suppressed);
    }
    let copy: i64 = sqlx::query_scalar(
        "INSERT INTO notification_outbox
             (dedupe_key, org_id, user_id, recipient, kind, category, params, status)
         SELECT 'resend:' || id || ':' || $2, org_id, user_id, recipient, kind, category, params,
                'pending'
         FROM notification_outbox WHERE id = $1
         RETURNING id",
    )
    .bind(id)
    .bind(Uuid::new_v4().to_string())
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &stamp,
        Some(org_id),
        ("notification_outbox", &id.to_string()),
        serde_json::json!({ "id": id, "kind": kind, "status": status }),
        serde_json::json!({ "id": copy, "kind": kind, "status": "pending" }),
    )
    .await?;
    tx.commit().await?;
    Ok(copy)
}
