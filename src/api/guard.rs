//! The layers every `/api/v1` route goes through, in order: authenticate the API key once (the
//! outcome rides in the request's extensions, for the layers below and the handler's
//! [`ApiCaller`](super::keys::ApiCaller)), the rate limit ([`super::rate_limit`]), then
//! idempotency ([`super::idempotency`]). Applied to the whole API router, so routes added to
//! [`super::router`] get them without asking.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::Router;

use super::keys::{self, Authenticated};
use crate::web::state::AppState;

/// The API's routes with their layers and state.
pub fn apply(routes: Router<AppState>, state: AppState) -> Router {
    // The layers share one copy of the state: handing each request an `Arc` costs one count,
    // where a copy of `AppState` would cost one per field.
    let shared = Arc::new(state.clone());
    routes
        // Innermost, so the slot for the key's audit actor lives in the task the handler runs in
        // (the idempotency layer runs it in a task of its own).
        .layer(axum::middleware::from_fn(
            crate::audit::context::per_request,
        ))
        .layer(from_fn_with_state(
            shared.clone(),
            super::idempotency::layer::guard,
        ))
        .layer(from_fn_with_state(
            shared.clone(),
            super::rate_limit::layer::limit,
        ))
        .layer(from_fn_with_state(shared, authenticate))
        .with_state(state)
}

/// Looks the key up when one is sent; a request without one goes on as anonymous (public
/// routes answer it, the others 401 from their extractor).
async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !request.headers().contains_key(AUTHORIZATION) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let outcome = keys::authenticate(&parts, &state).await;
    parts.extensions.insert(Authenticated(outcome));
    next.run(Request::from_parts(parts, body)).await
}
