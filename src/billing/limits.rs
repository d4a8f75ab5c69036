//! Pure rules of what a plan allows, over the catalog and the organization's standing: whether
//! it may use a feature now, whether a gauge (a current count such as agents or members) may be
//! set to a value, whether one more member fits, and whether a plan change would leave it over
//! a gauge limit. The cheapest plan that would allow it is part of every refusal, so each edge
//! can say where to upgrade. No I/O.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::catalog::{Catalog, Gauge, Interval, Limit, Plan, Price};
use super::subscription::{effective_plan, Stored};

/// Whether an organization may use a feature now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureAccess<'a> {
    /// The plan in effect (a trial, a grace period or a kept plan count) includes it.
    Allowed { plan: &'a Plan },
    /// It does not; `cheapest` is the cheapest plan that does (none if no plan has it).
    NotInPlan {
        plan: &'a Plan,
        cheapest: Option<&'a Plan>,
    },
    /// The catalog declares no such feature.
    Unknown,
}

/// May the organization with this subscription use `feature` at `now`?
pub fn feature_access<'a>(
    catalog: &'a Catalog,
    stored: Option<&Stored>,
    now: DateTime<Utc>,
    feature: &str,
) -> FeatureAccess<'a> {
    if !catalog.features.iter().any(|f| f.key == feature) {
        return FeatureAccess::Unknown;
    }
    let plan = effective_plan(catalog, stored, now);
    if plan.features.iter().any(|f| f == feature) {
        return FeatureAccess::Allowed { plan };
    }
    FeatureAccess::NotInPlan {
        plan,
        cheapest: cheapest_plan_where(catalog, |p| p.features.iter().any(|f| f == feature)),
    }
}

/// Orders plans by what they cost a month: free first, sold-by-contact last.
fn monthly_cost(plan: &Plan) -> i64 {
    match &plan.price {
        Price::Free => 0,
        Price::Recurring {
            cents,
            interval: Interval::Month,
            ..
        } => *cents,
        Price::Recurring {
            cents,
            interval: Interval::Year,
            ..
        } => cents / 12,
        Price::ContactSales => i64::MAX,
    }
}

/// The cheapest plan that satisfies `wanted` (the first in catalog order on a tie).
pub fn cheapest_plan_where(catalog: &Catalog, wanted: impl Fn(&Plan) -> bool) -> Option<&Plan> {
    catalog
        .plans
        .iter()
        .filter(|p| wanted(p))
        .min_by_key(|p| monthly_cost(p))
}

/// A plan's limit of a meter; a meter the plan does not name allows nothing.
pub fn limit_of(plan: &Plan, meter: &str) -> Limit {
    plan.limits.get(meter).copied().unwrap_or(Limit::Count(0))
}

fn allows(limit: Limit, value: u64) -> bool {
    match limit {
        Limit::Unlimited => true,
        Limit::Count(n) => value <= n,
    }
}

/// The current value of every gauge of an organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaugeValues {
    /// Gauges the product sets, by meter key (never set: 0).
    pub reported: BTreeMap<String, u64>,
    /// Its members.
    pub members: u64,
}

impl GaugeValues {
    pub fn value(&self, gauge: Gauge, meter: &str) -> u64 {
        match gauge {
            Gauge::Api => self.reported.get(meter).copied().unwrap_or(0),
            Gauge::Members => self.members,
        }
    }
}

/// A gauge value a plan does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub meter: String,
    pub meter_name: String,
    pub plan_key: String,
    pub plan_name: String,
    pub limit: u64,
    /// The value that was asked for (or that the organization has).
    pub wanted: u64,
    /// The cheapest plan that allows `wanted`: its key, name and limit.
    pub upgrade: Option<(String, String, Limit)>,
}

fn limit_words(limit: Limit) -> String {
    match limit {
        Limit::Count(n) => format!("up to {n}"),
        Limit::Unlimited => "unlimited".to_owned(),
    }
}

impl fmt::Display for OverLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} are limited to {} on the {} plan; this would make {}.",
            self.meter_name, self.limit, self.plan_name, self.wanted
        )?;
        match &self.upgrade {
            Some((_, name, limit)) => write!(
                f,
                " Upgrade to {name} ({} {}) to go beyond it.",
                limit_words(*limit),
                self.meter_name.to_lowercase()
            ),
            None => f.write_str(" No plan allows that many."),
        }
    }
}

fn over_limit(catalog: &Catalog, plan: &Plan, meter: &str, wanted: u64) -> Option<OverLimit> {
    let limit = match limit_of(plan, meter) {
        Limit::Count(n) if wanted > n => n,
        _ => return None,
    };
    let upgrade = cheapest_plan_where(catalog, |p| allows(limit_of(p, meter), wanted))
        .map(|p| (p.key.clone(), p.name.clone(), limit_of(p, meter)));
    Some(OverLimit {
        meter: meter.to_owned(),
        meter_name: catalog.meter_name(meter).to_owned(),
        plan_key: plan.key.clone(),
        plan_name: plan.name.clone(),
        limit,
        wanted,
        upgrade,
    })
}

