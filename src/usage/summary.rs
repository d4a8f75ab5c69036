//! The usage summary: actions per meter over the current and the previous period, in total and
//! per day (UTC), as `GET /api/v1/usage/summary` answers it. [`summarize`] is pure (the days of a
//! period, every meter of the catalog, zeros filled in); [`load`] reads the periods and counts.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::period::Period;
use crate::billing::catalog::Catalog;

/// Actions on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DayCount {
    /// The day (UTC), `YYYY-MM-DD`.
    pub date: NaiveDate,
    pub count: u64,
}

/// One meter's actions in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MeterUsage {
    /// The meter's key (a tier in the hybrid catalog: `small`, `medium`, ...).
    pub meter: String,
    pub name: String,
    /// Actions recorded in the period (included, paid with credits or overage).
    pub total: u64,
    /// Every day of the period up to today, oldest first, with zeros.
    pub days: Vec<DayCount>,
}

/// One billing period's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PeriodUsage {
    pub start: DateTime<Utc>,
    /// Exclusive.
    pub end: DateTime<Utc>,
    /// Every meter of the catalog, in the catalog's order.
    pub meters: Vec<MeterUsage>,
}

/// The current and the previous period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageSummary {
    pub current: PeriodUsage,
    pub previous: PeriodUsage,
}

/// Builds the summary from counts per (day, meter). Days run from the period's first day to its
/// last, or to today for the current period; a count for a meter the catalog does not have is
/// left out.
pub fn summarize(
    catalog: &Catalog,
    current: Period,
    previous: Period,
    counts: &[(NaiveDate, String, i64)],
    now: DateTime<Utc>,
) -> UsageSummary {
    let by_day: BTreeMap<(NaiveDate, &str), u64> = counts
        .iter()
        .map(|(day, meter, n)| ((*day, meter.as_str()), (*n).max(0) as u64))
        .collect();
    let period = |p: Period| {
        let first = p.start.date_naive();
        // `end` is exclusive: a period ending at midnight does not hold that day.
        let last = (p.end - chrono::Duration::nanoseconds(1))
            .date_naive()
            .min(now.date_naive());
        let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
        let meters = catalog
            .meter_keys()
            .into_iter()
            .map(|meter| {
                let days: Vec<DayCount> = days
                    .iter()
                    .map(|d| DayCount {
                        date: *d,
                        count: by_day.get(&(*d, meter)).copied().unwrap_or(0),
                    })
                    .collect();
                MeterUsage {
                    meter: meter.to_owned(),
                    name: catalog.meter_name(meter).to_owned(),
                    total: days.iter().map(|d| d.count).sum(),
                    days,
                }
            })
            .collect();
        PeriodUsage {
            start: p.start,
            end: p.end,
            meters,
        }
    };
    UsageSummary {
        current: period(current),
        previous: period(previous),
    }
}

/// Reads the organization's periods (from its subscription, as entitlements count them) and
/// its actions per day, and summarizes them.
#[cfg(feature = "ssr")]
pub async fn load(
    db: &sqlx::PgPool,
    catalog: &Catalog,
    org_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<UsageSummary> {
    let standing = super::repo::standing(db, org_id, now).await?;
    let current = super::entitlements::current_period(&standing, now);
    let previous = current.previous();
    let counts = super::repo::daily_usage(db, org_id, previous.start, current.end).await?;
    Ok(summarize(catalog, current, previous, &counts, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hybrid() -> Catalog {
        crate::billing::catalog::shipped("hybrid.toml")
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("date")
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn every_meter_and_day_is_listed_with_zeros_and_the_current_period_stops_today() {
        let catalog = hybrid();
        let current = Period {
            start: at(2026, 12, 1),
            end: at(2027, 1, 1),
        };
        let previous = current.previous();
        let counts = vec![
            (day(2026, 11, 30), "small".to_owned(), 3),
            (day(2026, 12, 1), "small".to_owned(), 2),
            (day(2026, 12, 3), "xl".to_owned(), 1),
            (day(2026, 12, 3), "retired".to_owned(), 9),
        ];
        let now = at(2026, 12, 3) + chrono::Duration::hours(5);
        let summary = summarize(&catalog, current, previous, &counts, now);
        let keys: Vec<&str> = summary
            .current
            .meters
            .iter()
            .map(|m| m.meter.as_str())
            .collect();
        assert_eq!(keys, ["small", "medium", "large", "xl"]);
        let small = &summary.current.meters[0];
        assert_eq!(small.name, "Small");
        assert_eq!(small.total, 2);
        assert_eq!(small.days.len(), 3, "1 to 3 December");
        assert_eq!(small.days[0].count, 2);
        assert_eq!(small.days[2].count, 0);
        assert_eq!(summary.current.meters[3].total, 1);
        let previous_small = &summary.previous.meters[0];
        assert_eq!(previous_small.days.len(), 30, "all of November");
        assert_eq!(previous_small.total, 3);
        assert_eq!(previous_small.days[29].date, day(2026, 11, 30));
        assert_eq!(summary.previous.start, at(2026, 11, 1));
        let all: u64 = summary.current.meters.iter().map(|m| m.total).sum();
        assert_eq!(all, 3, "an unknown meter is left out");
    }
}
