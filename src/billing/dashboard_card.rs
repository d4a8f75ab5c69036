//! The plan card on the organization's dashboard: the effective plan, the trial countdown or the
//! grace-period banner, and the plan's limits. The dashboard composes it with the other domains'
//! cards, so it never reaches into billing's pages; the billing pages can reuse [`limit_lines`],
//! [`Limits`] and [`price_label`] for the same words.
//!
//! [`PlanCard`] is what the card shows (plain data, in the page's data), [`PlanCardView`] lays it
//! out. On the server, [`load`] reads it on its own, and [`FACTS`] lets the dashboard read it
//! inside its one statement together with the other cards.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, Limit, Plan, Price};
use crate::web::format::money;

/// What the plan card shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCard {
    /// The plan the organization is on now.
    pub plan: String,
    /// The time left in a trial, in words ("6 days 3 hours").
    pub trial_left: Option<String>,
    /// The time left before a failed payment ends the plan, in words.
    pub grace_left: Option<String>,
    /// The plan's limits and features, one line each.
    pub limits: Vec<String>,
    /// The billing page, where a card is fixed.
    pub billing_link: String,
}

/// A plan's limits, in the catalog's order (small to xl, not alphabetical), then its features.
pub fn limit_lines(catalog: &Catalog, plan: &Plan) -> Vec<String> {
    catalog
        .meter_keys()
        .into_iter()
        .filter_map(|meter| plan.limits.get(meter).map(|limit| (meter, limit)))
        .map(|(meter, limit)| {
            let amount = match limit {
                Limit::Count(n) => n.to_string(),
                Limit::Unlimited => "Unlimited".to_owned(),
            };
            format!("{amount} {}", catalog.meter_name(meter))
        })
        .chain(plan.features.iter().map(|f| {
            catalog
                .features
                .iter()
                .find(|x| &x.key == f)
                .map_or_else(|| f.clone(), |x| x.name.clone())
        }))
        .collect()
}

/// What a plan costs, as its card says it: "Free", "$29.00 / month", "Contact sales".
pub fn price_label(catalog: &Catalog, plan: &Plan) -> String {
    match &plan.price {
        Price::Free => "Free".to_owned(),
        Price::Recurring {
            cents, interval, ..
        } => format!(
            "{} / {}",
            money(*cents, &catalog.currency),
            interval.as_str()
        ),
        Price::ContactSales => "Contact sales".to_owned(),
    }
}

/// A plan's limits as a list (see [`limit_lines`]).
#[component]
pub fn Limits(lines: Vec<String>) -> impl IntoView {
    view! { <ul class="limits">{lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul> }
}

/// The plan box on the organization's page: plan, trial countdown or grace banner, limits.
#[component]
pub fn PlanCardView(card: PlanCard) -> impl IntoView {
    let PlanCard {
        plan,
        trial_left,
        grace_left,
        limits,
        billing_link,
    } = card;
    view! {
        <section class="card" aria-labelledby="summary-heading">
            <h2 id="summary-heading">{format!("{plan} plan")}</h2>
            {trial_left.map(|left| view! { <p class="trial"><strong>{format!("Trial: {left} left.")}</strong></p> })}
            {grace_left.map(|left| view! {
                <p class="banner alert" role="alert">{format!("Your last payment failed. You keep your plan for {left} more. ")}<a href=billing_link.clone()>"Fix your card"</a></p>
            })}
            <Limits lines=limits />
        </section>
    }
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use chrono::{DateTime, Utc};
    use serde::Deserialize;
    use sqlx::PgPool;
    use uuid::Uuid;

    use super::{limit_lines, PlanCard};
    use crate::billing::catalog::Catalog;
    use crate::billing::subscription::{countdown, effective_plan, grace_ends, Stored};
    use crate::error::AppError;

    /// The card's facts as one JSON value (the organization's subscription row, or null), for a
    /// statement in which the organization is the row `org` (with its `id`). A fragment rather
    /// than a query, so the dashboard reads every card in one statement.
    pub const FACTS: &str = "(SELECT row_to_json(s) FROM subscriptions s WHERE s.org_id = org.id)";

    /// The subscription as [`FACTS`] gives it.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Facts {
        stripe_subscription_id: String,
        plan_key: String,
        status: String,
        trial_end: Option<DateTime<Utc>>,
        current_period_start: Option<DateTime<Utc>>,
        current_period_end: Option<DateTime<Utc>>,
        cancel_at_period_end: bool,
        past_due_since: Option<DateTime<Utc>>,
        kept_plan_key: Option<String>,
        kept_until: Option<DateTime<Utc>>,
    }

    impl From<Facts> for Stored {
        fn from(f: Facts) -> Self {
            Stored {
                stripe_subscription_id: f.stripe_subscription_id,
                plan_key: f.plan_key,
                status: f.status,
                trial_end: f.trial_end,
                current_period_start: f.current_period_start,
                current_period_end: f.current_period_end,
                cancel_at_period_end: f.cancel_at_period_end,
                past_due_since: f.past_due_since,
                kept: f.kept_plan_key.zip(f.kept_until),
            }
        }
    }

    /// The card of an organization with this subscription (if any), at `now`.
    pub fn card(
        catalog: &Catalog,
        stored: Option<&Stored>,
        slug: &str,
        now: DateTime<Utc>,
    ) -> PlanCard {
        let plan = effective_plan(catalog, stored, now);
        let trial_left = stored
            .filter(|s| s.status == "trialing")
            .and_then(|s| s.trial_end.and_then(|end| countdown(end, now)));
        let grace_left = stored.and_then(|s| {
            grace_ends(s)
                .filter(|end| *end > now)
                .and_then(|end| countdown(end, now))
        });
        PlanCard {
            plan: plan.name.clone(),
            trial_left,
            grace_left,
            limits: limit_lines(catalog, plan),
            billing_link: format!("/orgs/{slug}/billing"),
        }
    }

    /// The card of the organization `org_id`, read on its own (one statement).
    pub async fn load(
        db: &PgPool,
        catalog: &Catalog,
        org_id: Uuid,
        slug: &str,
    ) -> Result<PlanCard, AppError> {
        let json: Option<String> = sqlx::query_scalar(&format!(
            "SELECT {FACTS}::text FROM (SELECT $1::uuid AS id) org"
        ))
        .bind(org_id)
        .fetch_one(db)
        .await?;
        let facts: Option<Facts> = match json {
            Some(json) => Some(serde_json::from_str(&json).map_err(anyhow::Error::from)?),
            None => None,
        };
        let stored = facts.map(Stored::from);
        Ok(card(catalog, stored.as_ref(), slug, Utc::now()))
    }
}
