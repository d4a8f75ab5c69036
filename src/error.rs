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

/// What the error middleware needs to render an error: the status, a stable code for JSON
/// clients and a sentence for people.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    fn report(&self) -> ErrorReport {
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
            AppError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "bad_request", message.clone())
            }
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side. Please try again in a moment.".to_owned(),
            ),
        };
        ErrorReport {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(e) = &self {
            // Runs inside the request's span, so the log line carries method, path and request id.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let report = self.report();
        let mut response = report.status.into_response();
        if let AppError::RateLimited { retry_after } = &self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(report);
        response
    }
}

/// Renders error reports left by handlers (and bare 404s from the router) for the kind of client
/// that asked: JSON under `/api`, a redirect to the login page for signed-out browsers, an HTML
/// page otherwise.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let wanted = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let response = next.run(request).await;
    let report = match response.extensions().get::<ErrorReport>() {
        Some(report) => report.clone(),
        None if response.status() == StatusCode::NOT_FOUND && response.body().is_end_stream() => {
            AppError::NotFound.report()
        }
        None => return response,
    };
    let (mut parts, _) = response.into_parts();
    if is_api {
        let body = serde_json::json!({"error": {"code": report.code, "message": report.message}});
        return (parts, Json(body)).into_response();
    }
    if report.status == StatusCode::UNAUTHORIZED {
        let target = match crate::web::redirect::local_path(&wanted) {
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
    let html = render_document(view! { <ErrorPage status=status message=message /> });
    (parts, html).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
