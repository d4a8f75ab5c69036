//! The organization's dashboard (who is in it, the plan and usage cards, invitations for its
//! managers) and creating another organization, with their read and form server functions.
//! Every read loads the organization through the caller's membership, so someone outside it gets
//! the same 404 as for an organization that does not exist. The invitation parts are in
//! `invitation_pages`; what the functions do on the server is in `forms`.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use super::invitation_pages::{Invitations, InvitationsCard, NewLink};
use super::model::Role;
use crate::billing::dashboard_card::{PlanCard, PlanCardView};
use crate::usage::dashboard_card::{UsageCard, UsageCardView};
use crate::usage::gauge_usage::{gauge_block, GaugeUsageView};
use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field};
use crate::web::page_error::{Kept, PageError};

/// The name the new-organization form's kept values are stored under (see `web::form_state`).
pub const NEW_ORG_FORM: &str = "new_org";

/// What the new-organization form shows again after a refused post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrgValues {
    pub name: String,
}

/// What the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub name: String,
    pub slug: String,
    /// The day it was created ("1 December 2026").
    pub since: String,
    /// The reader's role in it.
    pub role: Role,
    pub members: Vec<MemberRow>,
    pub plan: PlanCard,
    pub usage: UsageCard,
    /// The seats and limits in use (no lines when the catalog has no gauges).
    pub gauges: GaugeUsageView,
    /// For owners and admins: the pending invitations and the form to invite someone.
    pub invitations: Option<Invitations>,
    /// The link of an invitation just created, shown once.
    pub new_link: Option<NewLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub email: String,
    pub role: Role,
    /// The day they joined ("2026-12-01").
    pub joined: String,
}

#[server(prefix = "/forms", endpoint = "read/new-org")]
pub async fn new_org_page() -> Result<Page<Kept<NewOrgValues>>, PageError> {
    Ok(super::forms::new_org_page().await?)
}

/// Creates an organization with the caller as its owner.
#[server(prefix = "/forms", endpoint = "orgs/create")]
pub async fn create_org(
    #[server(default)] authenticity_token: String,
    #[server(default)] name: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::create(visitor, name).await
}

/// `/orgs/{slug}`: viewing it makes it the current organization.
#[server(prefix = "/forms", endpoint = "read/org")]
pub async fn org_page(#[server(default)] slug: String) -> Result<Page<Dashboard>, PageError> {
    Ok(super::forms::org_page(&slug).await?)
}

#[component]
pub fn NewOrgPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| new_org_page());
    show_page(page, |_| "New organization".to_owned(), new_org_view)
}

fn new_org_view(kept: Kept<NewOrgValues>, token: String) -> impl IntoView {
    let action = ServerAction::<CreateOrg>::new();
    view! {
        <section class="card narrow">
            <h1>"New organization"</h1>
            <ActionForm action=action attr:novalidate=true>
                <CsrfField token=token />
                <Field label="Organization name" name="name" value=kept.values.name.clone()
                    error=kept.error("name") autocomplete="organization" />
                <button type="submit">"Create organization"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn OrgPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        org_page,
    );
    show_page(page, |d: &Dashboard| d.name.clone(), dashboard_view)
}

fn dashboard_view(d: Dashboard, token: String) -> impl IntoView {
    let Dashboard {
        name,
        slug,
        since,
        role,
        members,
        plan,
        usage,
        gauges,
        invitations,
        new_link,
    } = d;
    let new_link = new_link.map(|NewLink { email, link, days }| {
        view! {
            <section class="card notice-card" aria-labelledby="invitation-link-heading">
                <h2 id="invitation-link-heading">{format!("Invitation link for {email}")}</h2>
                <p>{format!(
                    "E-mail is not set up on this portal yet: send this link to them yourself. \
                     It is shown only once and stays valid for {days} days; they accept it after \
                     logging in or signing up with that address."
                )}</p>
                <p><code class="secret" data-testid="invitation-link">{link}</code></p>
            </section>
        }
    });
    let manage = invitations.map(|invitations| {
        view! { <InvitationsCard slug=slug.clone() invitations=invitations token=token /> }
    });
    let link = |page: &str| format!("/orgs/{slug}/{page}");
    view! {
        <section class="page-heading">
            <h1>{name}</h1>
            <p class="muted">
                "You are " <strong>{role.label().to_lowercase()}</strong>
                " of this organization · created " {since}
            </p>
            <nav aria-label="Organization" class="subnav">
                <a href=link("billing")>"Billing"</a>
                <a href=link("plans")>"Plans"</a>
                <a href=link("usage")>"Usage"</a>
                <a href=link("credits")>"Credits"</a>
                <a href=link("api-keys")>"API keys"</a>
            </nav>
        </section>
        {new_link}
        <PlanCardView card=plan />
        <UsageCardView card=usage />
        {gauge_block(gauges)}
        <section class="card" aria-labelledby="members-heading">
            <h2 id="members-heading">"Members"</h2>
            <table>
                <thead>
                    <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Joined"</th></tr>
                </thead>
                <tbody>
                    {members.into_iter().map(|m| view! {
                        <tr>
                            <td>{m.email}</td>
                            <td>{m.role.label()}</td>
                            <td>{m.joined}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        {manage}
    }
}
