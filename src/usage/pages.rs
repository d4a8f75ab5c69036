//! The usage and credits pages: the usage history (an SVG chart drawn on the server, with a table
//! beside it) and the credits page (balance, ledger, buying packs through Checkout, auto top-up),
//! with their read functions and the credit forms as server functions. Each form is an
//! `<ActionForm>`: without JavaScript it posts, and the answer redirects (to Stripe Checkout, or
//! back to the page, with the messages beside the fields when one is wrong). What the functions
//! do on the server is in [`super::forms`]; the dashboard's usage card is `super::dashboard_card`.
//! Also the ledger table, which the admin's organization page shows too.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field, FormError};
use crate::web::page_error::{Kept, PageError, WHOLE_FORM};

/// The form names their kept values are stored under (see `web::form_state`).
pub const BUY_FORM: &str = "credits-buy";
pub const TOP_UP_FORM: &str = "credits-auto-top-up";

/// The usage history: actions per day and tier over the previous and current periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageView {
    pub org_name: String,
    /// When the previous and the current period began, in words.
    pub periods: String,
    /// The chart, drawn on the server (escaped there; see `super::chart`).
    pub chart_svg: String,
    /// The tiers' names, in catalog order (the legend and the table's columns).
    pub tiers: Vec<String>,
    /// Days with actions, newest first.
    pub days: Vec<UsageDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Actions per tier, in the order of [`UsageView::tiers`].
    pub counts: Vec<u64>,
}

/// One line of the credit ledger, worded for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerLine {
    /// `YYYY-MM-DD HH:MM`.
    pub at: String,
    /// Purchase, Auto top-up, Refund, Grant, Removal or Usage.
    pub what: String,
    /// Signed credits: `+12.5`, `-2`.
    pub amount: String,
    pub details: String,
}

/// The credits page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditsView {
    pub slug: String,
    pub org_name: String,
    /// The balance in credits (`12.5`).
    pub balance: String,
    pub negative: bool,
    /// The pack on sale, for those who may buy it (owners and admins).
    pub pack: Option<PackOffer>,
    /// The auto top-up state in words.
    pub top_up_state: String,
    /// Whether the viewer owns the organization (only owners change auto top-up).
    pub owner: bool,
    pub lines: Vec<LedgerLine>,
    pub buy: Kept<BuyValues>,
    pub top_up: Kept<TopUpValues>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackOffer {
    pub name: String,
    /// Formatted with its currency (`$20.00`).
    pub price: String,
}

/// The pack form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyValues {
    pub packs: String,
}

/// The auto top-up form as typed (or as saved, when nothing was refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpValues {
    pub enabled: bool,
    pub below: String,
    pub packs: String,
    pub monthly_cap: String,
}

#[server(prefix = "/forms", endpoint = "read/usage")]
pub async fn usage_page(#[server(default)] slug: String) -> Result<Page<UsageView>, PageError> {
    Ok(super::forms::usage_page(&slug).await?)
}

#[server(prefix = "/forms", endpoint = "read/credits")]
pub async fn credits_page(#[server(default)] slug: String) -> Result<Page<CreditsView>, PageError> {
    Ok(super::forms::credits_page(&slug).await?)
}

/// Opens a Stripe Checkout for the packs asked for, and sends the browser there.
#[server(prefix = "/forms", endpoint = "credits/checkout")]
pub async fn buy_credits(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] packs: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::buy_credits(visitor, &slug, packs).await
}

#[server(prefix = "/forms", endpoint = "credits/auto-top-up")]
pub async fn save_auto_top_up(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    // The checkbox: `on` when ticked, absent otherwise.
    #[server(default)] enabled: String,
    #[server(default)] below: String,
    #[server(default)] packs: String,
    #[server(default)] monthly_cap: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    let typed = TopUpValues {
        enabled: enabled == "on",
        below,
        packs,
        monthly_cap,
    };
    super::forms::save_auto_top_up(visitor, &slug, typed).await
}

/// The `slug` of the organization the page is about, from the route.
fn slug_param() -> impl Fn() -> String + Send + Sync + Clone + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

#[component]
pub fn UsagePage() -> impl IntoView {
    let page = Resource::new(slug_param(), usage_page);
    show_page(page, |u| format!("Usage · {}", u.org_name), usage_view)
}

