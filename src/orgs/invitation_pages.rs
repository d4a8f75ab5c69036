//! Invitations on the web: owners and admins invite by e-mail from the organization's dashboard
//! (the answer never says whether the address has an account), list and revoke pending ones, and
//! the invited person opens the link, logs in or signs up with the invited address, and accepts.
//! The server functions and components are here; what they do on the server is in
//! `invitation_forms`.
//!
//! The token travels in the page's path and in the body of the accept form, never in a server
//! function's URL, and is not logged (`startup::logged_path` hides `/invitations/...`).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::invitation::Refusal;
use super::model::Role;
use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field, FormError};
use crate::web::page_error::{Kept, PageError};

/// The name the invitation form's kept values are stored under (see `web::form_state`).
pub const INVITE_FORM: &str = "invite";

/// Where a new invitation's address and link wait, in the session, for the one page that shows
/// them (taken once, like a new API key's secret).
pub const NEW_INVITATION: &str = "new_invitation";

/// What the invitation form shows again after a refused post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteValues {
    pub email: String,
    pub role: String,
}

/// The dashboard's invitation part, for owners and admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitations {
    /// Newest first.
    pub pending: Vec<PendingRow>,
    /// The roles the reader may give (nobody grants more than they hold).
    pub grantable: Vec<Role>,
    pub form: Kept<InviteValues>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRow {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// "2026-12-08"
    pub expires: String,
}

/// A just-created invitation link, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLink {
    pub email: String,
    pub link: String,
    /// How long it stays valid.
    pub days: u32,
}

/// What the invitation page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub org_name: String,
    pub org_slug: String,
    pub role: Role,
    /// Why it can no longer be accepted (revoked, expired).
    pub closed: Option<String>,
    pub answer: Answer,
}

/// What the reader can do with the invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// Nothing: it was revoked or has expired.
    Nothing,
    /// They accepted it.
    Joined,
    /// Someone else did.
    Used,
    /// It is pending and for their address.
    Accept,
    /// It is pending and for another address than theirs.
    WrongAccount,
    /// They are not signed in; `next` is the page's path, escaped for a query string.
    SignIn { next: String },
}

/// Invites an address with a role. The answer is the same whether or not the address has an
/// account; the link is shown once on the dashboard.
#[server(prefix = "/forms", endpoint = "orgs/invite")]
pub async fn invite(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] email: String,
    #[server(default)] role: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::invitation_forms::invite(visitor, &slug, email, role).await
}

#[server(prefix = "/forms", endpoint = "orgs/invitation/revoke")]
pub async fn revoke_invitation(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] id: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::invitation_forms::revoke(visitor, &slug, &id).await?)
}

/// `/invitations/{token}`: what the invitation is for, and what to do with it.
#[server(prefix = "/forms", endpoint = "read/invitation")]
pub async fn invitation_page(
    #[server(default)] token: String,
) -> Result<Page<InvitationView>, PageError> {
    Ok(super::invitation_forms::invitation_page(&token).await?)
}

/// Joins the organization, once, if the invitation is pending and for the signed-in person's
/// address.
#[server(prefix = "/forms", endpoint = "orgs/invitation/accept")]
pub async fn accept_invitation(
    #[server(default)] authenticity_token: String,
    #[server(default)] token: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::invitation_forms::accept(visitor, &token).await
}

