//! Each endpoint answers with objects that async-stripe deserializes, and errors look like
//! Stripe's: unknown parameters, missing keys, unknown ids, reused idempotency keys.

use std::collections::HashMap;

use stripe::{RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, ListCheckoutSession,
    ListLineItemsCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::{
    CreateCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
};
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, RetrievePrice,
    UpdatePrice,
};
use stripe_product::product::{CreateProduct, ListProduct, RetrieveProduct};
use stripe_shared::CheckoutSessionMode;

use super::TestEmulator;

pub async fn monthly_price(
    emu: &TestEmulator,
    name: &str,
    cents: i64,
    lookup_key: &str,
) -> stripe_shared::Price {
    let product = CreateProduct::new(name)
        .send(&emu.stripe)
        .await
        .expect("product");
    CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(cents)
        .nickname(name)
        .lookup_key(lookup_key)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&emu.stripe)
        .await
        .expect("price")
}

#[tokio::test]
async fn products_and_prices_round_trip_and_are_found_by_lookup_key() {
    let emu = TestEmulator::start().await;
    let starter = monthly_price(&emu, "Starter", 999, "starter_monthly").await;
    monthly_price(&emu, "Pro", 9900, "pro_monthly").await;
    let pack_product = CreateProduct::new("500 credits")
        .send(&emu.stripe)
        .await
        .expect("product");
    let pack = CreatePrice::new(stripe_types::Currency::USD)
        .product(pack_product.id.as_str())
        .unit_amount(2000)
        .lookup_key("credits_500")
        .send(&emu.stripe)
        .await
        .expect("one-time price");
    assert_eq!(pack.type_, stripe_shared::PriceType::OneTime);

    let found = ListPrice::new()
        .lookup_keys(vec!["starter_monthly".to_owned(), "credits_500".to_owned()])
        .send(&emu.stripe)
        .await
        .expect("list by lookup key");
    let mut ids: Vec<String> = found
        .data
        .iter()
        .map(|p| p.id.as_str().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![starter.id.as_str().to_owned(), pack.id.as_str().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);

    let again = RetrievePrice::new(starter.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(again.unit_amount, Some(999));
    assert_eq!(
        again.recurring.map(|r| r.interval.as_str().to_owned()),
        Some("month".to_owned())
    );
    let product = RetrieveProduct::new(pack_product.id.clone())
        .send(&emu.stripe)
        .await
        .expect("product");
    assert_eq!(product.name, "500 credits");
    assert_eq!(
        ListProduct::new()
            .send(&emu.stripe)
            .await
            .expect("products")
            .data
            .len(),
        3
    );

    // A lookup key belongs to one price unless it is transferred.
    let taken = CreatePrice::new(stripe_types::Currency::USD)
        .product(pack_product.id.as_str())
        .unit_amount(2500)
        .lookup_key("credits_500")
        .send(&emu.stripe)
        .await;
    assert!(
        matches!(taken, Err(StripeError::Stripe(ref e, 400)) if e.param.as_deref() == Some("lookup_key")),
        "{taken:?}"
    );
    let moved = UpdatePrice::new(starter.id.clone())
        .lookup_key("credits_500")
        .transfer_lookup_key(true)
        .send(&emu.stripe)
        .await
        .expect("transfer");
    assert_eq!(moved.lookup_key.as_deref(), Some("credits_500"));
    let old = RetrievePrice::new(pack.id.clone())
        .send(&emu.stripe)
        .await
        .expect("old");
    assert_eq!(old.lookup_key, None);
}

#[tokio::test]
async fn customers_round_trip_with_metadata() {
    let emu = TestEmulator::start().await;
    let metadata = HashMap::from([("org_id".to_owned(), "42".to_owned())]);
    let customer = CreateCustomer::new()
        .email("billing@acme.test")
        .name("Acme")
        .metadata(metadata)
        .send(&emu.stripe)
        .await
        .expect("create");
    assert!(customer.id.as_str().starts_with("cus_"));
    let updated = UpdateCustomer::new(customer.id.clone())
        .name("Acme Inc.")
        .metadata(HashMap::from([("plan".to_owned(), "pro".to_owned())]))
        .send(&emu.stripe)
        .await
        .expect("update");
    let metadata = updated.metadata.expect("metadata");
    assert_eq!(metadata.get("org_id").map(String::as_str), Some("42"));
    assert_eq!(metadata.get("plan").map(String::as_str), Some("pro"));
    match RetrieveCustomer::new(customer.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve")
    {
        RetrieveCustomerReturned::Customer(c) => assert_eq!(c.name.as_deref(), Some("Acme Inc.")),
        other => panic!("expected a customer, got {other:?}"),
    }
    let listed = ListCustomer::new()
        .email("billing@acme.test")
        .send(&emu.stripe)
        .await
        .expect("list");
    assert_eq!(listed.data.len(), 1);
}

#[tokio::test]
async fn errors_have_stripes_shape_and_status() {
    let emu = TestEmulator::start().await;
    let missing = RetrieveCustomer::new("cus_nope").send(&emu.stripe).await;
    match missing {
        Err(StripeError::Stripe(e, 404)) => {
            assert_eq!(
                e.code.as_ref().map(|c| c.as_str()),
                Some("resource_missing")
            );
            assert_eq!(e.message.as_deref(), Some("No such customer: 'cus_nope'"));
        }
        other => panic!("expected 404, got {other:?}"),
    }

    let unknown = emu
        .raw(
            reqwest::Method::POST,
            "/v1/customers",
            &[("email", "a@b.test"), ("favourite_colour", "blue")],
        )
        .await;
    assert_eq!(unknown.status(), 400);
    let body: serde_json::Value = unknown.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "parameter_unknown");
    assert_eq!(body["error"]["param"], "favourite_colour");
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_emulator.objects WHERE kind = 'customer'")
            .fetch_one(&emu.pool)
            .await
            .expect("count");
    assert_eq!(count, 0, "a refused request changes nothing");

    let no_key = emu
        .http
        .get(format!("{}/v1/customers", emu.base))
        .send()
        .await
        .expect("request");
    assert_eq!(no_key.status(), 401);
    let live_key = emu
        .http
        .get(format!("{}/v1/customers", emu.base))
        .bearer_auth("sk_live_123")
        .send()
        .await
        .expect("request");
    assert_eq!(live_key.status(), 401);
    let nowhere = emu
        .raw(reqwest::Method::GET, "/v1/no_such_thing", &[])
        .await;
    assert_eq!(nowhere.status(), 404);
    assert!(nowhere
        .text()
        .await
        .unwrap_or_default()
        .contains("Unrecognized request URL"));
}

#[tokio::test]
async fn idempotency_keys_replay_the_same_answer_and_refuse_other_parameters() {
    let emu = TestEmulator::start().await;
    let key = "org-7-customer";
    let first = CreateCustomer::new()
        .email("a@acme.test")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(
            stripe::IdempotencyKey::new(key).expect("key"),
        ))
        .send(&emu.stripe)
        .await
        .expect("first");
    let second = CreateCustomer::new()
        .email("a@acme.test")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(
            stripe::IdempotencyKey::new(key).expect("key"),
        ))
        .send(&emu.stripe)
        .await
        .expect("replay");
    assert_eq!(first.id, second.id);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_emulator.objects WHERE kind = 'customer'")
            .fetch_one(&emu.pool)
            .await
            .expect("count");
    assert_eq!(count, 1);

    let other = CreateCustomer::new()
        .email("b@acme.test")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(
            stripe::IdempotencyKey::new(key).expect("key"),
        ))
        .send(&emu.stripe)
        .await;
    match other {
        Err(StripeError::Stripe(e, 400)) => assert_eq!(e.type_.as_str(), "idempotency_error"),
        other => panic!("expected an idempotency error, got {other:?}"),
    }
    let replayed = emu
        .http
        .post(format!("{}/v1/customers", emu.base))
        .bearer_auth(crate::KEY)
        .header("Idempotency-Key", key)
        .form(&[("email", "a@acme.test")])
        .send()
        .await
        .expect("raw replay");
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
}

