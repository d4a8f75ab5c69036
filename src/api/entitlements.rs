//! `GET /api/v1/entitlements`: the organization's plan, status, features, meters, credits and
//! whether each tier may act now. It is the product's hot read, so the serialized answer is
//! cached per organization for at most a second; this instance's usage writer drops an
//! organization's entry the moment its counters or balance change.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use moka::sync::Cache;
use uuid::Uuid;

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::usage::entitlements::compute;
use crate::usage::repo;
use crate::web::state::AppState;

/// Longest an answer is reused (for changes made by other instances, or by time passing).
const CACHE_TTL: Duration = Duration::from_secs(1);

pub struct EntitlementsCache {
    answers: Cache<Uuid, Bytes>,
}

impl Default for EntitlementsCache {
    fn default() -> Self {
        Self {
            answers: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }
}

impl EntitlementsCache {
    pub fn forget(&self, orgs: &[Uuid]) {
        for org in orgs {
            self.answers.invalidate(org);
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/entitlements",
    security(("api_key" = ["entitlements:read"])),
    responses(
        (status = 200, description = "What the organization may do now", body = crate::usage::entitlements::Entitlements),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `entitlements:read` scope (`missing_scope`)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `read` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn show(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::EntitlementsRead)?;
    let cache = &state.api.entitlements;
    let body = match cache.answers.get(&caller.org_id) {
        Some(body) => body,
        None => {
            let now = Utc::now();
            let standing = repo::standing(&state.db, caller.org_id, now).await?;
            let answer = compute(&state.catalog, &standing, now);
            let body = Bytes::from(serde_json::to_vec(&answer).map_err(|e| {
                tracing::error!(error = %e, "serializing entitlements");
                ApiError::unavailable()
            })?);
            cache.answers.insert(caller.org_id, body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
