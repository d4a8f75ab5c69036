//! What the invitation server functions do on the server: inviting (bounded per organization and
//! inviter; nobody grants more than they hold), revoking, the invitation page and accepting it.
//! A new invitation's link is shown once, on the dashboard; the token itself is stored only
//! hashed and never logged.

use std::sync::Arc;

use super::invitation::{InvitationState, Refusal};
use super::invitation_pages::{Answer, InvitationView, InviteValues, INVITE_FORM, NEW_INVITATION};
use super::invitation_repo::{self as invitations, Accepted, Found};
use super::model::Role;
use super::seats::{room_for_one_more, Counting};
use crate::accounts::model::Email;
use crate::accounts::session;
use crate::billing::catalog::Catalog;
use crate::error::{url_escape, AppError};
use crate::web::caller::{dep, redirect, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::form_state;
use crate::web::page_error::{FieldErrors, PageError, WHOLE_FORM};
use crate::web::state::{InvitationDays, PublicUrl};
use crate::web::throttle::{wait_in_words, Throttles};

/// Tokens are 64 hex characters; anything else is not looked up.
const MAX_TOKEN_LEN: usize = 128;

pub async fn invite(
    visitor: Visitor,
    slug: &str,
    email: String,
    role: String,
) -> Result<(), PageError> {
    let manager = visitor.signed_in().await?.member(slug)?.manager()?;
    let page = format!("/orgs/{}", manager.slug());
    let values = InviteValues {
        email: email.clone(),
        role: role.clone(),
    };
    let session = manager.signed_in.session();
    let refuse = |field: &str, message: String| {
        let errors = FieldErrors::from([(field.to_owned(), message)]);
        form_state::refuse(session, INVITE_FORM, &page, &values, errors)
    };
    let email = match Email::parse(&email) {
        Ok(email) => email,
        Err(e) => return refuse("email", e.to_string()).await,
    };
    let role = match role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => return refuse("role", e.to_string()).await,
    };
    let own = manager.membership.role;
    if !own.can_grant(role) {
        let message = format!(
            "As {} you cannot make someone {}.",
            own.label().to_lowercase(),
            role.label().to_lowercase()
        );
        return refuse("role", message).await;
    }
    let org_id = manager.org_id();
    let db = manager.signed_in.db();
    // Managers see the member list anyway, so saying so reveals nothing new.
    if invitations::is_member(db, org_id, &email).await? {
        return refuse("email", format!("{email} is already a member.")).await;
    }
    let catalog = dep::<Arc<Catalog>>()?;
    let room = room_for_one_more(
        &mut *db.acquire().await?,
        &catalog,
        org_id,
        Counting::WithPendingExcept(email.as_str()),
    )
    .await?;
    if let Err(over) = room {
        let message = format!(
            "{over} Members and pending invitations both count. Upgrade on the Plans page (/orgs/{}/plans), or revoke an invitation.",
            manager.slug()
        );
        return refuse("email", message).await;
    }
    let inviter = manager.signed_in.user.id;
    if let Err(throttled) = dep::<Arc<Throttles>>()?
        .invitations
        .check(&(org_id, inviter))
    {
        tracing::warn!(%org_id, user_id = %inviter, "invitations throttled");
        return Err(AppError::Throttled {
            message: format!(
                "Too many invitations. Try again in {}.",
                wait_in_words(throttled.retry_after)
            ),
            retry_after: throttled.retry_after,
        }
        .into());
    }
    let days = dep::<InvitationDays>()?.0;
    let token = invitations::create(db, org_id, &email, role, inviter, days).await?;
    tracing::info!(%org_id, invited_by = %inviter, role = role.as_str(), "invitation created");
    let link = format!("{}/invitations/{token}", dep::<PublicUrl>()?.0);
    session
        .insert(NEW_INVITATION, (email.to_string(), link))
        .await?;
    manager
        .signed_in
        .flash(Flash::notice(format!(
            "If {email} can receive mail, an invitation was sent."
        )))
        .await?;
    redirect(&page);
    Ok(())
}

