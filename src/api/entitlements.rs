//! `GET /api/v1/entitlements`: the organization's plan, status, features, meters, credits and
//! whether each tier may act now. It is the product's hot read, so the serialized answer is
//! cached per organization. A purchase, grant, refund, plan change or gauge change, made on any
//! instance, sends a notice that drops every instance's copy at once
//! ([`crate::db::shared_cache`]); this instance's usage writer drops an organization's copy the
//! moment its counters or balance change; usage recorded by another instance shows within
//! `ENTITLEMENTS_CACHE_MILLISECONDS` (a notice per usage commit would tax the hot path for a read that is advisory:
//! the limits themselves are enforced by the writer under row locks).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::db::shared_cache::{Coherence, Route, SharedCache};
use crate::usage::entitlements::compute;
use crate::usage::repo;
use crate::web::state::AppState;

pub struct EntitlementsCache {
    answers: SharedCache<Uuid, Bytes>,
}

impl EntitlementsCache {
    /// `reuse` is the longest an answer is reused: for usage other instances record, and for
    /// time passing.
    pub fn new(coherence: Arc<Coherence>, reuse: Duration) -> Self {
        Self {
            answers: SharedCache::expiring(coherence, 100_000, reuse),
        }
    }

    /// The notices that drop copies: one organization's (`entitlements:ORG`).
    pub fn route(&self) -> Route {
        Route::Key("entitlements", Arc::new(self.answers.clone()))
    }

    /// Drops the copies of organizations whose counters or balance this instance just changed.
    /// A load that overlapped the change may keep a stale copy for at most the cache's reuse time, as
    /// usage from another instance does.
    pub fn forget(&self, orgs: &[Uuid]) {
        for org in orgs {
            self.answers.drop_copy(org);
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
            let ticket = cache.answers.start_load();
            let now = Utc::now();
            let standing = repo::standing(&state.db, caller.org_id, now).await?;
            let answer = compute(&state.catalog, &standing, now);
            let body = Bytes::from(serde_json::to_vec(&answer).map_err(|e| {
                tracing::error!(error = %e, "serializing entitlements");
                ApiError::unavailable()
            })?);
            cache.answers.store(caller.org_id, body.clone(), ticket);
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
