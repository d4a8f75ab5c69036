//! The organization's billing pages: the current plan (trial countdown, renewal, grace banner)
//! with the invoice history, the plans side by side, the change preview, and the pages Stripe
//! Checkout comes back to (success and cancel); their read functions, and the forms as server
//! functions: start a trial, start Checkout, change plan, cancel and resume, the card portal.
//! Each form is an `<ActionForm>`: without JavaScript it posts, and the answer redirects (to the
//! billing page with a notice, to Stripe, or back to the plans page with an alert).
//!
//! Shared by the server and the browser; what the functions do is in `super::forms` (server
//! only), which answers plain page data, formatted on the server. Also, on the server, the plan
//! box of the organization's dashboard ([`summary`]).

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::dashboard_card::Limits;
use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField};
use crate::web::page_error::PageError;

/// The billing page: the plan, its state, and the invoices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingView {
    pub org_name: String,
    pub slug: String,
    pub plan_name: String,
    /// The subscription's status as people read it (`past due`), or `free`.
    pub status: String,
    /// An owner or admin, who sees the forms.
    pub may_manage: bool,
    /// Trialing, active or past due: there is a subscription to pay for, cancel or resume.
    pub live: bool,
    /// A cancellation is scheduled (resume is offered instead of cancel).
    pub canceling: bool,
    /// Time left in the trial, in words.
    pub trial_left: Option<String>,
    /// Time left in the grace period after a failed payment, in words.
    pub grace_left: Option<String>,
    pub renewal: Option<Renewal>,
    /// After a downgrade: "Switches to Starter on 1 December 2026."
    pub switches: Option<String>,
    pub limits: Vec<String>,
    /// The link of the open Checkout, checked to be https.
    pub open_checkout: Option<String>,
    pub invoices: Vec<InvoiceRow>,
}

/// What happens at the end of an active subscription's period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Renewal {
    Renews { on: String },
    Ends { on: String },
}

/// One invoice, formatted; the links are checked to be https.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub date: String,
    pub number: String,
    pub period: String,
    pub amount: String,
    pub status: String,
    pub view_url: Option<String>,
    pub pdf_url: Option<String>,
}

/// The plans page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlansView {
    pub org_name: String,
    pub slug: String,
    pub current_name: String,
    pub trial_days: u32,
    pub plans: Vec<PlanCard>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCard {
    pub key: String,
    pub name: String,
    /// "Free", "$9.99 / month", "Contact sales".
    pub price: String,
    pub current: bool,
    pub limits: Vec<String>,
    pub offer: Offer,
}

/// What the plan's card lets this person do (only owners and admins get anything).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Offer {
    Nothing,
    /// Upgrade through Checkout, and start a trial when one is on offer.
    Checkout {
        trial: bool,
    },
    /// Switch a live subscription to it (through the change preview).
    Switch,
    ContactSales,
}

/// The change preview: what switching costs, before confirming.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeView {
    pub slug: String,
    pub current_name: String,
    pub target_key: String,
    pub target_name: String,
    /// The cost and the timing, in a sentence.
    pub explanation: String,
    pub upgrade: bool,
}

/// The page Checkout sends the customer back to when they leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanceledView {
    pub slug: String,
}

/// `/orgs/:slug/billing`
#[server(prefix = "/forms", endpoint = "read/billing")]
pub async fn billing_page(#[server(default)] slug: String) -> Result<Page<BillingView>, PageError> {
    Ok(super::forms::billing_page(&slug).await?)
}

/// `/orgs/:slug/plans`
#[server(prefix = "/forms", endpoint = "read/plans")]
pub async fn plans_page(#[server(default)] slug: String) -> Result<Page<PlansView>, PageError> {
    Ok(super::forms::plans_page(&slug).await?)
}

/// `/orgs/:slug/billing/change?plan=...`; only owners and admins.
#[server(prefix = "/forms", endpoint = "read/billing-change")]
pub async fn change_page(
    #[server(default)] slug: String,
    #[server(default)] plan: String,
) -> Result<Page<ChangeView>, PageError> {
    Ok(super::forms::change_page(&slug, &plan).await?)
}

/// `/billing/success?session_id=...[&next=/path]`: settles the Checkout and redirects (it shows
/// nothing); to `next` after a plan's Checkout when that is a path of the portal.
#[server(prefix = "/forms", endpoint = "read/billing-success")]
pub async fn checkout_success_page(
    #[server(default)] session_id: String,
    #[server(default)] next: String,
) -> Result<Page<()>, PageError> {
    Ok(super::forms::checkout_success_page(&session_id, &next).await?)
}

/// `/billing/cancel?org=...`
#[server(prefix = "/forms", endpoint = "read/billing-cancel")]
pub async fn checkout_canceled_page(
    #[server(default)] org: String,
) -> Result<Page<CanceledView>, PageError> {
    Ok(super::forms::checkout_canceled_page(&org).await?)
}

