//! The platform admin's pages, with their read functions and forms as server functions:
//! organizations (searchable, with plan and status), one organization's billing (subscription,
//! its history, invoices, webhook events) and credits (balance, ledger, and the admin's grant or
//! removal of credits), and the webhook event log (filter, raw payload, replay). Every function
//! refuses (403) anyone without the platform admin flag; what they do on the server is in
//! [`super::forms`].

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::usage::pages::{LedgerLine, LedgerTable};
use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field, FormError};
use crate::web::page_error::{Kept, PageError, WHOLE_FORM};

/// The form name the credit adjustment's kept values are stored under (see `web::form_state`).
pub const ADJUST_FORM: &str = "admin-credits";

/// The statuses a webhook event can have, as the filter offers them.
pub const STATUSES: [&str; 4] = ["pending", "applied", "ignored", "failed"];

/// `/admin`: the organizations matching the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgsView {
    pub query: String,
    pub orgs: Vec<OrgLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgLine {
    pub name: String,
    pub slug: String,
    /// The owners' addresses, comma-separated.
    pub owners: String,
    pub plan: String,
    pub status: String,
    /// When the trial or the grace period ends, or a dash.
    pub ends: String,
    /// `YYYY-MM-DD`.
    pub created: String,
}

/// `/admin/orgs/{slug}`: one organization's billing and credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgView {
    pub slug: String,
    pub name: String,
    /// The Stripe customer, or `none yet`.
    pub customer: String,
    pub subscription: Option<SubscriptionFacts>,
    /// The credit balance in credits (`10.5`).
    pub balance: String,
    pub ledger: Vec<LedgerLine>,
    pub adjust: Kept<AdjustValues>,
    pub history: Vec<HistoryLine>,
    pub invoices: Vec<InvoiceLine>,
    pub events: Vec<EventLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionFacts {
    pub id: String,
    pub plan: String,
    pub status: String,
    pub trial_ends: String,
    pub period_ends: String,
    pub cancels_at_period_end: bool,
    pub grace_ends: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub at: String,
    pub plan: String,
    pub status: String,
    /// What caused the change (a webhook event type, the checkout success page, ...).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub number: String,
    /// Formatted with its currency.
    pub amount: String,
    pub status: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub received: String,
    pub last_error: String,
}

/// The grant or removal form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustValues {
    /// `grant` or `remove`.
    pub change: String,
    pub credits: String,
    pub reason: String,
}

/// `/admin/webhooks`: the newest events matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhooksView {
    pub kind: String,
    pub status: String,
    pub events: Vec<EventLine>,
    /// The catch-up with Stripe's Events API: its cursor and how many events it caught up.
    pub catch_up: String,
}

/// `/admin/webhooks/{id}`: one event with its raw payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub event: EventLine,
    /// The payload as stored, pretty-printed.
    pub payload: String,
}

