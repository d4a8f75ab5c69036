//! `GET /api/v1/plans`: the plan catalog as customers see it (prices, intervals, limits,
//! features, trial days, the credit pack), so the product can draw its own pricing table. Public:
//! it needs no key, as the catalog is what the pricing page shows anyone. Stripe's price ids and
//! lookup keys stay out of it.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::billing::catalog::{Catalog, Limit, Plan, Price};
use crate::web::state::AppState;

/// The catalog.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogAnswer {
    /// `hybrid_credits`, `seat_limits` or `feature_tiers`.
    pub model: String,
    /// ISO currency code of every price, lower case (`usd`).
    pub currency: String,
    /// Days of the free trial a paid plan offers (0: no trial).
    pub trial_days: u32,
    /// In the catalog's order, cheapest first as the catalog lists them.
    pub plans: Vec<CatalogPlan>,
    /// The prepaid credit pack, in catalogs with credits.
    pub credit_pack: Option<CreditPackOffer>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogPlan {
    /// What `plan` takes in `POST /api/v1/checkout_sessions` and `/subscription/change`.
    pub key: String,
    pub name: String,
    /// `free`, `recurring` or `contact_sales`.
    pub pricing: String,
    /// Price per interval in the currency's minor unit (cents); 0 when free, `null` when sold
    /// by contacting sales.
    pub amount_cents: Option<i64>,
    /// `month` or `year` for recurring prices.
    pub interval: Option<String>,
    /// Whether it can be bought through Checkout (a recurring price).
    pub self_serve: bool,
    /// Trial days this plan offers (the catalog's for paid plans, 0 otherwise).
    pub trial_days: u32,
    /// Per meter, in the catalog's order.
    pub limits: Vec<CatalogLimit>,
    pub features: Vec<CatalogFeature>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogLimit {
    pub meter: String,
    pub name: String,
    /// Included per period; `null` when unlimited.
    pub included: Option<u64>,
    pub unlimited: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogFeature {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditPackOffer {
    pub name: String,
    /// Credits one pack adds.
    pub credits: i64,
    /// The same in milli-credits, as balances are counted.
    pub millicredits: i64,
    /// Price of one pack in the currency's minor unit (cents).
    pub amount_cents: i64,
}

/// The plan catalog as customers see it.
///
/// Prices, intervals, limits per meter, features, trial days and the credit pack. Needs no API
/// key.
#[utoipa::path(
    get,
    path = "/api/v1/plans",
    operation_id = "list_plans",
    tag = "billing",
    responses(
        (status = 200, description = "The plan catalog (no API key needed)", body = CatalogAnswer),
        (status = 429, description = "Too many calls without a key from this address (`rate_limited`); see Retry-After", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<CatalogAnswer> {
    Json(catalog_answer(&state.catalog))
}

/// The catalog in the API's words. Pure.
pub fn catalog_answer(catalog: &Catalog) -> CatalogAnswer {
    CatalogAnswer {
        model: model_name(catalog).to_owned(),
        currency: catalog.currency.clone(),
        trial_days: catalog.trial_days,
        plans: catalog.plans.iter().map(|p| plan(catalog, p)).collect(),
        credit_pack: catalog.credit_pack.as_ref().map(|pack| CreditPackOffer {
            name: pack.name.clone(),
            credits: pack.credits,
            millicredits: pack.credits.saturating_mul(1000),
            amount_cents: pack.price_cents,
        }),
    }
}

fn model_name(catalog: &Catalog) -> &'static str {
    use crate::billing::catalog::Model;
    match catalog.model {
        Model::HybridCredits => "hybrid_credits",
        Model::SeatLimits => "seat_limits",
        Model::FeatureTiers => "feature_tiers",
    }
}

fn plan(catalog: &Catalog, plan: &Plan) -> CatalogPlan {
    let (pricing, amount_cents, interval) = match &plan.price {
        Price::Free => ("free", Some(0), None),
        Price::Recurring {
            cents, interval, ..
        } => (
            "recurring",
            Some(*cents),
            Some(interval.as_str().to_owned()),
        ),
        Price::ContactSales => ("contact_sales", None, None),
    };
    CatalogPlan {
        key: plan.key.clone(),
        name: plan.name.clone(),
        pricing: pricing.to_owned(),
        amount_cents,
        interval,
        self_serve: plan.is_paid(),
        trial_days: if plan.is_paid() {
            catalog.trial_days
        } else {
            0
        },
        limits: catalog
            .meter_keys()
            .into_iter()
            .filter_map(|meter| plan.limits.get(meter).map(|limit| (meter, *limit)))
            .map(|(meter, limit)| CatalogLimit {
                meter: meter.to_owned(),
                name: catalog.meter_name(meter).to_owned(),
                included: match limit {
                    Limit::Count(n) => Some(n),
                    Limit::Unlimited => None,
                },
                unlimited: limit == Limit::Unlimited,
            })
            .collect(),
        features: plan
            .features
            .iter()
            .map(|key| CatalogFeature {
                key: key.clone(),
                name: catalog
                    .features
                    .iter()
                    .find(|f| &f.key == key)
                    .map_or_else(|| key.clone(), |f| f.name.clone()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(file: &str) -> Catalog {
        let path = format!("{}/plans/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("catalog file");
        crate::billing::catalog::parse(&path, &text).expect("valid catalog")
    }

    #[test]
    fn the_catalog_answers_prices_limits_trials_and_the_pack() {
        let answer = catalog_answer(&catalog("hybrid.toml"));
        assert_eq!(answer.model, "hybrid_credits");
        let keys: Vec<&str> = answer.plans.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["free", "starter", "pro", "max"]);
        let free = &answer.plans[0];
        assert_eq!(
            (free.pricing.as_str(), free.amount_cents),
            ("free", Some(0))
        );
        assert!(!free.self_serve && free.trial_days == 0);
        let pro = &answer.plans[2];
        assert_eq!(pro.amount_cents, Some(9900));
        assert_eq!(pro.interval.as_deref(), Some("month"));
        assert!(pro.self_serve);
        assert_eq!(pro.trial_days, 7);
        let limits: Vec<(&str, Option<u64>)> = pro
            .limits
            .iter()
            .map(|l| (l.meter.as_str(), l.included))
            .collect();
        assert_eq!(
            limits,
            [
                ("small", Some(2500)),
                ("medium", Some(1000)),
                ("large", Some(500)),
                ("xl", Some(160))
            ]
        );
        let pack = answer.credit_pack.expect("a pack");
        assert_eq!(
            (pack.credits, pack.millicredits, pack.amount_cents),
            (500, 500_000, 2000)
        );
    }

    #[test]
    fn contact_sales_and_unlimited_plans_say_so() {
        let answer = catalog_answer(&catalog("seats.toml"));
        let enterprise = answer
            .plans
            .iter()
            .find(|p| p.pricing == "contact_sales")
            .expect("a plan sold by contact");
        assert_eq!(enterprise.amount_cents, None);
        assert!(!enterprise.self_serve);
        assert!(enterprise
            .limits
            .iter()
            .any(|l| l.unlimited && l.included.is_none()));
        let features = catalog_answer(&catalog("features.toml"));
        assert!(features
            .plans
            .iter()
            .flat_map(|p| &p.features)
            .all(|f| !f.name.is_empty()));
        assert!(features.plans.iter().any(|p| !p.features.is_empty()));
    }
}
