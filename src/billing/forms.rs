//! What the billing pages' server functions do on the server: the read of each page (formatted
//! here, so the page data stays plain), and each form through one use case of
//! [`super::use_cases`]. How a refused use case reads to the customer is chosen here
//! ([`present`]): the refusals they can act on go back to the plans page with an alert, the rest
//! are the error page with today's status and words.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::catalog::{Catalog, Price};
use super::dashboard_card::{limit_lines, price_label};
use super::pages::{
    BillingView, CanceledView, ChangeView, InvoiceRow, Offer, PlanCard, PlansView, Renewal,
};
use super::reads::{self, Overview, PlanChoices};
use super::subscription::{countdown, effective_plan, grace_ends};
use super::use_cases::{
    self, BillingDeps, BillingError, ChangeEffect, CheckoutReturn, PlanChanged, Unchanged,
};
use crate::error::AppError;
use crate::stripe_gateway::Gateway;
use crate::web::caller::{dep, redirect, Member, Visitor};
use crate::web::chrome::{Chrome, Flash, Page};
use crate::web::format::{date_or_dash as date, money};
use crate::web::links::safe_external_url_owned;
use crate::web::page_error::{PageError, WHOLE_FORM};
use crate::web::state::PublicUrl;

/// What the use cases work with, from the request's context.
struct Deps {
    db: PgPool,
    stripe: Gateway,
    catalog: Arc<Catalog>,
    public_url: PublicUrl,
}

impl Deps {
    fn of_request() -> Result<Self, AppError> {
        Ok(Self {
            db: dep()?,
            stripe: dep()?,
            catalog: dep()?,
            public_url: dep()?,
        })
    }

    fn billing(&self) -> BillingDeps<'_> {
        BillingDeps {
            db: &self.db,
            stripe: &self.stripe,
            catalog: &self.catalog,
            public_url: &self.public_url.0,
        }
    }
}

/// Who may change billing: an owner or admin of the organization (a stranger got 404 from
/// `member`; a member gets 403 here), as the page's member and as the use cases take them.
fn manager(member: Member) -> Result<(Member, use_cases::Manager), AppError> {
    let member = member.manager()?.0;
    let user = &member.signed_in.user;
    let who = use_cases::Manager::new(member.membership.clone(), user.id, &user.email)
        .map_err(as_error)?;
    Ok((member, who))
}

/// How a refused use case reads to the customer: the ones they can act on go back to the plans
/// page with an alert, the rest are an error page with today's status and words.
enum Refusal {
    Alert(String),
    Error(AppError),
}

fn present(e: BillingError) -> Refusal {
    use Refusal::{Alert, Error};
    match e {
        BillingError::NotAllowed => Error(AppError::Forbidden),
        BillingError::NotForSale(key) => Error(AppError::BadRequest(format!(
            "“{key}” is not a plan you can buy."
        ))),
        BillingError::NothingToChange(Unchanged::NoSubscription) => Error(AppError::BadRequest(
            "This organization has no active subscription.".into(),
        )),
        BillingError::NothingToChange(Unchanged::AlreadyOn { plan }) => {
            Alert(format!("You are already on {plan}."))
        }
        BillingError::TrialRefused(rule) => Alert(rule.to_string()),
        BillingError::OverGaugeLimits(over) => Alert(over.to_string()),
        BillingError::Declined(_) => Alert(
            "Your card was declined; the plan did not change. Update your card and try again."
                .into(),
        ),
        BillingError::NotACheckoutSession => Error(AppError::BadRequest(
            "That is not a Checkout Session.".into(),
        )),
        BillingError::UnknownCheckout | BillingError::UnknownCurrentPlan(_) => {
            Error(AppError::NotFound)
        }
        BillingError::Stripe(e) => Error(AppError::Internal(e.into())),
        BillingError::Database(e) => Error(e.into()),
        BillingError::Internal(e) => Error(AppError::Internal(e)),
    }
}

/// For pages and forms that have nowhere to go back to: an alert becomes a bad request.
fn as_error(e: BillingError) -> AppError {
    match present(e) {
        Refusal::Error(e) => e,
        Refusal::Alert(message) => AppError::BadRequest(message),
    }
}

fn plans_path(slug: &str) -> String {
    format!("/orgs/{slug}/plans")
}

fn billing_path(slug: &str) -> String {
    format!("/orgs/{slug}/billing")
}

/// Back to the plans page with an alert, or the error page. A script client gets the alert as
/// the form's error too.
async fn refused(member: &Member, e: BillingError) -> Result<(), PageError> {
    match present(e) {
        Refusal::Alert(message) => {
            member
                .signed_in
                .flash(Flash::alert(message.clone()))
                .await?;
            redirect(&plans_path(member.slug()));
            Err(PageError::field(WHOLE_FORM, message))
        }
        Refusal::Error(e) => Err(e.into()),
    }
}

