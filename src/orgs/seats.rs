//! The seat limit: the catalog's members gauge (`users` in the seats catalog) caps how many
//! people an organization holds. Inviting counts members and pending invitations, so a manager
//! hears about the limit when inviting; accepting counts members only, under the organization's
//! row lock (`usage::gauges::lock_limits`), so two people accepting at once cannot both take the
//! last seat. The rule is [`crate::billing::limits::check_one_more_member`].

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::catalog::Catalog;
use crate::billing::limits::{check_one_more_member, OverLimit};
use crate::billing::repo as billing;
use crate::billing::subscription::effective_plan;

/// Who takes a seat already.
#[derive(Debug, Clone, Copy)]
pub enum Counting<'a> {
    /// Members, and pending invitations other than one to this address (which a new
    /// invitation replaces).
    WithPendingExcept(&'a str),
    /// Members only (accepting an invitation).
    MembersOnly,
}

/// Whether one more person fits in the organization's plan as it stands now.
pub async fn room_for_one_more(
    conn: &mut PgConnection,
    catalog: &Catalog,
    org_id: Uuid,
    counting: Counting<'_>,
) -> sqlx::Result<Result<(), Box<OverLimit>>> {
    if catalog.members_meter().is_none() {
        return Ok(Ok(()));
    }
    let (with_pending, except) = match counting {
        Counting::WithPendingExcept(email) => (true, email),
        Counting::MembersOnly => (false, ""),
    };
    let taken: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM memberships WHERE org_id = $1)
              + CASE WHEN $2 THEN (
                    SELECT count(*) FROM invitations
                    WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
                      AND expires_at > now() AND email <> $3)
                ELSE 0 END",
    )
    .bind(org_id)
    .bind(with_pending)
    .bind(except)
    .fetch_one(&mut *conn)
    .await?;
    let stored = billing::subscription(&mut *conn, org_id)
        .await?
        .map(|(s, _)| s);
    let plan = effective_plan(catalog, stored.as_ref(), Utc::now());
    Ok(check_one_more_member(
        catalog,
        plan,
        u64::try_from(taken).unwrap_or(0),
    ))
}
