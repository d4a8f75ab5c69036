//! The idempotency middleware of `/api/v1` (see [`super`]): `POST` and `PUT` requests that carry
//! an `Idempotency-Key` from a caller with a valid API key claim the key before the handler runs,
//! and the handler's answer is saved when it is final (2xx or 4xx). Requests without the header
//! pass through untouched. A concurrent repeat is answered 409 `idempotency_in_progress` with
//! `Retry-After: 1` rather than waiting, so no request holds a connection on another's behalf.
//! The claimed request runs in its own task, so it finishes and is saved even when its client
//! hangs up half-way.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use uuid::Uuid;

use super::store::{self, Claim};
use super::{parse_key, replayable_header, worth_saving, Fingerprint, Saved, HEADER, REPLAYED};
use crate::api::keys::Authenticated;
use crate::api::ApiError;
use crate::web::state::AppState;

/// The largest request body read here (axum's own default limit for the handlers' bodies).
const MAX_BODY: usize = 2 * 1024 * 1024;

pub async fn guard(
    State(state): State<std::sync::Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PUT) {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let key = match parse_key(raw.as_bytes()) {
        Ok(key) => key,
        Err(bad) => return ApiError::invalid("Idempotency-Key", bad.message()).into_response(),
    };
    // Keys belong to an organization: without a valid API key the handler answers 401 itself.
    let Some(Authenticated(Ok(caller))) = request.extensions().get::<Authenticated>().cloned()
    else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
        .into_response();
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let fingerprint = Fingerprint::of(parts.method.as_str(), &target, &body);
    let claim = match store::claim(&state.db, caller.org_id, &key, &fingerprint).await {
        Ok(claim) => claim,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match claim {
        Claim::Replay(saved) => replay(saved),
        Claim::Mismatch => ApiError {
            field: Some("Idempotency-Key".to_owned()),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "This Idempotency-Key was already used for another request (another body, \
                 method or path). Use a new key for a new request.",
            )
        }
        .into_response(),
        Claim::InProgress => {
            let mut error = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed. Retry after it \
                 finishes to get its answer.",
            );
            error.field = Some("Idempotency-Key".to_owned());
            error.retry_after = Some(HeaderValue::from_static("1"));
            error.into_response()
        }
        Claim::Run => {
            let mut held = Held {
                db: state.db.clone(),
                org_id: caller.org_id,
                key: Some(key),
            };
            // Run in a task of its own: a client that hangs up does not cut the request short
            // half-way, and its answer is still saved for the retry.
            let run = tokio::spawn(async move {
                let response = next.run(Request::from_parts(parts, Body::from(body))).await;
                held.settle(response).await
            });
            run.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "an idempotent API request failed");
                ApiError::unavailable().into_response()
            })
        }
    }
}

/// A claimed key while its request runs. Dropped unsettled (the handler panicked), the key is
/// released, so a retry runs instead of waiting for an answer that will never come.
struct Held {
    db: PgPool,
    org_id: Uuid,
    key: Option<String>,
}

impl Held {
    async fn settle(&mut self, response: Response) -> Response {
        let Some(key) = self.key.take() else {
            return response;
        };
        if !worth_saving(response.status().as_u16()) {
            if let Err(e) = store::release(&self.db, self.org_id, &key).await {
                tracing::warn!(error = %e, "releasing an idempotency key failed");
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = match to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "reading an API answer to save it");
                if let Err(e) = store::release(&self.db, self.org_id, &key).await {
                    tracing::warn!(error = %e, "releasing an idempotency key failed");
                }
                return ApiError::unavailable().into_response();
            }
        };
        let saved = Saved {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| replayable_header(name.as_str()))
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body: body.to_vec(),
        };
        if let Err(e) = store::save(&self.db, self.org_id, &key, &saved).await {
            // The answer stands. The key stays in flight (repeats get 409 until it counts as
            // lost) rather than freed, since freeing it would let a repeat act a second time.
            tracing::error!(error = %e, "saving an idempotent answer failed");
        }
        Response::from_parts(parts, Body::from(body))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let (db, org_id) = (self.db.clone(), self.org_id);
            tokio::spawn(async move {
                if let Err(e) = store::release(&db, org_id, &key).await {
                    tracing::warn!(error = %e, "releasing an idempotency key failed");
                }
            });
        }
    }
}

fn replay(saved: Saved) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut response = (status, saved.body).into_response();
    let headers = response.headers_mut();
    headers.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in saved.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
