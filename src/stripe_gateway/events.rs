//! Stripe's webhook events read into our own types. The inbox stores each event as it came (its
//! type and its JSON text); [`parse_event`] parses that text once and reads, leniently and
//! whatever the event's API version, only what the portal applies. Stripe's field names stay in
//! here: the webhook worker and the ledger see only [`StripeEvent`] and the types it carries.
//!
//! Pure: no I/O. When an event lacks what we need (another API version's shape), the mapping
//! says so ([`SubscriptionChange::Refetch`]) and the worker asks Stripe for the object.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::billing::repo::Invoice;
use crate::billing::subscription::Snapshot;
use crate::usage::ledger::RefundFacts;
use crate::web::links::safe_external_url;

/// One stored Stripe event, as the portal applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum StripeEvent {
    /// `customer.subscription.*`.
    SubscriptionChanged(SubscriptionChange),
    /// `checkout.session.completed`.
    CheckoutCompleted(CheckoutCompleted),
    /// `checkout.session.expired`.
    CheckoutExpired(CheckoutExpired),
    /// `invoice.*`.
    InvoiceChanged(InvoiceSnapshot),
    /// `charge.refunded` for a charge with a payment intent.
    ChargeRefunded(RefundFacts),
    /// Nothing to apply (a type the portal does not handle, a refund of a charge without a
    /// payment intent). The reason is for logs; the inbox records no error for it.
    Ignored { reason: &'static str },
    /// Not applied: the event's object is not what its type names (an `invoice.paid` carrying a
    /// charge would otherwise be stored as an invoice). The reason is recorded on the event.
    Refused { reason: String },
}

/// A subscription event's state, or that it must be fetched from Stripe because the event's
/// shape (another API version) lacks what we read.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionChange {
    Snapshot(Snapshot),
    Refetch { subscription_id: String },
}

/// A completed Checkout Session.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutCompleted {
    /// Empty when the event names none (then it matches no session of ours).
    pub session_id: String,
    pub purchase: CompletedPurchase,
}

/// What a completed Checkout Session bought.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletedPurchase {
    /// A subscription (fetched from Stripe to be applied).
    Subscription { subscription_id: String },
    /// A paid one-time payment: a credit pack.
    PaidCredits {
        payment_intent_id: Option<String>,
        /// The organization the session was opened for, when it names one.
        org_reference: Option<Uuid>,
    },
    /// Nothing to apply beyond closing the session (unpaid, or another mode).
    Nothing,
}

/// An expired Checkout Session.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutExpired {
    /// Empty when the event names none.
    pub session_id: String,
    /// A one-time payment (a credit pack) rather than a subscription.
    pub payment_mode: bool,
}

/// An invoice and the customer it belongs to. Its links are kept only when safe to render.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceSnapshot {
    pub customer: String,
    pub invoice: Invoice,
}

/// Why a stored event cannot be read; applying it fails and is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableEvent {
    #[error("the stored event is not JSON")]
    NotJson(#[from] serde_json::Error),
    #[error("unreadable invoice in {kind}")]
    Invoice { kind: String },
    #[error("{kind} without an object id")]
    NoObjectId { kind: String },
    #[error("charge.refunded without a charge id")]
    NoChargeId,
    #[error("charge.refunded without amount_refunded")]
    NoAmountRefunded,
}

/// The fields of an event's envelope the inbox keeps in columns, borrowed from the body where
/// it can. The rest is read later, leniently, by [`parse_event`].
#[derive(Debug, serde::Deserialize)]
pub struct EventHead<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    pub created: i64,
    #[serde(borrow, default)]
    pub api_version: Option<Cow<'a, str>>,
}

/// Reads the envelope of a delivered event (whose signature was verified).
pub fn read_head(body: &[u8]) -> Result<EventHead<'_>, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Reads a stored event (its type and JSON text): the text is parsed once.
pub fn parse_event(kind: &str, payload: &str) -> Result<StripeEvent, UnreadableEvent> {
    let payload: Value = serde_json::from_str(payload)?;
    read_event(kind, &payload)
}

