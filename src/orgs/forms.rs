//! What the organization pages' server functions do on the server: the new-organization form and
//! creating one (bounded per account and per address), and the dashboard's read, which loads
//! the memberships, members, invitations and both cards in one statement.

use std::sync::Arc;

use chrono::Utc;

use super::invitation_pages::{
    Invitations, InviteValues, NewLink, PendingRow, INVITE_FORM, NEW_INVITATION,
};
use super::model::{OrgName, Role};
use super::pages::{Dashboard, MemberRow, NewOrgValues, NEW_ORG_FORM};
use super::repo;
use crate::accounts::session;
use crate::billing::catalog::Catalog;
use crate::billing::dashboard_card as plan_card;
use crate::billing::subscription::Stored;
use crate::error::AppError;
use crate::usage::dashboard_card as usage_card;
use crate::web::caller::{client_ip, dep, redirect, SignedIn, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::flash::take_once;
use crate::web::form_state::{self, Kept};
use crate::web::format::date;
use crate::web::page_error::{FieldErrors, PageError};
use crate::web::state::InvitationDays;
use crate::web::throttle::{wait_in_words, Throttles};

/// `/orgs/new`
pub async fn new_org_page() -> Result<Page<Kept<NewOrgValues>>, AppError> {
    let signed_in = Visitor::reading().await?.signed_in().await?;
    let kept = form_state::take(signed_in.session(), NEW_ORG_FORM).await?;
    Ok(Page {
        chrome: signed_in.chrome(None).await?,
        body: kept,
    })
}

pub async fn create(visitor: Visitor, typed: String) -> Result<(), PageError> {
    let signed_in = visitor.signed_in().await?;
    let name = match OrgName::parse(&typed) {
        Ok(name) => name,
        Err(e) => {
            let errors = FieldErrors::from([("name".to_owned(), e.to_string())]);
            let values = NewOrgValues { name: typed };
            return form_state::refuse(
                signed_in.session(),
                NEW_ORG_FORM,
                "/orgs/new",
                &values,
                errors,
            )
            .await;
        }
    };
    // Organizations are cheap to make and each used to bring a trial: bounded per account and
    // per address.
    let ip = client_ip().await?;
    let throttles = dep::<Arc<Throttles>>()?;
    let throttled = throttles
        .orgs_per_account
        .check(&signed_in.user.id)
        .and_then(|()| throttles.orgs_per_ip.check(&ip));
    if let Err(throttled) = throttled {
        tracing::warn!(user_id = %signed_in.user.id, %ip, "organization creation throttled");
        return Err(AppError::Throttled {
            message: format!(
                "Too many new organizations. Try again in {}.",
                wait_in_words(throttled.retry_after)
            ),
            retry_after: throttled.retry_after,
        }
        .into());
    }
    let org = repo::create(signed_in.db(), &name, signed_in.user.id).await?;
    signed_in.visitor.memberships_changed()?;
    session::remember_org(signed_in.session(), org.id).await?;
    signed_in
        .flash(Flash::notice(format!("{} is ready.", org.name)))
        .await?;
    redirect(&format!("/orgs/{}", org.slug));
    Ok(())
}

/// `/orgs/{slug}`: the dashboard. Viewing it makes it the current organization (the session is
/// written only when that changes). A just-created invitation link is shown here once.
///
/// One statement in all when the session and the user are already in memory (three when not).
/// The memberships the guard checks come with the dashboard's statement rather than from
/// `Visitor::signed_in`.
pub async fn org_page(slug: &str) -> Result<Page<Dashboard>, AppError> {
    let visitor = Visitor::reading().await?;
    let user = visitor.user.clone().ok_or(AppError::Unauthenticated)?;
    let now = Utc::now();
    let read = repo::dashboard(&visitor.db, user.id, slug, now).await?;
    let member = SignedIn {
        visitor,
        user,
        memberships: read.memberships,
    }
    .member(slug)?;
    let session = member.signed_in.session();
    session::remember_org(session, member.org_id()).await?;
    let new_link = take_once::<(String, String)>(session, NEW_INVITATION).await?;
    let form: Kept<InviteValues> = form_state::take(session, INVITE_FORM).await?;
    let role = member.membership.role;
    let catalog = dep::<Arc<Catalog>>()?;
    let stored = read.subscription.map(Stored::from);
    let plan = plan_card::card(&catalog, stored.as_ref(), slug, now);
    let gauges = crate::usage::gauge_usage::of_org(
        member.signed_in.db(),
        &catalog,
        member.org_id(),
        stored.as_ref(),
        slug,
        now,
    )
    .await?;
    let usage = usage_card::card(&catalog, stored, read.usage, slug, now);
    let invitations = role.can_manage().then(|| Invitations {
        pending: read
            .pending
            .into_iter()
            .map(|p| PendingRow {
                id: p.id,
                email: p.email,
                role: p.role,
                expires: p.expires_at.format("%Y-%m-%d").to_string(),
            })
            .collect(),
        grantable: Role::ALL
            .into_iter()
            .filter(|r| role.can_grant(*r))
            .collect(),
        form,
    });
    let days = dep::<InvitationDays>()?.0;
    let org = &member.membership.org;
    let body = Dashboard {
        name: org.name.clone(),
        slug: org.slug.clone(),
        since: date(org.created_at),
        role,
        members: read
            .members
            .into_iter()
            .map(|m| MemberRow {
                email: m.email,
                role: m.role,
                joined: m.joined_at.format("%Y-%m-%d").to_string(),
            })
            .collect(),
        plan,
        usage,
        gauges,
        invitations,
        new_link: new_link.map(|(email, link)| NewLink { email, link, days }),
    };
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}
