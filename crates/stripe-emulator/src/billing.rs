//! The billing engine: what Stripe does to customers, subscriptions, invoices and payments as
//! requests arrive and as time passes (trials end, periods renew, failed payments are retried).
//! Every change emits the events Stripe emits for it.

use chrono::{DateTime, Months, TimeZone, Utc};
use serde_json::{json, Value};

use super::cards::{behaviour_of_number, Decline};
use super::error::StripeError;
use super::objects::{self, Line, PaymentSpec};
use super::store::{new_id, previous_attributes, str_field, Work};

const DAY: i64 = 86_400;
/// Stripe sends `customer.subscription.trial_will_end` three days before a trial ends.
const TRIAL_WILL_END_NOTICE: i64 = 3 * DAY;
/// Days after the first failure on which a renewal payment is retried; then the subscription is
/// canceled (Stripe's default "cancel after all retries fail", on a fixed schedule here).
const RETRY_AFTER_DAYS: [i64; 3] = [3, 5, 6];
/// An `incomplete` subscription whose first payment never succeeds expires after 23 hours.
const INCOMPLETE_EXPIRES_AFTER: i64 = 23 * 3600;

/// The engine works inside one unit of work; `base` is the emulator's public URL for links.
pub struct Engine<'a> {
    pub w: &'a mut Work,
    pub base: &'a str,
}

/// How a subscription's first invoice is handled when its payment fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentBehavior {
    /// Keep the subscription `incomplete` (Stripe's `allow_incomplete` / `default_incomplete`).
    AllowIncomplete,
    /// Refuse the request with the card error (Stripe's `error_if_incomplete`).
    ErrorIfIncomplete,
}

pub struct NewSubscription {
    pub customer: String,
    pub items: Vec<(Value, i64)>,
    pub trial_end: Option<i64>,
    pub default_payment_method: Option<String>,
    pub metadata: Value,
    pub missing_payment_method: String,
    pub payment_behavior: PaymentBehavior,
    pub description: Option<String>,
}

/// The end of a billing period that starts at `start`.
pub fn add_interval(start: i64, interval: &str, count: i64) -> i64 {
    let count = count.max(1);
    let Some(at) = Utc.timestamp_opt(start, 0).single() else {
        return start + count * 30 * DAY;
    };
    let months = |n: i64| {
        at.checked_add_months(Months::new(u32::try_from(n).unwrap_or(1)))
            .map(|d: DateTime<Utc>| d.timestamp())
            .unwrap_or(start + n * 30 * DAY)
    };
    match interval {
        "day" => start + count * DAY,
        "week" => start + count * 7 * DAY,
        "year" => months(count * 12),
        _ => months(count),
    }
}

fn card_error(decline: Decline) -> StripeError {
    StripeError::card(decline.code, decline.decline_code, decline.message)
}

