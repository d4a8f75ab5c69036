//! Usage periods: included actions are counted per period. A paid subscription's period is the
//! one Stripe bills (so counters restart at renewal); everyone else counts by calendar month
//! (UTC). Pure.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

use crate::billing::subscription::Stored;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The period just before this one (for the usage history): the previous calendar month,
    /// or a billing period of the same length.
    pub fn previous(&self) -> Period {
        if *self == calendar_month(self.start) {
            return calendar_month(self.start - Duration::seconds(1));
        }
        Period {
            start: self.start - (self.end - self.start),
            end: self.start,
        }
    }
}

/// The calendar month (UTC) holding `now`.
pub fn calendar_month(now: DateTime<Utc>) -> Period {
    let first = |year: i32, month: u32| {
        Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
            .single()
            .unwrap_or(now)
    };
    let start = first(now.year(), now.month());
    let end = if now.month() == 12 {
        first(now.year() + 1, 1)
    } else {
        first(now.year(), now.month() + 1)
    };
    Period { start, end }
}

/// The period `now` falls in for an organization with this subscription (if any). A
/// subscription that no longer grants its plan counts by calendar month, like Free. When a
/// renewal is late to arrive the stored period is kept a little past its end, so a late webhook
/// does not split one billing period in two.
pub fn current(stored: Option<&Stored>, now: DateTime<Utc>) -> Period {
    let live = stored.filter(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"));
    match live.and_then(|s| s.current_period_start.zip(s.current_period_end)) {
        // Stripe's period is the truth even when its clock runs ahead of ours (test clocks).
        Some((start, end)) if now < end + Duration::days(2) => Period { start, end },
        _ => calendar_month(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    fn subscription(status: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Stored {
        Stored {
            stripe_subscription_id: "sub_1".into(),
            plan_key: "pro".into(),
            status: status.into(),
            trial_end: None,
            current_period_start: Some(start),
            current_period_end: Some(end),
            cancel_at_period_end: false,
            past_due_since: None,
            kept: None,
        }
    }

    #[test]
    fn free_organizations_count_by_calendar_month() {
        let p = current(None, at(2026, 12, 15));
        assert_eq!(p.start, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(p.end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(
            p.previous().start,
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn subscriptions_count_by_their_billing_period_and_roll_over_at_renewal() {
        let sub = subscription("active", at(2026, 11, 10), at(2026, 12, 10));
        let p = current(Some(&sub), at(2026, 11, 20));
        assert_eq!((p.start, p.end), (at(2026, 11, 10), at(2026, 12, 10)));
        // The renewal webhook moves the period; the counters key on its start, so they restart.
        let renewed = subscription("active", at(2026, 12, 10), at(2027, 1, 10));
        assert_eq!(
            current(Some(&renewed), at(2026, 12, 11)).start,
            at(2026, 12, 10)
        );
        // A late renewal keeps the old period for a little while, then falls back to the month.
        assert_eq!(
            current(Some(&sub), at(2026, 12, 11)).start,
            at(2026, 11, 10)
        );
        assert_eq!(
            current(Some(&sub), at(2026, 12, 20)).start,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        let canceled = subscription("canceled", at(2026, 11, 10), at(2026, 12, 10));
        assert_eq!(
            current(Some(&canceled), at(2026, 11, 20)).start,
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
    }
}
