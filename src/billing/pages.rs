//! The organization's billing pages: the current plan (trial countdown, renewal, grace banner),
//! the plans side by side, starting a trial, upgrading through Stripe Checkout (success and
//! cancel pages), changing plan with a preview, cancel and resume, the payment-method portal and
//! the invoice history. Plain forms; all of it works without JavaScript.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::catalog::{Catalog, Limit, Plan, Price};
use super::reads;
use super::repo::Invoice;
use super::subscription::{countdown, effective_plan, grace_ends, Stored};
use super::use_cases::{
    self, BillingDeps, BillingError, ChangeEffect, CheckoutReturn, Manager, PlanChanged, Unchanged,
};
use crate::error::AppError;
use crate::orgs::repo::Membership;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::format::{date_or_dash as date, money};
use crate::web::layout::CsrfField;
use crate::web::links::safe_external_url_owned;
use crate::web::state::AppState;

fn deps(state: &AppState) -> BillingDeps<'_> {
    BillingDeps {
        db: &state.db,
        stripe: &state.stripe,
        catalog: &state.catalog,
        public_url: &state.public_url,
    }
}

/// Who may change billing: an owner or admin of the organization (404 for a stranger, 403 for a
/// member).
fn manager(signed_in: &SignedIn, slug: &str) -> Result<Manager, AppError> {
    let m = signed_in.membership(slug)?;
    Manager::new(m, signed_in.user.id, &signed_in.user.email).map_err(as_error)
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

/// For pages that have nowhere to go back to: an alert becomes a bad request.
fn as_error(e: BillingError) -> AppError {
    match present(e) {
        Refusal::Error(e) => e,
        Refusal::Alert(message) => AppError::BadRequest(message),
    }
}

/// Back to the plans page with an alert, or the error page.
async fn refused(signed_in: &SignedIn, slug: &str, e: BillingError) -> Result<Response, AppError> {
    match present(e) {
        Refusal::Alert(message) => back_with(signed_in, slug, message).await,
        Refusal::Error(e) => Err(e),
    }
}

fn limits_view(catalog: &Catalog, plan: &Plan) -> impl IntoView {
    // In the catalog's order (small to xl), not alphabetical.
    let items: Vec<String> = catalog
        .meter_keys()
        .into_iter()
        .filter_map(|meter| plan.limits.get(meter).map(|limit| (meter, limit)))
        .map(|(meter, limit)| {
            let amount = match limit {
                Limit::Count(n) => n.to_string(),
                Limit::Unlimited => "Unlimited".to_owned(),
            };
            format!("{amount} {}", catalog.meter_name(meter))
        })
        .chain(plan.features.iter().map(|f| {
            catalog
                .features
                .iter()
                .find(|x| &x.key == f)
                .map_or_else(|| f.clone(), |x| x.name.clone())
        }))
        .collect();
    view! { <ul class="limits">{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul> }
}

fn price_label(catalog: &Catalog, plan: &Plan) -> String {
    match &plan.price {
        Price::Free => "Free".to_owned(),
        Price::Recurring {
            cents, interval, ..
        } => format!(
            "{} / {}",
            money(*cents, &catalog.currency),
            interval.as_str()
        ),
        Price::ContactSales => "Contact sales".to_owned(),
    }
}

/// The plan box on the organization's page: plan, trial countdown or grace banner, limits.
pub async fn summary(
    state: &AppState,
    org_id: Uuid,
    slug: &str,
) -> Result<impl IntoView + use<>, AppError> {
    let stored = reads::subscription(&state.db, org_id).await?;
    let now = Utc::now();
    let plan = effective_plan(&state.catalog, stored.as_ref(), now).clone();
    let trial = stored
        .as_ref()
        .filter(|s| s.status == "trialing")
        .and_then(|s| s.trial_end.and_then(|end| countdown(end, now)));
    let grace = stored.as_ref().and_then(|s| {
        grace_ends(s)
            .filter(|end| *end > now)
            .and_then(|end| countdown(end, now))
    });
    let limits = limits_view(&state.catalog, &plan);
    let billing = format!("/orgs/{slug}/billing");
    Ok(view! {
        <section class="card" aria-labelledby="summary-heading">
            <h2 id="summary-heading">{format!("{} plan", plan.name)}</h2>
            {trial.map(|left| view! { <p class="trial"><strong>{format!("Trial: {left} left.")}</strong></p> })}
            {grace.map(|left| view! {
                <p class="banner alert" role="alert">{format!("Your last payment failed. You keep your plan for {left} more. ")}<a href=billing.clone()>"Fix your card"</a></p>
            })}
            {limits}
        </section>
    })
}

/// `GET /orgs/{slug}/billing`
pub async fn overview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = signed_in.membership(&slug)?;
    let overview = reads::overview(&state.db, m.org.id).await?;
    let token = signed_in.authenticity_token()?;
    let body = overview_view(
        &state.catalog,
        &m,
        overview.stored.as_ref(),
        overview.invoices,
        safe_external_url_owned(overview.open_checkout_url),
        token,
        Utc::now(),
    );
    signed_in
        .page(
            StatusCode::OK,
            &format!("Billing · {}", m.org.name),
            Some(m.org.id),
            body,
        )
        .await
}

fn overview_view(
    catalog: &Catalog,
    m: &Membership,
    stored: Option<&Stored>,
    invoices: Vec<Invoice>,
    open_checkout: Option<String>,
    token: String,
    now: DateTime<Utc>,
) -> impl IntoView {
    let plan = effective_plan(catalog, stored, now).clone();
    let slug = m.org.slug.clone();
    let manage = m.role.can_manage();
    let status = stored
        .map(|s| s.status.clone())
        .unwrap_or_else(|| "free".to_owned());
    let trial = stored
        .filter(|s| s.status == "trialing")
        .and_then(|s| s.trial_end.and_then(|end| countdown(end, now)));
    let grace = stored.and_then(|s| {
        grace_ends(s)
            .filter(|end| *end > now)
            .map(|end| countdown(end, now).unwrap_or_default())
    });
    let renewal = stored
        .filter(|s| s.status == "active")
        .map(|s| (s.cancel_at_period_end, date(s.current_period_end)));
    let live =
        stored.is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"));
    let canceling = stored.is_some_and(|s| s.cancel_at_period_end);
    let kept = stored
        .and_then(|s| s.kept.clone())
        .filter(|(_, until)| *until > now)
        .map(|(_, until)| {
            let next = stored
                .and_then(|s| catalog.plan(&s.plan_key))
                .map(|p| p.name.clone())
                .unwrap_or_default();
            format!("Switches to {next} on {}.", date(Some(until)))
        });
    let action = |path: &str| format!("/orgs/{slug}/billing/{path}");
    let currency = catalog.currency.clone();
    let limits = limits_view(catalog, &plan);
    let plans_link = format!("/orgs/{slug}/plans");
    view! {
        {grace.map(|left| view! {
            <div class="banner alert" role="alert">
                <strong>"Your last payment failed."</strong>
                {format!(" You keep your plan for {left} more. Update your card to keep it.")}
                {manage.then(|| view! {
                    <form method="post" action=action("portal") class="inline">
                        <CsrfField token=token.clone() />
                        " "<button type="submit" class="link">"Fix your card"</button>
                    </form>
                })}
            </div>
        })}
        <section class="page-heading">
            <h1>"Billing"</h1>
            <p class="muted">{m.org.name.clone()}</p>
        </section>
        <section class="card" aria-labelledby="plan-heading">
            <h2 id="plan-heading">{format!("{} plan", plan.name)}</h2>
            <p class="status">{format!("Status: {}", status.replace('_', " "))}</p>
            {trial.map(|left| view! { <p class="trial"><strong>{format!("Trial: {left} left.")}</strong>" Add a card before it ends to keep the plan."</p> })}
            {renewal.map(|(cancel, when)| if cancel {
                view! { <p>{format!("Ends on {when}; you will then be on the free plan.")}</p> }.into_any()
            } else {
                view! { <p>{format!("Renews on {when}.")}</p> }.into_any()
            })}
            {kept.map(|k| view! { <p>{k}</p> })}
            {limits}
            <p class="actions">
                <a class="button" href=plans_link>"Compare plans"</a>
                {(manage && live).then(|| view! {
                    <form method="post" action=action("portal") class="inline">
                        <CsrfField token=token.clone() />
                        <button type="submit" class="secondary">"Manage payment method"</button>
                    </form>
                    <form method="post" action=action(if canceling { "resume" } else { "cancel" }) class="inline">
                        <CsrfField token=token.clone() />
                        <button type="submit" class="secondary">{if canceling { "Resume subscription" } else { "Cancel at period end" }}</button>
                    </form>
                })}
            </p>
            {open_checkout.map(|url| view! { <p class="muted">"A checkout is open: "<a href=url>"continue it"</a>"."</p> })}
        </section>
        <section class="card" aria-labelledby="invoices-heading">
            <h2 id="invoices-heading">"Invoices"</h2>
            {if invoices.is_empty() {
                view! { <p class="muted">"No invoices yet."</p> }.into_any()
            } else {
                view! {
                    <table>
                        <thead><tr>
                            <th scope="col">"Date"</th><th scope="col">"Number"</th><th scope="col">"Period"</th>
                            <th scope="col">"Amount"</th><th scope="col">"Status"</th><th scope="col">"Links"</th>
                        </tr></thead>
                        <tbody>
                            {invoices.into_iter().map(|i| {
                                let period = format!("{} – {}", date(i.period_start), date(i.period_end));
                                view! {
                                    <tr>
                                        <td>{date(Some(i.created))}</td>
                                        <td>{i.number.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td>{period}</td>
                                        <td>{money(i.amount_due.max(i.amount_paid), &currency)}</td>
                                        <td>{i.status.clone()}</td>
                                        <td>
                                            // Checked again here: rows stored before links were
                                            // checked on the way in may hold anything.
                                            {safe_external_url_owned(i.hosted_invoice_url.clone()).map(|u| view! { <a href=u>"View"</a> })}
                                            " "
                                            {safe_external_url_owned(i.invoice_pdf.clone()).map(|u| view! { <a href=u>"PDF"</a> })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// `GET /orgs/{slug}/plans`
pub async fn plans(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = signed_in.membership(&slug)?;
    let reads::PlanChoices { stored, may_trial } =
        reads::plan_choices(&state.db, &state.catalog, m.org.id, signed_in.user.id).await?;
    let now = Utc::now();
    let current = effective_plan(&state.catalog, stored.as_ref(), now)
        .key
        .clone();
    let live = stored
        .as_ref()
        .is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"));
    let token = signed_in.authenticity_token()?;
    let catalog = state.catalog.clone();
    let manage = m.role.can_manage();
    let cards = catalog.plans.iter().map(|plan| {
        let is_current = plan.key == current;
        let action = |path: &str| format!("/orgs/{slug}/billing/{path}");
        let buttons = if !manage || is_current {
            None
        } else if plan.is_paid() && !live {
            Some(view! {
                <form method="post" action=action("checkout")>
                    <CsrfField token=token.clone() />
                    <input type="hidden" name="plan" value=plan.key.clone() />
                    <button type="submit">{format!("Upgrade to {}", plan.name)}</button>
                </form>
                {may_trial.then(|| view! {
                    <form method="post" action=action("trial")>
                        <CsrfField token=token.clone() />
                        <input type="hidden" name="plan" value=plan.key.clone() />
                        <button type="submit" class="secondary">{format!("Start {}-day trial", catalog.trial_days)}</button>
                    </form>
                })}
            }.into_any())
        } else if plan.is_paid() && live {
            Some(view! { <a class="button" href=format!("/orgs/{slug}/billing/change?plan={}", plan.key)>{format!("Switch to {}", plan.name)}</a> }.into_any())
        } else if plan.price == Price::ContactSales {
            Some(view! { <a class="button secondary" href="mailto:sales@example.com">"Contact sales"</a> }.into_any())
        } else {
            None
        };
        view! {
            <article class="card plan" class:current=is_current aria-current=is_current.then_some("true")>
                <h2>{plan.name.clone()}</h2>
                <p class="price">{price_label(&catalog, plan)}</p>
                {is_current.then(|| view! { <p class="badge">"Current plan"</p> })}
                {limits_view(&catalog, plan)}
                {buttons}
            </article>
        }
    }).collect_view();
    let body = view! {
        <section class="page-heading">
            <h1>"Plans"</h1>
            <p class="muted">{format!("{} · you are on {}", m.org.name, catalog.plan(&current).map(|p| p.name.clone()).unwrap_or_default())}</p>
        </section>
        <div class="plans">{cards}</div>
    };
    signed_in
        .page(StatusCode::OK, "Plans", Some(m.org.id), body)
        .await
}

#[derive(Debug, Default, Deserialize)]
pub struct PlanField {
    #[serde(default)]
    pub plan: String,
}

async fn back_with(
    signed_in: &SignedIn,
    slug: &str,
    message: String,
) -> Result<Response, AppError> {
    flash::set(
        &signed_in.session,
        Flash {
            kind: crate::web::flash::FlashKind::Alert,
            message,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/plans")).into_response())
}

/// A notice, then the organization's billing page.
async fn to_billing(
    signed_in: &SignedIn,
    slug: &str,
    message: String,
) -> Result<Response, AppError> {
    flash::set(&signed_in.session, Flash::notice(message)).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/billing")).into_response())
}

/// `POST /orgs/{slug}/billing/trial`: a trial of a paid plan without a card (see
/// [`use_cases::start_trial`] for the rules).
pub async fn start_trial(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    match use_cases::start_trial(deps(&state), &who, &form.fields.plan).await {
        Ok(trial) => {
            let message = format!(
                "Your {}-day trial of {} has started.",
                trial.days, trial.plan_name
            );
            to_billing(&signed_in, &slug, message).await
        }
        Err(e) => refused(&signed_in, &slug, e).await,
    }
}

/// `POST /orgs/{slug}/billing/checkout`: upgrade through Stripe Checkout. One open checkout per
/// organization: a second attempt goes back to the first.
pub async fn checkout(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    match use_cases::start_checkout(deps(&state), &who, &form.fields.plan).await {
        Ok(started) => Ok(Redirect::to(&started.url).into_response()),
        Err(e) => refused(&signed_in, &slug, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct SuccessQuery {
    #[serde(default)]
    session_id: String,
}

/// `GET /billing/success?session_id=...`: settles the Checkout (a plan through billing, the same
/// code as the webhook, so the new plan shows even if the webhook is late; a credit pack through
/// usage, credited once, here or by the webhook, whichever comes first).
pub async fn success(
    State(state): State<AppState>,
    Query(q): Query<SuccessQuery>,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    let settled =
        use_cases::settle_checkout_return(deps(&state), &signed_in.memberships, &q.session_id)
            .await
            .map_err(as_error)?;
    match settled {
        CheckoutReturn::CreditPack {
            membership,
            paid,
            session_id,
            payment_intent_id,
        } => {
            let credits = format!("/orgs/{}/credits", membership.org.slug);
            if paid {
                crate::usage::credit_service::settle_from_success_page(
                    &state.db,
                    &state.api.entitlements,
                    &session_id,
                    payment_intent_id.as_deref(),
                    membership.org.id,
                )
                .await?;
                flash::set(
                    &signed_in.session,
                    Flash::notice("Thank you! Your credits have been added."),
                )
                .await?;
            }
            Ok(Redirect::to(&credits).into_response())
        }
        CheckoutReturn::Unfinished { membership } => {
            Ok(Redirect::to(&format!("/orgs/{}/plans", membership.org.slug)).into_response())
        }
        CheckoutReturn::Subscribed {
            membership,
            plan_name,
        } => {
            let message = format!(
                "Thank you! {} is now on the {plan_name} plan.",
                membership.org.name
            );
            to_billing(&signed_in, &membership.org.slug, message).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CancelQuery {
    #[serde(default)]
    org: String,
}

/// `GET /billing/cancel?org=...`: the customer went back from Checkout.
pub async fn canceled(Query(q): Query<CancelQuery>, signed_in: SignedIn) -> Result<Page, AppError> {
    let m = signed_in.membership(&q.org)?;
    let back = format!("/orgs/{}/plans", m.org.slug);
    let body = view! {
        <section class="card narrow">
            <h1>"Checkout canceled"</h1>
            <p>"Nothing was charged. Your plan has not changed."</p>
            <p><a class="button" href=back>"Back to plans"</a></p>
        </section>
    };
    signed_in
        .page(StatusCode::OK, "Checkout canceled", Some(m.org.id), body)
        .await
}

/// `GET /orgs/{slug}/billing/change?plan=...`: what switching costs, before confirming.
pub async fn change_preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<PlanField>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let who = manager(&signed_in, &slug)?;
    let preview = use_cases::preview_plan_change(deps(&state), &who, &q.plan)
        .await
        .map_err(as_error)?;
    let upgrade = preview.is_upgrade();
    let (current, target) = (preview.current, preview.target);
    let explanation = match preview.effect {
        ChangeEffect::UpgradeNow {
            due_cents,
            currency,
        } => format!(
            "{} now, for the rest of this period (prorated), then {}.",
            money(due_cents, &currency),
            price_label(&state.catalog, &target)
        ),
        ChangeEffect::DowngradeAtPeriodEnd { until } => format!(
            "You keep {} until {}, then pay {}.",
            current.name,
            date(until),
            price_label(&state.catalog, &target)
        ),
    };
    let token = signed_in.authenticity_token()?;
    let action = format!("/orgs/{slug}/billing/change");
    let body = view! {
        <section class="card narrow">
            <h1>{format!("Switch from {} to {}", current.name, target.name)}</h1>
            <p class="preview">{explanation}</p>
            <form method="post" action=action>
                <CsrfField token=token />
                <input type="hidden" name="plan" value=target.key.clone() />
                <button type="submit">{if upgrade { "Upgrade now" } else { "Downgrade at period end" }}</button>
            </form>
            <p><a href=format!("/orgs/{slug}/plans")>"Keep my plan"</a></p>
        </section>
    };
    signed_in
        .page(StatusCode::OK, "Change plan", Some(who.org.id), body)
        .await
}

/// `POST /orgs/{slug}/billing/change`: upgrade now with proration, or downgrade at period end.
pub async fn change(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    let message = match use_cases::change_plan(deps(&state), &who, &form.fields.plan).await {
        Ok(PlanChanged::Upgraded { plan_name }) => format!("You are now on {plan_name}."),
        Ok(PlanChanged::Downgraded { plan_name, on }) => {
            format!("You will move to {plan_name} on {}.", date(on))
        }
        Err(e) => return refused(&signed_in, &slug, e).await,
    };
    to_billing(&signed_in, &slug, message).await
}

/// `POST /orgs/{slug}/billing/cancel`: cancel at the end of the period.
pub async fn cancel(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    let scheduled = use_cases::cancel_at_period_end(deps(&state), &who)
        .await
        .map_err(as_error)?;
    let message = format!("Your subscription ends on {}.", date(scheduled.ends));
    to_billing(&signed_in, &slug, message).await
}

/// `POST /orgs/{slug}/billing/resume`: undo a scheduled cancellation.
pub async fn resume(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    use_cases::resume(deps(&state), &who)
        .await
        .map_err(as_error)?;
    to_billing(
        &signed_in,
        &slug,
        "Your subscription will renew.".to_owned(),
    )
    .await
}

/// `POST /orgs/{slug}/billing/portal`: Stripe's customer portal, to change the card.
pub async fn portal(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let who = manager(&signed_in, &slug)?;
    let url = use_cases::open_card_portal(deps(&state), &who)
        .await
        .map_err(as_error)?;
    Ok(Redirect::to(&url).into_response())
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
