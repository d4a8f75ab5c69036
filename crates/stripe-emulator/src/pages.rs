//! The hosted pages Stripe would show: Checkout (pay with a test card, with the extra
//! authentication step for 4000 0025 0000 3155), the customer portal (change card, cancel or
//! renew), and invoices as HTML and PDF. Plain forms; no JavaScript needed.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, TimeZone, Utc};
use leptos::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use super::billing::Engine;
use super::cards::Card;
use super::error::StripeError;
use super::resources::checkout::{self, PayError, Submission};
use super::store::{str_field, Filter, Work};
use super::urls::safe_link;
use super::{pdf, Emulator};

/// Where the hosted pages' stylesheet is served (a file, so the pages' policy can forbid inline
/// styles and scripts).
pub const STYLESHEET_PATH: &str = "/assets/hosted.css";
const STYLESHEET: &str = include_str!("../style/hosted.css");

/// What every answer is allowed to do in a browser: nothing but this origin's stylesheet and
/// images, no script at all, never inside a frame; forms post here, and Checkout's redirect after
/// a payment goes to the merchant's (checked) http(s) success URL.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";

/// `GET /assets/hosted.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Sends the content policy and its companions with every answer.
pub async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Anything the emulator does not serve: Stripe's 404 body.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let mut error = StripeError::invalid_request(
        format!("Unrecognized request URL (GET: {}).", uri.path()),
        None,
    );
    error.status = StatusCode::NOT_FOUND;
    error.into_response()
}

fn page(title: &str, body: impl IntoView + 'static) -> Html<String> {
    let title = format!("{title} · Stripe emulator");
    let owner = Owner::new();
    let html = owner.with(|| {
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8" />
                    <meta name="viewport" content="width=device-width, initial-scale=1" />
                    <title>{title}</title>
                    <link rel="stylesheet" href=STYLESHEET_PATH />
                </head>
                <body>
                    <main>
                        <p><span class="badge">"TEST MODE · Stripe emulator"</span></p>
                        {body}
                    </main>
                </body>
            </html>
        }
        .to_html()
    });
    Html(format!("<!DOCTYPE html>{html}"))
}

fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let symbol = if currency == "usd" {
        "$".to_owned()
    } else {
        format!("{} ", currency.to_uppercase())
    };
    format!(
        "{sign}{symbol}{}.{:02}",
        amount.abs() / 100,
        amount.abs() % 100
    )
}

fn date(at: i64) -> String {
    Utc.timestamp_opt(at, 0)
        .single()
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_default()
}

fn failure(e: StripeError) -> Response {
    let message = e.message.clone();
    let status = e.status;
    (
        status,
        page(
            "Error",
            view! { <h1>"Something went wrong"</h1><p>{message}</p> },
        ),
    )
        .into_response()
}

/// A card as typed into a hosted page, its expiry checked against today.
fn typed_card(number: &str, expiry: &str, cvc: &str) -> Result<Card, &'static str> {
    let today = Utc::now();
    Card::parse(
        number,
        expiry,
        cvc,
        i64::from(today.year()),
        i64::from(today.month()),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PayForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_expiry: String,
    #[serde(default)]
    card_cvc: String,
    /// Present on the authentication step: `approve` or `deny`.
    #[serde(default)]
    authentication: Option<String>,
}

/// `GET /checkout/{id}`
pub async fn checkout_page(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    match render_checkout(&emulator, &id, None, &PayForm::default()).await {
        Ok(html) => html.into_response(),
        Err(e) => failure(e),
    }
}

