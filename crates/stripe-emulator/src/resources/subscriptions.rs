//! `/v1/subscriptions`: create (with a trial and no card, or charged), retrieve, list, update
//! (price with proration, `cancel_at_period_end`, resume), cancel now.

use serde_json::{json, Value};

use super::{created_range, created_within, merge_metadata, metadata_value};
use crate::api::Call;
use crate::billing::{Engine, NewSubscription, PaymentBehavior};
use crate::error::StripeError;
use crate::params::Params;
use crate::store::{str_field, Filter, Work};
use crate::Emulator;

const STATUSES: [&str; 10] = [
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
];
const PRORATION: [&str; 3] = ["always_invoice", "create_prorations", "none"];

fn payment_behavior(p: &mut Params) -> Result<PaymentBehavior, StripeError> {
    Ok(
        match p
            .one_of(
                "payment_behavior",
                &[
                    "allow_incomplete",
                    "default_incomplete",
                    "error_if_incomplete",
                    "pending_if_incomplete",
                ],
            )?
            .as_deref()
        {
            Some("error_if_incomplete") => PaymentBehavior::ErrorIfIncomplete,
            _ => PaymentBehavior::AllowIncomplete,
        },
    )
}

fn missing_payment_method(p: &mut Params) -> Result<String, StripeError> {
    let mut behavior = "create_invoice".to_owned();
    if let Some(mut settings) = p.object("trial_settings")? {
        if let Some(mut end) = settings.object("end_behavior")? {
            if let Some(b) = end.one_of(
                "missing_payment_method",
                &["cancel", "create_invoice", "pause"],
            )? {
                behavior = b;
            }
            end.finish()?;
        }
        settings.finish()?;
    }
    Ok(behavior)
}