#[server(prefix = "/forms", endpoint = "read/admin")]
pub async fn admin_orgs_page(#[server(default)] q: String) -> Result<Page<OrgsView>, PageError> {
    Ok(super::forms::orgs_page(&q).await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-org")]
pub async fn admin_org_page(#[server(default)] slug: String) -> Result<Page<OrgView>, PageError> {
    Ok(super::forms::org_page(&slug).await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-webhooks")]
pub async fn admin_webhooks_page(
    #[server(default)] kind: String,
    #[server(default)] status: String,
) -> Result<Page<WebhooksView>, PageError> {
    Ok(super::forms::webhooks_page(&kind, &status).await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-webhook")]
pub async fn admin_webhook_page(
    #[server(default)] id: String,
) -> Result<Page<WebhookView>, PageError> {
    Ok(super::forms::webhook_page(&id).await?)
}

/// Grants or removes credits of an organization, with a reason the ledger shows.
#[server(prefix = "/forms", endpoint = "admin/credits")]
pub async fn adjust_credits(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] change: String,
    #[server(default)] credits: String,
    #[server(default)] reason: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    let typed = AdjustValues {
        change,
        credits,
        reason,
    };
    super::forms::adjust_credits(visitor, &slug, typed).await
}

/// Queues a stored webhook event to be applied again.
#[server(prefix = "/forms", endpoint = "admin/webhooks/replay")]
pub async fn replay_webhook(
    #[server(default)] authenticity_token: String,
    #[server(default)] id: String,
    #[server(default)] reason: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::replay(visitor, &id, &reason).await?)
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || query.read().get("q").unwrap_or_default(),
        admin_orgs_page,
    );
    show_page(page, |_| "Admin · Organizations".to_owned(), orgs_view)
}

fn orgs_view(page: OrgsView, _token: String) -> impl IntoView {
    let count = page.orgs.len();
    let rows = page
        .orgs
        .into_iter()
        .map(|o| {
            view! {
                <tr>
                    <td><a href=format!("/admin/orgs/{}", o.slug)>{o.name}</a></td>
                    <td>{o.owners}</td>
                    <td>{o.plan}</td>
                    <td>{o.status}</td>
                    <td>{o.ends}</td>
                    <td>{o.created}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"Organizations"</h1>
            <p class="muted">{format!("{count} shown")} " · " <a href="/admin/webhooks">"Webhook events"</a> " · " <a href="/admin/metrics">"Metrics"</a> " · " <a href="/admin/mail">"Mail"</a></p>
        </section>
        <form method="get" action="/admin" class="search" role="search">
            <label for="q">"Search by name or email"</label>
            <input id="q" name="q" type="search" value=page.query />
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
    }
}

#[component]
fn EventsTable(events: Vec<EventLine>) -> impl IntoView {
    view! {
        <table>
            <thead><tr>
                <th scope="col">"Received"</th><th scope="col">"Type"</th><th scope="col">"Status"</th>
                <th scope="col">"Attempts"</th><th scope="col">"Last error"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        <td>{e.received}</td>
                        <td><a href=format!("/admin/webhooks/{}", e.id)>{e.kind}</a></td>
                        <td>{e.status}</td>
                        <td>{e.attempts}</td>
                        <td>{e.last_error}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn AdminOrgPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        admin_org_page,
    );
    show_page(page, |o| format!("Admin · {}", o.name), org_view)
}

fn org_view(page: OrgView, token: String) -> impl IntoView {
    let OrgView {
        slug,
        name,
        customer,
        subscription,
        balance,
        ledger,
        adjust,
        history,
        invoices,
        events,
    } = page;
    let subscription = match subscription {
        None => view! { <p>"No subscription: on the free plan."</p> }.into_any(),
        Some(s) => view! {
            <dl class="facts">
                <dt>"Subscription"</dt><dd><code>{s.id}</code></dd>
                <dt>"Plan"</dt><dd>{s.plan}</dd>
                <dt>"Status"</dt><dd>{s.status}</dd>
                <dt>"Trial ends"</dt><dd>{s.trial_ends}</dd>
                <dt>"Period ends"</dt><dd>{s.period_ends}</dd>
                <dt>"Cancels at period end"</dt><dd>{if s.cancels_at_period_end { "yes" } else { "no" }}</dd>
                <dt>"Grace ends"</dt><dd>{s.grace_ends}</dd>
            </dl>
        }
        .into_any(),
    };
    view! {
        <section class="page-heading">
            <h1>{name}</h1>
            <p class="muted">
                "Stripe customer: " <code>{customer}</code>
                " · " <a href="/admin">"All organizations"</a>
                " · " <a href=format!("/admin/audit?org={slug}")>"Audit log"</a>
            </p>
        </section>
        <section class="card"><h2>"Subscription"</h2>{subscription}</section>
        <crate::sync::pages::RepairForms slug=slug.clone() token=token.clone() />
        <section class="card" aria-labelledby="credits-heading">
            <h2 id="credits-heading">"Credits"</h2>
            <p data-testid="admin-balance">{format!("Balance: {balance} credits")}</p>
            {adjust_form(slug, token, adjust)}
            <LedgerTable lines=ledger />
        </section>
        <section class="card">
            <h2>"History"</h2>
            <table>
                <thead><tr><th scope="col">"When"</th><th scope="col">"Plan"</th><th scope="col">"Status"</th><th scope="col">"Because of"</th></tr></thead>
                <tbody>
                    {history.into_iter().map(|h| view! {
                        <tr><td>{h.at}</td><td>{h.plan}</td><td>{h.status}</td><td>{h.source}</td></tr>
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
                        <tr><td>{i.number}</td><td>{i.amount}</td><td>{i.status}</td><td>{i.created}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card"><h2>"Webhook events"</h2><EventsTable events=events /></section>
    }
}

/// The admin's grant or removal of credits.
fn adjust_form(slug: String, token: String, kept: Kept<AdjustValues>) -> impl IntoView {
    let action = ServerAction::<AdjustCredits>::new();
    let values = kept.values.clone();
    let change_error = kept.error("change");
    let invalid = change_error.is_some().then_some("true");
    let described_by = change_error.is_some().then_some("change-error");
    let removing = values.change == "remove";
    view! {
        <ActionForm action=action attr:novalidate=true>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <FormError message=kept.error(WHOLE_FORM) />
            <div class="field" class:has-error=change_error.is_some()>
                <label for="change">"Change"</label>
                {change_error.clone().map(|message| view! { <p class="error" id="change-error">{message}</p> })}
                <select id="change" name="change" aria-invalid=invalid aria-describedby=described_by>
                    <option value="grant" selected=!removing>"Grant credits"</option>
                    <option value="remove" selected=removing>"Remove credits"</option>
                </select>
            </div>
            <Field label="Credits" name="credits" value=values.credits error=kept.error("credits") />
            <Field label="Reason (shown in the ledger)" name="reason" value=values.reason
                error=kept.error("reason") />
            <button type="submit">"Apply"</button>
        </ActionForm>
    }
}

#[component]
pub fn AdminWebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || {
            let query = query.read();
            (
                query.get("type").unwrap_or_default(),
                query.get("status").unwrap_or_default(),
            )
        },
        |(kind, status)| admin_webhooks_page(kind, status),
    );
    show_page(page, |_| "Admin · Webhook events".to_owned(), webhooks_view)
}

fn webhooks_view(page: WebhooksView, _token: String) -> impl IntoView {
    let selected = page.status.clone();
    view! {
        <section class="page-heading">
            <h1>"Webhook events"</h1>
            <p class="muted"><a href="/admin">"Organizations"</a> " · " <a href="/admin/drift">"Drift"</a> " · " <a href="/admin/audit">"Audit log"</a></p>
            <p data-testid="catch-up">{page.catch_up.clone()}</p>
        </section>
        <form method="get" action="/admin/webhooks" class="search">
            <label for="type">"Type (exact, or ending in .*)"</label>
            <input id="type" name="type" value=page.kind placeholder="customer.subscription.*" />
            <label for="status">"Status"</label>
            <select id="status" name="status">
                <option value="">"Any"</option>
                {STATUSES.into_iter().map(|s| view! { <option value=s selected=selected == s>{s}</option> }).collect_view()}
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <section class="card"><EventsTable events=page.events /></section>
    }
}

#[component]
pub fn AdminWebhookPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        admin_webhook_page,
    );
    show_page(page, |_| "Admin · Event".to_owned(), webhook_view)
}

fn webhook_view(page: WebhookView, token: String) -> impl IntoView {
    let WebhookView { event, payload } = page;
    let action = ServerAction::<ReplayWebhook>::new();
    view! {
        <section class="page-heading">
            <h1>{event.kind.clone()}</h1>
            <p class="muted"><code>{event.id.clone()}</code> " · " <a href="/admin/webhooks">"All events"</a></p>
        </section>
        <section class="card">
            <dl class="facts">
                <dt>"Status"</dt><dd>{event.status}</dd>
                <dt>"Attempts"</dt><dd>{event.attempts}</dd>
                <dt>"Received"</dt><dd>{event.received}</dd>
                <dt>"Last error"</dt><dd>{event.last_error}</dd>
            </dl>
            <ActionForm action=action>
                <CsrfField token=token />
                <input type="hidden" name="id" value=event.id />
                <label for="replay-reason">"Reason (kept in the audit log)"</label>
                <input id="replay-reason" name="reason" required maxlength="500" />
                <button type="submit">"Replay this event"</button>
            </ActionForm>
        </section>
        <section class="card"><h2>"Payload"</h2><pre class="payload">{payload}</pre></section>
    }
}