/// A notice, then the organization's billing page.
async fn to_billing(member: &Member, message: String) -> Result<(), PageError> {
    member.signed_in.flash(Flash::notice(message)).await?;
    redirect(&billing_path(member.slug()));
    Ok(())
}

pub async fn billing_page(slug: &str) -> Result<Page<BillingView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
    let catalog = dep::<Arc<Catalog>>()?;
    let overview = reads::overview(member.signed_in.db(), member.org_id()).await?;
    let body = billing_view(&catalog, &member, overview, Utc::now());
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}

fn billing_view(
    catalog: &Catalog,
    member: &Member,
    overview: Overview,
    now: DateTime<Utc>,
) -> BillingView {
    let stored = overview.stored.as_ref();
    let plan = effective_plan(catalog, stored, now);
    let status = stored
        .map(|s| s.status.replace('_', " "))
        .unwrap_or_else(|| "free".to_owned());
    let trial_left = stored
        .filter(|s| s.status == "trialing")
        .and_then(|s| s.trial_end.and_then(|end| countdown(end, now)));
    let grace_left = stored.and_then(|s| {
        grace_ends(s)
            .filter(|end| *end > now)
            .map(|end| countdown(end, now).unwrap_or_default())
    });
    let renewal = stored.filter(|s| s.status == "active").map(|s| {
        let on = date(s.current_period_end);
        if s.cancel_at_period_end {
            Renewal::Ends { on }
        } else {
            Renewal::Renews { on }
        }
    });
    let switches = stored
        .and_then(|s| s.kept.clone())
        .filter(|(_, until)| *until > now)
        .map(|(_, until)| {
            let next = stored
                .and_then(|s| catalog.plan(&s.plan_key))
                .map(|p| p.name.clone())
                .unwrap_or_default();
            format!("Switches to {next} on {}.", date(Some(until)))
        });
    let invoices = overview
        .invoices
        .into_iter()
        .map(|i| InvoiceRow {
            date: date(Some(i.created)),
            number: i.number.unwrap_or_else(|| "—".into()),
            period: format!("{} – {}", date(i.period_start), date(i.period_end)),
            amount: money(i.amount_due.max(i.amount_paid), &catalog.currency),
            status: i.status,
            // Checked again here: rows stored before links were checked on the way in may hold
            // anything.
            view_url: safe_external_url_owned(i.hosted_invoice_url),
            pdf_url: safe_external_url_owned(i.invoice_pdf),
        })
        .collect();
    BillingView {
        org_name: member.membership.org.name.clone(),
        slug: member.slug().to_owned(),
        plan_name: plan.name.clone(),
        status,
        may_manage: member.membership.role.can_manage(),
        live: stored
            .is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due")),
        canceling: stored.is_some_and(|s| s.cancel_at_period_end),
        trial_left,
        grace_left,
        renewal,
        switches,
        limits: limit_lines(catalog, plan),
        open_checkout: safe_external_url_owned(overview.open_checkout_url),
        invoices,
    }
}

pub async fn plans_page(slug: &str) -> Result<Page<PlansView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
    let catalog = dep::<Arc<Catalog>>()?;
    let choices = reads::plan_choices(
        member.signed_in.db(),
        &catalog,
        member.org_id(),
        member.signed_in.user.id,
    )
    .await?;
    let body = plans_view(&catalog, &member, choices, Utc::now());
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}

fn plans_view(
    catalog: &Catalog,
    member: &Member,
    choices: PlanChoices,
    now: DateTime<Utc>,
) -> PlansView {
    let PlanChoices { stored, may_trial } = choices;
    let current = effective_plan(catalog, stored.as_ref(), now);
    let live = stored
        .as_ref()
        .is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"));
    let manage = member.membership.role.can_manage();
    let plans = catalog
        .plans
        .iter()
        .map(|plan| {
            let is_current = plan.key == current.key;
            let offer = if !manage || is_current {
                Offer::Nothing
            } else if plan.is_paid() && !live {
                Offer::Checkout { trial: may_trial }
            } else if plan.is_paid() {
                Offer::Switch
            } else if plan.price == Price::ContactSales {
                Offer::ContactSales
            } else {
                Offer::Nothing
            };
            PlanCard {
                key: plan.key.clone(),
                name: plan.name.clone(),
                price: price_label(catalog, plan),
                current: is_current,
                limits: limit_lines(catalog, plan),
                offer,
            }
        })
        .collect();
    PlansView {
        org_name: member.membership.org.name.clone(),
        slug: member.slug().to_owned(),
        current_name: current.name.clone(),
        trial_days: catalog.trial_days,
        plans,
    }
}