#[server(prefix = "/forms", endpoint = "billing/trial")]
pub async fn start_trial(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] plan: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::start_trial(visitor, &slug, &plan).await
}

#[server(prefix = "/forms", endpoint = "billing/checkout")]
pub async fn start_checkout(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] plan: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::start_checkout(visitor, &slug, &plan).await
}

#[server(prefix = "/forms", endpoint = "billing/change")]
pub async fn change_plan(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] plan: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::change_plan(visitor, &slug, &plan).await
}

#[server(prefix = "/forms", endpoint = "billing/cancel")]
pub async fn cancel_subscription(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::cancel(visitor, &slug).await
}

#[server(prefix = "/forms", endpoint = "billing/resume")]
pub async fn resume_subscription(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::resume(visitor, &slug).await
}

#[server(prefix = "/forms", endpoint = "billing/portal")]
pub async fn open_card_portal(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::portal(visitor, &slug).await
}

/// The `:slug` of the page being rendered.
fn slug_param() -> impl Fn() -> String + Send + Sync + Clone + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

/// The query parameter `name` of the page being rendered.
fn query_param(name: &'static str) -> impl Fn() -> String + Send + Sync + Clone + 'static {
    let query = use_query_map();
    move || query.read().get(name).unwrap_or_default()
}

/// The organization a form is about: server functions have fixed addresses, so it travels in
/// the form.
#[component]
fn SlugField(slug: String) -> impl IntoView {
    view! { <input type="hidden" name="slug" value=slug /> }
}

#[component]
pub fn BillingPage() -> impl IntoView {
    let page = Resource::new(slug_param(), billing_page);
    show_page(
        page,
        |view: &BillingView| format!("Billing · {}", view.org_name),
        billing_view,
    )
}

fn billing_view(view: BillingView, token: String) -> impl IntoView {
    let portal = ServerAction::<OpenCardPortal>::new();
    let cancel = ServerAction::<CancelSubscription>::new();
    let resume = ServerAction::<ResumeSubscription>::new();
    let BillingView {
        org_name,
        slug,
        plan_name,
        status,
        may_manage,
        live,
        canceling,
        trial_left,
        grace_left,
        renewal,
        switches,
        limits,
        open_checkout,
        invoices,
    } = view;
    let plans_link = format!("/orgs/{slug}/plans");
    // Each form takes its own copies: a form's content is a closure that owns what it shows.
    let hidden = || (token.clone(), slug.clone());
    let banner = grace_left.map(|left| {
        let fix = may_manage.then(|| {
            let (token, slug) = hidden();
            view! {
                <ActionForm action=portal attr:class="inline">
                    <CsrfField token=token />
                    <SlugField slug=slug />
                    " "<button type="submit" class="link">"Fix your card"</button>
                </ActionForm>
            }
        });
        view! {
            <div class="banner alert" role="alert">
                <strong>"Your last payment failed."</strong>
                {format!(" You keep your plan for {left} more. Update your card to keep it.")}
                {fix}
            </div>
        }
    });
    let manage_forms = (may_manage && live).then(|| {
        let (token, slug) = hidden();
        let card = view! {
            <ActionForm action=portal attr:class="inline">
                <CsrfField token=token />
                <SlugField slug=slug />
                <button type="submit" class="secondary">"Manage payment method"</button>
            </ActionForm>
        };
        let (token, slug) = hidden();
        let end = if canceling {
            view! {
                <ActionForm action=resume attr:class="inline">
                    <CsrfField token=token />
                    <SlugField slug=slug />
                    <button type="submit" class="secondary">"Resume subscription"</button>
                </ActionForm>
            }
            .into_any()
        } else {
            view! {
                <ActionForm action=cancel attr:class="inline">
                    <CsrfField token=token />
                    <SlugField slug=slug />
                    <button type="submit" class="secondary">"Cancel at period end"</button>
                </ActionForm>
            }
            .into_any()
        };
        (card, end)
    });
    view! {
        {banner}
        <section class="page-heading">
            <h1>"Billing"</h1>
            <p class="muted">{org_name}</p>
        </section>
        <section class="card" aria-labelledby="plan-heading">
            <h2 id="plan-heading">{format!("{plan_name} plan")}</h2>
            <p class="status">{format!("Status: {status}")}</p>
            {trial_left.map(|left| view! { <p class="trial"><strong>{format!("Trial: {left} left.")}</strong>" Add a card before it ends to keep the plan."</p> })}
            {renewal.map(|renewal| match renewal {
                Renewal::Ends { on } => view! { <p>{format!("Ends on {on}; you will then be on the free plan.")}</p> }.into_any(),
                Renewal::Renews { on } => view! { <p>{format!("Renews on {on}.")}</p> }.into_any(),
            })}
            {switches.map(|s| view! { <p>{s}</p> })}
            <Limits lines=limits />
            <p class="actions">
                <a class="button" href=plans_link>"Compare plans"</a>
                {manage_forms}
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
                            {invoices.into_iter().map(|i| view! {
                                <tr>
                                    <td>{i.date}</td>
                                    <td>{i.number}</td>
                                    <td>{i.period}</td>
                                    <td>{i.amount}</td>
                                    <td>{i.status}</td>
                                    <td>
                                        {i.view_url.map(|u| view! { <a href=u>"View"</a> })}
                                        " "
                                        {i.pdf_url.map(|u| view! { <a href=u>"PDF"</a> })}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn PlansPage() -> impl IntoView {
    let page = Resource::new(slug_param(), plans_page);
    show_page(page, |_| "Plans".to_owned(), plans_view)
}

fn plans_view(view: PlansView, token: String) -> impl IntoView {
    let checkout = ServerAction::<StartCheckout>::new();
    let trial = ServerAction::<StartTrial>::new();
    let PlansView {
        org_name,
        slug,
        current_name,
        trial_days,
        plans,
    } = view;
    let cards = plans
        .into_iter()
        .map(|plan| {
            let buttons = match plan.offer {
                Offer::Nothing => None,
                Offer::Checkout { trial: offered } => {
                    let upgrade = {
                        let (token, slug, key) = (token.clone(), slug.clone(), plan.key.clone());
                        let label = format!("Upgrade to {}", plan.name);
                        view! {
                            <ActionForm action=checkout>
                                <CsrfField token=token />
                                <SlugField slug=slug />
                                <input type="hidden" name="plan" value=key />
                                <button type="submit">{label}</button>
                            </ActionForm>
                        }
                    };
                    let try_it = offered.then(|| {
                        let (token, slug, key) = (token.clone(), slug.clone(), plan.key.clone());
                        view! {
                            <ActionForm action=trial>
                                <CsrfField token=token />
                                <SlugField slug=slug />
                                <input type="hidden" name="plan" value=key />
                                <button type="submit" class="secondary">{format!("Start {trial_days}-day trial")}</button>
                            </ActionForm>
                        }
                    });
                    Some((upgrade, try_it).into_any())
                }
                Offer::Switch => {
                    let href = format!("/orgs/{slug}/billing/change?plan={}", plan.key);
                    Some(view! { <a class="button" href=href>{format!("Switch to {}", plan.name)}</a> }.into_any())
                }
                Offer::ContactSales => Some(
                    view! { <a class="button secondary" href="mailto:sales@example.com">"Contact sales"</a> }
                        .into_any(),
                ),
            };
            let current = plan.current;
            view! {
                <article class="card plan" class:current=current aria-current=current.then_some("true")>
                    <h2>{plan.name}</h2>
                    <p class="price">{plan.price}</p>
                    {current.then(|| view! { <p class="badge">"Current plan"</p> })}
                    <Limits lines=plan.limits />
                    {buttons}
                </article>
            }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"Plans"</h1>
            <p class="muted">{format!("{org_name} · you are on {current_name}")}</p>
        </section>
        <div class="plans">{cards}</div>
    }
}

#[component]
pub fn ChangePlanPage() -> impl IntoView {
    let (slug, plan) = (slug_param(), query_param("plan"));
    let page = Resource::new(
        move || (slug(), plan()),
        |(slug, plan)| change_page(slug, plan),
    );
    show_page(page, |_| "Change plan".to_owned(), change_view)
}

fn change_view(view: ChangeView, token: String) -> impl IntoView {
    let change = ServerAction::<ChangePlan>::new();
    let keep = format!("/orgs/{}/plans", view.slug);
    view! {
        <section class="card narrow">
            <h1>{format!("Switch from {} to {}", view.current_name, view.target_name)}</h1>
            <p class="preview">{view.explanation}</p>
            <ActionForm action=change>
                <CsrfField token=token />
                <SlugField slug=view.slug />
                <input type="hidden" name="plan" value=view.target_key />
                <button type="submit">{if view.upgrade { "Upgrade now" } else { "Downgrade at period end" }}</button>
            </ActionForm>
            <p><a href=keep>"Keep my plan"</a></p>
        </section>
    }
}

/// Where Stripe sends the customer after paying; the server settles and redirects.
#[component]
pub fn CheckoutSuccessPage() -> impl IntoView {
    let (session_id, next) = (query_param("session_id"), query_param("next"));
    let page = Resource::new(
        move || (session_id(), next()),
        |(session_id, next)| checkout_success_page(session_id, next),
    );
    show_page(page, |_| "Checkout".to_owned(), |_, _| ())
}

#[component]
pub fn CheckoutCanceledPage() -> impl IntoView {
    let page = Resource::new(query_param("org"), checkout_canceled_page);
    show_page(
        page,
        |_| "Checkout canceled".to_owned(),
        |view: CanceledView, _| {
            let back = format!("/orgs/{}/plans", view.slug);
            view! {
                <section class="card narrow">
                    <h1>"Checkout canceled"</h1>
                    <p>"Nothing was charged. Your plan has not changed."</p>
                    <p><a class="button" href=back>"Back to plans"</a></p>
                </section>
            }
        },
    )
}
