//! `/v1/checkout/sessions` (subscription and payment modes) and what happens when the customer
//! pays on the hosted page.

use serde_json::{json, Value};

use super::metadata_value;
use crate::api::Call;
use crate::billing::{Engine, NewSubscription, PaymentBehavior};
use crate::cards::{Behaviour, Card};
use crate::error::StripeError;
use crate::objects::{self, PaymentSpec, PriceSpec};
use crate::store::{new_id, str_field, Work};
use crate::Emulator;

/// Sessions stay open this long unless `expires_at` says otherwise (Stripe's default).
const DEFAULT_LIFETIME: i64 = 24 * 3600;

pub async fn create(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let mode = p
        .one_of("mode", &["payment", "subscription"])?
        .ok_or_else(|| StripeError::missing_param("mode"))?;
    let success_url = p.required_url("success_url")?;
    let cancel_url = p.url("cancel_url")?;
    let customer = p.string("customer")?;
    let customer_email = p.string("customer_email")?;
    if customer.is_some() && customer_email.is_some() {
        return Err(StripeError::invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
            Some("customer_email"),
        ));
    }
    if let Some(id) = &customer {
        w.fetch("customer", id, "customer").await?;
    }
    let client_reference_id = p.string("client_reference_id")?;
    let metadata = metadata_value(p)?;
    let collection = p
        .one_of("payment_method_collection", &["always", "if_required"])?
        .unwrap_or_else(|| "always".to_owned());
    let _locale = p.string("locale")?;
    let _promotions = p.boolean("allow_promotion_codes")?;
    let types = p.strings("payment_method_types")?;
    if types.iter().any(|t| t != "card") {
        return Err(StripeError::invalid_request(
            "The emulator only offers card payments.",
            Some("payment_method_types"),
        ));
    }
    let now = w.now_for_customer(customer.as_deref()).await?;
    let expires_at = p.integer("expires_at")?.unwrap_or(now + DEFAULT_LIFETIME);
    if expires_at < now + 1800 || expires_at > now + DEFAULT_LIFETIME {
        return Err(StripeError::invalid_request(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
            Some("expires_at"),
        ));
    }

    let mut items = Vec::new();
    for (i, mut item) in p.objects("line_items")?.into_iter().enumerate() {
        let quantity = item.integer("quantity")?.unwrap_or(1);
        if quantity < 1 {
            return Err(StripeError::invalid_request(
                "Quantity must be at least 1.",
                Some(&format!("line_items[{i}][quantity]")),
            ));
        }
        let price = match (item.string("price")?, item.object("price_data")?) {
            (Some(id), None) => {
                let price = w
                    .fetch("price", &id, &format!("line_items[{i}][price]"))
                    .await?;
                if price["active"] != true {
                    return Err(StripeError::invalid_request(
                        format!("The price `{id}` is not active."),
                        Some(&format!("line_items[{i}][price]")),
                    ));
                }
                price
            }
            (None, Some(mut data)) => {
                let currency = data.required_string("currency")?.to_lowercase();
                let unit_amount = data.integer("unit_amount")?.ok_or_else(|| {
                    StripeError::missing_param(&format!("line_items[{i}][price_data][unit_amount]"))
                })?;
                let recurring = super::catalog::recurring(&mut data)?;
                let product = match (data.string("product")?, data.object("product_data")?) {
                    (Some(id), _) => id,
                    (None, Some(mut pd)) => {
                        let name = pd.required_string("name")?;
                        let description = pd.string("description")?;
                        let pm = metadata_value(&mut pd)?;
                        pd.finish()?;
                        let product = objects::product(now, &name, description, pm, true);
                        w.insert(&product).await?;
                        str_field(&product, "id")
                    }
                    (None, None) => {
                        return Err(StripeError::missing_param(&format!(
                            "line_items[{i}][price_data][product]"
                        )))
                    }
                };
                data.finish()?;
                let price = objects::price(
                    now,
                    PriceSpec {
                        product,
                        currency,
                        unit_amount,
                        recurring,
                        lookup_key: None,
                        nickname: None,
                        metadata: json!({}),
                        active: false,
                    },
                );
                w.insert(&price).await?;
                price
            }
            _ => {
                return Err(StripeError::missing_param(&format!(
                    "line_items[{i}][price]"
                )))
            }
        };
        item.finish()?;
        let recurring = price["type"] == "recurring";
        if mode == "subscription" && !recurring {
            return Err(StripeError::invalid_request(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                Some(&format!("line_items[{i}][price]")),
            ));
        }
        if mode == "payment" && recurring {
            return Err(StripeError::invalid_request(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
                Some(&format!("line_items[{i}][price]")),
            ));
        }
        let name = w.price_label(&price).await?;
        items.push(json!({ "price": price, "quantity": quantity, "name": name }));
    }
    if items.is_empty() {
        return Err(StripeError::missing_param("line_items"));
    }
    let currency = items[0]["price"]["currency"].clone();

    let mut private = json!({ "line_items": items });
    if let Some(mut data) = p.object("subscription_data")? {
        if mode != "subscription" {
            return Err(StripeError::invalid_request(
                "subscription_data can only be used in `subscription` mode.",
                Some("subscription_data"),
            ));
        }
        if let Some(days) = data.integer("trial_period_days")? {
            if !(1..=730).contains(&days) {
                return Err(StripeError::invalid_request(
                    "trial_period_days must be between 1 and 730.",
                    Some("subscription_data[trial_period_days]"),
                ));
            }
            // Counted from when the subscription starts (at payment), as Stripe does.
            private["trial_days"] = json!(days);
        }
        if let Some(end) = data.integer("trial_end")? {
            private["trial_end"] = json!(end);
        }
        private["subscription_metadata"] = metadata_value(&mut data)?;
        private["description"] = json!(data.string("description")?);
        if let Some(mut settings) = data.object("trial_settings")? {
            if let Some(mut end) = settings.object("end_behavior")? {
                private["missing_payment_method"] = json!(end.one_of(
                    "missing_payment_method",
                    &["cancel", "create_invoice", "pause"]
                )?);
                end.finish()?;
            }
            settings.finish()?;
        }
        data.finish()?;
    }
    if let Some(mut data) = p.object("payment_intent_data")? {
        if mode != "payment" {
            return Err(StripeError::invalid_request(
                "payment_intent_data can only be used in `payment` mode.",
                Some("payment_intent_data"),
            ));
        }
        private["payment_intent_metadata"] = metadata_value(&mut data)?;
        private["payment_intent_description"] = json!(data.string("description")?);
        // The emulator saves every card a customer pays with, so this only needs to be valid.
        private["setup_future_usage"] =
            json!(data.one_of("setup_future_usage", &["off_session", "on_session"])?);
        data.finish()?;
    }
    let trial = !private["trial_end"].is_null() || !private["trial_days"].is_null();
    if collection == "if_required" && (mode != "subscription" || !trial) {
        return Err(StripeError::invalid_request(
            "payment_method_collection=if_required is only supported for subscriptions that do not require payment up front (such as free trials).",
            Some("payment_method_collection"),
        ));
    }

    let subtotal: i64 = items
        .iter()
        .map(|i| {
            i["price"]["unit_amount"].as_i64().unwrap_or_default()
                * i["quantity"].as_i64().unwrap_or(1)
        })
        .sum();
    let total = if trial { 0 } else { subtotal };
    let id = format!("cs_test_{}", &new_id("x")[2..]);
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": now,
        "currency": currency,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": customer,
        "customer_creation": if customer.is_some() { Value::Null } else { json!("always") },
        "customer_details": customer_email.as_ref().map(|e| json!({ "address": null, "email": e, "name": null, "phone": null, "tax_exempt": "none", "tax_ids": [] })),
        "customer_email": customer_email,
        "expires_at": expires_at,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "metadata": metadata,
        "mode": mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": collection,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        "url": format!("{}/checkout/{id}", emulator.base),
    });
    w.insert(&session).await?;
    w.set_private(&id, &private).await?;
    Ok(session)
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    w.fetch("checkout.session", &call.id("id"), "session").await
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let customer = call.params.string("customer")?;
    let status = call
        .params
        .one_of("status", &["open", "complete", "expired"])?;
    let subscription = call.params.string("subscription")?;
    let payment_intent = call.params.string("payment_intent")?;
    let items = w
        .all("checkout.session", Default::default())
        .await?
        .into_iter()
        .filter(|s| {
            customer.as_ref().is_none_or(|c| s["customer"] == json!(c))
                && status.as_ref().is_none_or(|st| s["status"] == json!(st))
                && subscription
                    .as_ref()
                    .is_none_or(|x| s["subscription"] == json!(x))
                && payment_intent
                    .as_ref()
                    .is_none_or(|x| s["payment_intent"] == json!(x))
        })
        .collect();
    call.list(items)
}

