//! Reading the audit log: newest first, filtered by organization, actor kind, action and date.
//! There is no statement here that changes a row, and the table refuses any.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// Rows a page shows.
pub const PAGE_ROWS: i64 = 200;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub org_slug: Option<String>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// The user's e-mail or the API key's name, when the actor is one.
    pub actor_label: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub reason: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// What to show; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub org_id: Option<Uuid>,
    pub actor_kind: Option<&'a str>,
    /// An action, or a prefix ending in `.*`.
    pub action: Option<&'a str>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

pub async fn rows(db: impl PgExecutor<'_>, f: &Filter<'_>) -> sqlx::Result<Vec<AuditRow>> {
    let (action, prefix) = match f.action {
        Some(a) if a.ends_with(".*") => {
            let stem = a[..a.len() - 1]
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            (None, Some(format!("{stem}%")))
        }
        Some(a) => (Some(a), None),
        None => (None, None),
    };
    sqlx::query_as(
        "SELECT a.id, a.at, o.slug AS org_slug, a.actor_kind, a.actor_id,
                CASE a.actor_kind
                    WHEN 'user' THEN (SELECT email FROM users WHERE id::text = a.actor_id)
                    WHEN 'api_key' THEN (SELECT name FROM api_keys WHERE id::text = a.actor_id)
                END AS actor_label,
                a.action, a.entity, a.entity_id, a.reason, a.before, a.after
         FROM audit_log a LEFT JOIN organizations o ON o.id = a.org_id
         WHERE ($1::uuid IS NULL OR a.org_id = $1)
           AND ($2::text IS NULL OR a.actor_kind = $2)
           AND ($3::text IS NULL OR a.action = $3)
           AND ($4::text IS NULL OR a.action LIKE $4)
           AND ($5::timestamptz IS NULL OR a.at >= $5)
           AND ($6::timestamptz IS NULL OR a.at < $6)
         ORDER BY a.id DESC LIMIT $7",
    )
    .bind(f.org_id)
    .bind(f.actor_kind)
    .bind(action)
    .bind(prefix)
    .bind(f.from)
    .bind(f.until)
    .bind(PAGE_ROWS)
    .fetch_all(db)
    .await
}
