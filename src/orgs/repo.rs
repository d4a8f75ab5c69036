//! SQL for organizations and memberships, and the dashboard's one statement. Reads of an
//! organization go through the caller's membership, so a user can only ever load organizations
//! they belong to.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::invitation_repo::Pending;
use super::model::{OrgName, Role};
use crate::billing::dashboard_card as plan_card;
use crate::usage::dashboard_card as usage_card;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// An organization seen through one user's membership of it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub org: Org,
    pub role: Role,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    id: Uuid,
    name: String,
    slug: String,
    created_at: DateTime<Utc>,
    role: String,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = sqlx::Error;
    fn try_from(row: MembershipRow) -> Result<Self, Self::Error> {
        let role = row
            .role
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Membership {
            org: Org {
                id: row.id,
                name: row.name,
                slug: row.slug,
                created_at: row.created_at,
            },
            role,
        })
    }
}

/// Inserts an organization under a free slug: the name's slug, or that plus a short random
/// suffix when it is taken.
pub async fn insert_org(tx: &mut PgConnection, name: &OrgName) -> sqlx::Result<Org> {
    let base = name.slug_base();
    let mut slug = base.clone();
    loop {
        let inserted: Option<Org> = sqlx::query_as(
            "INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)
             ON CONFLICT (slug) DO NOTHING
             RETURNING id, name, slug, created_at",
        )
        .bind(Uuid::new_v4())
        .bind(name.as_str())
        .bind(&slug)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(org) = inserted {
            return Ok(org);
        }
        let suffix = Uuid::new_v4().simple().to_string();
        slug = format!("{base}-{}", &suffix[..6]);
    }
}

/// Creates an organization with `owner` as its owner.
pub async fn create(pool: &PgPool, name: &OrgName, owner: Uuid) -> sqlx::Result<Org> {
    let mut tx = pool.begin().await?;
    let org = insert_org(&mut tx, name).await?;
    add_member(&mut *tx, org.id, owner, Role::Owner).await?;
    tx.commit().await?;
    Ok(org)
}

pub async fn add_member(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, org_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(org_id)
    .bind(role.as_str())
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The organization and its first owner (the longest-standing), who stands for it where no
/// person is asking (an API key): `(org, user id, e-mail)`.
pub async fn first_owner(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<(Org, Uuid, String)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        org: Org,
        user_id: Uuid,
        email: String,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT o.id, o.name, o.slug, o.created_at, u.id AS user_id, u.email
         FROM organizations o
         JOIN memberships m ON m.org_id = o.id AND m.role = 'owner'
         JOIN users u ON u.id = m.user_id
         WHERE o.id = $1
         ORDER BY m.created_at, u.id LIMIT 1",
    )
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.org, r.user_id, r.email)))
}

