//! Stripe objects in the wire shape of the pinned API version: every field async-stripe requires,
//! the rest as Stripe sends them (mostly null). Builders only; the billing engine changes them.

use serde_json::{json, Value};

use super::store::new_id;

pub fn customer(
    now: i64,
    email: Option<String>,
    name: Option<String>,
    description: Option<String>,
    metadata: Value,
    test_clock: Option<String>,
) -> Value {
    let id = new_id("cus");
    let prefix: String = id[4..12].to_uppercase();
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": now,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": description,
        "discount": null,
        "email": email,
        "invoice_prefix": prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null,
        },
        "livemode": false,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": test_clock,
    })
}

pub fn product(
    now: i64,
    name: &str,
    description: Option<String>,
    metadata: Value,
    active: bool,
) -> Value {
    json!({
        "id": new_id("prod"),
        "object": "product",
        "active": active,
        "created": now,
        "default_price": null,
        "description": description,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": now,
        "url": null,
    })
}

/// A recurring interval: `month`, `year`, `week` or `day`, and how many of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurring {
    pub interval: String,
    pub interval_count: i64,
}

pub struct PriceSpec {
    pub product: String,
    pub currency: String,
    pub unit_amount: i64,
    pub recurring: Option<Recurring>,
    pub lookup_key: Option<String>,
    pub nickname: Option<String>,
    pub metadata: Value,
    pub active: bool,
}

pub fn price(now: i64, spec: PriceSpec) -> Value {
    let recurring = spec.recurring.as_ref().map(|r| {
        json!({
            "interval": r.interval,
            "interval_count": r.interval_count,
            "meter": null,
            "trial_period_days": null,
            "usage_type": "licensed",
        })
    });
    json!({
        "id": new_id("price"),
        "object": "price",
        "active": spec.active,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": spec.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": spec.lookup_key,
        "metadata": spec.metadata,
        "nickname": spec.nickname,
        "product": spec.product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if spec.recurring.is_some() { "recurring" } else { "one_time" },
        "unit_amount": spec.unit_amount,
        "unit_amount_decimal": spec.unit_amount.to_string(),
    })
}

/// The legacy `plan` view of a recurring price, which subscription items still carry.
pub fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": null,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": "licensed",
    })
}

pub fn subscription_item(
    now: i64,
    subscription: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
) -> Value {
    json!({
        "id": new_id("si"),
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": now,
        "current_period_end": period.1,
        "current_period_start": period.0,
        "discounts": [],
        "metadata": {},
        "plan": plan_of(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    })
}

pub struct SubscriptionSpec {
    pub id: String,
    pub customer: String,
    pub currency: String,
    pub items: Vec<Value>,
    pub status: &'static str,
    pub trial: Option<(i64, i64)>,
    pub default_payment_method: Option<String>,
    pub metadata: Value,
    pub missing_payment_method: String,
    pub test_clock: Option<String>,
    pub description: Option<String>,
}

pub fn subscription(now: i64, spec: SubscriptionSpec) -> Value {
    let items_url = format!("/v1/subscription_items?subscription={}", spec.id);
    json!({
        "id": spec.id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic" },
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": now,
        "currency": spec.currency,
        "customer": spec.customer,
        "days_until_due": null,
        "default_payment_method": spec.default_payment_method,
        "default_source": null,
        "default_tax_rates": [],
        "description": spec.description,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": { "object": "list", "data": spec.items, "has_more": false, "url": items_url },
        "latest_invoice": null,
        "livemode": false,
        "metadata": spec.metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": now,
        "status": spec.status,
        "test_clock": spec.test_clock,
        "transfer_data": null,
        "trial_end": spec.trial.map(|t| t.1),
        "trial_settings": { "end_behavior": { "missing_payment_method": spec.missing_payment_method } },
        "trial_start": spec.trial.map(|t| t.0),
    })
}

/// One line of an invoice.
#[derive(Debug, Clone)]
pub struct Line {
    pub amount: i64,
    pub description: String,
    pub period: (i64, i64),
    pub price: Option<Value>,
    pub quantity: i64,
    pub subscription_item: Option<String>,
    pub proration: bool,
}

pub fn line_item(invoice: &str, currency: &str, subscription: Option<&str>, line: &Line) -> Value {
    let parent = line.subscription_item.as_ref().map(|item| {
        json!({
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": line.proration,
                "proration_details": { "credited_items": null },
                "subscription": subscription,
                "subscription_item": item,
            },
        })
    });
    let pricing = line.price.as_ref().map(|price| {
        json!({
            "type": "price_details",
            "price_details": { "price": price["id"], "product": price["product"] },
            "unit_amount_decimal": price["unit_amount_decimal"],
        })
    });
    json!({
        "id": new_id("il"),
        "object": "line_item",
        "amount": line.amount,
        "currency": currency,
        "description": line.description,
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": invoice,
        "livemode": false,
        "metadata": {},
        "parent": parent,
        "period": { "start": line.period.0, "end": line.period.1 },
        "pretax_credit_amounts": [],
        "pricing": pricing,
        "quantity": line.quantity,
        "subtotal": line.amount,
        "taxes": [],
    })
}