fn usage_view(usage: UsageView, _token: String) -> impl IntoView {
    let legend = usage
        .tiers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            view! {
                <li>
                    <svg class="swatch" viewBox="0 0 1 1" aria-hidden="true">
                        <rect width="1" height="1" fill=super::chart::colour(i)></rect>
                    </svg>
                    {name.clone()}
                </li>
            }
        })
        .collect_view();
    let headers = usage
        .tiers
        .iter()
        .map(|name| view! { <th scope="col">{name.clone()}</th> })
        .collect_view();
    let rows = usage
        .days
        .into_iter()
        .map(|d| {
            let cells = d
                .counts
                .into_iter()
                .map(|n| view! { <td>{n}</td> })
                .collect_view();
            view! { <tr><th scope="row">{d.day}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"Usage history"</h1>
            <p class="muted">{format!("{} · {}", usage.org_name, usage.periods)}</p>
        </section>
        <section class="card usage-history">
            <figure>
                <div class="chart" inner_html=usage.chart_svg></div>
                <figcaption><ul class="legend">{legend}</ul></figcaption>
            </figure>
            <table class="usage-table">
                <caption>"Actions per day"</caption>
                <thead><tr><th scope="col">"Day"</th>{headers}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// The ledger, newest first.
#[component]
pub fn LedgerTable(lines: Vec<LedgerLine>) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="muted">"No credit movements yet."</p> }.into_any();
    }
    view! {
        <table class="ledger">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Credits"</th><th scope="col">"Details"</th>
            </tr></thead>
            <tbody>
                {lines.into_iter().map(|l| view! {
                    <tr>
                        <td>{l.at}</td>
                        <td>{l.what}</td>
                        <td class="number">{l.amount}</td>
                        <td>{l.details}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn CreditsPage() -> impl IntoView {
    let page = Resource::new(slug_param(), credits_page);
    show_page(page, |c| format!("Credits · {}", c.org_name), credits_view)
}

fn credits_view(credits: CreditsView, token: String) -> impl IntoView {
    let CreditsView {
        slug,
        org_name,
        balance,
        negative,
        pack,
        top_up_state,
        owner,
        lines,
        buy,
        top_up,
    } = credits;
    let buy = pack.map(|pack| {
        let action = ServerAction::<BuyCredits>::new();
        let (token, slug) = (token.clone(), slug.clone());
        view! {
            <section class="card" aria-labelledby="buy-heading">
                <h2 id="buy-heading">"Buy credits"</h2>
                <p>{format!("{} for {} per pack. Purchased credits carry over from period to period.", pack.name, pack.price)}</p>
                <ActionForm action=action attr:novalidate=true>
                    <CsrfField token=token />
                    <input type="hidden" name="slug" value=slug />
                    <FormError message=buy.error(WHOLE_FORM) />
                    <Field label="Packs" name="packs" kind="number" value=buy.values.packs.clone()
                        error=buy.error("packs") />
                    <button type="submit">"Buy with Stripe Checkout"</button>
                </ActionForm>
            </section>
        }
    });
    let top_up_form = owner.then(|| top_up_form(slug, token, top_up));
    view! {
        <section class="page-heading">
            <h1>"Credits"</h1>
            <p class="muted">{org_name}</p>
        </section>
        <section class="card" aria-labelledby="balance-heading">
            <h2 id="balance-heading">"Balance"</h2>
            <p class=if negative { "balance negative" } else { "balance" } data-testid="credits-page-balance">
                <strong>{format!("{balance} credits")}</strong>
            </p>
            {negative.then(|| view! { <p class="muted">"A negative balance is overage or a refund still owed; the next purchase settles it."</p> })}
        </section>
        {buy}
        <section class="card" aria-labelledby="top-up-heading">
            <h2 id="top-up-heading">"Auto top-up"</h2>
            <p data-testid="auto-top-up-state">{top_up_state}</p>
            {(!owner).then(|| view! { <p class="muted">"Only owners change auto top-up."</p> })}
            {top_up_form}
        </section>
        <section class="card" aria-labelledby="ledger-heading">
            <h2 id="ledger-heading">"Ledger"</h2>
            <LedgerTable lines=lines />
        </section>
    }
}

fn top_up_form(slug: String, token: String, kept: Kept<TopUpValues>) -> impl IntoView {
    let action = ServerAction::<SaveAutoTopUp>::new();
    let values = kept.values.clone();
    let enabled_error = kept.error("enabled");
    let invalid = enabled_error.is_some().then_some("true");
    let described_by = enabled_error.is_some().then_some("enabled-error");
    view! {
        <ActionForm action=action attr:novalidate=true>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <FormError message=kept.error(WHOLE_FORM) />
            <div class="field checkbox" class:has-error=enabled_error.is_some()>
                {enabled_error.clone().map(|message| view! { <p class="error" id="enabled-error">{message}</p> })}
                <input type="checkbox" id="enabled" name="enabled" value="on" checked=values.enabled
                    aria-invalid=invalid aria-describedby=described_by />
                <label for="enabled">"Top up automatically"</label>
            </div>
            <Field label="When the balance falls below (credits)" name="below" kind="number"
                value=values.below error=kept.error("below") />
            <Field label="Packs per top-up" name="packs" kind="number" value=values.packs
                error=kept.error("packs") />
            <Field label="At most this many top-ups a month" name="monthly_cap" kind="number"
                value=values.monthly_cap error=kept.error("monthly_cap") />
            <button type="submit">"Save auto top-up"</button>
        </ActionForm>
    }
}
