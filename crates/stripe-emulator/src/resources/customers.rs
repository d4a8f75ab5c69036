//! `/v1/customers`

use serde_json::{json, Value};

use super::{merge_metadata, metadata_value};
use crate::api::Call;
use crate::error::StripeError;
use crate::objects;
use crate::store::{Filter, Work};
use crate::Emulator;

pub async fn create(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let email = p.string("email")?;
    let name = p.string("name")?;
    let description = p.string("description")?;
    let metadata = metadata_value(p)?;
    let test_clock = p.string("test_clock")?;
    if let Some(clock) = &test_clock {
        w.fetch("test_helpers.test_clock", clock, "test_clock")
            .await?;
    }
    let default_pm = match p.object("invoice_settings")? {
        Some(mut settings) => {
            let pm = settings.string("default_payment_method")?;
            settings.finish()?;
            pm
        }
        None => None,
    };
    let now = w.now_on(test_clock.as_deref()).await?;
    let mut customer = objects::customer(now, email, name, description, metadata, test_clock);
    if let Some(pm) = default_pm {
        w.fetch(
            "payment_method",
            &pm,
            "invoice_settings[default_payment_method]",
        )
        .await?;
        customer["invoice_settings"]["default_payment_method"] = json!(pm);
    }
    w.insert(&customer).await?;
    w.emit(now, "customer.created", &customer, None).await?;
    Ok(customer)
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let customer = w.fetch("customer", &call.id("id"), "id").await?;
    // A deleted customer is still found, as the stub Stripe answers with.
    if customer["deleted"] == true {
        return Ok(json!({ "id": customer["id"], "object": "customer", "deleted": true }));
    }
    Ok(customer)
}

pub async fn update(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let before = w.fetch("customer", &id, "id").await?;
    let mut after = before.clone();
    let p = &mut call.params;
    for key in ["email", "name", "description", "phone"] {
        if p.has(key) {
            let value = p.string(key)?.filter(|s| !s.is_empty());
            after[key] = json!(value);
        }
    }
    merge_metadata(&mut after, p)?;
    if let Some(mut settings) = p.object("invoice_settings")? {
        if settings.has("default_payment_method") {
            let pm = settings
                .string("default_payment_method")?
                .filter(|s| !s.is_empty());
            if let Some(pm) = &pm {
                let method = w
                    .fetch(
                        "payment_method",
                        pm,
                        "invoice_settings[default_payment_method]",
                    )
                    .await?;
                if method["customer"] != json!(id) {
                    return Err(StripeError::invalid_request(
                        format!(
                            "The payment method `{pm}` must be attached to customer `{id}` first."
                        ),
                        Some("invoice_settings[default_payment_method]"),
                    ));
                }
            }
            after["invoice_settings"]["default_payment_method"] = json!(pm);
        }
        settings.finish()?;
    }
    let now = w.now_for_customer(Some(&id)).await?;
    w.save_and_emit_update(now, "customer.updated", &before, &after)
        .await?;
    Ok(after)
}

pub async fn delete(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let customer = w.fetch("customer", &id, "id").await?;
    let now = w.now_for_customer(Some(&id)).await?;
    let mut gone = customer.clone();
    gone["deleted"] = json!(true);
    w.save(&gone).await?;
    w.emit(now, "customer.deleted", &customer, None).await?;
    Ok(json!({ "id": id, "object": "customer", "deleted": true }))
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let email = call.params.string("email")?;
    let test_clock = call.params.string("test_clock")?;
    let items = w
        .all(
            "customer",
            Filter {
                customer: None,
                test_clock: test_clock.as_deref(),
            },
        )
        .await?
        .into_iter()
        .filter(|c| c["deleted"] != true)
        .filter(|c| email.as_ref().is_none_or(|e| c["email"] == json!(e)))
        .collect();
    call.list(items)
}
