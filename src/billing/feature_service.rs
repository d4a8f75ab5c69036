//! May this organization use a feature now: reads its subscription and answers the pure rule of
//! [`super::limits::feature_access`] in owned types, with the page where a manager upgrades.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::catalog::{Catalog, Plan};
use super::limits::{feature_access, FeatureAccess};
use super::repo;

/// A plan, as answers name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanName {
    pub key: String,
    pub name: String,
}

impl From<&Plan> for PlanName {
    fn from(plan: &Plan) -> Self {
        Self {
            key: plan.key.clone(),
            name: plan.name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureAnswer {
    Allowed {
        feature_name: String,
        plan: PlanName,
    },
    /// Not in the plan in effect; `upgrade_path` is the organization's plans page.
    NotInPlan {
        feature_name: String,
        plan: PlanName,
        cheapest: Option<PlanName>,
        upgrade_path: String,
    },
    Unknown,
}

/// The organization's plans page, where its managers upgrade.
pub async fn plans_path(db: &PgPool, org_id: Uuid) -> sqlx::Result<String> {
    let slug: String = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db)
        .await?;
    Ok(format!("/orgs/{slug}/plans"))
}

pub async fn check_feature(
    db: &PgPool,
    catalog: &Catalog,
    org_id: Uuid,
    feature: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<FeatureAnswer> {
    // An unknown feature needs no read.
    if !catalog.features.iter().any(|f| f.key == feature) {
        return Ok(FeatureAnswer::Unknown);
    }
    let stored = repo::subscription(db, org_id).await?.map(|(s, _)| s);
    let feature_name = catalog.feature_name(feature).to_owned();
    Ok(
        match feature_access(catalog, stored.as_ref(), now, feature) {
            FeatureAccess::Allowed { plan } => FeatureAnswer::Allowed {
                feature_name,
                plan: plan.into(),
            },
            FeatureAccess::NotInPlan { plan, cheapest } => FeatureAnswer::NotInPlan {
                feature_name,
                plan: plan.into(),
                cheapest: cheapest.map(PlanName::from),
                upgrade_path: plans_path(db, org_id).await?,
            },
            FeatureAccess::Unknown => FeatureAnswer::Unknown,
        },
    )
}
