//! The organization page (who is in it, invitations), creating another organization, and
//! switching between them. Every handler loads the organization through the caller's membership,
//! so someone outside it gets the same 404 as for an organization that does not exist.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;

use super::invitation_repo::{self, Pending};
use super::model::{OrgName, Role};
use super::repo::{self, Member, Membership};
use crate::accounts::session;
use crate::error::AppError;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::flash::{self, Flash};
use crate::web::layout::{CsrfField, Field, FormError};
use crate::web::state::AppState;
use crate::web::throttle::{wait_in_words, with_retry_after};

/// `GET /orgs/{slug}`: the organization's page. Visiting it makes it the current organization.
/// A just-created invitation link is shown here once (it is removed from the session as it is
/// read, like a new API key's secret).
pub async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let membership = signed_in.membership(&slug)?;
    session::remember_org(&signed_in.session, membership.org.id).await?;
    let new_link: Option<(String, String)> =
        flash::take_once(&signed_in.session, NEW_INVITATION).await?;
    render_org(
        &state,
        signed_in,
        membership,
        InviteState {
            new_link,
            ..InviteState::default()
        },
        StatusCode::OK,
    )
    .await
}

/// Where a new invitation's address and link wait, in the session, for the one page that shows
/// them.
pub(crate) const NEW_INVITATION: &str = "new_invitation";

/// The invitation form as typed, its error, and a link to show once.
#[derive(Debug, Default)]
pub(crate) struct InviteState {
    pub email: String,
    pub role: Option<Role>,
    pub error: Option<String>,
    pub new_link: Option<(String, String)>,
}

pub(crate) async fn render_org(
    state: &AppState,
    signed_in: SignedIn,
    membership: Membership,
    invite: InviteState,
    status: StatusCode,
) -> Result<Page, AppError> {
    let members = repo::members(&state.db, membership.org.id).await?;
    let pending = if membership.role.can_manage() {
        invitation_repo::pending(&state.db, membership.org.id).await?
    } else {
        Vec::new()
    };
    let token = signed_in.authenticity_token()?;
    let org_id = membership.org.id;
    let title = membership.org.name.clone();
    // Each domain brings its own card; the dashboard only lays them out.
    let plan = crate::billing::dashboard_card(state, org_id, &membership.org.slug).await?;
    let usage = crate::usage::dashboard_card(state, org_id, &membership.org.slug).await?;
    let days = state.invitation_days;
    let body = view! { {org_view(membership, members, pending, invite, token, days, view! { {plan}{usage} })} };
    signed_in.page(status, &title, Some(org_id), body).await
}

