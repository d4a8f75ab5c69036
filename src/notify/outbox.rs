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
    enqueue_all(db, std::slice::from_ref(&notice)).await
}

/// Writes every notice for each of its recipients in one statement (a batch of usage warnings
/// costs the writer's transaction one round trip, not one per warning); returns how many rows
/// were new.
pub async fn enqueue_all(db: &mut PgConnection, notices: &[Notice<'_>]) -> sqlx::Result<u64> {
    if notices.is_empty() {
        return Ok(0);
    }
    let n = notices.len();
    let (mut causes, mut orgs, mut users) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut kinds, mut categories, mut values) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut audiences, mut honours) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for notice in notices {
        let category = notice.kind.category();
        causes.push(notice.cause);
        orgs.push(notice.org_id);
        users.push(notice.user_id);
        kinds.push(notice.kind.as_str());
        categories.push(category.as_str());
        values.push(notice.values.clone());
        audiences.push(match notice.kind.audience() {
            Audience::Managers => "managers",
            Audience::User => "user",
            Audience::Operators => "operators",
        });
        // Compulsory categories ignore opt-outs (there is no way to set one, but a row written
        // by hand must not silence payment-failure mail either).
        honours.push(category.optional());
    }
    let written = sqlx::query(
        "INSERT INTO notification_outbox
             (dedupe_key, org_id, user_id, recipient, kind, category, params, status)
         SELECT n.kind || ':' || n.cause || ':' || u.id, n.org_id, u.id, u.email, n.kind, n.category,
                n.params || coalesce((SELECT jsonb_build_object('org_name', o.name, 'org_slug', o.slug)
                                      FROM organizations o WHERE o.id = n.org_id), '{}'::jsonb),
                CASE WHEN n.honours AND EXISTS (SELECT 1 FROM notification_opt_outs x
                                                WHERE x.user_id = u.id AND x.category = n.category)
                     THEN 'suppressed' ELSE 'pending' END
         FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[],
                     $7::text[], $8::bool[])
              AS n(cause, org_id, user_id, kind, category, params, audience, honours)
         CROSS JOIN LATERAL (
             SELECT m.user_id AS id FROM memberships m
             WHERE n.audience = 'managers' AND m.org_id = n.org_id AND m.role IN ('owner', 'admin')
             UNION ALL SELECT n.user_id WHERE n.audience = 'user' AND n.user_id IS NOT NULL
             UNION ALL SELECT a.id FROM users a WHERE n.audience = 'operators' AND a.is_platform_admin
         ) r
         -- OFFSET 0 keeps this a look-up by primary key per recipient: flattened into a join,
         -- the operators branch's guess of many rows (on tables not yet analyzed) made the
         -- planner hash the whole users table for every batch.
         CROSS JOIN LATERAL (SELECT v.id, v.email FROM users v WHERE v.id = r.id OFFSET 0) u
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&causes)
    .bind(&orgs)
    .bind(&users)
    .bind(&kinds)
    .bind(&categories)
    .bind(&values)
    .bind(&audiences)
    .bind(&honours)
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
