//! The facts the metrics are computed from, read from the portal's own tables (never Stripe),
//! each dated by the UTC day the portal recorded it, for the days `[first, last]`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::flows::{Amount, CheckoutOutcome, Delivery, PackSale};
use super::timeline::SubChange;

/// The start of `day` in UTC.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Everything recorded in a span of days, grouped by day.
#[derive(Debug, Default)]
pub struct Facts {
    /// Every subscription change before the span's end (the state needs the whole history).
    pub changes: Vec<SubChange>,
    pub checkouts: BTreeMap<NaiveDate, Vec<CheckoutOutcome>>,
    pub packs: BTreeMap<NaiveDate, Vec<PackSale>>,
    pub consumed: BTreeMap<NaiveDate, i64>,
    pub invoices_paid: BTreeMap<NaiveDate, Vec<Amount>>,
    pub refunds: BTreeMap<NaiveDate, Vec<Amount>>,
    pub webhooks: BTreeMap<NaiveDate, Vec<Delivery>>,
}

pub async fn facts(pool: &PgPool, first: NaiveDate, last: NaiveDate) -> sqlx::Result<Facts> {
    let from = start_of(first);
    let to = start_of(last.succ_opt().unwrap_or(last));
    let changes: Vec<(Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT org_id, stripe_subscription_id, plan_key, status, at FROM subscription_history
         WHERE at < $1 ORDER BY at, id",
    )
    .bind(to)
    .fetch_all(pool)
    .await?;
    let checkouts: Vec<(NaiveDate, String)> = sqlx::query_as(
        "SELECT (created_at AT TIME ZONE 'UTC')::date, status FROM checkout_sessions
         WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let packs: Vec<(NaiveDate, i32, i64, i64, String)> = sqlx::query_as(
        "SELECT (settled_at AT TIME ZONE 'UTC')::date, packs, millicredits, amount_cents, currency
         FROM credit_purchases WHERE status = 'paid' AND settled_at >= $1 AND settled_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let consumed: Vec<(NaiveDate, i64)> = sqlx::query_as(
        "SELECT (recorded_at AT TIME ZONE 'UTC')::date, sum(millicredits)::bigint FROM usage_actions
         WHERE millicredits > 0 AND recorded_at >= $1 AND recorded_at < $2 GROUP BY 1",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let invoices: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
        "SELECT (paid_seen_at AT TIME ZONE 'UTC')::date, currency, amount_paid FROM invoices
         WHERE paid_seen_at >= $1 AND paid_seen_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let refunds: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
        "SELECT (at AT TIME ZONE 'UTC')::date, currency, amount_cents FROM credit_refunds
         WHERE at >= $1 AND at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    // Seconds from Stripe's `created` to applied; ignored events (not ours) count as handled.
    let webhooks: Vec<(NaiveDate, String, Option<i64>)> = sqlx::query_as(
        "SELECT (received_at AT TIME ZONE 'UTC')::date, status,
                (extract(epoch FROM applied_at)::bigint - created)
         FROM webhook_events WHERE received_at >= $1 AND received_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut f = Facts {
        changes: changes
            .into_iter()
            .map(|(org, subscription, plan, status, at)| SubChange {
                org,
                subscription,
                plan,
                status,
                at,
            })
            .collect(),
        ..Facts::default()
    };
    for (day, status) in checkouts {
        let outcome = match status.as_str() {
            "complete" => CheckoutOutcome::Completed,
            "expired" => CheckoutOutcome::Abandoned,
            _ => CheckoutOutcome::Open,
        };
        f.checkouts.entry(day).or_default().push(outcome);
    }
    for (day, packs, millicredits, amount, currency) in packs {
        f.packs.entry(day).or_default().push(PackSale {
            packs: i64::from(packs),
            millicredits,
            amount,
            currency,
        });
    }
    f.consumed.extend(consumed);
    for (day, currency, minor) in invoices {
        f.invoices_paid
            .entry(day)
            .or_default()
            .push(Amount { currency, minor });
    }
    for (day, currency, minor) in refunds {
        f.refunds
            .entry(day)
            .or_default()
            .push(Amount { currency, minor });
    }
    for (day, status, lag) in webhooks {
        let delivery = match (status.as_str(), lag) {
            ("applied" | "ignored", lag_seconds) => Delivery::Applied { lag_seconds },
            ("failed", _) => Delivery::Failed,
            _ => Delivery::Pending,
        };
        f.webhooks.entry(day).or_default().push(delivery);
    }
    Ok(f)
}

/// Stored snapshots of the days `[first, last]`, as JSON (the service reads them).
pub async fn snapshots(
    pool: &PgPool,
    first: NaiveDate,
    last: NaiveDate,
) -> sqlx::Result<Vec<(NaiveDate, serde_json::Value)>> {
    sqlx::query_as(
        "SELECT day, figures FROM revenue_snapshots WHERE day BETWEEN $1 AND $2 ORDER BY day",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
}

pub async fn upsert_snapshot(
    pool: &PgPool,
    day: NaiveDate,
    figures: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO revenue_snapshots (day, figures) VALUES ($1, $2)
         ON CONFLICT (day) DO UPDATE SET figures = EXCLUDED.figures, computed_at = now()",
    )
    .bind(day)
    .bind(figures)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn latest_snapshot_day(pool: &PgPool) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar("SELECT max(day) FROM revenue_snapshots")
        .fetch_one(pool)
        .await
}

/// The first day the portal recorded anything the metrics count: its first organization.
pub async fn first_day(pool: &PgPool) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar("SELECT (min(created_at) AT TIME ZONE 'UTC')::date FROM organizations")
        .fetch_one(pool)
        .await
}