fn org_view(
    membership: Membership,
    members: Vec<Member>,
    pending: Vec<Pending>,
    invite: InviteState,
    token: String,
    days: u32,
    plan: impl IntoView,
) -> impl IntoView {
    let Membership { org, role } = membership;
    let new_link = invite.new_link.map(|(email, link)| {
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
    let manage = role.can_manage().then(|| {
        let action = format!("/orgs/{}/invitations", org.slug);
        let grantable: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| role.can_grant(*r))
            .collect();
        let selected = invite.role.unwrap_or(Role::Member);
        let slug = org.slug.clone();
        let pending_list = (!pending.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="pending-heading">
                <h2 id="pending-heading">"Pending invitations"</h2>
                <table>
                    <thead>
                        <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Expires"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr>
                    </thead>
                    <tbody>
                        {pending.into_iter().map(|p| {
                            let revoke = format!("/orgs/{slug}/invitations/{}/revoke", p.id);
                            let label = format!("Revoke the invitation for {}", p.email);
                            view! {
                                <tr>
                                    <td>{p.email}</td>
                                    <td>{p.role.label()}</td>
                                    <td>{p.expires_at.format("%Y-%m-%d").to_string()}</td>
                                    <td>
                                        <form method="post" action=revoke class="inline">
                                            <CsrfField token=token.clone() />
                                            <button type="submit" class="secondary" aria-label=label>"Revoke"</button>
                                        </form>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        });
        view! {
            {pending_list}
            <section class="card" aria-labelledby="invite-heading">
                <h2 id="invite-heading">"Invite someone"</h2>
                <p class="muted">"They join once they accept, after logging in or signing up with this address."</p>
                <form method="post" action=action novalidate>
                    <CsrfField token=token.clone() />
                    <FormError message=invite.error />
                    <Field label="Email" name="email" kind="email" value=invite.email />
                    <div class="field">
                        <label for="role">"Role"</label>
                        <select id="role" name="role">
                            {grantable.into_iter().map(|r| view! {
                                <option value=r.as_str() selected=r == selected>{r.label()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <button type="submit">"Send invitation"</button>
                </form>
            </section>
        }
    });
    let since = org.created_at.format("%-d %B %Y").to_string();
    let billing = format!("/orgs/{}/billing", org.slug);
    let plans = format!("/orgs/{}/plans", org.slug);
    view! {
        <section class="page-heading">
            <h1>{org.name.clone()}</h1>
            <p class="muted">
                "You are " <strong>{role.label().to_lowercase()}</strong>
                " of this organization · created " {since}
            </p>
            <nav aria-label="Organization" class="subnav">
                <a href=billing>"Billing"</a>
                <a href=plans>"Plans"</a>
                <a href=format!("/orgs/{}/usage", org.slug)>"Usage"</a>
                <a href=format!("/orgs/{}/credits", org.slug)>"Credits"</a>
                <a href=format!("/orgs/{}/api-keys", org.slug)>"API keys"</a>
            </nav>
        </section>
        {new_link}
        {plan}
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
                            <td>{m.joined_at.format("%Y-%m-%d").to_string()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        {manage}
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NewOrgFields {
    #[serde(default)]
    pub name: String,
}

/// `GET /orgs/new`
pub async fn new_form(signed_in: SignedIn) -> Result<Page, AppError> {
    let token = signed_in.authenticity_token()?;
    signed_in
        .page(
            StatusCode::OK,
            "New organization",
            None,
            new_org_view(token, String::new(), None),
        )
        .await
}

/// `POST /orgs/new`: creates an organization with the caller as its owner.
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    signed_in: SignedIn,
    form: CsrfForm<NewOrgFields>,
) -> Result<Response, AppError> {
    let name = match OrgName::parse(&form.fields.name) {
        Ok(name) => name,
        Err(e) => {
            let token = signed_in.authenticity_token()?;
            let body = new_org_view(token, form.fields.name, Some(e.to_string()));
            return Ok(signed_in
                .page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "New organization",
                    None,
                    body,
                )
                .await?
                .into_response());
        }
    };
    // Organizations are cheap to make and each used to bring a trial: bounded per account and
    // per address.
    let throttled = state
        .throttles
        .orgs_per_account
        .check(&signed_in.user.id)
        .and_then(|()| state.throttles.orgs_per_ip.check(&peer.ip()));
    if let Err(throttled) = throttled {
        tracing::warn!(user_id = %signed_in.user.id, ip = %peer.ip(), "organization creation throttled");
        let token = signed_in.authenticity_token()?;
        let message = format!(
            "Too many new organizations. Try again in {}.",
            wait_in_words(throttled.retry_after)
        );
        let body = new_org_view(token, form.fields.name, Some(message));
        let page = signed_in
            .page(
                StatusCode::TOO_MANY_REQUESTS,
                "New organization",
                None,
                body,
            )
            .await?
            .into_response();
        return Ok(with_retry_after(page, throttled.retry_after));
    }
    let mut tx = state.db.begin().await?;
    let org = repo::insert_org(&mut tx, &name).await?;
    repo::add_member(&mut *tx, org.id, signed_in.user.id, Role::Owner).await?;
    tx.commit().await?;
    session::remember_org(&signed_in.session, org.id).await?;
    flash::set(
        &signed_in.session,
        Flash::notice(format!("{} is ready.", org.name)),
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{}", org.slug)).into_response())
}

fn new_org_view(token: String, name: String, error: Option<String>) -> impl IntoView {
    view! {
        <section class="card narrow">
            <h1>"New organization"</h1>
            <form method="post" action="/orgs/new" novalidate>
                <CsrfField token=token />
                <Field label="Organization name" name="name" value=name error=error
                    autocomplete="organization" />
                <button type="submit">"Create organization"</button>
            </form>
        </section>
    }
}
