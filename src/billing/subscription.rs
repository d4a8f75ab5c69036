//! Pure subscription rules: which plan an organization is on given what Stripe said, the grace
//! period after a failed renewal, the trial countdown, and whether an event is newer than what
//! was applied.

use chrono::{DateTime, Duration, Utc};

use super::catalog::{Catalog, Plan};

/// Days an organization keeps its plan after a renewal payment fails.
pub const GRACE_DAYS: i64 = 7;

/// A subscription as Stripe describes it, in our own types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub price_lookup_key: Option<String>,
    pub trial_end: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// `metadata.org_id`, when the portal created it.
    pub org_hint: Option<String>,
}

/// What we stored from Stripe for an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub stripe_subscription_id: String,
    pub plan_key: String,
    pub status: String,
    pub trial_end: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub past_due_since: Option<DateTime<Utc>>,
    /// A downgraded plan the organization keeps until the paid period ends.
    pub kept: Option<(String, DateTime<Utc>)>,
}

/// Whether to apply an incoming state with `created` over what was applied at `applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Apply,
    /// Older than what we have: an out-of-order delivery.
    Stale,
    /// Same second: the order cannot be decided, so ask Stripe for the current state.
    Fetch,
}

/// Version stored for a state fetched from Stripe: it is current, but no event time says how
/// current, so the next event about it is settled by fetching again.
pub const FETCHED: i64 = -1;

pub fn ordering(applied: Option<i64>, created: i64) -> Ordering {
    match applied {
        None => Ordering::Apply,
        Some(FETCHED) => Ordering::Fetch,
        Some(a) if created > a => Ordering::Apply,
        Some(a) if created < a => Ordering::Stale,
        Some(_) => Ordering::Fetch,
    }
}

/// Statuses in which the organization has its paid plan.
fn grants_plan(status: &str) -> bool {
    matches!(status, "trialing" | "active")
}

/// When the grace period of a past-due subscription ends.
pub fn grace_ends(stored: &Stored) -> Option<DateTime<Utc>> {
    (stored.status == "past_due" || stored.status == "unpaid")
        .then(|| {
            stored
                .past_due_since
                .map(|since| since + Duration::days(GRACE_DAYS))
        })
        .flatten()
}

/// The plan the organization is on now.
pub fn effective_plan<'a>(
    catalog: &'a Catalog,
    stored: Option<&Stored>,
    now: DateTime<Utc>,
) -> &'a Plan {
    let Some(stored) = stored else {
        return catalog.free();
    };
    let keeps_plan = grants_plan(&stored.status) || grace_ends(stored).is_some_and(|end| now < end);
    if keeps_plan {
        let key = match &stored.kept {
            Some((kept, until)) if now < *until => kept,
            _ => &stored.plan_key,
        };
        catalog.plan(key).unwrap_or_else(|| catalog.free())
    } else {
        catalog.free()
    }
}

/// "3 days 4 hours" until `end`, or `None` once it has passed.
pub fn countdown(end: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let left = end - now;
    if left <= Duration::zero() {
        return None;
    }
    let days = left.num_days();
    let hours = left.num_hours() - days * 24;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    Some(match (days, hours) {
        (0, 0) => "less than an hour".to_owned(),
        (0, h) => plural(h, "hour"),
        (d, 0) => plural(d, "day"),
        (d, h) => format!("{} {}", plural(d, "day"), plural(h, "hour")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        crate::billing::catalog::shipped("hybrid.toml")
    }

    fn stored(status: &str, past_due_since: Option<DateTime<Utc>>) -> Stored {
        Stored {
            stripe_subscription_id: "sub_1".into(),
            plan_key: "pro".into(),
            status: status.into(),
            trial_end: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            past_due_since,
            kept: None,
        }
    }

    #[test]
    fn the_plan_follows_the_subscription_status_and_the_grace_period() {
        let catalog = catalog();
        let now = Utc::now();
        assert_eq!(effective_plan(&catalog, None, now).key, "free");
        assert_eq!(
            effective_plan(&catalog, Some(&stored("trialing", None)), now).key,
            "pro"
        );
        assert_eq!(
            effective_plan(&catalog, Some(&stored("active", None)), now).key,
            "pro"
        );
        let failing = stored("past_due", Some(now - Duration::days(6)));
        assert_eq!(effective_plan(&catalog, Some(&failing), now).key, "pro");
        assert_eq!(grace_ends(&failing), Some(now + Duration::days(1)));
        let expired = stored("past_due", Some(now - Duration::days(8)));
        assert_eq!(effective_plan(&catalog, Some(&expired), now).key, "free");
        for ended in ["canceled", "incomplete_expired", "incomplete", "paused"] {
            assert_eq!(
                effective_plan(&catalog, Some(&stored(ended, None)), now).key,
                "free",
                "{ended}"
            );
        }
    }

    #[test]
    fn a_downgrade_keeps_the_old_plan_until_the_paid_period_ends() {
        let catalog = catalog();
        let now = Utc::now();
        let mut downgraded = stored("active", None);
        downgraded.plan_key = "starter".into();
        downgraded.kept = Some(("pro".into(), now + Duration::days(3)));
        assert_eq!(effective_plan(&catalog, Some(&downgraded), now).key, "pro");
        assert_eq!(
            effective_plan(&catalog, Some(&downgraded), now + Duration::days(4)).key,
            "starter"
        );
    }

    #[test]
    fn older_events_never_overwrite_newer_state() {
        assert_eq!(ordering(None, 10), Ordering::Apply);
        assert_eq!(ordering(Some(10), 11), Ordering::Apply);
        assert_eq!(ordering(Some(10), 9), Ordering::Stale);
        assert_eq!(ordering(Some(10), 10), Ordering::Fetch);
        // After a fetch (say, by the Checkout success page) an older event may still arrive.
        assert_eq!(ordering(Some(FETCHED), 5), Ordering::Fetch);
    }

    #[test]
    fn countdowns_read_naturally() {
        let now = Utc::now();
        assert_eq!(
            countdown(now + Duration::hours(50), now).as_deref(),
            Some("2 days 2 hours")
        );
        assert_eq!(
            countdown(now + Duration::days(7), now).as_deref(),
            Some("7 days")
        );
        assert_eq!(
            countdown(now + Duration::minutes(90), now).as_deref(),
            Some("1 hour")
        );
        assert_eq!(countdown(now - Duration::minutes(1), now), None);
    }
}