/// Why a gauge cannot be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaugeRefusal {
    /// The catalog has no such meter.
    Unknown,
    /// A sum per period (it is recorded as actions), not a gauge.
    NotAGauge,
    /// The portal counts it (the members gauge): add or remove members instead.
    CountedByPortal,
    /// The plan's limit would be exceeded.
    OverLimit(Box<OverLimit>),
}

/// Whether `meter` may be set to `value` on `plan`; the plan's limit when it may.
pub fn check_gauge(
    catalog: &Catalog,
    plan: &Plan,
    meter: &str,
    value: u64,
) -> Result<Limit, GaugeRefusal> {
    let Some(found) = catalog.meters.iter().find(|m| m.key == meter) else {
        return Err(GaugeRefusal::Unknown);
    };
    match found.gauge {
        None => Err(GaugeRefusal::NotAGauge),
        Some(Gauge::Members) => Err(GaugeRefusal::CountedByPortal),
        Some(Gauge::Api) => match over_limit(catalog, plan, meter, value) {
            Some(over) => Err(GaugeRefusal::OverLimit(Box::new(over))),
            None => Ok(limit_of(plan, meter)),
        },
    }
}

/// Whether one more member fits when the organization counts `seats_taken` already (members,
/// and pending invitations where the caller counts them). Catalogs without a members gauge
/// limit nobody.
pub fn check_one_more_member(
    catalog: &Catalog,
    plan: &Plan,
    seats_taken: u64,
) -> Result<(), Box<OverLimit>> {
    let Some(meter) = catalog.members_meter() else {
        return Ok(());
    };
    match over_limit(catalog, plan, &meter.key, seats_taken + 1) {
        Some(over) => Err(Box::new(over)),
        None => Ok(()),
    }
}

/// A plan change that would leave the organization over gauge limits of the new plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverOnChange {
    pub target_name: String,
    /// Each gauge over the target plan's limit (`wanted` is what the organization has).
    pub over: Vec<OverLimit>,
}

impl fmt::Display for OverOnChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let each: Vec<String> = self
            .over
            .iter()
            .map(|o| format!("{} {} of {}", o.meter_name, o.wanted, o.limit))
            .collect();
        write!(
            f,
            "Moving to {} would leave this organization over its limits ({}). Lower them first, or choose a larger plan.",
            self.target_name,
            each.join(", ")
        )
    }
}

