//! The usage and credits pages: the usage history (an SVG chart with a table beside it), the
//! credits page (ledger, buying packs through Checkout, auto top-up), and the admin's grant and
//! removal of credits. Plain forms; no JavaScript needed. The handlers read the form, call one
//! use case of [`super::credit_service`] and present its outcome; the dashboard's usage card is
//! [`super::dashboard_card`].

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::chart::{self, Series};
use super::credit_input::{AdjustmentForm, TopUpForm};
use super::credit_service::{self, CreditError, PackCheckoutOutcome};
use super::credits;
use super::entitlements::current_period;
use super::ledger;
use super::repo::{self, TopUpSettings};
use crate::billing::catalog::Model;
use crate::error::AppError;
use crate::orgs::model::Role;
use crate::orgs::repo::Membership;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::flash::{self, Flash};
use crate::web::format::{date, money};
use crate::web::layout::{CsrfField, Field, FormError};
use crate::web::state::AppState;

/// How a credit use case's refusal shows when it is not a form message: the status and
/// sentence the error edge renders.
impl From<CreditError> for AppError {
    fn from(e: CreditError) -> Self {
        match e {
            CreditError::Invalid(invalid) => AppError::BadRequest(invalid.message),
            CreditError::NotForSale | CreditError::UnknownOrganization => AppError::NotFound,
            CreditError::NotAllowed => AppError::Forbidden,
            CreditError::Stripe(e) => AppError::Internal(e),
            CreditError::Database(e) => e.into(),
        }
    }
}

