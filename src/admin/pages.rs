//! The platform admin's pages: organizations (searchable, with plan and status), one
//! organization's billing (subscription, its history, invoices, webhook events), and the webhook
//! event log (filter, raw payload, replay).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::Deserialize;

use super::queries::{self, EventRow, OrgRow};
use crate::billing::repo as billing;
use crate::billing::subscription::grace_ends;
use crate::error::AppError;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::format::money;
use crate::web::layout::CsrfField;
use crate::web::state::AppState;

fn admin(signed_in: &SignedIn) -> Result<(), AppError> {
    if signed_in.user.is_platform_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

/// `GET /admin?q=...`
pub async fn index(
    State(state): State<AppState>,
    Query(search): Query<Search>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    admin(&signed_in)?;
    let orgs = queries::organizations(&state.db, &search.q).await?;
    let count = orgs.len();
    let rows = orgs.into_iter().map(|o| org_row(&state, o)).collect_view();
    let body = view! {
        <section class="page-heading">
            <h1>"Organizations"</h1>
            <p class="muted">{format!("{count} shown")} " · " <a href="/admin/webhooks">"Webhook events"</a></p>
        </section>
        <form method="get" action="/admin" class="search" role="search">
            <label for="q">"Search by name or email"</label>
            <input id="q" name="q" type="search" value=search.q />
            <button type="submit">"Search"</button>
        </form>
        <section class="card">
            <table>
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Owners"</th><th scope="col">"Plan"</th>
                    <th scope="col">"Status"</th><th scope="col">"Trial or grace ends"</th><th scope="col">"Created"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    };
    signed_in
        .page(StatusCode::OK, "Admin · Organizations", None, body)
        .await
}

fn org_row(state: &AppState, o: OrgRow) -> impl IntoView {
    let plan = o
        .plan_key
        .as_deref()
        .and_then(|k| state.catalog.plan(k))
        .map_or_else(|| state.catalog.free().name.clone(), |p| p.name.clone());
    let status = o.status.clone().unwrap_or_else(|| "free".to_owned());
    let ends = match status.as_str() {
        "trialing" => when(o.trial_end),
        "past_due" | "unpaid" => when(
            o.past_due_since
                .map(|s| s + chrono::Duration::days(crate::billing::subscription::GRACE_DAYS)),
        ),
        _ => "—".to_owned(),
    };
    view! {
        <tr>
            <td><a href=format!("/admin/orgs/{}", o.slug)>{o.name}</a></td>
            <td>{o.owner_emails.join(", ")}</td>
            <td>{plan}</td>
            <td>{status}</td>
            <td>{ends}</td>
            <td>{o.created_at.format("%Y-%m-%d").to_string()}</td>
        </tr>
    }
}

fn events_table(events: Vec<EventRow>) -> impl IntoView {
    view! {
        <table>
            <thead><tr>
                <th scope="col">"Received"</th><th scope="col">"Type"</th><th scope="col">"Status"</th>
                <th scope="col">"Attempts"</th><th scope="col">"Last error"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        <td>{when(Some(e.received_at))}</td>
                        <td><a href=format!("/admin/webhooks/{}", e.id)>{e.kind}</a></td>
                        <td>{e.status}</td>
                        <td>{e.attempts}</td>
                        <td>{e.last_error.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// `GET /admin/orgs/{slug}`
pub async fn organization(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    admin(&signed_in)?;
    let (org_id, name) = queries::organization(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    let stored = billing::subscription(&state.db, org_id)
        .await?
        .map(|(s, _)| s);
    let history = billing::history(&state.db, org_id).await?;
    let invoices = billing::invoices(&state.db, org_id).await?;
    let events = queries::events(&state.db, None, None, Some(org_id)).await?;
    let customer = billing::customer_of(&state.db, org_id).await?;
    let currency = state.catalog.currency.clone();
    let credits = crate::usage::pages::admin_section(
        &state,
        org_id,
        &slug,
        signed_in.authenticity_token()?,
        None,
    )
    .await?;
    let subscription = match stored {
        None => view! { <p>"No subscription: on the free plan."</p> }.into_any(),
        Some(s) => {
            let grace = grace_ends(&s);
            view! {
                <dl class="facts">
                    <dt>"Subscription"</dt><dd><code>{s.stripe_subscription_id.clone()}</code></dd>
                    <dt>"Plan"</dt><dd>{s.plan_key.clone()}</dd>
                    <dt>"Status"</dt><dd>{s.status.clone()}</dd>
                    <dt>"Trial ends"</dt><dd>{when(s.trial_end)}</dd>
                    <dt>"Period ends"</dt><dd>{when(s.current_period_end)}</dd>
                    <dt>"Cancels at period end"</dt><dd>{if s.cancel_at_period_end { "yes" } else { "no" }}</dd>
                    <dt>"Grace ends"</dt><dd>{when(grace)}</dd>
                </dl>
            }
            .into_any()
        }
    };
    let body = view! {
        <section class="page-heading">
            <h1>{name.clone()}</h1>
            <p class="muted">
                "Stripe customer: " <code>{customer.unwrap_or_else(|| "none yet".into())}</code>
                " · " <a href="/admin">"All organizations"</a>
            </p>
        </section>
        <section class="card"><h2>"Subscription"</h2>{subscription}</section>
        {credits}
        <section class="card">
            <h2>"History"</h2>
            <table>
                <thead><tr><th scope="col">"When"</th><th scope="col">"Plan"</th><th scope="col">"Status"</th><th scope="col">"Because of"</th></tr></thead>
                <tbody>
                    {history.into_iter().map(|h| view! {
                        <tr><td>{when(Some(h.at))}</td><td>{h.plan_key}</td><td>{h.status}</td><td>{h.source}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Invoices"</h2>
            <table>
                <thead><tr><th scope="col">"Number"</th><th scope="col">"Amount"</th><th scope="col">"Status"</th><th scope="col">"Created"</th></tr></thead>
                <tbody>
                    {invoices.into_iter().map(|i| view! {
                        <tr>
                            <td>{i.number.unwrap_or_else(|| "—".into())}</td>
                            <td>{money(i.amount_due.max(i.amount_paid), &currency)}</td>
                            <td>{i.status}</td>
                            <td>{when(Some(i.created))}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card"><h2>"Webhook events"</h2>{events_table(events)}</section>
    };
    signed_in
        .page(StatusCode::OK, &format!("Admin · {name}"), None, body)
        .await
}

#[derive(Debug, Default, Deserialize)]
pub struct EventFilter {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
}

const STATUSES: [&str; 4] = ["pending", "applied", "ignored", "failed"];

/// `GET /admin/webhooks?type=...&status=...`
pub async fn webhooks(
    State(state): State<AppState>,
    Query(filter): Query<EventFilter>,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    admin(&signed_in)?;
    let status = Some(filter.status.as_str()).filter(|s| !s.is_empty());
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(AppError::BadRequest(format!(
                "“{s}” is not an event status (pending, applied, ignored, failed)."
            )));
        }
    }
    let kind = Some(filter.kind.trim()).filter(|k| !k.is_empty());
    let events = queries::events(&state.db, kind, status, None).await?;
    let selected = filter.status.clone();
    let body = view! {
        <section class="page-heading">
            <h1>"Webhook events"</h1>
            <p class="muted"><a href="/admin">"Organizations"</a></p>
        </section>
        <form method="get" action="/admin/webhooks" class="search">
            <label for="type">"Type (exact, or ending in .*)"</label>
            <input id="type" name="type" value=filter.kind.clone() placeholder="customer.subscription.*" />
            <label for="status">"Status"</label>
            <select id="status" name="status">
                <option value="">"Any"</option>
                {STATUSES.into_iter().map(|s| view! { <option value=s selected=selected == s>{s}</option> }).collect_view()}
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <section class="card">{events_table(events)}</section>
    };
    Ok(signed_in
        .page(StatusCode::OK, "Admin · Webhook events", None, body)
        .await?
        .into_response())
}

/// `GET /admin/webhooks/{id}`: one event with its raw payload.
pub async fn webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    admin(&signed_in)?;
    let (event, payload) = queries::event(&state.db, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let pretty = serde_json::to_string_pretty(&payload).unwrap_or_default();
    let token = signed_in.authenticity_token()?;
    let body = view! {
        <section class="page-heading">
            <h1>{event.kind.clone()}</h1>
            <p class="muted"><code>{event.id.clone()}</code> " · " <a href="/admin/webhooks">"All events"</a></p>
        </section>
        <section class="card">
            <dl class="facts">
                <dt>"Status"</dt><dd>{event.status.clone()}</dd>
                <dt>"Attempts"</dt><dd>{event.attempts}</dd>
                <dt>"Received"</dt><dd>{when(Some(event.received_at))}</dd>
                <dt>"Last error"</dt><dd>{event.last_error.clone().unwrap_or_else(|| "—".into())}</dd>
            </dl>
            <form method="post" action=format!("/admin/webhooks/{}/replay", event.id)>
                <CsrfField token=token />
                <button type="submit">"Replay this event"</button>
            </form>
        </section>
        <section class="card"><h2>"Payload"</h2><pre class="payload">{pretty}</pre></section>
    };
    signed_in
        .page(StatusCode::OK, "Admin · Event", None, body)
        .await
}

/// `POST /admin/webhooks/{id}/replay`: applies the stored event again.
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    admin(&signed_in)?;
    if !queries::replay(&state.db, &id).await? {
        return Err(AppError::NotFound);
    }
    state.inbox.wake.notify_one();
    flash::set(
        &signed_in.session,
        Flash::notice("The event is queued to be applied again."),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/webhooks/{id}")).into_response())
}