/// Refuses a change to `target` that would leave any gauge over its limit.
pub fn check_plan_change(
    catalog: &Catalog,
    target: &Plan,
    values: &GaugeValues,
) -> Result<(), OverOnChange> {
    let over: Vec<OverLimit> = catalog
        .gauges()
        .filter_map(|(meter, gauge)| {
            over_limit(catalog, target, &meter.key, values.value(gauge, &meter.key))
        })
        .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(OverOnChange {
            target_name: target.name.clone(),
            over,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::catalog::parse;
    use chrono::Duration;

    fn catalog(name: &str) -> Catalog {
        let path = format!("{}/plans/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        parse(&path, &std::fs::read_to_string(&path).expect("file")).expect("valid")
    }

    fn on(plan: &str, status: &str) -> Stored {
        Stored {
            stripe_subscription_id: "sub_1".into(),
            plan_key: plan.into(),
            status: status.into(),
            trial_end: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            past_due_since: None,
            kept: None,
        }
    }

    fn key(access: FeatureAccess<'_>) -> (&'static str, Option<String>) {
        match access {
            FeatureAccess::Allowed { plan } => ("allowed", Some(plan.key.clone())),
            FeatureAccess::NotInPlan { cheapest, .. } => {
                ("upgrade", cheapest.map(|p| p.key.clone()))
            }
            FeatureAccess::Unknown => ("unknown", None),
        }
    }

    #[test]
    fn a_feature_follows_the_plan_as_it_stands_now() {
        let catalog = catalog("features");
        let now = Utc::now();
        let check =
            |stored: Option<&Stored>, f: &str| key(feature_access(&catalog, stored, now, f));
        // Starter (free) has none: the cheapest plan with white-label is Scale, with API
        // access Pro.
        assert_eq!(
            check(None, "white_label"),
            ("upgrade", Some("scale".into()))
        );
        assert_eq!(check(None, "api_access"), ("upgrade", Some("pro".into())));
        assert_eq!(check(None, "teleport"), ("unknown", None));
        // A trial grants the plan.
        let trial = on("scale", "trialing");
        assert_eq!(
            check(Some(&trial), "white_label"),
            ("allowed", Some("scale".into()))
        );
        // A failed renewal keeps it during the grace period, not after.
        let mut failing = on("scale", "past_due");
        failing.past_due_since = Some(now - Duration::days(2));
        assert_eq!(check(Some(&failing), "white_label").0, "allowed");
        failing.past_due_since = Some(now - Duration::days(8));
        assert_eq!(check(Some(&failing), "white_label").0, "upgrade");
        // A canceled subscription is back on the free plan.
        assert_eq!(
            check(Some(&on("scale", "canceled")), "api_access").0,
            "upgrade"
        );
        // Pro has API access but not white-label.
        let pro = on("pro", "active");
        assert_eq!(check(Some(&pro), "api_access").0, "allowed");
        assert_eq!(
            check(Some(&pro), "white_label"),
            ("upgrade", Some("scale".into()))
        );
        // A downgrade keeps the old plan until the paid period ends.
        let mut downgraded = on("pro", "active");
        downgraded.kept = Some(("scale".into(), now + Duration::days(3)));
        assert_eq!(check(Some(&downgraded), "white_label").0, "allowed");
    }

    #[test]
    fn a_gauge_may_be_set_up_to_the_plan_limit_and_a_refusal_names_the_upgrade() {
        let catalog = catalog("seats");
        let free = catalog.free();
        assert_eq!(
            check_gauge(&catalog, free, "agents", 1),
            Ok(Limit::Count(1))
        );
        assert_eq!(
            check_gauge(&catalog, free, "agents", 0),
            Ok(Limit::Count(1))
        );
        let Err(GaugeRefusal::OverLimit(over)) = check_gauge(&catalog, free, "agents", 4) else {
            panic!("over the limit");
        };
        assert_eq!((over.limit, over.wanted), (1, 4));
        assert_eq!(
            over.upgrade,
            Some(("starter".into(), "Starter".into(), Limit::Count(5)))
        );
        assert_eq!(
            over.to_string(),
            "Agents are limited to 1 on the Free plan; this would make 4. Upgrade to Starter (up to 5 agents) to go beyond it."
        );
        // 30 agents: only Enterprise (sold by contact) allows it.
        let Err(GaugeRefusal::OverLimit(over)) = check_gauge(&catalog, free, "agents", 30) else {
            panic!("over the limit");
        };
        assert_eq!(over.upgrade.map(|u| u.0), Some("enterprise".into()));
        let enterprise = catalog.plan("enterprise").expect("plan");
        assert_eq!(
            check_gauge(&catalog, enterprise, "agents", 1_000_000),
            Ok(Limit::Unlimited)
        );
        assert_eq!(
            check_gauge(&catalog, free, "messages", 1),
            Err(GaugeRefusal::NotAGauge)
        );
        assert_eq!(
            check_gauge(&catalog, free, "users", 1),
            Err(GaugeRefusal::CountedByPortal)
        );
        assert_eq!(
            check_gauge(&catalog, free, "robots", 1),
            Err(GaugeRefusal::Unknown)
        );
    }

    #[test]
    fn one_more_member_fits_only_under_the_users_limit() {
        let seats = catalog("seats");
        let starter = seats.plan("starter").expect("plan");
        assert_eq!(check_one_more_member(&seats, starter, 2), Ok(()));
        let over = check_one_more_member(&seats, starter, 3).expect_err("full");
        assert_eq!((over.limit, over.wanted), (3, 4));
        assert_eq!(
            over.to_string(),
            "Users are limited to 3 on the Starter plan; this would make 4. Upgrade to Professional (up to 10 users) to go beyond it."
        );
        // Catalogs without a members gauge limit nobody.
        let hybrid = catalog("hybrid");
        assert_eq!(check_one_more_member(&hybrid, hybrid.free(), 500), Ok(()));
    }

    #[test]
    fn a_plan_change_that_would_leave_a_gauge_over_its_limit_is_refused() {
        let seats = catalog("seats");
        let starter = seats.plan("starter").expect("plan");
        let mut values = GaugeValues {
            reported: BTreeMap::from([("agents".to_owned(), 5)]),
            members: 3,
        };
        assert_eq!(check_plan_change(&seats, starter, &values), Ok(()));
        values.reported.insert("agents".into(), 7);
        values.members = 4;
        let refused = check_plan_change(&seats, starter, &values).expect_err("over");
        assert_eq!(refused.over.len(), 2);
        assert_eq!(
            refused.to_string(),
            "Moving to Starter would leave this organization over its limits (Agents 7 of 5, Users 4 of 3). Lower them first, or choose a larger plan."
        );
        let professional = seats.plan("professional").expect("plan");
        assert_eq!(check_plan_change(&seats, professional, &values), Ok(()));
    }

    #[test]
    fn the_cheapest_plan_compares_monthly_cost_and_puts_contact_sales_last() {
        let seats = catalog("seats");
        let any = cheapest_plan_where(&seats, |_| true).map(|p| p.key.as_str());
        assert_eq!(any, Some("free"));
        let paid = cheapest_plan_where(&seats, |p| p.key != "free").map(|p| p.key.as_str());
        assert_eq!(paid, Some("starter"));
        let top = cheapest_plan_where(&seats, |p| limit_of(p, "users") == Limit::Unlimited);
        assert_eq!(top.map(|p| p.key.as_str()), Some("enterprise"));
    }
}