/// Every organization the user belongs to, by name.
pub async fn memberships_of(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> sqlx::Result<Vec<Membership>> {
    let rows: Vec<MembershipRow> = sqlx::query_as(
        "SELECT o.id, o.name, o.slug, o.created_at, m.role
         FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = $1
         ORDER BY lower(o.name), o.slug",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Membership::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct ViewerRow {
    user_id: Uuid,
    email: String,
    is_platform_admin: bool,
    id: Option<Uuid>,
    name: Option<String>,
    slug: Option<String>,
    created_at: Option<DateTime<Utc>>,
    role: Option<String>,
}

/// A user and their memberships in one statement (every page view needs both), or `None` when
/// the user no longer exists.
pub async fn viewer(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> sqlx::Result<Option<(crate::accounts::repo::User, Vec<Membership>)>> {
    let rows: Vec<ViewerRow> = sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.is_platform_admin,
                o.id, o.name, o.slug, o.created_at, m.role
         FROM users u
         LEFT JOIN memberships m ON m.user_id = u.id
         LEFT JOIN organizations o ON o.id = m.org_id
         WHERE u.id = $1
         ORDER BY lower(o.name), o.slug",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let user = crate::accounts::repo::User {
        id: first.user_id,
        email: first.email.clone(),
        is_platform_admin: first.is_platform_admin,
    };
    let mut memberships = Vec::with_capacity(rows.len());
    for row in rows {
        if let (Some(id), Some(name), Some(slug), Some(created_at), Some(role)) =
            (row.id, row.name, row.slug, row.created_at, row.role)
        {
            memberships.push(Membership::try_from(MembershipRow {
                id,
                name,
                slug,
                created_at,
                role,
            })?);
        }
    }
    Ok(Some((user, memberships)))
}

/// Everything the organization's dashboard shows to one user, read in one statement: their
/// memberships (for the guard and the switcher), and of the organization `slug` if they belong
/// to it, the members, the pending invitations and each card's facts. Without a membership of
/// `slug` everything but the memberships is empty, as if the organization did not exist.
pub struct Dashboard {
    pub memberships: Vec<Membership>,
    pub members: Vec<Member>,
    /// Every pending invitation (at most 100, newest first): whether the reader may see them is
    /// the caller's rule, not the query's.
    pub pending: Vec<Pending>,
    pub subscription: Option<plan_card::Facts>,
    pub usage: Option<usage_card::Facts>,
}

#[derive(Deserialize)]
struct DashboardJson {
    memberships: Vec<MembershipJson>,
    members: Vec<Member>,
    pending: Vec<Pending>,
    subscription: Option<plan_card::Facts>,
    usage: Option<usage_card::Facts>,
}

#[derive(Deserialize)]
struct MembershipJson {
    id: Uuid,
    name: String,
    slug: String,
    created_at: DateTime<Utc>,
    role: Role,
}

/// The dashboard's statement. The cards bring their own fragments (each reads the row `org`),
/// so this module names no billing or usage table; `$3` is the calendar month the usage card
/// counts in without a subscription.
fn dashboard_sql() -> String {
    format!(
        "WITH me AS (
             SELECT o.id, o.name, o.slug, o.created_at, m.role
             FROM memberships m JOIN organizations o ON o.id = m.org_id
             WHERE m.user_id = $1
         ), org AS (
             SELECT id, $3::timestamptz AS month_start FROM me WHERE slug = $2
         )
         SELECT json_build_object(
             'memberships', (SELECT coalesce(json_agg(me ORDER BY lower(me.name), me.slug), '[]')
                             FROM me),
             'members', (SELECT coalesce(json_agg(json_build_object(
                                 'user_id', u.id, 'email', u.email, 'role', m.role,
                                 'joined_at', m.created_at)
                             ORDER BY m.created_at, lower(u.email)), '[]')
                         FROM org JOIN memberships m ON m.org_id = org.id
                         JOIN users u ON u.id = m.user_id),
             'pending', (SELECT coalesce(json_agg(p ORDER BY p.created_at DESC), '[]') FROM (
                             SELECT i.id, i.email, i.role, i.expires_at, i.created_at
                             FROM org JOIN invitations i ON i.org_id = org.id
                             WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL
                               AND i.expires_at > now()
                             ORDER BY i.created_at DESC LIMIT 100) p),
             'subscription', (SELECT {} FROM org),
             'usage', (SELECT {} FROM org)
         )::text",
        plan_card::FACTS,
        usage_card::FACTS
    )
}

pub async fn dashboard(
    db: &PgPool,
    user_id: Uuid,
    slug: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Dashboard> {
    let json: String = sqlx::query_scalar(&dashboard_sql())
        .bind(user_id)
        .bind(slug)
        .bind(usage_card::month_start(now))
        .fetch_one(db)
        .await?;
    let read: DashboardJson = serde_json::from_str(&json)?;
    Ok(Dashboard {
        memberships: read
            .memberships
            .into_iter()
            .map(|m| Membership {
                org: Org {
                    id: m.id,
                    name: m.name,
                    slug: m.slug,
                    created_at: m.created_at,
                },
                role: m.role,
            })
            .collect(),
        members: read.members,
        pending: read.pending,
        subscription: read.subscription,
        usage: read.usage,
    })
}
