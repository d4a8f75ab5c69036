//! Invitations on the web: owners and admins invite by e-mail from the organization page (the
//! answer never says whether the address has an account), list and revoke pending ones, and the
//! invited person opens the link, logs in or signs up with the invited address, and accepts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::invitation::{InvitationState, Refusal};
use super::invitation_repo::{self as invitations, Accepted, Found};
use super::model::Role;
use super::pages::{render_org, InviteState, NEW_INVITATION};
use super::repo as orgs;
use crate::accounts::model::Email;
use crate::accounts::session;
use crate::error::{url_escape, AppError};
use crate::web::context::{Page, SignedIn, Visitor};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::layout::{CsrfField, FormError};
use crate::web::state::AppState;
use crate::web::throttle::{wait_in_words, with_retry_after};

/// Tokens are 64 hex characters; anything else is not looked up.
const MAX_TOKEN_LEN: usize = 128;

#[derive(Debug, Default, Deserialize)]
pub struct InviteFields {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub role: String,
}

/// `POST /orgs/{slug}/invitations`: owners and admins invite an address with a role (nobody
/// grants more than they hold). The answer is the same whether or not the address has an
/// account; the link is shown once on the organization page.
pub async fn invite(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<InviteFields>,
) -> Result<Response, AppError> {
    let membership = signed_in.membership(&slug)?;
    if !membership.role.can_manage() {
        return Err(AppError::Forbidden);
    }
    let fields = form.fields;
    let refuse = |error: String| InviteState {
        email: fields.email.clone(),
        role: fields.role.parse().ok(),
        error: Some(error),
        new_link: None,
    };
    let parsed = match (Email::parse(&fields.email), fields.role.parse::<Role>()) {
        (Err(e), _) => Err(refuse(e.to_string())),
        (_, Err(e)) => Err(refuse(e.to_string())),
        (Ok(_), Ok(role)) if !membership.role.can_grant(role) => Err(refuse(format!(
            "As {} you cannot make someone {}.",
            membership.role.label().to_lowercase(),
            role.label().to_lowercase()
        ))),
        (Ok(email), Ok(role)) => {
            // Managers see the member list anyway, so saying so reveals nothing new.
            if invitations::is_member(&state.db, membership.org.id, &email).await? {
                Err(refuse(format!("{email} is already a member.")))
            } else {
                Ok((email, role))
            }
        }
    };
    let (email, role) = match parsed {
        Ok(valid) => valid,
        Err(form_state) => {
            return Ok(render_org(
                &state,
                signed_in,
                membership,
                form_state,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await?
            .into_response())
        }
    };
    let key = (membership.org.id, signed_in.user.id);
    if let Err(throttled) = state.throttles.invitations.check(&key) {
        tracing::warn!(org_id = %membership.org.id, user_id = %signed_in.user.id, "invitations throttled");
        let form_state = refuse(format!(
            "Too many invitations. Try again in {}.",
            wait_in_words(throttled.retry_after)
        ));
        let page = render_org(
            &state,
            signed_in,
            membership,
            form_state,
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await?
        .into_response();
        return Ok(with_retry_after(page, throttled.retry_after));
    }
    let token = invitations::create(
        &state.db,
        membership.org.id,
        &email,
        role,
        signed_in.user.id,
        state.invitation_days,
    )
    .await?;
    tracing::info!(org_id = %membership.org.id, invited_by = %signed_in.user.id, role = role.as_str(), "invitation created");
    let link = format!("{}/invitations/{token}", state.public_url);
    signed_in
        .session
        .insert(NEW_INVITATION, (email.to_string(), link))
        .await?;
    flash::set(
        &signed_in.session,
        Flash::notice(format!(
            "If {email} can receive mail, an invitation was sent."
        )),
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{}", membership.org.slug)).into_response())
}

/// `POST /orgs/{slug}/invitations/{id}/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    signed_in: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let membership = signed_in.membership(&slug)?;
    if !membership.role.can_manage() {
        return Err(AppError::Forbidden);
    }
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let message = match invitations::revoke(&state.db, membership.org.id, id).await? {
        Some(email) => format!("The invitation for {email} was revoked."),
        None => "That invitation was already answered or revoked.".to_owned(),
    };
    flash::set(&signed_in.session, Flash::notice(message)).await?;
    Ok(Redirect::to(&format!("/orgs/{}", membership.org.slug)).into_response())
}

/// `GET /invitations/{token}`: what the invitation is for, and what to do with it.
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Result<Page, AppError> {
    let invitation = find(&state, &token).await?;
    let path = format!("/invitations/{token}");
    let state_now = invitation.lifecycle.state(chrono::Utc::now());
    let status = match state_now {
        InvitationState::Revoked | InvitationState::Expired => StatusCode::GONE,
        _ => StatusCode::OK,
    };
    let message = match state_now {
        InvitationState::Revoked => Some(Refusal::Revoked.to_string()),
        InvitationState::Expired => Some(Refusal::Expired.to_string()),
        _ => None,
    };
    render(&state.db, visitor, invitation, path, status, message).await
}

/// `POST /invitations/{token}/accept`: joins the organization, once, if the invitation is
/// pending and for the signed-in person's address.
pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    signed_in: Option<SignedIn>,
    _form: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let path = format!("/invitations/{token}");
    let Some(signed_in) = signed_in else {
        return Ok(Redirect::to(&format!("/login?next={}", url_escape(&path))).into_response());
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(AppError::NotFound);
    }
    let outcome = invitations::accept(&state.db, &token, signed_in.user.id, &signed_in.user.email)
        .await?
        .ok_or(AppError::NotFound)?;
    let (invitation, notice) = match outcome {
        Accepted::Joined(i) => {
            tracing::info!(org_id = %i.org_id, user_id = %signed_in.user.id, "invitation accepted");
            let notice = format!(
                "You joined {} as {}.",
                i.org_name,
                i.role.label().to_lowercase()
            );
            (i, notice)
        }
        Accepted::AlreadyJoined(i) => {
            let notice = format!("You are a member of {}.", i.org_name);
            (i, notice)
        }
        Accepted::Refused(i, refusal) => {
            let status = match refusal {
                Refusal::WrongAccount => StatusCode::FORBIDDEN,
                Refusal::Revoked | Refusal::Expired | Refusal::Used => StatusCode::GONE,
            };
            let visitor = Visitor {
                session: signed_in.session,
                csrf: signed_in.csrf,
                user: Some(signed_in.user),
            };
            return Ok(render(
                &state.db,
                visitor,
                i,
                path,
                status,
                Some(refusal.to_string()),
            )
            .await?
            .into_response());
        }
    };
    session::remember_org(&signed_in.session, invitation.org_id).await?;
    flash::set(&signed_in.session, Flash::notice(notice)).await?;
    Ok(Redirect::to(&format!("/orgs/{}", invitation.org_slug)).into_response())
}

async fn find(state: &AppState, token: &str) -> Result<Found, AppError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AppError::NotFound);
    }
    invitations::find(&state.db, token)
        .await?
        .ok_or(AppError::NotFound)
}

