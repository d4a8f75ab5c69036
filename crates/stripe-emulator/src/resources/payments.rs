//! `/v1/payment_intents` (off-session charges of a saved card), `/v1/payment_methods`,
//! `/v1/charges` and `/v1/refunds`.

use serde_json::{json, Value};

use super::metadata_value;
use crate::api::Call;
use crate::billing::Engine;
use crate::cards::Card;
use crate::error::StripeError;
use crate::objects::{self, PaymentSpec};
use crate::store::{Filter, Work};
use crate::Emulator;

pub async fn create_intent(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let amount = p
        .integer("amount")?
        .ok_or_else(|| StripeError::missing_param("amount"))?;
    if amount < 50 {
        return Err(StripeError::invalid_request(
            "Amount must be at least $0.50 usd",
            Some("amount"),
        )
        .with_code("amount_too_small"));
    }
    let currency = p.required_string("currency")?.to_lowercase();
    let customer = p.string("customer")?;
    if let Some(c) = &customer {
        w.fetch("customer", c, "customer").await?;
    }
    let payment_method = p.string("payment_method")?;
    if let Some(pm) = &payment_method {
        let method = w.fetch("payment_method", pm, "payment_method").await?;
        if customer.is_some() && method["customer"] != json!(customer) {
            return Err(StripeError::invalid_request(
                "The provided PaymentMethod does not belong to this customer.",
                Some("payment_method"),
            ));
        }
    }
    let confirm = p.boolean("confirm")?.unwrap_or(false);
    let off_session = p.boolean("off_session")?.unwrap_or(false);
    let description = p.string("description")?;
    let metadata = metadata_value(p)?;
    let types = p.strings("payment_method_types")?;
    if types.iter().any(|t| t != "card") {
        return Err(StripeError::invalid_request(
            "The emulator only offers card payments.",
            Some("payment_method_types"),
        ));
    }
    if let Some(mut auto) = p.object("automatic_payment_methods")? {
        let _ = auto.boolean("enabled")?;
        let _ = auto.one_of("allow_redirects", &["always", "never"])?;
        auto.finish()?;
    }
    let now = w.now_for_customer(customer.as_deref()).await?;
    let spec = PaymentSpec {
        amount,
        currency: &currency,
        customer: customer.as_deref(),
        payment_method: payment_method.as_deref(),
        description,
        metadata,
    };
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    if !confirm {
        let mut intent = objects::payment_intent(now, &spec);
        intent["status"] = json!(if payment_method.is_some() {
            "requires_confirmation"
        } else {
            "requires_payment_method"
        });
        engine.w.insert(&intent).await?;
        engine
            .w
            .emit(now, "payment_intent.created", &intent, None)
            .await?;
        return Ok(intent);
    }
    let (intent, outcome) = engine.charge(now, spec, off_session).await?;
    finish_confirmation(intent, outcome)
}

fn finish_confirmation(
    intent: Value,
    outcome: Result<(), crate::cards::Decline>,
) -> Result<Value, StripeError> {
    match outcome {
        Ok(()) => Ok(intent),
        Err(d) => Err(StripeError::card(d.code, d.decline_code, d.message)
            .with_extra("payment_intent", intent.clone())
            .with_extra("charge", intent["latest_charge"].clone())
            .with_extra(
                "payment_method",
                intent["last_payment_error"]["payment_method"].clone(),
            )),
    }
}

pub async fn confirm_intent(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let mut intent = w.fetch("payment_intent", &call.id("id"), "intent").await?;
    if let Some(pm) = call.params.string("payment_method")? {
        w.fetch("payment_method", &pm, "payment_method").await?;
        intent["payment_method"] = json!(pm);
    }
    let off_session = call.params.boolean("off_session")?.unwrap_or(false);
    if intent["status"] == "succeeded" {
        return Err(StripeError::invalid_request(
            "You cannot confirm this PaymentIntent because it has a status of succeeded.",
            None,
        )
        .with_code("payment_intent_unexpected_state"));
    }
    let now = w.now_for_customer(intent["customer"].as_str()).await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    let (intent, outcome) = engine.confirm(now, intent, off_session).await?;
    finish_confirmation(intent, outcome)
}

pub async fn retrieve_intent(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let _client_secret = call.params.string("client_secret")?;
    w.fetch("payment_intent", &call.id("id"), "intent").await
}

pub async fn retrieve_method(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    w.fetch("payment_method", &call.id("id"), "payment_method")
        .await
}

