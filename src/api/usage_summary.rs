//! `GET /api/v1/usage/summary`: actions per meter over the current and the previous period, in
//! total and per day, as the usage page draws them ([`crate::usage::summary`]).

use axum::extract::State;
use axum::Json;
use chrono::Utc;

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::usage::summary::{self, UsageSummary};
use crate::web::state::AppState;

/// Usage per meter and day.
///
/// Actions per meter over the current and the previous period, in total and per day (UTC).
#[utoipa::path(
    get,
    path = "/api/v1/usage/summary",
    operation_id = "get_usage_summary",
    tag = "usage",
    security(("api_key" = ["billing:read"])),
    responses(
        (status = 200, description = "Actions per meter and day, this period and the one before", body = UsageSummary),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:read` scope", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `read` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 503, description = "The portal's database could not answer; retry", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<UsageSummary>, ApiError> {
    caller.require(Scope::BillingRead)?;
    let answer = summary::load(&state.db, &state.catalog, caller.org_id, Utc::now()).await?;
    Ok(Json(answer))
}