fn read_event(kind: &str, payload: &Value) -> Result<StripeEvent, UnreadableEvent> {
    if let Some(reason) = object_mismatch(kind, payload) {
        return Ok(StripeEvent::Refused { reason });
    }
    let object = &payload["data"]["object"];
    let event = match kind {
        k if k.starts_with("customer.subscription.") => {
            // Another API version's shape may lack what we read: then ask Stripe for the object.
            StripeEvent::SubscriptionChanged(
                match subscription_snapshot(object).filter(|s| s.price_lookup_key.is_some()) {
                    Some(snapshot) => SubscriptionChange::Snapshot(snapshot),
                    None => SubscriptionChange::Refetch {
                        subscription_id: object["id"]
                            .as_str()
                            .ok_or_else(|| UnreadableEvent::NoObjectId {
                                kind: kind.to_owned(),
                            })?
                            .to_owned(),
                    },
                },
            )
        }
        "checkout.session.completed" => {
            let purchase = match (object["mode"].as_str(), object["subscription"].as_str()) {
                (Some("subscription"), Some(sub_id)) => CompletedPurchase::Subscription {
                    subscription_id: sub_id.to_owned(),
                },
                (Some("payment"), _) if object["payment_status"] == "paid" => {
                    CompletedPurchase::PaidCredits {
                        payment_intent_id: expandable_id(&object["payment_intent"])
                            .map(str::to_owned),
                        org_reference: object["client_reference_id"]
                            .as_str()
                            .and_then(|r| r.parse().ok()),
                    }
                }
                _ => CompletedPurchase::Nothing,
            };
            StripeEvent::CheckoutCompleted(CheckoutCompleted {
                session_id: session_id(object),
                purchase,
            })
        }
        "checkout.session.expired" => StripeEvent::CheckoutExpired(CheckoutExpired {
            session_id: session_id(object),
            payment_mode: object["mode"].as_str() == Some("payment"),
        }),
        "charge.refunded" => match refund_facts(object)? {
            Some(refund) => StripeEvent::ChargeRefunded(refund),
            None => StripeEvent::Ignored {
                reason: "a refunded charge without a payment intent paid for no credits",
            },
        },
        k if k.starts_with("invoice.") => {
            StripeEvent::InvoiceChanged(invoice_snapshot(object).ok_or_else(|| {
                UnreadableEvent::Invoice {
                    kind: kind.to_owned(),
                }
            })?)
        }
        _ => StripeEvent::Ignored {
            reason: "an event type the portal does not apply",
        },
    };
    Ok(event)
}

/// The `object` an event of this type must carry in `data.object`, for the types the portal
/// applies; `None` for the types it ignores anyway.
fn expected_object(kind: &str) -> Option<&'static str> {
    if kind.starts_with("invoice.") {
        Some("invoice")
    } else if kind.starts_with("customer.subscription.") {
        Some("subscription")
    } else if kind.starts_with("checkout.session.") {
        Some("checkout.session")
    } else if kind.starts_with("charge.") {
        Some("charge")
    } else {
        None
    }
}

/// Why an event is not applied at all: its object is not what its type says.
fn object_mismatch(kind: &str, payload: &Value) -> Option<String> {
    let expected = expected_object(kind)?;
    let found = &payload["data"]["object"]["object"];
    (found.as_str() != Some(expected)).then(|| {
        format!(
            "not applied: {kind} must carry an object of type \"{expected}\", this one carries {}",
            match found.as_str() {
                Some(other) => format!("\"{}\"", other.chars().take(64).collect::<String>()),
                None => "none".to_owned(),
            }
        )
    })
}

fn at(ts: Option<i64>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| Utc.timestamp_opt(t, 0).single())
}

/// The id of a field Stripe sends either as an id or, expanded, as an object with an id.
fn expandable_id(field: &Value) -> Option<&str> {
    field.as_str().or_else(|| field["id"].as_str())
}

