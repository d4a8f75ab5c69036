//! The JSON API under `/api/v1`, for the SaaS product: record billable actions and ask what an
//! organization may do. Authenticated by per-organization API keys; every error is JSON with a
//! stable code, a message a developer can act on, and the field at fault. Also the browser's page
//! for the keys (`keys_page`, compiled for the server and the browser; `keys_forms` is what its
//! server functions do there) and the API reference page generated from the OpenAPI document
//! (`pages`; `reference` reads the document for it). Everything else is server only.

pub mod keys_page;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod billing;
#[cfg(feature = "ssr")]
pub mod billing_errors;
#[cfg(feature = "ssr")]
pub mod entitlements;
#[cfg(feature = "ssr")]
pub mod guard;
#[cfg(feature = "ssr")]
pub mod idempotency;
#[cfg(feature = "ssr")]
pub mod invoices;
#[cfg(feature = "ssr")]
pub mod key_misses;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod keys_forms;
#[cfg(feature = "ssr")]
pub mod limits;
#[cfg(feature = "ssr")]
pub mod openapi;
#[cfg(feature = "ssr")]
pub mod plans;
#[cfg(feature = "ssr")]
pub mod rate_limit;
#[cfg(feature = "ssr")]
pub mod reference;
#[cfg(feature = "ssr")]
pub mod scopes;
#[cfg(feature = "ssr")]
pub mod usage;
#[cfg(feature = "ssr")]
pub mod usage_summary;

#[cfg(feature = "ssr")]
use axum::http::StatusCode;
#[cfg(feature = "ssr")]
use axum::response::{IntoResponse, Response};
#[cfg(feature = "ssr")]
use axum::routing::{any, get, post, put};
#[cfg(feature = "ssr")]
use axum::{Json, Router};
#[cfg(feature = "ssr")]
use serde::Serialize;
#[cfg(feature = "ssr")]
use serde_json::json;

#[cfg(feature = "ssr")]
use crate::web::state::AppState;

/// The API's shared in-memory state: verified keys, wrong keys per address, cached
/// entitlements and the rate limits.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ApiState {
    pub keys: keys::KeyCache,
    pub key_misses: std::sync::Arc<key_misses::KeyMissLimiter>,
    pub entitlements: std::sync::Arc<entitlements::EntitlementsCache>,
    pub limits: std::sync::Arc<rate_limit::RateLimits>,
}

/// A JSON error answer.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Sent as `Retry-After` (with 429).
    pub retry_after: Option<axum::http::HeaderValue>,
}

#[cfg(feature = "ssr")]
impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: message.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The portal could not record this right now; nothing was recorded. Retry with the same idempotency key.",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "code": self.code, "message": self.message, "field": self.field })
    }
}

/// The error object every failed answer carries under `error`.
#[cfg(feature = "ssr")]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, such as `invalid_field` or `credits_exhausted`.
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The request field at fault, as a path (`actions[3].tier`), when there is one.
    pub field: Option<String>,
}

#[cfg(feature = "ssr")]
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "API request failed");
        }
        let mut response = (self.status, Json(json!({ "error": self.body() }))).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait);
        }
        response
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "API database error");
        Self::unavailable()
    }
}

/// The API with its guard layers (key, rate limit, idempotency: see [`guard`]) on every route.
#[cfg(feature = "ssr")]
pub fn service(state: AppState) -> Router {
    guard::apply(router(), state)
}

/// The API's routes, outside the browser layers (no session or anti-forgery cookies).
#[cfg(feature = "ssr")]
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage", post(usage::record_one))
        .route("/api/v1/usage/batch", post(usage::record_batch))
        .route("/api/v1/entitlements", get(entitlements::show))
        .route("/api/v1/plans", get(plans::list))
        .route("/api/v1/subscription", get(billing::show))
        .route("/api/v1/subscription/change", post(billing::change_plan))
        .route("/api/v1/subscription/cancel", post(billing::cancel))
        .route("/api/v1/subscription/resume", post(billing::resume))
        .route("/api/v1/checkout_sessions", post(billing::start_checkout))
        .route("/api/v1/portal_sessions", post(billing::open_portal))
        .route("/api/v1/invoices", get(invoices::list))
        .route("/api/v1/usage/summary", get(usage_summary::show))
        .route("/api/v1/features/{key}", get(limits::feature))
        .route("/api/v1/gauges/{meter}", put(limits::set_gauge))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/{*rest}", any(not_found))
}

#[cfg(feature = "ssr")]
async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such API endpoint. The document at /api/v1/openapi.json lists them.",
    )
}
