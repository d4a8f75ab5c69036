//! RFC 8058 one-click unsubscribe: a mail client POSTs `List-Unsubscribe=One-Click` to
//! `/unsubscribe/one-click/{token}`, without a session or cookies. The signed token names the
//! person and the category; only that category stops. Served outside the browser layers (like
//! Stripe's webhooks): there is no session to protect and mail providers send no `Origin`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{preferences, token};
use crate::web::state::AppState;

pub async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: String,
) -> Response {
    // RFC 8058 §3.2: the body is `List-Unsubscribe=One-Click`.
    let one_click = serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
        .map(|fields| {
            fields
                .iter()
                .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
        })
        .unwrap_or(false);
    if !one_click {
        return (
            StatusCode::BAD_REQUEST,
            "Send List-Unsubscribe=One-Click (RFC 8058), or open the link in the message.",
        )
            .into_response();
    }
    let Some((user, category)) = token::verify(&state.csrf, &token) else {
        return (StatusCode::NOT_FOUND, "This unsubscribe link is not valid.").into_response();
    };
    match preferences::turn_off(&state.db, user, category).await {
        Ok(()) => (
            StatusCode::OK,
            format!("Unsubscribed from: {}.", category.label()),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "one-click unsubscribe failed");
            (
                StatusCode::BAD_REQUEST,
                "This category cannot be turned off.",
            )
                .into_response()
        }
    }
}