pub async fn create(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let customer = p.required_string("customer")?;
    w.fetch("customer", &customer, "customer").await?;
    let now = w.now_for_customer(Some(&customer)).await?;
    let mut items = Vec::new();
    for (i, mut item) in p.objects("items")?.into_iter().enumerate() {
        let price_id = item
            .string("price")?
            .ok_or_else(|| StripeError::missing_param(&format!("items[{i}][price]")))?;
        let price = w
            .fetch("price", &price_id, &format!("items[{i}][price]"))
            .await?;
        let quantity = item.integer("quantity")?.unwrap_or(1);
        item.finish()?;
        items.push((price, quantity));
    }
    let trial_end = match (p.integer("trial_period_days")?, p.string("trial_end")?) {
        (Some(days), _) if days > 0 => Some(now + days * 86_400),
        (_, Some(end)) if end == "now" => None,
        (_, Some(end)) => Some(end.parse::<i64>().map_err(|_| {
            StripeError::invalid_request(
                "Invalid trial_end: must be a timestamp or `now`",
                Some("trial_end"),
            )
        })?),
        _ => None,
    };
    if trial_end.is_some_and(|end| end <= now) {
        return Err(StripeError::invalid_request(
            "trial_end must be in the future.",
            Some("trial_end"),
        ));
    }
    let default_payment_method = p.string("default_payment_method")?;
    if let Some(pm) = &default_payment_method {
        w.fetch("payment_method", pm, "default_payment_method")
            .await?;
    }
    let spec = NewSubscription {
        customer,
        items,
        trial_end,
        default_payment_method,
        metadata: metadata_value(p)?,
        missing_payment_method: missing_payment_method(p)?,
        payment_behavior: payment_behavior(p)?,
        description: p.string("description")?,
    };
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    engine.create_subscription(now, spec).await
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    w.fetch("subscription", &call.id("id"), "id").await
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let customer = call.params.string("customer")?;
    let price = call.params.string("price")?;
    let status = call.params.one_of("status", &STATUSES)?;
    let created = created_range(&mut call.params)?;
    let items = w
        .all(
            "subscription",
            Filter {
                customer: customer.as_deref(),
                test_clock: None,
            },
        )
        .await?
        .into_iter()
        .filter(|s| {
            let st = s["status"].as_str().unwrap_or_default();
            let status_ok = match status.as_deref() {
                None => st != "canceled" && st != "incomplete_expired",
                Some("all") => true,
                Some("ended") => st == "canceled" || st == "incomplete_expired",
                Some(wanted) => st == wanted,
            };
            let price_ok = price.as_ref().is_none_or(|id| {
                s["items"]["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["price"]["id"] == json!(id)))
            });
            status_ok && price_ok && created_within(s, created)
        })
        .collect();
    call.list(items)
}

pub async fn update(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let id = call.id("id");
    let mut sub = w.fetch("subscription", &id, "id").await?;
    if sub["status"] == "canceled" || sub["status"] == "incomplete_expired" {
        return Err(StripeError::invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    let p = &mut call.params;
    let now = w.now_for_customer(sub["customer"].as_str()).await?;
    let proration = p
        .one_of("proration_behavior", &PRORATION)?
        .unwrap_or_else(|| "create_prorations".to_owned());
    let behavior = payment_behavior(p)?;
    let _proration_date = p.integer("proration_date")?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };

    for (i, mut item) in p.objects("items")?.into_iter().enumerate() {
        let item_id = item.string("id")?;
        let price_id = item.string("price")?;
        if item.boolean("deleted")?.unwrap_or(false) {
            return Err(StripeError::invalid_request(
                "The emulator does not remove subscription items; change the price instead.",
                Some(&format!("items[{i}][deleted]")),
            ));
        }
        if item.has("quantity") {
            return Err(StripeError::invalid_request(
                "The emulator does not change subscription quantities; change the price instead.",
                Some(&format!("items[{i}][quantity]")),
            ));
        }
        item.finish()?;
        let index = match &item_id {
            Some(item_id) => sub["items"]["data"]
                .as_array()
                .and_then(|items| items.iter().position(|it| it["id"] == json!(item_id)))
                .ok_or_else(|| StripeError::no_such("subscription item", item_id, &format!("items[{i}][id]")))?,
            None => {
                return Err(StripeError::invalid_request(
                    "The emulator adds no items to existing subscriptions; pass items[0][id] to change a price.",
                    Some(&format!("items[{i}][id]")),
                ))
            }
        };
        if let Some(price_id) = price_id {
            let price = engine
                .w
                .fetch("price", &price_id, &format!("items[{i}][price]"))
                .await?;
            if price["type"] != "recurring" {
                return Err(StripeError::invalid_request(
                    "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                    Some(&format!("items[{i}][price]")),
                ));
            }
            sub = engine
                .change_price(now, sub, index, &price, &proration, behavior)
                .await?;
        }
    }

    let before = sub.clone();
    let mut after = sub.clone();
    if let Some(cancel) = p.boolean("cancel_at_period_end")? {
        Engine::schedule_cancellation(&mut after, cancel, now);
    }
    if p.has("default_payment_method") {
        let pm = p
            .string("default_payment_method")?
            .filter(|s| !s.is_empty());
        if let Some(pm) = &pm {
            engine
                .w
                .fetch("payment_method", pm, "default_payment_method")
                .await?;
        }
        after["default_payment_method"] = json!(pm);
    }
    if p.has("description") {
        after["description"] = json!(p.string("description")?.filter(|s| !s.is_empty()));
    }
    merge_metadata(&mut after, p)?;
    let end_trial_now = match p.string("trial_end")?.as_deref() {
        None => false,
        Some("now") => true,
        // A new end for a running trial (extended or shortened), as Stripe allows.
        Some(ts) => {
            let end: i64 = ts.parse().map_err(|_| {
                StripeError::invalid_request(
                    "Invalid trial_end: must be a timestamp or `now`",
                    Some("trial_end"),
                )
            })?;
            if end <= now {
                return Err(StripeError::invalid_request(
                    "trial_end must be in the future.",
                    Some("trial_end"),
                ));
            }
            if after["status"] != "trialing" {
                return Err(StripeError::invalid_request(
                    "The emulator changes trial_end only while the subscription is trialing.",
                    Some("trial_end"),
                ));
            }
            Engine::set_trial_end(&mut after, end);
            false
        }
    };
    engine
        .w
        .save_and_emit_update(now, "customer.subscription.updated", &before, &after)
        .await?;
    if end_trial_now && after["status"] == "trialing" {
        after["trial_end"] = json!(now);
        engine.w.save(&after).await?;
        after = engine.end_trial(now, after).await?;
    }
    Ok(after)
}

/// `DELETE /v1/subscriptions/{id}`: cancel at once.
pub async fn cancel(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let sub = w.fetch("subscription", &call.id("id"), "id").await?;
    let _invoice_now = call.params.boolean("invoice_now")?;
    let _prorate = call.params.boolean("prorate")?;
    if sub["status"] == "canceled" {
        return Err(StripeError::invalid_request(
            format!("No such subscription: '{}'", str_field(&sub, "id")),
            Some("id"),
        )
        .with_code("resource_missing"));
    }
    let now = w.now_for_customer(sub["customer"].as_str()).await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    engine.cancel(now, sub, "cancellation_requested").await
}

/// `POST /v1/subscriptions/{id}/resume`: a paused subscription starts a new paid period.
pub async fn resume(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let sub = w.fetch("subscription", &call.id("id"), "id").await?;
    let _ = call
        .params
        .one_of("billing_cycle_anchor", &["now", "unchanged"])?;
    let _ = call.params.one_of("proration_behavior", &PRORATION)?;
    if sub["status"] != "paused" {
        return Err(StripeError::invalid_request(
            "Only a paused subscription can be resumed. To undo a scheduled cancellation, update cancel_at_period_end=false.",
            None,
        ));
    }
    let now = w.now_for_customer(sub["customer"].as_str()).await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    let sub = engine.end_trial(now, sub).await?;
    engine
        .w
        .emit(now, "customer.subscription.resumed", &sub, None)
        .await?;
    Ok(sub)
}