/// The customer an object belongs to: its id, or the id of the expanded customer.
fn customer_id(object: &Value) -> Option<String> {
    match &object["customer"] {
        Value::String(id) => Some(id.clone()),
        Value::Object(c) => Some(c.get("id")?.as_str()?.to_owned()),
        _ => None,
    }
}

fn session_id(object: &Value) -> String {
    object["id"].as_str().unwrap_or_default().to_owned()
}

/// Reads a subscription from an event's `data.object`, leniently: only the fields the portal
/// needs, whatever the event's API version (the period moved from the subscription to its items).
fn subscription_snapshot(object: &Value) -> Option<Snapshot> {
    let item = &object["items"]["data"][0];
    let period = |key: &str| item[key].as_i64().or_else(|| object[key].as_i64());
    Some(Snapshot {
        id: object["id"].as_str()?.to_owned(),
        customer: customer_id(object)?,
        status: object["status"].as_str()?.to_owned(),
        price_lookup_key: item["price"]["lookup_key"]
            .as_str()
            .or_else(|| item["plan"]["lookup_key"].as_str())
            .map(str::to_owned),
        trial_end: at(object["trial_end"].as_i64()),
        current_period_start: at(period("current_period_start")),
        current_period_end: at(period("current_period_end")),
        cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
        org_hint: object["metadata"]["org_id"].as_str().map(str::to_owned),
    })
}

/// Reads an invoice leniently from any API version's JSON.
fn invoice_snapshot(object: &Value) -> Option<InvoiceSnapshot> {
    let ts = |v: &Value| at(v.as_i64());
    // Links from outside are kept only when safe to render, so every reader is safe.
    let link = |v: &Value| v.as_str().and_then(safe_external_url).map(str::to_owned);
    Some(InvoiceSnapshot {
        customer: customer_id(object)?,
        invoice: Invoice {
            stripe_invoice_id: object["id"].as_str()?.to_owned(),
            number: object["number"].as_str().map(str::to_owned),
            status: object["status"].as_str().unwrap_or("draft").to_owned(),
            currency: object["currency"].as_str().unwrap_or("usd").to_owned(),
            amount_due: object["amount_due"].as_i64().unwrap_or_default(),
            amount_paid: object["amount_paid"].as_i64().unwrap_or_default(),
            period_start: ts(&object["period_start"]),
            period_end: ts(&object["period_end"]),
            hosted_invoice_url: link(&object["hosted_invoice_url"]),
            invoice_pdf: link(&object["invoice_pdf"]),
            created: ts(&object["created"])?,
        },
    })
}