/// What switching costs, before confirming; only for owners and admins.
pub async fn change_page(slug: &str, plan: &str) -> Result<Page<ChangeView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
    let (member, who) = manager(member)?;
    let deps = Deps::of_request()?;
    let preview = match use_cases::preview_plan_change(deps.billing(), &who, plan).await {
        Ok(preview) => preview,
        // Something to fix before switching: back to the plans page, which says what.
        Err(BillingError::OverGaugeLimits(over)) => {
            member
                .signed_in
                .flash(Flash::alert(over.to_string()))
                .await?;
            redirect(&plans_path(member.slug()));
            return Ok(Page {
                chrome: Chrome {
                    nav: None,
                    flash: None,
                    token: String::new(),
                },
                body: ChangeView::default(),
            });
        }
        Err(e) => return Err(as_error(e)),
    };
    let upgrade = preview.is_upgrade();
    let (current, target) = (preview.current, preview.target);
    let explanation = match preview.effect {
        ChangeEffect::UpgradeNow {
            due_cents,
            currency,
        } => format!(
            "{} now, for the rest of this period (prorated), then {}.",
            money(due_cents, &currency),
            price_label(&deps.catalog, &target)
        ),
        ChangeEffect::DowngradeAtPeriodEnd { until } => format!(
            "You keep {} until {}, then pay {}.",
            current.name,
            date(until),
            price_label(&deps.catalog, &target)
        ),
    };
    Ok(Page {
        chrome: member.chrome().await?,
        body: ChangeView {
            slug: member.slug().to_owned(),
            current_name: current.name,
            target_key: target.key,
            target_name: target.name,
            explanation,
            upgrade,
        },
    })
}

/// Settles the Checkout the customer came back from (a plan through billing, the same code as
/// the webhook, so the new plan shows even if the webhook is late; a credit pack through usage,
/// credited once, here or by the webhook, whichever comes first), then sends them on: after a
/// plan, to `next` when it is a path of the portal (a Checkout opened through the API with its
/// own `success_url`), else to the billing page.
pub async fn checkout_success_page(session_id: &str, next: &str) -> Result<Page<()>, AppError> {
    let signed_in = Visitor::reading().await?.signed_in().await?;
    let deps = Deps::of_request()?;
    let settled =
        use_cases::settle_checkout_return(deps.billing(), &signed_in.memberships, session_id)
            .await
            .map_err(as_error)?;
    let target = match settled {
        CheckoutReturn::CreditPack {
            membership,
            paid,
            session_id,
            payment_intent_id,
        } => {
            if paid {
                let api = dep::<crate::api::ApiState>()?;
                crate::usage::credit_service::settle_from_success_page(
                    &deps.db,
                    &api.entitlements,
                    &session_id,
                    payment_intent_id.as_deref(),
                    membership.org.id,
                )
                .await?;
                signed_in
                    .flash(Flash::notice("Thank you! Your credits have been added."))
                    .await?;
            }
            format!("/orgs/{}/credits", membership.org.slug)
        }
        CheckoutReturn::Unfinished { membership } => plans_path(&membership.org.slug),
        CheckoutReturn::Subscribed {
            membership,
            plan_name,
        } => {
            let message = format!(
                "Thank you! {} is now on the {plan_name} plan.",
                membership.org.name
            );
            signed_in.flash(Flash::notice(message)).await?;
            match use_cases::LocalPath::parse(next) {
                Some(next) => next.as_str().to_owned(),
                None => billing_path(&membership.org.slug),
            }
        }
    };
    redirect(&target);
    // Every outcome redirects, so nothing is rendered: the frame is left empty rather than
    // taking the flash the next page is to show.
    Ok(Page {
        chrome: Chrome {
            nav: None,
            flash: None,
            token: String::new(),
        },
        body: (),
    })
}

/// The customer went back from Checkout.
pub async fn checkout_canceled_page(org: &str) -> Result<Page<CanceledView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(org)?;
    Ok(Page {
        chrome: member.chrome().await?,
        body: CanceledView {
            slug: member.slug().to_owned(),
        },
    })
}

