//! SQL for the admin pages: every organization with its billing state, and the webhook inbox.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// One row of the organization list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub owner_emails: Vec<String>,
    pub plan_key: Option<String>,
    pub status: Option<String>,
    pub trial_end: Option<DateTime<Utc>>,
    pub past_due_since: Option<DateTime<Utc>>,
}

/// Organizations whose name, slug or a member's email contains `query` (all when empty),
/// newest first.
pub async fn organizations(db: impl PgExecutor<'_>, query: &str) -> sqlx::Result<Vec<OrgRow>> {
    // LIKE wildcards typed by the admin are taken literally.
    let pattern = format!(
        "%{}%",
        query
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as(
        "SELECT o.id, o.name, o.slug, o.created_at,
                coalesce(array_agg(DISTINCT u.email) FILTER (WHERE m.role = 'owner'), '{}') AS owner_emails,
                s.plan_key, s.status, s.trial_end, s.past_due_since
         FROM organizations o
         LEFT JOIN memberships m ON m.org_id = o.id
         LEFT JOIN users u ON u.id = m.user_id
         LEFT JOIN subscriptions s ON s.org_id = o.id
         WHERE $1 = '%%' OR o.name ILIKE $1 OR o.slug ILIKE $1
            OR EXISTS (SELECT 1 FROM memberships m2 JOIN users u2 ON u2.id = m2.user_id
                       WHERE m2.org_id = o.id AND u2.email ILIKE $1)
         GROUP BY o.id, s.org_id
         ORDER BY o.created_at DESC, o.slug
         LIMIT 200",
    )
    .bind(pattern)
    .fetch_all(db)
    .await
}

pub async fn organization(
    db: impl PgExecutor<'_>,
    slug: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as("SELECT id, name FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// The newest events, filtered by type (exact or `prefix.*`), status and organization.
pub async fn events(
    db: impl PgExecutor<'_>,
    kind: Option<&str>,
    status: Option<&str>,
    org: Option<Uuid>,
) -> sqlx::Result<Vec<EventRow>> {
    let kind_pattern = kind.map(|k| match k.strip_suffix('*') {
        Some(prefix) => format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_")),
        None => k.replace('%', "\\%").replace('_', "\\_"),
    });
    sqlx::query_as(
        "SELECT id, type, status, attempts, received_at, last_error FROM webhook_events
         WHERE ($1::text IS NULL OR type LIKE $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR org_id = $3)
         ORDER BY received_at DESC, id DESC
         LIMIT 200",
    )
    .bind(kind_pattern)
    .bind(status)
    .bind(org)
    .fetch_all(db)
    .await
}

#[derive(sqlx::FromRow)]
struct EventWithPayload {
    #[sqlx(flatten)]
    row: EventRow,
    payload: Value,
}

pub async fn event(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<(EventRow, Value)>> {
    let found: Option<EventWithPayload> = sqlx::query_as(
        "SELECT id, type, status, attempts, received_at, last_error, payload FROM webhook_events WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(found.map(|e| (e.row, e.payload)))
}

/// Queues an event to be applied again, through the same code as a fresh delivery, and writes
/// the admin's replay (with its reason) to the audit log in the same transaction.
pub async fn replay(
    db: &sqlx::PgPool,
    id: &str,
    stamp: &crate::audit::context::Stamp,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let before: Option<(String, Option<uuid::Uuid>, i32, Option<String>)> = sqlx::query_as(
        "SELECT status, org_id, attempts, last_error FROM webhook_events WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, org_id, attempts, last_error)) = before else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE webhook_events SET status = 'pending', next_attempt_at = now(), last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    crate::audit::context::record(
        &mut tx,
        stamp,
        org_id,
        ("webhook_events", id),
        serde_json::json!({ "status": status, "attempts": attempts, "last_error": last_error }),
        serde_json::json!({ "status": "pending", "attempts": attempts, "last_error": null }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