pub async fn line_items(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let session = w.fetch("checkout.session", &id, "session").await?;
    let private = w.private(&id).await?;
    let items: Vec<Value> = private["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| {
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let amount = item["price"]["unit_amount"].as_i64().unwrap_or_default() * quantity;
            json!({
                "id": format!("li_{}_{i}", &id[8..]),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": session["currency"],
                "description": item["name"].as_str().unwrap_or("Item"),
                "price": item["price"],
                "quantity": quantity,
            })
        })
        .collect();
    call.url = format!("/v1/checkout/sessions/{id}/line_items");
    call.list(items)
}

pub async fn expire(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let before = w.fetch("checkout.session", &id, "session").await?;
    if before["status"] != "open" {
        return Err(StripeError::invalid_request(
            format!("Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".", str_field(&before, "status")),
            None,
        ));
    }
    let mut after = before.clone();
    after["status"] = json!("expired");
    let now = w.now_for_customer(before["customer"].as_str()).await?;
    w.save(&after).await?;
    w.emit(now, "checkout.session.expired", &after, None)
        .await?;
    Ok(after)
}

/// Why the hosted page could not complete the session.
pub enum PayError {
    /// Show this to the customer and let them try again (nothing was kept).
    Declined(String),
    /// The card asks for the extra confirmation step.
    NeedsAuthentication,
    /// The session is no longer open.
    Closed,
    Internal(StripeError),
}

impl From<StripeError> for PayError {
    fn from(e: StripeError) -> Self {
        if e.kind == "card_error" {
            PayError::Declined(e.message)
        } else {
            PayError::Internal(e)
        }
    }
}

/// What the customer submitted on the hosted page.
pub struct Submission {
    pub email: Option<String>,
    pub name: Option<String>,
    pub card: Option<Card>,
    /// `Some(true)` when they completed the authentication step, `Some(false)` when they failed it.
    pub authenticated: Option<bool>,
}

/// Completes a session as Stripe does when the customer pays: the customer, the saved card,
/// the subscription (or the payment), then `checkout.session.completed`. Returns where to send
/// the browser. Errors leave the caller to roll back.
pub async fn complete(
    w: &mut Work,
    base: &str,
    id: &str,
    submission: Submission,
) -> Result<String, PayError> {
    let before = w.fetch("checkout.session", id, "session").await?;
    if before["status"] != "open" {
        return Err(PayError::Closed);
    }
    let private = w.private(id).await?;
    let explicit_trial_end = private["trial_end"].as_i64();
    let trial_days = private["trial_days"].as_i64();
    let has_trial = explicit_trial_end.is_some() || trial_days.is_some();
    if let Some(card) = &submission.card {
        if card.behaviour() == Behaviour::RequiresAuthentication {
            match submission.authenticated {
                None => return Err(PayError::NeedsAuthentication),
                Some(false) => {
                    return Err(PayError::Declined(
                        "We are unable to authenticate your payment method. Please choose a different payment method and try again.".into(),
                    ))
                }
                Some(true) => {}
            }
        }
    } else if !(before["payment_method_collection"] == "if_required" && has_trial) {
        return Err(PayError::Declined("Enter your card details.".into()));
    }
    let mut engine = Engine { w, base };
    let customer_id = match before["customer"].as_str() {
        Some(id) => id.to_owned(),
        None => {
            let email = submission
                .email
                .clone()
                .or_else(|| before["customer_email"].as_str().map(str::to_owned));
            let now = engine.w.global_now();
            let customer =
                objects::customer(now, email, submission.name.clone(), None, json!({}), None);
            engine.w.insert(&customer).await?;
            engine
                .w
                .emit(now, "customer.created", &customer, None)
                .await?;
            str_field(&customer, "id")
        }
    };
    let now = engine.w.now_for_customer(Some(&customer_id)).await?;
    let trial_end = explicit_trial_end.or(trial_days.map(|days| now + days * 86_400));
    let pm = match &submission.card {
        Some(card) => {
            let pm = engine.attach_card(now, &customer_id, card).await?;
            let pm_id = str_field(&pm, "id");
            engine
                .set_default_payment_method(now, &customer_id, &pm_id)
                .await?;
            Some(pm_id)
        }
        None => None,
    };
    let mut after = before.clone();
    after["customer"] = json!(customer_id);
    let customer = engine.w.fetch("customer", &customer_id, "customer").await?;
    after["customer_details"] = json!({
        "address": null,
        "email": customer["email"],
        "name": customer["name"],
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": [],
    });
    let items: Vec<(Value, i64)> = private["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (i["price"].clone(), i["quantity"].as_i64().unwrap_or(1)))
        .collect();
    if before["mode"] == "subscription" {
        let sub = engine
            .create_subscription(
                now,
                NewSubscription {
                    customer: customer_id.clone(),
                    items,
                    trial_end,
                    default_payment_method: pm,
                    metadata: if private["subscription_metadata"].is_object() {
                        private["subscription_metadata"].clone()
                    } else {
                        json!({})
                    },
                    missing_payment_method: private["missing_payment_method"]
                        .as_str()
                        .unwrap_or("create_invoice")
                        .to_owned(),
                    payment_behavior: PaymentBehavior::ErrorIfIncomplete,
                    description: private["description"].as_str().map(str::to_owned),
                },
            )
            .await?;
        after["subscription"] = sub["id"].clone();
        after["invoice"] = sub["latest_invoice"].clone();
        after["payment_status"] = json!(if trial_end.is_some() {
            "no_payment_required"
        } else {
            "paid"
        });
    } else {
        let amount = before["amount_total"].as_i64().unwrap_or_default();
        let currency = str_field(&before, "currency");
        let (intent, outcome) = engine
            .charge(
                now,
                PaymentSpec {
                    amount,
                    currency: &currency,
                    customer: Some(&customer_id),
                    payment_method: pm.as_deref(),
                    description: private["payment_intent_description"]
                        .as_str()
                        .map(str::to_owned),
                    metadata: if private["payment_intent_metadata"].is_object() {
                        private["payment_intent_metadata"].clone()
                    } else {
                        json!({})
                    },
                },
                false,
            )
            .await?;
        if let Err(decline) = outcome {
            return Err(PayError::Declined(decline.message.to_owned()));
        }
        after["payment_intent"] = intent["id"].clone();
        after["payment_status"] = json!("paid");
    }
    after["status"] = json!("complete");
    engine.w.save(&after).await?;
    engine
        .w
        .emit(now, "checkout.session.completed", &after, None)
        .await?;
    Ok(str_field(&after, "success_url").replace("{CHECKOUT_SESSION_ID}", id))
}
