//! The daily snapshots: each finished day's figures computed from the portal's tables and
//! stored once (`ON CONFLICT` rewrites the same row), by one instance at a time (a job lease),
//! at start-up and every hour. Days missed while no instance ran are filled in on the next run.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use sqlx::PgPool;

use super::figures::DayFigures;
use super::flows;
use super::queries;
use super::timeline::{self, PlanPrice};
use crate::billing::catalog::{Catalog, Price};

/// The job's name in `job_runs` and its lease.
pub const JOB: &str = "revenue-snapshots";

/// How far back a first run fills in.
const MAX_BACKFILL_DAYS: i64 = 400;

/// What each plan of the catalog adds to MRR.
pub fn prices(catalog: &Catalog) -> BTreeMap<String, PlanPrice> {
    catalog
        .plans
        .iter()
        .filter_map(|p| match &p.price {
            Price::Recurring {
                cents, interval, ..
            } => Some((
                p.key.clone(),
                PlanPrice {
                    currency: catalog.currency.clone(),
                    monthly: timeline::monthly(*cents, *interval),
                },
            )),
            _ => None,
        })
        .collect()
}

/// The figures of the days `[first, last]`, computed now from the portal's tables.
pub async fn compute(
    pool: &PgPool,
    prices: &BTreeMap<String, PlanPrice>,
    first: NaiveDate,
    last: NaiveDate,
) -> sqlx::Result<Vec<DayFigures>> {
    let facts = queries::facts(pool, first, last).await?;
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let subscriptions = timeline::replay(&facts.changes, prices, &days);
    let none = Vec::new();
    Ok(days
        .iter()
        .zip(subscriptions)
        .map(|(day, subscriptions)| {
            let packs = facts.packs.get(day).unwrap_or(&none);
            DayFigures {
                day: *day,
                subscriptions,
                checkouts: flows::checkouts(facts.checkouts.get(day).map_or(&[], |v| v)),
                credits: flows::credits(packs, facts.consumed.get(day).copied().unwrap_or(0)),
                revenue: flows::revenue(
                    facts.invoices_paid.get(day).map_or(&[], |v| v),
                    packs,
                    facts.refunds.get(day).map_or(&[], |v| v),
                ),
                webhooks: flows::webhooks(facts.webhooks.get(day).map_or(&[], |v| v)),
            }
        })
        .collect())
}

/// Writes the snapshot of every finished day not stored yet, up to the day before `today`.
/// Returns how many days were written.
pub async fn write_missing(
    pool: &PgPool,
    catalog: &Catalog,
    today: NaiveDate,
) -> anyhow::Result<usize> {
    let Some(last) = today.pred_opt() else {
        return Ok(0);
    };
    let earliest = today - chrono::Duration::days(MAX_BACKFILL_DAYS);
    let first = match queries::latest_snapshot_day(pool).await? {
        Some(latest) => latest.succ_opt().unwrap_or(latest),
        None => match queries::first_day(pool).await? {
            Some(first) => first,
            None => return Ok(0),
        },
    }
    .max(earliest);
    if first > last {
        return Ok(0);
    }
    write_days(pool, catalog, first, last).await
}

/// Computes and stores the snapshots of `[first, last]`; a day already stored is rewritten
/// with the same figures, so running it again for a day leaves one row.
pub async fn write_days(
    pool: &PgPool,
    catalog: &Catalog,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<usize> {
    let days = compute(pool, &prices(catalog), first, last).await?;
    for figures in &days {
        queries::upsert_snapshot(pool, figures.day, &serde_json::to_value(figures)?).await?;
    }
    Ok(days.len())
}

/// One run of the job, on one instance at a time: `None` when another instance holds it.
pub async fn run_once(
    pool: &PgPool,
    catalog: &Catalog,
    today: NaiveDate,
) -> anyhow::Result<Option<usize>> {
    crate::db::lease::run_exclusive(pool, JOB, write_missing(pool, catalog, today)).await
}

/// At start-up and every hour.
pub async fn work_forever(pool: PgPool, catalog: std::sync::Arc<Catalog>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match run_once(&pool, &catalog, Utc::now().date_naive()).await {
            Ok(Some(written)) if written > 0 => {
                tracing::info!(days = written, "revenue snapshots written");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "revenue snapshots failed"),
        }
    }
}