impl Engine<'_> {
    /// Saves a card for a customer (Stripe checks it; a card that would be declined is refused).
    pub async fn attach_card(
        &mut self,
        now: i64,
        customer: &str,
        card: &super::cards::Card,
    ) -> Result<Value, StripeError> {
        if let Some(decline) = card.behaviour().refuses_attach() {
            return Err(card_error(decline).with_code(decline.code));
        }
        let pm = objects::payment_method(now, Some(customer), card);
        self.w.insert(&pm).await?;
        self.w
            .set_private(&str_field(&pm, "id"), &json!({ "number": card.number }))
            .await?;
        self.w
            .emit(now, "payment_method.attached", &pm, None)
            .await?;
        Ok(pm)
    }

    /// Makes `pm` the customer's default for invoices.
    pub async fn set_default_payment_method(
        &mut self,
        now: i64,
        customer: &str,
        pm: &str,
    ) -> Result<Value, StripeError> {
        let before = self.w.fetch("customer", customer, "customer").await?;
        let mut after = before.clone();
        after["invoice_settings"]["default_payment_method"] = json!(pm);
        self.w
            .save_and_emit_update(now, "customer.updated", &before, &after)
            .await?;
        Ok(after)
    }

    /// Charges a payment method: a PaymentIntent and a Charge, succeeded or failed.
    pub async fn charge(
        &mut self,
        now: i64,
        spec: PaymentSpec<'_>,
        off_session: bool,
    ) -> Result<(Value, Result<(), Decline>), StripeError> {
        let intent = objects::payment_intent(now, &spec);
        self.w.insert(&intent).await?;
        self.w
            .emit(now, "payment_intent.created", &intent, None)
            .await?;
        self.confirm(now, intent, off_session).await
    }

    /// Confirms a PaymentIntent: charges its payment method.
    pub async fn confirm(
        &mut self,
        now: i64,
        mut intent: Value,
        off_session: bool,
    ) -> Result<(Value, Result<(), Decline>), StripeError> {
        let Some(pm_id) = intent["payment_method"].as_str().map(str::to_owned) else {
            return Err(StripeError::invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                Some("payment_method"),
            )
            .with_code("payment_intent_unexpected_state"));
        };
        let number = self.w.private(&pm_id).await?["number"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| StripeError::no_such("PaymentMethod", &pm_id, "payment_method"))?;
        let outcome = behaviour_of_number(&number).charge(off_session);
        let failure = outcome.err().map(|d| (d.code, d.message));
        let charge = objects::charge(now, &intent, outcome.is_ok(), failure);
        self.w.insert(&charge).await?;
        intent["latest_charge"] = charge["id"].clone();
        match outcome {
            Ok(()) => {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = intent["amount"].clone();
                intent["last_payment_error"] = Value::Null;
                self.w.save(&intent).await?;
                self.w.emit(now, "charge.succeeded", &charge, None).await?;
                self.w
                    .emit(now, "payment_intent.succeeded", &intent, None)
                    .await?;
            }
            Err(decline) => {
                intent["status"] = json!("requires_payment_method");
                intent["last_payment_error"] = json!({
                    "type": "card_error",
                    "code": decline.code,
                    "decline_code": decline.decline_code,
                    "message": decline.message,
                    "charge": charge["id"],
                    "payment_method": self.w.load(&pm_id).await?,
                });
                self.w.save(&intent).await?;
                self.w.emit(now, "charge.failed", &charge, None).await?;
                self.w
                    .emit(now, "payment_intent.payment_failed", &intent, None)
                    .await?;
            }
        }
        Ok((intent, outcome))
    }

    /// A draft invoice, finalized at once (numbered, `open`).
    pub async fn create_invoice(
        &mut self,
        now: i64,
        subscription: Option<&Value>,
        customer_id: &str,
        lines: Vec<Line>,
        billing_reason: &'static str,
        period: (i64, i64),
    ) -> Result<Value, StripeError> {
        let mut customer = self.w.fetch("customer", customer_id, "customer").await?;
        let currency = subscription
            .and_then(|s| s["currency"].as_str())
            .unwrap_or("usd")
            .to_owned();
        let mut invoice = objects::invoice(
            now,
            objects::InvoiceSpec {
                id: new_id("in"),
                customer: &customer,
                subscription,
                currency,
                lines,
                billing_reason,
                period,
                base_url: self.base,
            },
        );
        self.w.insert(&invoice).await?;
        self.w.emit(now, "invoice.created", &invoice, None).await?;

        let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
        customer["next_invoice_sequence"] = json!(sequence + 1);
        self.w.save(&customer).await?;
        let before = invoice.clone();
        invoice["number"] = json!(format!(
            "{}-{sequence:04}",
            customer["invoice_prefix"].as_str().unwrap_or("EMU")
        ));
        invoice["status"] = json!("open");
        invoice["effective_at"] = json!(now);
        invoice["status_transitions"]["finalized_at"] = json!(now);
        self.w.save(&invoice).await?;
        let previous = previous_attributes(&before, &invoice);
        self.w
            .emit(now, "invoice.finalized", &invoice, previous)
            .await?;
        Ok(invoice)
    }

    /// The payment method an invoice is charged to: the subscription's, else the customer's.
    async fn payment_method_for(&mut self, invoice: &Value) -> Result<Option<String>, StripeError> {
        if let Some(sub_id) = invoice["parent"]["subscription_details"]["subscription"].as_str() {
            if let Some(sub) = self.w.load(sub_id).await? {
                if let Some(pm) = sub["default_payment_method"].as_str() {
                    return Ok(Some(pm.to_owned()));
                }
            }
        }
        let customer = self
            .w
            .fetch("customer", &str_field(invoice, "customer"), "customer")
            .await?;
        Ok(customer["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned))
    }

    /// Tries to collect an open invoice. Returns the invoice and the decline, if any.
    pub async fn pay_invoice(
        &mut self,
        now: i64,
        mut invoice: Value,
        off_session: bool,
    ) -> Result<(Value, Option<Decline>), StripeError> {
        let before = invoice.clone();
        let amount = invoice["amount_remaining"].as_i64().unwrap_or_default();
        let attempts = invoice["attempt_count"].as_i64().unwrap_or_default() + 1;
        invoice["attempted"] = json!(true);
        let outcome = if amount == 0 {
            Ok(None)
        } else {
            match self.payment_method_for(&invoice).await? {
                None => Err(Decline {
                    code: "invoice_payment_intent_requires_action",
                    decline_code: None,
                    message: "The customer has no default payment method.",
                }),
                Some(pm) => {
                    invoice["attempt_count"] = json!(attempts);
                    let customer = str_field(&invoice, "customer");
                    let description = format!("Invoice {}", str_field(&invoice, "number"));
                    let currency = str_field(&invoice, "currency");
                    let (intent, result) = self
                        .charge(
                            now,
                            PaymentSpec {
                                amount,
                                currency: &currency,
                                customer: Some(&customer),
                                payment_method: Some(&pm),
                                description: Some(description),
                                metadata: json!({}),
                            },
                            off_session,
                        )
                        .await?;
                    let payment = json!({
                        "id": new_id("inpay"),
                        "object": "invoice_payment",
                        "amount_paid": if result.is_ok() { amount } else { 0 },
                        "amount_requested": amount,
                        "created": now,
                        "currency": currency,
                        "invoice": invoice["id"],
                        "is_default": true,
                        "livemode": false,
                        "payment": { "type": "payment_intent", "payment_intent": intent["id"] },
                        "status": if result.is_ok() { "paid" } else { "open" },
                        "status_transitions": { "canceled_at": null, "paid_at": if result.is_ok() { json!(now) } else { Value::Null } },
                    });
                    let url = format!("/v1/invoice_payments?invoice={}", str_field(&invoice, "id"));
                    let mut payments = invoice["payments"]["data"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    payments.insert(0, payment);
                    invoice["payments"] = json!({ "object": "list", "data": payments, "has_more": false, "url": url });
                    result.map(|()| Some(intent))
                }
            }
        };
        match outcome {
            Ok(_) => {
                invoice["status"] = json!("paid");
                invoice["amount_paid"] =
                    json!(amount + invoice["amount_paid"].as_i64().unwrap_or_default());
                invoice["amount_remaining"] = json!(0);
                invoice["next_payment_attempt"] = Value::Null;
                invoice["status_transitions"]["paid_at"] = json!(now);
                self.w.save(&invoice).await?;
                let previous = previous_attributes(&before, &invoice);
                self.w
                    .emit(now, "invoice.paid", &invoice, previous.clone())
                    .await?;
                self.w
                    .emit(now, "invoice.payment_succeeded", &invoice, previous)
                    .await?;
                Ok((invoice, None))
            }
            Err(decline) => {
                let failures = attempts as usize;
                invoice["next_payment_attempt"] = match RETRY_AFTER_DAYS.get(failures - 1) {
                    Some(days) => json!(now + days * DAY),
                    None => Value::Null,
                };
                self.w.save(&invoice).await?;
                let previous = previous_attributes(&before, &invoice);
                self.w
                    .emit(now, "invoice.payment_failed", &invoice, previous)
                    .await?;
                Ok((invoice, Some(decline)))
            }
        }
    }

    async fn item_lines(
        &mut self,
        sub: &Value,
        period: (i64, i64),
    ) -> Result<Vec<Line>, StripeError> {
        let mut lines = Vec::new();
        for item in sub["items"]["data"].as_array().into_iter().flatten() {
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let unit = item["price"]["unit_amount"].as_i64().unwrap_or_default();
            let label = self.w.price_label(&item["price"]).await?;
            lines.push(Line {
                amount: unit * quantity,
                description: format!(
                    "{quantity} × {label} (at ${:.2} / {})",
                    unit as f64 / 100.0,
                    item["price"]["recurring"]["interval"]
                        .as_str()
                        .unwrap_or("month")
                ),
                period,
                price: Some(item["price"].clone()),
                quantity,
                subscription_item: item["id"].as_str().map(str::to_owned),
                proration: false,
            });
        }
        Ok(lines)
    }

    fn set_period(sub: &mut Value, period: (i64, i64)) {
        if let Some(items) = sub["items"]["data"].as_array_mut() {
            for item in items {
                item["current_period_start"] = json!(period.0);
                item["current_period_end"] = json!(period.1);
            }
        }
    }

    /// Moves a running trial's end (and with it the trial's period) to `end`.
    pub fn set_trial_end(sub: &mut Value, end: i64) {
        let start = Self::period_of(sub).0;
        sub["trial_end"] = json!(end);
        Self::set_period(sub, (start, end));
        if sub["cancel_at_period_end"] == true {
            sub["cancel_at"] = json!(end);
        }
    }

    /// Cancels at the end of the current period (`cancel`), or takes that back.
    pub fn schedule_cancellation(sub: &mut Value, cancel: bool, now: i64) {
        let end = Self::period_of(sub).1;
        let (cancel_at, canceled_at, reason) = if cancel {
            (json!(end), json!(now), json!("cancellation_requested"))
        } else {
            (Value::Null, Value::Null, Value::Null)
        };
        sub["cancel_at_period_end"] = json!(cancel);
        sub["cancel_at"] = cancel_at;
        sub["canceled_at"] = canceled_at;
        sub["cancellation_details"]["reason"] = reason;
    }

    pub fn period_of(sub: &Value) -> (i64, i64) {
        let item = &sub["items"]["data"][0];
        (
            item["current_period_start"].as_i64().unwrap_or_default(),
            item["current_period_end"].as_i64().unwrap_or_default(),
        )
    }

    fn interval_of(sub: &Value) -> (String, i64) {
        let recurring = &sub["items"]["data"][0]["price"]["recurring"];
        (
            recurring["interval"].as_str().unwrap_or("month").to_owned(),
            recurring["interval_count"].as_i64().unwrap_or(1),
        )
    }

    /// Creates a subscription: trialing with a $0 invoice, or charged for its first period.
    pub async fn create_subscription(
        &mut self,
        now: i64,
        spec: NewSubscription,
    ) -> Result<Value, StripeError> {
        let Some((first_price, _)) = spec.items.first() else {
            return Err(StripeError::missing_param("items"));
        };
        for (i, (price, _)) in spec.items.iter().enumerate() {
            if price["type"] != "recurring" {
                return Err(StripeError::invalid_request(
                    "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                    Some(&format!("items[{i}][price]")),
                ));
            }
            if price["currency"] != first_price["currency"] {
                return Err(StripeError::invalid_request(
                    "All prices on a subscription must have the same currency.",
                    Some(&format!("items[{i}][price]")),
                ));
            }
        }
        let customer = self.w.fetch("customer", &spec.customer, "customer").await?;
        let has_payment_method = spec.default_payment_method.is_some()
            || customer["invoice_settings"]["default_payment_method"].is_string();
        if spec.trial_end.is_none()
            && !has_payment_method
            && spec.payment_behavior == PaymentBehavior::ErrorIfIncomplete
        {
            return Err(StripeError::invalid_request(
                "This customer has no attached payment source or default payment method.",
                None,
            )
            .with_code("resource_missing"));
        }
        let interval = first_price["recurring"]["interval"]
            .as_str()
            .unwrap_or("month")
            .to_owned();
        let count = first_price["recurring"]["interval_count"]
            .as_i64()
            .unwrap_or(1);
        let period = match spec.trial_end {
            Some(end) => (now, end),
            None => (now, add_interval(now, &interval, count)),
        };
        let id = new_id("sub");
        let items: Vec<Value> = spec
            .items
            .iter()
            .map(|(price, qty)| objects::subscription_item(now, &id, price, *qty, period))
            .collect();
        let mut sub = objects::subscription(
            now,
            objects::SubscriptionSpec {
                id: id.clone(),
                customer: spec.customer.clone(),
                currency: str_field(first_price, "currency"),
                items,
                status: if spec.trial_end.is_some() {
                    "trialing"
                } else {
                    "incomplete"
                },
                trial: spec.trial_end.map(|end| (now, end)),
                default_payment_method: spec.default_payment_method.clone(),
                metadata: spec.metadata.clone(),
                missing_payment_method: spec.missing_payment_method.clone(),
                test_clock: customer["test_clock"].as_str().map(str::to_owned),
                description: spec.description.clone(),
            },
        );
        self.w.insert(&sub).await?;
        self.w
            .set_private(
                &id,
                &json!({ "pending_lines": [], "trial_will_end_sent": false }),
            )
            .await?;
        self.w
            .emit(now, "customer.subscription.created", &sub, None)
            .await?;

        let lines = self.item_lines(&sub, period).await?;
        let lines = if spec.trial_end.is_some() {
            lines
                .into_iter()
                .map(|l| Line {
                    amount: 0,
                    description: format!("Trial period for {}", l.description),
                    ..l
                })
                .collect()
        } else {
            lines
        };
        let invoice = self
            .create_invoice(
                now,
                Some(&sub),
                &spec.customer,
                lines,
                "subscription_create",
                period,
            )
            .await?;
        let before = sub.clone();
        sub["latest_invoice"] = invoice["id"].clone();
        let (_, decline) = self.pay_invoice(now, invoice, false).await?;
        match decline {
            None if spec.trial_end.is_none() => sub["status"] = json!("active"),
            Some(decline) if spec.payment_behavior == PaymentBehavior::ErrorIfIncomplete => {
                return Err(card_error(decline));
            }
            _ => {}
        }
        self.w
            .save_and_emit_update(now, "customer.subscription.updated", &before, &sub)
            .await?;
        if let Some(end) = spec.trial_end {
            if end - now <= TRIAL_WILL_END_NOTICE {
                self.trial_will_end(now, &sub).await?;
            }
        }
        Ok(sub)
    }

    async fn trial_will_end(&mut self, now: i64, sub: &Value) -> Result<(), StripeError> {
        let id = str_field(sub, "id");
        let mut private = self.w.private(&id).await?;
        if private["trial_will_end_sent"] == true {
            return Ok(());
        }
        private["trial_will_end_sent"] = json!(true);
        self.w.set_private(&id, &private).await?;
        self.w
            .emit(now, "customer.subscription.trial_will_end", sub, None)
            .await?;
        Ok(())
    }

    /// Ends a subscription now.
    pub async fn cancel(
        &mut self,
        at: i64,
        sub: Value,
        reason: &str,
    ) -> Result<Value, StripeError> {
        let before = sub.clone();
        let mut sub = sub;
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(at);
        sub["ended_at"] = json!(at);
        sub["cancellation_details"]["reason"] = json!(reason);
        self.w.save(&sub).await?;
        // No more retries for its open invoices.
        for mut invoice in self.w.all("invoice", Default::default()).await? {
            if invoice["parent"]["subscription_details"]["subscription"] == sub["id"]
                && invoice["status"] == "open"
                && !invoice["next_payment_attempt"].is_null()
            {
                invoice["next_payment_attempt"] = Value::Null;
                self.w.save(&invoice).await?;
            }
        }
        let previous = previous_attributes(&before, &sub);
        self.w
            .emit(at, "customer.subscription.deleted", &sub, previous)
            .await?;
        Ok(sub)
    }

    /// Starts the next period and charges for it (or cancels, if cancellation was asked for).
    async fn renew(&mut self, at: i64, sub: Value) -> Result<Value, StripeError> {
        if sub["cancel_at_period_end"] == true {
            return self.cancel(at, sub, "cancellation_requested").await;
        }
        let (interval, count) = Self::interval_of(&sub);
        let period = (at, add_interval(at, &interval, count));
        self.start_paid_period(at, sub, period, "subscription_cycle")
            .await
    }

    async fn start_paid_period(
        &mut self,
        at: i64,
        sub: Value,
        period: (i64, i64),
        reason: &'static str,
    ) -> Result<Value, StripeError> {
        let before = sub.clone();
        let mut sub = sub;
        let id = str_field(&sub, "id");
        Self::set_period(&mut sub, period);
        let mut private = self.w.private(&id).await?;
        let mut lines: Vec<Line> = private["pending_lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(line_from_json)
            .collect();
        private["pending_lines"] = json!([]);
        self.w.set_private(&id, &private).await?;
        lines.extend(self.item_lines(&sub, period).await?);
        let customer = str_field(&sub, "customer");
        let invoice = self
            .create_invoice(at, Some(&sub), &customer, lines, reason, period)
            .await?;
        sub["latest_invoice"] = invoice["id"].clone();
        let (_, decline) = self.pay_invoice(at, invoice, true).await?;
        sub["status"] = json!(if decline.is_none() {
            "active"
        } else {
            "past_due"
        });
        self.w
            .save_and_emit_update(at, "customer.subscription.updated", &before, &sub)
            .await?;
        Ok(sub)
    }

    /// The trial is over: charge for the first paid period, or apply the end behaviour when
    /// there is no payment method.
    pub async fn end_trial(&mut self, at: i64, sub: Value) -> Result<Value, StripeError> {
        let customer = self
            .w
            .fetch("customer", &str_field(&sub, "customer"), "customer")
            .await?;
        let has_payment_method = sub["default_payment_method"].is_string()
            || customer["invoice_settings"]["default_payment_method"].is_string();
        if !has_payment_method {
            match sub["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
                Some("cancel") => return self.cancel(at, sub, "cancellation_requested").await,
                Some("pause") => {
                    let before = sub.clone();
                    let mut sub = sub;
                    sub["status"] = json!("paused");
                    self.w.save(&sub).await?;
                    self.w
                        .emit(at, "customer.subscription.paused", &sub, None)
                        .await?;
                    let previous = previous_attributes(&before, &sub);
                    self.w
                        .emit(at, "customer.subscription.updated", &sub, previous)
                        .await?;
                    return Ok(sub);
                }
                _ => {}
            }
        }
        let (interval, count) = Self::interval_of(&sub);
        let period = (at, add_interval(at, &interval, count));
        self.start_paid_period(at, sub, period, "subscription_cycle")
            .await
    }

    /// Retries an open invoice's payment on its schedule; the last failure cancels the
    /// subscription.
    async fn retry(&mut self, at: i64, invoice: Value) -> Result<(), StripeError> {
        let (invoice, decline) = self.pay_invoice(at, invoice, true).await?;
        let Some(sub_id) = invoice["parent"]["subscription_details"]["subscription"].as_str()
        else {
            return Ok(());
        };
        let sub = self.w.fetch("subscription", sub_id, "subscription").await?;
        match decline {
            None if sub["status"] == "past_due" || sub["status"] == "incomplete" => {
                let mut after = sub.clone();
                after["status"] = json!("active");
                self.w
                    .save_and_emit_update(at, "customer.subscription.updated", &sub, &after)
                    .await?;
            }
            Some(_) if invoice["next_payment_attempt"].is_null() && sub["status"] != "canceled" => {
                self.cancel(at, sub, "payment_failed").await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// After the customer fixes their card: collect every open invoice of theirs at once.
    pub async fn collect_open_invoices(
        &mut self,
        now: i64,
        customer: &str,
    ) -> Result<(), StripeError> {
        let open: Vec<Value> = self
            .w
            .all(
                "invoice",
                super::store::Filter {
                    customer: Some(customer),
                    test_clock: None,
                },
            )
            .await?
            .into_iter()
            .filter(|i| i["status"] == "open")
            .collect();
        for invoice in open {
            if let Some(sub_id) = invoice["parent"]["subscription_details"]["subscription"].as_str()
            {
                let sub = self.w.fetch("subscription", sub_id, "subscription").await?;
                if sub["status"] == "canceled" {
                    continue;
                }
            }
            self.retry(now, invoice).await?;
        }
        Ok(())
    }

    /// Proration lines for switching `item` to `new_price` at `at`: a credit for the unused
    /// time on the old price and a charge for the remaining time on the new one.
    pub fn proration_lines(
        sub: &Value,
        item: &Value,
        new_price: &Value,
        at: i64,
        (old_name, new_name): (&str, &str),
    ) -> Vec<Line> {
        let (start, end) = Self::period_of(sub);
        let length = (end - start).max(1);
        let remaining = (end - at).clamp(0, length);
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let old_amount = item["price"]["unit_amount"].as_i64().unwrap_or_default() * quantity;
        let new_amount = new_price["unit_amount"].as_i64().unwrap_or_default() * quantity;
        let share = |amount: i64| {
            ((amount as i128 * remaining as i128 + length as i128 / 2) / length as i128) as i64
        };
        vec![
            Line {
                amount: -share(old_amount),
                description: format!("Unused time on {old_name} after {}", day(at)),
                period: (at, end),
                price: Some(item["price"].clone()),
                quantity,
                subscription_item: item["id"].as_str().map(str::to_owned),
                proration: true,
            },
            Line {
                amount: share(new_amount),
                description: format!("Remaining time on {new_name} after {}", day(at)),
                period: (at, end),
                price: Some(new_price.clone()),
                quantity,
                subscription_item: item["id"].as_str().map(str::to_owned),
                proration: true,
            },
        ]
    }

    /// Switches a subscription item to another price with Stripe's proration behaviours.
    pub async fn change_price(
        &mut self,
        now: i64,
        sub: Value,
        item_index: usize,
        new_price: &Value,
        proration_behavior: &str,
        payment_behavior: PaymentBehavior,
    ) -> Result<Value, StripeError> {
        let before = sub.clone();
        let mut sub = sub;
        let item = sub["items"]["data"][item_index].clone();
        let trialing = sub["status"] == "trialing";
        let lines = if trialing || proration_behavior == "none" {
            Vec::new()
        } else {
            let old_name = self.w.price_label(&item["price"]).await?;
            let new_name = self.w.price_label(new_price).await?;
            Self::proration_lines(&sub, &item, new_price, now, (&old_name, &new_name))
        };
        sub["items"]["data"][item_index]["price"] = new_price.clone();
        sub["items"]["data"][item_index]["plan"] = objects::plan_of(new_price);
        let id = str_field(&sub, "id");
        if !lines.is_empty() {
            if proration_behavior == "always_invoice" {
                let customer = str_field(&sub, "customer");
                let period = (now, Self::period_of(&sub).1);
                let invoice = self
                    .create_invoice(
                        now,
                        Some(&sub),
                        &customer,
                        lines,
                        "subscription_update",
                        period,
                    )
                    .await?;
                sub["latest_invoice"] = invoice["id"].clone();
                let (_, decline) = self.pay_invoice(now, invoice, false).await?;
                if let (Some(decline), PaymentBehavior::ErrorIfIncomplete) =
                    (decline, payment_behavior)
                {
                    return Err(card_error(decline));
                }
            } else {
                let mut private = self.w.private(&id).await?;
                let mut pending = private["pending_lines"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                pending.extend(lines.iter().map(line_to_json));
                private["pending_lines"] = json!(pending);
                self.w.set_private(&id, &private).await?;
            }
        }
        self.w
            .save_and_emit_update(now, "customer.subscription.updated", &before, &sub)
            .await?;
        Ok(sub)
    }

    /// Pending proration lines of a subscription (for previews).
    pub async fn pending_lines(&mut self, sub_id: &str) -> Result<Vec<Line>, StripeError> {
        Ok(self.w.private(sub_id).await?["pending_lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(line_from_json)
            .collect())
    }

    /// Runs, in time order, everything that falls due on `clock` up to `until`: trial notices,
    /// trial ends, renewals, payment retries, expiries. Returns how many things happened.
    pub async fn run_due(&mut self, clock: Option<&str>, until: i64) -> Result<usize, StripeError> {
        let mut done = 0;
        // Bounded: a subscription on a daily price advanced by years still finishes.
        for _ in 0..5_000 {
            let Some((at, action)) = self.next_due(clock, until).await? else {
                break;
            };
            match action {
                Due::TrialWillEnd(sub) => self.trial_will_end(at, &sub).await?,
                Due::TrialEnd(sub) => {
                    self.end_trial(at, sub).await?;
                }
                Due::Renewal(sub) => {
                    self.renew(at, sub).await?;
                }
                Due::Retry(invoice) => self.retry(at, invoice).await?,
                Due::IncompleteExpired(sub) => {
                    let mut after = sub.clone();
                    after["status"] = json!("incomplete_expired");
                    after["ended_at"] = json!(at);
                    self.w.save(&after).await?;
                    let previous = previous_attributes(&sub, &after);
                    self.w
                        .emit(at, "customer.subscription.deleted", &after, previous)
                        .await?;
                }
                Due::CheckoutExpired(session) => {
                    let mut after = session.clone();
                    after["status"] = json!("expired");
                    self.w.save(&after).await?;
                    self.w
                        .emit(at, "checkout.session.expired", &after, None)
                        .await?;
                }
            }
            done += 1;
        }
        Ok(done)
    }

    async fn next_due(
        &mut self,
        clock: Option<&str>,
        until: i64,
    ) -> Result<Option<(i64, Due)>, StripeError> {
        let mut best: Option<(i64, Due)> = None;
        let mut consider = |at: i64, due: Due| {
            if at <= until && best.as_ref().is_none_or(|(t, _)| at < *t) {
                best = Some((at, due));
            }
        };
        for sub in self.w.all_on_clock("subscription", clock).await? {
            let status = sub["status"].as_str().unwrap_or_default().to_owned();
            match status.as_str() {
                "trialing" => {
                    let end = sub["trial_end"].as_i64().unwrap_or(i64::MAX);
                    let sent = self.w.private(&str_field(&sub, "id")).await?["trial_will_end_sent"]
                        == true;
                    if !sent && end - TRIAL_WILL_END_NOTICE <= until {
                        consider(end - TRIAL_WILL_END_NOTICE, Due::TrialWillEnd(sub.clone()));
                    }
                    consider(end, Due::TrialEnd(sub));
                }
                "active" | "past_due" => {
                    let end = Self::period_of(&sub).1;
                    consider(end, Due::Renewal(sub));
                }
                "incomplete" => {
                    let created = sub["created"].as_i64().unwrap_or_default();
                    consider(
                        created + INCOMPLETE_EXPIRES_AFTER,
                        Due::IncompleteExpired(sub),
                    );
                }
                _ => {}
            }
        }
        for invoice in self.w.all_on_clock("invoice", clock).await? {
            if invoice["status"] == "open" {
                if let Some(at) = invoice["next_payment_attempt"].as_i64() {
                    consider(at, Due::Retry(invoice));
                }
            }
        }
        for session in self.w.all_on_clock("checkout.session", clock).await? {
            if session["status"] == "open" {
                let at = session["expires_at"].as_i64().unwrap_or(i64::MAX);
                consider(at, Due::CheckoutExpired(session));
            }
        }
        Ok(best)
    }
}

enum Due {
    TrialWillEnd(Value),
    TrialEnd(Value),
    Renewal(Value),
    Retry(Value),
    IncompleteExpired(Value),
    CheckoutExpired(Value),
}

fn day(at: i64) -> String {
    Utc.timestamp_opt(at, 0)
        .single()
        .map(|d| d.format("%d %b %Y").to_string())
        .unwrap_or_default()
}

fn line_to_json(line: &Line) -> Value {
    json!({
        "amount": line.amount,
        "description": line.description,
        "period": [line.period.0, line.period.1],
        "price": line.price,
        "quantity": line.quantity,
        "subscription_item": line.subscription_item,
        "proration": line.proration,
    })
}

fn line_from_json(v: &Value) -> Option<Line> {
    Some(Line {
        amount: v["amount"].as_i64()?,
        description: v["description"].as_str()?.to_owned(),
        period: (v["period"][0].as_i64()?, v["period"][1].as_i64()?),
        price: (!v["price"].is_null()).then(|| v["price"].clone()),
        quantity: v["quantity"].as_i64().unwrap_or(1),
        subscription_item: v["subscription_item"].as_str().map(str::to_owned),
        proration: v["proration"] == true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_periods_follow_the_calendar() {
        let jan_31 = Utc
            .with_ymd_and_hms(2026, 1, 31, 12, 0, 0)
            .single()
            .expect("date")
            .timestamp();
        let end = add_interval(jan_31, "month", 1);
        let end = Utc.timestamp_opt(end, 0).single().expect("date");
        assert_eq!(end.format("%Y-%m-%d").to_string(), "2026-02-28");
        assert_eq!(add_interval(0, "day", 7), 7 * DAY);
        let year = Utc
            .timestamp_opt(add_interval(jan_31, "year", 1), 0)
            .single()
            .expect("date");
        assert_eq!(year.format("%Y-%m-%d").to_string(), "2027-01-31");
    }

    #[test]
    fn proration_credits_unused_time_and_charges_the_rest() {
        let sub = json!({
            "items": { "data": [{
                "id": "si_1",
                "quantity": 1,
                "current_period_start": 0,
                "current_period_end": 30 * DAY,
                "price": { "id": "price_a", "unit_amount": 999, "nickname": "Starter" },
            }]},
        });
        let item = sub["items"]["data"][0].clone();
        let new_price = json!({ "id": "price_b", "unit_amount": 9900, "nickname": "Pro" });
        let lines = Engine::proration_lines(&sub, &item, &new_price, 15 * DAY, ("Starter", "Pro"));
        let amounts: Vec<i64> = lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, vec![-500, 4950]);
        assert!(lines
            .iter()
            .all(|l| l.proration && l.period == (15 * DAY, 30 * DAY)));
    }
}
