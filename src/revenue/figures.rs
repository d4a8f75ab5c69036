//! One day's figures (what a snapshot stores) and what a range of days adds up to: MRR and ARR
//! at its end, movement, trials and the conversion rate, logo and revenue churn. Pure.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::flows::{Checkouts, Credits, Revenue, Webhooks};
use super::timeline::{Movement, SubscriptionDay, Trials};

/// Everything the metrics page shows about one day. Stored as a snapshot's JSON, so fields are
/// only ever added (with `#[serde(default)]`), never renamed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFigures {
    pub day: NaiveDate,
    #[serde(default)]
    pub subscriptions: SubscriptionDay,
    #[serde(default)]
    pub checkouts: Checkouts,
    #[serde(default)]
    pub credits: Credits,
    /// Currency → revenue.
    #[serde(default)]
    pub revenue: BTreeMap<String, Revenue>,
    #[serde(default)]
    pub webhooks: Webhooks,
}

/// ARR: MRR times twelve.
pub fn arr(mrr: i64) -> i64 {
    mrr * 12
}

/// A share of a whole, kept as its two counts so nothing is rounded before it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub part: i64,
    pub whole: i64,
}

impl Ratio {
    /// `None` when the whole is zero (nothing to divide: the page shows a dash).
    pub fn new(part: i64, whole: i64) -> Option<Ratio> {
        (whole > 0).then_some(Ratio { part, whole })
    }

    /// In percent with one decimal, rounded half up: `12.5%`.
    pub fn percent(&self) -> String {
        let tenths = (self.part * 1000 * 2 + self.whole) / (self.whole * 2);
        format!("{}.{}%", tenths / 10, tenths % 10)
    }
}

/// What a range of days adds up to. `before` is the day before the range (its end is the
/// range's start); `days` the range, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSummary {
    /// Currency → MRR at the range's end.
    pub mrr_end: BTreeMap<String, i64>,
    /// Currency → MRR at the range's start.
    pub mrr_start: BTreeMap<String, i64>,
    pub movement: BTreeMap<String, Movement>,
    pub trials: Trials,
    /// Converted of the trials that ended (converted or expired) in the range.
    pub conversion: Option<Ratio>,
    /// Customers lost in the range of those paying at its start.
    pub logo_churn: Option<Ratio>,
    /// Currency → churned plus contraction MRR of the MRR at the range's start.
    pub revenue_churn: BTreeMap<String, Option<Ratio>>,
    pub checkouts: Checkouts,
    pub credits: Credits,
    pub revenue: BTreeMap<String, Revenue>,
    pub webhooks: WebhookSummary,
}

/// Webhook health over a range. The median lag over a range is not the median of daily medians,
/// so the range shows the worst day's median instead, and says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookSummary {
    pub received: i64,
    pub applied: i64,
    pub failed: i64,
    /// Applied of the events that are settled (applied or failed).
    pub success: Option<Ratio>,
    pub worst_median_lag_seconds: Option<i64>,
}

pub fn summarize(before: Option<&DayFigures>, days: &[DayFigures]) -> RangeSummary {
    let mrr_start = before
        .map(|b| b.subscriptions.mrr.clone())
        .unwrap_or_default();
    let paying_start = before.map_or(0, |b| b.subscriptions.paying_customers);
    let mrr_end = days
        .last()
        .map(|d| d.subscriptions.mrr.clone())
        .unwrap_or_default();
    let mut movement: BTreeMap<String, Movement> = BTreeMap::new();
    let mut trials = Trials::default();
    let mut churned_customers = 0;
    let mut checkouts = Checkouts::default();
    let mut credits = Credits::default();
    let mut revenue: BTreeMap<String, Revenue> = BTreeMap::new();
    let mut webhooks = WebhookSummary::default();
    for d in days {
        for (currency, m) in &d.subscriptions.movement {
            movement.entry(currency.clone()).or_default().add(m);
        }
        let t = d.subscriptions.trials;
        trials.started += t.started;
        trials.converted += t.converted;
        trials.expired += t.expired;
        churned_customers += d.subscriptions.churned_customers;
        checkouts.started += d.checkouts.started;
        checkouts.completed += d.checkouts.completed;
        checkouts.abandoned += d.checkouts.abandoned;
        credits.packs_sold += d.credits.packs_sold;
        credits.millicredits_sold += d.credits.millicredits_sold;
        credits.millicredits_consumed += d.credits.millicredits_consumed;
        for (currency, r) in &d.revenue {
            let sum = revenue.entry(currency.clone()).or_default();
            sum.gross += r.gross;
            sum.refunds += r.refunds;
        }
        webhooks.received += d.webhooks.received;
        webhooks.applied += d.webhooks.applied;
        webhooks.failed += d.webhooks.failed;
        webhooks.worst_median_lag_seconds = webhooks
            .worst_median_lag_seconds
            .max(d.webhooks.median_lag_seconds);
    }
    webhooks.success = Ratio::new(webhooks.applied, webhooks.applied + webhooks.failed);
    let revenue_churn = movement
        .iter()
        .map(|(currency, m)| {
            let start = mrr_start.get(currency).copied().unwrap_or(0);
            (
                currency.clone(),
                Ratio::new(m.churned + m.contraction, start),
            )
        })
        .collect();
    RangeSummary {
        conversion: Ratio::new(trials.converted, trials.converted + trials.expired),
        logo_churn: Ratio::new(churned_customers, paying_start),
        revenue_churn,
        mrr_end,
        mrr_start,
        movement,
        trials,
        checkouts,
        credits,
        revenue,
        webhooks,
    }
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
