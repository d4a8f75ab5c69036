//! `GET /admin/metrics/csv/{table}?days=N`: one metrics table as a CSV file, for platform
//! admins (a signed-out browser is sent to log in, anyone else gets 403). A plain route rather
//! than a server function, since it answers a file, not a page.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tower_sessions::Session;

use super::{csv, range, service};
use crate::accounts::session;
use crate::error::AppError;
use crate::web::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Params {
    #[serde(default)]
    days: String,
}

pub async fn table_csv(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, AppError> {
    let user = session::current_user(&session, &state.db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !user.is_platform_admin {
        return Err(AppError::Forbidden);
    }
    let days = range::parse(&params.days).map_err(AppError::BadRequest)?;
    let metrics = service::metrics(&state.db, &state.catalog, days, Utc::now().date_naive())
        .await
        .map_err(AppError::Internal)?;
    let table = metrics
        .tables
        .iter()
        .find(|t| t.key == key)
        .ok_or(AppError::NotFound)?;
    let name = csv::file_name(&table.key, metrics.first, metrics.last);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        csv::render(table),
    )
        .into_response())
}
