//! `GET /api/v1/features/{key}` (may the organization use this feature now?) and
//! `PUT /api/v1/gauges/{meter}` (set a current count such as agents, within the plan's limit).
//! A plan that does not allow it answers 402 with the cheapest plan that does and the page
//! where the organization's managers upgrade; the rules are in [`crate::billing::limits`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::billing::catalog::Limit;
use crate::billing::feature_service::{check_feature, plans_path, FeatureAnswer, PlanName};
use crate::billing::limits::{GaugeRefusal, OverLimit};
use crate::usage::gauges::{self, GaugeError, MAX_GAUGE_VALUE};
use crate::web::state::AppState;

/// Longest feature or meter key looked up (catalog keys are short).
const MAX_KEY_LEN: usize = 64;

/// A plan, by key and name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanAnswer {
    pub key: String,
    pub name: String,
}

impl From<PlanName> for PlanAnswer {
    fn from(p: PlanName) -> Self {
        Self {
            key: p.key,
            name: p.name,
        }
    }
}

/// The organization may use the feature now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeatureAllowed {
    pub feature: String,
    pub name: String,
    /// Always `true` in a 200 answer (a refusal is a 402).
    pub allowed: bool,
    /// The plan in effect now (a trial or a grace period counts).
    pub plan: PlanAnswer,
}

/// A refusal the organization can lift by upgrading (402): the usual error object, plus the
/// plan it is on, the cheapest plan that allows it and where to upgrade.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpgradeRequired {
    pub error: UpgradeError,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpgradeError {
    /// `feature_not_in_plan` or `gauge_limit_reached`.
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// The plan in effect now.
    pub plan: Option<PlanAnswer>,
    /// The cheapest plan that allows it; `null` when no plan does.
    pub upgrade_to: Option<PlanAnswer>,
    /// The organization's plans page in the portal, where its owners and admins upgrade.
    pub upgrade_url: String,
    /// For a gauge: the plan's limit.
    pub limit: Option<u64>,
}

fn upgrade_required(error: UpgradeError) -> Response {
    (
        StatusCode::PAYMENT_REQUIRED,
        Json(UpgradeRequired { error }),
    )
        .into_response()
}

fn catalog_key(kind: &str, key: &str) -> Result<(), ApiError> {
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(unknown(kind, key));
    }
    Ok(())
}

fn unknown(kind: &str, key: &str) -> ApiError {
    let shown: String = key.chars().take(MAX_KEY_LEN).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("The plan catalog declares no {kind} \"{shown}\". GET /api/v1/plans lists them."),
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/features/{key}",
    security(("api_key" = [])),
    params(("key" = String, Path, description = "A feature key of the catalog, such as `white_label`")),
    responses(
        (status = 200, description = "The plan in effect now includes the feature", body = FeatureAllowed),
        (status = 402, description = "The plan does not include it: the cheapest plan that does and where to upgrade", body = UpgradeRequired),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `entitlements:read` scope", body = super::openapi::ErrorAnswer),
        (status = 404, description = "The catalog declares no such feature", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `read` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn feature(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::EntitlementsRead)?;
    catalog_key("feature", &key)?;
    let answer = check_feature(&state.db, &state.catalog, caller.org_id, &key, Utc::now()).await?;
    Ok(match answer {
        FeatureAnswer::Allowed { feature_name, plan } => Json(FeatureAllowed {
            feature: key,
            name: feature_name,
            allowed: true,
            plan: plan.into(),
        })
        .into_response(),
        FeatureAnswer::NotInPlan {
            feature_name,
            plan,
            cheapest,
            upgrade_path,
        } => {
            let message = match &cheapest {
                Some(up) => format!(
                    "{feature_name} is not included in the {} plan. The {} plan includes it; an owner or admin can upgrade at {}{upgrade_path}.",
                    plan.name, up.name, state.public_url
                ),
                None => format!(
                    "{feature_name} is not included in the {} plan, nor in any plan on offer.",
                    plan.name
                ),
            };
            upgrade_required(UpgradeError {
                code: "feature_not_in_plan".into(),
                message,
                field: None,
                plan: Some(plan.into()),
                upgrade_to: cheapest.map(PlanAnswer::from),
                upgrade_url: format!("{}{upgrade_path}", state.public_url),
                limit: None,
            })
        }
        FeatureAnswer::Unknown => return Err(unknown("feature", &key)),
    })
}

/// The count to set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GaugeRequest {
    /// The count now: a whole number from 0 to 1,000,000,000,000.
    pub value: u64,
}

/// The gauge as it now stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GaugeAnswer {
    pub meter: String,
    pub name: String,
    pub value: u64,
    /// What it was before this call.
    pub previous: u64,
    /// The plan's limit; `null` when unlimited.
    pub limit: Option<u64>,
    pub unlimited: bool,
}