pub struct InvoiceSpec<'a> {
    pub id: String,
    pub customer: &'a Value,
    pub subscription: Option<&'a Value>,
    pub currency: String,
    pub lines: Vec<Line>,
    pub billing_reason: &'static str,
    pub period: (i64, i64),
    pub base_url: &'a str,
}

pub fn invoice(now: i64, spec: InvoiceSpec<'_>) -> Value {
    let subscription_id = spec.subscription.and_then(|s| s["id"].as_str());
    let lines: Vec<Value> = spec
        .lines
        .iter()
        .map(|l| line_item(&spec.id, &spec.currency, subscription_id, l))
        .collect();
    let total: i64 = spec.lines.iter().map(|l| l.amount).sum();
    let parent = spec.subscription.map(|s| {
        json!({
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": s["metadata"], "subscription": s["id"] },
        })
    });
    let lines_url = format!("/v1/invoices/{}/lines", spec.id);
    json!({
        "id": spec.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stripe emulator",
        "account_tax_ids": null,
        "amount_due": total.max(0),
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total.max(0),
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_reason": spec.billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": spec.currency,
        "custom_fields": null,
        "customer": spec.customer["id"],
        "customer_address": null,
        "customer_email": spec.customer["email"],
        "customer_name": spec.customer["name"],
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": null,
        "ending_balance": null,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": format!("{}/invoices/{}", spec.base_url, spec.id),
        "invoice_pdf": format!("{}/invoices/{}/pdf", spec.base_url, spec.id),
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": { "object": "list", "data": lines, "has_more": false, "url": lines_url },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "on_behalf_of": null,
        "parent": parent,
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": spec.period.1,
        "period_start": spec.period.0,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": spec.customer["test_clock"],
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": now,
    })
}

pub fn payment_method(now: i64, customer: Option<&str>, card: &super::cards::Card) -> Value {
    json!({
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": { "address": null, "email": null, "name": null, "phone": null, "tax_id": null },
        "card": {
            "brand": card.brand,
            "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint(),
            "funding": "credit",
            "generated_from": null,
            "last4": card.last4(),
            "networks": { "available": [card.brand], "preferred": null },
            "regulated_status": "unregulated",
            "three_d_secure_usage": { "supported": true },
            "wallet": null,
        },
        "created": now,
        "customer": customer,
        "livemode": false,
        "metadata": {},
        "type": "card",
    })
}

pub struct PaymentSpec<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub payment_method: Option<&'a str>,
    pub description: Option<String>,
    pub metadata: Value,
}

pub fn payment_intent(now: i64, spec: &PaymentSpec<'_>) -> Value {
    let id = new_id("pi");
    let secret = format!("{id}_secret_{}", &new_id("x")[2..]);
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": spec.amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": secret,
        "confirmation_method": "automatic",
        "created": now,
        "currency": spec.currency,
        "customer": spec.customer,
        "description": spec.description,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": spec.metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": spec.payment_method,
        "payment_method_configuration_details": null,
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "requires_confirmation",
        "transfer_data": null,
        "transfer_group": null,
    })
}

pub fn charge(now: i64, intent: &Value, succeeded: bool, failure: Option<(&str, &str)>) -> Value {
    let amount = intent["amount"].as_i64().unwrap_or_default();
    json!({
        "id": new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": if succeeded { amount } else { 0 },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": null,
        "billing_details": { "address": null, "email": null, "name": null, "phone": null, "tax_id": null },
        "calculated_statement_descriptor": "EMULATOR",
        "captured": succeeded,
        "created": now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": failure.map(|f| f.0),
        "failure_message": failure.map(|f| f.1),
        "fraud_details": {},
        "livemode": false,
        "metadata": intent["metadata"],
        "on_behalf_of": null,
        "outcome": null,
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": false,
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if succeeded { "succeeded" } else { "failed" },
        "transfer_data": null,
        "transfer_group": null,
    })
}

pub fn refund(
    now: i64,
    charge: &Value,
    amount: i64,
    reason: Option<String>,
    metadata: Value,
) -> Value {
    json!({
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "destination_details": null,
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    })
}

pub fn test_clock(now: i64, frozen_time: i64, name: Option<String>) -> Value {
    json!({
        "id": new_id("clock"),
        "object": "test_helpers.test_clock",
        "created": now,
        "deletes_after": frozen_time + 30 * 86_400,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": name,
        "status": "ready",
        "status_details": {},
    })
}

pub fn portal_session(
    now: i64,
    customer: &str,
    return_url: Option<String>,
    base_url: &str,
) -> Value {
    let id = new_id("bps");
    json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": "bpc_emulator_default",
        "created": now,
        "customer": customer,
        "flow": null,
        "livemode": false,
        "locale": null,
        "on_behalf_of": null,
        "return_url": return_url,
        "url": format!("{base_url}/portal/{id}"),
    })
}
