//! The plan card on the organization's dashboard: the effective plan, the trial countdown or the
//! grace-period banner, and the plan's limits. The dashboard composes it with the other domains'
//! cards, so it never reaches into billing's pages.

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::web::state::AppState;

/// The billing block on the organization's dashboard.
pub async fn dashboard_card(
    state: &AppState,
    org_id: Uuid,
    slug: &str,
) -> Result<impl IntoView + use<>, AppError> {
    // The markup still lives beside the billing pages, whose extraction runs in parallel; it
    // moves here once that lands. Callers already depend only on this module.
    super::pages::summary(state, org_id, slug).await
}