#[utoipa::path(
    put,
    path = "/api/v1/gauges/{meter}",
    security(("api_key" = [])),
    params(
        ("meter" = String, Path, description = "A gauge meter of the catalog, such as `agents`"),
        super::usage::IdempotencyHeader
    ),
    request_body = GaugeRequest,
    responses(
        (status = 200, description = "Set: the new value and the plan's limit", body = GaugeAnswer),
        (status = 402, description = "The plan's limit would be exceeded; nothing changed", body = UpgradeRequired),
        (status = 400, description = "Malformed JSON", body = super::openapi::ErrorAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `usage:write` scope", body = super::openapi::ErrorAnswer),
        (status = 404, description = "The catalog declares no such meter", body = super::openapi::ErrorAnswer),
        (status = 422, description = "Not a gauge the product sets (a sum per period, or the member count), or a bad value; nothing changed", body = super::openapi::ErrorAnswer),
        (status = 409, description = "The Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `usage` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn set_gauge(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(meter): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::UsageWrite)?;
    catalog_key("meter", &meter)?;
    let request: GaugeRequest = super::usage::parse(&body)?;
    let catalog = &state.catalog;
    let set = gauges::set(
        &state.db,
        catalog,
        &state.api.entitlements,
        caller.org_id,
        &meter,
        request.value,
        Utc::now(),
    )
    .await;
    match set {
        Ok(set) => Ok(Json(GaugeAnswer {
            name: catalog.meter_name(&set.meter).to_owned(),
            meter: set.meter,
            value: set.value,
            previous: set.previous,
            limit: match set.limit {
                Limit::Count(n) => Some(n),
                Limit::Unlimited => None,
            },
            unlimited: set.limit == Limit::Unlimited,
        })
        .into_response()),
        Err(GaugeError::Refused(GaugeRefusal::OverLimit(over))) => {
            let path = plans_path(&state.db, caller.org_id).await?;
            Ok(over_limit(*over, format!("{}{path}", state.public_url)))
        }
        Err(GaugeError::Refused(GaugeRefusal::Unknown)) => Err(unknown("meter", &meter)),
        Err(GaugeError::Refused(GaugeRefusal::NotAGauge)) => Err(ApiError::invalid(
            "meter",
            format!(
                "\"{meter}\" is a sum per period, not a gauge: record it as actions with POST /api/v1/usage."
            ),
        )),
        Err(GaugeError::Refused(GaugeRefusal::CountedByPortal)) => Err(ApiError::invalid(
            "meter",
            format!(
                "\"{meter}\" is the organization's member count, kept by the portal: invite or remove members instead."
            ),
        )),
        Err(GaugeError::TooLarge) => Err(ApiError::invalid(
            "value",
            format!("value must be a whole number from 0 to {MAX_GAUGE_VALUE}."),
        )),
        Err(GaugeError::Database(e)) => Err(e.into()),
    }
}

fn over_limit(over: OverLimit, upgrade_url: String) -> Response {
    let message =
        format!("{over} An owner or admin can upgrade at {upgrade_url}. Nothing was changed.");
    upgrade_required(UpgradeError {
        code: "gauge_limit_reached".into(),
        message,
        field: Some("value".into()),
        plan: Some(PlanAnswer {
            key: over.plan_key.clone(),
            name: over.plan_name.clone(),
        }),
        upgrade_to: over.upgrade.map(|(key, name, _)| PlanAnswer { key, name }),
        upgrade_url,
        limit: Some(over.limit),
    })
}