async fn render(
    db: &sqlx::PgPool,
    visitor: Visitor,
    invitation: Found,
    path: String,
    status: StatusCode,
    error: Option<String>,
) -> Result<Page, AppError> {
    let token = visitor.authenticity_token()?;
    let state_now = invitation.lifecycle.state(chrono::Utc::now());
    let role = invitation.role.label().to_lowercase();
    let heading = format!("Join {}", invitation.org_name);
    let next = url_escape(&path);
    let answer = match (&visitor.user, state_now) {
        (_, InvitationState::Revoked | InvitationState::Expired) => None,
        (Some(user), InvitationState::Accepted { by }) if by == Some(user.id) => Some(
            view! {
                <p>"You have accepted this invitation. "
                    <a href=format!("/orgs/{}", invitation.org_slug)>{format!("Go to {}", invitation.org_name)}</a>
                </p>
            }
            .into_any(),
        ),
        (_, InvitationState::Accepted { .. }) => {
            Some(view! { <p>{Refusal::Used.to_string()}</p> }.into_any())
        }
        (Some(user), InvitationState::Pending) if user.email == invitation.email => Some(
            view! {
                <form method="post" action=format!("{path}/accept")>
                    <CsrfField token=token />
                    <button type="submit">"Accept invitation"</button>
                </form>
            }
            .into_any(),
        ),
        (Some(_), InvitationState::Pending) => {
            // Shown on the page rather than refused: the link may have been forwarded to the
            // right person's other account; the address it was sent to is not repeated.
            (error.is_none()).then(|| view! { <p>{Refusal::WrongAccount.to_string()}</p> }.into_any())
        }
        (None, InvitationState::Pending) => Some(
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
    let body = view! {
        <section class="card narrow">
            <h1>{heading}</h1>
            <p>{format!("You are invited to join {} as {role}.", invitation.org_name)}</p>
            <FormError message=error />
            {answer}
        </section>
    };
    // Signed-in people get their usual navigation (and its log-out button).
    match visitor.user {
        Some(user) => {
            let memberships = orgs::memberships_of(db, user.id).await?;
            let signed_in = SignedIn {
                session: visitor.session,
                csrf: visitor.csrf,
                user,
                memberships,
            };
            signed_in.page(status, "Invitation", None, body).await
        }
        None => visitor.page(status, "Invitation", body).await,
    }
}
