//! Reads of usage and credits for the API and the pages: an organization's standing, the usage
//! history by day, notifications.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::consumption::Account;
use super::entitlements::{current_period, Counter, Standing};
use super::writer::{SubscriptionColumns, SUBSCRIPTION_COLUMNS};

#[derive(sqlx::FromRow)]
struct AccountRow {
    balance_millicredits: i64,
    unsettled_overage: i32,
    #[sqlx(flatten)]
    subscription: SubscriptionColumns,
}

/// Everything the entitlements are computed from: subscription, account, and the counters of
/// the current and previous periods.
pub async fn standing(db: &PgPool, org_id: Uuid, now: DateTime<Utc>) -> sqlx::Result<Standing> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT c.balance_millicredits, c.unsettled_overage, {SUBSCRIPTION_COLUMNS}
         FROM credit_accounts c LEFT JOIN subscriptions s ON s.org_id = c.org_id
         WHERE c.org_id = $1"
    ))
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    let gauges = super::gauges::values(db, org_id).await?;
    let Some(row) = row else {
        return Ok(Standing {
            gauges,
            ..Standing::default()
        });
    };
    let mut standing = Standing {
        subscription: row.subscription.into_stored(),
        account: Account {
            balance_millicredits: row.balance_millicredits,
            unsettled_overage: row.unsettled_overage.max(0) as u32,
        },
        gauges,
        ..Standing::default()
    };
    let period = current_period(&standing, now);
    let rows: Vec<(DateTime<Utc>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT period_start, tier, included, credits, overage FROM usage_counters
         WHERE org_id = $1 AND period_start = $2",
    )
    .bind(org_id)
    .bind(period.start)
    .fetch_all(db)
    .await?;
    for (start, tier, included, credits, overage) in rows {
        standing.counters.insert(
            (start, tier),
            Counter {
                included: included.max(0) as u64,
                credits: credits.max(0) as u64,
                overage: overage.max(0) as u64,
            },
        );
    }
    Ok(standing)
}

/// Actions per day (when they occurred) and tier, counted in periods from `from` on and
/// occurring before `to`. Read from the per-day aggregates, which outlive the raw actions.
pub async fn daily_usage(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<(NaiveDate, String, i64)>> {
    sqlx::query_as(
        "SELECT occurred_day AS day, tier, sum(included + credits + overage)::bigint
         FROM usage_daily
         WHERE org_id = $1 AND period_start >= $2
           AND occurred_day >= ($2 AT TIME ZONE 'UTC')::date
           AND occurred_day < (($3 - interval '1 microsecond') AT TIME ZONE 'UTC')::date + 1
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Messages for the organization's owners, newest first.
pub async fn notifications(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<(DateTime<Utc>, String, String)>> {
    sqlx::query_as(
        "SELECT created_at, kind, message FROM notifications WHERE org_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(org_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Auto top-up settings and state, for the credits page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TopUpSettings {
    pub auto_top_up: bool,
    pub top_up_below_credits: i64,
    pub top_up_packs: i32,
    pub top_up_monthly_cap: i32,
    pub top_up_failures: i32,
}

pub async fn top_up_settings(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<TopUpSettings> {
    sqlx::query_as(
        "SELECT auto_top_up, top_up_below_credits, top_up_packs, top_up_monthly_cap,
                top_up_failures
         FROM credit_accounts WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}

/// Saves the settings in a transaction of its own, which carries the actor to the audit log.
pub async fn save_top_up_settings(
    db: &sqlx::PgPool,
    org_id: Uuid,
    s: &TopUpSettings,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    crate::audit::context::stamp(&mut tx).await?;
    // Turning it on again starts the failure count afresh.
    sqlx::query(
        "UPDATE credit_accounts SET auto_top_up = $2, top_up_below_credits = $3,
             top_up_packs = $4, top_up_monthly_cap = $5,
             top_up_failures = CASE WHEN $2 THEN 0 ELSE top_up_failures END,
             top_up_not_before = NULL, updated_at = now()
         WHERE org_id = $1",
    )
    .bind(org_id)
    .bind(s.auto_top_up)
    .bind(s.top_up_below_credits)
    .bind(s.top_up_packs)
    .bind(s.top_up_monthly_cap)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