pub async fn revoke(visitor: Visitor, slug: &str, id: &str) -> Result<(), AppError> {
    let manager = visitor.signed_in().await?.member(slug)?.manager()?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let message = match invitations::revoke(manager.signed_in.db(), manager.org_id(), id).await? {
        Some(email) => format!("The invitation for {email} was revoked."),
        None => "That invitation was already answered or revoked.".to_owned(),
    };
    manager.signed_in.flash(Flash::notice(message)).await?;
    redirect(&format!("/orgs/{}", manager.slug()));
    Ok(())
}

async fn find(db: &sqlx::PgPool, token: &str) -> Result<Found, AppError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AppError::NotFound);
    }
    invitations::find(db, token)
        .await?
        .ok_or(AppError::NotFound)
}

/// `/invitations/{token}`. A revoked or expired invitation answers 410 Gone, with its page.
pub async fn invitation_page(token: &str) -> Result<Page<InvitationView>, AppError> {
    let visitor = Visitor::reading().await?;
    let invitation = find(&visitor.db, token).await?;
    let state = invitation.lifecycle.state(chrono::Utc::now());
    let closed = match state {
        InvitationState::Revoked => Some(Refusal::Revoked),
        InvitationState::Expired => Some(Refusal::Expired),
        _ => None,
    };
    if closed.is_some() {
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::GONE);
        }
    }
    let answer = match (&visitor.user, state) {
        (_, InvitationState::Revoked | InvitationState::Expired) => Answer::Nothing,
        (Some(user), InvitationState::Accepted { by }) if by == Some(user.id) => Answer::Joined,
        (_, InvitationState::Accepted { .. }) => Answer::Used,
        (Some(user), InvitationState::Pending) if user.email == invitation.email => Answer::Accept,
        (Some(_), InvitationState::Pending) => Answer::WrongAccount,
        (None, InvitationState::Pending) => Answer::SignIn {
            next: url_escape(&format!("/invitations/{token}")),
        },
    };
    // Signed-in people get their usual navigation (and its log-out button).
    let chrome = if visitor.user.is_some() {
        visitor.signed_in().await?.chrome(None).await?
    } else {
        visitor.chrome().await?
    };
    Ok(Page {
        chrome,
        body: InvitationView {
            org_name: invitation.org_name,
            org_slug: invitation.org_slug,
            role: invitation.role,
            closed: closed.map(|r| r.to_string()),
            answer,
        },
    })
}

/// Joins, once. Someone signed out is sent to log in and come back; a refusal (revoked,
/// expired, used, another account) goes back to the invitation page, which says why.
pub async fn accept(visitor: Visitor, token: &str) -> Result<(), PageError> {
    let page = format!("/invitations/{token}");
    let Some(user) = visitor.user.clone() else {
        redirect(&format!("/login?next={}", url_escape(&page)));
        return Ok(());
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(AppError::NotFound.into());
    }
    let catalog = dep::<Arc<Catalog>>()?;
    let outcome = invitations::accept(&visitor.db, &catalog, token, user.id, &user.email)
        .await?
        .ok_or(AppError::NotFound)?;
    visitor.memberships_changed()?;
    let (invitation, notice) = match outcome {
        Accepted::Joined(i) => {
            tracing::info!(org_id = %i.org_id, user_id = %user.id, "invitation accepted");
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
        Accepted::NoSeat(i, over) => {
            tracing::info!(org_id = %i.org_id, user_id = %user.id, "invitation refused: no seat");
            let message = format!(
                "{} has no seat left. {over} An owner or admin of {} can upgrade its plan; then accept again.",
                i.org_name, i.org_name
            );
            visitor.flash(Flash::alert(message.clone())).await?;
            redirect(&page);
            return Err(PageError::field(WHOLE_FORM, message));
        }
        Accepted::Refused(_, refusal) => {
            redirect(&page);
            return Err(PageError::field(WHOLE_FORM, refusal.to_string()));
        }
    };
    session::remember_org(&visitor.session, invitation.org_id).await?;
    visitor.flash(Flash::notice(notice)).await?;
    redirect(&format!("/orgs/{}", invitation.org_slug));
    Ok(())
}