/// What a refunded charge says; `None` when it has no payment intent (so it paid for no pack).
fn refund_facts(charge: &Value) -> Result<Option<RefundFacts>, UnreadableEvent> {
    let Some(intent) = expandable_id(&charge["payment_intent"]) else {
        return Ok(None);
    };
    let charge_id = charge["id"].as_str().ok_or(UnreadableEvent::NoChargeId)?;
    let refunded_cents = charge["amount_refunded"]
        .as_i64()
        .ok_or(UnreadableEvent::NoAmountRefunded)?;
    Ok(Some(RefundFacts {
        payment_intent_id: intent.to_owned(),
        charge_id: charge_id.to_owned(),
        refunded_cents,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(kind: &str, fixture: &str) -> StripeEvent {
        parse_event(kind, fixture).expect("readable")
    }

    fn time(t: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(t, 0).single()
    }

    #[test]
    fn an_event_must_carry_the_object_its_type_names() {
        let event = |kind: &str| json!({ "data": { "object": { "object": kind } } });
        assert_eq!(object_mismatch("invoice.paid", &event("invoice")), None);
        assert_eq!(
            object_mismatch("customer.subscription.updated", &event("subscription")),
            None
        );
        assert_eq!(
            object_mismatch("checkout.session.completed", &event("checkout.session")),
            None
        );
        assert_eq!(object_mismatch("charge.refunded", &event("charge")), None);
        assert_eq!(object_mismatch("customer.created", &event("charge")), None);
        let refused = object_mismatch("invoice.paid", &event("charge")).expect("refused");
        assert!(
            refused.contains("invoice.paid must carry an object of type \"invoice\""),
            "{refused}"
        );
        assert!(object_mismatch("charge.refunded", &json!({ "data": {} })).is_some());
        assert!(object_mismatch("customer.subscription.deleted", &event("invoice")).is_some());
    }

    #[test]
    fn an_invoice_event_is_read_with_safe_links_only() {
        let event = parse("invoice.paid", include_str!("fixtures/invoice_paid.json"));
        assert_eq!(
            event,
            StripeEvent::InvoiceChanged(InvoiceSnapshot {
                customer: "cus_1".into(),
                invoice: Invoice {
                    stripe_invoice_id: "in_1".into(),
                    number: Some("NR-0001".into()),
                    status: "paid".into(),
                    currency: "eur".into(),
                    amount_due: 999,
                    amount_paid: 999,
                    period_start: time(1_790_000_000),
                    period_end: time(1_792_592_000),
                    hosted_invoice_url: Some("https://invoice.stripe.com/i/acct_1/in_1".into()),
                    // `javascript:` is dropped before anything is stored.
                    invoice_pdf: None,
                    created: time(1_790_000_100).expect("time"),
                },
            })
        );
    }

    #[test]
    fn an_older_invoice_shape_is_read_leniently() {
        // 2017-08-15: the customer expanded, no status, currency or amounts, an http link that
        // is not on loopback.
        let StripeEvent::InvoiceChanged(read) = parse(
            "invoice.payment_succeeded",
            include_str!("fixtures/invoice_2017.json"),
        ) else {
            panic!("an invoice");
        };
        assert_eq!(read.customer, "cus_old");
        assert_eq!(read.invoice.stripe_invoice_id, "in_old");
        assert_eq!(read.invoice.status, "draft");
        assert_eq!(read.invoice.currency, "usd");
        assert_eq!((read.invoice.amount_due, read.invoice.amount_paid), (0, 0));
        assert_eq!(read.invoice.number, None);
        assert_eq!(read.invoice.hosted_invoice_url, None);
        assert_eq!(read.invoice.period_start, None);
    }

    #[test]
    fn an_invoice_without_customer_or_created_is_unreadable() {
        let no_customer = json!({ "data": { "object": {
            "id": "in_c0", "object": "invoice", "created": 1
        } } })
        .to_string();
        let e = parse_event("invoice.paid", &no_customer).expect_err("unreadable");
        assert_eq!(e.to_string(), "unreadable invoice in invoice.paid");
        let no_created = json!({ "data": { "object": {
            "id": "in_c0", "object": "invoice", "customer": "cus_1"
        } } })
        .to_string();
        assert!(parse_event("invoice.finalized", &no_created).is_err());
        let no_id = json!({ "data": { "object": {
            "object": "invoice", "customer": "cus_1", "created": 1
        } } })
        .to_string();
        assert!(parse_event("invoice.paid", &no_id).is_err());
    }

    #[test]
    fn an_event_carrying_another_object_is_refused() {
        let charge_as_invoice = include_str!("fixtures/charge_refunded.json");
        let StripeEvent::Refused { reason } = parse("invoice.paid", charge_as_invoice) else {
            panic!("refused");
        };
        assert!(
            reason.contains("invoice.paid must carry an object of type \"invoice\""),
            "{reason}"
        );
        assert!(reason.ends_with("this one carries \"charge\""), "{reason}");
        let invoice = include_str!("fixtures/invoice_paid.json");
        for kind in [
            "customer.subscription.updated",
            "checkout.session.completed",
            "charge.refunded",
        ] {
            assert!(
                matches!(parse(kind, invoice), StripeEvent::Refused { .. }),
                "{kind}"
            );
        }
        let StripeEvent::Refused { reason } = parse("charge.refunded", r#"{"data": {}}"#) else {
            panic!("refused");
        };
        assert!(reason.ends_with("this one carries none"), "{reason}");
        // Types the portal does not apply are not checked.
        assert!(matches!(
            parse("customer.created", invoice),
            StripeEvent::Ignored { .. }
        ));
    }

    #[test]
    fn a_subscription_event_is_read_from_its_items() {
        let event = parse(
            "customer.subscription.updated",
            include_str!("fixtures/subscription_updated.json"),
        );
        assert_eq!(
            event,
            StripeEvent::SubscriptionChanged(SubscriptionChange::Snapshot(Snapshot {
                id: "sub_1".into(),
                customer: "cus_1".into(),
                status: "active".into(),
                price_lookup_key: Some("pro_monthly".into()),
                trial_end: None,
                current_period_start: time(1_790_000_000),
                current_period_end: time(1_792_592_000),
                cancel_at_period_end: true,
                org_hint: Some("0b7f3f0e-8a39-4a4b-9d1e-2f0b5c6a7d8e".into()),
            }))
        );
    }

    #[test]
    fn an_older_subscription_shape_is_read_or_fetched() {
        // Periods on the subscription and an expanded customer are read...
        let StripeEvent::SubscriptionChanged(SubscriptionChange::Snapshot(read)) = parse(
            "customer.subscription.created",
            include_str!("fixtures/subscription_2020.json"),
        ) else {
            panic!("a snapshot");
        };
        assert_eq!(read.customer, "cus_old");
        assert_eq!(read.price_lookup_key.as_deref(), Some("starter_monthly"));
        assert_eq!(read.current_period_start, time(1_500_000_000));
        assert_eq!(read.current_period_end, time(1_502_592_000));
        assert!(!read.cancel_at_period_end);
        // ...but a shape without a price lookup key (or customer) is fetched from Stripe.
        assert_eq!(
            parse(
                "customer.subscription.updated",
                include_str!("fixtures/subscription_2017.json"),
            ),
            StripeEvent::SubscriptionChanged(SubscriptionChange::Refetch {
                subscription_id: "sub_old".into()
            })
        );
        let e = parse_event(
            "customer.subscription.deleted",
            r#"{"data": {"object": {"object": "subscription", "status": "canceled"}}}"#,
        )
        .expect_err("no id");
        assert_eq!(
            e.to_string(),
            "customer.subscription.deleted without an object id"
        );
    }

    #[test]
    fn a_completed_checkout_says_what_it_bought() {
        let subscription = json!({ "data": { "object": {
            "id": "cs_1", "object": "checkout.session", "mode": "subscription",
            "subscription": "sub_1", "payment_status": "paid"
        } } })
        .to_string();
        assert_eq!(
            parse("checkout.session.completed", &subscription),
            StripeEvent::CheckoutCompleted(CheckoutCompleted {
                session_id: "cs_1".into(),
                purchase: CompletedPurchase::Subscription {
                    subscription_id: "sub_1".into()
                },
            })
        );
        assert_eq!(
            parse(
                "checkout.session.completed",
                include_str!("fixtures/checkout_completed_payment.json"),
            ),
            StripeEvent::CheckoutCompleted(CheckoutCompleted {
                session_id: "cs_pack".into(),
                purchase: CompletedPurchase::PaidCredits {
                    payment_intent_id: Some("pi_1".into()),
                    org_reference: Some(
                        "0b7f3f0e-8a39-4a4b-9d1e-2f0b5c6a7d8e"
                            .parse()
                            .expect("uuid")
                    ),
                },
            })
        );
        // An expanded payment intent, and a reference that is not an organization id.
        let expanded = json!({ "data": { "object": {
            "id": "cs_2", "object": "checkout.session", "mode": "payment",
            "payment_status": "paid", "payment_intent": { "id": "pi_2", "object": "payment_intent" },
            "client_reference_id": "not-a-uuid"
        } } })
        .to_string();
        assert_eq!(
            parse("checkout.session.completed", &expanded),
            StripeEvent::CheckoutCompleted(CheckoutCompleted {
                session_id: "cs_2".into(),
                purchase: CompletedPurchase::PaidCredits {
                    payment_intent_id: Some("pi_2".into()),
                    org_reference: None,
                },
            })
        );
        // Unpaid, an expanded subscription, and no id at all: only the session is closed.
        for object in [
            json!({ "id": "cs_3", "object": "checkout.session", "mode": "payment", "payment_status": "unpaid" }),
            json!({ "id": "cs_3", "object": "checkout.session", "mode": "subscription", "subscription": { "id": "sub_1" } }),
            json!({ "id": "cs_3", "object": "checkout.session", "mode": "setup" }),
        ] {
            let text = json!({ "data": { "object": object } }).to_string();
            assert_eq!(
                parse("checkout.session.completed", &text),
                StripeEvent::CheckoutCompleted(CheckoutCompleted {
                    session_id: "cs_3".into(),
                    purchase: CompletedPurchase::Nothing,
                })
            );
        }
        let no_id = r#"{"data": {"object": {"object": "checkout.session"}}}"#;
        assert_eq!(
            parse("checkout.session.completed", no_id),
            StripeEvent::CheckoutCompleted(CheckoutCompleted {
                session_id: String::new(),
                purchase: CompletedPurchase::Nothing,
            })
        );
    }

    #[test]
    fn an_expired_checkout_and_other_checkout_events() {
        let expired = |mode: &str| {
            json!({ "data": { "object": { "id": "cs_1", "object": "checkout.session", "mode": mode } } })
                .to_string()
        };
        assert_eq!(
            parse("checkout.session.expired", &expired("payment")),
            StripeEvent::CheckoutExpired(CheckoutExpired {
                session_id: "cs_1".into(),
                payment_mode: true,
            })
        );
        assert_eq!(
            parse("checkout.session.expired", &expired("subscription")),
            StripeEvent::CheckoutExpired(CheckoutExpired {
                session_id: "cs_1".into(),
                payment_mode: false,
            })
        );
        assert!(matches!(
            parse(
                "checkout.session.async_payment_succeeded",
                &expired("payment")
            ),
            StripeEvent::Ignored { .. }
        ));
    }

    #[test]
    fn a_refunded_charge_gives_its_refund_facts() {
        assert_eq!(
            parse(
                "charge.refunded",
                include_str!("fixtures/charge_refunded.json")
            ),
            StripeEvent::ChargeRefunded(RefundFacts {
                payment_intent_id: "pi_1".into(),
                charge_id: "ch_1".into(),
                refunded_cents: 1000,
            })
        );
        let charge = |fields: Value| {
            let mut object = json!({ "object": "charge" });
            if let (Some(o), Some(f)) = (object.as_object_mut(), fields.as_object()) {
                o.extend(f.clone());
            }
            json!({ "data": { "object": object } }).to_string()
        };
        // An expanded payment intent.
        let expanded = charge(json!({
            "id": "ch_2", "payment_intent": { "id": "pi_2" }, "amount_refunded": 500
        }));
        assert!(matches!(
            parse("charge.refunded", &expanded),
            StripeEvent::ChargeRefunded(RefundFacts { ref payment_intent_id, refunded_cents: 500, .. })
                if payment_intent_id == "pi_2"
        ));
        // No payment intent: nothing of ours, whatever else is missing.
        assert!(matches!(
            parse("charge.refunded", &charge(json!({}))),
            StripeEvent::Ignored { .. }
        ));
        let e = parse_event(
            "charge.refunded",
            &charge(json!({ "payment_intent": "pi_1", "amount_refunded": 5 })),
        )
        .expect_err("no id");
        assert_eq!(e.to_string(), "charge.refunded without a charge id");
        let e = parse_event(
            "charge.refunded",
            &charge(json!({ "id": "ch_1", "payment_intent": "pi_1" })),
        )
        .expect_err("no amount");
        assert_eq!(e.to_string(), "charge.refunded without amount_refunded");
        // Other charge events are not applied.
        assert!(matches!(
            parse(
                "charge.succeeded",
                include_str!("fixtures/charge_refunded.json")
            ),
            StripeEvent::Ignored { .. }
        ));
    }

    #[test]
    fn text_that_is_not_json_is_unreadable() {
        assert!(matches!(
            parse_event("invoice.paid", "{"),
            Err(UnreadableEvent::NotJson(_))
        ));
    }
}
