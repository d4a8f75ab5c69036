//! The audit log's pages: an organization's own (`/orgs/{slug}/audit`, its owners only) and
//! everyone's for platform admins (`/admin/audit`, filtered by organization, actor kind, action
//! and date). Read only: the portal has no way to change a row. Server side in [`super::forms`].

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::show_page;
use crate::web::page_error::PageError;

/// The actor kinds the filter offers.
pub const ACTOR_KINDS: [&str; 5] = ["user", "api_key", "stripe_event", "job", "system"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    /// The organization's name on its own page; empty on the admin page.
    pub org_name: String,
    pub slug: String,
    pub filter: AuditFilter,
    pub lines: Vec<AuditLine>,
}

/// The admin page's filter as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub org: String,
    pub actor: String,
    pub action: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub at: String,
    pub org: String,
    /// `user ada@example.com`, `stripe_event evt_...`, `job stripe-drift-check`.
    pub who: String,
    pub action: String,
    /// `subscriptions sub_...`
    pub what: String,
    pub reason: String,
    pub before: String,
    pub after: String,
}

#[server(prefix = "/forms", endpoint = "read/org-audit")]
pub async fn org_audit_page(#[server(default)] slug: String) -> Result<Page<AuditView>, PageError> {
    Ok(super::forms::org_page(&slug).await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-audit")]
pub async fn admin_audit_page(
    #[server(default)] filter: AuditFilter,
) -> Result<Page<AuditView>, PageError> {
    Ok(super::forms::admin_page(filter).await?)
}

#[component]
pub fn OrgAuditPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        org_audit_page,
    );
    show_page(page, |v| format!("{} · Audit log", v.org_name), org_view)
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || {
            let q = query.read();
            AuditFilter {
                org: q.get("org").unwrap_or_default(),
                actor: q.get("actor").unwrap_or_default(),
                action: q.get("action").unwrap_or_default(),
                from: q.get("from").unwrap_or_default(),
                to: q.get("to").unwrap_or_default(),
            }
        },
        admin_audit_page,
    );
    show_page(page, |_| "Admin · Audit log".to_owned(), admin_view)
}

#[component]
fn AuditTable(lines: Vec<AuditLine>) -> impl IntoView {
    view! {
        <table class="audit">
            <caption>"Newest first"</caption>
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"Organization"</th><th scope="col">"Who"</th>
                <th scope="col">"Action"</th><th scope="col">"What"</th><th scope="col">"Reason"</th>
                <th scope="col">"Before"</th><th scope="col">"After"</th>
            </tr></thead>
            <tbody>
                {lines.into_iter().map(|l| view! {
                    <tr>
                        <td>{l.at}</td><td>{l.org}</td><td>{l.who}</td><td>{l.action}</td>
                        <td><code>{l.what}</code></td><td>{l.reason}</td>
                        <td><pre class="payload">{l.before}</pre></td>
                        <td><pre class="payload">{l.after}</pre></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn org_view(page: AuditView, _token: String) -> impl IntoView {
    view! {
        <section class="page-heading">
            <h1>{format!("{}: audit log", page.org_name)}</h1>
            <p class="muted">
                "Every change to this organization's billing: who made it, when, and the values before and after. Nobody can edit it."
                " · " <a href=format!("/orgs/{}/billing", page.slug)>"Billing"</a>
            </p>
        </section>
        <section class="card"><AuditTable lines=page.lines /></section>
    }
}

fn admin_view(page: AuditView, _token: String) -> impl IntoView {
    let f = page.filter;
    let actor = f.actor.clone();
    view! {
        <section class="page-heading">
            <h1>"Audit log"</h1>
            <p class="muted"><a href="/admin">"Organizations"</a> " · " <a href="/admin/drift">"Drift"</a></p>
        </section>
        <form method="get" action="/admin/audit" class="search">
            <label for="org">"Organization (slug)"</label>
            <input id="org" name="org" value=f.org />
            <label for="actor">"Actor"</label>
            <select id="actor" name="actor">
                <option value="">"Any"</option>
                {ACTOR_KINDS.into_iter().map(|k| view! { <option value=k selected=actor == k>{k}</option> }).collect_view()}
            </select>
            <label for="action">"Action (exact, or ending in .*)"</label>
            <input id="action" name="action" value=f.action placeholder="admin.*" />
            <label for="from">"From (YYYY-MM-DD)"</label>
            <input id="from" name="from" type="date" value=f.from />
            <label for="to">"To (YYYY-MM-DD, inclusive)"</label>
            <input id="to" name="to" type="date" value=f.to />
            <button type="submit">"Filter"</button>
        </form>
        <section class="card"><AuditTable lines=page.lines /></section>
    }
}