#[tokio::test]
async fn checkout_sessions_portal_sessions_and_events_deserialize() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let customer = CreateCustomer::new()
        .email("c@acme.test")
        .send(&emu.stripe)
        .await
        .expect("customer");
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.id.as_str().to_owned());
    item.quantity = Some(1);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.as_str())
        .client_reference_id("org_42")
        .line_items(vec![item])
        .success_url("http://127.0.0.1:9/billing/success?session_id={CHECKOUT_SESSION_ID}")
        .cancel_url("http://127.0.0.1:9/billing/cancel")
        .send(&emu.stripe)
        .await
        .expect("session");
    assert_eq!(session.status.as_ref().map(|s| s.as_str()), Some("open"));
    assert_eq!(session.amount_total, Some(999));
    // Every enum value is one async-stripe knows (it once said "hosted", an unknown value).
    assert!(matches!(
        session.ui_mode,
        Some(stripe_shared::CheckoutSessionUiMode::HostedPage)
    ));
    let url = session.url.clone().expect("hosted url");
    assert!(url.starts_with(&emu.base));
    let again = RetrieveCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(again.client_reference_id.as_deref(), Some("org_42"));
    let lines = ListLineItemsCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("lines");
    assert_eq!(lines.data[0].amount_total, 999);
    let listed = ListCheckoutSession::new()
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("list");
    assert_eq!(listed.data.len(), 1);

    let portal = CreateBillingPortalSession::new()
        .customer(customer.id.as_str())
        .return_url("http://127.0.0.1:9/billing")
        .send(&emu.stripe)
        .await
        .expect("portal session");
    assert!(portal.url.starts_with(&format!("{}/portal/", emu.base)));

    let events = ListEvent::new().send(&emu.stripe).await.expect("events");
    assert!(events
        .data
        .iter()
        .any(|e| e.type_.as_str() == "customer.created"));
    let one = RetrieveEvent::new(events.data[0].id.clone())
        .send(&emu.stripe)
        .await
        .expect("event");
    assert_eq!(one.id, events.data[0].id);
    let filtered = ListEvent::new()
        .type_("price.*")
        .send(&emu.stripe)
        .await
        .expect("filtered");
    assert!(
        !filtered.data.is_empty()
            && filtered
                .data
                .iter()
                .all(|e| e.type_.as_str().starts_with("price."))
    );
}

