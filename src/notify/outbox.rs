//! Writing notifications: [`enqueue`] runs inside the caller's transaction, so a message exists
//! exactly when the change that causes it commits. One row per recipient, keyed by the cause, the
//! kind and the recipient: the same cause twice (a webhook delivered twice, two instances) adds
//! nothing. A recipient who turned the category off gets a `suppressed` row (the history shows it).

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::kinds::{Audience, Kind};

/// One notification to write.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub kind: Kind,
    /// The organization it is about (its owners and admins receive it; its name and slug are
    /// added to the values).
    pub org_id: Option<Uuid>,
    /// The one recipient of a [`Audience::User`] notice.
    pub user_id: Option<Uuid>,
    /// What caused it, unique per cause: a Stripe object and the transition, an invitation, a
    /// warning's cooldown window.
    pub cause: &'a str,
    /// The values its templates use (see `templates::sample_values`).
    pub values: Value,
}

/// Writes `notice` for each of its recipients; returns how many rows were new.
pub async fn enqueue(db: &mut PgConnection, notice: Notice<'_>) -> sqlx::Result<u64> {
    let audience = match notice.kind.audience() {
        Audience::Managers => "managers",
        Audience::User => "user",
        Audience::Operators => "operators",
    };
    let category = notice.kind.category();
    // Compulsory categories ignore opt-outs (there is no way to set one, but a row written by
    // hand must not silence payment-failure mail either).
    let honours_opt_out = category.optional();
    let written = sqlx::query(
        "WITH r AS (
             SELECT m.user_id FROM memberships m
             WHERE $6 = 'managers' AND m.org_id = $2 AND m.role IN ('owner', 'admin')
             UNION SELECT $7::uuid WHERE $6 = 'user' AND $7::uuid IS NOT NULL
             UNION SELECT u.id FROM users u WHERE $6 = 'operators' AND u.is_platform_admin
         )
         INSERT INTO notification_outbox
             (dedupe_key, org_id, user_id, recipient, kind, category, params, status)
         SELECT $3 || ':' || $1 || ':' || u.id, $2, u.id, u.email, $3, $4,
                $5::jsonb || coalesce((SELECT jsonb_build_object('org_name', o.name, 'org_slug', o.slug)
                                       FROM organizations o WHERE o.id = $2), '{}'::jsonb),
                CASE WHEN $8 AND EXISTS (SELECT 1 FROM notification_opt_outs x
                                         WHERE x.user_id = u.id AND x.category = $4)
                     THEN 'suppressed' ELSE 'pending' END
         FROM r JOIN users u ON u.id = r.user_id
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(notice.cause)
    .bind(notice.org_id)
    .bind(notice.kind.as_str())
    .bind(category.as_str())
    .bind(&notice.values)
    .bind(audience)
    .bind(notice.user_id)
    .bind(honours_opt_out)
    .execute(db)
    .await?;
    Ok(written.rows_affected())
}

/// A shorthand for the common case: `kind` about `org_id`, caused by `cause`.
pub async fn about_org(
    db: &mut PgConnection,
    kind: Kind,
    org_id: Uuid,
    cause: &str,
    values: Value,
) -> sqlx::Result<u64> {
    enqueue(
        db,
        Notice {
            kind,
            org_id: Some(org_id),
            user_id: None,
            cause,
            values,
        },
    )
    .await
}
