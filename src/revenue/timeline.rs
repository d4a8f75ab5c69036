//! The subscription timeline: from every change of an organization's subscription (plan and
//! status, as the portal applied it), each day's MRR per currency, its movement (new,
//! expansion, contraction, churned, reactivated), active subscriptions per plan, trials started,
//! converted and expired, and customers lost. Pure.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::billing::catalog::Interval;

/// One change of a subscription, as recorded when the portal applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubChange {
    pub org: Uuid,
    pub subscription: String,
    pub plan: String,
    pub status: String,
    pub at: DateTime<Utc>,
}

/// What a plan adds to MRR: its price normalized to one month, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPrice {
    pub currency: String,
    pub monthly: i64,
}

/// A price per `interval` normalized to one month, rounded to the nearest minor unit (a yearly
/// $99.99 is 833 cents a month).
pub fn monthly(cents: i64, interval: Interval) -> i64 {
    match interval {
        Interval::Month => cents,
        Interval::Year => (cents + 6).div_euclid(12),
    }
}

/// Statuses in which a subscription is paid for, so it counts toward MRR. A trial is not; a
/// past-due subscription still is during its grace period (the customer keeps the plan).
pub fn pays(status: &str) -> bool {
    matches!(status, "active" | "past_due")
}

/// MRR movement of one currency over a day (or a range), every amount positive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churned: i64,
    pub reactivated: i64,
}

impl Movement {
    /// The change of MRR the movement adds up to.
    pub fn net(&self) -> i64 {
        self.new + self.expansion + self.reactivated - self.contraction - self.churned
    }

    pub fn add(&mut self, other: &Movement) {
        self.new += other.new;
        self.expansion += other.expansion;
        self.contraction += other.contraction;
        self.churned += other.churned;
        self.reactivated += other.reactivated;
    }
}

/// Trials over a day (or a range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trials {
    pub started: i64,
    pub converted: i64,
    pub expired: i64,
}

/// What the subscription timeline says about one day (its state at the day's end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDay {
    /// Currency → MRR in minor units at the end of the day.
    pub mrr: BTreeMap<String, i64>,
    /// Currency → movement during the day.
    pub movement: BTreeMap<String, Movement>,
    /// Plan key → paid subscriptions (active or past due) at the end of the day.
    pub active_by_plan: BTreeMap<String, i64>,
    /// Subscriptions in their trial at the end of the day.
    pub trialing: i64,
    /// Organizations paying (MRR above zero) at the end of the day.
    pub paying_customers: i64,
    /// Organizations whose MRR went from above zero to zero during the day.
    pub churned_customers: i64,
    pub trials: Trials,
}

#[derive(Debug, Clone)]
struct OrgState {
    plan: String,
    status: String,
    /// What the organization pays now, if anything.
    paying: Option<(String, i64)>,
}

/// Replays `changes` and answers the figures of each day in `days` (ascending). Changes may be
/// in any order; ties in time keep their given order.
pub fn replay(
    changes: &[SubChange],
    prices: &BTreeMap<String, PlanPrice>,
    days: &[NaiveDate],
) -> Vec<SubscriptionDay> {
    let mut ordered: Vec<&SubChange> = changes.iter().collect();
    ordered.sort_by_key(|c| c.at);
    let mut orgs: BTreeMap<Uuid, OrgState> = BTreeMap::new();
    // Organizations that have paid at some point: coming back is "reactivated", not "new".
    let mut ever_paid: BTreeSet<Uuid> = BTreeSet::new();
    // The last status of each subscription, to tell trial starts and ends.
    let mut sub_status: BTreeMap<&str, &str> = BTreeMap::new();
    let mut next = 0;
    let mut out = Vec::with_capacity(days.len());
    for day in days {
        let mut today = SubscriptionDay::default();
        while let Some(change) = ordered.get(next) {
            let change_day = change.at.date_naive();
            if change_day > *day {
                break;
            }
            next += 1;
            let counted = change_day == *day;
            let before = sub_status.insert(change.subscription.as_str(), change.status.as_str());
            if counted {
                count_trial(&mut today.trials, before, &change.status);
            }
            let paying = pays(&change.status)
                .then(|| prices.get(&change.plan))
                .flatten()
                .filter(|p| p.monthly > 0)
                .map(|p| (p.currency.clone(), p.monthly));
            let previous = orgs.get(&change.org).and_then(|o| o.paying.clone());
            if counted {
                let came_back = ever_paid.contains(&change.org);
                record_movement(&mut today, previous.as_ref(), paying.as_ref(), came_back);
            }
            if paying.is_some() {
                ever_paid.insert(change.org);
            }
            orgs.insert(
                change.org,
                OrgState {
                    plan: change.plan.clone(),
                    status: change.status.clone(),
                    paying,
                },
            );
        }
        for state in orgs.values() {
            if let Some((currency, amount)) = &state.paying {
                *today.mrr.entry(currency.clone()).or_default() += amount;
                today.paying_customers += 1;
            }
            if pays(&state.status) {
                *today.active_by_plan.entry(state.plan.clone()).or_default() += 1;
            } else if state.status == "trialing" {
                today.trialing += 1;
            }
        }
        out.push(today);
    }
    out
}

/// A trial starts when a subscription is first seen trialing; it converts when it leaves the
/// trial for a paid status, and expires when it leaves it for anything else.
fn count_trial(trials: &mut Trials, before: Option<&str>, after: &str) {
    let was_trialing = before == Some("trialing");
    match (was_trialing, after) {
        (false, "trialing") => trials.started += 1,
        (true, "trialing") => {}
        (true, status) if pays(status) => trials.converted += 1,
        (true, _) => trials.expired += 1,
        _ => {}
    }
}

fn record_movement(
    day: &mut SubscriptionDay,
    before: Option<&(String, i64)>,
    after: Option<&(String, i64)>,
    came_back: bool,
) {
    fn entry<'a>(m: &'a mut BTreeMap<String, Movement>, currency: &str) -> &'a mut Movement {
        m.entry(currency.to_owned()).or_default()
    }
    let m = &mut day.movement;
    match (before, after) {
        (None, Some((currency, amount))) if came_back => entry(m, currency).reactivated += amount,
        (None, Some((currency, amount))) => entry(m, currency).new += amount,
        (Some((currency, amount)), None) => {
            entry(m, currency).churned += amount;
            day.churned_customers += 1;
        }
        (Some((was_cur, was)), Some((cur, now))) if was_cur == cur => {
            if now > was {
                entry(m, cur).expansion += now - was;
            } else if was > now {
                entry(m, cur).contraction += was - now;
            }
        }
        (Some((was_cur, was)), Some((cur, now))) => {
            // Another currency: the old revenue is lost and the new one counts as new.
            entry(m, was_cur).churned += was;
            entry(m, cur).new += now;
        }
        (None, None) => {}
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
pub(crate) mod tests;
