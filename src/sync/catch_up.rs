//! The catch-up from Stripe's Events API. Stripe gives up on a webhook after three days of
//! failures, and an endpoint that was down or disabled never hears of what happened meanwhile;
//! Stripe still lists every event for 30 days. Each run lists the events since its cursor (the
//! newest event it listed last time, a little before it for events that share a second or were
//! listed late; on the first run the newest event we hold), never more than 30 days back, and
//! puts the ones we lack into the webhook inbox, the same table the endpoint writes, keyed by
//! event id: the worker applies each event once, whichever way it came.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::stripe_gateway::sync_calls::ListedEvent;
use crate::stripe_gateway::Gateway;

/// Stripe lists events of the last 30 days.
pub const HORIZON_SECS: i64 = 30 * 86_400;

/// How far before its cursor a run starts reading again: events sharing a second with the
/// newest one, or created while the last run was paging, are listed once more (and found held).
pub const OVERLAP_SECS: i64 = 300;

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// The `created` it read from.
    pub since: i64,
    pub listed: usize,
    /// Events we never had, now in the inbox.
    pub inserted: usize,
}

/// The job's state for the admin webhook page.
#[derive(Debug, Clone)]
pub struct CatchUpState {
    pub cursor: Option<i64>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_listed: i32,
    pub last_inserted: i32,
    pub total_inserted: i64,
    /// Events in the inbox that came from the catch-up.
    pub caught_up_events: i64,
}

/// Where a run starts: a little before the cursor (else the newest event held), at most 30 days
/// back from `now`.
pub fn start_from(cursor: Option<i64>, newest_held: Option<i64>, now: i64) -> i64 {
    let oldest = now - HORIZON_SECS;
    match cursor.or(newest_held) {
        Some(t) => (t - OVERLAP_SECS).max(oldest),
        None => oldest,
    }
}

/// One run: list, store what is missing, move the cursor. The caller holds the job's lease.
pub async fn run(pool: &PgPool, gateway: &Gateway, now: DateTime<Utc>) -> anyhow::Result<CatchUp> {
    let (cursor, newest): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT cursor_created FROM stripe_catch_up),
                (SELECT max(created) FROM webhook_events)",
    )
    .fetch_one(pool)
    .await?;
    let since = start_from(cursor, newest, now.timestamp());
    let events = gateway.events_since(since).await?;
    let inserted = store(pool, &events).await?;
    let newest_listed = events.iter().map(|e| e.created).max();
    sqlx::query(
        "UPDATE stripe_catch_up SET cursor_created = greatest(cursor_created, $1),
             last_run_at = now(), last_listed = $2, last_inserted = $3,
             total_inserted = total_inserted + $3",
    )
    .bind(newest_listed)
    .bind(events.len() as i32)
    .bind(inserted as i32)
    .execute(pool)
    .await?;
    Ok(CatchUp {
        since,
        listed: events.len(),
        inserted,
    })
}

/// Stores the events the inbox lacks, in one statement; returns how many were new.
async fn store(pool: &PgPool, events: &[ListedEvent]) -> sqlx::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let versions: Vec<Option<&str>> = events.iter().map(|e| e.api_version.as_deref()).collect();
    let created: Vec<i64> = events.iter().map(|e| e.created).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO webhook_events (id, type, api_version, created, payload, source)
         SELECT id, kind, version, created, payload::jsonb, 'catch_up'
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
              AS t(id, kind, version, created, payload)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(kinds)
    .bind(versions)
    .bind(created)
    .bind(payloads)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() as usize)
}

pub async fn state(pool: &PgPool) -> sqlx::Result<CatchUpState> {
    let (cursor, last_run_at, last_listed, last_inserted, total_inserted, caught_up_events) =
        sqlx::query_as(
            "SELECT cursor_created, last_run_at, last_listed, last_inserted, total_inserted,
                    (SELECT count(*) FROM webhook_events WHERE source = 'catch_up')
             FROM stripe_catch_up",
        )
        .fetch_one(pool)
        .await?;
    Ok(CatchUpState {
        cursor,
        last_run_at,
        last_listed,
        last_inserted,
        total_inserted,
        caught_up_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_starts_a_little_before_its_cursor_and_never_past_30_days() {
        let now = 100 * 86_400;
        assert_eq!(
            start_from(Some(now - 60), None, now),
            now - 60 - OVERLAP_SECS
        );
        // The cursor wins over the newest event held (a newer delivery must not skip a gap).
        assert_eq!(
            start_from(Some(now - 3_600), Some(now - 60), now),
            now - 3_600 - OVERLAP_SECS
        );
        assert_eq!(
            start_from(None, Some(now - 60), now),
            now - 60 - OVERLAP_SECS
        );
        assert_eq!(start_from(None, None, now), now - HORIZON_SECS);
        assert_eq!(start_from(Some(1), None, now), now - HORIZON_SECS);
    }
}