/// The pending invitations and the form to invite someone, on the dashboard.
#[component]
pub fn InvitationsCard(slug: String, invitations: Invitations, token: String) -> impl IntoView {
    let Invitations {
        pending,
        grantable,
        form,
    } = invitations;
    let selected = form.values.role.parse().unwrap_or(Role::Member);
    let pending_list = (!pending.is_empty()).then(|| {
        let (slug, token) = (slug.clone(), token.clone());
        view! {
            <section class="card" aria-labelledby="pending-heading">
                <h2 id="pending-heading">"Pending invitations"</h2>
                <table>
                    <thead>
                        <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Expires"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr>
                    </thead>
                    <tbody>
                        {pending.into_iter().map(|p| view! {
                            <tr>
                                <td>{p.email.clone()}</td>
                                <td>{p.role.label()}</td>
                                <td>{p.expires.clone()}</td>
                                <td><RevokeButton slug=slug.clone() row=p token=token.clone() /></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    });
    let action = ServerAction::<Invite>::new();
    view! {
        {pending_list}
        <section class="card" aria-labelledby="invite-heading">
            <h2 id="invite-heading">"Invite someone"</h2>
            <p class="muted">"They join once they accept, after logging in or signing up with this address."</p>
            <ActionForm action=action attr:novalidate=true>
                <CsrfField token=token />
                <input type="hidden" name="slug" value=slug />
                <Field label="Email" name="email" kind="email" value=form.values.email.clone()
                    error=form.error("email") />
                <div class="field" class:has-error=form.errors.contains_key("role")>
                    <label for="role">"Role"</label>
                    {form.error("role").map(|message| view! { <p class="error" id="role-error">{message}</p> })}
                    <select id="role" name="role" aria-invalid=form.errors.contains_key("role").then_some("true")
                        aria-describedby=form.errors.contains_key("role").then_some("role-error")>
                        {grantable.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == selected>{r.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <button type="submit">"Send invitation"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn RevokeButton(slug: String, row: PendingRow, token: String) -> impl IntoView {
    let action = ServerAction::<RevokeInvitation>::new();
    let label = format!("Revoke the invitation for {}", row.email);
    view! {
        <ActionForm action=action attr:class="inline">
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <input type="hidden" name="id" value=row.id.to_string() />
            <button type="submit" class="secondary" aria-label=label>"Revoke"</button>
        </ActionForm>
    }
}

#[component]
pub fn InvitationPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("token").unwrap_or_default(),
        invitation_page,
    );
    show_page(page, |_| "Invitation".to_owned(), invitation_view)
}

fn invitation_view(invitation: InvitationView, csrf: String) -> impl IntoView {
    let InvitationView {
        org_name,
        org_slug,
        role,
        closed,
        answer,
    } = invitation;
    let answer = match answer {
        Answer::Nothing => None,
        Answer::Joined => Some(
            view! {
                <p>"You have accepted this invitation. "
                    <a href=format!("/orgs/{org_slug}")>{format!("Go to {org_name}")}</a>
                </p>
            }
            .into_any(),
        ),
        Answer::Used => Some(view! { <p>{Refusal::Used.to_string()}</p> }.into_any()),
        Answer::Accept => Some(view! { <AcceptForm csrf=csrf /> }.into_any()),
        // Shown on the page rather than refused: the link may have been forwarded to the right
        // person's other account; the address it was sent to is not repeated.
        Answer::WrongAccount => {
            Some(view! { <p>{Refusal::WrongAccount.to_string()}</p> }.into_any())
        }
        Answer::SignIn { next } => Some(
            view! {
                <p>"Log in or sign up with the address the invitation was sent to, then accept it here."</p>
                <p class="actions">
                    <a class="button" href=format!("/login?next={next}")>"Log in"</a>
                    <a class="button secondary" href=format!("/signup?next={next}")>"Sign up"</a>
                </p>
            }
            .into_any(),
        ),
    };
    view! {
        <section class="card narrow">
            <h1>{format!("Join {org_name}")}</h1>
            <p>{format!("You are invited to join {org_name} as {}.", role.label().to_lowercase())}</p>
            <FormError message=closed />
            {answer}
        </section>
    }
}

/// The accept button: the invitation's token goes in the body (from the page's path).
#[component]
fn AcceptForm(csrf: String) -> impl IntoView {
    let action = ServerAction::<AcceptInvitation>::new();
    let invitation = use_params_map()
        .read_untracked()
        .get("token")
        .unwrap_or_default();
    view! {
        <ActionForm action=action>
            <CsrfField token=csrf />
            <input type="hidden" name="token" value=invitation />
            <button type="submit">"Accept invitation"</button>
        </ActionForm>
    }
}
