//! The organization page (who is in it, add a member), creating another organization, and
//! switching between them. Every handler loads the organization through the caller's membership,
//! so someone outside it gets the same 404 as for an organization that does not exist.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;

use super::model::{OrgName, Role};
use super::repo::{self, Member, Membership};
use crate::accounts::model::Email;
use crate::accounts::repo as users;
use crate::accounts::session;
use crate::error::AppError;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::flash::{self, Flash};
use crate::web::layout::{CsrfField, Field, FormError};
use crate::web::state::AppState;
use crate::web::throttle::{wait_in_words, with_retry_after};

/// `GET /orgs/{slug}`: the organization's page. Visiting it makes it the current organization.
pub async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let membership = signed_in.membership(&slug)?;
    session::remember_org(&signed_in.session, membership.org.id).await?;
    render_org(
        &state,
        signed_in,
        membership,
        AddMemberState::default(),
        StatusCode::OK,
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct AddMemberFields {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub role: String,
}

#[derive(Debug, Default)]
struct AddMemberState {
    email: String,
    role: Option<Role>,
    error: Option<String>,
}

/// `POST /orgs/{slug}/members`: owners and admins add an existing account to the organization.
pub async fn add_member(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<AddMemberFields>,
) -> Result<Response, AppError> {
    let membership = signed_in.membership(&slug)?;
    if !membership.role.can_manage() {
        return Err(AppError::Forbidden);
    }
    let fields = form.fields;
    let refuse = |error: String| AddMemberState {
        email: fields.email.clone(),
        role: fields.role.parse().ok(),
        error: Some(error),
    };
    let outcome = match (Email::parse(&fields.email), fields.role.parse::<Role>()) {
        (Err(e), _) => Err(refuse(e.to_string())),
        (_, Err(e)) => Err(refuse(e.to_string())),
        (Ok(_), Ok(role)) if !membership.role.can_grant(role) => Err(refuse(format!(
            "As {} you cannot make someone {}.",
            membership.role.label().to_lowercase(),
            role.label().to_lowercase()
        ))),
        (Ok(email), Ok(role)) => match users::find_by_email(&state.db, &email).await? {
            None => Err(refuse(format!(
                "Nobody has an account with {email} yet. Ask them to sign up first."
            ))),
            Some(user) => {
                if repo::add_member(&state.db, membership.org.id, user.id, role).await? {
                    Ok(format!(
                        "{} joined as {}.",
                        user.email,
                        role.label().to_lowercase()
                    ))
                } else {
                    Err(refuse(format!("{} is already a member.", user.email)))
                }
            }
        },
    };
    match outcome {
        Ok(notice) => {
            flash::set(&signed_in.session, Flash::notice(notice)).await?;
            Ok(Redirect::to(&format!("/orgs/{}", membership.org.slug)).into_response())
        }
        Err(form_state) => Ok(render_org(
            &state,
            signed_in,
            membership,
            form_state,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await?
        .into_response()),
    }
}

async fn render_org(
    state: &AppState,
    signed_in: SignedIn,
    membership: Membership,
    add_member: AddMemberState,
    status: StatusCode,
) -> Result<Page, AppError> {
    let members = repo::members(&state.db, membership.org.id).await?;
    let token = signed_in.authenticity_token()?;
    let org_id = membership.org.id;
    let title = membership.org.name.clone();
    let plan = crate::billing::pages::summary(state, org_id, &membership.org.slug).await?;
    let usage = crate::usage::pages::dashboard(state, org_id, &membership.org.slug).await?;
    let body =
        view! { {org_view(membership, members, add_member, token, view! { {plan}{usage} })} };
    signed_in.page(status, &title, Some(org_id), body).await
}

fn org_view(
    membership: Membership,
    members: Vec<Member>,
    add_member: AddMemberState,
    token: String,
    plan: impl IntoView,
) -> impl IntoView {
    let Membership { org, role } = membership;
    let manage = role.can_manage().then(|| {
        let action = format!("/orgs/{}/members", org.slug);
        let grantable: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| role.can_grant(*r))
            .collect();
        let selected = add_member.role.unwrap_or(Role::Member);
        view! {
            <section class="card" aria-labelledby="add-member-heading">
                <h2 id="add-member-heading">"Add a member"</h2>
                <form method="post" action=action novalidate>
                    <CsrfField token=token />
                    <FormError message=add_member.error />
                    <Field label="Email of an existing account" name="email" kind="email"
                        value=add_member.email />
                    <div class="field">
                        <label for="role">"Role"</label>
                        <select id="role" name="role">
                            {grantable.into_iter().map(|r| view! {
                                <option value=r.as_str() selected=r == selected>{r.label()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <button type="submit">"Add member"</button>
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
            .page(StatusCode::TOO_MANY_REQUESTS, "New organization", None, body)
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
