//! The subscription timeline on a fixed, hand-written history of five organizations over four
//! days. Prices: Starter $9.99, Pro $99.00, Max $499.99 a month, Pro yearly $990.00 ($82.50 a
//! month). Every expected figure is worked out by hand in the comments.

use super::*;
use chrono::TimeZone;

pub(crate) fn prices() -> BTreeMap<String, PlanPrice> {
    [
        ("starter", 999),
        ("pro", 9_900),
        ("max", 49_999),
        ("pro_year", monthly(99_000, Interval::Year)),
        ("free", 0),
    ]
    .into_iter()
    .map(|(k, m)| {
        (
            k.to_owned(),
            PlanPrice {
                currency: "usd".into(),
                monthly: m,
            },
        )
    })
    .collect()
}

pub(crate) fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).expect("day")
}

fn org(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn change(o: u128, sub: &str, plan: &str, status: &str, d: u32, hour: u32) -> SubChange {
    SubChange {
        org: org(o),
        subscription: sub.into(),
        plan: plan.into(),
        status: status.into(),
        at: Utc
            .with_ymd_and_hms(2026, 12, d, hour, 0, 0)
            .single()
            .expect("time"),
    }
}

/// A = 1, B = 2, C = 3, D = 4, E = 5.
pub(crate) fn history() -> Vec<SubChange> {
    let mut h = vec![
        // Day 1: A and B start trials; C takes Starter, D takes Max.
        change(1, "a1", "pro", "trialing", 1, 9),
        change(2, "b1", "starter", "trialing", 1, 10),
        change(3, "c1", "starter", "active", 1, 11),
        change(4, "d1", "max", "active", 1, 12),
        // Day 2: A's trial converts, B's expires, C upgrades to Pro, D downgrades to Pro.
        change(1, "a1", "pro", "active", 2, 9),
        change(2, "b1", "starter", "canceled", 2, 9),
        change(3, "c1", "pro", "active", 2, 10),
        change(4, "d1", "pro", "active", 2, 11),
        // Day 3: C's renewal fails (past due, still paying); D cancels.
        change(3, "c1", "pro", "past_due", 3, 9),
        change(4, "d1", "pro", "canceled", 3, 10),
        // Day 4: D comes back on Starter, E buys Pro yearly, C's grace runs out.
        change(4, "d2", "starter", "active", 4, 9),
        change(5, "e1", "pro_year", "active", 4, 10),
        change(3, "c1", "pro", "canceled", 4, 11),
    ];
    // The order of the input does not matter, only the times.
    h.reverse();
    h
}

pub(crate) fn four_days() -> Vec<SubscriptionDay> {
    replay(&history(), &prices(), &[day(1), day(2), day(3), day(4)])
}

#[test]
fn a_price_is_normalized_to_a_month() {
    assert_eq!(monthly(999, Interval::Month), 999);
    assert_eq!(monthly(99_000, Interval::Year), 8_250);
    // $999.99 a year is $83.3325 a month: 8,333 cents.
    assert_eq!(monthly(99_999, Interval::Year), 8_333);
}

#[test]
fn mrr_counts_paid_and_past_due_subscriptions_but_not_trials() {
    let days = four_days();
    let mrr: Vec<i64> = days.iter().map(|d| d.subscriptions_mrr()).collect();
    // Day 1: C 999 + D 49,999 (A and B are trialing).
    // Day 2: A 9,900 + C 9,900 + D 9,900.
    // Day 3: A 9,900 + C 9,900 (past due still pays); D canceled.
    // Day 4: A 9,900 + D 999 + E 8,250; C canceled.
    assert_eq!(mrr, vec![50_998, 29_700, 19_800, 19_149]);
    assert_eq!(
        days.iter().map(|d| d.paying_customers).collect::<Vec<_>>(),
        vec![2, 3, 2, 3]
    );
}

#[test]
fn movement_splits_the_change_of_mrr() {
    let days = four_days();
    let usd = |d: usize| days[d].movement.get("usd").cloned().unwrap_or_default();
    assert_eq!(
        usd(0),
        Movement {
            new: 50_998,
            ..Movement::default()
        }
    );
    // A's conversion is new; C's upgrade expands by 9,900 - 999; D's downgrade contracts by
    // 49,999 - 9,900; B's expired trial never paid, so it moves nothing.
    assert_eq!(
        usd(1),
        Movement {
            new: 9_900,
            expansion: 8_901,
            contraction: 40_099,
            ..Movement::default()
        }
    );
    // C's failed payment keeps it paying; D's cancellation churns 9,900.
    assert_eq!(
        usd(2),
        Movement {
            churned: 9_900,
            ..Movement::default()
        }
    );
    // D paid before, so coming back is reactivated, not new; E is new; C churns.
    assert_eq!(
        usd(3),
        Movement {
            new: 8_250,
            churned: 9_900,
            reactivated: 999,
            ..Movement::default()
        }
    );
    // Each day's movement adds up to its change of MRR.
    for d in 1..4 {
        assert_eq!(
            days[d - 1].subscriptions_mrr() + usd(d).net(),
            days[d].subscriptions_mrr()
        );
    }
}

#[test]
fn active_subscriptions_per_plan_at_each_days_end() {
    let days = four_days();
    let plans = |d: usize| {
        days[d]
            .active_by_plan
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>()
    };
    assert_eq!(plans(0), vec![("max", 1), ("starter", 1)]);
    assert_eq!(days[0].trialing, 2);
    assert_eq!(plans(1), vec![("pro", 3)]);
    assert_eq!(days[1].trialing, 0);
    // C is past due and still counts.
    assert_eq!(plans(2), vec![("pro", 2)]);
    assert_eq!(plans(3), vec![("pro", 1), ("pro_year", 1), ("starter", 1)]);
}

#[test]
fn trials_started_converted_and_expired() {
    let days = four_days();
    assert_eq!(
        days[0].trials,
        Trials {
            started: 2,
            converted: 0,
            expired: 0
        }
    );
    assert_eq!(
        days[1].trials,
        Trials {
            started: 0,
            converted: 1,
            expired: 1
        }
    );
    assert_eq!(days[2].trials, Trials::default());
    // A repeated trialing state (an update during the trial) is not another start.
    let again = replay(
        &[
            change(1, "a1", "pro", "trialing", 1, 9),
            change(1, "a1", "max", "trialing", 1, 10),
        ],
        &prices(),
        &[day(1)],
    );
    assert_eq!(again[0].trials.started, 1);
}

#[test]
fn customers_lost_count_each_organization_that_stops_paying() {
    let days = four_days();
    assert_eq!(
        days.iter().map(|d| d.churned_customers).collect::<Vec<_>>(),
        vec![0, 0, 1, 1]
    );
}

#[test]
fn a_day_without_changes_keeps_the_state() {
    let days = replay(&history(), &prices(), &[day(4), day(5), day(9)]);
    assert_eq!(days[1].subscriptions_mrr(), 19_149);
    assert_eq!(days[2].subscriptions_mrr(), 19_149);
    assert!(days[2].movement.is_empty());
}

impl SubscriptionDay {
    fn subscriptions_mrr(&self) -> i64 {
        self.mrr.get("usd").copied().unwrap_or(0)
    }
}