#[tokio::test]
async fn lists_paginate_with_cursors() {
    let emu = TestEmulator::start().await;
    for n in 0..5 {
        CreateCustomer::new()
            .email(format!("c{n}@acme.test"))
            .send(&emu.stripe)
            .await
            .expect("customer");
    }
    let first = ListCustomer::new()
        .limit(2)
        .send(&emu.stripe)
        .await
        .expect("page 1");
    assert_eq!(first.data.len(), 2);
    assert!(first.has_more);
    let last_id = first.data[1].id.as_str().to_owned();
    let second = ListCustomer::new()
        .limit(10)
        .starting_after(last_id)
        .send(&emu.stripe)
        .await
        .expect("page 2");
    assert_eq!(second.data.len(), 3);
    assert!(!second.has_more);
    let bad = ListCustomer::new().limit(1000).send(&emu.stripe).await;
    assert!(matches!(bad, Err(StripeError::Stripe(_, 400))));
}

#[tokio::test]
async fn the_remaining_endpoints_deserialize_too() {
    use stripe_billing::invoice::{ListInvoice, PayInvoice, RetrieveInvoice};
    use stripe_billing::subscription::{
        CreateSubscription, CreateSubscriptionItems, ListSubscription, ResumeSubscription,
    };
    use stripe_billing::test_helpers_test_clock::{
        AdvanceTestHelpersTestClock, CreateTestHelpersTestClock, DeleteTestHelpersTestClock,
        ListTestHelpersTestClock, RetrieveTestHelpersTestClock,
    };
    use stripe_core::charge::RetrieveCharge;
    use stripe_core::customer::{DeleteCustomer, ListPaymentMethodsCustomer};
    use stripe_core::payment_intent::{
        ConfirmPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
    };
    use stripe_core::refund::{CreateRefund, RetrieveRefund};
    use stripe_payment::payment_method::{
        AttachPaymentMethod, DetachPaymentMethod, ListPaymentMethod, RetrievePaymentMethod,
    };
    use stripe_product::product::UpdateProduct;

    let emu = TestEmulator::start().await;
    let start = 1_798_761_600;
    let clock = CreateTestHelpersTestClock::new(start)
        .name("suite")
        .send(&emu.stripe)
        .await
        .expect("clock");
    let customer = CreateCustomer::new()
        .test_clock(clock.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("customer");

    // Payment methods.
    let pm = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("attach");
    assert_eq!(pm.card.as_ref().map(|c| c.last4.as_str()), Some("4242"));
    RetrievePaymentMethod::new(pm.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve pm");
    assert_eq!(
        ListPaymentMethod::new()
            .customer(customer.id.as_str())
            .send(&emu.stripe)
            .await
            .expect("list")
            .data
            .len(),
        1
    );
    assert_eq!(
        ListPaymentMethodsCustomer::new(customer.id.clone())
            .send(&emu.stripe)
            .await
            .expect("list")
            .data
            .len(),
        1
    );

    // A payment intent confirmed in a second step, its charge, a refund.
    let intent = CreatePaymentIntent::new(1500, stripe_types::Currency::USD)
        .customer(customer.id.as_str())
        .payment_method(pm.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("intent");
    assert_eq!(intent.status.as_str(), "requires_confirmation");
    let confirmed = ConfirmPaymentIntent::new(intent.id.clone())
        .send(&emu.stripe)
        .await
        .expect("confirm");
    assert_eq!(confirmed.status.as_str(), "succeeded");
    let intent = RetrievePaymentIntent::new(intent.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    let charge_id = intent.latest_charge.expect("charge").id().clone();
    let charge = RetrieveCharge::new(charge_id.clone())
        .send(&emu.stripe)
        .await
        .expect("charge");
    assert!(charge.paid);
    let refund = CreateRefund::new()
        .charge(charge_id.as_str())
        .send(&emu.stripe)
        .await
        .expect("refund");
    RetrieveRefund::new(refund.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve refund");
    assert!(
        RetrieveCharge::new(charge_id)
            .send(&emu.stripe)
            .await
            .expect("charge")
            .refunded
    );

    // A trial that pauses without a card, then resumes once one is there; its invoices.
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.as_str().to_owned());
    let mut end = stripe_billing::subscription::CreateSubscriptionTrialSettingsEndBehavior::new();
    end.missing_payment_method =
        Some(stripe_billing::subscription::CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::Pause);
    DetachPaymentMethod::new(pm.id.clone())
        .send(&emu.stripe)
        .await
        .expect("detach");
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item])
        .trial_period_days(3u32)
        .trial_settings(stripe_billing::subscription::CreateSubscriptionTrialSettings::new(end))
        .send(&emu.stripe)
        .await
        .expect("trial");
    AdvanceTestHelpersTestClock::new(clock.id.clone(), start + 4 * 86_400)
        .send(&emu.stripe)
        .await
        .expect("advance");
    let paused = ListSubscription::new()
        .customer(customer.id.as_str())
        .status(stripe_billing::subscription::ListSubscriptionStatus::Paused)
        .send(&emu.stripe)
        .await
        .expect("list paused");
    assert_eq!(paused.data.len(), 1);
    let card = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("attach");
    let mut settings = stripe_core::customer::UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(card.id.as_str().to_owned());
    UpdateCustomer::new(customer.id.clone())
        .invoice_settings(settings)
        .send(&emu.stripe)
        .await
        .expect("default");
    let resumed = ResumeSubscription::new(sub.id.clone())
        .send(&emu.stripe)
        .await
        .expect("resume");
    assert_eq!(resumed.status.as_str(), "active");
    let invoices = ListInvoice::new()
        .subscription(sub.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("invoices");
    let invoice = RetrieveInvoice::new(invoices.data[0].id.clone().expect("id"))
        .send(&emu.stripe)
        .await
        .expect("invoice");
    assert_eq!(invoice.status.as_ref().map(|s| s.as_str()), Some("paid"));
    let repay = PayInvoice::new(invoice.id.clone().expect("id"))
        .send(&emu.stripe)
        .await;
    assert!(
        matches!(repay, Err(StripeError::Stripe(_, 400))),
        "a paid invoice cannot be paid again"
    );

    // Products update; clocks list, retrieve and delete; customers delete.
    let product = CreateProduct::new("Old name")
        .send(&emu.stripe)
        .await
        .expect("product");
    let renamed = UpdateProduct::new(product.id.clone())
        .name("New name")
        .send(&emu.stripe)
        .await
        .expect("update");
    assert_eq!(renamed.name, "New name");
    assert_eq!(
        ListTestHelpersTestClock::new()
            .send(&emu.stripe)
            .await
            .expect("clocks")
            .data
            .len(),
        1
    );
    let clock = RetrieveTestHelpersTestClock::new(clock.id.clone())
        .send(&emu.stripe)
        .await
        .expect("clock");
    assert_eq!(clock.frozen_time, start + 4 * 86_400);
    let deleted = DeleteTestHelpersTestClock::new(clock.id.clone())
        .send(&emu.stripe)
        .await
        .expect("delete clock");
    assert_eq!(deleted.id, clock.id);
    let gone = DeleteCustomer::new(customer.id.clone())
        .send(&emu.stripe)
        .await
        .expect("delete customer");
    assert_eq!(gone.id, customer.id);
    assert!(matches!(
        RetrieveCustomer::new(customer.id.clone())
            .send(&emu.stripe)
            .await
            .expect("retrieve"),
        RetrieveCustomerReturned::DeletedCustomer(_)
    ));
}

#[tokio::test]
async fn webhook_endpoints_and_the_emulator_controls_answer_json() {
    let emu = TestEmulator::start().await;
    let created = emu
        .raw(
            reqwest::Method::POST,
            "/v1/webhook_endpoints",
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("enabled_events[]", "invoice.paid"),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let endpoint: serde_json::Value = created.json().await.expect("json");
    assert!(endpoint["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_")));
    let listed: serde_json::Value = emu
        .raw(reqwest::Method::GET, "/v1/webhook_endpoints", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"][0]["enabled_events"][0], "invoice.paid");
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    let id = endpoint["id"].as_str().expect("id");
    assert_eq!(
        emu.raw(
            reqwest::Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            &[]
        )
        .await
        .status(),
        200
    );

    let before: serde_json::Value = emu
        .raw(reqwest::Method::GET, "/_emulator/clock", &[])
        .await
        .json()
        .await
        .expect("json");
    let advanced: serde_json::Value = emu
        .raw(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            &[("seconds", "86400")],
        )
        .await
        .json()
        .await
        .expect("json");
    let moved =
        advanced["now"].as_i64().unwrap_or_default() - before["now"].as_i64().unwrap_or_default();
    assert!((86_400..86_460).contains(&moved), "{moved}");
    let bad = emu
        .raw(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            &[("seconds", "-5")],
        )
        .await;
    assert_eq!(bad.status(), 400);
}
