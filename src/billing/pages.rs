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
use super::repo::{self, Invoice, TrialRefusal};
use super::service::{apply_snapshot, ensure_customer, refresh};
use super::subscription::{countdown, effective_plan, grace_ends, Stored};
use crate::error::AppError;
use crate::orgs::repo::Membership;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::format::{date_or_dash as date, money};
use crate::web::layout::CsrfField;
use crate::web::links::safe_external_url_owned;
use crate::web::state::AppState;

fn manager(signed_in: &SignedIn, slug: &str) -> Result<Membership, AppError> {
    let m = signed_in.membership(slug)?;
    if m.role.can_manage() {
        Ok(m)
    } else {
        Err(AppError::Forbidden)
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
    let stored = repo::subscription(&state.db, org_id).await?.map(|(s, _)| s);
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
    let stored = repo::subscription(&state.db, m.org.id)
        .await?
        .map(|(s, _)| s);
    let invoices = repo::invoices(&state.db, m.org.id).await?;
    let open_checkout = repo::open_checkout(&state.db, m.org.id).await?;
    let token = signed_in.authenticity_token()?;
    let body = overview_view(
        &state.catalog,
        &m,
        stored.as_ref(),
        invoices,
        open_checkout.and_then(|c| safe_external_url_owned(Some(c.1))),
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
    let stored = repo::subscription(&state.db, m.org.id)
        .await?
        .map(|(s, _)| s);
    let now = Utc::now();
    let current = effective_plan(&state.catalog, stored.as_ref(), now)
        .key
        .clone();
    let live = stored
        .as_ref()
        .is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"));
    // A trial is offered once: to organizations that never had a subscription, by people who
    // never had a trial.
    let may_trial = stored.is_none()
        && state.catalog.trial_days > 0
        && !repo::user_had_trial(&state.db, signed_in.user.id).await?;
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

fn paid_plan<'a>(catalog: &'a Catalog, key: &str) -> Result<&'a Plan, AppError> {
    catalog
        .plan(key)
        .filter(|p| p.is_paid())
        .ok_or_else(|| AppError::BadRequest(format!("“{key}” is not a plan you can buy.")))
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

/// `POST /orgs/{slug}/billing/trial`: a trial of a paid plan without a card. One per
/// organization and one per person: the grant is written in the transaction that starts the
/// trial, so of two parallel starts one wins and the other is refused cleanly.
pub async fn start_trial(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let m = manager(&signed_in, &slug)?;
    let plan = paid_plan(&state.catalog, &form.fields.plan)?;
    if repo::subscription(&state.db, m.org.id).await?.is_some() {
        return back_with(&signed_in, &slug, ORG_HAD_TRIAL.into()).await;
    }
    if repo::user_had_trial(&state.db, signed_in.user.id).await? {
        return back_with(&signed_in, &slug, PERSON_HAD_TRIAL.into()).await;
    }
    let customer = ensure_customer(
        &state.db,
        &state.stripe,
        m.org.id,
        &m.org.name,
        &signed_in.user.email,
    )
    .await?;
    // A card already on file (say, from a credit pack) that had a trial elsewhere: no trial.
    let card = state.stripe.default_card_fingerprint(&customer).await?;
    if let Some(card) = &card {
        if repo::card_had_trial(&state.db, card, None).await? {
            return back_with(&signed_in, &slug, CARD_HAD_TRIAL.into()).await;
        }
    }
    let price = state
        .stripe
        .price_id(plan.lookup_key().unwrap_or_default())
        .await?;
    // The transaction stays open across the Stripe call: if Stripe fails, the grant is undone
    // with it; while it is open, a parallel start waits on the grant's unique keys.
    let mut tx = state.db.begin().await?;
    match repo::grant_trial(
        &mut tx,
        m.org.id,
        signed_in.user.id,
        &plan.key,
        card.as_deref(),
    )
    .await?
    {
        Ok(()) => {}
        Err(refusal) => {
            drop(tx);
            let message = match refusal {
                TrialRefusal::Person => PERSON_HAD_TRIAL,
                TrialRefusal::Organization => ORG_HAD_TRIAL,
            };
            return back_with(&signed_in, &slug, message.into()).await;
        }
    }
    let snapshot = state
        .stripe
        .start_trial(m.org.id, &customer, &price, state.catalog.trial_days)
        .await?;
    apply_snapshot(
        &mut tx,
        &state.catalog,
        &snapshot,
        None,
        "trial started",
        Utc::now(),
    )
    .await?;
    tx.commit().await?;
    flash::set(
        &signed_in.session,
        Flash::notice(format!(
            "Your {}-day trial of {} has started.",
            state.catalog.trial_days, plan.name
        )),
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/billing")).into_response())
}

const ORG_HAD_TRIAL: &str = "This organization has already had a trial or a subscription.";
const CARD_HAD_TRIAL: &str =
    "The card on file has already been used for a trial, so this organization can subscribe but not start a trial.";
const PERSON_HAD_TRIAL: &str =
    "You have already had a trial, so this organization can subscribe but not start another one.";

/// `POST /orgs/{slug}/billing/checkout`: upgrade through Stripe Checkout. One open checkout per
/// organization: a second attempt goes back to the first.
pub async fn checkout(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let m = manager(&signed_in, &slug)?;
    let plan = paid_plan(&state.catalog, &form.fields.plan)?;
    if let Some((_, url)) = repo::open_checkout(&state.db, m.org.id).await? {
        return Ok(Redirect::to(&url).into_response());
    }
    let customer = ensure_customer(
        &state.db,
        &state.stripe,
        m.org.id,
        &m.org.name,
        &signed_in.user.email,
    )
    .await?;
    let price = state
        .stripe
        .price_id(plan.lookup_key().unwrap_or_default())
        .await?;
    let success = format!(
        "{}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        state.public_url
    );
    let cancel = format!("{}/billing/cancel?org={slug}", state.public_url);
    // Parallel requests take turns, so only the first creates a session in Stripe.
    let mut tx = state.db.begin().await?;
    repo::lock_checkouts(&mut tx, m.org.id).await?;
    if let Some((_, url)) = repo::open_checkout(&mut *tx, m.org.id).await? {
        return Ok(Redirect::to(&url).into_response());
    }
    let link = state
        .stripe
        .create_checkout(
            m.org.id,
            &customer,
            &price,
            &success,
            &cancel,
            Uuid::new_v4(),
        )
        .await?;
    repo::insert_checkout(&mut *tx, m.org.id, &link.id, &link.url, Some(&plan.key)).await?;
    tx.commit().await?;
    Ok(Redirect::to(&link.url).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SuccessQuery {
    #[serde(default)]
    session_id: String,
}

/// `GET /billing/success?session_id=...`: fetches the session from Stripe and applies it through
/// the same code as the webhook, so the new plan shows even if the webhook is late.
pub async fn success(
    State(state): State<AppState>,
    Query(q): Query<SuccessQuery>,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    if !q.session_id.starts_with("cs_") {
        return Err(AppError::BadRequest(
            "That is not a Checkout Session.".into(),
        ));
    }
    let session = state
        .stripe
        .retrieve_checkout(&q.session_id)
        .await
        .map_err(|_| AppError::NotFound)?;
    let org_id: Option<Uuid> = session
        .org_reference
        .as_deref()
        .and_then(|r| r.parse().ok());
    let Some(m) = signed_in
        .memberships
        .iter()
        .find(|m| Some(m.org.id) == org_id)
        .cloned()
    else {
        return Err(AppError::NotFound);
    };
    if session.payment_mode {
        // A credit pack: credited once, here or by the webhook, whichever comes first.
        if !(session.complete && session.paid) {
            return Ok(Redirect::to(&format!("/orgs/{}/credits", m.org.slug)).into_response());
        }
        crate::usage::pages::settle_from_success_page(
            &state,
            &session.id,
            session.payment_intent_id.as_deref(),
            m.org.id,
        )
        .await?;
        flash::set(
            &signed_in.session,
            Flash::notice("Thank you! Your credits have been added."),
        )
        .await?;
        return Ok(Redirect::to(&format!("/orgs/{}/credits", m.org.slug)).into_response());
    }
    if !session.complete {
        return Ok(Redirect::to(&format!("/orgs/{}/plans", m.org.slug)).into_response());
    }
    repo::close_checkout(&state.db, &session.id, "complete").await?;
    if let Some(sub) = &session.subscription_id {
        refresh(
            &state.db,
            &state.stripe,
            &state.catalog,
            sub,
            "checkout success page",
        )
        .await?;
    }
    let plan = repo::subscription(&state.db, m.org.id)
        .await?
        .and_then(|(s, _)| state.catalog.plan(&s.plan_key).map(|p| p.name.clone()))
        .unwrap_or_default();
    flash::set(
        &signed_in.session,
        Flash::notice(format!(
            "Thank you! {} is now on the {plan} plan.",
            m.org.name
        )),
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{}/billing", m.org.slug)).into_response())
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

async fn live_subscription(state: &AppState, org_id: Uuid) -> Result<Stored, AppError> {
    repo::subscription(&state.db, org_id)
        .await?
        .map(|(s, _)| s)
        .filter(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"))
        .ok_or_else(|| AppError::BadRequest("This organization has no active subscription.".into()))
}

/// `GET /orgs/{slug}/billing/change?plan=...`: what switching costs, before confirming.
pub async fn change_preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<PlanField>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = manager(&signed_in, &slug)?;
    let target = paid_plan(&state.catalog, &q.plan)?.clone();
    let stored = live_subscription(&state, m.org.id).await?;
    let current = state
        .catalog
        .plan(&stored.plan_key)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let upgrade = target.cents() > current.cents();
    let explanation = if upgrade {
        let price = state
            .stripe
            .price_id(target.lookup_key().unwrap_or_default())
            .await?;
        let (due, currency) = state
            .stripe
            .preview_upgrade(&stored.stripe_subscription_id, &price)
            .await?;
        format!(
            "{} now, for the rest of this period (prorated), then {}.",
            money(due, &currency),
            price_label(&state.catalog, &target)
        )
    } else {
        format!(
            "You keep {} until {}, then pay {}.",
            current.name,
            date(stored.current_period_end),
            price_label(&state.catalog, &target)
        )
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
        .page(StatusCode::OK, "Change plan", Some(m.org.id), body)
        .await
}

/// `POST /orgs/{slug}/billing/change`: upgrade now with proration, or downgrade at period end.
pub async fn change(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<PlanField>,
) -> Result<Response, AppError> {
    let m = manager(&signed_in, &slug)?;
    let target = paid_plan(&state.catalog, &form.fields.plan)?.clone();
    let stored = live_subscription(&state, m.org.id).await?;
    let current = state
        .catalog
        .plan(&stored.plan_key)
        .cloned()
        .ok_or(AppError::NotFound)?;
    if target.key == current.key {
        return back_with(
            &signed_in,
            &slug,
            format!("You are already on {}.", target.name),
        )
        .await;
    }
    let upgrade = target.cents() > current.cents();
    let price = state
        .stripe
        .price_id(target.lookup_key().unwrap_or_default())
        .await?;
    let snapshot = match state
        .stripe
        .change_price(
            &stored.stripe_subscription_id,
            &price,
            upgrade,
            Uuid::new_v4(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "plan change refused");
            return back_with(
                &signed_in,
                &slug,
                "Your card was declined; the plan did not change. Update your card and try again."
                    .into(),
            )
            .await;
        }
    };
    let mut tx = state.db.begin().await?;
    apply_snapshot(
        &mut tx,
        &state.catalog,
        &snapshot,
        None,
        if upgrade { "upgraded" } else { "downgraded" },
        Utc::now(),
    )
    .await?;
    let kept = (!upgrade)
        .then_some(())
        .and(stored.current_period_end)
        .map(|until| (current.key.as_str(), until));
    repo::set_kept_plan(&mut *tx, m.org.id, kept).await?;
    tx.commit().await?;
    let message = if upgrade {
        format!("You are now on {}.", target.name)
    } else {
        format!(
            "You will move to {} on {}.",
            target.name,
            date(stored.current_period_end)
        )
    };
    flash::set(&signed_in.session, Flash::notice(message)).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/billing")).into_response())
}

async fn set_cancel(
    state: AppState,
    slug: String,
    signed_in: SignedIn,
    cancel: bool,
) -> Result<Response, AppError> {
    let m = manager(&signed_in, &slug)?;
    let stored = live_subscription(&state, m.org.id).await?;
    let snapshot = state
        .stripe
        .set_cancel_at_period_end(&stored.stripe_subscription_id, cancel)
        .await?;
    let mut tx = state.db.begin().await?;
    apply_snapshot(
        &mut tx,
        &state.catalog,
        &snapshot,
        None,
        if cancel {
            "cancel requested"
        } else {
            "resumed"
        },
        Utc::now(),
    )
    .await?;
    tx.commit().await?;
    let message = if cancel {
        format!(
            "Your subscription ends on {}.",
            date(stored.current_period_end.or(stored.trial_end))
        )
    } else {
        "Your subscription will renew.".to_owned()
    };
    flash::set(&signed_in.session, Flash::notice(message)).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/billing")).into_response())
}

/// `POST /orgs/{slug}/billing/cancel`: cancel at the end of the period.
pub async fn cancel(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_cancel(state, slug, signed_in, true).await
}

/// `POST /orgs/{slug}/billing/resume`: undo a scheduled cancellation.
pub async fn resume(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    set_cancel(state, slug, signed_in, false).await
}

/// `POST /orgs/{slug}/billing/portal`: Stripe's customer portal, to change the card.
pub async fn portal(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let m = manager(&signed_in, &slug)?;
    let customer = ensure_customer(
        &state.db,
        &state.stripe,
        m.org.id,
        &m.org.name,
        &signed_in.user.email,
    )
    .await?;
    let url = state
        .stripe
        .portal_url(
            &customer,
            &format!("{}/orgs/{slug}/billing", state.public_url),
        )
        .await?;
    Ok(Redirect::to(&url).into_response())
}
