//! What an organization may do right now, from its plan, this period's counters and its credit
//! account: the answer of `GET /api/v1/entitlements` and the numbers behind the dashboard bars.
//! The same shape serves all three catalog models. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::consumption::{decide, included_remaining, Account, Decision, TierTerms};
use super::period::{self, Period};
use crate::billing::catalog::{Catalog, Gauge, Limit, Model, Plan};
use crate::billing::limits::{limit_of, GaugeValues};
use crate::billing::subscription::{effective_plan, grace_ends, Stored};

/// Actions of one tier in one period, by how they were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    pub included: u64,
    pub credits: u64,
    pub overage: u64,
}

impl Counter {
    pub fn total(&self) -> u64 {
        self.included + self.credits + self.overage
    }
}

/// Everything the entitlements are computed from, as read from the database.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    pub subscription: Option<Stored>,
    pub account: Account,
    /// Counters keyed by period start, then tier (the current period's are looked up by start).
    pub counters: BTreeMap<(DateTime<Utc>, String), Counter>,
    /// The current counts of the gauges (agents, members).
    pub gauges: GaugeValues,
}

/// The terms of one tier (or meter) on a plan; `None` for a key the catalog does not meter.
pub fn terms(catalog: &Catalog, plan: &Plan, tier: &str) -> Option<TierTerms> {
    if !catalog.meter_keys().contains(&tier) {
        return None;
    }
    let weight_millicredits = match catalog.model {
        Model::HybridCredits => catalog
            .tiers
            .iter()
            .find(|t| t.key == tier)
            .map(|t| t.weight_millicredits),
        Model::SeatLimits | Model::FeatureTiers => None,
    };
    Some(TierTerms {
        included: plan.limits.get(tier).copied().unwrap_or(Limit::Count(0)),
        weight_millicredits,
        soft_limit_actions: catalog.soft_limit_actions,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlanRef {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PeriodView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One meter (a tier, in the credits model) of the organization's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MeterView {
    pub key: String,
    pub name: String,
    /// A gauge: a current count (agents, users) rather than a sum per period. Its `used` is the
    /// count now, `included` the plan's limit, and `may_act` whether one more fits.
    pub gauge: bool,
    /// Included this period; `null` when unlimited.
    pub included: Option<u64>,
    pub unlimited: bool,
    /// All actions this period, however they were counted.
    pub used: u64,
    /// Of those, the ones counted against the included amount.
    pub used_included: u64,
    /// Included actions left; `null` when unlimited.
    pub remaining: Option<u64>,
    /// Credits one action costs once the included ones are used, in milli-credits; `null` in
    /// models without credits.
    pub weight_millicredits: Option<i64>,
    /// Whether an action of this tier would be allowed now.
    pub may_act: bool,
    /// How the next action would be counted: `included`, `credits`, `overage`, or `null` when
    /// it would be refused.
    pub next_counted_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreditsView {
    /// May be negative after overage or a refund.
    pub balance_millicredits: i64,
    /// The same, in credits, as a decimal string ("12.5").
    pub balance: String,
    /// Overage actions still allowed once credits run out.
    pub overage_allowance_remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Entitlements {
    pub plan: PlanRef,
    /// `free`, `trialing`, `active`, `past_due`, ... (`free` when no subscription grants a plan).
    pub status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Set while a failed renewal's grace period runs.
    pub grace_ends_at: Option<DateTime<Utc>>,
    pub period: PeriodView,
    /// Feature keys the plan includes.
    pub features: Vec<String>,
    pub meters: Vec<MeterView>,
    /// Present in the credits model.
    pub credits: Option<CreditsView>,
}

/// The period `now` falls in for this standing.
pub fn current_period(standing: &Standing, now: DateTime<Utc>) -> Period {
    period::current(standing.subscription.as_ref(), now)
}

/// A gauge's line: its count now against the plan's limit.
fn gauge_view(
    catalog: &Catalog,
    plan: &Plan,
    key: &str,
    gauge: Gauge,
    values: &GaugeValues,
) -> MeterView {
    let used = values.value(gauge, key);
    let limit = limit_of(plan, key);
    let (included, remaining) = match limit {
        Limit::Count(n) => (Some(n), Some(n.saturating_sub(used))),
        Limit::Unlimited => (None, None),
    };
    let may_act = remaining.is_none_or(|left| left > 0);
    MeterView {
        key: key.to_owned(),
        name: catalog.meter_name(key).to_owned(),
        gauge: true,
        included,
        unlimited: limit == Limit::Unlimited,
        used,
        used_included: included.map_or(used, |n| used.min(n)),
        remaining,
        weight_millicredits: None,
        may_act,
        next_counted_as: may_act.then(|| "included".to_owned()),
    }
}

pub fn compute(catalog: &Catalog, standing: &Standing, now: DateTime<Utc>) -> Entitlements {
    let stored = standing.subscription.as_ref();
    let plan = effective_plan(catalog, stored, now);
    let period = current_period(standing, now);
    let live = stored.filter(|s| {
        matches!(s.status.as_str(), "trialing" | "active")
            || grace_ends(s).is_some_and(|end| now < end)
    });
    let meters = catalog
        .meter_keys()
        .into_iter()
        .filter_map(|key| {
            if let Some(gauge) = catalog.gauge(key) {
                return Some(gauge_view(catalog, plan, key, gauge, &standing.gauges));
            }
            let terms = terms(catalog, plan, key)?;
            let counter = standing
                .counters
                .get(&(period.start, key.to_owned()))
                .copied()
                .unwrap_or_default();
            let decision = decide(terms, counter.included, &standing.account);
            let next = match decision {
                Decision::Allowed { counted_as, .. } => Some(counted_as.as_str().to_owned()),
                Decision::Refused(_) => None,
            };
            Some(MeterView {
                key: key.to_owned(),
                name: catalog.meter_name(key).to_owned(),
                gauge: false,
                included: match terms.included {
                    Limit::Count(n) => Some(n),
                    Limit::Unlimited => None,
                },
                unlimited: terms.included == Limit::Unlimited,
                used: counter.total(),
                used_included: counter.included,
                remaining: included_remaining(terms.included, counter.included),
                weight_millicredits: terms.weight_millicredits,
                may_act: next.is_some(),
                next_counted_as: next,
            })
        })
        .collect();
    let credits = (catalog.model == Model::HybridCredits).then(|| CreditsView {
        balance_millicredits: standing.account.balance_millicredits,
        balance: super::credits::format(standing.account.balance_millicredits),
        overage_allowance_remaining: catalog
            .soft_limit_actions
            .saturating_sub(standing.account.unsettled_overage),
    });
    Entitlements {
        plan: PlanRef {
            key: plan.key.clone(),
            name: plan.name.clone(),
        },
        status: live.map_or_else(|| "free".to_owned(), |s| s.status.clone()),
        trial_ends_at: live
            .filter(|s| s.status == "trialing")
            .and_then(|s| s.trial_end),
        grace_ends_at: live.and_then(grace_ends),
        period: PeriodView {
            start: period.start,
            end: period.end,
        },
        features: plan.features.clone(),
        meters,
        credits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::catalog::parse;

    fn catalog(name: &str) -> Catalog {
        let path = format!("{}/plans/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        parse(&path, &std::fs::read_to_string(&path).expect("file")).expect("valid")
    }

    #[test]
    fn a_free_organization_with_some_usage_and_credits() {
        let catalog = catalog("hybrid");
        let now = Utc::now();
        let period = period::calendar_month(now);
        let mut standing = Standing {
            account: Account {
                balance_millicredits: 1500,
                unsettled_overage: 0,
            },
            ..Standing::default()
        };
        standing.counters.insert(
            (period.start, "small".into()),
            Counter {
                included: 10,
                credits: 2,
                overage: 0,
            },
        );
        standing.counters.insert(
            (period.start, "xl".into()),
            Counter {
                included: 1,
                ..Counter::default()
            },
        );
        let e = compute(&catalog, &standing, now);
        assert_eq!(e.plan.key, "free");
        assert_eq!(e.status, "free");
        let small = &e.meters[0];
        assert_eq!(
            (small.included, small.used, small.remaining),
            (Some(10), 12, Some(0))
        );
        assert_eq!(small.next_counted_as.as_deref(), Some("credits"));
        let medium = &e.meters[1];
        assert_eq!(medium.next_counted_as.as_deref(), Some("included"));
        // xl costs 15 credits and only 1.5 are left: overage.
        let xl = &e.meters[3];
        assert_eq!(xl.next_counted_as.as_deref(), Some("overage"));
        let credits = e.credits.expect("credits model");
        assert_eq!(credits.balance, "1.5");
        assert_eq!(credits.overage_allowance_remaining, 10);
    }

    #[test]
    fn gauges_show_the_count_now_against_the_plan_limit() {
        let seats = catalog("seats");
        let mut standing = Standing::default();
        standing.gauges.reported.insert("agents".into(), 1);
        standing.gauges.members = 1;
        let e = compute(&seats, &standing, Utc::now());
        let meter = |key: &str| {
            e.meters
                .iter()
                .find(|m| m.key == key)
                .cloned()
                .expect("meter")
        };
        let agents = meter("agents");
        assert!(agents.gauge);
        assert_eq!(
            (
                agents.used,
                agents.included,
                agents.remaining,
                agents.may_act
            ),
            (1, Some(1), Some(0), false)
        );
        let users = meter("users");
        assert_eq!(
            (users.used, users.included, users.may_act),
            (1, Some(1), false)
        );
        standing.gauges.members = 0;
        standing.gauges.reported.clear();
        let e = compute(&seats, &standing, Utc::now());
        let agents = e.meters.iter().find(|m| m.key == "agents").expect("meter");
        assert_eq!((agents.used, agents.may_act), (0, true));
        assert_eq!(agents.next_counted_as.as_deref(), Some("included"));
    }

    #[test]
    fn the_other_models_answer_through_the_same_shape() {
        let seats = catalog("seats");
        let e = compute(&seats, &Standing::default(), Utc::now());
        assert!(e.credits.is_none());
        let messages = e
            .meters
            .iter()
            .find(|m| m.key == "messages")
            .expect("meter");
        assert_eq!((messages.included, messages.may_act), (Some(1000), true));
        assert_eq!(messages.weight_millicredits, None);
        assert!(!messages.gauge);

        let features = catalog("features");
        let mut standing = Standing::default();
        let now = Utc::now();
        standing.subscription = Some(Stored {
            stripe_subscription_id: "sub_1".into(),
            plan_key: "scale".into(),
            status: "active".into(),
            trial_end: None,
            current_period_start: Some(now - chrono::Duration::days(1)),
            current_period_end: Some(now + chrono::Duration::days(29)),
            cancel_at_period_end: false,
            past_due_since: None,
            kept: None,
        });
        let e = compute(&features, &standing, now);
        assert_eq!(e.status, "active");
        assert!(e.features.contains(&"white_label".to_owned()));
        assert_eq!(e.meters[0].included, Some(90));
    }
}
