//! The drift page (`/admin/drift`: open drifts with their cause and a one-click repair, recently
//! closed ones, a button to check now) and the repair forms of the admin organization page
//! (resync from Stripe, extend the trial, cancel now or at period end), each asking for a
//! reason. Platform admins only; the server side is in [`super::forms`].

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField};
use crate::web::page_error::PageError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftView {
    pub open: Vec<DriftLine>,
    pub closed: Vec<DriftLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftLine {
    pub org_name: String,
    pub slug: String,
    pub field: String,
    pub object_id: String,
    pub ours: String,
    pub stripe: String,
    pub cause: String,
    pub found: String,
    /// `open`, `healed` or `repaired`.
    pub state: String,
}

#[server(prefix = "/forms", endpoint = "read/admin-drift")]
pub async fn admin_drift_page() -> Result<Page<DriftView>, PageError> {
    Ok(super::forms::drift_page().await?)
}

/// Runs the drift check of every organization now.
#[server(prefix = "/forms", endpoint = "admin/drift/check")]
pub async fn check_drift(#[server(default)] authenticity_token: String) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::check_now(visitor).await?)
}

/// Refetches one organization from Stripe and re-applies it (the one-click repair of a drift).
#[server(prefix = "/forms", endpoint = "admin/repair/resync")]
pub async fn resync_org(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] reason: String,
    #[server(default)] back: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::resync(visitor, &slug, &reason, &back).await?)
}

#[server(prefix = "/forms", endpoint = "admin/repair/extend-trial")]
pub async fn extend_trial(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] days: String,
    #[server(default)] reason: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::extend_trial(visitor, &slug, &days, &reason).await?)
}

#[server(prefix = "/forms", endpoint = "admin/repair/cancel")]
pub async fn cancel_subscription(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] when: String,
    #[server(default)] reason: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::cancel(visitor, &slug, &when, &reason).await?)
}

#[component]
pub fn AdminDriftPage() -> impl IntoView {
    let page = Resource::new(|| (), |()| admin_drift_page());
    show_page(page, |_| "Admin · Drift".to_owned(), drift_view)
}

fn repair_button(slug: String, org_name: String, token: String) -> impl IntoView {
    let action = ServerAction::<ResyncOrg>::new();
    view! {
        <ActionForm action=action>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <input type="hidden" name="back" value="drift" />
            <input type="hidden" name="reason" value="One-click repair of a drift found by the drift check" />
            <button type="submit">{format!("Repair {org_name}")}</button>
        </ActionForm>
    }
}

fn drift_rows(lines: Vec<DriftLine>, token: String, with_repair: bool) -> impl IntoView {
    lines
        .into_iter()
        .map(|d| {
            let repair = with_repair
                .then(|| repair_button(d.slug.clone(), d.org_name.clone(), token.clone()));
            let href = format!("/admin/orgs/{}", d.slug);
            view! {
                <tr>
                    <td><a href=href>{d.org_name}</a></td>
                    <td>{d.field}</td>
                    <td><code>{d.object_id}</code></td>
                    <td>{d.ours}</td>
                    <td>{d.stripe}</td>
                    <td>{d.cause}</td>
                    <td>{d.found}</td>
                    <td>{d.state}</td>
                    <td>{repair}</td>
                </tr>
            }
        })
        .collect_view()
}

fn drift_table(
    caption: &'static str,
    lines: Vec<DriftLine>,
    token: String,
    with_repair: bool,
) -> impl IntoView {
    view! {
        <table>
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">"Organization"</th><th scope="col">"Field"</th><th scope="col">"Stripe object"</th>
                <th scope="col">"Ours"</th><th scope="col">"Stripe"</th><th scope="col">"Cause"</th>
                <th scope="col">"Found"</th><th scope="col">"State"</th><th scope="col">"Repair"</th>
            </tr></thead>
            <tbody>{drift_rows(lines, token, with_repair)}</tbody>
        </table>
    }
}

fn drift_view(page: DriftView, token: String) -> impl IntoView {
    let check = ServerAction::<CheckDrift>::new();
    let count = page.open.len();
    let open = drift_table("Open drifts", page.open, token.clone(), true);
    let closed = drift_table("Recently closed", page.closed, token.clone(), false);
    view! {
        <section class="page-heading">
            <h1>"Drift with Stripe"</h1>
            <p class="muted">
                <span data-testid="open-drifts">{format!("{count} open")}</span>
                " · " <a href="/admin">"Organizations"</a> " · " <a href="/admin/webhooks">"Webhook events"</a>
            </p>
            <ActionForm action=check>
                <CsrfField token=token />
                <button type="submit">"Check every organization now"</button>
            </ActionForm>
        </section>
        <section class="card">{open}</section>
        <section class="card">{closed}</section>
    }
}

/// The repair forms of the admin organization page.
#[component]
pub fn RepairForms(slug: String, token: String) -> impl IntoView {
    let resync = resync_form(slug.clone(), token.clone());
    let extend = extend_form(slug.clone(), token.clone());
    let cancel = cancel_form(slug, token);
    view! {
        <section class="card" aria-labelledby="repair-heading">
            <h2 id="repair-heading">"Repair"</h2>
            <p class="muted">"Each action asks Stripe, applies its answer, and is kept in the audit log with your reason."</p>
            {resync}
            {extend}
            {cancel}
        </section>
    }
}

fn resync_form(slug: String, token: String) -> impl IntoView {
    let action = ServerAction::<ResyncOrg>::new();
    view! {
        <ActionForm action=action>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <label for="resync-reason">"Reason"</label>
            <input id="resync-reason" name="reason" required maxlength="500" />
            <button type="submit">"Resync from Stripe"</button>
        </ActionForm>
    }
}

fn extend_form(slug: String, token: String) -> impl IntoView {
    let action = ServerAction::<ExtendTrial>::new();
    view! {
        <ActionForm action=action>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <label for="extend-days">"Extend the trial by (days)"</label>
            <input id="extend-days" name="days" type="number" min="1" max="90" required />
            <label for="extend-reason">"Reason"</label>
            <input id="extend-reason" name="reason" required maxlength="500" />
            <button type="submit">"Extend trial"</button>
        </ActionForm>
    }
}

fn cancel_form(slug: String, token: String) -> impl IntoView {
    let action = ServerAction::<CancelSubscription>::new();
    view! {
        <ActionForm action=action>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <label for="cancel-when">"Cancel"</label>
            <select id="cancel-when" name="when">
                <option value="period_end">"At the end of the period"</option>
                <option value="now">"Now"</option>
            </select>
            <label for="cancel-reason">"Reason"</label>
            <input id="cancel-reason" name="reason" required maxlength="500" />
            <button type="submit">"Cancel subscription"</button>
        </ActionForm>
    }
}
