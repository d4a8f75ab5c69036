//! One error type for every handler. It turns into a response twice: `into_response` records what
//! went wrong (status and a message safe to show) as a response extension, and the
//! [`render_errors`] middleware, which knows the request path, renders that as an HTML page or, under
//! `/api`, as JSON. Internal details are logged, never shown.

use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

use leptos::prelude::*;

use crate::web::caller::ErrorSlot;
use crate::web::layout::{render_document, ErrorPage};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("not signed in")]
    Unauthenticated,
    #[error("cross-site request refused")]
    CsrfRejected,
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    /// A limit on one kind of request, with a sentence that names it.
    #[error("throttled: {message}")]
    Throttled {
        message: String,
        retry_after: Duration,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// A failed Stripe call that a handler did not turn into something the customer can act on.
impl From<crate::stripe_gateway::GatewayError> for AppError {
    fn from(e: crate::stripe_gateway::GatewayError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// A part the portal depends on that is out of reach: the request is answered 503 with
/// `Retry-After`, and says so, rather than "something went wrong".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    Database,
    Stripe,
}

/// What an answer during an outage suggests as the wait before trying again.
const OUTAGE_RETRY_AFTER: Duration = Duration::from_secs(5);

impl Outage {
    /// The outage behind `e`, if any: a database error that means unreachable
    /// ([`crate::db::unreachable`], also in the text the session store keeps), or Stripe out of
    /// reach ([`crate::stripe_gateway::GatewayError::Unreachable`]), anywhere in its chain.
    pub fn of(e: &anyhow::Error) -> Option<Self> {
        e.chain().find_map(|cause| {
            if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
                return crate::db::unreachable(db).then_some(Outage::Database);
            }
            if let Some(stripe) = cause.downcast_ref::<crate::stripe_gateway::GatewayError>() {
                return matches!(
                    stripe,
                    crate::stripe_gateway::GatewayError::Unreachable { .. }
                )
                .then_some(Outage::Stripe);
            }
            let sessions = cause.downcast_ref::<tower_sessions::session::Error>();
            sessions
                .is_some_and(|s| crate::db::unreachable_message(&s.to_string()))
                .then_some(Outage::Database)
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            Outage::Database => "database_unavailable",
            Outage::Stripe => "stripe_unavailable",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Outage::Database => {
                "The portal cannot reach its database right now, so nothing was changed. \
                 Please try again in a moment."
            }
            Outage::Stripe => {
                "Stripe could not be reached, so nothing was changed. Please try again in a \
                 moment."
            }
        }
    }
}

/// What the error middleware needs to render an error: the status, a stable code for JSON
/// clients and a sentence for people.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For a refusal that lifts after a while (sent as `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl AppError {
    /// The report of this error; an internal error is logged here (with the request's span), and
    /// only a sentence safe to show is kept.
    pub fn into_report(self) -> ErrorReport {
        if let AppError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        self.report()
    }

    pub fn report(&self) -> ErrorReport {
        let (status, code, message) = match self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "We could not find that page.".to_owned(),
            ),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "You do not have access to this page.".to_owned(),
            ),
            AppError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Log in to continue.".to_owned(),
            ),
            AppError::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "csrf_rejected",
                "This form has expired or was sent from another site. Go back, reload the page \
                 and try again."
                    .to_owned(),
            ),
            AppError::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Too many attempts. Try again in {} seconds.",
                    retry_after.as_secs().max(1)
                ),
            ),
            AppError::Throttled { message, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message.clone(),
            ),
            AppError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "bad_request", message.clone())
            }
            AppError::Internal(e) => match Outage::of(e) {
                Some(outage) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    outage.code(),
                    outage.message().to_owned(),
                ),
                None => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side. Please try again in a moment.".to_owned(),
                ),
            },
        };
        let retry_after = match self {
            AppError::RateLimited { retry_after } | AppError::Throttled { retry_after, .. } => {
                Some(*retry_after)
            }
            AppError::Internal(e) if Outage::of(e).is_some() => Some(OUTAGE_RETRY_AFTER),
            _ => None,
        };
        ErrorReport {
            status,
            code,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // Runs inside the request's span, so a logged error carries method, path and request id.
        let report = self.into_report();
        let mut response = report.status.into_response();
        response.extensions_mut().insert(report);
        response
    }
}

/// Renders error reports left by handlers (and bare 404s from the router) for the kind of client
/// that asked: JSON under `/api`, a redirect to the login page for signed-out browsers, an HTML
/// page otherwise.
pub async fn render_errors(mut request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    // Pages and server functions record their failure here (see `web::caller`).
    let slot = ErrorSlot::default();
    request.extensions_mut().insert(slot.clone());
    let accepts_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let wanted = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let is_server_function = wanted.starts_with(FORMS_PREFIX);
    let response = next.run(request).await;
    let recorded = slot.take();
    // Only a server function is called by script; a page is a page whatever the client accepts.
    if recorded.is_some() && !accepts_html && is_server_function {
        // A server function called by script: it gets the error as data, with the status.
        let mut response = response;
        if let Some(report) = &recorded {
            *response.status_mut() = report.status;
            response.headers_mut().remove(header::LOCATION);
        }
        return response;
    }
    let report = match recorded.or_else(|| response.extensions().get::<ErrorReport>().cloned()) {
        Some(report) => report,
        None if response.status() == StatusCode::NOT_FOUND && response.body().is_end_stream() => {
            AppError::NotFound.report()
        }
        None => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.status = report.status;
    // A server function's redirect (back to the form) gives way to the error page.
    parts.headers.remove(header::LOCATION);
    if let Some(retry_after) = report.retry_after {
        if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
            parts.headers.insert(header::RETRY_AFTER, value);
        }
    }
    if is_api {
        let body = serde_json::json!({"error": {"code": report.code, "message": report.message}});
        return (parts, Json(body)).into_response();
    }
    if report.status == StatusCode::UNAUTHORIZED {
        // After logging in, a form's endpoint is nowhere to go back to.
        let wanted = Some(wanted.as_str()).filter(|w| !w.starts_with(FORMS_PREFIX));
        let target = match wanted.and_then(crate::web::redirect::local_path) {
            Some(wanted) => format!("/login?next={}", url_escape(wanted)),
            None => "/login".to_owned(),
        };
        return Redirect::to(&target).into_response();
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let (status, message) = (report.status, report.message);
    let html = render_document(move || view! { <ErrorPage status=status message=message /> });
    (parts, html).into_response()
}

/// Where the portal's server functions (its forms) are served.
pub const FORMS_PREFIX: &str = "/forms/";

pub use crate::text::url_escape;