/// `POST /v1/payment_methods/{id}/attach`. Besides real ids, accepts Stripe's test tokens
/// (`pm_card_visa`, `pm_card_chargeCustomerFail`, ...), each attaching a new card.
pub async fn attach_method(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let id = call.id("id");
    let customer = call.params.required_string("customer")?;
    w.fetch("customer", &customer, "customer").await?;
    let now = w.now_for_customer(Some(&customer)).await?;
    if let Some(card) = Card::from_test_token(&id) {
        let mut engine = Engine {
            w,
            base: &emulator.base,
        };
        return engine.attach_card(now, &customer, &card).await;
    }
    let before = w.fetch("payment_method", &id, "payment_method").await?;
    if !before["customer"].is_null() && before["customer"] != json!(customer) {
        return Err(StripeError::invalid_request(
            "The payment method you provided has already been attached to a customer.",
            None,
        ));
    }
    let mut after = before.clone();
    after["customer"] = json!(customer);
    w.save(&after).await?;
    w.emit(now, "payment_method.attached", &after, None).await?;
    Ok(after)
}

pub async fn detach_method(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let before = w
        .fetch("payment_method", &call.id("id"), "payment_method")
        .await?;
    let now = w.now_for_customer(before["customer"].as_str()).await?;
    let mut after = before.clone();
    after["customer"] = Value::Null;
    w.save(&after).await?;
    w.emit(now, "payment_method.detached", &after, None).await?;
    Ok(after)
}

pub async fn list_customer_methods(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let customer = call.id("id");
    methods_of(w, call, customer).await
}

/// `GET /v1/payment_methods?customer=...`
pub async fn list_methods(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let customer = call.params.required_string("customer")?;
    methods_of(w, call, customer).await
}

async fn methods_of(w: &mut Work, call: &mut Call, customer: String) -> Result<Value, StripeError> {
    w.fetch("customer", &customer, "customer").await?;
    let _ = call.params.one_of("type", &["card"])?;
    let items = w
        .all(
            "payment_method",
            Filter {
                customer: Some(&customer),
                test_clock: None,
            },
        )
        .await?
        .into_iter()
        .filter(|m| m["customer"] == json!(customer))
        .collect();
    call.list(items)
}

pub async fn retrieve_charge(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    w.fetch("charge", &call.id("id"), "charge").await
}

/// `POST /v1/refunds`: refunds all or part of a charge and emits `charge.refunded`.
pub async fn create_refund(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let charge_id = match (p.string("charge")?, p.string("payment_intent")?) {
        (Some(charge), _) => charge,
        (None, Some(intent)) => {
            let intent = w.fetch("payment_intent", &intent, "payment_intent").await?;
            intent["latest_charge"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    StripeError::invalid_request(
                        "This PaymentIntent has no charge to refund.",
                        Some("payment_intent"),
                    )
                })?
        }
        (None, None) => return Err(StripeError::missing_param("charge")),
    };
    let before = w.fetch("charge", &charge_id, "charge").await?;
    if before["status"] != "succeeded" {
        return Err(StripeError::invalid_request(
            "This charge did not succeed and cannot be refunded.",
            Some("charge"),
        ));
    }
    let captured = before["amount_captured"].as_i64().unwrap_or_default();
    let refunded = before["amount_refunded"].as_i64().unwrap_or_default();
    let amount = p.integer("amount")?.unwrap_or(captured - refunded);
    if amount <= 0 || amount > captured - refunded {
        return Err(StripeError::invalid_request(
            format!(
                "Refund amount (${:.2}) is greater than unrefunded amount on charge (${:.2})",
                amount as f64 / 100.0,
                (captured - refunded) as f64 / 100.0
            ),
            Some("amount"),
        )
        .with_code(if refunded == captured {
            "charge_already_refunded"
        } else {
            "amount_too_large"
        }));
    }
    let reason = p.one_of(
        "reason",
        &["duplicate", "fraudulent", "requested_by_customer"],
    )?;
    let metadata = metadata_value(p)?;
    let now = w.now_for_customer(before["customer"].as_str()).await?;
    let refund = objects::refund(now, &before, amount, reason, metadata);
    w.insert(&refund).await?;
    let mut after = before.clone();
    after["amount_refunded"] = json!(refunded + amount);
    after["refunded"] = json!(refunded + amount == captured);
    w.save_and_emit_update(now, "charge.refunded", &before, &after)
        .await?;
    w.emit(now, "refund.created", &refund, None).await?;
    Ok(refund)
}

pub async fn retrieve_refund(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    w.fetch("refund", &call.id("id"), "refund").await
}
