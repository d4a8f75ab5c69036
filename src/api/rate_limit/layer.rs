//! The rate-limit middleware of `/api/v1`: classifies the request, takes it from its API key's
//! allowance (or its address's, without a valid key), answers 429 `rate_limited` with
//! `Retry-After` when it is used up, and puts `RateLimit-Policy` and `RateLimit` on every answer.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::limiter::{Holder, Verdict};
use super::policy::{ceil_seconds, limit_header, policy_header, Class};
use crate::api::keys::Authenticated;
use crate::api::ApiError;
use crate::web::state::AppState;

pub async fn limit(
    State(state): State<std::sync::Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let class = Class::of(request.method().as_str(), request.uri().path());
    let holder = match request.extensions().get::<Authenticated>() {
        Some(Authenticated(Ok(caller))) => Holder::Key(caller.key_id),
        _ => Holder::Address(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ),
    };
    let Some(verdict) = state.api.limits.check(class, holder) else {
        return next.run(request).await;
    };
    let mut response = match verdict.refused {
        None => next.run(request).await,
        Some(wait) => refusal(&verdict, wait).into_response(),
    };
    write_headers(response.headers_mut(), &verdict);
    response
}

fn refusal(verdict: &Verdict, wait: std::time::Duration) -> ApiError {
    let seconds = ceil_seconds(wait).max(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "This API key has used its `{}` allowance of {} requests per {} s. Retry in {seconds} s.",
            verdict.class.name(),
            verdict.quota,
            ceil_seconds(verdict.window).max(1),
        ),
    );
    error.retry_after = HeaderValue::from_str(&seconds.to_string()).ok();
    error
}

fn write_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    let policy = policy_header(verdict.class, verdict.quota, verdict.window);
    let current = limit_header(verdict.class, verdict.remaining, verdict.reset);
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", current)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}