async fn render_checkout(
    emulator: &Emulator,
    id: &str,
    error: Option<String>,
    form: &PayForm,
) -> Result<Html<String>, StripeError> {
    let mut w = Work::begin(&emulator.pool, None).await?;
    let session = w.fetch("checkout.session", id, "session").await?;
    let private = w.private(id).await?;
    let email = match session["customer"].as_str() {
        Some(c) => w.fetch("customer", c, "customer").await?["email"]
            .as_str()
            .map(str::to_owned),
        None => session["customer_email"].as_str().map(str::to_owned),
    };
    w.commit().await?;
    if session["status"] != "open" {
        let status = str_field(&session, "status");
        return Ok(page(
            "Checkout",
            view! { <h1>"This checkout session is no longer available"</h1><p class="muted">{format!("Its status is {status}.")}</p> },
        ));
    }
    let currency = str_field(&session, "currency");
    let trial_days = private["trial_days"].as_i64().or_else(|| {
        private["trial_end"]
            .as_i64()
            .map(|end| (end - session["created"].as_i64().unwrap_or(end)) / 86_400)
    });
    let card_optional =
        session["payment_method_collection"] == "if_required" && trial_days.is_some();
    let items: Vec<(String, i64, String)> = private["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let price = &item["price"];
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let amount = price["unit_amount"].as_i64().unwrap_or_default() * quantity;
            let per = price["recurring"]["interval"]
                .as_str()
                .map(|i| format!(" / {i}"))
                .unwrap_or_default();
            let name = item["name"].as_str().unwrap_or("Item").to_owned();
            (format!("{quantity} × {name}"), amount, per)
        })
        .collect();
    let total = session["amount_total"].as_i64().unwrap_or_default();
    let action = format!("{}/checkout/{id}", emulator.base);
    // Checked at creation; checked again here, so no stored value can become a script link.
    let cancel = session["cancel_url"].as_str().and_then(safe_link);
    let button = if card_optional && total == 0 {
        "Start trial"
    } else if session["mode"] == "subscription" {
        "Subscribe"
    } else {
        "Pay"
    };
    let currency_for_items = currency.clone();
    Ok(page(
        "Checkout",
        view! {
            <h1>{if session["mode"] == "subscription" { "Subscribe" } else { "Pay" }}</h1>
            <table>
                {items.into_iter().map(|(label, amount, per)| view! {
                    <tr><td>{label}</td><td>{format!("{}{per}", money(amount, &currency_for_items))}</td></tr>
                }).collect_view()}
                <tr><th>"Due today"</th><th>{money(total, &currency)}</th></tr>
            </table>
            {trial_days.map(|d| view! { <p class="muted">{format!("{d}-day free trial; you will not be charged today.")}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form method="post" action=action>
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" value=email.unwrap_or_else(|| form.email.clone()) />
                <label for="card_number">{if card_optional { "Card number (optional during the trial)" } else { "Card number" }}</label>
                <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242" value=form.card_number.clone() />
                <label for="card_expiry">"Expiry (MM / YY)"</label>
                <input id="card_expiry" name="card_expiry" autocomplete="cc-exp" placeholder="12 / 34" value=form.card_expiry.clone() />
                <label for="card_cvc">"CVC"</label>
                <input id="card_cvc" name="card_cvc" autocomplete="cc-csc" placeholder="123" value=form.card_cvc.clone() />
                <label for="name">"Name on card"</label>
                <input id="name" name="name" autocomplete="cc-name" value=form.name.clone() />
                <button type="submit">{button}</button>
            </form>
            {cancel.map(|url| view! { <p><a href=url>"← Back (cancel)"</a></p> })}
            <p class="muted">"Test cards: 4242 4242 4242 4242 succeeds · 4000 0000 0000 0002 is declined · 4000 0000 0000 9995 has insufficient funds · 4000 0025 0000 3155 asks for authentication."</p>
        },
    ))
}

fn authentication_step(emulator: &Emulator, id: &str, form: &PayForm) -> Html<String> {
    let action = format!("{}/checkout/{id}", emulator.base);
    let hidden = [
        ("email", form.email.clone()),
        ("name", form.name.clone()),
        ("card_number", form.card_number.clone()),
        ("card_expiry", form.card_expiry.clone()),
        ("card_cvc", form.card_cvc.clone()),
    ];
    let hidden_inputs = move || {
        hidden
            .clone()
            .into_iter()
            .map(|(name, value)| view! { <input type="hidden" name=name value=value /> })
            .collect_view()
    };
    page(
        "Authentication",
        view! {
            <h1>"Confirm this payment"</h1>
            <p>"Your bank asks you to confirm this payment (3-D Secure test)."</p>
            <form method="post" action=action.clone()>
                {hidden_inputs()}
                <input type="hidden" name="authentication" value="approve" />
                <button type="submit">"Complete authentication"</button>
            </form>
            <form method="post" action=action>
                {hidden_inputs()}
                <input type="hidden" name="authentication" value="deny" />
                <button type="submit" class="secondary">"Fail authentication"</button>
            </form>
        },
    )
}

/// `POST /checkout/{id}`: pay. Success redirects to the session's `success_url`.
pub async fn checkout_pay(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let card = if form.card_number.trim().is_empty() {
        None
    } else {
        match typed_card(&form.card_number, &form.card_expiry, &form.card_cvc) {
            Ok(card) => Some(card),
            Err(message) => {
                return again(
                    &emulator,
                    &id,
                    message.to_owned(),
                    &form,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
        }
    };
    let submission = Submission {
        email: Some(form.email.trim().to_owned()).filter(|e| !e.is_empty()),
        name: Some(form.name.trim().to_owned()).filter(|n| !n.is_empty()),
        card,
        authenticated: form.authentication.as_deref().map(|a| a == "approve"),
    };
    let mut w = match Work::begin(&emulator.pool, None).await {
        Ok(w) => w,
        Err(e) => return failure(e),
    };
    let outcome = checkout::complete(&mut w, &emulator.base, &id, submission).await;
    let target = match outcome {
        Ok(target) => target,
        Err(e) => {
            // Roll back whatever the attempt wrote, and release the emulator's lock before the
            // page is rendered again (rendering takes the lock too).
            drop(w);
            return pay_failed(emulator, id, &form, e).await;
        }
    };
    match w.commit().await {
        Ok(_) => {
            emulator.wake.notify_one();
            match safe_link(&target) {
                Some(target) => Redirect::to(&target).into_response(),
                None => failure(StripeError::invalid_request(
                    "The session's success_url is not an http or https URL.",
                    Some("success_url"),
                )),
            }
        }
        Err(e) => failure(e),
    }
}

async fn pay_failed(emulator: Emulator, id: String, form: &PayForm, error: PayError) -> Response {
    match error {
        PayError::NeedsAuthentication => authentication_step(&emulator, &id, form).into_response(),
        PayError::Declined(message) => {
            again(&emulator, &id, message, form, StatusCode::PAYMENT_REQUIRED).await
        }
        PayError::Closed => checkout_page(State(emulator), Path(id)).await,
        PayError::Internal(e) => failure(e),
    }
}

async fn again(
    emulator: &Emulator,
    id: &str,
    message: String,
    form: &PayForm,
    status: StatusCode,
) -> Response {
    match render_checkout(emulator, id, Some(message), form).await {
        Ok(html) => (status, html).into_response(),
        Err(e) => failure(e),
    }
}

/// `GET /portal/{session}`: the customer's subscriptions, card and invoices.
pub async fn portal_page(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    match render_portal(&emulator, &id, None).await {
        Ok(html) => html.into_response(),
        Err(e) => failure(e),
    }
}

async fn render_portal(
    emulator: &Emulator,
    id: &str,
    error: Option<String>,
) -> Result<Html<String>, StripeError> {
    let mut w = Work::begin(&emulator.pool, None).await?;
    let session = w.fetch("billing_portal.session", id, "session").await?;
    let customer_id = str_field(&session, "customer");
    let customer = w.fetch("customer", &customer_id, "customer").await?;
    let card = match customer["invoice_settings"]["default_payment_method"].as_str() {
        Some(pm) => w.load(pm).await?,
        None => None,
    };
    let filter = || Filter {
        customer: Some(&customer_id),
        test_clock: None,
    };
    let subscriptions: Vec<Value> = w
        .all("subscription", filter())
        .await?
        .into_iter()
        .filter(|s| s["status"] != "canceled" && s["status"] != "incomplete_expired")
        .collect();
    let mut names = Vec::with_capacity(subscriptions.len());
    for s in &subscriptions {
        names.push(w.price_label(&s["items"]["data"][0]["price"]).await?);
    }
    let invoices = w.all("invoice", filter()).await?;
    w.commit().await?;
    let base = format!("{}/portal/{id}", emulator.base);
    let card_line = card
        .map(|pm| {
            format!(
                "{} ending in {} (expires {}/{})",
                str_field(&pm["card"], "brand"),
                str_field(&pm["card"], "last4"),
                pm["card"]["exp_month"],
                pm["card"]["exp_year"]
            )
        })
        .unwrap_or_else(|| "No card on file.".to_owned());
    let return_url = session["return_url"].as_str().and_then(safe_link);
    let email = customer["email"].as_str().unwrap_or_default().to_owned();
    Ok(page(
        "Billing",
        view! {
            <h1>"Billing"</h1>
            <p class="muted">{email}</p>
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <h2>"Subscriptions"</h2>
            {subscriptions.into_iter().zip(names).map(|(s, name)| {
                let sub_id = str_field(&s, "id");
                let item = &s["items"]["data"][0];
                let amount = money(item["price"]["unit_amount"].as_i64().unwrap_or_default(), s["currency"].as_str().unwrap_or("usd"));
                let end = date(item["current_period_end"].as_i64().unwrap_or_default());
                let status = str_field(&s, "status");
                let canceling = s["cancel_at_period_end"] == true;
                let note = if canceling { format!("Cancels on {end}") } else if status == "trialing" { format!("Trial ends {end}") } else { format!("Renews on {end}") };
                let action = if canceling { format!("{base}/subscriptions/{sub_id}/renew") } else { format!("{base}/subscriptions/{sub_id}/cancel") };
                view! {
                    <section>
                        <p><strong>{name}</strong>" · "{amount}" · "{status}</p>
                        <p class="muted">{note}</p>
                        <form method="post" action=action>
                            <button type="submit" class="secondary">{if canceling { "Renew plan" } else { "Cancel plan" }}</button>
                        </form>
                    </section>
                }
            }).collect_view()}
            <h2>"Payment method"</h2>
            <p>{card_line}</p>
            <form method="post" action=format!("{base}/card")>
                <label for="card_number">"New card number"</label>
                <input id="card_number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242" />
                <label for="card_expiry">"Expiry (MM / YY)"</label>
                <input id="card_expiry" name="card_expiry" placeholder="12 / 34" />
                <label for="card_cvc">"CVC"</label>
                <input id="card_cvc" name="card_cvc" placeholder="123" />
                <button type="submit">"Update card"</button>
            </form>
            <h2>"Invoices"</h2>
            <table>
                {invoices.into_iter().map(|i| {
                    let url = safe_link(&str_field(&i, "hosted_invoice_url"));
                    view! {
                        <tr>
                            <td>{date(i["created"].as_i64().unwrap_or_default())}</td>
                            <td>{money(i["total"].as_i64().unwrap_or_default(), i["currency"].as_str().unwrap_or("usd"))}</td>
                            <td>{str_field(&i, "status")}</td>
                            <td>{url.map(|url| view! { <a href=url>"View"</a> })}</td>
                        </tr>
                    }
                }).collect_view()}
            </table>
            {return_url.map(|url| view! { <p><a href=url>"← Return"</a></p> })}
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_expiry: String,
    #[serde(default)]
    card_cvc: String,
}

/// `POST /portal/{session}/card`: saves a new default card and collects open invoices with it.
pub async fn portal_card(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let card = match typed_card(&form.card_number, &form.card_expiry, &form.card_cvc) {
        Ok(card) => card,
        Err(message) => return portal_again(&emulator, &id, message.to_owned()).await,
    };
    let outcome = async {
        let mut w = Work::begin(&emulator.pool, None).await?;
        let session = w.fetch("billing_portal.session", &id, "session").await?;
        let customer = str_field(&session, "customer");
        let now = w.now_for_customer(Some(&customer)).await?;
        let mut engine = Engine {
            w: &mut w,
            base: &emulator.base,
        };
        let pm = engine.attach_card(now, &customer, &card).await?;
        let pm_id = str_field(&pm, "id");
        engine
            .set_default_payment_method(now, &customer, &pm_id)
            .await?;
        // Subscriptions with their own default follow the new card too.
        for sub in engine
            .w
            .all(
                "subscription",
                Filter {
                    customer: Some(&customer),
                    test_clock: None,
                },
            )
            .await?
        {
            if sub["default_payment_method"].is_string() && sub["status"] != "canceled" {
                let mut after = sub.clone();
                after["default_payment_method"] = json!(pm_id);
                engine
                    .w
                    .save_and_emit_update(now, "customer.subscription.updated", &sub, &after)
                    .await?;
            }
        }
        engine.collect_open_invoices(now, &customer).await?;
        w.commit().await?;
        Ok::<(), StripeError>(())
    }
    .await;
    match outcome {
        Ok(()) => {
            emulator.wake.notify_one();
            Redirect::to(&format!("{}/portal/{id}", emulator.base)).into_response()
        }
        Err(e) if e.kind == "card_error" => portal_again(&emulator, &id, e.message).await,
        Err(e) => failure(e),
    }
}

async fn portal_again(emulator: &Emulator, id: &str, message: String) -> Response {
    match render_portal(emulator, id, Some(message)).await {
        Ok(html) => (StatusCode::UNPROCESSABLE_ENTITY, html).into_response(),
        Err(e) => failure(e),
    }
}

/// `POST /portal/{session}/subscriptions/{sub}/cancel|renew`: cancel at period end, or undo it.
pub async fn portal_subscription(
    State(emulator): State<Emulator>,
    Path((id, sub_id, action)): Path<(String, String, String)>,
) -> Response {
    let outcome = async {
        let mut w = Work::begin(&emulator.pool, None).await?;
        let session = w.fetch("billing_portal.session", &id, "session").await?;
        let sub = w.fetch("subscription", &sub_id, "subscription").await?;
        if sub["customer"] != session["customer"] {
            return Err(StripeError::no_such(
                "subscription",
                &sub_id,
                "subscription",
            ));
        }
        let cancel = match action.as_str() {
            "cancel" => true,
            "renew" => false,
            _ => return Err(StripeError::no_such("action", &action, "action")),
        };
        let now = w.now_for_customer(sub["customer"].as_str()).await?;
        let mut after = sub.clone();
        Engine::schedule_cancellation(&mut after, cancel, now);
        w.save_and_emit_update(now, "customer.subscription.updated", &sub, &after)
            .await?;
        w.commit().await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            emulator.wake.notify_one();
            Redirect::to(&format!("{}/portal/{id}", emulator.base)).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn load_invoice(emulator: &Emulator, id: &str) -> Result<Value, StripeError> {
    let mut w = Work::begin(&emulator.pool, None).await?;
    let invoice = w.fetch("invoice", id, "invoice").await?;
    w.commit().await?;
    Ok(invoice)
}

fn invoice_lines(invoice: &Value) -> Vec<(String, String)> {
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    invoice["lines"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                str_field(l, "description"),
                money(l["amount"].as_i64().unwrap_or_default(), currency),
            )
        })
        .collect()
}

/// `GET /invoices/{id}`: the hosted invoice page.
pub async fn invoice_page(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    let invoice = match load_invoice(&emulator, &id).await {
        Ok(invoice) => invoice,
        Err(e) => return failure(e),
    };
    let currency = invoice["currency"].as_str().unwrap_or("usd").to_owned();
    let number = invoice["number"].as_str().unwrap_or("Draft").to_owned();
    let pdf_url = format!("{}/invoices/{id}/pdf", emulator.base);
    page(
        &format!("Invoice {number}"),
        view! {
            <h1>{format!("Invoice {number}")}</h1>
            <p class="muted">{format!("Issued {} · {}", date(invoice["created"].as_i64().unwrap_or_default()), str_field(&invoice, "status"))}</p>
            <p>{format!("Period: {} – {}", date(invoice["period_start"].as_i64().unwrap_or_default()), date(invoice["period_end"].as_i64().unwrap_or_default()))}</p>
            <table>
                {invoice_lines(&invoice).into_iter().map(|(d, a)| view! { <tr><td>{d}</td><td>{a}</td></tr> }).collect_view()}
                <tr><th>"Total"</th><th>{money(invoice["total"].as_i64().unwrap_or_default(), &currency)}</th></tr>
                <tr><th>"Amount paid"</th><th>{money(invoice["amount_paid"].as_i64().unwrap_or_default(), &currency)}</th></tr>
            </table>
            <p><a href=pdf_url>"Download PDF"</a></p>
        },
    )
    .into_response()
}

/// `GET /invoices/{id}/pdf`
pub async fn invoice_pdf(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    let invoice = match load_invoice(&emulator, &id).await {
        Ok(invoice) => invoice,
        Err(e) => return failure(e),
    };
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let mut lines = vec![
        format!("Invoice {}", invoice["number"].as_str().unwrap_or("Draft")),
        format!(
            "Issued {}",
            date(invoice["created"].as_i64().unwrap_or_default())
        ),
        format!(
            "Billed to {}",
            invoice["customer_email"].as_str().unwrap_or("customer")
        ),
        String::new(),
    ];
    lines.extend(
        invoice_lines(&invoice)
            .into_iter()
            .map(|(d, a)| format!("{d}    {a}")),
    );
    lines.push(String::new());
    lines.push(format!(
        "Total {}",
        money(invoice["total"].as_i64().unwrap_or_default(), currency)
    ));
    lines.push(format!("Status {}", str_field(&invoice, "status")));
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"invoice-{id}.pdf\""),
            ),
        ],
        pdf::text_document(&lines),
    )
        .into_response()
}
