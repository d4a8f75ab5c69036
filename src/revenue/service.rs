//! The metrics of a range for the page and the CSV downloads: the stored snapshots of the
//! finished days, and the days not stored yet (today always, and any day the job has not
//! reached) computed now from the portal's tables. Never calls Stripe.

use chrono::{Duration, NaiveDate};
use sqlx::PgPool;

use super::figures::DayFigures;
use super::{queries, snapshots, tables};
use crate::billing::catalog::Catalog;

/// The range's days and their tables.
pub struct Metrics {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub tables: Vec<tables::Table>,
}

/// The figures of `[first, today]` and of the day before `first`, oldest first.
pub async fn days(
    pool: &PgPool,
    catalog: &Catalog,
    first: NaiveDate,
    today: NaiveDate,
) -> anyhow::Result<Vec<DayFigures>> {
    let before = first.pred_opt().unwrap_or(first);
    let mut stored: std::collections::BTreeMap<NaiveDate, DayFigures> = Default::default();
    for (day, json) in queries::snapshots(pool, before, today - Duration::days(1)).await? {
        stored.insert(day, serde_json::from_value(json)?);
    }
    let wanted: Vec<NaiveDate> = before.iter_days().take_while(|d| *d <= today).collect();
    let missing_from = wanted.iter().copied().find(|d| !stored.contains_key(d));
    if let Some(from) = missing_from {
        // Nothing happened before the first organization: those days are empty, not computed.
        let from = match queries::first_day(pool).await? {
            Some(first_org) => from.max(first_org),
            None => today,
        }
        .min(today);
        for figures in snapshots::compute(pool, &snapshots::prices(catalog), from, today).await? {
            stored.entry(figures.day).or_insert(figures);
        }
    }
    Ok(wanted
        .into_iter()
        .map(|day| {
            stored.remove(&day).unwrap_or(DayFigures {
                day,
                ..DayFigures::default()
            })
        })
        .collect())
}

/// The tables of the last `range` days up to `today`.
pub async fn metrics(
    pool: &PgPool,
    catalog: &Catalog,
    range: u32,
    today: NaiveDate,
) -> anyhow::Result<Metrics> {
    let first = today - Duration::days(i64::from(range.max(1)) - 1);
    let all = days(pool, catalog, first, today).await?;
    let (before, range_days) = match all.split_first() {
        Some((before, rest)) => (Some(before), rest),
        None => (None, &all[..]),
    };
    let plans: Vec<(String, String)> = catalog
        .plans
        .iter()
        .filter(|p| p.is_paid())
        .map(|p| (p.key.clone(), p.name.clone()))
        .collect();
    Ok(Metrics {
        first,
        last: today,
        tables: tables::build(before, range_days, &plans, &catalog.currency),
    })
}