/// `GET /orgs/{slug}/usage`: actions per day and tier over the previous and current periods.
pub async fn history(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = signed_in.membership(&slug)?;
    let now = Utc::now();
    let standing = repo::standing(&state.db, m.org.id, now).await?;
    let current = current_period(&standing, now);
    let previous = current.previous();
    let rows = repo::daily_usage(&state.db, m.org.id, previous.start, current.end).await?;
    let first = previous.start.date_naive();
    let last = now.date_naive().min(current.end.date_naive());
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let tiers: Vec<(String, String)> = state
        .catalog
        .meter_keys()
        .into_iter()
        .map(|k| (k.to_owned(), state.catalog.meter_name(k).to_owned()))
        .collect();
    let mut counts: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
    for (day, tier, n) in rows {
        counts.insert((day, tier), n.max(0) as u64);
    }
    let series: Vec<Series> = tiers
        .iter()
        .map(|(key, name)| Series {
            name: name.clone(),
            counts: days
                .iter()
                .map(|d| counts.get(&(*d, key.clone())).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    let boundary = days.iter().position(|d| *d >= current.start.date_naive());
    let label = format!(
        "Actions per day and tier from {} to {}",
        date(previous.start),
        date(now)
    );
    let svg = chart::svg(&days, &series, boundary, &label);
    let legend = tiers
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            view! {
                <li>
                    <svg class="swatch" viewBox="0 0 1 1" aria-hidden="true">
                        <rect width="1" height="1" fill=chart::colour(i)></rect>
                    </svg>
                    {name.clone()}
                </li>
            }
        })
        .collect_view();
    let table_rows = days
        .iter()
        .rev()
        .filter(|d| tiers.iter().any(|(k, _)| counts.contains_key(&(**d, k.clone()))))
        .map(|d| {
            let cells = tiers
                .iter()
                .map(|(k, _)| view! { <td>{counts.get(&(*d, k.clone())).copied().unwrap_or(0)}</td> })
                .collect_view();
            view! { <tr><th scope="row">{d.format("%Y-%m-%d").to_string()}</th>{cells}</tr> }
        })
        .collect_view();
    let headers = tiers
        .iter()
        .map(|(_, name)| view! { <th scope="col">{name.clone()}</th> })
        .collect_view();
    let body = view! {
        <section class="page-heading">
            <h1>"Usage history"</h1>
            <p class="muted">{format!("{} · previous period from {}, current period from {}", m.org.name, date(previous.start), date(current.start))}</p>
        </section>
        <section class="card usage-history">
            <figure>
                <div class="chart" inner_html=svg></div>
                <figcaption><ul class="legend">{legend}</ul></figcaption>
            </figure>
            <table class="usage-table">
                <caption>"Actions per day"</caption>
                <thead><tr><th scope="col">"Day"</th>{headers}</tr></thead>
                <tbody>{table_rows}</tbody>
            </table>
        </section>
    };
    signed_in
        .page(
            StatusCode::OK,
            &format!("Usage · {}", m.org.name),
            Some(m.org.id),
            body,
        )
        .await
}

fn ledger_table(lines: Vec<ledger::Line>) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="muted">"No credit movements yet."</p> }.into_any();
    }
    view! {
        <table class="ledger">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Credits"</th><th scope="col">"Details"</th>
            </tr></thead>
            <tbody>
                {lines.into_iter().map(|l| {
                    let what = match l.kind.as_str() {
                        "purchase" => "Purchase",
                        "top_up" => "Auto top-up",
                        "refund" => "Refund",
                        "grant" => "Grant",
                        "removal" => "Removal",
                        _ => "Usage",
                    };
                    let amount = if l.millicredits > 0 {
                        format!("+{}", credits::format(l.millicredits))
                    } else {
                        credits::format(l.millicredits)
                    };
                    let details = match (l.actions, l.actor_email) {
                        (Some(n), _) => format!("{} ({n} actions)", l.reason.unwrap_or_default()),
                        (None, Some(by)) => format!("{} (by {by})", l.reason.unwrap_or_default()),
                        (None, None) => l.reason.unwrap_or_default(),
                    };
                    view! {
                        <tr>
                            <td>{l.at.format("%Y-%m-%d %H:%M").to_string()}</td>
                            <td>{what}</td>
                            <td class="number">{amount}</td>
                            <td>{details}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[derive(Debug, Default)]
struct CreditsForm {
    packs: String,
    packs_error: Option<String>,
    top_up_error: Option<String>,
}

async fn render_credits(
    state: &AppState,
    signed_in: SignedIn,
    m: Membership,
    status: StatusCode,
    form: CreditsForm,
) -> Result<Page, AppError> {
    if state.catalog.model != Model::HybridCredits {
        return Err(AppError::NotFound);
    }
    let Some(pack) = state.catalog.credit_pack.clone() else {
        return Err(AppError::NotFound);
    };
    let overview = credit_service::credits_overview(&state.db, m.org.id).await?;
    let account = overview.ledger.balance_millicredits;
    let lines = overview.ledger.lines;
    let settings = overview.top_up;
    let token = signed_in.authenticity_token()?;
    let slug = m.org.slug.clone();
    let manage = m.role.can_manage();
    let owner = m.role == Role::Owner;
    let currency = state.catalog.currency.clone();
    let pack_price = money(pack.price_cents, &currency);
    let buy = manage.then(|| {
        let token = token.clone();
        let packs = if form.packs.is_empty() { "1".to_owned() } else { form.packs.clone() };
        view! {
            <section class="card" aria-labelledby="buy-heading">
                <h2 id="buy-heading">"Buy credits"</h2>
                <p>{format!("{} for {pack_price} per pack. Purchased credits carry over from period to period.", pack.name)}</p>
                <form method="post" action=format!("/orgs/{slug}/credits/checkout") novalidate>
                    <CsrfField token=token />
                    <Field label="Packs" name="packs" kind="number" value=packs error=form.packs_error />
                    <button type="submit">"Buy with Stripe Checkout"</button>
                </form>
            </section>
        }
    });
    let top_up = top_up_view(
        &slug,
        &settings,
        owner,
        token,
        form.top_up_error,
        &pack.name,
    );
    let body = view! {
        <section class="page-heading">
            <h1>"Credits"</h1>
            <p class="muted">{m.org.name.clone()}</p>
        </section>
        <section class="card" aria-labelledby="balance-heading">
            <h2 id="balance-heading">"Balance"</h2>
            <p class=if account < 0 { "balance negative" } else { "balance" } data-testid="credits-page-balance">
                <strong>{format!("{} credits", credits::format(account))}</strong>
            </p>
            {(account < 0).then(|| view! { <p class="muted">"A negative balance is overage or a refund still owed; the next purchase settles it."</p> })}
        </section>
        {buy}
        {top_up}
        <section class="card" aria-labelledby="ledger-heading">
            <h2 id="ledger-heading">"Ledger"</h2>
            {ledger_table(lines)}
        </section>
    };
    signed_in
        .page(
            status,
            &format!("Credits · {}", m.org.name),
            Some(m.org.id),
            body,
        )
        .await
}

fn top_up_view(
    slug: &str,
    s: &TopUpSettings,
    owner: bool,
    token: String,
    error: Option<String>,
    pack_name: &str,
) -> impl IntoView {
    let state = if s.auto_top_up {
        format!(
            "On: below {} credits, {} × {pack_name} is charged to the saved card, at most {} times a month.",
            s.top_up_below_credits, s.top_up_packs, s.top_up_monthly_cap
        )
    } else if s.top_up_failures >= super::top_up::MAX_FAILURES {
        format!(
            "Off: it turned itself off after {} failed charges. Update the card, then turn it on again.",
            s.top_up_failures
        )
    } else {
        "Off.".to_owned()
    };
    let form = owner.then(|| {
        view! {
            <form method="post" action=format!("/orgs/{slug}/credits/auto-top-up") novalidate>
                <CsrfField token=token />
                <FormError message=error />
                <div class="field checkbox">
                    <input type="checkbox" id="enabled" name="enabled" value="on" checked=s.auto_top_up />
                    <label for="enabled">"Top up automatically"</label>
                </div>
                <Field label="When the balance falls below (credits)" name="below" kind="number" value=s.top_up_below_credits.to_string() />
                <Field label="Packs per top-up" name="packs" kind="number" value=s.top_up_packs.to_string() />
                <Field label="At most this many top-ups a month" name="monthly_cap" kind="number" value=s.top_up_monthly_cap.to_string() />
                <button type="submit">"Save auto top-up"</button>
            </form>
        }
    });
    view! {
        <section class="card" aria-labelledby="top-up-heading">
            <h2 id="top-up-heading">"Auto top-up"</h2>
            <p data-testid="auto-top-up-state">{state}</p>
            {(!owner).then(|| view! { <p class="muted">"Only owners change auto top-up."</p> })}
            {form}
        </section>
    }
}

/// The credits page again, with the form's messages (status 422).
async fn refuse_credits(
    state: &AppState,
    signed_in: SignedIn,
    m: Membership,
    form: CreditsForm,
) -> Result<Response, AppError> {
    let page = render_credits(state, signed_in, m, StatusCode::UNPROCESSABLE_ENTITY, form).await?;
    Ok(page.into_response())
}

/// `GET /orgs/{slug}/credits`
pub async fn credits_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = signed_in.membership(&slug)?;
    render_credits(&state, signed_in, m, StatusCode::OK, CreditsForm::default()).await
}

#[derive(Debug, Deserialize)]
pub struct BuyFields {
    #[serde(default)]
    packs: String,
}

/// `POST /orgs/{slug}/credits/checkout`: a Checkout Session in payment mode for N packs.
pub async fn buy(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<BuyFields>,
) -> Result<Response, AppError> {
    let m = signed_in.membership(&slug)?;
    let outcome = credit_service::buy_packs(
        &state.db,
        &state.stripe,
        &state.catalog,
        &state.public_url,
        &m,
        &signed_in.user.email,
        &form.fields.packs,
    )
    .await;
    match outcome {
        Ok(PackCheckoutOutcome::Opened { url }) => Ok(Redirect::to(&url).into_response()),
        Ok(PackCheckoutOutcome::AlreadyOpen { url }) => {
            flash::set(
                &signed_in.session,
                Flash::notice(
                    "A checkout is already open for this organization; finish or cancel it first.",
                ),
            )
            .await?;
            Ok(Redirect::to(&url).into_response())
        }
        Err(CreditError::Invalid(invalid)) => {
            let refused = CreditsForm {
                packs: form.fields.packs,
                packs_error: Some(invalid.message),
                top_up_error: None,
            };
            refuse_credits(&state, signed_in, m, refused).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct TopUpFields {
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    below: String,
    #[serde(default)]
    packs: String,
    #[serde(default)]
    monthly_cap: String,
}

/// `POST /orgs/{slug}/credits/auto-top-up`: owners only.
pub async fn save_auto_top_up(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<TopUpFields>,
) -> Result<Response, AppError> {
    let m = signed_in.membership(&slug)?;
    let f = &form.fields;
    let typed = TopUpForm {
        enabled: f.enabled.as_deref(),
        below: &f.below,
        packs: &f.packs,
        monthly_cap: &f.monthly_cap,
    };
    match credit_service::save_auto_top_up(&state.db, &state.top_up, &m, typed).await {
        Ok(saved) => {
            let notice = if saved.enabled {
                "Auto top-up is on."
            } else {
                "Auto top-up is off."
            };
            flash::set(&signed_in.session, Flash::notice(notice)).await?;
            Ok(Redirect::to(&format!("/orgs/{slug}/credits")).into_response())
        }
        Err(CreditError::Invalid(invalid)) => {
            let refused = CreditsForm {
                top_up_error: Some(invalid.message),
                ..CreditsForm::default()
            };
            refuse_credits(&state, signed_in, m, refused).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The credits block on the admin's organization page.
pub async fn admin_section(
    state: &AppState,
    org_id: Uuid,
    slug: &str,
    token: String,
    error: Option<String>,
) -> Result<impl IntoView + use<>, AppError> {
    let credit_service::LedgerSummary {
        balance_millicredits: balance,
        lines,
    } = credit_service::ledger_summary(&state.db, org_id, 50).await?;
    Ok(view! {
        <section class="card" aria-labelledby="credits-heading">
            <h2 id="credits-heading">"Credits"</h2>
            <p data-testid="admin-balance">{format!("Balance: {} credits", credits::format(balance))}</p>
            <form method="post" action=format!("/admin/orgs/{slug}/credits") novalidate>
                <CsrfField token=token />
                <FormError message=error />
                <div class="field">
                    <label for="change">"Change"</label>
                    <select id="change" name="change">
                        <option value="grant">"Grant credits"</option>
                        <option value="remove">"Remove credits"</option>
                    </select>
                </div>
                <Field label="Credits" name="credits" kind="text" value=String::new() />
                <Field label="Reason (shown in the ledger)" name="reason" value=String::new() />
                <button type="submit">"Apply"</button>
            </form>
            {ledger_table(lines)}
        </section>
    })
}

#[derive(Debug, Deserialize)]
pub struct AdjustFields {
    #[serde(default)]
    change: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/orgs/{slug}/credits`: platform admins grant or remove credits with a reason.
pub async fn admin_adjust(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<AdjustFields>,
) -> Result<Response, AppError> {
    let f = &form.fields;
    let adjusted = credit_service::adjust_credits(
        &state.db,
        &state.api.entitlements,
        &signed_in.user,
        &slug,
        AdjustmentForm {
            change: &f.change,
            credits: &f.credits,
            reason: &f.reason,
        },
    )
    .await?;
    let verb = if adjusted.millicredits > 0 {
        "Granted"
    } else {
        "Removed"
    };
    flash::set(
        &signed_in.session,
        Flash::notice(format!(
            "{verb} {} credits.",
            credits::format(adjusted.millicredits.abs())
        )),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/orgs/{slug}")).into_response())
}
