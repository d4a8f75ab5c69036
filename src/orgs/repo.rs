//! SQL for organizations and memberships. Reads of an organization go through the caller's
//! membership, so a user can only ever load organizations they belong to.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{OrgName, Role};

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

#[derive(Debug, Clone)]
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

/// The organization with this slug, if the user is a member of it. Non-members get `None`,
/// exactly as if it did not exist.
pub async fn membership_by_slug(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    slug: &str,
) -> sqlx::Result<Option<Membership>> {
    let row: Option<MembershipRow> = sqlx::query_as(
        "SELECT o.id, o.name, o.slug, o.created_at, m.role
         FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = $1 AND o.slug = $2",
    )
    .bind(user_id)
    .bind(slug)
    .fetch_optional(db)
    .await?;
    row.map(Membership::try_from).transpose()
}

pub async fn members(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<Member>> {
    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT u.id, u.email, m.role, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $1
         ORDER BY m.created_at, lower(u.email)",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(user_id, email, role, joined_at)| {
            Ok(Member {
                user_id,
                email,
                role: role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                joined_at,
            })
        })
        .collect()
}
