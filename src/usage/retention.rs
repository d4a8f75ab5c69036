//! Usage history that stays small: `usage_actions` is partitioned by month of `recorded_at`
//! (UTC). This module keeps partitions made ahead of time and drops whole months older than
//! the retention (`USAGE_RETENTION_MONTHS`), with their idempotency keys; the per-day
//! aggregates in `usage_daily` stay forever (see the migration `20261203005001`). The DDL lives
//! in two SQL functions of that migration, so nothing here formats SQL.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use sqlx::PgPool;

/// How many months past the current one always have a partition.
pub const MONTHS_AHEAD: u32 = 3;

/// What one upkeep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Partitions made (names like `usage_actions_2027_03`).
    pub created: Vec<String>,
    /// Partitions dropped, with their raw actions and idempotency keys.
    pub dropped: Vec<String>,
    /// Raw actions are kept from here on (the start of the oldest month kept).
    pub kept_from: DateTime<Utc>,
}

/// The first instant (UTC) of the month holding `t`.
pub fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or(t.date_naive());
    Utc.from_utc_datetime(&first.and_time(chrono::NaiveTime::MIN))
}

/// The start of the oldest month whose raw actions are kept at `now`: `months` whole months
/// before the current one. Months are dropped whole, so every action is kept at least `months`
/// months and less than one month longer (with 13, on any day of December 2027 raw actions
/// reach back to 1 November 2026).
pub fn kept_from(now: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    let this = month_start(now);
    this.checked_sub_months(Months::new(months)).unwrap_or(this)
}

/// Makes the partition for the month holding `t` unless it exists; true when it made one.
pub async fn ensure_partition(pool: &PgPool, t: DateTime<Utc>) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT usage_partition_ensure($1)")
        .bind(t)
        .fetch_one(pool)
        .await
}

/// Whether a write failed because its month has no partition.
pub fn no_partition(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("23514") && d.message().starts_with("no partition of relation")
    })
}

/// Makes this month's partition and the next [`MONTHS_AHEAD`], and drops every month that
/// ended before [`kept_from`]. `now` is a parameter so tests can move the clock forward.
pub async fn upkeep(pool: &PgPool, now: DateTime<Utc>, months: u32) -> sqlx::Result<Upkeep> {
    let mut created = Vec::new();
    let this = month_start(now);
    for ahead in 0..=MONTHS_AHEAD {
        let Some(month) = this.checked_add_months(Months::new(ahead)) else {
            continue;
        };
        if ensure_partition(pool, month).await? {
            created.push(partition_name(month));
        }
    }
    let cut = kept_from(now, months);
    // One transaction: the keys, the partition and the marker of where raw actions begin
    // change together, so reconciliation never sees half a drop.
    let mut tx = pool.begin().await?;
    let dropped: Vec<String> = sqlx::query_scalar("SELECT usage_partitions_drop_before($1)")
        .bind(cut)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Upkeep {
        created,
        dropped,
        kept_from: cut,
    })
}

/// The name the migration's function gives the month's partition.
pub fn partition_name(month: DateTime<Utc>) -> String {
    format!("usage_actions_{:04}_{:02}", month.year(), month.month())
}

/// The periodic job, once across instances: at start and then every `every`.
/// How soon an upkeep that failed (it gives way to requests holding the locks it needs) runs again.
const RETRY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn work_forever(pool: PgPool, months: u32, every: std::time::Duration) {
    loop {
        let body = upkeep(&pool, Utc::now(), months);
        match crate::db::lease::run_exclusive(&pool, "usage-partitions", async {
            body.await.map_err(anyhow::Error::from)
        })
        .await
        {
            Ok(Some(done)) if done.created.is_empty() && done.dropped.is_empty() => {
                tracing::debug!("usage partitions up to date")
            }
            Ok(Some(done)) => tracing::info!(
                created = ?done.created,
                dropped = ?done.dropped,
                kept_from = %done.kept_from,
                "usage partitions kept up"
            ),
            Ok(None) => tracing::debug!("another instance keeps the usage partitions"),
            Err(e) => {
                // Most often it gave way to requests holding the tables' locks: soon again.
                tracing::warn!(error = %e, "usage partition upkeep failed; trying again shortly");
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                continue;
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 15, 30, 0)
            .single()
            .expect("date")
    }

    #[test]
    fn thirteen_months_keep_this_month_and_the_thirteen_before_it() {
        let cut = kept_from(at(2027, 12, 20), 13);
        assert_eq!(cut, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(
            kept_from(at(2027, 1, 31), 1),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            partition_name(month_start(at(2027, 3, 9))),
            "usage_actions_2027_03"
        );
    }
}
