//! `/v1/invoices`: list, retrieve, pay, and the preview of a plan change.

use serde_json::{json, Value};

use super::{created_range, created_within};
use crate::api::Call;
use crate::billing::{add_interval, Engine};
use crate::error::StripeError;
use crate::objects::{self, InvoiceSpec, Line};
use crate::store::{new_id, Filter, Work};
use crate::Emulator;

fn not_emulated(param: &str) -> StripeError {
    StripeError::invalid_request(
        "The emulator does not change subscription quantities; change the price instead.",
        Some(param),
    )
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let customer = call.params.string("customer")?;
    let subscription = call.params.string("subscription")?;
    let status = call.params.one_of(
        "status",
        &["draft", "open", "paid", "uncollectible", "void"],
    )?;
    let created = created_range(&mut call.params)?;
    let items = w
        .all(
            "invoice",
            Filter {
                customer: customer.as_deref(),
                test_clock: None,
            },
        )
        .await?
        .into_iter()
        .filter(|i| {
            subscription
                .as_ref()
                .is_none_or(|s| i["parent"]["subscription_details"]["subscription"] == json!(s))
                && status.as_ref().is_none_or(|st| i["status"] == json!(st))
                && created_within(i, created)
        })
        .collect();
    call.list(items)
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    w.fetch("invoice", &call.id("id"), "invoice").await
}

pub async fn lines(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let invoice = w.fetch("invoice", &call.id("id"), "invoice").await?;
    let items = invoice["lines"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    call.list(items)
}

/// `POST /v1/invoices/{id}/pay`: collect an open invoice now.
pub async fn pay(w: &mut Work, emulator: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let invoice = w.fetch("invoice", &call.id("id"), "invoice").await?;
    let _off_session = call.params.boolean("off_session")?;
    if invoice["status"] != "open" {
        return Err(
            StripeError::invalid_request("Invoice is already paid", None)
                .with_code("invoice_not_open"),
        );
    }
    let now = w.now_for_customer(invoice["customer"].as_str()).await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    let (invoice, decline) = engine.pay_invoice(now, invoice, false).await?;
    match decline {
        None => Ok(invoice),
        Some(d) => Err(StripeError::card(d.code, d.decline_code, d.message)),
    }
}

/// `POST /v1/invoices/create_preview`: what the customer would be charged, for a subscription's
/// next invoice or for changing its price now (`subscription_details[items][0][price]`).
pub async fn preview(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let customer_id = p.string("customer")?;
    let sub_id = p.string("subscription")?;
    let Some(sub_id) = sub_id else {
        return Err(StripeError::missing_param("subscription"));
    };
    let sub = w.fetch("subscription", &sub_id, "subscription").await?;
    if let Some(c) = &customer_id {
        if sub["customer"] != json!(c) {
            return Err(StripeError::invalid_request(
                "The subscription does not belong to that customer.",
                Some("subscription"),
            ));
        }
    }
    let mut proration = "create_prorations".to_owned();
    let mut changes: Vec<(usize, Value)> = Vec::new();
    let mut at = None;
    if let Some(mut details) = p.object("subscription_details")? {
        if let Some(b) = details.one_of(
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
        )? {
            proration = b;
        }
        at = details.integer("proration_date")?;
        for (i, mut item) in details.objects("items")?.into_iter().enumerate() {
            let item_id = item.string("id")?;
            let price_id = item.string("price")?;
            if item.has("quantity") {
                return Err(not_emulated(&format!(
                    "subscription_details[items][{i}][quantity]"
                )));
            }
            item.finish()?;
            let index = sub["items"]["data"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .position(|it| item_id.as_ref().is_some_and(|id| it["id"] == json!(id)))
                })
                .ok_or_else(|| {
                    StripeError::missing_param(&format!("subscription_details[items][{i}][id]"))
                })?;
            if let Some(price_id) = price_id {
                let price = w
                    .fetch(
                        "price",
                        &price_id,
                        &format!("subscription_details[items][{i}][price]"),
                    )
                    .await?;
                changes.push((index, price));
            }
        }
        details.finish()?;
    }
    let now = w.now_for_customer(sub["customer"].as_str()).await?;
    let at = at.unwrap_or(now);
    let customer = w
        .fetch(
            "customer",
            sub["customer"].as_str().unwrap_or_default(),
            "customer",
        )
        .await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    let mut after = sub.clone();
    let mut lines: Vec<Line> = engine.pending_lines(&sub_id).await?;
    for (index, price) in &changes {
        let item = after["items"]["data"][*index].clone();
        if proration != "none" && sub["status"] != "trialing" {
            let names = (
                engine.w.price_label(&item["price"]).await?,
                engine.w.price_label(price).await?,
            );
            lines.extend(Engine::proration_lines(
                &after,
                &item,
                price,
                at,
                (&names.0, &names.1),
            ));
        }
        after["items"]["data"][*index]["price"] = price.clone();
    }
    let (_, end) = Engine::period_of(&after);
    let period = if proration == "always_invoice" && !changes.is_empty() {
        (at, end)
    } else {
        let interval = after["items"]["data"][0]["price"]["recurring"]["interval"]
            .as_str()
            .unwrap_or("month")
            .to_owned();
        let count = after["items"]["data"][0]["price"]["recurring"]["interval_count"]
            .as_i64()
            .unwrap_or(1);
        let next = (end, add_interval(end, &interval, count));
        for item in after["items"]["data"].as_array().into_iter().flatten() {
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let label = engine.w.price_label(&item["price"]).await?;
            lines.push(Line {
                amount: item["price"]["unit_amount"].as_i64().unwrap_or_default() * quantity,
                description: format!("{quantity} × {label}"),
                period: next,
                price: Some(item["price"].clone()),
                quantity,
                subscription_item: item["id"].as_str().map(str::to_owned),
                proration: false,
            });
        }
        next
    };
    let mut invoice = objects::invoice(
        now,
        InvoiceSpec {
            id: format!("upcoming_{}", new_id("in")),
            customer: &customer,
            subscription: Some(&after),
            currency: after["currency"].as_str().unwrap_or("usd").to_owned(),
            lines,
            billing_reason: if changes.is_empty() {
                "upcoming"
            } else {
                "subscription_update"
            },
            period,
            base_url: engine.base,
        },
    );
    invoice["hosted_invoice_url"] = Value::Null;
    invoice["invoice_pdf"] = Value::Null;
    invoice["next_payment_attempt"] = json!(if proration == "always_invoice" {
        at
    } else {
        period.0
    });
    Ok(invoice)
}