/// A trial of a paid plan without a card (see [`use_cases::start_trial`] for the rules).
pub async fn start_trial(visitor: Visitor, slug: &str, plan: &str) -> Result<(), PageError> {
    let (member, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    match use_cases::start_trial(deps.billing(), &who, plan).await {
        Ok(trial) => {
            let message = format!(
                "Your {}-day trial of {} has started.",
                trial.days, trial.plan_name
            );
            to_billing(&member, message).await
        }
        Err(e) => refused(&member, e).await,
    }
}

/// Upgrade through Stripe Checkout: to Stripe's page. One open Checkout per organization: a
/// second attempt goes back to the first.
pub async fn start_checkout(visitor: Visitor, slug: &str, plan: &str) -> Result<(), PageError> {
    let (member, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    match use_cases::start_checkout(deps.billing(), &who, plan).await {
        Ok(started) => {
            redirect(&started.url);
            Ok(())
        }
        Err(e) => refused(&member, e).await,
    }
}

/// Upgrade now with proration, or downgrade at period end.
pub async fn change_plan(visitor: Visitor, slug: &str, plan: &str) -> Result<(), PageError> {
    let (member, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    let message = match use_cases::change_plan(deps.billing(), &who, plan).await {
        Ok(PlanChanged::Upgraded { plan_name }) => format!("You are now on {plan_name}."),
        Ok(PlanChanged::Downgraded { plan_name, on }) => {
            format!("You will move to {plan_name} on {}.", date(on))
        }
        Err(e) => return refused(&member, e).await,
    };
    to_billing(&member, message).await
}

/// Cancel at the end of the period.
pub async fn cancel(visitor: Visitor, slug: &str) -> Result<(), PageError> {
    let (member, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    let scheduled = use_cases::cancel_at_period_end(deps.billing(), &who)
        .await
        .map_err(as_error)?;
    let message = format!("Your subscription ends on {}.", date(scheduled.ends));
    to_billing(&member, message).await
}

/// Undo a scheduled cancellation.
pub async fn resume(visitor: Visitor, slug: &str) -> Result<(), PageError> {
    let (member, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    use_cases::resume(deps.billing(), &who)
        .await
        .map_err(as_error)?;
    to_billing(&member, "Your subscription will renew.".to_owned()).await
}

/// Stripe's customer portal, to change the card.
pub async fn portal(visitor: Visitor, slug: &str) -> Result<(), PageError> {
    let (_, who) = manager(visitor.signed_in().await?.member(slug)?)?;
    let deps = Deps::of_request()?;
    let url = use_cases::open_card_portal(deps.billing(), &who)
        .await
        .map_err(as_error)?;
    redirect(&url);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::use_cases::TrialRule;
    use crate::stripe_gateway::GatewayError;

    fn alert(e: BillingError) -> String {
        match present(e) {
            Refusal::Alert(message) => message,
            Refusal::Error(e) => panic!("an error page, not an alert: {e:?}"),
        }
    }

    fn error(e: BillingError) -> AppError {
        match present(e) {
            Refusal::Error(e) => e,
            Refusal::Alert(message) => panic!("an alert, not an error page: {message}"),
        }
    }

    #[test]
    fn refusals_the_customer_can_act_on_go_back_with_todays_words() {
        assert_eq!(
            alert(BillingError::TrialRefused(TrialRule::Organization)),
            "This organization has already had a trial or a subscription."
        );
        assert_eq!(
            alert(BillingError::TrialRefused(TrialRule::Person)),
            "You have already had a trial, so this organization can subscribe but not start another one."
        );
        assert_eq!(
            alert(BillingError::TrialRefused(TrialRule::Card)),
            "The card on file has already been used for a trial, so this organization can subscribe but not start a trial."
        );
        assert_eq!(
            alert(BillingError::NothingToChange(Unchanged::AlreadyOn {
                plan: "Pro".into()
            })),
            "You are already on Pro."
        );
        assert_eq!(
            alert(BillingError::Declined(GatewayError::Declined {
                action: "changing the plan".into(),
                detail: "Your card was declined.".into(),
            })),
            "Your card was declined; the plan did not change. Update your card and try again."
        );
    }

    #[test]
    fn other_refusals_keep_todays_status_and_message() {
        assert!(matches!(
            error(BillingError::NotAllowed),
            AppError::Forbidden
        ));
        assert!(matches!(
            error(BillingError::NotForSale("free".into())),
            AppError::BadRequest(m) if m == "“free” is not a plan you can buy."
        ));
        assert!(matches!(
            error(BillingError::NothingToChange(Unchanged::NoSubscription)),
            AppError::BadRequest(m) if m == "This organization has no active subscription."
        ));
        assert!(matches!(
            error(BillingError::NotACheckoutSession),
            AppError::BadRequest(m) if m == "That is not a Checkout Session."
        ));
        assert!(matches!(
            error(BillingError::UnknownCheckout),
            AppError::NotFound
        ));
        assert!(matches!(
            error(BillingError::UnknownCurrentPlan("gold".into())),
            AppError::NotFound
        ));
        assert!(matches!(
            error(BillingError::Stripe(GatewayError::Unreachable {
                action: "creating the Stripe customer".into(),
                detail: "connection refused".into(),
            })),
            AppError::Internal(_)
        ));
        assert!(matches!(
            error(BillingError::Database(sqlx::Error::PoolTimedOut)),
            AppError::Internal(_)
        ));
        // A page with nowhere to go back to shows an alert as a bad request.
        assert!(matches!(
            as_error(BillingError::TrialRefused(TrialRule::Person)),
            AppError::BadRequest(_)
        ));
    }
}
