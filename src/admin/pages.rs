//! The platform admin's overview of every organization.

use axum::extract::State;
use axum::http::StatusCode;
use leptos::prelude::*;

use crate::error::AppError;
use crate::orgs::repo::{self, OrgOverview};
use crate::web::context::{Page, SignedIn};
use crate::web::state::AppState;

/// `GET /admin`: refused (403) to everyone without the platform admin flag.
pub async fn index(State(state): State<AppState>, signed_in: SignedIn) -> Result<Page, AppError> {
    if !signed_in.user.is_platform_admin {
        return Err(AppError::Forbidden);
    }
    let orgs = repo::overview(&state.db).await?;
    signed_in
        .page(
            StatusCode::OK,
            "Admin · Organizations",
            None,
            overview_view(orgs),
        )
        .await
}

fn overview_view(orgs: Vec<OrgOverview>) -> impl IntoView {
    let count = orgs.len();
    view! {
        <section class="page-heading">
            <h1>"Organizations"</h1>
            <p class="muted">{format!("{count} in total")}</p>
        </section>
        <section class="card">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Slug"</th>
                        <th scope="col">"Owners"</th>
                        <th scope="col">"Members"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>
                    {orgs.into_iter().map(|o| view! {
                        <tr>
                            <td>{o.name}</td>
                            <td><code>{o.slug}</code></td>
                            <td>{o.owner_emails.join(", ")}</td>
                            <td>{o.member_count}</td>
                            <td>{o.created_at.format("%Y-%m-%d").to_string()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
