//! The day's flows that are not subscription changes: Checkout sessions, credit packs sold and
//! credits consumed, revenue after refunds, and webhook health. Each takes the plain facts of
//! the day and counts them. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Checkout Session the portal opened, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// Paid or started (the customer finished the page).
    Completed,
    /// Expired unfinished (the customer left, or it timed out).
    Abandoned,
    /// Still open.
    Open,
}

/// Checkout sessions opened on a day, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkouts {
    pub started: i64,
    pub completed: i64,
    pub abandoned: i64,
}

pub fn checkouts(sessions: &[CheckoutOutcome]) -> Checkouts {
    let mut c = Checkouts {
        started: sessions.len() as i64,
        ..Checkouts::default()
    };
    for s in sessions {
        match s {
            CheckoutOutcome::Completed => c.completed += 1,
            CheckoutOutcome::Abandoned => c.abandoned += 1,
            CheckoutOutcome::Open => {}
        }
    }
    c
}

/// A credit pack purchase that was paid (through Checkout or auto top-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSale {
    pub packs: i64,
    pub millicredits: i64,
    pub amount: i64,
    pub currency: String,
}

/// Credits sold and used on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    pub packs_sold: i64,
    pub millicredits_sold: i64,
    pub millicredits_consumed: i64,
}

/// `consumed` is what the day's recorded actions took from balances (included actions take
/// nothing).
pub fn credits(sales: &[PackSale], consumed: i64) -> Credits {
    Credits {
        packs_sold: sales.iter().map(|s| s.packs).sum(),
        millicredits_sold: sales.iter().map(|s| s.millicredits).sum(),
        millicredits_consumed: consumed,
    }
}

/// Money in one currency on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revenue {
    /// Invoices paid plus credit packs paid.
    pub gross: i64,
    /// Refunded.
    pub refunds: i64,
}

impl Revenue {
    pub fn net(&self) -> i64 {
        self.gross - self.refunds
    }
}

/// An amount in a currency (an invoice paid, a refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub currency: String,
    pub minor: i64,
}

/// Currency → revenue, from the invoices and packs paid and the refunds made that day.
pub fn revenue(
    invoices_paid: &[Amount],
    packs: &[PackSale],
    refunds: &[Amount],
) -> BTreeMap<String, Revenue> {
    let mut out: BTreeMap<String, Revenue> = BTreeMap::new();
    for i in invoices_paid {
        out.entry(i.currency.clone()).or_default().gross += i.minor;
    }
    for p in packs {
        out.entry(p.currency.clone()).or_default().gross += p.amount;
    }
    for r in refunds {
        out.entry(r.currency.clone()).or_default().refunds += r.minor;
    }
    out
}

/// Where a received webhook event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Applied (or ignored as not ours), `lag_seconds` after Stripe created it (unknown when
    /// the portal did not record when).
    Applied { lag_seconds: Option<i64> },
    /// Given up on after its attempts.
    Failed,
    /// Waiting (or being retried).
    Pending,
}

/// Webhook events received on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhooks {
    pub received: i64,
    pub applied: i64,
    pub failed: i64,
    pub pending: i64,
    /// Median seconds from Stripe's `created` to applied, over the applied events.
    pub median_lag_seconds: Option<i64>,
}

pub fn webhooks(events: &[Delivery]) -> Webhooks {
    let mut w = Webhooks {
        received: events.len() as i64,
        ..Webhooks::default()
    };
    let mut lags = Vec::new();
    for e in events {
        match e {
            Delivery::Applied { lag_seconds } => {
                w.applied += 1;
                // Stripe's clock may run ahead of ours by a little: that is no lag.
                lags.extend(lag_seconds.map(|l| l.max(0)));
            }
            Delivery::Failed => w.failed += 1,
            Delivery::Pending => w.pending += 1,
        }
    }
    w.median_lag_seconds = median(&mut lags);
    w
}

/// The median, the lower of the two middle values for an even count (a whole second, as
/// PostgreSQL's `percentile_disc(0.5)`).
pub fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Amount {
        Amount {
            currency: "usd".into(),
            minor,
        }
    }

    fn pack(packs: i64) -> PackSale {
        PackSale {
            packs,
            millicredits: packs * 500_000,
            amount: packs * 2_000,
            currency: "usd".into(),
        }
    }

    #[test]
    fn checkout_sessions_started_completed_and_abandoned() {
        use CheckoutOutcome::*;
        let c = checkouts(&[Completed, Abandoned, Open, Completed, Abandoned, Abandoned]);
        assert_eq!(
            c,
            Checkouts {
                started: 6,
                completed: 2,
                abandoned: 3
            }
        );
        assert_eq!(checkouts(&[]), Checkouts::default());
    }

    #[test]
    fn credit_packs_sold_and_credits_consumed() {
        // Two purchases of 1 and 3 packs (500 credits each); 12.5 credits used.
        let c = credits(&[pack(1), pack(3)], 12_500);
        assert_eq!(c.packs_sold, 4);
        assert_eq!(c.millicredits_sold, 2_000_000);
        assert_eq!(c.millicredits_consumed, 12_500);
    }

    #[test]
    fn net_revenue_is_invoices_and_packs_paid_less_refunds_per_currency() {
        let eur = Amount {
            currency: "eur".into(),
            minor: 2_900,
        };
        let r = revenue(&[usd(999), usd(9_900), eur], &[pack(2)], &[usd(1_000)]);
        // $9.99 + $99.00 + 2 × $20.00 = $148.99 in, $10.00 back.
        assert_eq!(r["usd"].gross, 14_899);
        assert_eq!(r["usd"].refunds, 1_000);
        assert_eq!(r["usd"].net(), 13_899);
        assert_eq!(r["eur"].net(), 2_900);
        // A refund on a day without sales is a negative day.
        let r = revenue(&[], &[], &[usd(500)]);
        assert_eq!(r["usd"].net(), -500);
    }

    #[test]
    fn webhook_health_counts_outcomes_and_takes_the_median_lag() {
        use Delivery::*;
        let w = webhooks(&[
            Applied {
                lag_seconds: Some(3),
            },
            Applied {
                lag_seconds: Some(1),
            },
            Failed,
            Applied {
                lag_seconds: Some(120),
            },
            Applied {
                lag_seconds: Some(-2),
            },
            Applied { lag_seconds: None },
            Pending,
        ]);
        assert_eq!((w.received, w.applied, w.failed, w.pending), (7, 5, 1, 1));
        // Lags 0 (clamped), 1, 3, 120: the lower middle is 1.
        assert_eq!(w.median_lag_seconds, Some(1));
        assert_eq!(webhooks(&[Failed]).median_lag_seconds, None);
        assert_eq!(median(&mut [5, 1, 9]), Some(5));
    }
}
