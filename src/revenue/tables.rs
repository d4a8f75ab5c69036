//! The metrics page's tables, one per metric, built from the days' figures: a row per day, a
//! column per series, and the range's summary lines (rates, totals). The charts and the CSV
//! downloads are drawn from the same tables, so the three never disagree. Pure.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::figures::{arr, summarize, DayFigures, Ratio};
use crate::usage::credits;
use crate::web::format::money;

/// How a column's numbers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// Minor units of a currency.
    Money(String),
    MilliCredits,
    Seconds,
}

impl Unit {
    pub fn show(&self, value: Option<i64>) -> String {
        let Some(v) = value else {
            return "—".to_owned();
        };
        match self {
            Unit::Count => v.to_string(),
            Unit::Money(currency) => money(v, currency),
            Unit::MilliCredits => credits::format(v),
            Unit::Seconds => format!("{v} s"),
        }
    }

    /// What the CSV header adds, since the CSV holds raw numbers.
    pub fn csv_suffix(&self) -> String {
        match self {
            Unit::Count => String::new(),
            Unit::Money(currency) => format!(" ({currency}, minor units)"),
            Unit::MilliCredits => " (millicredits)".to_owned(),
            Unit::Seconds => " (seconds)".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub unit: Unit,
    /// Drawn on the chart (ARR is MRR × 12, so it is in the table only).
    pub charted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The address part of its CSV download: `mrr-usd`.
    pub key: String,
    pub title: String,
    pub columns: Vec<Column>,
    /// A row per day, oldest first; `None` where there is no figure (a median of no events).
    pub rows: Vec<(NaiveDate, Vec<Option<i64>>)>,
    /// The range's summary: label and value.
    pub summary: Vec<(String, String)>,
}

fn col(name: &str, unit: Unit) -> Column {
    Column {
        name: name.to_owned(),
        unit,
        charted: true,
    }
}

fn rate(r: Option<Ratio>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| r.percent())
}

fn table(
    key: String,
    title: String,
    columns: Vec<Column>,
    days: &[DayFigures],
    value: impl Fn(&DayFigures) -> Vec<Option<i64>>,
) -> Table {
    Table {
        key,
        title,
        columns,
        rows: days.iter().map(|d| (d.day, value(d))).collect(),
        summary: Vec::new(),
    }
}

/// Every table for the range `days` (oldest first); `before` is the day before it, and
/// `plans` the catalog's plans as (key, name) in catalog order. `currency` is the catalog's,
/// shown even when nothing was sold yet.
pub fn build(
    before: Option<&DayFigures>,
    days: &[DayFigures],
    plans: &[(String, String)],
    currency: &str,
) -> Vec<Table> {
    let s = summarize(before, days);
    let mut currencies: BTreeSet<String> = BTreeSet::from([currency.to_owned()]);
    for d in days {
        currencies.extend(d.subscriptions.mrr.keys().cloned());
        currencies.extend(d.revenue.keys().cloned());
    }
    let mut out = Vec::new();
    for c in &currencies {
        let m = Unit::Money(c.clone());
        let mut t = table(
            format!("mrr-{c}"),
            format!("MRR and ARR ({})", c.to_uppercase()),
            vec![
                col("MRR", m.clone()),
                Column {
                    charted: false,
                    ..col("ARR", m.clone())
                },
            ],
            days,
            |d| {
                let mrr = d.subscriptions.mrr.get(c).copied().unwrap_or(0);
                vec![Some(mrr), Some(arr(mrr))]
            },
        );
        let end = s.mrr_end.get(c).copied().unwrap_or(0);
        t.summary = vec![
            ("MRR at the end".into(), m.show(Some(end))),
            ("ARR at the end".into(), m.show(Some(arr(end)))),
        ];
        out.push(t);
        let mut t = table(
            format!("movement-{c}"),
            format!("MRR movement ({})", c.to_uppercase()),
            [
                "New",
                "Expansion",
                "Contraction",
                "Churned",
                "Reactivated",
                "Net",
            ]
            .iter()
            .map(|n| col(n, m.clone()))
            .collect(),
            days,
            |d| {
                let mv = d.subscriptions.movement.get(c).cloned().unwrap_or_default();
                [
                    mv.new,
                    mv.expansion,
                    mv.contraction,
                    mv.churned,
                    mv.reactivated,
                    mv.net(),
                ]
                .map(Some)
                .to_vec()
            },
        );
        let mv = s.movement.get(c).cloned().unwrap_or_default();
        t.summary = vec![("Net change over the range".into(), m.show(Some(mv.net())))];
        out.push(t);
    }
    let mut plan_columns: Vec<Column> = plans
        .iter()
        .map(|(_, name)| col(name, Unit::Count))
        .collect();
    plan_columns.push(col("In trial", Unit::Count));
    out.push(table(
        "subscriptions".into(),
        "Active subscriptions per plan".into(),
        plan_columns,
        days,
        |d| {
            let mut v: Vec<Option<i64>> = plans
                .iter()
                .map(|(key, _)| {
                    Some(
                        d.subscriptions
                            .active_by_plan
                            .get(key)
                            .copied()
                            .unwrap_or(0),
                    )
                })
                .collect();
            v.push(Some(d.subscriptions.trialing));
            v
        },
    ));
    let mut t = table(
        "trials".into(),
        "Trials".into(),
        vec![
            col("Started", Unit::Count),
            col("Converted", Unit::Count),
            col("Expired", Unit::Count),
        ],
        days,
        |d| {
            let t = d.subscriptions.trials;
            vec![Some(t.started), Some(t.converted), Some(t.expired)]
        },
    );
    t.summary = vec![("Trial-to-paid conversion".into(), rate(s.conversion))];
    out.push(t);
    let mut t = table(
        "churn".into(),
        "Logo and revenue churn".into(),
        vec![
            col("Customers lost", Unit::Count),
            col("Paying customers", Unit::Count),
        ],
        days,
        |d| {
            vec![
                Some(d.subscriptions.churned_customers),
                Some(d.subscriptions.paying_customers),
            ]
        },
    );
    t.summary = vec![("Logo churn".into(), rate(s.logo_churn))];
    for c in &currencies {
        let r = s.revenue_churn.get(c).copied().flatten();
        t.summary
            .push((format!("Revenue churn ({})", c.to_uppercase()), rate(r)));
    }
    out.push(t);
    out.push(table(
        "checkout".into(),
        "Checkout sessions".into(),
        vec![
            col("Started", Unit::Count),
            col("Completed", Unit::Count),
            col("Abandoned", Unit::Count),
        ],
        days,
        |d| {
            let c = d.checkouts;
            vec![Some(c.started), Some(c.completed), Some(c.abandoned)]
        },
    ));
    let mut t = table(
        "credits".into(),
        "Credit packs sold and credits consumed".into(),
        vec![
            col("Packs sold", Unit::Count),
            col("Credits sold", Unit::MilliCredits),
            col("Credits consumed", Unit::MilliCredits),
        ],
        days,
        |d| {
            let c = d.credits;
            vec![
                Some(c.packs_sold),
                Some(c.millicredits_sold),
                Some(c.millicredits_consumed),
            ]
        },
    );
    t.summary = vec![
        ("Packs sold".into(), s.credits.packs_sold.to_string()),
        (
            "Credits consumed".into(),
            credits::format(s.credits.millicredits_consumed),
        ),
    ];
    out.push(t);
    for c in &currencies {
        let m = Unit::Money(c.clone());
        let mut t = table(
            format!("revenue-{c}"),
            format!("Net revenue after refunds ({})", c.to_uppercase()),
            vec![
                col("Gross", m.clone()),
                col("Refunds", m.clone()),
                col("Net", m.clone()),
            ],
            days,
            |d| {
                let r = d.revenue.get(c).copied().unwrap_or_default();
                vec![Some(r.gross), Some(r.refunds), Some(r.net())]
            },
        );
        let r = s.revenue.get(c).copied().unwrap_or_default();
        t.summary = vec![("Net over the range".into(), m.show(Some(r.net())))];
        out.push(t);
    }
    let mut t = table(
        "webhooks".into(),
        "Webhook health".into(),
        vec![
            col("Received", Unit::Count),
            col("Applied", Unit::Count),
            col("Failed", Unit::Count),
            col("Pending", Unit::Count),
            Column {
                charted: false,
                ..col("Median lag", Unit::Seconds)
            },
        ],
        days,
        |d| {
            let w = d.webhooks;
            vec![
                Some(w.received),
                Some(w.applied),
                Some(w.failed),
                Some(w.pending),
                w.median_lag_seconds,
            ]
        },
    );
    t.summary = vec![
        ("Success rate".into(), rate(s.webhooks.success)),
        (
            "Worst day's median lag".into(),
            Unit::Seconds.show(s.webhooks.worst_median_lag_seconds),
        ),
    ];
    out.push(t);
    out
}
